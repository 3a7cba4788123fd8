"""Watch a source tree and hand back settled bursts of changes (`sync --watch`).

One background thread collects changed paths; `wait()` returns them once a
burst has settled: no new event for `debounce` s, but never later than
`max_delay` s after the burst's first event, so a tree that never stops
changing still syncs. The caller re-scans the whole tree after every burst,
so reporting too much costs one "up to date" scan, while missing an event
loses an edit: when unsure, report (and report "." for "everything").

Linux: inotify through ctypes (no compiled module: the krew build is a pure
zipapp). Elsewhere, or when inotify is unavailable or out of watches: polling
by lstat. Symlinks are reported as entries but never followed, so nothing
outside the tree is watched. `.git/` and editors' scratch files are never
reported (vim rewrites its swap file every few seconds while you type); a
directory that `ignored()` rejects is not watched at all, so a caller whose
ignore rules change should make a new watcher.
"""
from __future__ import annotations

import errno
import logging
import os
import re
import select
import stat
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from ..errors import OutOfWatches

log = logging.getLogger(__name__)

EVERYTHING = "."          # reported when events were lost: re-scan everything
POLL_INTERVAL = 0.3

# vim (.x.swp, its write test file 4913, backups x~), emacs (.#x locks, #x#
# autosaves), JetBrains safe-write, gedit. Their saves end with a rename onto
# the real name, which is reported.
_NOISE = re.compile(r"^(\..*\.sw[a-z]|4913|.*~|\.#.*|#.*#|.*___jb_(tmp|old)___|"
                    r"\.goutputstream-.*)$")


def is_editor_noise(name: str) -> bool:
    return bool(_NOISE.match(name))


