"""Is an applied object healthy? kstatus' rules, the ones Flux's health checks
use (sigs.k8s.io/cli-utils pkg/kstatus/status), for the kinds a developer
deploys (pure).

`status(obj)` gives CURRENT, IN_PROGRESS or FAILED and, when not CURRENT, a
short reason in words a developer acts on.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

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
    waiting = _waiting(status)
    if waiting:         # ContainerCreating, PodInitializing: on its way, but say where
        return Health(IN_PROGRESS, waiting)
    return Health(IN_PROGRESS, f"pod {phase or 'Pending'}, not Ready")


def _waiting(status: dict) -> str:
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason")
        if reason:
            return f"container {cs.get('name')} {reason}"
    return ""


def _pvc(obj: dict) -> Health:
    phase = (obj.get("status") or {}).get("phase")
    if phase == "Bound":
        return Health(CURRENT)
    if phase == "Lost":
        return Health(FAILED, "Lost: its volume is gone")
    # the API server fills in the default storage class on create: none left
    # means the cluster has no default one
    klass = (obj.get("spec") or {}).get("storageClassName")
    where = (f"no provisioner for storage class {klass!r} (or it is missing, or waits for a "
             f"pod to use the claim)" if klass else "no default storage class")
    return Health(IN_PROGRESS, f"{phase or 'Pending'}: no volume bound; the cluster has no "
                               f"matching storage class or provisioner: {where}")


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


WORKLOADS = {"Deployment", "StatefulSet", "ReplicaSet", "DaemonSet", "Job"}
_EXPRESSIONS = {"In": "{key} in ({values})", "NotIn": "{key} notin ({values})",
                "Exists": "{key}", "DoesNotExist": "!{key}"}


def pod_selector(obj: dict) -> str | None:
    """The label selector of a workload's pods, as the API takes it (None for
    other kinds, or a workload that selects nothing)."""
    if obj.get("kind") not in WORKLOADS:
        return None
    selector = (obj.get("spec") or {}).get("selector") or {}
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for e in selector.get("matchExpressions") or []:
        form = _EXPRESSIONS.get(e.get("operator"))
        if form:
            parts.append(form.format(key=e.get("key"), values=",".join(e.get("values") or [])))
    return ",".join(parts) or None


def explain(obj: dict, pods: list[dict]) -> Health:
    """An object's health; for a workload that is not Current, why, in the
    words of its pods (`pods`: those its selector picks): a stuck one first."""
    health = status(obj)
    if health.status == CURRENT:
        return health
    said = [(p, h) for p in pods for h in [pod(p)] if h.status != CURRENT]
    said.sort(key=lambda pair: pair[1].status != FAILED)
    if not said:
        return health
    name = (said[0][0].get("metadata") or {}).get("name", "")
    return Health(said[0][1].status if said[0][1].status == FAILED else health.status,
                  f"{health.reason}; pod {name}: {said[0][1].reason}")


def not_ready(objects: list[tuple[object, dict | None]],
              pods_of: Callable[[dict], list[dict]] = lambda obj: []) -> str:
    """The applied objects (from an inventory, as read now) that are not
    Current, and why, for the one error line: Helm's message on a wait that
    ran out names none, nor does Flux's while its health checks run ('' when
    all are Current, or gone). `objects`: (inventory Ref, object) pairs;
    `pods_of(workload)` reads a workload's pods, asked only for those shown."""
    bad = [(ref, obj) for ref, obj in objects if obj is not None
           and status(obj).status != CURRENT]
    if not bad:
        return ""
    shown = "; ".join(f"{ref}: {explain(obj, pods_of(obj) if pod_selector(obj) else []).reason}"
                      for ref, obj in bad[:MAX_SHOWN])
    more = f"; and {len(bad) - MAX_SHOWN} more" if len(bad) > MAX_SHOWN else ""
    return f"; not ready: {shown}{more}"
