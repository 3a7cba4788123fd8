"""Pods: Ready or not, why not, and which one to talk to."""
from __future__ import annotations

from kubectl_gitops_run.core.pods import (brief_problem, current_pod, from_deployment, pod_problem,
                                          pod_ready)

from .objects import pod


def waiting(reason, message=None):
    w = {"reason": reason}
    if message:
        w["message"] = message
    return {"metadata": {"name": "p"}, "status": {"phase": "Pending", "containerStatuses": [
        {"name": "bucket-server", "ready": False, "state": {"waiting": w}}]}}


def test_pod_ready():
    assert pod_ready(pod("w", "d", "p", "t", ready=True))
    assert not pod_ready(pod("w", "d", "p", "t", ready=False))
    assert not pod_ready({"metadata": {}})
    assert not pod_ready({"status": {"conditions": [{"type": "ContainersReady",
                                                     "status": "True"}]}})


def test_image_pull_backoff_is_fatal():
    msg = 'Back-off pulling image "quay.io/minio/minio:nope"'
    assert pod_problem(waiting("ImagePullBackOff", msg)) == (f"ImagePullBackOff: {msg}", True)
    assert pod_problem(waiting("ErrImagePull"))[1] is True
    assert pod_problem(waiting("CrashLoopBackOff", "back-off 10s"))[1] is True


def test_container_creating_is_not_fatal():
    assert pod_problem(waiting("ContainerCreating")) == ("ContainerCreating", False)


def test_unscheduled_pod():
    p = {"status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/1 nodes are available: 1 Insufficient memory."}]}}
    text, fatal = pod_problem(p)
    assert text == "not scheduled: 0/1 nodes are available: 1 Insufficient memory."
    assert fatal is False
    del p["status"]["conditions"][0]["message"]
    assert pod_problem(p) == ("not scheduled: Unschedulable", False)


def test_pod_problem_phase_and_none():
    assert pod_problem({"status": {"phase": "Pending"}}) == ("pod phase Pending", False)
    assert pod_problem({"status": {}}) is None
    assert pod_problem({}) is None


def test_current_pod():
    old_ready = pod("w", "d", "old-ready", "2026-11-24T10:00:00Z", ready=True)
    new_ready = pod("w", "d", "new-ready", "2026-11-24T11:00:00Z", ready=True)
    newest_unready = pod("w", "d", "newest", "2026-11-24T12:00:00Z", ready=False)
    deleting = pod("w", "d", "deleting", "2026-11-24T13:00:00Z", ready=True, deleting=True)
    name = lambda p: p and p["metadata"]["name"]   # noqa: E731
    assert name(current_pod([old_ready, newest_unready, new_ready, deleting])) == "new-ready"
    assert name(current_pod([newest_unready, old_ready])) == "old-ready"
    older_unready = pod("w", "d", "older", "2026-11-24T09:00:00Z", ready=False)
    assert name(current_pod([older_unready, newest_unready, deleting])) == "newest"
    assert current_pod([deleting]) is None
    assert current_pod([]) is None


def test_from_deployment_needs_our_replicaset_as_controller():
    def owned(kind, name, controller=True):
        return {"metadata": {"ownerReferences": [
            {"kind": kind, "name": name, "controller": controller}]}}
    assert from_deployment(owned("ReplicaSet", "gitops-run-web-6f7c9d8b5"), "gitops-run-web")
    assert not from_deployment(owned("ReplicaSet", "gitops-run-web-x-6f7c"), "gitops-run-web")
    assert not from_deployment(owned("ReplicaSet", "gitops-run-web-6f7c", False), "gitops-run-web")
    assert not from_deployment(owned("StatefulSet", "gitops-run-web-0"), "gitops-run-web")
    assert not from_deployment({"metadata": {}}, "gitops-run-web")     # a bare, planted pod


def crashed(state, last=None):
    cs = {"name": "web", "ready": False, "state": state, "restartCount": 1}
    if last:
        cs["lastState"] = {"terminated": last}
    return {"metadata": {"name": "p"}, "status": {"phase": "Running", "containerStatuses": [cs]}}


def test_a_crashed_container_as_a_kubelet_reports_it():
    # back-off between restarts: the reason, and how the last run ended
    backoff = crashed({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}},
                      {"exitCode": 1, "reason": "Error"})
    assert brief_problem(backoff) == "CrashLoopBackOff, exit code 1"
    assert pod_problem(backoff) == ("CrashLoopBackOff: back-off 10s", True)
    # just exited, not restarted yet
    ended = crashed({"terminated": {"exitCode": 2, "reason": "Error"}})
    assert brief_problem(ended) == "Error, exit code 2"
    assert pod_problem(ended) == ("Error: exit code 2", False)
    assert brief_problem(crashed({"terminated": {"exitCode": 137}})) == "Error, exit code 137"


def test_brief_problem_without_a_crash():
    assert brief_problem(waiting("ContainerCreating")) == "ContainerCreating"
    assert brief_problem(crashed({"running": {}})) == "not Ready"
    assert brief_problem({"status": {"phase": "Pending"}}) == "pod phase Pending"
    assert brief_problem({}) == "not Ready"
