"""File digests remembered between commands, so that a sync of a large tree
reads only the files whose stat changed (the cache format is snapshot.scan's).

One JSON file per source directory under the user's cache dir, private to
the user (0700 directories, 0600 files: it names the source's files). It is
only a hint: a missing, unreadable, malformed or foreign file means an empty
cache, and a failed write loses nothing but time.
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import time
from pathlib import Path

VERSION = 2                  # 2: each entry ends with the key kind (scanner.scan)
MAX_AGE = 30 * 24 * 3600     # seconds
WRITE_SLICE = 2000           # entries encoded at a time


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
    files = doc.get("files")
    if not isinstance(files, dict) or not all(map(_valid, files.values())):
        return {}
    for path, sig in files.items():     # in place: no second dict of 100,000 entries
        files[path] = tuple(sig)
    return files


def _valid(sig) -> bool:
    """An entry as scanner.scan keeps it: four integers of the file's stat, its
    md5 in hex and the kind of key it holds ('' for none)."""
    return (isinstance(sig, list) and len(sig) == 6
            and all(type(n) is int for n in sig[:4])
            and isinstance(sig[4], str) and len(sig[4]) == 32 and isinstance(sig[5], str))


def save(source: str, cache: dict) -> None:
    path = cache_file(source)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        if not path.exists():
            prune(path.parent)
        _private_dirs(path.parent)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w") as f:
            os.fchmod(fd, 0o600)          # a stale temporary file keeps its old mode
            _write(f, source, cache)
        os.replace(tmp, path)     # readers see the old file or the new, never half
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _write(f, source: str, cache: dict) -> None:
    """The cache file, a slice of entries at a time: one JSON text of 100,000
    entries would be a string of about 20 MB."""
    head = json.dumps({"version": VERSION, "source": os.path.abspath(source)})
    f.write(head[:-1] + ',"files":{')
    items, sep = iter(cache.items()), ""
    while part := dict(itertools.islice(items, WRITE_SLICE)):
        f.write(sep + json.dumps(part, separators=(",", ":"))[1:-1])
        sep = ","
    f.write("}}")


def _private_dirs(directory: Path) -> None:
    """Make the cache directories ours alone (0700), from kubectl-gitops-run/ down;
    the user's cache dir above them is left as it is."""
    top = directory.parent
    top.parent.mkdir(parents=True, exist_ok=True)
    for d in (top, directory):
        d.mkdir(mode=0o700, exist_ok=True)
        if d.stat().st_mode & 0o077:     # made by an older version, or another umask
            d.chmod(0o700)


def prune(directory: Path, max_age: float = MAX_AGE) -> None:
    """Forget the digests of source directories not synced for a month (a
    new one is a good moment: it is rare)."""
    now = time.time()
    for old in directory.glob("*.json"):
        with contextlib.suppress(OSError):
            if now - old.stat().st_mtime > max_age:
                old.unlink()
