"""What Flux fetches of a snapshot: the directories a build reads, the
Bucket's ignore rules that keep them, and the revision of the kept keys."""
from __future__ import annotations

import fnmatch

import pytest

from kubectl_gitops_run.core import fetchscope, preflight
from kubectl_gitops_run.core.snapshot import Entry, Snapshot, revision


def docs_of(files: dict[str, dict]) -> dict[str, list]:
    return {k: [preflight.essentials(v)] for k, v in files.items()}


def test_a_plain_directory_is_read_alone_with_the_session_files():
    keys = {"deploy/cm.yaml", "deploy/sub/d.yaml", "data/0.txt", "README.md"}
    assert fetchscope.scope({}, keys, "deploy") == (".gitops-run", "deploy")


def test_the_root_is_the_whole_tree():
    assert fetchscope.scope({}, {"a.yaml"}, "") == ()


def test_bases_outside_the_path_are_followed():
    files = {"apps/dev/kustomization.yaml": {"resources": ["../base", "extra.yaml"]},
             "apps/base/kustomization.yaml": {"resources": ["../../common/cm.yaml", "d.yaml"],
                                              "components": ["https://example.com/c"]}}
    keys = set(files) | {"apps/dev/extra.yaml", "apps/base/d.yaml", "common/cm.yaml",
                         "big/0.bin"}
    assert fetchscope.scope(docs_of(files), keys, "apps/dev") == (
        ".gitops-run", "apps/base", "apps/dev", "common")


@pytest.mark.parametrize("kustomization", [
    {"resources": ["../.."]},                                        # the root
    {"configMapGenerator": [{"name": "c", "files": ["../data/x"]}]},   # another field leaves
])
def test_an_unbounded_build_fetches_everything(kustomization):
    files = {"a/b/kustomization.yaml": kustomization}
    assert fetchscope.scope(docs_of(files), set(files) | {"data/x"}, "a/b") == ()


def test_a_kustomization_that_did_not_parse_fetches_everything():
    assert fetchscope.scope({}, {"a/kustomization.yaml"}, "a") == ()


def gitignored(key: str, rules: str) -> bool:
    """The rules' verdict on a file key, the last match winning, for the two
    shapes ignore_rules writes: `/p/*` (an entry of p, and what is below it)
    and `!/p/` (p and what is below it)."""
    verdict = False
    parts = key.split("/")
    for line in rules.splitlines():
        negate, pattern = line.startswith("!"), line.lstrip("!").strip("/")
        pattern = pattern.rstrip("/")
        depth = len(pattern.split("/"))
        if len(parts) > depth - (0 if line.endswith("/") else 1) and \
                fnmatch.fnmatchcase("/".join(parts[:depth]), pattern):
            verdict = not negate
    return verdict


def test_the_ignore_rules_keep_exactly_the_scope():
    dirs = (".gitops-run", "apps/base", "apps/dev", "common/x/y")
    rules = fetchscope.ignore_rules(dirs)
    assert rules.splitlines()[0] == "/*"
    kept = ["apps/dev/k.yaml", "apps/base/sub/d.yaml", "common/x/y/cm.yaml",
            ".gitops-run/namespace/kustomization.yaml"]
    dropped = ["README.md", "apps/prod/k.yaml", "apps/f.yaml", "common/x/z.yaml",
               "common/x/yy/a.yaml", "data/0.bin"]
    assert [k for k in kept + dropped if not gitignored(k, rules)] == kept
    assert fetchscope.ignore_rules(()) is None


def test_the_revision_is_of_the_kept_keys():
    entries = {k: Entry(k, "/s/" + k, 1, f"{i:032x}")
               for i, k in enumerate(["deploy/a.yaml", "data/b.txt", ".gitops-run/n.yaml"])}
    whole = Snapshot("/s", dict(entries))
    scoped = Snapshot("/s", dict(entries), (".gitops-run", "deploy"))
    assert whole.revision == revision(whole.etags())
    assert scoped.revision == revision({k: e.md5 for k, e in entries.items() if k != "data/b.txt"})
    assert scoped.fetched_keys() == ["deploy/a.yaml", ".gitops-run/n.yaml"]


def test_the_fetch_timeout_grows_with_the_objects():
    assert fetchscope.fetch_timeout(100) == "60s"
    assert fetchscope.fetch_timeout(10_000) == "200s"
