"""`down`: remove a session and, through Flux's prune, what it deployed.

Whatever of a session exists is removed, and nothing that is not ours
(docs/architecture.md, invariants 3 and 4): what Flux applied but the session
did not create (a Namespace, a CRD, an object that existed before, one
annotated `kustomize.toolkit.fluxcd.io/prune: disabled`) is marked so that
Flux leaves it in place. A HelmRelease is uninstalled by helm-controller.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..adapters.discovery import Discovery
from ..adapters.kube import Kube
from ..adapters.waiting import until
from ..core import helm, inventory, naming
from ..core.inventory import Ref
from ..core.resources import KINDS
from ..errors import ApiError, UserError, WaitTimeout

# Flux's finalizers prune what a Kustomization applied, uninstall a HelmRelease
# and drop a Bucket's artifacts.
FINALIZED = ("HelmRelease", "Kustomization", "Bucket")


@dataclass
class Removal:
    """What `down` removes (or, with dry_run, would)."""
    objects: list[dict] = field(default_factory=list)        # the session's own
    pruned: list[Ref] = field(default_factory=list)          # by Flux
    kept: list[tuple[Ref, str]] = field(default_factory=list)  # and why

    @property
    def kinds(self) -> list[str]:
        """Each kind once, in removal order (a session has two Secrets)."""
        return list(dict.fromkeys(o["kind"] for o in self.objects))


def plan(kube: Kube, name: str, keep_workloads: bool = False) -> Removal:
    """Read what `down` would remove, changing nothing."""
    ns, removal = kube.namespace, Removal()
    for kind, own_name in naming.owned_objects(name, ns):
        obj = get_if_allowed(kube, kind, own_name, ns)
        if obj is not None and naming.owns(obj, name):
            removal.objects.append({**obj, "kind": kind})
    ks = next((o for o in removal.objects if o["kind"] == "Kustomization"), None)
    if ks is not None and not keep_workloads and ks["spec"].get("prune"):
        _split_inventory(Discovery(kube), ks, removal)
    return removal


def get_if_allowed(kube: Kube, kind: str, name: str, ns: str) -> dict | None:
    """A user who may not read cluster-scoped objects could not have made the
    session's ClusterRoleBinding either: it is not there to remove. Nor its
    HelmRelease, for a user whose Role leaves out helm-controller's API."""
    try:
        return kube.get(kind, name, ns)
    except ApiError as e:
        if e.status == 403 and (not KINDS[kind][2] or kind == "HelmRelease"):
            return None
        raise


def _split_inventory(discovery: Discovery, ks: dict, removal: Removal) -> None:
    created = ks["metadata"].get("creationTimestamp")
    for ref in inventory.entries(ks):
        obj = discovery.get(ref.api_version, ref.kind, ref.namespace, ref.name)
        reason = inventory.keep_reason(ref, obj, created)
        if reason:
            removal.kept.append((ref, reason))
        elif obj is not None:
            removal.pruned.append(ref)


def down(kube: Kube, name: str, *, keep_workloads: bool = False, timeout: float = 300,
         dry_run: bool = False) -> Removal:
    """Remove one session: the Kustomization first (so Flux prunes what it
    applied, unless keep_workloads), then the rest."""
    removal = plan(kube, name, keep_workloads)
    if dry_run:
        return removal
    discovery = Discovery(kube)
    for ref, _ in removal.kept:
        discovery.patch(ref.api_version, ref.kind, ref.namespace, ref.name,
                        inventory.keep_patch())
    gone = []
    for obj in removal.objects:
        if _remove(kube, obj, keep_workloads, timeout):
            gone.append(obj)
    for obj in gone:
        if obj["kind"] in ("Deployment", "Service", "Secret"):
            wait_gone(kube, obj["kind"], obj["metadata"]["name"], kube.namespace, None, timeout)
    removal.objects = gone
    return removal


def _remove(kube: Kube, obj: dict, keep_workloads: bool, timeout: float) -> bool:
    kind, meta, ns = obj["kind"], obj["metadata"], kube.namespace
    if kind == "Kustomization" and keep_workloads and obj["spec"].get("prune"):
        kube.patch(kind, meta["name"], {"spec": {"prune": False}}, ns)
    if kind == "HelmRelease" and keep_workloads:   # helm-controller skips the uninstall
        kube.patch(kind, meta["name"], {"spec": {"suspend": True}}, ns)
    removed = kube.delete(kind, meta["name"], ns, uid=meta["uid"])
    if kind in FINALIZED:
        wait_gone(kube, kind, meta["name"], ns, meta["uid"], timeout)
    if kind == "HelmRelease" and keep_workloads:
        _remove_chart(kube, obj)
    return removed


def _remove_chart(kube: Kube, release: dict) -> None:
    """The HelmChart helm-controller leaves behind for a suspended HelmRelease
    (it carries the session's labels: core.helm.release)."""
    session = release["metadata"]["labels"][naming.SESSION_LABEL]
    name = helm.chart_name(kube.namespace, release["metadata"]["name"])
    chart = kube.get("HelmChart", name, kube.namespace)
    if naming.owns(chart, session):
        kube.delete("HelmChart", name, kube.namespace, uid=chart["metadata"]["uid"])


def wait_gone(kube: Kube, kind: str, name: str, ns: str, uid: str | None,
              timeout: float) -> None:
    def gone(obj: dict | None) -> bool:
        return obj is None or (uid is not None and obj["metadata"]["uid"] != uid)
    try:
        until(kube, kind, ns, gone, name=name, timeout=timeout)
    except WaitTimeout:
        # Flux's finalizers prune (or uninstall) what was deployed: they need Flux
        hint = " (is Flux running? its finalizer must let it go)" if kind in FINALIZED else ""
        raise UserError(f"timed out after {timeout:g}s waiting for {kind} {ns}/{name} to be "
                        f"deleted{hint}") from None
