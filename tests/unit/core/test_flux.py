"""flux: reading Bucket and Kustomization status, and what to say when Flux is missing."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from kubectl_gitops_run.core import flux
from kubectl_gitops_run.core.flux import DONE, FAILED, WAITING

REV = "sha256:" + "ab" * 32
OLD = "sha256:" + "cd" * 32


def obj(generation=2, observed=2, conditions=(), **status) -> dict:
    st = dict(status, conditions=list(conditions))
    if observed is not None:
        st["observedGeneration"] = observed
    return {"metadata": {"name": "gitops-run-web", "generation": generation}, "status": st}


def cond(kind="Ready", status="True", message="", reason="Succeeded") -> dict:
    return {"type": kind, "status": status, "reason": reason, "message": message}


# -- conditions -------------------------------------------------------------------

def test_condition_ready_message():
    o = obj(conditions=[cond("Reconciling", "True", "working"),
                        cond("Ready", "False", "  kustomize build failed:\n  bad\tfile ")])
    assert flux.condition(o)["message"].startswith("  kustomize")
    assert flux.condition(o, "Reconciling")["message"] == "working"
    assert flux.condition(o, "Stalled") is None
    assert flux.ready(o) == "False"
    assert flux.message(o) == "kustomize build failed: bad file"


@pytest.mark.parametrize("o", [None, {}, {"status": None}, {"status": {}},
                               {"status": {"conditions": None}}, {"status": {"conditions": []}}])
def test_condition_absent(o):
    assert flux.condition(o) is None
    assert flux.ready(o) is None
    assert flux.message(o) == ""


def test_message_without_message_field():
    assert flux.message({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}) == ""


def test_request_reconcile():
    now = datetime(2026, 11, 24, 20, 1, 2, 345678, tzinfo=timezone.utc)
    token, patch = flux.request_reconcile(now)
    assert token == "2026-11-24T20:01:02.345678Z"
    assert patch == {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}


def test_request_reconcile_now_is_unique_and_utc():
    before = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)
    token, patch = flux.request_reconcile()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", token)
    assert datetime.strptime(token, "%Y-%m-%dT%H:%M:%S.%fZ") >= before
    assert patch["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"] == token


# -- Bucket -----------------------------------------------------------------------

def test_bucket_done():
    o = obj(artifact={"revision": REV}, conditions=[cond()])
    assert flux.bucket_progress(o, REV) == flux.Progress(DONE)
    assert flux.bucket_progress(o, REV, generation=2).state == DONE
    assert flux.artifact_revision(o) == REV


def test_bucket_right_revision_from_a_stale_spec_waits():
    o = obj(generation=3, observed=2, artifact={"revision": REV}, conditions=[cond()])
    assert flux.bucket_progress(o, REV).state == WAITING
    assert flux.bucket_progress(obj(observed=2, artifact={"revision": REV}), REV,
                                generation=3).state == WAITING
    assert flux.bucket_progress(obj(observed=None, artifact={"revision": REV}), REV).state == WAITING


def test_bucket_other_revision_waits():
    o = obj(artifact={"revision": OLD}, conditions=[cond()])
    assert flux.bucket_progress(o, REV) == flux.Progress(WAITING, "")
    assert flux.bucket_progress(obj(), REV).state == WAITING       # no artifact yet


def test_bucket_not_ready_waits_with_flux_message():
    o = obj(artifact={"revision": OLD},
            conditions=[cond("Ready", "False", "bucket 'snapshot-a' not found", "BucketFailed")])
    assert flux.bucket_progress(o, REV) == flux.Progress(WAITING, "bucket 'snapshot-a' not found")
    stale = obj(generation=5, observed=4, conditions=[cond("Ready", "False", "dial tcp: refused")])
    assert flux.bucket_progress(stale, REV) == flux.Progress(WAITING, "dial tcp: refused")


def test_bucket_deleted_fails():
    p = flux.bucket_progress(None, REV)
    assert p.state == FAILED and "deleted" in p.message


# -- Kustomization --------------------------------------------------------------------

def test_kustomization_done():
    o = obj(lastAppliedRevision=REV, lastAttemptedRevision=REV, conditions=[cond()])
    assert flux.kustomization_progress(o, REV) == flux.Progress(DONE)


@pytest.mark.parametrize("o", [
    obj(lastAppliedRevision=REV, conditions=[cond("Ready", "Unknown")]),        # not Ready yet
    obj(lastAppliedRevision=REV, conditions=[]),                                # no conditions
    obj(generation=3, observed=2, lastAppliedRevision=REV, conditions=[cond()]),  # stale spec
    obj(lastAppliedRevision=OLD, lastAttemptedRevision=OLD, conditions=[cond()]),  # older rev
])
def test_kustomization_waits(o):
    assert flux.kustomization_progress(o, REV).state == WAITING


def test_kustomization_failed_with_message():
    o = obj(lastAppliedRevision=OLD, lastAttemptedRevision=REV,
            conditions=[cond("Ready", "False", "Deployment/web dry-run failed:\n bad spec",
                             "ReconciliationFailed")])
    assert flux.kustomization_progress(o, REV) == \
        flux.Progress(FAILED, "Deployment/web dry-run failed: bad spec")


def test_kustomization_reconciling_is_not_failed_yet():
    o = obj(lastAppliedRevision=OLD, lastAttemptedRevision=REV,
            conditions=[cond("Reconciling", "True", "running health checks", "Progressing"),
                        cond("Ready", "False", "running health checks", "Progressing")])
    p = flux.kustomization_progress(o, REV)
    assert p.state == WAITING
    assert p.message == "running health checks"


def test_kustomization_failure_of_an_older_revision_is_not_ours():
    o = obj(lastAppliedRevision=OLD, lastAttemptedRevision=OLD,
            conditions=[cond("Ready", "False", "old failure")])
    assert flux.kustomization_progress(o, REV).state == WAITING


def test_kustomization_deleted_fails():
    p = flux.kustomization_progress(None, REV)
    assert p.state == FAILED and "deleted" in p.message


def test_applied_count():
    assert flux.applied_count(None) is None
    assert flux.applied_count(obj()) is None
    assert flux.applied_count(obj(inventory={})) == 0
    assert flux.applied_count(obj(inventory={"entries": None})) == 0
    entries = [{"id": "dev_web_apps_Deployment", "v": "v1"}, {"id": "dev_web__Service", "v": "v1"}]
    assert flux.applied_count(obj(inventory={"entries": entries})) == 2


# -- Flux installed? --------------------------------------------------------------------

def test_missing_apis():
    both = {"source.toolkit.fluxcd.io/v1": ["buckets", "gitrepositories"],
            "kustomize.toolkit.fluxcd.io/v1": ["kustomizations"]}
    assert flux.missing_apis(both) == []
    missing = flux.missing_apis({"source.toolkit.fluxcd.io/v1beta2": ["buckets"]})
    assert len(missing) == 2
    assert "buckets.source.toolkit.fluxcd.io/v1" in missing[0]
    assert "source-controller" in missing[0]
    assert "kustomizations.kustomize.toolkit.fluxcd.io/v1" in missing[1]
    assert "kustomize-controller" in missing[1]
    only_source = flux.missing_apis({"source.toolkit.fluxcd.io/v1": ["buckets"]})
    assert len(only_source) == 1 and "kustomizations" in only_source[0]


def test_install_hint():
    missing = flux.missing_apis({})
    hint = flux.install_hint(missing, "kind-dev")
    assert "'kind-dev'" in hint
    assert "buckets.source.toolkit.fluxcd.io/v1" in hint
    assert "kustomizations.kustomize.toolkit.fluxcd.io/v1" in hint
    assert "flux install" in hint
    assert "\n" not in hint


def test_kustomization_failed_while_flux_retries_is_failed():
    # what kustomize-controller 1.9 leaves after a failed apply (seen on the real one)
    o = obj(lastAppliedRevision=OLD, lastAttemptedRevision=REV,
            conditions=[cond("Reconciling", "True", "Detecting drift", "ProgressingWithRetry"),
                        cond("Ready", "False", "ConfigMap/ns/bad dry-run failed",
                             "ReconciliationFailed")])
    assert flux.kustomization_progress(o, REV) == \
        flux.Progress(FAILED, "ConfigMap/ns/bad dry-run failed")


def test_kustomization_failure_before_our_request_is_no_verdict():
    o = obj(lastAppliedRevision=OLD, lastAttemptedRevision=REV, lastHandledReconcileAt="t1",
            conditions=[cond("Ready", "False", "namespace missing", "ReconciliationFailed")])
    assert flux.kustomization_progress(o, REV, "t2").state == WAITING
    assert flux.kustomization_progress(o, REV, "t1").state == FAILED


def test_needs_more_rights_only_for_forbidden():
    msg = ('ClusterRoleBinding/escalate dry-run failed: clusterrolebindings.rbac.authorization.k8s.io'
           ' is forbidden: User "system:serviceaccount:dev:gitops-run-web" cannot create resource')
    hint = flux.needs_more_rights(msg, "dev", "gitops-run-web")
    assert "ServiceAccount dev/gitops-run-web" in hint and "--service-account" in hint
    assert flux.needs_more_rights("kustomization path not found", "dev", "x") == ""


# -- a kind the cluster does not serve ------------------------------------------------

NO_KIND = ('ImagePolicy/dev/web dry-run failed: no matches for kind "ImagePolicy" in version '
           '"image.toolkit.fluxcd.io/v1beta2"')


def test_missing_flux_kind_names_the_controller_to_install():
    # kustomize-controller 1.9's message, as seen on the dev cluster
    said = flux.missing_kind(NO_KIND)
    assert said == ("ImagePolicy/dev/web dry-run failed: the cluster does not serve kind "
                    "ImagePolicy (image.toolkit.fluxcd.io/v1beta2): install Flux's "
                    "image-reflector-controller (`flux install "
                    "--components-extra=image-reflector-controller`)")
    helm = flux.missing_kind('HelmRelease/dev/web dry-run failed: no matches for kind '
                             '"HelmRelease" in version "helm.toolkit.fluxcd.io/v2"')
    assert helm.endswith("kind HelmRelease (helm.toolkit.fluxcd.io/v2): install Flux's "
                         "helm-controller (`flux install`)")


def test_missing_kind_in_helms_words():
    said = flux.missing_kind(
        'Helm install failed for release dev/web with chart web@1.0.0: unable to build '
        'kubernetes objects from release manifest: resource mapping not found for name: "c" '
        'namespace: "" from "": no matches for kind "Certificate" in version '
        '"cert-manager.io/v1"\nensure CRDs are installed first')
    assert said.endswith('from "": the cluster does not serve kind Certificate '
                         '(cert-manager.io/v1): install the CRD that defines it (from the '
                         'operator or chart that provides Certificate) first')


def test_other_messages_are_left_alone():
    assert flux.missing_kind("kustomize build failed") == "kustomize build failed"


@pytest.mark.parametrize("kind, group, controller", [
    ("HelmRelease", "helm.toolkit.fluxcd.io", "helm-controller"),
    ("HelmRepository", "source.toolkit.fluxcd.io", "source-controller"),
    ("Kustomization", "kustomize.toolkit.fluxcd.io", "kustomize-controller"),
    ("Alert", "notification.toolkit.fluxcd.io", "notification-controller"),
    ("ImageRepository", "image.toolkit.fluxcd.io", "image-reflector-controller"),
    ("ImageUpdateAutomation", "image.toolkit.fluxcd.io", "image-automation-controller"),
    ("Certificate", "cert-manager.io", None),
])
def test_controller_for(kind, group, controller):
    assert flux.controller_for(kind, group) == controller


def test_a_chart_needs_helm_controller():
    served = {"source.toolkit.fluxcd.io/v1": ["buckets"]}
    assert flux.missing_apis(served, flux.REQUIRED_HELM) == [
        "helmreleases.helm.toolkit.fluxcd.io/v2 (helm-controller)"]
    served["helm.toolkit.fluxcd.io/v2"] = ["helmreleases"]
    assert flux.missing_apis(served, flux.REQUIRED_HELM) == []



def flux_obj(kind="Kustomization", suspend=None, generation=3, observed=3, **status) -> dict:
    group = {"Bucket": "source.toolkit.fluxcd.io/v1",
             "Kustomization": "kustomize.toolkit.fluxcd.io/v1"}[kind]
    spec = {} if suspend is None else {"suspend": suspend}
    return {"apiVersion": group, "kind": kind, "spec": spec,
            "metadata": {"name": "gitops-run-web", "namespace": "dev", "generation": generation},
            "status": {"observedGeneration": observed, **status}}


def test_suspended_says_how_to_resume():
    assert flux.suspended("Bucket", flux_obj("Bucket", suspend=True)) == (
        "Bucket dev/gitops-run-web is suspended, so Flux leaves it alone: resume it with "
        "`flux resume source bucket gitops-run-web -n dev` (or set spec.suspend to false)")
    assert "`flux resume kustomization gitops-run-web -n dev`" in \
        flux.suspended("Kustomization", flux_obj(suspend=True))
    assert flux.suspended("Bucket", flux_obj("Bucket", suspend=False)) == ""
    assert flux.suspended("Bucket", None) == ""


def test_stalled_names_the_controller_that_has_not_reconciled():
    assert flux.stalled("Kustomization", flux_obj(generation=4, observed=3)) == (
        "; kustomize-controller has not reconciled generation 4 of it: is Flux's "
        "kustomize-controller running?")
    assert "source-controller" in flux.stalled("Bucket", flux_obj("Bucket", observed=1))
    assert flux.stalled("Kustomization", flux_obj()) == ""
    assert flux.stalled("Kustomization", None) == ""


QUOTA = ('ConfigMap/dev/extra dry-run failed (Forbidden): configmaps "extra" is forbidden: '
         'exceeded quota: q, requested: count/configmaps=1, used: count/configmaps=2, '
         'limited: count/configmaps=1')


def test_advice_for_a_quota_is_not_about_rights():
    said = flux.advice(QUOTA, "dev", "gitops-run-web")
    assert "ResourceQuota of namespace dev" in said and "raise the quota" in said
    assert "--service-account" not in said


def test_advice_for_rights_and_for_anything_else():
    forbidden = ('Deployment/dev/web dry-run failed (Forbidden): deployments.apps "web" is '
                 'forbidden: User "system:serviceaccount:dev:gitops-run-web" cannot patch')
    assert flux.advice(forbidden, "dev", "gitops-run-web") == \
        flux.needs_more_rights(forbidden, "dev", "gitops-run-web")
    assert flux.advice("ConfigMap/dev/x invalid: data.n: must be a string", "dev", "x") == \
        "; fix the manifests and sync again"


def test_flux_paths_are_made_relative():
    msg = ("failed to decode Kubernetes YAML from /tmp/kustomization-4174422502/"
           "docker-compose.images.yml: missing Resource metadata")
    ks = {"status": {"conditions": [{"type": "Ready", "status": "False", "message": msg}]}}
    assert flux.message(ks) == ("failed to decode Kubernetes YAML from "
                                "docker-compose.images.yml: missing Resource metadata")
