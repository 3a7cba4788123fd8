"""Reading pods: Ready or not, and why not (pure)."""
from __future__ import annotations

# Waiting reasons no amount of waiting fixes.
FATAL_WAITING = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                 "CreateContainerConfigError", "CreateContainerError", "CrashLoopBackOff",
                 "RunContainerError"}


def pod_ready(pod: dict) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pod_problem(pod: dict) -> tuple[str, bool] | None:
    """(what keeps the pod from being Ready, whether it is hopeless), or None."""
    status = pod.get("status") or {}
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            text = waiting["reason"] + (f": {waiting['message']}" if waiting.get("message") else "")
            return text, waiting["reason"] in FATAL_WAITING
    for c in status.get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("status") == "False":
            return f"not scheduled: {c.get('message') or c.get('reason')}", False
    return (f"pod phase {status['phase']}", False) if status.get("phase") else None


def current_pod(pods: list[dict]) -> dict | None:
    """The one place that chooses the pod to talk to: a Ready one not being
    deleted, the newest first; else the newest live one (to say why it is not
    Ready)."""
    live = sorted((p for p in pods if not p["metadata"].get("deletionTimestamp")),
                  key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)
    return next((p for p in live if pod_ready(p)), live[0] if live else None)


def from_deployment(pod: dict, deployment: str) -> bool:
    """Is the pod controlled by a ReplicaSet of `deployment`? (Its ReplicaSets
    are named `<deployment>-<pod-template-hash>`.) A pod someone planted with
    our labels has no such controller unless they forged it too."""
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "ReplicaSet":
            name = ref.get("name", "")
            return name.startswith(deployment + "-") and name[len(deployment) + 1:].isalnum()
    return False
