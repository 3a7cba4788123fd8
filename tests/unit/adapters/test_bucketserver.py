"""Why a session's bucket server has no pod, in words (the waiting itself runs
against the dev cluster in tests/e2e)."""
from __future__ import annotations

from kubectl_gitops_run.adapters.bucketserver import BucketServer, replica_failure

QUOTA = ('pods "gitops-run-a-5d8f" is forbidden: exceeded quota: q, requested: pods=1, '
         'used: pods=0, limited: pods=0')


def deployment(*conditions: dict) -> dict:
    return {"kind": "Deployment", "status": {"conditions": list(conditions)}}


def test_replica_failure_is_read_from_the_deployments_conditions():
    failing = {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
               "message": QUOTA}
    progressing = {"type": "Progressing", "status": "True", "message": "ReplicaSet is progressing"}
    assert replica_failure(deployment(progressing, failing)) == QUOTA
    assert replica_failure(deployment(progressing, {**failing, "status": "False"})) is None
    assert replica_failure(deployment({**failing, "message": ""})) == "FailedCreate"
    assert replica_failure(deployment()) is None
    assert replica_failure(None) is None


def test_no_pod_names_the_refusal_and_the_way_out():
    server = BucketServer(None, "dev", "a", timeout=20)
    assert server._not_ready(None, None, QUOTA) == (
        f"no bucket-server pod for session 'a' in namespace 'dev': its ReplicaSet may not "
        f"create one: {QUOTA}; free some of what quota 'q' counts, or ask an admin to raise the "
        f"quota (see `kubectl describe resourcequota q -n dev`)")
    assert server._not_ready(None, None, "admission webhook denied it").endswith(
        ": admission webhook denied it; fix that and retry")
    assert server._not_ready(None, None) == (
        "no bucket-server pod for session 'a' in namespace 'dev' after 20s; check `kubectl get "
        "deployment gitops-run-a -n dev`")
