"""`down`: remove a session and, through Flux's prune, what it deployed.

Whatever of a session exists is removed, and nothing that is not ours
(docs/architecture.md, invariants 3 and 4).
"""
from __future__ import annotations

from ..adapters.kube import Kube
from ..adapters.waiting import until
from ..core import naming
from ..errors import UserError, WaitTimeout

# Flux's finalizers prune what a Kustomization applied and drop a Bucket's artifacts.
FINALIZED = ("Kustomization", "Bucket")


def down(kube: Kube, name: str, *, keep_workloads: bool = False,
         timeout: float = 300) -> list[str]:
    """Remove one session: the Kustomization first (so Flux prunes what it
    applied, unless keep_workloads), then the rest. Returns the kinds removed."""
    ns, obj_name = kube.namespace, naming.object_name(name)
    removed = []
    for kind, own_name in naming.owned_objects(name, ns):
        obj = kube.get(kind, own_name, ns)
        if obj is None or not naming.owns(obj, name):
            continue
        meta = obj["metadata"]
        if kind == "Kustomization" and keep_workloads and obj["spec"].get("prune"):
            kube.patch(kind, meta["name"], {"spec": {"prune": False}}, ns)
        if kube.delete(kind, meta["name"], ns, uid=meta["uid"]):
            removed.append(kind)
        if kind in FINALIZED:
            _wait_gone(kube, kind, meta["name"], ns, meta["uid"], timeout)
    for kind in ("Deployment", "Service", "Secret"):
        if kind in removed:
            _wait_gone(kube, kind, obj_name, ns, None, timeout)
    return removed


def _wait_gone(kube: Kube, kind: str, name: str, ns: str, uid: str | None,
               timeout: float) -> None:
    def gone(obj: dict | None) -> bool:
        return obj is None or (uid is not None and obj["metadata"]["uid"] != uid)
    try:
        until(kube, kind, ns, gone, name=name, timeout=timeout)
    except WaitTimeout:
        # Flux's finalizers prune what a Kustomization applied: they need Flux
        hint = " (is Flux running? its finalizer must let it go)" if kind in FINALIZED else ""
        raise UserError(f"timed out after {timeout:g}s waiting for {kind} {ns}/{name} to be "
                        f"deleted{hint}") from None
