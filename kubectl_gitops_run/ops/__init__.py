"""The operations behind the commands: they compose the core and the adapters,
report through the Reporter they are given, and return their results.

Each name is imported from its module on first use (PEP 562): `ls` needs
`sessions` alone, and importing every operation (uploads, watches, the web
page) cost it about a third of its start-up (issue 13).
"""
from __future__ import annotations

import importlib
import sys
import types

_HOMES = {
    "Forwards": "forward", "Options": "options", "Result": "publish", "Screen": "watch",
    "down": "down", "find_sessions": "sessions", "preview": "preview", "resolve": "sessions",
    "scanner": "snapshots", "source_of": "sessions", "sync": "sync", "up": "up",
    "watch": "watch",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value       # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))


class _Package(types.ModuleType):
    """Importing the module `ops.up` binds the package's `up` to that module;
    the operation `up` is meant (as when each was imported here eagerly)."""

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, types.ModuleType) and _HOMES.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
