"""Reading the local tree: the snapshot of what Flux would index, with file
digests, and the YAML check that runs before anything is uploaded.

Ignore rules (core.ignore) read their files through `read_ignore_file`.
"""
from __future__ import annotations

import hashlib
import logging
import os
import stat
import time

import yaml

from ..core.ignore import IgnoreRules
from ..core.snapshot import Entry, Snapshot
from ..core.units import human_bytes
from ..errors import SnapshotError

log = logging.getLogger(__name__)

DEFAULT_MAX_FILE_SIZE = 10 * 1024 * 1024

# A file changed within this window may change again without its mtime moving
# (timestamps tick coarsely), so its digest is not cached ("racy git").
_RACY_NS = 2_000_000_000
_CHUNK = 1024 * 1024
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_ignore_file(root: str, base: str, name: str) -> str | None:
    path = os.path.join(root, base, name)
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError as e:
        shown = f"{base}/{name}" if base else name
        raise SnapshotError(f"cannot read {shown}: {e.strerror}") from e


def ignore_rules(root: str) -> IgnoreRules:
    """The ignore rules of the tree at `root`, reading its ignore files lazily
    (make new rules when they change)."""
    return IgnoreRules(lambda base, name: read_ignore_file(root, base, name))


def watch_filter(root: str):
    """For the tree watcher: is `rel` left out? A trailing '/' marks a
    directory, otherwise the file system is asked (a path that is gone counts
    as a file)."""
    rules = ignore_rules(root)

    def ignored(rel: str) -> bool:
        if rel.endswith("/"):
            return rules.ignored(rel, True)
        try:
            is_dir = stat.S_ISDIR(os.lstat(os.path.join(root, rel)).st_mode)
        except OSError:
            is_dir = False
        return rules.ignored(rel, is_dir)
    return ignored


def scan(root: str | os.PathLike, *, max_file_size: int = DEFAULT_MAX_FILE_SIZE,
         cache: dict | None = None) -> Snapshot:
    """Snapshot the files of `root` that Flux would index. `cache` (kept by the
    caller between scans) maps path -> (mtime_ns, size, ino, ctime_ns, md5)."""
    shown = os.fspath(root)
    if not os.path.exists(shown):
        raise SnapshotError(f"directory {shown} does not exist")
    if not os.path.isdir(shown):
        raise SnapshotError(f"{shown} is not a directory")
    walk = _Walk(shown, max_file_size, cache)
    walk.directory(walk.top, "")
    if cache is not None:   # forget files that are gone, so the cache does not grow
        for stale in [p for p in cache if p not in walk.seen]:
            del cache[stale]
    if not walk.entries:
        raise SnapshotError(f"{shown} has no files to sync (after .sourceignore/.gitignore rules)")
    return Snapshot(walk.top, dict(sorted(walk.entries.items())))


