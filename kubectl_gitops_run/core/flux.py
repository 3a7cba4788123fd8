"""What Flux's objects say, read from their status (pure).

A sync waits for two facts: the Bucket has indexed exactly the expected
revision (from a spec at least as new as our last patch), and the
Kustomization has applied that revision and is Ready. `Progress` says whether
that is done, still under way, or failed with Flux's own message.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
SOURCE_GROUP = "source.toolkit.fluxcd.io"
KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io"
HELM_GROUP = "helm.toolkit.fluxcd.io"
# what `up` needs served, and which controller serves it
REQUIRED = ((SOURCE_GROUP, "v1", "buckets", "source-controller"),
            (KUSTOMIZE_GROUP, "v1", "kustomizations", "kustomize-controller"))
# ... and for a Helm chart (core.helm)
REQUIRED_HELM = ((SOURCE_GROUP, "v1", "buckets", "source-controller"),
                 (HELM_GROUP, "v2", "helmreleases", "helm-controller"))

WAITING, DONE, FAILED = "waiting", "done", "failed"


@dataclass(frozen=True)
class Progress:
    state: str                  # WAITING, DONE or FAILED
    message: str = ""           # Flux's words, when it has any


def condition(obj: dict | None, kind: str = "Ready") -> dict | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return c
    return None


def ready(obj: dict | None) -> str | None:
    c = condition(obj)
    return c.get("status") if c else None


# kustomize-controller builds in a temporary directory, and its messages name
# it: people know their files by their paths in their own directory.
_BUILD_DIR = re.compile(r"/tmp/kustomization-\d+/")


def message(obj: dict | None) -> str:
    """The Ready condition's message, on one line, with paths as the user knows them."""
    c = condition(obj)
    return _BUILD_DIR.sub("", " ".join((c or {}).get("message", "").split()))


def request_reconcile(now: datetime | None = None) -> tuple[str, dict]:
    """A token and the merge patch that asks a Flux object to reconcile now."""
    token = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return token, {"metadata": {"annotations": {REQUESTED_AT: token}}}


def observed(obj: dict, generation: int | None) -> bool:
    """Has the controller finished a reconcile of `generation` (None: the current one)?"""
    if generation is None:
        generation = obj["metadata"].get("generation", 0)
    return (obj.get("status") or {}).get("observedGeneration", -1) >= generation


def bucket_progress(obj: dict | None, revision: str, generation: int | None = None) -> Progress:
    """Done once the Bucket's artifact is `revision`, indexed from a spec no
    older than `generation` (the one our patch made)."""
    if obj is None:
        return Progress(FAILED, "the Bucket was deleted")
    status = obj.get("status") or {}
    got = (status.get("artifact") or {}).get("revision")
    if got == revision and observed(obj, generation):
        return Progress(DONE)
    if ready(obj) == "False" and observed(obj, generation):
        # Flux retries a failing Bucket on its own; the caller decides when to give up
        return Progress(WAITING, message(obj))
    return Progress(WAITING, message(obj) if ready(obj) == "False" else "")


def kustomization_progress(obj: dict | None, revision: str, token: str | None = None) -> Progress:
    """Done once `revision` is applied and Ready; failed once Flux has tried
    exactly that revision and said why it is not Ready (in answer to the
    reconcile request `token`, when given)."""
    if obj is None:
        return Progress(FAILED, "the Kustomization was deleted")
    status = obj.get("status") or {}
    state = ready(obj)
    if status.get("lastAppliedRevision") == revision and state == "True" and observed(obj, None):
        return Progress(DONE)
    # after a failed attempt Flux says Reconciling/ProgressingWithRetry: that
    # attempt's verdict stands; plain Progressing is an attempt under way
    reconciling = condition(obj, "Reconciling") or {}
    trying = reconciling.get("status") == "True" and reconciling.get("reason") == "Progressing"
    answered = token is None or status.get("lastHandledReconcileAt") == token
    if status.get("lastAttemptedRevision") == revision and state == "False" and not trying \
            and answered:
        return Progress(FAILED, message(obj))
    return Progress(WAITING, message(obj) if state == "False" else "")


# kustomize-controller's words on its Healthy condition while it polls (every
# 5 s) the objects it just applied; status.inventory already lists them then.
HEALTH_CHECKS = "Running health checks for revision "


def checking_health(obj: dict | None, revision: str) -> bool:
    """Has Flux applied `revision` and begun its health checks of it?"""
    healthy = condition(obj, "Healthy") or {}
    return (healthy.get("status") == "Unknown"
            and (healthy.get("message") or "").startswith(f"{HEALTH_CHECKS}{revision} "))


def applied_count(kustomization: dict | None) -> int | None:
    inventory = ((kustomization or {}).get("status") or {}).get("inventory")
    if inventory is None:
        return None
    return len(inventory.get("entries") or [])


def spec_seen(bucket: dict) -> bool:
    """Has source-controller finished a reconcile of the Bucket's current spec?
    Only status.observedGeneration says so: the generation on a condition is no
    proof (the torn-sync test caught revisions built from a slot being written
    while a condition already named the new generation)."""
    return observed(bucket, None)


def artifact_revision(bucket: dict | None) -> str | None:
    return (((bucket or {}).get("status") or {}).get("artifact") or {}).get("revision")


