"""The plugin's own health verdict: what it watches, and how it reads pods."""
from kubectl_gitops_run.core import flux, verdict
from kubectl_gitops_run.core.inventory import Ref


def ref(kind, group="", version="v1", namespace="dev", name="x"):
    return Ref(namespace, name, group, version, kind)


def test_plan_watches_known_kinds_and_leaves_custom_resources_to_flux():
    deploy, pvc = ref("Deployment", "apps"), ref("PersistentVolumeClaim")
    cm, ns = ref("ConfigMap"), ref("Namespace", namespace="")
    custom = ref("Certificate", "cert-manager.io")
    old_api = ref("Deployment", "apps", "v1beta1")
    assert verdict.plan([deploy, cm, ns, pvc]) == ([deploy, pvc], [])
    assert verdict.plan([deploy, custom, old_api]) == ([deploy], [custom, old_api])


def test_pod_selector_only_from_match_labels():
    assert verdict.pod_selector({"spec": {"selector": {"matchLabels": {"b": "2", "a": "1"}}}}) \
        == "a=1,b=2"
    assert verdict.pod_selector({"spec": {"selector": {
        "matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b"}]}}}) is None
    assert verdict.pod_selector({"spec": {}}) is None and verdict.pod_selector(None) is None


def pod(name, reason=None, deleting=False):
    meta = {"name": name, **({"deletionTimestamp": "2026-01-01T00:00:00Z"} if deleting else {})}
    state = {"waiting": {"reason": reason}} if reason else {"running": {}}
    return {"metadata": meta, "status": {"phase": "Running", "containerStatuses": [
        {"name": "web", "state": state}]}}


def test_stuck_pod_names_the_pod_and_reason_and_skips_leaving_pods():
    assert verdict.stuck_pod([pod("a"), pod("b", "CrashLoopBackOff")]) == \
        "pod b: container web CrashLoopBackOff"
    assert verdict.stuck_pod([pod("a", "ImagePullBackOff", deleting=True)]) is None
    assert verdict.stuck_pod([pod("a", "ContainerCreating")]) is None


def test_disagreement_is_said_only_when_flux_differs():
    healthy, failing = verdict.Verdict(True), verdict.Verdict(False, "Deployment dev/x: boom")
    assert verdict.disagreement(None, False) == ""
    assert verdict.disagreement(healthy, True) == "" and verdict.disagreement(failing, False) == ""
    assert "Flux's health check disagrees" in verdict.disagreement(healthy, False)
    assert "boom" in verdict.disagreement(failing, True)


def test_describe():
    assert verdict.describe(verdict.Verdict(True, "", 0.42), 3) == \
        "healthy: 3 objects Current, 0.4s after Flux applied them; Flux's check follows"
    assert "boom" in verdict.describe(verdict.Verdict(False, "boom", 1.0), 3)


def ks(status, message):
    return {"status": {"conditions": [{"type": "Healthy", "status": status,
                                       "reason": "Progressing", "message": message}]}}


def test_checking_health_names_exactly_the_revision():
    rev = "sha256:abc"
    running = f"Running health checks for revision {rev} with a timeout of 2m0s"
    assert flux.checking_health(ks("Unknown", running), rev)
    assert not flux.checking_health(ks("Unknown", running), "sha256:ab")
    assert not flux.checking_health(ks("True", running), rev)
    assert not flux.checking_health({"status": {}}, rev) and not flux.checking_health(None, rev)