class _Walk:
    """One scan's walk of the tree: what it found and what it has seen."""

    def __init__(self, shown: str, max_file_size: int, cache: dict | None):
        self.shown, self.max_file_size, self.cache = shown, max_file_size, cache
        self.top = os.path.abspath(shown)
        self.real_top = os.path.realpath(self.top)
        self.rules = ignore_rules(self.top)
        self.racy_after = time.time_ns() - _RACY_NS
        self.seen: set[str] = set()
        self.entries: dict[str, Entry] = {}

    def directory(self, directory: str, prefix: str) -> None:
        try:
            with os.scandir(directory) as it:
                items = sorted(it, key=lambda d: d.name)
        except OSError as e:
            raise SnapshotError(f"cannot read directory {prefix.rstrip('/') or self.shown}: "
                                f"{e.strerror}") from e
        for item in items:
            key = prefix + item.name
            if item.is_dir(follow_symlinks=False):
                if not self.rules.ignored(key, True):
                    self.directory(item.path, key + "/")
            elif not self.rules.ignored(key, False):    # gitignore treats symlinks as files
                found = self._target(item, key)
                if found is not None:
                    self._add(key, *found)

    def _target(self, item: os.DirEntry, key: str) -> tuple[str, os.stat_result] | None:
        """The regular file an entry stands for (a symlink's target inside the
        tree), or None to skip it."""
        path = item.path
        try:
            if item.is_symlink():
                path = os.path.realpath(item.path)
                if os.path.commonpath([self.real_top, path]) != self.real_top:
                    log.debug("skipping %s: symlink points outside %s", key, self.shown)
                    return None
            st = os.stat(path)
        except FileNotFoundError:   # dangling link, or removed while we looked
            log.debug("skipping %s: it does not exist (dangling symlink?)", key)
            return None
        except OSError as e:
            log.debug("skipping %s: %s", key, e)
            return None
        if stat.S_ISDIR(st.st_mode):   # a symlinked directory: never descended (cycles)
            log.debug("skipping %s: symlink to a directory is not followed", key)
            return None
        if not stat.S_ISREG(st.st_mode):
            log.debug("skipping %s: not a regular file", key)
            return None
        return path, st

    def _add(self, key: str, path: str, st: os.stat_result) -> None:
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            raise SnapshotError(f"{key!r}: file name is not valid UTF-8") from None
        if st.st_size > self.max_file_size:
            size, limit = _sizes(st.st_size, self.max_file_size)
            raise SnapshotError(f"{key} is {size}, over the {limit} limit (raise it with "
                                "--max-file-size, or list the file in .sourceignore)")
        self.seen.add(path)
        digest = _md5(key, path, st, self.cache, self.racy_after)
        if digest is not None:
            self.entries[key] = Entry(key, path, digest[1], digest[0])


def _md5(key: str, path: str, st: os.stat_result, cache: dict | None,
         racy_after: int) -> tuple[str, int] | None:
    """(md5, size) of a file, from `cache` when its stat is unchanged; None if
    the file vanished."""
    # ctime too: tools that restore an mtime (cp -p, rsync -t) cannot restore it
    sig = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)
    hit = cache.get(path) if cache is not None else None
    if hit is not None and tuple(hit[:4]) == sig:
        return hit[4], st.st_size
    h, size = hashlib.md5(usedforsecurity=False), 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
                size += len(chunk)
    except FileNotFoundError:
        return None
    except PermissionError:
        raise SnapshotError(f"{key}: permission denied (fix its permissions, "
                            "or list it in .sourceignore)") from None
    except OSError as e:
        raise SnapshotError(f"{key}: cannot read it: {e.strerror}") from e
    if cache is not None:
        if size == st.st_size and st.st_mtime_ns < racy_after:
            cache[path] = (*sig, h.hexdigest())
        else:
            cache.pop(path, None)
    return h.hexdigest(), size


def _sizes(size: int, limit: int) -> tuple[str, str]:
    a, b = human_bytes(size), human_bytes(limit)
    return (a, b) if a != b else (f"{size} B", f"{limit} B")   # never "10 MiB, over 10 MiB"


def check_yaml(snapshot: Snapshot) -> None:
    """Raise SnapshotError for the first .yaml/.yml file (by key) that does not
    parse, before anything is uploaded."""
    for key in sorted(snapshot.entries):
        if not key.endswith((".yaml", ".yml")):
            continue
        try:
            with open(snapshot.entries[key].path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise SnapshotError(f"{key}: cannot read it: {e.strerror}") from e
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start) + 1
            raise SnapshotError(f"{key}: not valid UTF-8 at line {line} "
                                "(YAML files must be UTF-8)") from None
        try:
            for _ in yaml.load_all(text, Loader=_YAML_LOADER):
                pass
        except yaml.YAMLError as e:
            raise SnapshotError(f"{key}: {_yaml_problem(e)}") from None


def _yaml_problem(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = getattr(e, "problem", None) or getattr(e, "context", None)
    if mark is None or problem is None:
        return "invalid YAML: " + " ".join(str(e).split())
    return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"
