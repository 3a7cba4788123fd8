"""The snapshot's revision (source-controller's Bucket index digest) and plan."""
from __future__ import annotations

import hashlib

from kubectl_gitops_run.core.snapshot import Plan, plan, revision
from kubectl_gitops_run.core.units import short_revision


def test_revision_of_a_known_input():
    etags = {"b/x.yaml": "0cc175b9c0f1b6a831c399e269772661",
             "a.yaml": "92eb5ffee6ae2fec3ad71c777531578f"}
    hashed = (b"a.yaml 92eb5ffee6ae2fec3ad71c777531578f\n"
              b"b/x.yaml 0cc175b9c0f1b6a831c399e269772661\n")
    assert revision(etags) == "sha256:" + hashlib.sha256(hashed).hexdigest()
    assert revision(dict(reversed(list(etags.items())))) == revision(etags)
    assert revision({}) == "sha256:" + hashlib.sha256(b"").hexdigest()


def test_revision_sorts_by_utf8_bytes():
    etags = {"\u00e9.yaml": "1", "z.yaml": "2", "Z.yaml": "3", "a-b": "4", "a/b": "5"}
    lines = sorted(f"{k} {v}\n".encode() for k, v in etags.items())
    by_key = sorted(etags, key=lambda k: k.encode())
    hashed = b"".join(f"{k} {etags[k]}\n".encode() for k in by_key)
    assert revision(etags) == "sha256:" + hashlib.sha256(hashed).hexdigest()
    assert by_key == ["Z.yaml", "a-b", "a/b", "z.yaml", "\u00e9.yaml"]
    assert lines[0].startswith(b"Z.yaml")


def test_revision_changes_with_any_key_or_etag():
    base = {"a": "1", "b": "2"}
    assert revision(base) != revision({"a": "1", "b": "3"})
    assert revision(base) != revision({"a": "1", "c": "2"})
    assert revision(base) != revision({"a": "1"})




# --- plan ------------------------------------------------------------------------

def test_plan_classifies_and_sorts():
    local = {"new-b": "1", "new-a": "2", "same": "3", "edited": "4", "Quoted": "abc"}
    remote = {"same": "3", "edited": "5", "gone-z": "6", "gone-a": "7", "Quoted": '"ABC"'}
    p = plan(local, remote)
    assert p == Plan(added=["new-a", "new-b"], changed=["edited"], removed=["gone-a", "gone-z"])
    assert p.upload == ["new-a", "new-b", "edited"]
    assert not p.empty
    assert p.summary() == "+2 ~1 -2"


def test_empty_plan():
    p = plan({"a": "1"}, {"a": "1"})
    assert p.empty and p.upload == [] and p.summary() == "+0 ~0 -0"
    assert plan({}, {"x": "1"}).removed == ["x"] and not plan({}, {"x": "1"}).empty


def test_short_revision():
    assert short_revision("sha256:" + "ab" * 32) == "sha256:abababab"
    assert short_revision(None) == ""
    assert short_revision("0123456789") == "01234567"
