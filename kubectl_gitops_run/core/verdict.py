"""The plugin's own health verdict on what Flux applied (pure).

kustomize-controller polls the objects it applied every 5 s; the plugin
watches them instead and judges them by the same kstatus rules (core.health),
so a sync reports healthy, or names what is failing and why, as soon as the
last object settles. Flux's verdict stays the authority for the exit code:
this one only comes sooner, and a disagreement is said out loud.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import health, resources
from .inventory import Ref

# Workloads whose pods say why they are not ready (a CrashLoopBackOff pod
# never changes its Deployment's status).
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    reason: str = ""            # the failing object and why; "" when healthy
    seconds: float = 0.0        # from Flux's apply to the verdict


def plan(refs: list[Ref]) -> tuple[list[Ref], list[Ref]]:
    """(the objects to watch until they settle, those only Flux can judge).
    Kinds Current on creation need no watch; kinds the plugin knows no path
    for (custom resources) are left to Flux."""
    watch, unjudged = [], []
    for ref in refs:
        if ref.kind in health.AT_ONCE:
            continue
        known = resources.KINDS.get(ref.kind)
        if known and known[0] == ref.api_version and known[2] == bool(ref.namespace):
            watch.append(ref)
        else:
            unjudged.append(ref)
    return watch, unjudged


def pod_selector(workload: dict | None) -> str | None:
    """The label selector of a workload's pods; None when it has none that a
    label selector can say (matchExpressions)."""
    selector = ((workload or {}).get("spec") or {}).get("selector") or {}
    labels = selector.get("matchLabels") or {}
    if not labels or selector.get("matchExpressions"):
        return None
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def stuck_pod(pods: list[dict]) -> str | None:
    """Why one of these pods will not start without a change, if one will not."""
    for pod in pods:
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        judged = health.pod(pod)
        if judged.status == health.FAILED:
            return f"pod {pod['metadata']['name']}: {judged.reason}"
    return None


def describe(verdict: Verdict, objects: int) -> str:
    """The line a sync shows when its own verdict is in."""
    after = f"{verdict.seconds:.1f}s after Flux applied them"
    if verdict.healthy:
        return f"healthy: {objects} objects Current, {after}; Flux's check follows"
    return f"not healthy, {after}: {verdict.reason}; waiting for Flux's verdict"


def disagreement(verdict: Verdict | None, flux_healthy: bool) -> str:
    """What to add when Flux's verdict (which stands) differs from ours."""
    if verdict is None or verdict.healthy == flux_healthy:
        return ""
    if flux_healthy:
        return f"Flux found the objects healthy after the plugin saw: {verdict.reason}"
    return "the plugin had found every object Current; Flux's health check disagrees"
