"""Reading the local tree: the snapshot of what Flux would index, with file
digests, and the YAML check that runs before anything is uploaded.

Ignore rules (core.ignore) read their files through `read_ignore_file`.
Files that hold keys (core.keys) are left out unless asked for, and named.
"""
from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
import time
from dataclasses import dataclass, field

import yaml

from ..core import keys
from ..core.ignore import IgnoreRules
from ..core.snapshot import Entry, Snapshot
from ..core.units import human_bytes
from ..errors import SnapshotError

log = logging.getLogger(__name__)

DEFAULT_MAX_FILE_SIZE = 10 * 1024 * 1024
IGNORE_FILE_LIMIT = 1024 * 1024    # far above any real one; a bigger one is a mistake

# A file changed within this window may change again without its mtime moving
# (timestamps tick coarsely), so its digest is not cached ("racy git").
_RACY_NS = 2_000_000_000
_CHUNK = 1024 * 1024
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_ignore_file(root: str, base: str, name: str) -> str | None:
    """An ignore file's text; None if there is none, or it is not a regular
    file (a FIFO would block the scan, /dev/zero would never end)."""
    path = os.path.join(root, base, name)
    shown = f"{base}/{name}" if base else name
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            log.debug("not reading %s: not a regular file", shown)
            return None
        f = _open_regular(path)
        if f is None:
            return None
        with f:
            data = f.read(IGNORE_FILE_LIMIT + 1)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise SnapshotError(cannot_read("", shown, e)) from e
    if len(data) > IGNORE_FILE_LIMIT:
        raise SnapshotError(f"{shown} is larger than {human_bytes(IGNORE_FILE_LIMIT)}, the limit "
                            f"for an ignore file; is it really one?")
    return data.decode("utf-8", "surrogateescape")    # git matches bytes: keep them


_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
               | getattr(os, "O_CLOEXEC", 0))


