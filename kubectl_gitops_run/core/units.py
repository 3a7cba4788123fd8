"""Sizes and revisions as people read them (pure)."""
from __future__ import annotations


def human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        # Step up when rounding would print "1024.0 KiB".
        if round(value, 1) < 1024 or unit == "PiB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def short_revision(rev: str | None) -> str:
    """"sha256:3f2a9c1e": what people read of a revision."""
    if not rev:
        return ""
    algo, sep, digest = rev.partition(":")
    return f"{algo}:{digest[:8]}" if sep else rev[:8]
