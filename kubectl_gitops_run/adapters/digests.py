"""File digests remembered between commands, so that a sync of a large tree
reads only the files whose stat changed (the cache format is snapshot.scan's).

One JSON file per source directory under the user's cache dir. It is only a
hint: a missing, unreadable or foreign file means an empty cache, and a
failed write loses nothing but time.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path

VERSION = 1
MAX_AGE = 30 * 24 * 3600     # seconds


def cache_file(source: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    key = hashlib.sha256(os.path.abspath(source).encode()).hexdigest()[:24]
    return Path(base) / "kubectl-gitops-run" / "digests" / f"{key}.json"


def load(source: str) -> dict:
    try:
        doc = json.loads(cache_file(source).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("version") != VERSION or \
            doc.get("source") != os.path.abspath(source):
        return {}
    return {path: tuple(sig) for path, sig in (doc.get("files") or {}).items()}


def save(source: str, cache: dict) -> None:
    path = cache_file(source)
    doc = {"version": VERSION, "source": os.path.abspath(source), "files": cache}
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        if not path.exists():
            prune(path.parent)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(doc, separators=(",", ":")))
        os.replace(tmp, path)     # readers see the old file or the new, never half
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


def prune(directory: Path, max_age: float = MAX_AGE) -> None:
    """Forget the digests of source directories not synced for a month (a
    new one is a good moment: it is rare)."""
    now = time.time()
    for old in directory.glob("*.json"):
        with contextlib.suppress(OSError):
            if now - old.stat().st_mtime > max_age:
                old.unlink()
