"""The on-disk digest cache: round trip, and anything odd is an empty cache."""
from __future__ import annotations

import json

from kubectl_gitops_run.adapters import digests
from kubectl_gitops_run.adapters.scanner import scan


def test_round_trip_through_a_scan(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.yaml").write_text("a: 1\n")
    import os
    import time
    old = time.time() - 60     # older than the racy window, so it is cached
    os.utime(src / "a.yaml", (old, old))
    cache = digests.load(str(src))
    assert cache == {}
    scan(src, cache=cache)
    digests.save(str(src), cache)
    again = digests.load(str(src))
    assert again == cache and len(again) == 1
    # a cached digest is used: poison it and the scan reports it
    path = str(src / "a.yaml")
    again[path] = (*again[path][:4], "f" * 32, "")
    assert scan(src, cache=again).entries["a.yaml"].md5 == "f" * 32


def test_foreign_or_broken_files_are_an_empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    src = str(tmp_path / "src")
    f = digests.cache_file(src)
    f.parent.mkdir(parents=True)
    f.write_text("{not json")
    assert digests.load(src) == {}
    f.write_text(json.dumps({"version": 1, "source": "/elsewhere", "files": {"x": [1]}}))
    assert digests.load(src) == {}
    f.write_text(json.dumps({"version": 99, "source": src, "files": {"x": [1]}}))
    assert digests.load(src) == {}


def test_unwritable_cache_is_no_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))    # a file where a dir should be
    digests.save(str(tmp_path), {"p": (1, 2, 3, 4, "m")})
    assert digests.load(str(tmp_path)) == {}


def test_a_new_source_prunes_month_old_digests(tmp_path, monkeypatch):
    import os
    import time
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    digests.save(str(tmp_path / "old"), {})
    digests.save(str(tmp_path / "recent"), {})
    old, recent = digests.cache_file(str(tmp_path / "old")), digests.cache_file(str(tmp_path / "recent"))
    month_ago = time.time() - 31 * 24 * 3600
    os.utime(old, (month_ago, month_ago))
    digests.save(str(tmp_path / "new"), {})
    assert not old.exists() and recent.exists()
    assert digests.cache_file(str(tmp_path / "new")).exists()


GOOD = [1, 2, 3, 4, "d41d8cd98f00b204e9800998ecf8427e", ""]


def test_malformed_caches_are_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    src = str(tmp_path / "src")
    f = digests.cache_file(src)
    f.parent.mkdir(parents=True)
    head = {"version": digests.VERSION, "source": src}
    for files in [{"a": 5}, {"a": None}, [["a", GOOD]], {"a": GOOD[:5]}, {"a": GOOD + [1]},
                  {"a": {"0": 1}}, {"a": ["1", 2, 3, 4, GOOD[4], ""]}, {"a": [*GOOD[:4], 5, ""]},
                  {"a": [*GOOD[:5], None]}, {"a": [True, *GOOD[1:]]}, "files", 7]:
        f.write_text(json.dumps({**head, "files": files}))
        assert digests.load(src) == {}, files
    f.write_text(json.dumps([head]))
    assert digests.load(src) == {}
    f.write_text(json.dumps({**head, "files": {"a": GOOD}}))
    assert digests.load(src) == {"a": tuple(GOOD)}


def test_a_malformed_cache_does_not_break_a_scan(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.yaml").write_text("a: 1\n")
    f = digests.cache_file(str(src))
    f.parent.mkdir(parents=True)
    f.write_text(json.dumps({"version": digests.VERSION, "source": str(src),
                             "files": {str(src / "a.yaml"): [1, 2]}}))
    assert list(scan(src, cache=digests.load(str(src))).entries) == ["a.yaml"]


def test_the_cache_is_private(tmp_path, monkeypatch):
    import os
    import stat
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    old = os.umask(0o022)     # a usual umask: what is not asked for stays readable
    try:
        (tmp_path / "cache" / "kubectl-gitops-run").mkdir(parents=True, mode=0o755)  # an older one
        digests.save(str(tmp_path), {"p": tuple(GOOD)})
    finally:
        os.umask(old)
    f = digests.cache_file(str(tmp_path))
    mode = {p: stat.S_IMODE(p.stat().st_mode) for p in (f, f.parent, f.parent.parent)}
    assert mode == {f: 0o600, f.parent: 0o700, f.parent.parent: 0o700}
    assert digests.load(str(tmp_path)) == {"p": tuple(GOOD)}


def test_a_large_cache_is_written_in_slices_and_read_back(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache = {f"/src/d{i // 100}/f{i} é": (i, i + 1, i + 2, 10**18 + i, f"{i:032x}", "")
             for i in range(digests.WRITE_SLICE * 2 + 7)}
    digests.save("/src", cache)
    json.loads(digests.cache_file("/src").read_text())      # one valid JSON document
    assert digests.load("/src") == cache
    digests.save("/src", {})
    assert digests.load("/src") == {}
