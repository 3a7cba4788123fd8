"""What the `ui` page shows, built from the objects the server watches (pure).

`World` is a read-only view of those objects; `session_list` and
`session_detail` turn it into plain JSON-ready dicts. Only chosen fields go
into a view, never whole objects: Secret contents and the S3 credentials
cannot reach the browser by this path (docs/architecture.md, invariant 5),
and `redact` strips them from what is kept in memory too.
"""
from __future__ import annotations

import hashlib
import re
from datetime import datetime

from . import flux, forwards, health, helm, history, namespaces, naming, sessions
from .inventory import Ref, entries
from .pods import current_pod, pod_problem, pod_ready
from .preflight import KUSTOMIZATION_FILES

SOURCE_GROUP, KUSTOMIZE_GROUP, HELM_GROUP = flux.SOURCE_GROUP, flux.KUSTOMIZE_GROUP, flux.HELM_GROUP
# what deploys a session: a Kustomization, or a HelmRelease for a chart (core.helm)
DEPLOYERS = {helm.KUSTOMIZATION: KUSTOMIZE_GROUP, helm.HELM_RELEASE: HELM_GROUP}
UNKNOWN = "Unknown"
RANK = {health.CURRENT: 0, UNKNOWN: 1, health.IN_PROGRESS: 2, health.FAILED: 3}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
MAX_EVENTS = 100
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def redact(obj: dict) -> dict:
    """What the server keeps of an object: no managedFields, no Secret data,
    no last-applied copy (it may hold a Secret's data too)."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("managedFields", None)
    if LAST_APPLIED in (meta.get("annotations") or {}):
        meta["annotations"] = {k: v for k, v in meta["annotations"].items() if k != LAST_APPLIED}
    out = {k: v for k, v in obj.items() if k not in ("data", "stringData")
           or obj.get("kind") != "Secret"}
    out["metadata"] = meta
    return out


class World:
    """Objects by (group, kind), then (namespace, name); `watched` says which
    kinds are known in full (an object missing from those is gone)."""

    def __init__(self, objects: dict[tuple[str, str], dict[tuple[str, str], dict]],
                 watched: set[tuple[str, str]] | None = None, errors: list[str] | None = None,
                 now: datetime | None = None):
        self.by_kind, self.errors = objects, errors or []
        self.now = now      # a killed loop's forwards expire by it (core.forwards)
        self.watched = set(objects) if watched is None else watched

    def objects(self, group: str, kind: str, namespace: str | None = None) -> list[dict]:
        found = (self.by_kind.get((group, kind)) or {}).items()
        return [o for (ns, _), o in found if namespace is None or ns == namespace]

    def get(self, group: str, kind: str, namespace: str, name: str) -> dict | None:
        return (self.by_kind.get((group, kind)) or {}).get((namespace, name))

    def deployer(self, namespace: str, session: str) -> tuple[str, dict | None]:
        """The session's Kustomization, or its HelmRelease: (kind, object)."""
        own = naming.object_name(session)
        for kind, group in DEPLOYERS.items():
            obj = self.get(group, kind, namespace, own)
            if obj is not None:
                return kind, obj
        return helm.KUSTOMIZATION, None

    def deployers(self) -> list[dict]:
        return [o for kind, group in DEPLOYERS.items() for o in self.objects(group, kind)]

    def session_objects(self) -> dict[str, list[dict]]:
        """What core.sessions groups into records (kind -> objects)."""
        return {**{kind: self.objects(group, kind) for kind, group in DEPLOYERS.items()},
                "Bucket": self.objects(SOURCE_GROUP, "Bucket"),
                "Deployment": self.objects("apps", "Deployment"),
                "Pod": [p for p in self.objects("", "Pod") if _bucket_pod(p)]}


def _bucket_pod(pod: dict) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return labels.get(naming.COMPONENT_LABEL) == naming.BUCKET_SERVER \
        and naming.SESSION_LABEL in labels


def worst(healths: list[dict]) -> dict:
    return max(healths, key=lambda h: RANK.get(h["status"], 1),
               default={"status": health.CURRENT, "reason": ""})


def deployer_health(ks: dict | None) -> dict:
    """Health of the session's Kustomization or HelmRelease (`ks`)."""
    if ks is None:
        return {"status": health.FAILED,
                "reason": "no Kustomization or HelmRelease: run up to repair, or down"}
    # Reconciling/ProgressingWithRetry follows a failed attempt: its verdict stands
    reconciling = flux.condition(ks, "Reconciling") or {}
    trying = reconciling.get("status") == "True" and reconciling.get("reason") == "Progressing"
    if flux.ready(ks) == "False" and not trying:
        return {"status": health.FAILED, "reason": flux.message(ks)}
    h = health.status(ks)
    return {"status": h.status, "reason": h.reason}


