"""What a sync uploads: a snapshot of the local tree, its revision, and the plan
that turns the bucket's contents into it.

A snapshot holds every file that Flux would index from the tree: Flux's default
excludes and the `.sourceignore`/`.gitignore` files at every depth are applied
here, so the bucket never holds a file that Flux would drop. The revision is
computed exactly as source-controller computes a Bucket's (`internal/index`):
"sha256:" over the sorted lines "<key> <etag>\\n", so a sync can wait for the
revision of one complete snapshot (no torn syncs).
"""
from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from dataclasses import dataclass, field
from typing import Mapping

import pathspec
import yaml

log = logging.getLogger(__name__)

DEFAULT_MAX_FILE_SIZE = 10 * 1024 * 1024
IGNORE_FILES = (".gitignore", ".sourceignore")   # read in this order: the last match wins

# fluxcd/pkg/sourceignore: VCS files, then its default excludes for sources.
DEFAULT_EXCLUDES = (
    ".git/", ".gitignore", ".gitmodules", ".gitattributes",
    "*.jpg", "*.jpeg", "*.gif", "*.png", "*.wmv", "*.flv", "*.tar.gz", "*.zip",
    ".github/", ".circleci/", ".travis.yml", ".gitlab-ci.yml", "appveyor.yml",
    ".drone.yml", "cloudbuild.yaml", "codeship-services.yml", "codeship-steps.yml",
    "**/.goreleaser.yml", "**/.sops.yaml", "**/.flux.yaml",
)
_DEFAULT_SPEC = pathspec.GitIgnoreSpec.from_lines(DEFAULT_EXCLUDES)

# A file changed within this window may change again without its mtime moving
# (timestamps tick coarsely), so its digest is not cached ("racy git").
_RACY_NS = 2_000_000_000
_CHUNK = 1024 * 1024
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SnapshotError(Exception):
    """A problem with the local tree, in one line for people."""


@dataclass(frozen=True)
class Entry:
    key: str    # '/'-separated path relative to the root
    path: str   # absolute path to read (a symlink's target)
    size: int
    md5: str    # lowercase hex, equal to the ETag of a single PUT


@dataclass
class Snapshot:
    root: str                                   # absolute path of the tree
    entries: dict[str, Entry] = field(default_factory=dict)

    def etags(self) -> dict[str, str]:
        return {k: e.md5 for k, e in self.entries.items()}

    @property
    def revision(self) -> str:
        return revision(self.etags())

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries.values())


class IgnoreRules:
    """Which paths of a tree are left out: `.git/` and the ignore files always,
    then Flux's default excludes, then each directory's .gitignore and
    .sourceignore scoped to that directory, the deepest definite answer winning.
    Ignore files are read lazily, once, so make new rules when they change."""

    def __init__(self, root: str | os.PathLike):
        self.root = os.path.abspath(os.fspath(root))
        self._specs: dict[str, pathspec.GitIgnoreSpec | None] = {}
        self._dirs: dict[str, bool] = {}

    def __call__(self, rel: str) -> bool:
        """For the file watcher: a trailing '/' marks a directory, otherwise the
        file system is asked (a path that is gone counts as a file)."""
        if rel.endswith("/"):
            return self.ignored(rel, True)
        try:
            is_dir = stat.S_ISDIR(os.lstat(os.path.join(self.root, rel)).st_mode)
        except OSError:
            is_dir = False
        return self.ignored(rel, is_dir)

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """Whether `rel` ('/'-separated, relative to the root) is left out."""
        rel = rel.strip("/")
        if rel in ("", "."):
            return False
        if not is_dir:
            return self._check(rel, False)
        if rel not in self._dirs:   # asked again for every path below it
            self._dirs[rel] = self._check(rel, True)
        return self._dirs[rel]

    def _check(self, rel: str, is_dir: bool) -> bool:
        # A path under an ignored directory stays out, whatever deeper files say.
        parent = rel.rpartition("/")[0]
        return bool(parent and self.ignored(parent, True)) or self._match(rel, is_dir)

    def _match(self, rel: str, is_dir: bool) -> bool:
        parent, _, name = rel.rpartition("/")
        if (name == ".git") if is_dir else (name in IGNORE_FILES):
            return True
        # Shallowest first, so the deepest matcher with an answer has the last word.
        result = _DEFAULT_SPEC.check_file(rel + "/" if is_dir else rel).include
        parts = parent.split("/") if parent else []
        for depth in range(len(parts) + 1):
            base = "/".join(parts[:depth])
            spec = self._spec(base)
            if spec is None:
                continue
            sub = rel[len(base) + 1:] if base else rel
            hit = spec.check_file(sub + "/" if is_dir else sub).include
            if hit is not None:
                result = hit
        return bool(result)

    def _spec(self, base: str) -> pathspec.GitIgnoreSpec | None:
        if base not in self._specs:
            lines: list[str] = []
            for name in IGNORE_FILES:
                path = os.path.join(self.root, base, name)
                try:
                    with open(path, encoding="utf-8", errors="replace") as f:
                        lines += f.read().splitlines()
                except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                    continue
                except OSError as e:
                    shown = f"{base}/{name}" if base else name
                    raise SnapshotError(f"cannot read {shown}: {e.strerror}") from e
            self._specs[base] = pathspec.GitIgnoreSpec.from_lines(lines) if lines else None
        return self._specs[base]