def _open_regular(path: str):
    """`path` opened for reading (binary) if it is a regular file, else None.
    O_NONBLOCK: a file that became a FIFO since it was looked at does not
    block the open, and is then refused."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return None


def ignore_rules(root: str, parsed: dict | None = None) -> IgnoreRules:
    """The ignore rules of the tree at `root`, reading its ignore files lazily
    (make new rules when they change; `parsed`: see IgnoreRules)."""
    return IgnoreRules(lambda base, name: read_ignore_file(root, base, name), parsed)


@dataclass
class Memo:
    """What a scan learnt that the next one in the same process reuses: per
    directory, the verdicts on its files (left out by the ignore rules, by
    Flux's default excludes, named like a key file). They are pure in the
    directory's names and its chain of ignore files, so they hold while both
    are the same; `parsed` makes an unchanged chain compare equal."""
    parsed: dict = field(default_factory=dict)
    dirs: dict[str, tuple] = field(default_factory=dict)


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
         cache: dict | None = None, include_keys: bool = False,
         skipped: list[str] | None = None, memo: Memo | None = None) -> Snapshot:
    """Snapshot the files of `root` that Flux would index. `cache` (kept by the
    caller between scans) maps path -> (mtime_ns, size, ino, ctime_ns, md5,
    key kind); `memo`, kept likewise, spares the ignore rules' work (Memo).
    Files that hold keys (core.keys) are left out unless `include_keys`;
    their keys are added to `skipped`, for the caller to name."""
    shown = os.fspath(root)
    if not os.path.exists(shown):
        raise SnapshotError(f"directory {shown} does not exist")
    if not os.path.isdir(shown):
        raise SnapshotError(f"{shown} is not a directory")
    _refuse_broad(shown)
    walk = _Walk(shown, max_file_size, cache, include_keys, memo or Memo())
    for key, path, sig, key_named in walk.files():
        walk.add(key, path, sig, key_named)
    if cache is not None:   # forget files that are gone, so the cache does not grow
        for stale in [p for p in cache if p not in walk.seen]:
            del cache[stale]
    if skipped is not None:
        skipped.extend(walk.skipped)
    if not walk.entries:
        raise SnapshotError(nothing_to_sync(shown, walk.skipped))
    return Snapshot(walk.top, walk.entries)     # added in key order (files())


def nothing_to_sync(shown: str, skipped: list[str]) -> str:
    """Why a scan found nothing; when key files were all it found, name them
    and the flag that takes them."""
    text = f"{shown} has no files to sync (after .sourceignore/.gitignore rules"
    if not skipped:
        return text + ")"
    named = ", ".join(skipped[:3]) + (f" and {len(skipped) - 3} more" if len(skipped) > 3 else "")
    return (f"{text} and leaving out files that may hold keys: {named}); pass "
            "--include-secrets to upload them")


SHOWN_LEVELS = 4    # of a path too deep to show whole: its first directories


def cannot_read(what: str, rel: str, e: OSError) -> str:
    """A file or directory of the tree that cannot be read, and the way out:
    fix it, or leave it out with .sourceignore. A path too long to name whole
    is shown by its first directories."""
    parts = rel.split("/")
    if len(parts) > SHOWN_LEVELS + 1:
        depth = len(parts) - (0 if what else 1)     # directories, a file's own excluded
        rel = "/".join(parts[:SHOWN_LEVELS]) + f"/.../{parts[-1]} ({depth} directories deep)"
    if e.errno == errno.ENAMETOOLONG:
        way_out = f"list a directory above it in .sourceignore, e.g. {shown_name(parts[0])}/"
    elif e.errno in (errno.EACCES, errno.EPERM):
        way_out = "fix its permissions, or list it in .sourceignore"
    else:
        way_out = "fix it, or list it in .sourceignore"
    return f"cannot read {what}{shown_name(rel)}: {e.strerror}; {way_out}"


def shown_name(name: str) -> str:
    """A file name as people may read it: the bytes of a name that is not
    UTF-8 as \\xNN escapes (the terminal layer escapes control characters)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _refuse_broad(shown: str) -> None:
    """A whole file system or home directory is never an app: refuse it before
    reading anything (and uploading someone's keys)."""
    real = os.path.realpath(shown)
    home = os.path.expanduser("~")
    if real == os.path.dirname(real):
        what = "the root of the file system"
    elif os.path.isabs(home) and real == os.path.realpath(home):
        what = "your home directory"
    else:
        return
    raise SnapshotError(f"refusing to sync {shown}: it is {what}; pass the directory that "
                        "holds your app's manifests")


class _Walk:
    """One scan's walk of the tree: what it found and what it has seen."""

    def __init__(self, shown: str, max_file_size: int, cache: dict | None,
                 include_keys: bool, memo: Memo):
        self.shown, self.max_file_size, self.cache = shown, max_file_size, cache
        self.include_keys, self.memo = include_keys, memo
        self.top = os.path.abspath(shown)
        self.real_top = os.path.realpath(self.top)
        self.rules = ignore_rules(self.top, memo.parsed)
        self.racy_after = time.time_ns() - _RACY_NS
        self.seen: set[str] = set()
        self.entries: dict[str, Entry] = {}
        self.skipped: list[str] = []

    def files(self) -> list[tuple[str, str, tuple, bool]]:
        """(key, path, signature, named like a key file) of each regular file
        the ignore rules keep, by key. The signature (see _signature), not the
        stat: 100,000 stat results held until the sort would cost about 40 MB."""
        found, defaults, visited = [], set(), set()
        stack = [(self.top, "")]
        while stack:     # no recursion: a tree may be deeper than Python's stack
            directory, prefix = stack.pop()
            visited.add(prefix)
            files = []
            for item in self._list(directory, prefix):
                if not item.is_dir(follow_symlinks=False):
                    files.append(item)      # gitignore treats symlinks as files
                elif not self.rules.ignored(prefix + item.name, True):
                    stack.append((item.path, prefix + item.name + "/"))
            left_out, excluded, key_named = self._verdicts(prefix, files)
            for item in files:
                key = prefix + item.name
                target = None if item.name in left_out else self._target(item, key)
                if target is not None:
                    found.append((key, *target, item.name in key_named))
                    if item.name in excluded:
                        defaults.add(key)
        for gone in self.memo.dirs.keys() - visited:
            del self.memo.dirs[gone]
        if self.rules.flux_defaults:    # known once every ignore file has been read
            found = [f for f in found if f[0] not in defaults]
        return sorted(found, key=lambda f: f[0])

    def _verdicts(self, prefix: str, files: list[os.DirEntry]) -> tuple[frozenset, ...]:
        """The names of a directory's files left out by the ignore rules, by
        Flux's default excludes, and named like key files: from the memo while
        the directory holds the same names under the same ignore files."""
        names = tuple(item.name for item in files)
        chain = self.rules.chain(prefix[:-1])   # reads the directory's ignore files
        known = self.memo.dirs.get(prefix)
        if known is not None and known[0] == chain and known[1] == names:
            return known[2]
        verdicts = tuple(frozenset(n for n in names if test(prefix + n)) for test in (
            lambda key: self.rules.ignored(key, False), self.rules.default_excluded,
            keys.key_file))
        self.memo.dirs[prefix] = chain, names, verdicts
        return verdicts

    def _list(self, directory: str, prefix: str) -> list[os.DirEntry]:
        try:
            with os.scandir(directory) as it:
                return list(it)
        except OSError as e:
            raise SnapshotError(cannot_read("directory ", prefix.rstrip("/") or self.shown,
                                            e)) from e

    def _target(self, item: os.DirEntry, key: str) -> tuple[str, tuple] | None:
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
        return path, _signature(st)

    def add(self, key: str, path: str, sig: tuple, key_named: bool) -> None:
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            raise SnapshotError(f'"{shown_name(key)}": file name is not valid UTF-8 (Flux '
                                'needs UTF-8 names); rename it, or list it in .sourceignore') \
                from None
        if not self.include_keys and key_named:
            self._skip(key, "its name")
            return
        if sig[1] > self.max_file_size:
            size, limit = _sizes(sig[1], self.max_file_size)
            raise SnapshotError(f"{key} is {size}, over the {limit} limit (raise it with "
                                "--max-file-size, or list the file in .sourceignore)")
        self.seen.add(path)
        digest = _digest(key, path, sig, self.cache, self.racy_after)
        if digest is None:
            return
        md5, size, kind = digest
        if kind and not self.include_keys:
            self._skip(key, f"it looks like a {kind}")
            return
        self.entries[key] = Entry(key, path, size, md5)

    def _skip(self, key: str, why: str) -> None:
        log.debug("leaving out %s: it may hold keys (%s)", key, why)
        self.skipped.append(key)


def _signature(st: os.stat_result) -> tuple[int, int, int, int]:
    """What the digest cache compares: (mtime_ns, size, ino, ctime_ns). ctime
    too: tools that restore an mtime (cp -p, rsync -t) cannot restore it."""
    return st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns


def _digest(key: str, path: str, sig: tuple, cache: dict | None,
            racy_after: int) -> tuple[str, int, str] | None:
    """(md5, size, key kind or '') of a file, from `cache` when its signature
    is unchanged; None if the file vanished."""
    hit = cache.get(path) if cache is not None else None
    if hit is not None and tuple(hit[:4]) == sig:
        return hit[4], sig[1], hit[5]
    h, size, kind = hashlib.md5(usedforsecurity=False), 0, None
    try:
        f = _open_regular(path)
        if f is None:       # replaced by a FIFO or a device since the scan looked
            return None
        with f:
            while chunk := f.read(_CHUNK):
                if kind is None:    # a key file says so in its first bytes
                    kind = keys.sniff(chunk) or ""
                h.update(chunk)
                size += len(chunk)
    except FileNotFoundError:
        return None
    except PermissionError:
        raise SnapshotError(f"{key}: permission denied (fix its permissions, "
                            "or list it in .sourceignore)") from None
    except OSError as e:
        raise SnapshotError(f"{key}: cannot read it: {e.strerror}") from e
    kind, md5 = kind or "", h.hexdigest()     # one string, shared by cache and entry
    if cache is not None:
        if size == sig[1] and sig[0] < racy_after:
            cache[path] = (*sig, md5, kind)
        else:
            cache.pop(path, None)
    return md5, size, kind


def _sizes(size: int, limit: int) -> tuple[str, str]:
    a, b = human_bytes(size), human_bytes(limit)
    return (a, b) if a != b else (f"{size} B", f"{limit} B")   # never "10 MiB, over 10 MiB"


def check_yaml(snapshot: Snapshot, keep=lambda doc: None,
               skip=lambda key: False) -> dict[str, list]:
    """Raise SnapshotError for the first .yaml/.yml file (by key) that does not
    parse, before anything is uploaded. Returns what `keep` keeps of each
    file's documents (the pre-flight needs a few fields, not whole trees).
    Files that `skip` names are not YAML (a Helm chart's templates)."""
    docs: dict[str, list] = {}
    for key in sorted(snapshot.entries):
        if not key.endswith((".yaml", ".yml")) or skip(key):
            continue
        data = _read_whole(key, snapshot.entries[key].path)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start) + 1
            raise SnapshotError(f"{key}: not valid UTF-8 at line {line} "
                                "(YAML files must be UTF-8)") from None
        try:
            docs[key] = [keep(doc) for doc in yaml.load_all(text, Loader=_YAML_LOADER)]
        except yaml.YAMLError as e:
            raise SnapshotError(f"{key}: {yaml_problem(e)}") from None
        except RecursionError:      # the pure loader recurses once per level
            raise SnapshotError(f"{key}: invalid YAML: nested too deeply") from None
    return docs


def _read_whole(key: str, path: str) -> bytes:
    try:
        f = _open_regular(path)
        if f is None:
            raise SnapshotError(f"{key}: cannot read it: not a regular file any more")
        with f:
            return f.read()
    except OSError as e:
        raise SnapshotError(f"{key}: cannot read it: {e.strerror}") from e


def yaml_problem(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = getattr(e, "problem", None) or getattr(e, "context", None)
    if mark is None or problem is None:
        return "invalid YAML: " + " ".join(str(e).split())
    return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"