def object_health(world: World, ref: Ref) -> dict:
    group_kind = (ref.group, ref.kind)
    obj = world.get(ref.group, ref.kind, ref.namespace, ref.name)
    if obj is None and group_kind not in world.watched:
        if ref.kind in health.AT_ONCE:
            return {"status": health.CURRENT, "reason": ""}
        return {"status": UNKNOWN, "reason": "not watched"}
    h = health.status(obj)
    return {"status": h.status, "reason": h.reason}


def _record_extras(world: World, rec: dict, grouped: dict) -> dict:
    ns, name = rec["namespace"], rec["name"]
    _, ks = world.deployer(ns, name)
    parts = [deployer_health(ks)] + [object_health(world, r) for r in entries(ks)]
    syncs = history.entries(world.objects("", "Event", ns), name)
    pod = current_pod(grouped.get("Pod", []))
    shown = forwards.live(rec["forwards"], world.now) if world.now else rec["forwards"]
    return {**rec, "health": worst(parts), "forwards": shown,
            "lastSyncFailed": bool(syncs) and not syncs[0]["ok"],
            "bucketReady": pod is not None and pod_ready(pod)}


def session_list(world: World) -> dict:
    """The list page: `ls -o wide` records, with health and markers."""
    grouped = sessions.group(world.session_objects())
    rows = [_record_extras(world, sessions.record(ns, name, objs), objs)
            for (ns, name), objs in sorted(grouped.items())]
    return {"view": "list", "sessions": rows, "errors": world.errors,
            "namespaces": sorted({r["namespace"] for r in rows})}


def conditions(obj: dict | None) -> list[dict]:
    keep = ("type", "status", "reason", "message", "lastTransitionTime")
    return [{k: c.get(k) for k in keep}
            for c in ((obj or {}).get("status") or {}).get("conditions") or []]


def pod_view(pod: dict) -> dict:
    problem = pod_problem(pod)
    waiting = next((((cs.get("state") or {}).get("waiting") or {}).get("reason")
                    for cs in (pod.get("status") or {}).get("containerStatuses") or []
                    if ((cs.get("state") or {}).get("waiting") or {}).get("reason")), None)
    return {"name": pod["metadata"]["name"], "phase": (pod.get("status") or {}).get("phase"),
            "ready": pod_ready(pod), "waitingReason": waiting,
            "problem": problem[0] if problem and not pod_ready(pod) else None}


def workload_pods(world: World, obj: dict | None) -> list[dict]:
    """The pods a workload selects (by matchLabels, in its namespace)."""
    if obj is None or obj.get("kind") not in WORKLOADS:
        return []
    want = (((obj.get("spec") or {}).get("selector") or {}).get("matchLabels")) or {}
    if not want:
        return []
    ns = obj["metadata"].get("namespace", "")
    picked = [p for p in world.objects("", "Pod", ns)
              if want.items() <= ((p["metadata"].get("labels") or {}).items())]
    return [pod_view(p) for p in sorted(picked, key=lambda p: p["metadata"]["name"])]


def inventory_view(world: World, ks: dict | None) -> list[dict]:
    out = []
    for ref in entries(ks):
        obj = world.get(ref.group, ref.kind, ref.namespace, ref.name)
        out.append({"id": str(ref), "kind": ref.kind, "namespace": ref.namespace,
                    "name": ref.name, "health": object_health(world, ref),
                    "pods": workload_pods(world, obj)})
    return out


def _involved(ns: str, session: str, refs: list[Ref],
              deployer: dict | None) -> set[tuple[str, str, str]]:
    """(namespace, kind, name) of everything whose Events the detail shows:
    the session's objects, its inventory, and a HelmRelease's HelmChart."""
    own = {(ns, kind, name) for kind, name in naming.owned_objects(session, ns)}
    chart = (((deployer or {}).get("status") or {}).get("helmChart") or "").partition("/")
    if chart[2]:
        own.add((chart[0], "HelmChart", chart[2]))
    return own | {(r.namespace, r.kind, r.name) for r in refs}


def events_view(world: World, involved: set[tuple[str, str, str]],
                pod_names: set[tuple[str, str]]) -> list[dict]:
    out = []
    for ev in world.objects("", "Event"):
        obj = ev.get("involvedObject") or {}
        key = (obj.get("namespace") or "", obj.get("kind"), obj.get("name"))
        if key in involved or (key[1] == "Pod" and (key[0], key[2]) in pod_names):
            out.append({"time": history.event_time(ev), "type": ev.get("type"),
                        "reason": ev.get("reason"), "object": f"{key[1]}/{key[2]}",
                        "message": ev.get("message") or "", "count": ev.get("count")})
    out.sort(key=lambda e: e["time"] or "", reverse=True)
    return out[:MAX_EVENTS]


