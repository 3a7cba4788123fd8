"""What a session's Kustomization applied, and what `down` keeps."""
from __future__ import annotations

from kubectl_gitops_run.core import inventory
from kubectl_gitops_run.core.inventory import Ref

SESSION = "2026-12-01T10:00:00Z"
KS = {"status": {"inventory": {"entries": [
    {"id": "dev_hello__ConfigMap", "v": "v1"},
    {"id": "_dev__Namespace", "v": "v1"},
    {"id": "dev_web_apps_Deployment", "v": "v1"},
    {"id": "_widgets.example.com_apiextensions.k8s.io_CustomResourceDefinition", "v": "v1"},
    {"id": "garbage", "v": "v1"},
]}}}


def obj(created: str, **annotations) -> dict:
    return {"metadata": {"creationTimestamp": created, "annotations": annotations}}


def test_entries_parse_flux_ids():
    refs = inventory.entries(KS)
    assert refs[0] == Ref("dev", "hello", "", "v1", "ConfigMap")
    assert refs[2].api_version == "apps/v1" and refs[0].api_version == "v1"
    assert str(refs[1]) == "Namespace dev" and str(refs[2]) == "Deployment.apps dev/web"
    assert len(refs) == 4 and inventory.entries(None) == [] and inventory.entries({}) == []


def test_keep_reasons():
    cm, ns, deploy, crd = inventory.entries(KS)
    later = obj("2026-12-01T10:00:05Z")
    assert inventory.keep_reason(cm, later, SESSION) is None
    assert inventory.keep_reason(ns, later, SESSION) == "a Namespace is never pruned"
    assert "never pruned" in inventory.keep_reason(crd, later, SESSION)
    assert inventory.keep_reason(deploy, obj("2026-11-30T09:00:00Z"), SESSION) == \
        "it existed before the session"
    annotated = obj("2026-12-01T11:00:00Z", **{"kustomize.toolkit.fluxcd.io/prune": "disabled"})
    assert "prune: disabled" in inventory.keep_reason(cm, annotated, SESSION)
    assert inventory.keep_reason(cm, None, SESSION) is None            # already gone
    assert inventory.keep_reason(cm, obj("not a time"), SESSION) is None


def test_keep_patch():
    assert inventory.keep_patch() == {
        "metadata": {"annotations": {"kustomize.toolkit.fluxcd.io/prune": "disabled"}}}
