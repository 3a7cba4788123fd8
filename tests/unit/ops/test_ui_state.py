"""The ui's state (ops/ui.py): a change in the store reaches every open feed,
once, with no polling; what it keeps holds no Secret data."""
from __future__ import annotations

import json

import pytest

from kubectl_gitops_run.errors import UserError
from kubectl_gitops_run.ops.ui import Store, UiApp

KS = ("kustomize.toolkit.fluxcd.io", "Kustomization")


def kustomization(name="web"):
    return {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": f"gitops-run-{name}", "namespace": "dev",
                         "labels": {"app.kubernetes.io/managed-by": "kubectl-gitops-run",
                                    "kubectl-gitops-run.io/session": name}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "message": "ok"}]}}


def test_a_change_reaches_every_feed_within_a_second():
    app = UiApp(None, None).start()
    try:
        feeds = [app.subscribe({"view": "list"}) for _ in range(3)]
        assert all(json.loads(f.next(1))["sessions"] == [] for f in feeds)
        app.store.reset(KS, None, [kustomization()])
        for feed in feeds:
            doc = json.loads(feed.next(1))
            assert [s["name"] for s in doc["sessions"]] == ["web"]
        assert feeds[0].next(0.2) is None       # nothing new: nothing sent
        app.store.event(KS, "DELETED", kustomization())
        assert json.loads(feeds[1].next(1))["sessions"] == []
    finally:
        app.close()


def test_a_reset_of_one_namespace_keeps_the_others():
    store = Store()
    other = kustomization("api")
    other["metadata"]["namespace"] = "prod"
    store.reset(KS, None, [kustomization(), other])
    store.reset(KS, "dev", [])
    assert [o["metadata"]["name"] for o in store.world().objects(*KS)] == ["gitops-run-api"]


def test_the_store_keeps_no_secret_data():
    store = Store()
    store.event(("", "Secret"), "ADDED", {"kind": "Secret", "data": {"k": "c2VjcmV0"},
                                          "metadata": {"name": "s", "namespace": "dev"}})
    assert "c2VjcmV0" not in json.dumps(store.world().objects("", "Secret"))


def test_files_are_asked_of_a_bucket_only_once_it_holds_a_snapshot():
    app = UiApp(None, "dev")
    with pytest.raises(UserError, match="has no Bucket"):
        app.get("files", {"namespace": "dev", "name": "web"})
    bucket = {**kustomization(), "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "Bucket",
              "spec": {}}
    app.store.reset(("source.toolkit.fluxcd.io", "Bucket"), None, [bucket])
    status, doc = app.get("files", {"namespace": "dev", "name": "web"})  # never synced
    assert status == 200 and doc["count"] == 0 and doc["files"] == []
    with pytest.raises(UserError, match="not the one this page serves"):
        app.get("files", {"namespace": "prod", "name": "web"})
