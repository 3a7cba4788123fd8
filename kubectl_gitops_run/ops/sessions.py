"""Finding sessions: all of a namespace (ls), or the one a command means."""
from __future__ import annotations

from ..adapters.kube import Kube
from ..core import naming, sessions
from ..errors import ApiError, UserError

LISTED_KINDS = ("Kustomization", "Bucket", "Deployment", "Service")


def find_sessions(kube: Kube, namespace: str | None, selector: str | None = None) -> list[dict]:
    """Every session in a namespace (None: all), as ls records."""
    sel = naming.selector(extra=selector)
    objects = {kind: kube.list(kind, namespace, sel) for kind in LISTED_KINDS}
    objects["Pod"] = kube.list("Pod", namespace, naming.bucket_pods_selector(extra=selector))
    try:    # a session cut off right after its Secret has nothing else to show
        objects["Secret"] = kube.list("Secret", namespace, sel, metadata_only=True)
    except ApiError as e:
        if e.status != 403:     # many users may not list Secrets: not a reason to fail
            raise
    return sessions.sessions(objects)


def resolve(kube: Kube, name: str | None, cwd: str) -> dict:
    """The session to sync: by name, else the one whose source dir holds cwd."""
    records = find_sessions(kube, kube.namespace)
    if name:
        hit = next((r for r in records if r["name"] == name), None)
        if hit is None:
            raise UserError(f"session {name!r} not found in namespace {kube.namespace!r}"
                            + _candidates(records))
        return hit
    hits = sessions.by_directory(records, cwd)
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise UserError(f"no session in namespace {kube.namespace!r} has {cwd} in its source "
                        f"directory; pass a session NAME or start one with `up`"
                        + _candidates(records))
    raise UserError(f"several sessions in namespace {kube.namespace!r} hold {cwd}: "
                    f"{', '.join(r['name'] for r in hits)}; pass the session NAME")


def _candidates(records: list[dict]) -> str:
    if not records:
        return " (it has no sessions)"
    return " (sessions: " + ", ".join(f"{r['name']} ({r['source'] or '?'})" for r in records) + ")"