def scan(root: str | os.PathLike, *, max_file_size: int = DEFAULT_MAX_FILE_SIZE,
         cache: dict | None = None) -> Snapshot:
    """Snapshot the files of `root` that Flux would index. `cache` (kept by the
    caller between scans) maps path -> (mtime_ns, size, ino, ctime_ns, md5)."""
    shown = os.fspath(root)
    if not os.path.exists(shown):
        raise SnapshotError(f"directory {shown} does not exist")
    if not os.path.isdir(shown):
        raise SnapshotError(f"{shown} is not a directory")
    top = os.path.abspath(shown)
    real_top = os.path.realpath(top)
    rules = IgnoreRules(top)
    racy_after = time.time_ns() - _RACY_NS
    seen: set[str] = set()
    entries: dict[str, Entry] = {}

    def walk(directory: str, prefix: str) -> None:
        try:
            with os.scandir(directory) as it:
                items = sorted(it, key=lambda d: d.name)
        except OSError as e:
            raise SnapshotError(
                f"cannot read directory {prefix.rstrip('/') or shown}: {e.strerror}") from e
        for item in items:
            key = prefix + item.name
            try:
                if item.is_dir(follow_symlinks=False):
                    if not rules.ignored(key, True):
                        walk(item.path, key + "/")
                    continue
                if rules.ignored(key, False):   # gitignore treats symlinks as files
                    continue
                path = item.path
                if item.is_symlink():
                    path = os.path.realpath(item.path)
                    if os.path.commonpath([real_top, path]) != real_top:
                        log.debug("skipping %s: symlink points outside %s", key, shown)
                        continue
                st = os.stat(path)
            except FileNotFoundError:   # dangling link, or removed while we looked
                log.debug("skipping %s: it does not exist (dangling symlink?)", key)
                continue
            except OSError as e:
                log.debug("skipping %s: %s", key, e)
                continue
            if stat.S_ISDIR(st.st_mode):   # a symlinked directory: never descended (cycles)
                log.debug("skipping %s: symlink to a directory is not followed", key)
                continue
            if not stat.S_ISREG(st.st_mode):
                log.debug("skipping %s: not a regular file", key)
                continue
            try:
                key.encode("utf-8")
            except UnicodeEncodeError:
                raise SnapshotError(f"{key!r}: file name is not valid UTF-8") from None
            if st.st_size > max_file_size:
                size, limit = _sizes(st.st_size, max_file_size)
                raise SnapshotError(
                    f"{key} is {size}, over the {limit} limit (raise it with "
                    "--max-file-size, or list the file in .sourceignore)")
            seen.add(path)
            digest = _md5(key, path, st, cache, racy_after)
            if digest is not None:
                entries[key] = Entry(key, path, digest[1], digest[0])

    walk(top, "")
    if cache is not None:   # forget files that are gone, so the cache does not grow
        for stale in [p for p in cache if p not in seen]:
            del cache[stale]
    if not entries:
        raise SnapshotError(f"{shown} has no files to sync (after .sourceignore/.gitignore rules)")
    return Snapshot(top, dict(sorted(entries.items())))


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
    def human(n: int) -> str:
        for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
            if n >= scale:
                return f"{round(n / scale, 1):g} {unit}"
        return f"{n} B"
    a, b = human(size), human(limit)
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


def revision(etags: Mapping[str, str]) -> str:
    """source-controller's Bucket revision: sha256 over "<key> <etag>\\n" by key.
    Python's str order is code point order, which is UTF-8 byte order (Go's)."""
    h = hashlib.sha256()
    for key in sorted(etags):
        h.update(f"{key} {etags[key]}\n".encode("utf-8"))
    return "sha256:" + h.hexdigest()


@dataclass(frozen=True)
class Plan:
    added: list[str]
    changed: list[str]
    removed: list[str]

    @property
    def upload(self) -> list[str]:
        return self.added + self.changed

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)

    def summary(self) -> str:
        """Counts for the summary line: "+2 ~1 -1"."""
        return f"+{len(self.added)} ~{len(self.changed)} -{len(self.removed)}"


def plan(local: Mapping[str, str], remote: Mapping[str, str]) -> Plan:
    """What to upload and delete so that the bucket holds `local` (key -> md5)."""
    def norm(etag: str) -> str:   # servers may quote ETags or use upper case
        return etag.strip('"').lower()
    return Plan(
        added=sorted(k for k in local if k not in remote),
        changed=sorted(k for k in local if k in remote and norm(local[k]) != norm(remote[k])),
        removed=sorted(k for k in remote if k not in local),
    )
