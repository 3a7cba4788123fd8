"""Who and where we run: the local user and host, as sessions record them."""
from __future__ import annotations

import getpass
import os
import socket

from ..core.naming import identity as _identity


def user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no name for this uid (containers)
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def host() -> str:
    return socket.gethostname()


def identity() -> str:
    """`user@host`, the one spelling of who acts."""
    return _identity(user(), host())
