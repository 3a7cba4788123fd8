"""`ui`: the live state behind the web page, and its actions.

One set of watches (adapters.informer), one per kind and scope, feeds one
`Store`; every open page is a `Feed` that gets the view it shows (core.ui)
again whenever the objects behind it change, so a change in the cluster
reaches every tab within about a watch event's latency plus DEBOUNCE. The
HTTP mechanics and the security rules are adapters.webserver's.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from datetime import datetime, timezone

from ..adapters import localhost
from ..adapters.bucketserver import BucketServer
from ..adapters.discovery import Discovery
from ..adapters.informer import Informer
from ..adapters.kube import Kube
from ..core import flux, naming, sessions, ui
from ..core.inventory import entries
from ..core.manifests import SLOTS, other_slot
from ..core.units import short_revision
from ..errors import S3Error, UserError
from .down import down, plan
from .options import Options
from .sessions import resolve, source_of
from .sync import sync

log = logging.getLogger(__name__)

DEBOUNCE = 0.05         # seconds: one burst of watch events, one push
# seconds between redraws with no change: a killed loop's forwards expire
# without any object changing (pages get only what differs)
REDRAW = 5.0
# (apiVersion, kind, label selector) watched in the served scope from the start
BASE = (("kustomize.toolkit.fluxcd.io/v1", "Kustomization", naming.selector()),
        ("source.toolkit.fluxcd.io/v1", "Bucket", naming.selector()),
        ("helm.toolkit.fluxcd.io/v2", "HelmRelease", naming.selector()),     # if served
        ("apps/v1", "Deployment", None), ("v1", "Pod", None), ("v1", "Event", None))
NEVER_WATCHED = {("", "Secret")}    # their contents would come along: metadata is not enough
FILES_TIMEOUT = 20.0    # seconds to reach a bucket server for a page's file list


class Store:
    """Every watched object, by (group, kind) then (namespace, name); a version
    that moves on each change, which the broadcaster waits on."""

    def __init__(self):
        self.cond = threading.Condition()
        self.version = 0
        self.objects: dict = {}
        self.watched: set = set()
        self.errors: dict = {}

    def _changed(self) -> None:
        self.version += 1
        self.cond.notify_all()

    def reset(self, group_kind: tuple, scope: str | None, items: list[dict]) -> None:
        with self.cond:
            kept = {k: v for k, v in self.objects.get(group_kind, {}).items()
                    if scope is not None and k[0] != scope}
            for obj in items:
                meta = obj["metadata"]
                kept[(meta.get("namespace", ""), meta["name"])] = ui.redact(obj)
            self.objects[group_kind] = kept
            self.watched.add(group_kind)
            self._changed()

    def event(self, group_kind: tuple, kind: str, obj: dict) -> None:
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        with self.cond:
            bucket = self.objects.setdefault(group_kind, {})
            if kind == "DELETED":
                bucket.pop(key, None)
            else:
                bucket[key] = ui.redact(obj)
            self._changed()

    def failed(self, what: str, message: str | None) -> None:
        with self.cond:
            if self.errors.get(what) != message:
                if message is None:
                    self.errors.pop(what, None)
                else:
                    self.errors[what] = message
                self._changed()

    def world(self) -> ui.World:
        with self.cond:
            return ui.World({k: dict(v) for k, v in self.objects.items()}, set(self.watched),
                            sorted(set(self.errors.values())), datetime.now(timezone.utc))

    def wait(self, seen: int, timeout: float) -> int:
        with self.cond:
            self.cond.wait_for(lambda: self.version != seen, timeout)
            return self.version


class Feed:
    """What one open page is sent: the newest text of its view, once."""

    def __init__(self, key: tuple, on_close):
        self.key, self._on_close = key, on_close
        self.cond = threading.Condition()
        self.pending: str | None = None
        self.last: str | None = None
        self.closed = False

    def push(self, text: str) -> None:
        with self.cond:
            if text != self.last:
                self.pending = self.last = text
                self.cond.notify_all()

    def next(self, timeout: float) -> str | None:
        with self.cond:
            self.cond.wait_for(lambda: self.pending is not None or self.closed, timeout)
            text, self.pending = self.pending, None
            return text

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()
        self._on_close(self)


class Watches:
    """The informers, one per kind and scope: those of BASE in the served
    scope, then one for each kind that a session's inventory names."""

    def __init__(self, kube: Kube, store: Store, scope: str | None):
        self.kube, self.store, self.scope = kube, store, scope
        self.discovery = Discovery(kube)
        self.running: dict[tuple, Informer] = {}
        self.lock = threading.Lock()

    def ensure(self, api_version: str, kind: str, namespace: str | None,
               selector: str | None = None) -> None:
        group_kind = (ui.group_of(api_version), kind)
        if group_kind in NEVER_WATCHED:
            return
        with self.lock:
            if (group_kind, None) in self.running or (group_kind, namespace) in self.running:
                return
            try:
                url = self.discovery.collection(api_version, kind, namespace)
            except UserError as e:
                self.store.failed(f"{kind} {namespace}", str(e))
                return
            if url is None:
                return          # not served: its objects show as not found
            what = f"{kind} {namespace or '(all namespaces)'}"
            self.running[(group_kind, namespace)] = Informer(
                self.kube, kind, api_version, url, selector=selector,
                reset=lambda items: self.store.reset(group_kind, namespace, items),
                event=lambda t, obj: self.store.event(group_kind, t, obj),
                failed=lambda message: self.store.failed(what, message)).start()

    def follow_inventories(self, world: ui.World) -> None:
        """Watch what the sessions applied: their kinds, in their namespaces."""
        for ks in world.deployers():
            for ref in entries(ks):
                namespaced = ref.namespace != ""
                ns = self.scope if self.scope is None or not namespaced else ref.namespace
                self.ensure(ref.api_version, ref.kind, ns)
                if namespaced and ns is not None:
                    self.ensure("v1", "Event", ns)
                    self.ensure("v1", "Pod", ns)

    def close(self) -> None:
        with self.lock:
            for informer in self.running.values():
                informer.close()


