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
        state = cs.get("state") or {}
        waiting, ended = state.get("waiting"), state.get("terminated")
        if waiting and waiting.get("reason"):
            text = waiting["reason"] + (f": {waiting['message']}" if waiting.get("message") else "")
            return text, waiting["reason"] in FATAL_WAITING
        if ended:       # between a crash and the kubelet's restart (or back-off)
            return f"{ended.get('reason') or 'Terminated'}: {_exit(ended)}", False
    for c in status.get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("status") == "False":
            return f"not scheduled: {c.get('message') or c.get('reason')}", False
    return (f"pod phase {status['phase']}", False) if status.get("phase") else None


def _exit(terminated: dict | None) -> str:
    code = (terminated or {}).get("exitCode")
    return "" if code is None else f"exit code {code}"


def brief_problem(pod: dict) -> str:
    """Why the pod is not Ready in a few words, for one log line: the kubelet's
    reason, and the exit code of a container that crashed (now or last time),
    e.g. "CrashLoopBackOff, exit code 1"."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        state = cs.get("state") or {}
        waiting, ended = state.get("waiting") or {}, state.get("terminated")
        reason = waiting.get("reason") or (ended or {}).get("reason") or ("Error" if ended else "")
        if reason:
            code = _exit(ended or (cs.get("lastState") or {}).get("terminated"))
            return f"{reason}, {code}" if code else reason
    problem = pod_problem(pod)
    running = (pod.get("status") or {}).get("phase") == "Running"
    return problem[0].split(":")[0] if problem and not running else "not Ready"


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
