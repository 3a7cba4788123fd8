"""Sessions as the cluster shows them: our labelled objects grouped into one
record per session (pure). The record's field names are the stable ones
`ls -o json|yaml` prints (see cli.output)."""
from __future__ import annotations

import os

from . import flux
from . import forwards as fw
from . import naming as sess
from .pods import current_pod

# Where a session's static facts are read from, best first.
KINDS = ("Kustomization", "HelmRelease", "Bucket", "Deployment", "Service", "Secret")
# What deploys a session: a Kustomization, or a HelmRelease for a Helm chart.
DEPLOYERS = ("HelmRelease", "Kustomization")


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def group(objects: dict[str, list[dict]]) -> dict[tuple[str, str], dict[str, list[dict]]]:
    """kind -> objects  =>  (namespace, session) -> kind -> objects."""
    out: dict = {}
    for kind, items in objects.items():
        for obj in items:
            meta = obj["metadata"]
            name = (meta.get("labels") or {}).get(sess.SESSION_LABEL)
            if name:
                out.setdefault((meta.get("namespace", ""), name), {}).setdefault(kind, []).append(obj)
    return out


def record(namespace: str, name: str, objs: dict[str, list[dict]]) -> dict:
    own = sess.object_name(name)

    def one(kind: str) -> dict | None:
        return next((o for o in objs.get(kind, []) if o["metadata"]["name"] == own), None)

    anchors = [o for o in (one(k) for k in KINDS) if o is not None]

    def static(key: str) -> str | None:
        return next((v for v in (sess.fact(o, key) for o in anchors) if v), None)

    bucket = one("Bucket")
    kind = next((k for k in DEPLOYERS if one(k) is not None), None)
    ks = one(kind) if kind else None
    created = min((o["metadata"].get("creationTimestamp") or "" for o in anchors), default="")
    pod = current_pod(objs.get("Pod", []))
    path = static(sess.PATH)
    if ks is None:
        ready, status = None, ("incomplete: no Kustomization or HelmRelease (run up to "
                               "repair, or down)")
    else:
        ready, status = flux.ready(ks), flux.message(ks) or None
    return {
        "name": name, "namespace": namespace,
        "kind": kind,
        "source": static(sess.SOURCE), "path": None if path in (None, ".") else path,
        "targetNamespace": static(sess.TARGET), "host": static(sess.HOST),
        "user": static(sess.USER), "created": created or None,
        "lastSync": sess.fact(bucket, sess.LAST_SYNC),
        "revision": sess.fact(bucket, sess.REVISION),
        "files": _int(sess.fact(bucket, sess.FILES)),
        "bytes": _int(sess.fact(bucket, sess.BYTES)),
        "ready": ready, "status": status,
        "bucketPod": pod["metadata"]["name"] if pod else None,
        "objectsApplied": flux.applied_count(ks),
        "decrypts": bool(((ks or {}).get("spec") or {}).get("decryption")),
        # the forwards of loops running now (ops.forward records them on the Bucket)
        "forwards": fw.read_records(((bucket or {}).get("metadata") or {}).get("annotations"),
                                    sess.ANNOTATION + fw.FORWARDS),
    }


def sessions(objects: dict[str, list[dict]]) -> list[dict]:
    return sorted((record(ns, name, objs) for (ns, name), objs in group(objects).items()),
                  key=lambda r: (r["namespace"], r["name"]))


def contains(source: str | None, cwd: str) -> bool:
    """Is `cwd` the session's source dir or inside it?"""
    if not source:
        return False
    source = os.path.normpath(source)
    return cwd == source or cwd.startswith(source.rstrip(os.sep) + os.sep)


def by_directory(records: list[dict], cwd: str) -> list[dict]:
    """The sessions whose source dir holds `cwd`; the deepest source first."""
    hits = [r for r in records if contains(r["source"], cwd)]
    return sorted(hits, key=lambda r: -len(r["source"]))
