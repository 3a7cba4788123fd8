"""A session's sync history, kept as Kubernetes Events on its Bucket (pure).

Each sync is one Event (reason SYNCED, or SYNC_FAILED with the error), so the
history lives in the cluster: `kubectl events` shows it, and any `ui` reads
it back. The counts and the revision ride on the Event's annotations, the
sentence for people in its message.
"""
from __future__ import annotations

import secrets

from . import naming
from .resources import KINDS
from .units import short_revision

SYNCED, SYNC_FAILED = "Synced", "SyncFailed"
COMPONENT = "kubectl-gitops-run"
MAX_MESSAGE = 1024      # the API server refuses Event messages past a few KiB


def sync_event(namespace: str, session: str, *, now: str, who: str, bucket_uid: str | None,
               counts: tuple[int, int, int] | None = None, revision: str | None = None,
               error: str | None = None) -> dict:
    """The Event that records one sync: `counts` (added, changed, removed) and
    `revision` for one that worked, `error` for one that failed."""
    bucket = naming.object_name(session)
    if error is None:
        added, changed, removed = counts or (0, 0, 0)
        reason, kind = SYNCED, "Normal"
        message = (f"+{added} ~{changed} -{removed} files, revision "
                   f"{short_revision(revision)}, by {who}")
        facts = naming.annotations(revision=revision, added=added, changed=changed,
                                   removed=removed, user=who)
    else:
        reason, kind = SYNC_FAILED, "Warning"
        message = f"sync by {who} failed: {error}"[:MAX_MESSAGE]
        facts = naming.annotations(user=who)
    involved = {"kind": "Bucket", "apiVersion": KINDS["Bucket"][0], "name": bucket,
                "namespace": namespace}
    if bucket_uid:
        involved["uid"] = bucket_uid
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{bucket}.{secrets.token_hex(8)}", "namespace": namespace,
                     "labels": naming.labels(session), "annotations": facts},
        "involvedObject": involved, "reason": reason, "message": message, "type": kind,
        "source": {"component": COMPONENT}, "reportingComponent": COMPONENT,
        "reportingInstance": who, "firstTimestamp": now, "lastTimestamp": now, "count": 1,
    }


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def entries(events: list[dict], session: str) -> list[dict]:
    """The syncs recorded for a session, newest first."""
    bucket = naming.object_name(session)
    out = []
    for ev in events:
        involved = ev.get("involvedObject") or {}
        if ev.get("reason") not in (SYNCED, SYNC_FAILED) or involved.get("kind") != "Bucket" \
                or involved.get("name") != bucket:
            continue
        out.append({
            "time": event_time(ev), "ok": ev.get("reason") == SYNCED,
            "revision": naming.fact(ev, "revision"),
            "added": _int(naming.fact(ev, "added")), "changed": _int(naming.fact(ev, "changed")),
            "removed": _int(naming.fact(ev, "removed")), "user": naming.fact(ev, "user"),
            "message": ev.get("message") or "",
        })
    return sorted(out, key=lambda e: e["time"] or "", reverse=True)


def event_time(ev: dict) -> str | None:
    """When an Event last happened, whichever API wrote it."""
    series = (ev.get("series") or {}).get("lastObservedTime")
    return (series or ev.get("lastTimestamp") or ev.get("eventTime")
            or ev.get("firstTimestamp") or (ev.get("metadata") or {}).get("creationTimestamp"))
