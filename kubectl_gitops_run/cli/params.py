"""Parameter types of the command line: kubectl-style durations and sizes."""
from __future__ import annotations

import re

import click


class Duration(click.ParamType):
    """kubectl-style durations: 90s, 5m, 1h30m, or plain seconds."""
    name = "duration"
    _PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        text = str(value).strip()
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return float(text)
        parts = self._PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            self.fail(f"invalid duration {value!r}: use e.g. 90s, 5m or 1h30m", param, ctx)
        scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
        return sum(float(n) * scale[u] for n, u in parts)


class Size(click.ParamType):
    """Byte sizes: 10Mi, 512Ki, 1G, or plain bytes."""
    name = "size"
    _UNITS = {"": 1, "k": 1000, "m": 1000 ** 2, "g": 1000 ** 3,
              "ki": 1024, "mi": 1024 ** 2, "gi": 1024 ** 3}

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        m = re.fullmatch(r"(\d+)\s*([kmg]i?)?b?", str(value).strip().lower())
        if not m:
            self.fail(f"invalid size {value!r}: use e.g. 10Mi or 500k", param, ctx)
        return int(m.group(1)) * self._UNITS[m.group(2) or ""]
