"""Is an applied object healthy? kstatus' rules, the ones Flux's health checks
use (sigs.k8s.io/cli-utils pkg/kstatus/status), for the kinds a developer
deploys (pure).

`status(obj)` gives CURRENT, IN_PROGRESS or FAILED and, when not CURRENT, a
short reason in words a developer acts on.
"""
from __future__ import annotations

from dataclasses import dataclass

CURRENT, IN_PROGRESS, FAILED = "Current", "InProgress", "Failed"
# Waiting reasons that mean a pod will not start without a change.
STUCK = {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName",
         "CreateContainerConfigError", "CreateContainerError", "RunContainerError"}


@dataclass(frozen=True)
class Health:
    status: str
    reason: str = ""


def _conditions(obj: dict) -> dict[str, dict]:
    return {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or []}


def _generic(obj: dict) -> Health | None:
    """The rules every kind shares; None when they say nothing."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    if meta.get("deletionTimestamp"):
        return Health(IN_PROGRESS, "being deleted")
    observed = status.get("observedGeneration")
    cond = _conditions(obj)
    if observed is not None and observed < meta.get("generation", 0):
        # Flux's kinds keep observedGeneration at -1 until a first success,
        # and say why on Ready meanwhile
        ready = cond.get("Ready", {})
        if ready.get("status") == "False" and ready.get("message"):
            return Health(IN_PROGRESS, " ".join(ready["message"].split()))
        return Health(IN_PROGRESS, "its controller has not seen the latest spec yet")
    if cond.get("Stalled", {}).get("status") == "True":
        return Health(FAILED, cond["Stalled"].get("message") or "stalled")
    if cond.get("Reconciling", {}).get("status") == "True":
        return Health(IN_PROGRESS, cond["Reconciling"].get("message") or "reconciling")
    return None


def _replicas(obj: dict, kind: str) -> Health:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    want = spec.get("replicas", 1)
    progressing = _conditions(obj).get("Progressing", {})
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return Health(FAILED, progressing.get("message") or "progress deadline exceeded")
    counts = [("updated", status.get("updatedReplicas", 0)),
              ("ready", status.get("readyReplicas", 0))]
    if kind == "Deployment":
        counts.append(("available", status.get("availableReplicas", 0)))
    for what, have in counts:
        if have < want:
            return Health(IN_PROGRESS, f"{have}/{want} replicas {what}")
    if status.get("replicas", 0) > want:
        return Health(IN_PROGRESS, f"{status['replicas'] - want} old replicas still terminating")
    return Health(CURRENT)


def _daemonset(obj: dict) -> Health:
    status = obj.get("status") or {}
    want = status.get("desiredNumberScheduled", 0)
    for field, what in (("updatedNumberScheduled", "updated"), ("numberAvailable", "available"),
                        ("numberReady", "ready")):
        if status.get(field, 0) < want:
            return Health(IN_PROGRESS, f"{status.get(field, 0)}/{want} pods {what}")
    return Health(CURRENT)


def pod(obj: dict) -> Health:
    status = obj.get("status") or {}
    phase = status.get("phase")
    if phase == "Succeeded":
        return Health(CURRENT)
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in STUCK:
            detail = f": {waiting['message']}" if waiting.get("message") else ""
            return Health(FAILED, f"container {cs.get('name')} {waiting['reason']}{detail}")
    if phase == "Failed":
        return Health(FAILED, status.get("message") or status.get("reason") or "pod failed")
    scheduled = _conditions(obj).get("PodScheduled", {})
    if scheduled.get("status") == "False":
        return Health(IN_PROGRESS, f"not scheduled: {scheduled.get('message') or 'Pending'}")
    if _conditions(obj).get("Ready", {}).get("status") == "True":
        return Health(CURRENT)
    return Health(IN_PROGRESS, f"pod {phase or 'Pending'}, not Ready")


def _pvc(obj: dict) -> Health:
    phase = (obj.get("status") or {}).get("phase")
    if phase == "Bound":
        return Health(CURRENT)
    return Health(IN_PROGRESS, f"{phase or 'Pending'}: no volume bound; the cluster may have no "
                               f"matching storage class or provisioner")


def _job(obj: dict) -> Health:
    cond = _conditions(obj)
    if cond.get("Failed", {}).get("status") == "True":
        return Health(FAILED, cond["Failed"].get("message") or "job failed")
    if cond.get("Complete", {}).get("status") == "True":
        return Health(CURRENT)
    return Health(IN_PROGRESS, "job running")


def _service(obj: dict) -> Health:
    if (obj.get("spec") or {}).get("type") != "LoadBalancer":
        return Health(CURRENT)
    if ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
        return Health(CURRENT)
    return Health(IN_PROGRESS, "waiting for a load balancer address")


def _by_conditions(obj: dict) -> Health:
    """Kinds kstatus has no rule for: a Ready condition, when there is one."""
    ready = _conditions(obj).get("Ready")
    if ready is None or ready.get("status") == "True":
        return Health(CURRENT)
    return Health(IN_PROGRESS, ready.get("message") or ready.get("reason") or "not Ready")


RULES = {
    "Deployment": lambda o: _replicas(o, "Deployment"),
    "StatefulSet": lambda o: _replicas(o, "StatefulSet"),
    "ReplicaSet": lambda o: _replicas(o, "ReplicaSet"),
    "DaemonSet": _daemonset, "Pod": pod, "PersistentVolumeClaim": _pvc, "Job": _job,
    "Service": _service,
}
MAX_SHOWN = 3           # objects named in the one error line
# Kinds that are Current as soon as they exist.
AT_ONCE = {"ConfigMap", "Secret", "ServiceAccount", "Role", "RoleBinding", "ClusterRole",
           "ClusterRoleBinding", "NetworkPolicy", "Namespace", "Ingress"}


def status(obj: dict | None) -> Health:
    if obj is None:
        return Health(IN_PROGRESS, "not found")
    kind = obj.get("kind", "")
    if kind in AT_ONCE:
        return Health(CURRENT)
    return _generic(obj) or RULES.get(kind, _by_conditions)(obj)


def not_ready(objects: list[tuple[object, dict | None]]) -> str:
    """The applied objects (from an inventory, as read now) that are not
    Current, and why, for the one error line: Helm's message on a wait that
    ran out names none, nor does Flux's while its health checks run ('' when
    all are Current, or gone). `objects`: (inventory Ref, object) pairs."""
    bad = [(ref, h) for ref, obj in objects if obj is not None
           for h in [status(obj)] if h.status != CURRENT]
    if not bad:
        return ""
    shown = "; ".join(f"{ref}: {h.reason}" for ref, h in bad[:MAX_SHOWN])
    more = f"; and {len(bad) - MAX_SHOWN} more" if len(bad) > MAX_SHOWN else ""
    return f"; not ready: {shown}{more}"