def revisions(kind: str, deployer: dict | None, bucket: dict | None) -> dict:
    """What Flux has: the Bucket's artifact, and what the deployer applied
    and last tried (for a HelmRelease: chart versions, `<version>+<digest>`)."""
    status = (deployer or {}).get("status") or {}
    applied = status.get("lastAppliedRevision")
    if kind == helm.HELM_RELEASE:
        applied = helm.latest(deployer).get("chartVersion")
    return {"bucket": flux.artifact_revision(bucket), "applied": applied,
            "attempted": status.get("lastAttemptedRevision")}


def release_view(kind: str, deployer: dict | None) -> dict | None:
    """A HelmRelease's newest Helm release, as `helm ls` names it."""
    if kind != helm.HELM_RELEASE or deployer is None:
        return None
    now = helm.latest(deployer)
    keep = ("name", "namespace", "version", "status", "chartName", "chartVersion",
            "appVersion", "lastDeployed")
    return {k: now.get(k) for k in keep}


# an object as Flux names it in a message: Kind/namespace/name or Kind/name
_OBJECT = re.compile(r"\b[A-Z][A-Za-z0-9]*(?:\.[a-z0-9.-]+)?/(?:[a-z0-9][a-z0-9.-]*/)?"
                     r"[a-z0-9][a-z0-9.:-]*")


def failure(deployer: dict | None) -> dict | None:
    """What Flux could not apply, when it says so (Ready False): the object its
    message names first (a dry-run it failed), and the message."""
    if deployer is None or flux.ready(deployer) != "False":
        return None
    message = flux.message(deployer)
    named = _OBJECT.search(message)
    return {"object": named.group(0) if named else None, "message": message}


def session_detail(world: World, namespace: str, name: str) -> dict:
    """The detail page of one session (`found` False once it is gone)."""
    objs = sessions.group(world.session_objects()).get((namespace, name))
    if objs is None:
        return {"view": "session", "namespace": namespace, "name": name, "found": False,
                "errors": world.errors}
    rec = _record_extras(world, sessions.record(namespace, name, objs), objs)
    kind, deployer = world.deployer(namespace, name)
    bucket = world.get(SOURCE_GROUP, "Bucket", namespace, naming.object_name(name))
    pod = current_pod(objs.get("Pod", []))
    inventory = inventory_view(world, deployer)
    pods = {(i["namespace"], p["name"]) for i in inventory for p in i["pods"]}
    if pod is not None:
        pods.add((namespace, pod["metadata"]["name"]))
    return {
        "view": "session", "found": True, "session": rec, "errors": world.errors,
        "bucketPod": pod_view(pod) if pod is not None else None,
        "deployer": kind,
        "conditions": {"Bucket": conditions(bucket), kind: conditions(deployer)},
        "revisions": revisions(kind, deployer, bucket),
        "release": release_view(kind, deployer),
        "failure": failure(deployer),
        "history": history.entries(world.objects("", "Event", namespace), name),
        "inventory": inventory,
        "events": events_view(world, _involved(namespace, name, entries(deployer), deployer),
                              pods),
    }


MAX_FILES = 2000        # rows of the file list sent to a page; the counts cover all


def generated(listing: dict[str, tuple[str, int]]) -> set[str]:
    """The keys the session wrote beside the user's files (core.namespaces):
    its directory, and a root kustomization equal to the one generated for
    the rest (an ETag is the MD5 of what was put)."""
    ours = {k for k in listing if k.startswith(namespaces.DIR + "/")}
    root = KUSTOMIZATION_FILES[0]
    if root in listing:
        rest = [k for k in listing if k not in ours and k != root]
        text = namespaces.generated_kustomization(rest, "").encode()
        if hashlib.md5(text).hexdigest() == listing[root][0]:
            ours.add(root)
    return ours


def files_view(current: dict[str, tuple[str, int]] | None,
               previous: dict[str, tuple[str, int]] | None) -> dict:
    """The files of the snapshot Flux reads (`current`: key -> (etag, size)),
    each marked added or changed against `previous`, the other slot, which
    holds the snapshot before the last sync (empty before a second one).
    Keys ending in '/' (the slot's journal) are no files: Flux skips them."""
    if current is None:
        return {"files": [], "removed": [], "count": 0, "bytes": 0, "shown": 0,
                "generated": 0, "problem": "the bucket server holds no snapshot (a new pod: "
                                           "the next sync fills it)"}
    current = {k: v for k, v in current.items() if not k.endswith("/")}
    previous = {k: v for k, v in (previous or {}).items() if not k.endswith("/")}
    ours = generated(current)
    rows = []
    for key, (etag, size) in sorted(current.items()):
        before = previous.get(key)
        change = "added" if before is None else "changed" if before[0] != etag else None
        rows.append({"path": key, "size": size, "change": change, "generated": key in ours})
    removed = sorted(set(previous) - set(current))
    return {"files": rows[:MAX_FILES], "removed": removed[:MAX_FILES],
            "count": len(rows) - len(ours), "generated": len(ours),
            "bytes": sum(size for _, size in current.values()), "shown": min(len(rows), MAX_FILES),
            "problem": None}