class SnapshotFiles:
    """The files of a session's current snapshot, read from its bucket server
    when a page asks (a detail page opening, a new revision): the bucket holds
    exactly what Flux reads, and its other slot the snapshot before, so "changed
    in the last sync" needs nothing recorded. One tunnel per session, kept
    while the page runs; the S3 credentials never leave this process."""

    def __init__(self, kube_for):
        self.kube_for = kube_for            # namespace -> Kube
        self.servers: dict[tuple[str, str], BucketServer] = {}
        self.locks: dict[tuple[str, str], threading.Lock] = {}
        self.lock = threading.Lock()

    def read(self, namespace: str, name: str, active: str | None) -> dict:
        if active not in SLOTS:
            return ui.files_view({}, {})        # never synced yet
        key = (namespace, name)
        with self.lock:
            guard = self.locks.setdefault(key, threading.Lock())
        with guard:
            server = self.servers.get(key)
            if server is None:
                server = self.servers[key] = BucketServer(self.kube_for(namespace), namespace,
                                                          name, timeout=FILES_TIMEOUT)
            try:
                return self._list(server, active)
            except S3Error as e:
                if e.status is not None:
                    raise UserError(str(e)) from None
                server.reconnect()      # a dead tunnel or a replaced pod: once more
                return self._list(server, active)

    @staticmethod
    def _list(server: BucketServer, active: str) -> dict:
        s3 = server.s3()

        def files(slot: str) -> dict | None:
            """{key: (etag, size)}; None for a slot never synced into."""
            try:
                return s3.list(slot, sizes=True)
            except S3Error as e:
                if e.code == "NoSuchBucket":
                    return None
                raise
        return ui.files_view(files(active), files(other_slot(active)))

    def forget(self, keep: set[tuple[str, str]]) -> None:
        """Close the tunnels of sessions that are gone (all, for an empty `keep`)."""
        with self.lock:
            gone = [k for k in self.servers if k not in keep]
            servers = [self.servers.pop(k) for k in gone]
        for server in servers:
            server.close()


