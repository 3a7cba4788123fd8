"""Sessions: our labelled objects grouped into one record per session.

The objects below are plain dicts shaped like what the API server returns."""
from __future__ import annotations

import pytest

from kubectl_gitops_run.core import sessions as catalog

from .objects import A, meta, pod, static

REV = "sha256:" + "3f" * 32


def objects():
    web_static = static("/src/web", target="dev")
    api_static = static("/src/api", host="ci", user="bot", path="overlays/prod", target="prod")
    return {
        "Kustomization": [
            {"metadata": meta("web", "dev", "2026-11-24T10:00:05Z", annotations=web_static),
             "status": {"conditions": [{"type": "Ready", "status": "True",
                                        "message": "Applied revision: " + REV}],
                        "inventory": {"entries": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}}},
            {"metadata": meta("api", "team", "2026-11-23T08:00:09Z", annotations=api_static),
             "status": {"conditions": [{"type": "Ready", "status": "False",
                                        "message": "health check\n failed"}]}},
        ],
        "Bucket": [
            {"metadata": meta("web", "dev", "2026-11-24T10:00:04Z", annotations={
                **web_static, A + "revision": REV, A + "files": "12", A + "bytes": "3456",
                A + "last-sync": "2026-11-24T11:00:00Z"})},
            {"metadata": meta("api", "team", "2026-11-23T08:00:08Z", annotations={
                **api_static, A + "files": "not-a-number"})},
        ],
        "Deployment": [
            {"metadata": meta("web", "dev", "2026-11-24T10:00:01Z", annotations=web_static)},
            {"metadata": meta("api", "team", "2026-11-23T08:00:07Z", annotations=api_static)},
            # half-created: up stopped after the Deployment
            {"metadata": meta("half", "dev", "2026-11-24T12:00:00Z",
                              annotations=static("/src/half"))},
        ],
        "Service": [
            {"metadata": meta("web", "dev", "2026-11-24T10:00:00Z", annotations=web_static)},
            {"metadata": meta("api", "team", "2026-11-23T08:00:06Z", annotations=api_static)},
        ],
        "Pod": [
            pod("web", "dev", "gitops-run-web-old", "2026-11-24T10:00:02Z", ready=True),
            pod("web", "dev", "gitops-run-web-new", "2026-11-24T10:30:00Z", ready=False),
            pod("web", "dev", "gitops-run-web-gone", "2026-11-24T10:40:00Z", ready=True,
                deleting=True),
        ],
    }


@pytest.fixture
def records():
    return {(r["namespace"], r["name"]): r for r in catalog.sessions(objects())}


def test_one_record_per_session_sorted():
    out = catalog.sessions(objects())
    assert [(r["namespace"], r["name"]) for r in out] == [
        ("dev", "half"), ("dev", "web"), ("team", "api")]


def test_complete_session(records):
    assert records["dev", "web"] == {
        "name": "web", "namespace": "dev", "kind": "Kustomization",
        "source": "/src/web", "path": None, "targetNamespace": "dev",
        "host": "laptop", "user": "ana",
        "created": "2026-11-24T10:00:00Z",          # the Service, the earliest
        "lastSync": "2026-11-24T11:00:00Z", "revision": REV, "files": 12, "bytes": 3456,
        "ready": "True", "status": "Applied revision: " + REV,
        "bucketPod": "gitops-run-web-old",          # Ready beats newer-but-not-Ready
        "objectsApplied": 3, "decrypts": False, "forwards": [],
    }


def test_failing_session(records):
    r = records["team", "api"]
    assert (r["source"], r["host"], r["user"]) == ("/src/api", "ci", "bot")
    assert r["path"] == "overlays/prod" and r["targetNamespace"] == "prod"
    assert r["created"] == "2026-11-23T08:00:06Z"
    assert r["ready"] == "False" and r["status"] == "health check failed"
    assert r["files"] is None and r["bytes"] is None and r["revision"] is None
    assert r["lastSync"] is None
    assert r["bucketPod"] is None
    assert r["objectsApplied"] is None


def test_half_created_session(records):
    r = records["dev", "half"]
    assert r["source"] == "/src/half" and r["user"] == "ana"
    assert r["created"] == "2026-11-24T12:00:00Z"
    assert r["ready"] is None
    assert r["status"].startswith("incomplete")
    assert "up" in r["status"] and "down" in r["status"]
    assert r["revision"] is None and r["objectsApplied"] is None and r["bucketPod"] is None
    assert r["kind"] is None


def test_chart_session_reads_its_helm_release():
    objs = {"HelmRelease": [
        {"metadata": meta("chart", "dev", "2026-11-24T10:00:05Z", annotations=static("/src/c")),
         "status": {"conditions": [{"type": "Ready", "status": "True",
                                    "message": "Helm install succeeded"}],
                    "inventory": {"entries": [{"id": "a"}, {"id": "b"}]}}}]}
    [r] = catalog.sessions(objs)
    assert (r["kind"], r["source"], r["ready"]) == ("HelmRelease", "/src/c", "True")
    assert r["status"] == "Helm install succeeded" and r["objectsApplied"] == 2


def test_foreign_names_and_unlabelled_objects_are_not_sessions():
    objs = {"Deployment": [
        {"metadata": {"name": "web", "namespace": "dev", "labels": {"app": "web"}}},
        {"metadata": meta("x", "dev", "2026-11-24T10:00:00Z", name="not-ours",
                          annotations=static("/elsewhere"))},
    ]}
    [r] = catalog.sessions(objs)
    assert r["name"] == "x"
    assert r["source"] is None          # facts come only from the object named gitops-run-x


def test_same_name_in_two_namespaces_stays_apart():
    objs = {"Deployment": [
        {"metadata": meta("web", "a", "2026-11-24T10:00:00Z", annotations=static("/one"))},
        {"metadata": meta("web", "b", "2026-11-24T09:00:00Z", annotations=static("/two"))}]}
    out = catalog.sessions(objs)
    assert [(r["namespace"], r["source"], r["created"]) for r in out] == [
        ("a", "/one", "2026-11-24T10:00:00Z"), ("b", "/two", "2026-11-24T09:00:00Z")]


def test_static_facts_fall_back_to_other_objects():
    objs = objects()
    objs["Kustomization"][0]["metadata"]["annotations"] = {}
    r = {x["name"]: x for x in catalog.sessions(objs)}["web"]
    assert r["source"] == "/src/web" and r["host"] == "laptop"


# -- which directory ------------------------------------------------------------------

@pytest.mark.parametrize("source, cwd, expected", [
    ("/src/app", "/src/app", True),
    ("/src/app", "/src/app/sub/deeper", True),
    ("/src/app/", "/src/app", True),
    ("/src/app/./", "/src/app/x", True),
    ("/src/app", "/src/app2", False),
    ("/src/app", "/src/ap", False),
    ("/src/app", "/src", False),
    ("/src/app", "/other/src/app", False),
    (None, "/src/app", False),
    ("", "/src/app", False),
])
def test_contains(source, cwd, expected):
    assert catalog.contains(source, cwd) is expected


def test_by_directory_deepest_first():
    recs = [{"name": "top", "source": "/src"}, {"name": "app", "source": "/src/app"},
            {"name": "app2", "source": "/src/app2"}, {"name": "none", "source": None},
            {"name": "sub", "source": "/src/app/sub"}]
    assert [r["name"] for r in catalog.by_directory(recs, "/src/app/sub/x")] == \
        ["sub", "app", "top"]
    assert [r["name"] for r in catalog.by_directory(recs, "/src/app2")] == ["app2", "top"]
    assert catalog.by_directory(recs, "/elsewhere") == []
