"""What the ui page shows, from watched objects (core/ui.py)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from kubectl_gitops_run.core import history, ui

from .objects import meta, pod, static

NS, T0 = "dev", "2026-12-02T10:00:00Z"
REV = "sha256:" + "cd" * 32
INVENTORY = {"entries": [{"id": "dev_web_apps_Deployment", "v": "v1"},
                         {"id": "dev_cfg__ConfigMap", "v": "v1"},
                         {"id": "dev_creds__Secret", "v": "v1"}]}


def ks(ready="True", message="Applied revision", reconciling=None, inventory=INVENTORY):
    conditions = [{"type": "Ready", "status": ready, "reason": "X", "message": message}]
    if reconciling:
        conditions.append({"type": "Reconciling", "status": "True", "reason": reconciling})
    return {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": meta("web", NS, T0, annotations=static("/src/web"), generation=1),
            "spec": {}, "status": {"observedGeneration": 1, "conditions": conditions,
                                   "inventory": inventory, "lastAppliedRevision": REV}}


def deployment(ready=1):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": NS, "generation": 1},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
                       "readyReplicas": ready, "availableReplicas": ready}}


def crashing_pod():
    return {"kind": "Pod", "metadata": {"name": "web-1", "namespace": NS, "labels": {"app": "web"}},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "app", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}


def world(*objs, watched=None):
    by_kind: dict = {}
    for o in objs:
        key = (ui.group_of(o.get("apiVersion", "v1")), o["kind"])
        by_kind.setdefault(key, {})[(o["metadata"].get("namespace", ""), o["metadata"]["name"])] = o
    return ui.World(by_kind, watched)


def bucket_pod(ready=True):
    p = pod("web", NS, "gitops-run-web-1", T0, ready)
    p["kind"] = "Pod"
    p["metadata"]["labels"]["app.kubernetes.io/component"] = "bucket-server"
    return p


def synced(error=None, when=T0):
    return history.sync_event(NS, "web", now=when, who="ana@laptop", bucket_uid=None,
                              counts=(1, 0, 0), revision=REV, error=error)


def test_list_row_has_ls_fields_health_and_markers():
    w = world(ks(), deployment(), bucket_pod(), {"kind": "ConfigMap", "metadata": {
        "name": "cfg", "namespace": NS}}, synced(), synced("boom", "2026-12-02T10:01:00Z"))
    doc = ui.session_list(w)
    (row,) = doc["sessions"]
    assert row["name"] == "web" and row["source"] == "/src/web" and row["ready"] == "True"
    assert row["health"]["status"] == "Current"
    assert row["lastSyncFailed"] is True and row["bucketReady"] is True
    assert doc["namespaces"] == [NS]


def test_health_is_the_worst_of_flux_and_the_inventory():
    assert ui.session_list(world(ks(), deployment(ready=0)))["sessions"][0]["health"] == \
        {"status": "InProgress", "reason": "0/1 replicas ready"}
    failed = ks("False", "Deployment/dev/web dry-run failed", reconciling="ProgressingWithRetry")
    assert ui.session_list(world(failed))["sessions"][0]["health"] == \
        {"status": "Failed", "reason": "Deployment/dev/web dry-run failed"}
    trying = ks("False", "x", reconciling="Progressing")
    assert ui.session_list(world(trying))["sessions"][0]["health"]["status"] == "InProgress"


def test_a_missing_bucket_pod_is_marked():
    row = ui.session_list(world(ks(), bucket_pod(ready=False)))["sessions"][0]
    assert row["bucketReady"] is False


def test_detail_shows_inventory_pods_history_and_events():
    warn = {"kind": "Event", "metadata": {"name": "e1", "namespace": NS}, "type": "Warning",
            "reason": "BackOff", "message": "restarting", "lastTimestamp": "2026-12-02T10:02:00Z",
            "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": NS}}
    w = world(ks(), deployment(0), crashing_pod(), bucket_pod(), synced(), warn,
              watched={("apps", "Deployment"), ("", "Pod"), ("", "Event")})
    doc = ui.session_detail(w, NS, "web")
    assert doc["found"] and doc["session"]["name"] == "web"
    kinds = {i["kind"]: i for i in doc["inventory"]}
    assert kinds["Deployment"]["pods"][0]["waitingReason"] == "CrashLoopBackOff"
    assert kinds["ConfigMap"]["health"]["status"] == "Current"   # ConfigMaps: at once
    assert kinds["Secret"]["health"]["status"] == "Current"      # never read, applied by Flux
    assert [e["reason"] for e in doc["events"]][:2] == ["BackOff", "Synced"]
    assert doc["history"][0]["added"] == 1
    assert doc["conditions"]["Kustomization"][0]["message"] == "Applied revision"
    assert doc["revisions"]["applied"] == REV


def test_a_gone_session_is_not_found():
    assert ui.session_detail(world(), NS, "web")["found"] is False


def test_redact_drops_secret_data_and_last_applied():
    secret = {"kind": "Secret", "data": {"secretkey": "c2VjcmV0"}, "stringData": {"k": "v"},
              "metadata": {"name": "s", "managedFields": [{}], "annotations": {
                  ui.LAST_APPLIED: '{"data": {"secretkey": "c2VjcmV0"}}', "keep": "me"}}}
    text = json.dumps(ui.redact(secret))
    assert "c2VjcmV0" not in text and '"v"' not in text and "managedFields" not in text
    assert "keep" in text
    cm = {"kind": "ConfigMap", "data": {"a": "b"}, "metadata": {"name": "c"}}
    assert ui.redact(cm)["data"] == {"a": "b"}


def helm_release(ready="True", message="Helm install succeeded"):
    return {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": meta("web", NS, T0, annotations=static("/src/chart"), generation=1),
            "spec": {}, "status": {
                "observedGeneration": 1, "helmChart": f"{NS}/{NS}-web", "inventory": INVENTORY,
                "conditions": [{"type": "Ready", "status": ready, "reason": "X",
                                "message": message}],
                "lastAttemptedRevision": "0.1.0+cdcdcdcdcdcd",
                "history": [{"name": "web", "namespace": NS, "version": 2, "status": "deployed",
                             "chartName": "web", "chartVersion": "0.1.0+cdcdcdcdcdcd"}]}}


def test_a_helm_release_session_shows_its_release_not_a_missing_kustomization():
    chart_event = {"kind": "Event", "metadata": {"name": "e2", "namespace": NS},
                   "type": "Normal", "reason": "ChartPackageSucceeded", "message": "packaged",
                   "lastTimestamp": T0,
                   "involvedObject": {"kind": "HelmChart", "name": f"{NS}-web", "namespace": NS}}
    w = world(helm_release(), deployment(), chart_event)
    (row,) = ui.session_list(w)["sessions"]
    assert row["kind"] == "HelmRelease" and row["health"]["status"] == "Current"
    doc = ui.session_detail(w, NS, "web")
    assert doc["deployer"] == "HelmRelease" and "Kustomization" not in doc["conditions"]
    assert doc["conditions"]["HelmRelease"][0]["message"] == "Helm install succeeded"
    assert doc["release"]["status"] == "deployed" and doc["release"]["version"] == 2
    assert doc["revisions"]["applied"] == "0.1.0+cdcdcdcdcdcd"
    assert {i["kind"] for i in doc["inventory"]} == {"Deployment", "ConfigMap", "Secret"}
    assert "ChartPackageSucceeded" in [e["reason"] for e in doc["events"]]
    failed = world(helm_release("False", "Helm upgrade failed: boom"))
    assert ui.session_list(failed)["sessions"][0]["health"] == \
        {"status": "Failed", "reason": "Helm upgrade failed: boom"}


def test_a_session_with_neither_deployer_says_so():
    b = {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "Bucket",
         "metadata": meta("web", NS, T0, annotations=static("/src/web"))}
    health = ui.session_list(world(b))["sessions"][0]["health"]
    assert health["status"] == "Failed" and "no Kustomization or HelmRelease" in health["reason"]


def test_the_forwards_of_a_running_loop_reach_the_page():
    bucket = {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "Bucket",
              "metadata": meta("web", NS, T0, annotations={
                  **static("/src/web"), "kubectl-gitops-run.io/forwards.x1": json.dumps(
                      [{"url": "http://127.0.0.1:8080", "target": "svc/web:80",
                        "state": "forwarding"}])})}
    doc = ui.session_detail(world(ks(), bucket), NS, "web")
    assert doc["session"]["forwards"][0]["url"] == "http://127.0.0.1:8080"
    assert ui.session_list(world(ks(), bucket))["sessions"][0]["forwards"][0]["state"] == \
        "forwarding"


def test_a_killed_loops_forwards_leave_the_page_when_they_expire():
    rows = [{"url": "http://127.0.0.1:8080", "target": "svc/web:80", "state": "forwarding",
             "expires": "2026-12-02T10:00:00Z"}]
    bucket = {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "Bucket",
              "metadata": meta("web", NS, T0, annotations={
                  **static("/src/web"), "kubectl-gitops-run.io/forwards.x1": json.dumps(rows)})}
    by_kind = world(ks(), bucket).by_kind
    before = ui.World(by_kind, now=datetime(2026, 12, 2, 9, 59, 59, tzinfo=timezone.utc))
    after = ui.World(by_kind, now=datetime(2026, 12, 2, 10, 0, 1, tzinfo=timezone.utc))
    assert ui.session_list(before)["sessions"][0]["forwards"][0]["state"] == "forwarding"
    assert ui.session_list(after)["sessions"][0]["forwards"] == []
    assert ui.session_detail(after, NS, "web")["session"]["forwards"] == []


def test_files_are_marked_against_the_snapshot_before():
    current = {"a.yaml": ("e1", 10), "b.yaml": ("e2", 20), "c.yaml": ("e3", 5)}
    previous = {"a.yaml": ("e1", 10), "b.yaml": ("old", 19), "gone.yaml": ("e9", 1)}
    doc = ui.files_view(current, previous)
    assert [(f["path"], f["size"], f["change"]) for f in doc["files"]] == [
        ("a.yaml", 10, None), ("b.yaml", 20, "changed"), ("c.yaml", 5, "added")]
    assert doc["removed"] == ["gone.yaml"] and doc["count"] == 3 and doc["bytes"] == 35
    first = ui.files_view(current, None)        # the first sync: the other slot is empty
    assert {f["change"] for f in first["files"]} == {"added"}
    assert ui.files_view(None, None)["problem"].startswith("the bucket server holds no")


def test_a_long_file_list_is_cut_but_counted():
    many = {f"f{i:05}": ("e", 1) for i in range(ui.MAX_FILES + 5)}
    doc = ui.files_view(many, many)
    assert len(doc["files"]) == ui.MAX_FILES and doc["count"] == ui.MAX_FILES + 5


def test_the_object_flux_rejected_is_named():
    rejected = ks("False", "ConfigMap/dev/bad dry-run failed (BadRequest): invalid data")
    doc = ui.session_detail(world(rejected), NS, "web")
    assert doc["failure"] == {"object": "ConfigMap/dev/bad",
                              "message": "ConfigMap/dev/bad dry-run failed (BadRequest): "
                                         "invalid data"}
    grouped = ks("False", "Widget.example.com/dev/w dry-run failed: no matches for kind")
    assert ui.failure(grouped)["object"] == "Widget.example.com/dev/w"
    assert ui.failure(ks("False", "kustomize build failed: accumulating resources"))["object"] \
        is None
    assert ui.session_detail(world(ks()), NS, "web")["failure"] is None


def test_the_sessions_own_files_are_marked_and_the_journal_left_out():
    from hashlib import md5

    from kubectl_gitops_run.core import namespaces
    made = namespaces.session_files(["web.yaml"], "", "dev")
    listing = {k: (md5(t.encode()).hexdigest(), len(t)) for k, t in made.items()}
    listing.update({"web.yaml": ("e1", 10), ".kubectl-gitops-run/journal/": ("j", 99)})
    doc = ui.files_view(listing, None)
    marked = {f["path"]: f["generated"] for f in doc["files"]}
    assert marked == {".gitops-run/namespace/kustomization.yaml": True,
                      "kustomization.yaml": True, "web.yaml": False}
    assert doc["count"] == 1 and doc["generated"] == 2
    mine = {**listing, "kustomization.yaml": ("users-own", 50)}     # the user's own
    assert ui.files_view(mine, None)["count"] == 2
