"""What a session's Kustomization applied, and what `down` may prune (pure).

Flux records every object it applied in `status.inventory.entries`, ids of
the form `<namespace>_<name>_<group>_<kind>`, and prunes them all when the
Kustomization is deleted. Some of them the session never created: its own
Namespace, a shared ConfigMap, a CRD that existed before, adopted because a
manifest named them. `down` keeps those (docs/architecture.md, invariant 4).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

PRUNE = "kustomize.toolkit.fluxcd.io/prune"
DISABLED = "disabled"
NEVER_PRUNED = {("", "Namespace"), ("apiextensions.k8s.io", "CustomResourceDefinition")}


@dataclass(frozen=True)
class Ref:
    namespace: str      # "" for a cluster-scoped object
    name: str
    group: str          # "" for the core group
    version: str
    kind: str

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        kind = f"{self.kind}.{self.group}" if self.group else self.kind
        return f"{kind} {where}{self.name}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


def entries(kustomization: dict | None) -> list[Ref]:
    inventory = ((kustomization or {}).get("status") or {}).get("inventory") or {}
    refs = []
    for entry in inventory.get("entries") or []:
        parts = entry.get("id", "").split("_")
        if len(parts) == 4:         # names and groups never hold "_"
            refs.append(Ref(parts[0], parts[1], parts[2], entry.get("v", ""), parts[3]))
    return refs


def _time(stamp: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat((stamp or "").replace("Z", "+00:00"))
    except ValueError:
        return None


def keep_reason(ref: Ref, obj: dict | None, session_created: str | None) -> str | None:
    """Why `down` must not prune this object, or None to let Flux prune it.
    `session_created`: the Kustomization's creationTimestamp."""
    if obj is None:
        return None
    if (ref.group, ref.kind) in NEVER_PRUNED:
        return f"a {ref.kind} is never pruned"
    meta = obj.get("metadata") or {}
    if (meta.get("annotations") or {}).get(PRUNE) == DISABLED:
        return f"it is annotated {PRUNE}: {DISABLED}"
    born, session = _time(meta.get("creationTimestamp")), _time(session_created)
    if born is not None and session is not None and born < session:
        return "it existed before the session"
    return None


def keep_patch() -> dict:
    """The merge patch that makes Flux leave an object in place."""
    return {"metadata": {"annotations": {PRUNE: DISABLED}}}
