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
    again[path] = (*again[path][:4], "f" * 32)
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