class TreeWatcher:
    """Context manager; see the module docstring. `backend`: None (best
    available), "inotify" or "poll"."""

    def __init__(self, root: str | Path, ignored: Callable[[str], bool] | None = None,
                 debounce: float = 0.15, max_delay: float = 0.5, *,
                 backend: str | None = None, poll_interval: float = POLL_INTERVAL):
        self.root = Path(root).absolute()
        if not self.root.is_dir():
            raise NotADirectoryError(f"not a directory: {self.root}")
        self.debounce, self.max_delay = debounce, max(max_delay, debounce)
        self.poll_interval = poll_interval
        self._ignored = ignored
        self._cond = threading.Condition()
        self._pending: set[str] = set()
        self._first = self._last = 0.0
        self._error: BaseException | None = None
        self._closed = False
        if backend not in (None, "inotify", "poll"):
            raise ValueError(f"unknown watch backend: {backend!r}")
        chosen = backend or _best_backend(self.root)
        self._wake_r, self._wake_w = os.pipe()
        self._source = None
        try:
            if chosen == "inotify":
                try:
                    self._source = _Inotify(self)
                except OSError as e:
                    if backend == "inotify":
                        raise
                    log.warning("inotify unavailable (%s); polling the tree instead", e)
            if self._source is None:
                self._source = _Poller(self)
        except BaseException:
            self._close_pipe()
            raise
        self.backend = self._source.name
        self._thread = threading.Thread(target=self._run, name="gitops-run-watch", daemon=True)
        self._thread.start()

    # -- the caller's side -------------------------------------------------

    def wait(self, timeout: float | None = None) -> set[str] | None:
        """Block until a burst has settled and return its relative paths, or
        None if no change began within `timeout` s (a burst already under way
        at the deadline is still waited for: at most `max_delay`)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._error is not None:
                    raise RuntimeError(f"file watcher failed: {self._error}") from self._error
                if self._closed:
                    raise RuntimeError("file watcher is closed")
                now = time.monotonic()
                if self._pending:
                    if self._settled(now):
                        changed, self._pending = self._pending, set()
                        return changed
                    # past last + debounce, only a poller's next scan can tell
                    # (it notifies); max_delay bounds the wait either way
                    until = self._first + self.max_delay
                    if self._last + self.debounce > now:
                        until = min(until, self._last + self.debounce)
                    self._cond.wait(max(until - now, 0.001))
                elif deadline is not None and now >= deadline:
                    return None
                else:
                    self._cond.wait(None if deadline is None else deadline - now)

    def changed_since(self) -> bool:
        """Has anything changed since the last wait() returned? Non-blocking."""
        with self._cond:
            return bool(self._pending)

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        os.write(self._wake_w, b"x")
        self._thread.join(5)
        self._source.close()
        self._close_pipe()

    def __enter__(self) -> TreeWatcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the sources' side -------------------------------------------------

    def _settled(self, now: float) -> bool:
        if now - self._first >= self.max_delay:
            return True
        return self._source.quiet_since() - self._last >= self.debounce

    def _note(self, paths, at: float | None = None) -> None:
        if not paths:
            return
        at = time.monotonic() if at is None else at
        with self._cond:
            if not self._pending:
                self._first = at
            self._pending.update(paths)
            self._last = at
            self._cond.notify_all()

    def _skip(self, rel: str, is_dir: bool) -> bool:
        name = rel.rpartition("/")[2]
        if is_editor_noise(name) or (is_dir and name == ".git"):
            return True
        if self._ignored is None:
            return False
        try:   # gitignore style: a directory is asked about with a trailing slash
            return bool(self._ignored(rel + "/" if is_dir else rel))
        except Exception:  # noqa: BLE001 - a broken filter must not lose events
            log.debug("ignore filter failed on %r", rel, exc_info=True)
            return False

    def _walk(self, rel: str, on_dir: Callable[[str], None] | None = None):
        """Yield (relative path, DirEntry) below directory `rel`, not following
        symlinks, skipping what _skip() rejects; on_dir(d) runs for each
        directory before it is listed, so nothing created in it is missed."""
        root, stack = os.fspath(self.root), [rel]
        while stack:
            d = stack.pop()
            if on_dir is not None:
                on_dir(d)
            try:
                with os.scandir(os.path.join(root, d) if d else root) as it:
                    entries = list(it)
            except OSError:     # gone or unreadable meanwhile: its events say so
                continue
            for e in entries:
                sub = f"{d}/{e.name}" if d else e.name
                try:
                    is_dir = e.is_dir(follow_symlinks=False)
                except OSError:
                    is_dir = False
                if self._skip(sub, is_dir):
                    continue
                yield sub, e
                if is_dir:
                    stack.append(sub)

    def _run(self) -> None:
        try:
            while not self._closed:
                if self._source.step(self._wake_r) is _Exhausted:
                    self._source.close()
                    self._source = _Poller(self)
                    self._note({EVERYTHING})
        except BaseException as e:  # noqa: BLE001 - surfaced to wait()
            log.debug("file watcher failed", exc_info=True)
            with self._cond:
                self._error = e
                self._cond.notify_all()

    def _close_pipe(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass


_Exhausted = object()     # a source's step() result: switch to polling

# Shared and network filesystems: inotify sees only the changes made through this
# kernel, not those made on the other side (a Windows editor on WSL's /mnt/c,
# a VM's host, another NFS client), so such trees are polled.
_SHARED_FS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "virtiofs", "vboxsf", "prl_fs",
              "fuse.sshfs", "fuse.vmhgfs-fuse", "afs", "ceph", "fuse.glusterfs", "lustre"}


def _best_backend(root: Path) -> str:
    if not sys.platform.startswith("linux"):
        return "poll"
    fs = mount_fstype(os.path.realpath(root))
    if fs in _SHARED_FS:
        log.info("%s is on %s, where inotify misses remote edits: polling it", root, fs)
        return "poll"
    return "inotify"


def mount_fstype(path: str, mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """The filesystem type of the mount holding `path` (Linux), or None."""
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    best, fstype = -1, None
    for line in lines:
        left, sep, right = line.partition(" - ")
        fields = left.split(" ")
        if not sep or len(fields) < 5 or not right:
            continue
        # mount points escape space, tab, newline and backslash as octal
        mnt = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        inside = path == mnt or path.startswith(mnt.rstrip("/") + "/")
        if inside and len(mnt) >= best:     # the deepest, and of equals the last mounted
            best, fstype = len(mnt), right.split(" ")[0]
    return fstype


class _Poller:
    """Snapshots of (mtime_ns, size, inode, mode) by lstat, compared every
    poll_interval; while a burst is under way it re-scans every `debounce` so
    quiet is confirmed without waiting a whole interval."""

    name = "poll"

    def __init__(self, w: TreeWatcher):
        self.w = w
        self.scanned_at = time.monotonic()
        self.state = self._snapshot()
        self.took = time.monotonic() - self.scanned_at

    def _snapshot(self) -> dict[str, tuple]:
        state = {}
        for rel, entry in self.w._walk(""):
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            # a directory's own mtime moves with its entries, which are reported themselves
            state[rel] = (st.st_ino, st.st_mode) if stat.S_ISDIR(st.st_mode) else \
                (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode)
        return state

    def step(self, wake_fd: int):
        busy = self.w.changed_since()
        delay = min(self.w.debounce, self.w.poll_interval) if busy else self.w.poll_interval
        # a big tree scans slowly: keep polling to about a fifth of a core
        delay = max(delay, 4 * self.took)
        if select.select([wake_fd], [], [], delay)[0]:
            return None
        started = time.monotonic()
        state = self._snapshot()
        self.took = time.monotonic() - started
        old, self.state = self.state, state
        changed = {p for p in old.keys() | state.keys() if old.get(p) != state.get(p)}
        self.w._note(changed, started)
        with self.w._cond:
            self.scanned_at = started
            self.w._cond.notify_all()
        return None

    def quiet_since(self) -> float:
        return self.scanned_at

    def close(self) -> None:
        pass


# inotify(7) constants, from <sys/inotify.h>
IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF = 0x400, 0x800
IN_Q_OVERFLOW, IN_IGNORED = 0x4000, 0x8000
IN_ONLYDIR, IN_DONT_FOLLOW, IN_ISDIR = 0x01000000, 0x02000000, 0x40000000
_MASK = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE
         | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
_EVENT = struct.Struct("iIII")          # wd, mask, cookie, len; then len bytes of name


class _Inotify:
    name = "inotify"

    def __init__(self, w: TreeWatcher):
        import ctypes        # here, so that other platforms and --help never load it
        self.w = w
        libc = ctypes.CDLL(None, use_errno=True)
        if not hasattr(libc, "inotify_init1"):
            raise OSError(errno.ENOSYS, "no inotify in this C library")
        self._ctypes = ctypes
        self._add = libc.inotify_add_watch
        self._add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self._add.restype = ctypes.c_int
        self._rm = libc.inotify_rm_watch
        self._rm.argtypes, self._rm.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            e = ctypes.get_errno()
            raise OSError(e, f"inotify_init1: {os.strerror(e)}")
        self.dirs: dict[int, str] = {}      # watch descriptor -> relative dir ("" = root)
        try:
            self._watch_tree("")
        except BaseException:
            self.close()
            raise

    def _watch(self, rel: str) -> None:
        # the root may itself be a symlink the user chose; below it, never follow
        flags = _MASK | (IN_DONT_FOLLOW if rel else 0)
        wd = self._add(self.fd, os.fsencode(self.w.root / rel if rel else self.w.root), flags)
        if wd >= 0:
            self.dirs[wd] = rel     # an inode watched already keeps its wd: path updated
            return
        e = self._ctypes.get_errno()
        if e in (errno.ENOSPC, errno.ENOMEM):
            raise OutOfWatches(e, os.strerror(e))
        if not rel:
            raise OSError(e, f"cannot watch {self.w.root}: {os.strerror(e)}")
        # ENOENT/ENOTDIR: gone or replaced meanwhile, and its parent reports that

    def _watch_tree(self, rel: str) -> list[str]:
        """Watch `rel` and every directory below it; return every path below it,
        which may have been created before the watch was in place."""
        return [sub for sub, _ in self.w._walk(rel, on_dir=self._watch)]

    def _unwatch_tree(self, rel: str) -> None:
        # a directory moved away: stop watching it, wherever it went
        prefix = rel + "/"
        for wd, d in list(self.dirs.items()):
            if d == rel or d.startswith(prefix):
                del self.dirs[wd]
                self._rm(self.fd, wd)

    def step(self, wake_fd: int):
        ready = select.select([self.fd, wake_fd], [], [])[0]
        if wake_fd in ready:
            return None
        try:
            return self._handle(self._read())
        except OutOfWatches as e:
            log.warning("out of inotify watches (%s; see fs.inotify.max_user_watches): "
                        "polling the tree instead", e.strerror)
            return _Exhausted

    def _read(self) -> bytes:
        chunks = []
        while True:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def _handle(self, buf: bytes) -> None:
        changed: set[str] = set()
        at = time.monotonic()
        off = 0
        while off + _EVENT.size <= len(buf):
            wd, mask, _cookie, n = _EVENT.unpack_from(buf, off)
            name = os.fsdecode(buf[off + _EVENT.size: off + _EVENT.size + n].rstrip(b"\0"))
            off += _EVENT.size + n
            if mask & IN_Q_OVERFLOW:
                changed.add(EVERYTHING)
                self._watch_tree("")        # catch up with directories we never saw
                continue
            d = self.dirs.get(wd)
            if mask & IN_IGNORED:
                self.dirs.pop(wd, None)
                continue
            if d is None:                   # from a directory already unwatched
                continue
            if not name:                    # about the watched directory itself
                if mask & (IN_DELETE_SELF | IN_MOVE_SELF):
                    changed.add(d or EVERYTHING)
                continue
            rel = f"{d}/{name}" if d else name
            is_dir = bool(mask & IN_ISDIR)
            if self.w._skip(rel, is_dir):
                continue
            changed.add(rel)
            if is_dir and mask & IN_MOVED_FROM:
                self._unwatch_tree(rel)
            elif is_dir and mask & (IN_CREATE | IN_MOVED_TO):
                changed.update(self._watch_tree(rel))
        self.w._note(changed, at)

    def quiet_since(self) -> float:
        return time.monotonic()     # events arrive as they happen

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)       # drops every watch with it
            self.fd = -1