def missing_apis(served: dict[str, list[str]], required=REQUIRED) -> list[str]:
    """`served`: group/version -> resource names the API server serves. Returns
    a description of each required Flux API that is not served."""
    out = []
    for group, version, resource, controller in required:
        if resource not in served.get(f"{group}/{version}", []):
            out.append(f"{resource}.{group}/{version} ({controller})")
    return out


def install_hint(missing: list[str], context: str) -> str:
    return (f"Flux is not installed in context {context!r}: the API server does not serve "
            f"{' and '.join(missing)}. Install Flux 2.x with `flux install` "
            f"(https://fluxcd.io/flux/installation/) and try again")


def advice(message: str, namespace: str, account: str) -> str:
    """The way out of a failure Flux reported: more quota, more rights, or
    (anything else) a fix in the manifests."""
    if "exceeded quota" in message:     # a 403 too, but no rule would help
        return (f"; a ResourceQuota of namespace {namespace} refuses it: free some of it, or "
                f"ask to raise the quota (`kubectl describe resourcequota -n {namespace}`)")
    return needs_more_rights(message, namespace, account) or "; fix the manifests and sync again"


# how `flux resume` names a kind
_RESUME = {"Bucket": "source bucket", "HelmChart": "source chart",
           "Kustomization": "kustomization", "HelmRelease": "helmrelease"}


def suspended(kind: str, obj: dict | None) -> str:
    """What to say of a Flux object its controller leaves alone (spec.suspend);
    '' when it is not suspended."""
    if not ((obj or {}).get("spec") or {}).get("suspend"):
        return ""
    meta = obj["metadata"]
    name, ns = meta["name"], meta.get("namespace", "")
    return (f"{kind} {ns}/{name} is suspended, so Flux leaves it alone: resume it with "
            f"`flux resume {_RESUME.get(kind, kind.lower())} {name} -n {ns}` (or set "
            f"spec.suspend to false)")


def stalled(kind: str, obj: dict | None) -> str:
    """Why a wait for a Flux object ran out when Flux said nothing: its
    controller has not reconciled the object's current spec ('' if it has),
    or is still at it (a first reconcile keeps observedGeneration at -1 while
    it waits for health checks: that controller is running)."""
    if obj is None or observed(obj, None):
        return ""
    working = condition(obj, "Reconciling") or {}
    if working.get("status") == "True" and \
            working.get("observedGeneration", -1) >= obj["metadata"].get("generation", 0):
        return f": {' '.join(working.get('message', '').split())}"
    group = (obj.get("apiVersion") or "").partition("/")[0]
    controller = controller_for(kind, group) or "its controller"
    return (f"; {controller} has not reconciled generation "
            f"{obj['metadata'].get('generation')} of it: is Flux's {controller} running?")


def needs_more_rights(message: str, namespace: str, account: str) -> str:
    """What to do when Flux was forbidden to apply a manifest as the session's
    ServiceAccount: '' when the message is about something else."""
    if "forbidden" not in message.lower():
        return ""
    return (f"; the session applies as ServiceAccount {namespace}/{account}, with your own "
            f"rights in namespace {namespace}, so a manifest that needs more (a cluster-scoped "
            f"object, another namespace) needs rights you do not have: ask for them, or pass "
            f"--service-account NAME")


# Flux's own kinds, by group and kind, and the controller that serves them; the
# ones `flux install` leaves out need --components-extra.
_CONTROLLERS = {SOURCE_GROUP: "source-controller", KUSTOMIZE_GROUP: "kustomize-controller",
                HELM_GROUP: "helm-controller",
                "notification.toolkit.fluxcd.io": "notification-controller",
                "source.extensions.fluxcd.io": "source-watcher"}
_IMAGE_CONTROLLERS = {"ImageUpdateAutomation": "image-automation-controller"}
_EXTRA = ("image-reflector-controller", "image-automation-controller", "source-watcher")
# the API server's NoKindMatchError, as Flux and Helm quote it
_NO_KIND = re.compile(r'no matches for kind "([^"]+)" in version "([^"]+)"'
                      r'(\s*ensure CRDs are installed first)?')


def controller_for(kind: str, group: str) -> str | None:
    """The Flux controller that serves a kind; None for a kind that is not Flux's."""
    if group == "image.toolkit.fluxcd.io":
        return _IMAGE_CONTROLLERS.get(kind, "image-reflector-controller")
    return _CONTROLLERS.get(group)


def _install(kind: str, group_version: str) -> str:
    controller = controller_for(kind, group_version.rpartition("/")[0])
    if controller is None:
        return (f"install the CRD that defines it (from the operator or chart that provides "
                f"{kind}) first")
    how = (f"flux install --components-extra={controller}" if controller in _EXTRA
           else "flux install")
    return f"install Flux's {controller} (`{how}`)"


def missing_kind(message: str) -> str:
    """Flux's message with the API server's "no matches for kind" said as what
    to do: the kind is not served, and which controller (or CRD) to install."""
    def say(m: re.Match) -> str:
        kind, group_version = m.group(1), m.group(2)
        return (f"the cluster does not serve kind {kind} ({group_version}): "
                f"{_install(kind, group_version)}")
    return _NO_KIND.sub(say, message)

