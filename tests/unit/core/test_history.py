"""Sync history as Events on the Bucket (core/history.py)."""
from __future__ import annotations

from kubectl_gitops_run.core import history

REV = "sha256:" + "ab" * 32


def test_a_sync_event_names_the_bucket_and_carries_its_counts():
    ev = history.sync_event("dev", "web", now="2026-12-02T10:00:00Z", who="ana@laptop",
                            bucket_uid="u1", counts=(2, 1, 0), revision=REV)
    assert ev["reason"] == "Synced" and ev["type"] == "Normal"
    assert ev["involvedObject"] == {"kind": "Bucket", "apiVersion": "source.toolkit.fluxcd.io/v1",
                                    "name": "gitops-run-web", "namespace": "dev", "uid": "u1"}
    assert ev["message"] == "+2 ~1 -0 files, revision sha256:abababab, by ana@laptop"
    assert ev["metadata"]["labels"]["kubectl-gitops-run.io/session"] == "web"


def test_a_failed_sync_says_why():
    ev = history.sync_event("dev", "web", now="t", who="ana@laptop", bucket_uid=None,
                            error="bad YAML in a.yaml" + "x" * 5000)
    assert ev["reason"] == "SyncFailed" and ev["type"] == "Warning"
    assert "uid" not in ev["involvedObject"]
    assert ev["message"].startswith("sync by ana@laptop failed: bad YAML in a.yaml")
    assert len(ev["message"]) <= history.MAX_MESSAGE


def test_entries_read_back_newest_first_and_only_this_session():
    a = history.sync_event("dev", "web", now="2026-12-02T10:00:00Z", who="ana@l",
                           bucket_uid=None, counts=(3, 0, 0), revision=REV)
    b = history.sync_event("dev", "web", now="2026-12-02T10:05:00Z", who="bo@l",
                           bucket_uid=None, error="boom")
    other = history.sync_event("dev", "api", now="2026-12-02T10:09:00Z", who="x@l",
                               bucket_uid=None, counts=(1, 0, 0), revision=REV)
    flux = {"reason": "NewArtifact", "involvedObject": {"kind": "Bucket", "name": "gitops-run-web"}}
    got = history.entries([a, other, flux, b], "web")
    assert [e["ok"] for e in got] == [False, True]
    assert got[1] | {"message": ""} == {"time": "2026-12-02T10:00:00Z", "ok": True,
                                        "revision": REV, "added": 3, "changed": 0, "removed": 0,
                                        "user": "ana@l", "message": ""}


def test_event_time_prefers_the_latest_fact():
    assert history.event_time({"series": {"lastObservedTime": "s"}, "lastTimestamp": "l"}) == "s"
    assert history.event_time({"eventTime": "e", "metadata": {"creationTimestamp": "c"}}) == "e"
    assert history.event_time({"metadata": {"creationTimestamp": "c"}}) == "c"
