"""publish: a sync says why Flux will not (or did not) take it, and a suspended
Bucket is refused before anything is uploaded (issue 12, "Bad inputs")."""
from __future__ import annotations

import pytest

from kubectl_gitops_run.core import flux, naming
from kubectl_gitops_run.core.snapshot import Snapshot
from kubectl_gitops_run.errors import UserError
from kubectl_gitops_run.ops.publish import Syncer

REV = "sha256:" + "ab" * 32
QUOTA = ('ConfigMap/dev/extra dry-run failed (Forbidden): configmaps "extra" is forbidden: '
         'exceeded quota: q, requested: count/configmaps=1')


class Kube:
    """Answers GETs from `objects` (kind -> object); any other call is a mistake."""
    namespace = "dev"

    def __init__(self, **objects):
        self.objects = objects

    def get(self, kind, name, namespace=None, **_):
        return self.objects.get(kind)


class Unreachable:
    def s3(self):
        raise AssertionError("the bucket server must not be touched")


def flux_obj(kind: str, generation=3, observed=3, conditions=(), **spec) -> dict:
    group = {"Bucket": "source.toolkit.fluxcd.io/v1",
             "Kustomization": "kustomize.toolkit.fluxcd.io/v1"}[kind]
    return {"apiVersion": group, "kind": kind, "spec": spec,
            "metadata": {"name": "gitops-run-web", "namespace": "dev", "generation": generation,
                         "resourceVersion": "7", "labels": naming.labels("web")},
            "status": {"observedGeneration": observed, "conditions": list(conditions)}}


def syncer(timeout: float = 5, **objects) -> Syncer:
    return Syncer(Kube(**objects), "dev", "web", Unreachable(), timeout=timeout)


def test_a_suspended_bucket_is_refused_before_any_upload():
    bucket = flux_obj("Bucket", suspend=True, bucketName="snapshot-a")
    with pytest.raises(UserError, match=r"not syncing session 'web': Bucket dev/gitops-run-web "
                                        r"is suspended.*`flux resume source bucket"):
        syncer(Bucket=bucket).publish(Snapshot("/src", {}), None)


def test_a_suspended_kustomization_fails_at_once():
    ks = flux_obj("Kustomization", suspend=True)
    with pytest.raises(UserError, match="Flux will not apply revision sha256:abababab: "
                                        "Kustomization dev/gitops-run-web is suspended"):
        syncer()._wait("Kustomization", lambda obj: flux.kustomization_progress(obj, REV), REV,
                       start=ks)


def test_a_wait_that_runs_out_names_the_controller_that_did_not_act():
    ks = flux_obj("Kustomization", generation=4, observed=3)
    with pytest.raises(UserError, match="timed out after 0s .*kustomize-controller has not "
                                        "reconciled generation 4 of it: is Flux's "
                                        "kustomize-controller running"):
        syncer(timeout=0)._wait("Kustomization",
                                lambda obj: flux.kustomization_progress(obj, REV), REV, start=ks)


def test_a_quota_failure_says_quota_not_rights():
    ks = flux_obj("Kustomization")
    with pytest.raises(UserError) as e:
        syncer()._wait("Kustomization", lambda obj: flux.Progress(flux.FAILED, QUOTA), REV,
                       start=ks)
    assert "raise the quota" in str(e.value) and "--service-account" not in str(e.value)


def test_a_bucket_flux_cannot_fetch_says_what_flux_says():
    ready = {"type": "Ready", "status": "False",
             "message": "failed to confirm existence of 'snapshot-b' bucket: connection refused"}
    bucket = flux_obj("Bucket", generation=5, observed=4, conditions=[ready])
    with pytest.raises(UserError, match=r"Flux says: failed to confirm .*connection refused; "
                                        r"`kubectl gitops-run up` repairs"):
        syncer(timeout=0)._await_spec_seen(bucket)
