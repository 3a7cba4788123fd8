"""Finding sessions: all of a namespace (ls), or the one a command means."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from ..adapters.kube import Kube
from ..core import forwards, naming, sessions
from ..errors import ApiError, UserError

LISTED_KINDS = ("Kustomization", "Bucket", "Deployment", "Service")
# Listed if the user may: many may not list Secrets (a session cut off right
# after its Secret has nothing else to show), and a Role may leave out
# helm-controller's API (its user has no chart sessions then).
MAY_LIST = (("HelmRelease", False), ("Secret", True))     # (kind, metadata only)


def find_sessions(kube: Kube, namespace: str | None, selector: str | None = None) -> list[dict]:
    """Every session in a namespace (None: all), as ls records."""
    sel = naming.selector(extra=selector)
    lists = [(kind, sel, False, False) for kind in LISTED_KINDS]
    lists.append(("Pod", naming.bucket_pods_selector(extra=selector), False, False))
    lists += [(kind, sel, metadata_only, True) for kind, metadata_only in MAY_LIST]

    def one(kind, selector, metadata_only, optional):
        try:
            return kube.list(kind, namespace, selector, metadata_only=metadata_only)
        except ApiError as e:
            if optional and e.status == 403:     # not a reason to fail
                return None
            raise
    with ThreadPoolExecutor(len(lists)) as pool:     # one round trip, not seven
        found = list(pool.map(lambda args: one(*args), lists))
    objects = {args[0]: items for args, items in zip(lists, found) if items is not None}
    now = datetime.now(timezone.utc)    # a killed loop's forwards expire (core.forwards)
    return [{**r, "forwards": forwards.live(r["forwards"], now)}
            for r in sessions.sessions(objects)]


def resolve(kube: Kube, name: str | None, cwd: str) -> dict:
    """The session to sync: by name, else the one whose source dir holds cwd.
    Reads only the Flux objects (they carry the static facts): every request
    counts on a busy cluster."""
    ns = kube.namespace
    if name:
        for kind in ("Kustomization", "Bucket"):     # either holds the static facts
            obj = kube.get(kind, naming.object_name(name), ns)
            if naming.owns(obj, name):
                return sessions.record(ns, name, {kind: [obj]})
        records = find_sessions(kube, ns)     # a half-created session is still one
        hit = next((r for r in records if r["name"] == name), None)
        if hit is None:
            raise UserError(f"session {name!r} not found in namespace {ns!r}"
                            + _candidates(records) + "; check the name and -n, or start it "
                            "with `kubectl gitops-run up DIR`")
        return hit
    sel = naming.selector()
    records = sessions.sessions({kind: kube.list(kind, ns, sel)
                                 for kind in ("Kustomization", "Bucket")})
    hits = sessions.by_directory(records, cwd)
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise UserError(f"no session in namespace {ns!r} has {cwd} in its source "
                        f"directory; pass a session NAME or start one with `up`"
                        + _candidates(find_sessions(kube, ns)))
    raise UserError(f"several sessions in namespace {ns!r} hold {cwd}: "
                    f"{', '.join(r['name'] for r in hits)}; pass the session NAME")


def source_of(record: dict, source_dir: str | None, host: str, force: bool = False) -> str:
    """The directory to sync: the recorded one, or --dir. Syncing another
    directory, or from another host, would take the session over (Flux then
    prunes what it deployed), so that needs --force."""
    recorded, name = record.get("source"), record["name"]
    chosen = os.path.abspath(source_dir) if source_dir else recorded
    if not chosen:
        raise UserError(f"session {name!r} has no recorded source directory; pass --dir")
    theirs_host = record.get("host")
    if not force and recorded and (chosen != recorded or (theirs_host and theirs_host != host)):
        raise UserError(f"session {name!r} belongs to {recorded} on host {theirs_host}, not "
                        f"{chosen} on {host}; syncing it would replace what it deployed: pass "
                        f"--force to take it over, or start your own with `up`")
    return chosen


def _candidates(records: list[dict]) -> str:
    if not records:
        return " (it has no sessions)"
    return " (sessions: " + ", ".join(f"{r['name']} ({r['source'] or '?'})" for r in records) + ")"
