"""TreeWatcher on real files in temporary trees, with each backend (inotify and polling)."""
from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

from kubectl_gitops_run.adapters import treewatch as watch
from kubectl_gitops_run.errors import OutOfWatches
from kubectl_gitops_run.adapters.treewatch import EVERYTHING, TreeWatcher, is_editor_noise

BACKENDS = [
    pytest.param("inotify", marks=pytest.mark.skipif(not sys.platform.startswith("linux"),
                                                     reason="inotify is Linux only")),
    "poll",
]
QUIET = 0.8     # long enough for a poller to have scanned twice


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "tree"
    root.mkdir()
    (root / "a.yaml").write_text("a: 1\n")
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "sub" / "b.yaml").write_text("b: 1\n")
    (root / "sub" / "deep" / "c.yaml").write_text("c: 1\n")
    return root


@pytest.fixture
def watcher(tree, backend):
    with TreeWatcher(tree, backend=backend) as w:
        assert w.backend == backend
        yield w


def collect(w: TreeWatcher, expected: set[str], timeout: float = 5.0) -> set[str]:
    """Gather bursts until every expected path was reported (a poller may split an
    operation over two bursts); returns everything reported."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while not expected <= seen:
        left = deadline - time.monotonic()
        got = w.wait(timeout=max(left, 0)) if left > 0 else None
        if got is None:
            raise AssertionError(f"missing {sorted(expected - seen)}; saw {sorted(seen)}")
        seen |= got
    return seen


def assert_quiet(w: TreeWatcher) -> None:
    assert w.wait(timeout=QUIET) is None


def write(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def test_create_modify_delete(watcher, tree):
    write(tree / "new.yaml", "x")
    assert "new.yaml" in collect(watcher, {"new.yaml"})
    write(tree / "sub" / "deep" / "c.yaml", "c: 2\n")
    assert collect(watcher, {"sub/deep/c.yaml"}) == {"sub/deep/c.yaml"}
    (tree / "sub" / "b.yaml").unlink()
    assert collect(watcher, {"sub/b.yaml"}) == {"sub/b.yaml"}
    assert_quiet(watcher)


def test_same_size_rewrite_and_chmod(watcher, tree):
    time.sleep(0.02)        # let mtime move on coarse clocks
    write(tree / "a.yaml", "a: 2\n")            # same size, new content
    assert collect(watcher, {"a.yaml"}) == {"a.yaml"}
    os.chmod(tree / "sub" / "b.yaml", 0o600)
    assert collect(watcher, {"sub/b.yaml"}) == {"sub/b.yaml"}


def test_rename_reports_both_names(watcher, tree):
    (tree / "sub" / "b.yaml").rename(tree / "b2.yaml")
    assert collect(watcher, {"sub/b.yaml", "b2.yaml"}) == {"sub/b.yaml", "b2.yaml"}


def test_save_by_rename_and_swap_files(watcher, tree):
    # vim: swap file and write test, back up by rename, write anew, drop the backup
    write(tree / ".a.yaml.swp", "swap")
    write(tree / "4913", "")
    os.unlink(tree / "4913")
    os.rename(tree / "a.yaml", tree / "a.yaml~")
    write(tree / "a.yaml", "a: 3\n")
    os.unlink(tree / "a.yaml~")
    # most editors: write a temporary file, rename it over the original
    write(tree / "sub" / ".#b.yaml", "lock")
    write(tree / "sub" / "b.yaml.tmp", "b: 3\n")
    os.replace(tree / "sub" / "b.yaml.tmp", tree / "sub" / "b.yaml")
    seen = collect(watcher, {"a.yaml", "sub/b.yaml"})
    assert seen <= {"a.yaml", "sub/b.yaml", "sub/b.yaml.tmp"}
    write(tree / ".a.yaml.swp", "swap again")    # the swap file alone wakes nobody
    assert_quiet(watcher)


def test_new_directories_are_watched_with_what_they_already_hold(watcher, tree):
    nested = tree / "n1" / "n2" / "n3"
    nested.mkdir(parents=True)
    write(nested / "f.yaml", "f")       # likely before the watcher saw n3
    seen = collect(watcher, {"n1/n2/n3/f.yaml"})
    assert {"n1", "n1/n2", "n1/n2/n3", "n1/n2/n3/f.yaml"} <= seen
    write(nested / "g.yaml", "g")       # and the new directory is watched from now on
    assert collect(watcher, {"n1/n2/n3/g.yaml"}) == {"n1/n2/n3/g.yaml"}


def test_directory_moved_in_renamed_and_moved_out(watcher, tree):
    outside = tree.parent / "outside"
    (outside / "x").mkdir(parents=True)
    write(outside / "x" / "y.yaml", "y")
    os.rename(outside, tree / "moved")
    assert {"moved", "moved/x", "moved/x/y.yaml"} <= collect(watcher, {"moved/x/y.yaml"})
    write(tree / "moved" / "x" / "y.yaml", "y2")
    assert collect(watcher, {"moved/x/y.yaml"}) == {"moved/x/y.yaml"}

    os.rename(tree / "moved", tree / "renamed")
    collect(watcher, {"moved", "renamed"})
    write(tree / "renamed" / "x" / "y.yaml", "y3")     # watched under its new name
    assert collect(watcher, {"renamed/x/y.yaml"}) == {"renamed/x/y.yaml"}

    os.rename(tree / "renamed", tree.parent / "gone")
    # a poller also names what was inside
    assert all(p.startswith("renamed") for p in collect(watcher, {"renamed"}))
    write(tree.parent / "gone" / "x" / "y.yaml", "y4")   # out of the tree: not ours
    assert_quiet(watcher)


def test_directory_deleted(watcher, tree):
    shutil.rmtree(tree / "sub")
    assert collect(watcher, {"sub", "sub/b.yaml", "sub/deep/c.yaml"}) <= \
        {"sub", "sub/b.yaml", "sub/deep", "sub/deep/c.yaml"}
    write(tree / "sub2.yaml", "still watching")
    collect(watcher, {"sub2.yaml"})


def test_symlinks_are_entries_never_followed(tree, tmp_path, backend):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    write(outside / "o.yaml", "o")
    os.symlink(outside, tree / "link")
    with TreeWatcher(tree, backend=backend) as w:
        write(outside / "o.yaml", "o2")
        (outside / "new").mkdir()
        assert_quiet(w)
        os.unlink(tree / "link")
        os.symlink(tree / "sub", tree / "link")
        assert collect(w, {"link"}) == {"link"}


def test_ignored_paths_and_dot_git(tree, backend):
    asked = []

    def ignored(rel):
        asked.append(rel)
        return rel == "build/" or rel.endswith(".log")

    (tree / "build").mkdir()
    (tree / ".git" / "objects").mkdir(parents=True)
    with TreeWatcher(tree, ignored=ignored, backend=backend) as w:
        assert "sub/" in asked and "a.yaml" in asked       # directories with a slash
        write(tree / "build" / "out.yaml", "x")
        write(tree / "debug.log", "x")
        write(tree / ".git" / "index", "x")
        write(tree / ".git" / "objects" / "ab", "x")
        assert_quiet(w)
        write(tree / "kept.yaml", "x")
        assert collect(w, {"kept.yaml"}) == {"kept.yaml"}


def test_a_broken_filter_reports_rather_than_loses(tree, backend):
    def ignored(rel):
        raise ValueError("bad pattern")

    with TreeWatcher(tree, ignored=ignored, backend=backend) as w:
        write(tree / "a.yaml", "changed")
        collect(w, {"a.yaml"})


def test_burst_of_50_writes_is_one_wait(tree, backend):
    # a generous max_delay: the burst must count as one even on a loaded machine
    watcher = TreeWatcher(tree, backend=backend, debounce=0.3, max_delay=3.0)
    for i in range(50):
        write(tree / f"f{i:02}.yaml", f"v: {i}\n")
        time.sleep(0.0015)
    got = watcher.wait(timeout=5)
    assert got == {f"f{i:02}.yaml" for i in range(50)}
    assert_quiet(watcher)
    watcher.close()


def test_debounce_bounds(tree, backend):
    debounce = 0.2
    with TreeWatcher(tree, debounce=debounce, max_delay=1.0, backend=backend) as w:
        t0 = time.monotonic()
        write(tree / "a.yaml", "one write")
        assert w.wait(timeout=5) == {"a.yaml"}
        took = time.monotonic() - t0
        # a poller notices the write at its next scan (up to one interval late), then
        # confirms quiet with another scan `debounce` later
        late = w.poll_interval if backend == "poll" else 0
        assert debounce - 0.01 <= took <= debounce + late + 0.15, took


def test_max_delay_bounds_a_burst_that_never_settles(tree, backend):
    max_delay = 0.6
    with TreeWatcher(tree, debounce=0.15, max_delay=max_delay, backend=backend) as w:
        stop = threading.Event()

        def keep_writing():
            i = 0
            while not stop.is_set():
                write(tree / "a.yaml", f"n: {i}\n")
                i += 1
                time.sleep(0.04)

        writer = threading.Thread(target=keep_writing)
        t0 = time.monotonic()
        writer.start()
        try:
            assert w.wait(timeout=5) == {"a.yaml"}
            took = time.monotonic() - t0
            late = w.poll_interval if backend == "poll" else 0
            assert max_delay - 0.05 <= took <= max_delay + late + 0.15, took
            assert w.wait(timeout=5) == {"a.yaml"}      # the writes go on: the next burst
        finally:
            stop.set()
            writer.join()


def test_timeout_returns_none(watcher):
    t0 = time.monotonic()
    assert watcher.wait(timeout=0.3) is None
    assert 0.29 <= time.monotonic() - t0 <= 0.5
    assert watcher.wait(timeout=0) is None


def test_changed_since(watcher, tree):
    assert not watcher.changed_since()
    write(tree / "a.yaml", "changed")
    deadline = time.monotonic() + 3
    while not watcher.changed_since():
        assert time.monotonic() < deadline, "change never noticed"
        time.sleep(0.01)
    assert watcher.wait(timeout=5) == {"a.yaml"}
    assert not watcher.changed_since()


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else set()


def test_close_leaves_no_fd_or_thread(tree, backend):
    threads, fds = set(threading.enumerate()), _fds()
    w = TreeWatcher(tree, backend=backend)
    assert len(threading.enumerate()) == len(threads) + 1
    write(tree / "a.yaml", "changed")
    w.wait(timeout=5)
    w.close()
    w.close()       # idempotent
    assert set(threading.enumerate()) == threads
    assert _fds() == fds
    with pytest.raises(RuntimeError, match="closed"):
        w.wait(timeout=0.1)


def test_close_wakes_a_waiter(watcher):
    errors = []

    def waiter():
        try:
            watcher.wait()
        except RuntimeError as e:
            errors.append(e)

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.1)
    watcher.close()
    t.join(2)
    assert not t.is_alive() and errors


@pytest.mark.parametrize("name, noise", [
    (".a.yaml.swp", True), (".a.yaml.swx", True), ("4913", True), ("a.yaml~", True),
    (".#a.yaml", True), ("#a.yaml#", True), ("a.yaml___jb_tmp___", True),
    (".goutputstream-XYZ123", True),
    ("a.yaml", False), ("swap.yaml", False), ("49130", False), (".env", False),
])
def test_editor_noise(name, noise):
    assert is_editor_noise(name) is noise


# -- inotify only: overflow and running out of watches ---------------------------------

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux only")


@linux
def test_queue_overflow_reports_everything_and_catches_up(tree):
    with TreeWatcher(tree, backend="inotify") as w:
        # the kernel's overflow event; the directory it hid is found by the catch-up walk
        (tree / "hidden").mkdir()
        w._source._handle(watch._EVENT.pack(-1, watch.IN_Q_OVERFLOW, 0, 0))
        assert EVERYTHING in collect(w, {EVERYTHING})
        write(tree / "hidden" / "h.yaml", "h")
        assert "hidden/h.yaml" in collect(w, {"hidden/h.yaml"})


@linux
def test_falls_back_to_polling_without_watches(tree, monkeypatch):
    def no_watches(self, rel):
        raise OutOfWatches(28, "No space left on device")

    monkeypatch.setattr(watch._Inotify, "_watch", no_watches)
    with TreeWatcher(tree) as w:
        assert w.backend == "poll"
    with pytest.raises(OSError):
        TreeWatcher(tree, backend="inotify")


@linux
def test_switches_to_polling_when_watches_run_out(tree, monkeypatch):
    with TreeWatcher(tree, backend="inotify") as w:
        def no_watches(self, rel):
            raise OutOfWatches(28, "No space left on device")

        monkeypatch.setattr(watch._Inotify, "_watch", no_watches)
        (tree / "more").mkdir()
        assert EVERYTHING in collect(w, {EVERYTHING})
        write(tree / "more" / "m.yaml", "m")
        assert "more/m.yaml" in collect(w, {"more/m.yaml"})
        assert isinstance(w._source, watch._Poller)
