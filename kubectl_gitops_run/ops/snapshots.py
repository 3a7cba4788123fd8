"""Snapshots of a source directory, checked before anything is uploaded."""
from __future__ import annotations

from typing import Callable

from ..adapters import digests
from ..adapters.scanner import check_yaml, scan
from ..core.snapshot import Snapshot


def scanner(source: str, max_file_size: int, cache: dict | None = None) -> Callable[[], Snapshot]:
    """Scan and validate: every YAML file must parse before anything is uploaded.
    File digests are kept between scans in `cache`, and between commands on disk."""
    if cache is None:
        cache = digests.load(source)

    def run() -> Snapshot:
        before = dict(cache)
        snapshot = scan(source, max_file_size=max_file_size, cache=cache)
        if cache != before:     # unchanged on most syncs: spare the write
            digests.save(source, cache)
        check_yaml(snapshot)
        return snapshot
    return run
