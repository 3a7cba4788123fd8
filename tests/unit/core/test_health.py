"""kstatus' rules for the kinds a developer deploys."""
from __future__ import annotations

import pytest

from kubectl_gitops_run.core import health
from kubectl_gitops_run.core.health import CURRENT, FAILED, IN_PROGRESS, status
from kubectl_gitops_run.core.inventory import Ref


def deploy(want=2, gen=3, observed=3, **st):
    return {"kind": "Deployment", "metadata": {"generation": gen},
            "spec": {"replicas": want}, "status": {"observedGeneration": observed, **st}}


def pod(phase="Running", ready=True, waiting=None, scheduled=None):
    cs = [{"name": "app", "state": {"waiting": waiting} if waiting else {"running": {}}}]
    conds = [{"type": "Ready", "status": "True" if ready else "False"}]
    if scheduled:
        conds.append({"type": "PodScheduled", "status": "False", "message": scheduled})
    return {"kind": "Pod", "metadata": {}, "status": {"phase": phase, "containerStatuses": cs,
                                                      "conditions": conds}}


@pytest.mark.parametrize("obj, expected, reason", [
    (deploy(updatedReplicas=2, readyReplicas=2, availableReplicas=2, replicas=2), CURRENT, ""),
    (deploy(updatedReplicas=2, readyReplicas=1, availableReplicas=1), IN_PROGRESS,
     "1/2 replicas ready"),
    (deploy(observed=2), IN_PROGRESS, "has not seen the latest spec"),
    (deploy(updatedReplicas=2, readyReplicas=2, availableReplicas=2, replicas=3), IN_PROGRESS,
     "1 old replicas"),
    (deploy(conditions=[{"type": "Progressing", "status": "False",
                         "reason": "ProgressDeadlineExceeded", "message": "too slow"}]),
     FAILED, "too slow"),
    (pod(), CURRENT, ""),
    (pod(ready=False, waiting={"reason": "CrashLoopBackOff", "message": "back-off 10s"}),
     FAILED, "container app CrashLoopBackOff: back-off 10s"),
    (pod(phase="Pending", ready=False, waiting={"reason": "ImagePullBackOff"}), FAILED,
     "ImagePullBackOff"),
    (pod(phase="Pending", ready=False, scheduled="0/1 nodes are available"), IN_PROGRESS,
     "not scheduled: 0/1 nodes"),
    (pod(phase="Succeeded", ready=False), CURRENT, ""),
    ({"kind": "PersistentVolumeClaim", "metadata": {}, "status": {"phase": "Pending"}},
     IN_PROGRESS, "no matching storage class or provisioner"),
    ({"kind": "PersistentVolumeClaim", "metadata": {}, "status": {"phase": "Pending"}},
     IN_PROGRESS, "no default storage class"),
    ({"kind": "PersistentVolumeClaim", "metadata": {}, "spec": {"storageClassName": "fast"},
      "status": {"phase": "Pending"}}, IN_PROGRESS, "no provisioner for storage class 'fast'"),
    ({"kind": "PersistentVolumeClaim", "metadata": {}, "status": {"phase": "Lost"}}, FAILED,
     "volume is gone"),
    ({"kind": "PersistentVolumeClaim", "metadata": {}, "status": {"phase": "Bound"}}, CURRENT, ""),
    (pod(phase="Pending", ready=False, waiting={"reason": "ContainerCreating"}), IN_PROGRESS,
     "container app ContainerCreating"),
    ({"kind": "ConfigMap", "metadata": {}}, CURRENT, ""),
    ({"kind": "Service", "metadata": {}, "spec": {"type": "LoadBalancer"}}, IN_PROGRESS,
     "load balancer"),
    ({"kind": "Job", "metadata": {}, "status": {"conditions": [
        {"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}]}},
     FAILED, "BackoffLimitExceeded"),
    ({"kind": "Widget", "metadata": {}, "status": {"conditions": [
        {"type": "Ready", "status": "False", "message": "no capacity"}]}},
     IN_PROGRESS, "no capacity"),
    ({"kind": "Widget", "metadata": {}, "status": {"conditions": [
        {"type": "Stalled", "status": "True", "message": "bad spec"}]}}, FAILED, "bad spec"),
    ({"kind": "ConfigMap", "metadata": {"deletionTimestamp": "x"}}, CURRENT, ""),
    ({"kind": "Deployment", "metadata": {"deletionTimestamp": "x"}}, IN_PROGRESS, "deleted"),
    (None, IN_PROGRESS, "not found"),
])
def test_status(obj, expected, reason):
    got = status(obj)
    assert got.status == expected and reason in got.reason, got

# -- what is not ready, for an error line ------------------------------------------------------------

def test_not_ready_names_the_objects_and_why():
    pvc = Ref("dev", "data", "", "v1", "PersistentVolumeClaim")
    cm = Ref("dev", "cfg", "", "v1", "ConfigMap")
    gone = Ref("dev", "old", "", "v1", "ConfigMap")
    said = health.not_ready([
        (pvc, {"kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
               "status": {"phase": "Pending"}}),
        (cm, {"kind": "ConfigMap", "metadata": {"name": "cfg"}}),
        (gone, None)])
    assert said.startswith("; not ready: PersistentVolumeClaim dev/data: Pending: no volume "
                           "bound")
    assert "ConfigMap" not in said
    assert health.not_ready([(cm, {"kind": "ConfigMap", "metadata": {"name": "cfg"}})]) == ""


def test_not_ready_says_a_few():
    pending = {"kind": "PersistentVolumeClaim", "metadata": {}, "status": {"phase": "Pending"}}
    refs = [(Ref("dev", f"d{i}", "", "v1", "PersistentVolumeClaim"), pending) for i in range(5)]
    said = health.not_ready(refs)
    assert said.count("PersistentVolumeClaim") == health.MAX_SHOWN and said.endswith("and 2 more")


def test_a_flux_object_that_never_succeeded_says_why():
    """HelmRepository and HelmRelease keep observedGeneration -1 until their
    first success (source-controller 1.9, helm-controller 1.6)."""
    repo = {"kind": "HelmRepository", "metadata": {"name": "podinfo", "generation": 1},
            "status": {"observedGeneration": -1, "conditions": [
                {"type": "Reconciling", "status": "True", "message": "building artifact"},
                {"type": "Ready", "status": "False", "message": "failed to fetch Helm\n  index"}]}}
    assert status(repo) == health.Health(IN_PROGRESS, "failed to fetch Helm index")
    repo["status"]["conditions"].pop()
    assert status(repo).reason == "its controller has not seen the latest spec yet"


# -- a workload's pods say why ---------------------------------------------------------------------

def named(obj: dict, name: str) -> dict:
    return {**obj, "metadata": {**obj["metadata"], "name": name}}


def test_pod_selector():
    d = deploy()
    d["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "front"}, "matchExpressions": [
        {"key": "env", "operator": "In", "values": ["dev", "qa"]},
        {"key": "canary", "operator": "DoesNotExist"}, {"key": "x", "operator": "Exists"},
        {"key": "y", "operator": "NotIn", "values": ["1"]}]}
    assert health.pod_selector(d) == "app=web,tier=front,env in (dev,qa),!canary,x,y notin (1)"
    assert health.pod_selector({"kind": "Service", "spec": {"selector": {"app": "web"}}}) is None
    assert health.pod_selector(deploy()) is None        # selects nothing: ask for no pods


def test_a_workload_says_why_with_its_stuck_pod_first():
    d = deploy(want=1, updatedReplicas=1, readyReplicas=0)
    pods = [named(pod(ready=False, phase="Pending", scheduled="0/1 nodes are available"), "a"),
            named(pod(ready=False, waiting={"reason": "ImagePullBackOff",
                                            "message": "Back-off pulling image x:9"}), "b"),
            named(pod(), "c")]
    got = health.explain(d, pods)
    assert got == health.Health(FAILED, "0/1 replicas ready; pod b: container app "
                                        "ImagePullBackOff: Back-off pulling image x:9")
    assert health.explain(d, pods[:1]).reason == ("0/1 replicas ready; pod a: not scheduled: "
                                                  "0/1 nodes are available")
    assert health.explain(d, []) == status(d)


def test_not_ready_asks_for_the_pods_of_shown_workloads_only():
    d = deploy(want=1, updatedReplicas=1, readyReplicas=0)
    d["spec"]["selector"] = {"matchLabels": {"app": "worker"}}
    ref = Ref("dev", "worker", "apps", "v1", "Deployment")
    asked = []

    def pods_of(obj):
        asked.append(health.pod_selector(obj))
        return [named(pod(ready=False, waiting={"reason": "CrashLoopBackOff"}), "worker-1")]
    said = health.not_ready([(ref, d)] * 4, pods_of)
    assert said.startswith("; not ready: Deployment.apps dev/worker: 0/1 replicas ready; pod "
                           "worker-1: container app CrashLoopBackOff;")
    assert asked == ["app=worker"] * health.MAX_SHOWN and said.endswith("and 1 more")