class UiApp:
    """The state and actions of `ui` for one scope (a namespace, or all:
    None). `kube` None serves an empty page (tests of the server alone)."""

    def __init__(self, kube: Kube | None, scope: str | None):
        self.kube, self.scope = kube, scope
        self.store = Store()
        self.feeds: set[Feed] = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.watches = Watches(kube, self.store, scope) if kube is not None else None
        self.files = SnapshotFiles(self._kube)

    def start(self) -> "UiApp":
        if self.watches is not None:
            for api_version, kind, selector in BASE:
                self.watches.ensure(api_version, kind, self.scope, selector)
        threading.Thread(target=self._broadcast, daemon=True, name="gitops-run ui push").start()
        return self

    def close(self) -> None:
        self.stop.set()
        if self.watches is not None:
            self.watches.close()
        for feed in list(self.feeds):
            feed.close()
        self.files.forget(set())

    # -- views ---------------------------------------------------------------

    def view(self, key: tuple, world: ui.World) -> str:
        if key[0] == "list":
            return json.dumps(ui.session_list(world))
        doc = ui.session_detail(world, key[1], key[2])
        if doc["found"]:
            doc["canSync"] = self._can_sync(doc["session"])
        return json.dumps(doc)

    def _can_sync(self, record: dict) -> bool:
        """Sync is offered only where the session's source directory is."""
        source, host = record.get("source"), record.get("host")
        return bool(source) and host in (None, localhost.host()) and os.path.isdir(source)

    def subscribe(self, query: dict) -> Feed:
        if query.get("view") == "session":
            key = ("session", *self._target(query))
        else:
            key = ("list",)
        feed = Feed(key, self._unsubscribe)
        feed.push(self.view(key, self.store.world()))     # the first paint waits for nothing
        with self.lock:
            self.feeds.add(feed)
        return feed

    def _unsubscribe(self, feed: Feed) -> None:
        with self.lock:
            self.feeds.discard(feed)

    def _broadcast(self) -> None:
        seen, drawn = self.store.version, time.monotonic()
        while not self.stop.is_set():
            version = self.store.wait(seen, 1.0)
            if version == seen and time.monotonic() - drawn < REDRAW:
                continue
            drawn = time.monotonic()
            self.stop.wait(DEBOUNCE)        # let a burst of events settle
            seen = self.store.version
            world = self.store.world()
            if self.watches is not None:
                self.watches.follow_inventories(world)
            if self.files.servers:
                self.files.forget(set(sessions.group(world.session_objects())))
            with self.lock:
                feeds = list(self.feeds)
            texts: dict[tuple, str] = {}
            for feed in feeds:
                if feed.key not in texts:
                    texts[feed.key] = self.view(feed.key, world)
                feed.push(texts[feed.key])

    # -- actions -------------------------------------------------------------

    def _target(self, doc: dict) -> tuple[str, str]:
        ns, name = doc.get("namespace"), doc.get("name")
        if not isinstance(ns, str) or not isinstance(name, str):
            raise UserError("name the session: namespace and name")
        naming.validate_namespace(ns, "namespace")
        naming.validate_name(name)
        if self.scope is not None and ns != self.scope:
            raise UserError(f"namespace {ns!r} is not the one this page serves ({self.scope})")
        return ns, name

    def _kube(self, ns: str) -> Kube:
        if self.kube is None:
            raise UserError("this page has no cluster")
        return dataclasses.replace(self.kube, namespace=ns)

    def get(self, action: str, query: dict) -> tuple[int, dict]:
        call = {"plan": self._plan, "files": self._files}.get(action)
        if call is None:
            return 404, {"error": f"no such call: {action}"}
        return 200, call(*self._target(query))

    def _files(self, ns: str, name: str) -> dict:
        bucket = self.store.world().get(ui.SOURCE_GROUP, "Bucket", ns, naming.object_name(name))
        if bucket is None:
            raise UserError(f"session {ns}/{name} has no Bucket")
        return self.files.read(ns, name, (bucket.get("spec") or {}).get("bucketName"))

    def _plan(self, ns: str, name: str) -> dict:
        removal = plan(self._kube(ns), name)
        return {"objects": [f"{o['kind']}/{o['metadata']['name']}" for o in removal.objects],
                "pruned": [str(r) for r in removal.pruned],
                "kept": [[str(r), why] for r, why in removal.kept]}

    def post(self, action: str, body: dict) -> tuple[int, dict]:
        run = {"sync": self._sync, "reconcile": self._reconcile, "delete": self._delete}.get(action)
        if run is None:
            return 404, {"error": f"no such action: {action}"}
        ns, name = self._target(body)
        return 200, {"message": run(self._kube(ns), name)}

    def _sync(self, kube: Kube, name: str) -> str:
        """The same code path as `sync NAME`: resolve, the recorded source, ops.sync."""
        record = resolve(kube, name, os.getcwd())
        source = source_of(record, None, localhost.host())
        if not os.path.isdir(source):
            raise UserError(f"the source directory {source} of session {name!r} is not here")
        result = sync(kube, record["name"], source, Options(), path=record.get("path") or "",
                      decrypts=record.get("decrypts", True))
        if result.up_to_date:
            return f"session {name}: up to date"
        return (f"session {name}: {result.plan.summary()} files, revision "
                f"{short_revision(result.revision)}, applied {result.applied} objects")

    def _reconcile(self, kube: Kube, name: str) -> str:
        own = naming.object_name(name)
        _, patch = flux.request_reconcile()
        deployer, _ = self.store.world().deployer(kube.namespace, name)
        for kind in ("Bucket", deployer):
            kube.patch(kind, own, patch, kube.namespace)
        return f"asked Flux to reconcile Bucket and {deployer} {kube.namespace}/{own}"

    def _delete(self, kube: Kube, name: str) -> str:
        removal = down(kube, name)
        return (f"session {name} deleted: {len(removal.objects)} objects of the session, "
                f"{len(removal.pruned)} pruned by Flux, {len(removal.kept)} kept")
