"""The operations behind the commands: up, sync, ls, down.

Each is idempotent and converges from whatever state an interrupted command
left (DESIGN.md invariant 3): `up` creates or repairs every object and syncs;
`down` removes whatever of a session exists. Only objects that carry our
labels for that session are ever changed (invariant 4).
"""
from __future__ import annotations

import base64
import contextlib
import getpass
import logging
import os
import socket
import sys
import time
from dataclasses import dataclass
from typing import Callable

from . import catalog, digests, flux
from . import session as sess
from .bucketserver import BucketServer
from .errors import UsageError, UserError
from .kube import KINDS, ApiError, Kube, is_local
from .printers import short_revision
from .snapshot import DEFAULT_MAX_FILE_SIZE, Snapshot, check_yaml, scan
from .sync import Result, Syncer

log = logging.getLogger(__name__)

OWNED_KINDS = ("Kustomization", "Bucket", "Deployment", "Service", "Secret", "Lease")


@dataclass
class Options:
    timeout: float = 300
    wait: bool = True
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    progress: bool = False


def scanner(source: str, max_file_size: int, cache: dict | None = None) -> Callable[[], Snapshot]:
    """Scan and validate: every YAML file must parse before anything is uploaded.
    File digests are kept between scans in `cache`, and between commands on disk."""
    if cache is None:
        cache = digests.load(source)

    def run() -> Snapshot:
        before = dict(cache)
        snapshot = scan(source, max_file_size=max_file_size, cache=cache)
        if cache != before:     # unchanged on most syncs: spare the write
            digests.save(source, cache)
        check_yaml(snapshot)
        return snapshot
    return run


def _say(opts: Options, message: str) -> None:
    """What a long command is waiting for, on a terminal only (scripts stay quiet)."""
    if opts.progress and sys.stderr.isatty():
        print(message, file=sys.stderr, flush=True)


def check_context(kube: Kube, allowed: tuple[str, ...]) -> None:
    if is_local(kube.context, kube.server) or kube.context in allowed:
        return
    raise UserError(f"context {kube.context!r} (server {kube.server}) does not look like a local "
                    f"cluster; to start a session there anyway, pass "
                    f"--allow-context {kube.context}")


def check_flux(kube: Kube) -> None:
    served = {f"{g}/{v}": kube.served(f"{g}/{v}") for g, v, _, _ in flux.REQUIRED}
    missing = flux.missing_apis(served)
    if missing:
        raise UserError(flux.install_hint(missing, kube.context))


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no name for this uid
        return str(os.getuid())


def _mine_or_absent(obj: dict | None, session: str) -> dict | None:
    if obj is not None and not sess.owns(obj, session):
        meta = obj["metadata"]
        raise UserError(f"{obj['kind']} {meta['namespace']}/{meta['name']} exists and is not part "
                        f"of session {session!r}; not touching it (choose another --name)")
    return obj


def up(connect: Callable[[], Kube], source: str, name: str, *, path: str = "", target_namespace: str = "",
       image: str = sess.DEFAULT_IMAGE, allow_context: tuple[str, ...] = (),
       opts: Options = Options()) -> Result:
    start = time.monotonic()
    scan_source = scanner(source, opts.max_file_size)
    scan_source()           # bad input fails before the cluster is touched (scanned
    # again when the bucket server is up: waiting for it may take minutes)
    if path and not os.path.isdir(os.path.join(source, path)):
        raise UsageError(f"--path {path!r} is not a directory inside {source}")
    kube = connect()
    check_context(kube, allow_context)
    check_flux(kube)
    ns = kube.namespace
    spec = sess.Spec(name=name, namespace=ns, source=os.path.abspath(source),
                     host=socket.gethostname(), user=_user(), path=path.strip("/"),
                     target_namespace=target_namespace, image=image)
    obj_name = sess.object_name(name)
    for kind in ("Deployment", "Service", "Bucket", "Kustomization"):
        _mine_or_absent(kube.get(kind, obj_name, ns), name)

    secret = _mine_or_absent(kube.get("Secret", obj_name, ns), name)
    creds = {k: base64.b64decode(v).decode() for k, v in ((secret or {}).get("data") or {}).items()}
    if not sess.credentials_ok(creds):
        creds = sess.new_credentials()
    try:
        kube.apply(sess.secret(spec, {k: creds[k] for k in ("accesskey", "secretkey")}))
    except ApiError as e:
        if e.status == 404:
            raise UserError(f"namespace {ns!r} not found; create it with `kubectl create "
                            f"namespace {ns}` or pick another with -n") from None
        raise
    kube.apply(sess.deployment(spec, sess.credentials_digest(creds)))
    kube.apply(sess.service(spec))

    bucket = kube.get("Bucket", obj_name, ns)
    if bucket is not None:   # repair its spec, keeping the slot Flux reads and the sync facts
        synced = {sess.ANNOTATION + k for k in sess.SYNC_FACTS}
        facts = {k: v for k, v in bucket["metadata"].get("annotations", {}).items()
                 if k in synced}
        slot = bucket["spec"].get("bucketName")
        kube.apply(sess.bucket(spec, slot if slot in sess.SLOTS else sess.SLOTS[0], facts))

    with BucketServer(kube, ns, name, timeout=opts.timeout) as server:
        _say(opts, f"waiting for the bucket server of session {name}...")
        server.s3()
        syncer = Syncer(kube, ns, name, server, timeout=opts.timeout, progress=opts.progress)
        with _lease(kube, ns, name, wait=True, timeout=opts.timeout):
            result = syncer.sync(scan_source, wait=False, spec=spec)
        kube.apply(sess.kustomization(spec))
        if opts.wait:
            _say(opts, f"waiting for Flux to apply revision {short_revision(result.revision)}...")
            result.applied = syncer.wait_applied(result.revision)
    result.elapsed = time.monotonic() - start
    return result


@contextlib.contextmanager
def _lease(kube: Kube, namespace: str, session: str, wait: bool, timeout: float):
    """Hold the session's sync Lease: one sync at a time across shells."""
    from .lease import LeaseHeld, SyncLease
    lease = SyncLease(kube.api_client, namespace, session)
    try:
        lease.acquire(wait=wait, timeout=timeout)
    except LeaseHeld as e:
        raise UserError(str(e)) from None
    try:
        yield lease
    finally:
        lease.release()


def find_sessions(kube: Kube, namespace: str | None, selector: str | None = None) -> list[dict]:
    """Every session in a namespace (None: all), as ls records."""
    sel = sess.selector(extra=selector)
    objects = {kind: kube.list(kind, namespace, sel)
               for kind in ("Kustomization", "Bucket", "Deployment", "Service")}
    objects["Pod"] = kube.list("Pod", namespace, sel + f",{sess.COMPONENT_LABEL}=bucket-server")
    try:    # a session cut off right after its Secret has nothing else to show
        objects["Secret"] = kube.list("Secret", namespace, sel, metadata_only=True)
    except ApiError as e:
        if e.status != 403:     # many users may not list Secrets: not a reason to fail
            raise
    return catalog.sessions(objects)


def resolve(kube: Kube, name: str | None, cwd: str) -> dict:
    """The session to sync: by name, else the one whose source dir holds cwd."""
    records = find_sessions(kube, kube.namespace)
    if name:
        hit = next((r for r in records if r["name"] == name), None)
        if hit is None:
            raise UserError(f"session {name!r} not found in namespace {kube.namespace!r}"
                            + _candidates(records))
        return hit
    hits = catalog.by_directory(records, cwd)
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


def sync(kube: Kube, name: str, source: str, opts: Options, *,
         server: BucketServer | None = None, cancel=None, cache: dict | None = None) -> Result:
    """One sync of session `name`; `server` and `cache` are kept by watch mode
    between syncs."""
    start, ns = time.monotonic(), kube.namespace
    scan_source = scanner(source, opts.max_file_size, cache)
    first = scan_source()   # fail on bad input before touching the bucket
    with contextlib.ExitStack() as stack:
        if server is None:
            server = stack.enter_context(BucketServer(kube, ns, name, timeout=opts.timeout))
        syncer = Syncer(kube, ns, name, server, timeout=opts.timeout, cancel=cancel,
                        progress=opts.progress)
        with _lease(kube, ns, name, wait=opts.wait, timeout=opts.timeout):
            result = syncer.sync(scan_source, wait=False, first=first)
        if opts.wait:
            result.applied = syncer.wait_applied(result.revision)
    result.elapsed = time.monotonic() - start
    return result


def down(kube: Kube, name: str, *, keep_workloads: bool = False,
         timeout: float = 300) -> list[str]:
    """Remove one session: the Kustomization first (so Flux prunes what it
    applied, unless keep_workloads), then the rest. Returns the kinds removed."""
    from .lease import lease_name
    ns, obj_name = kube.namespace, sess.object_name(name)
    removed = []
    for kind in OWNED_KINDS:
        obj = kube.get(kind, lease_name(name) if kind == "Lease" else obj_name, ns)
        if obj is None or not sess.owns(obj, name):
            continue
        meta = obj["metadata"]
        if kind == "Kustomization" and keep_workloads and obj["spec"].get("prune"):
            kube.patch(kind, meta["name"], {"spec": {"prune": False}}, ns)
        if kube.delete(kind, meta["name"], ns, uid=meta["uid"]):
            removed.append(kind)
        if kind in ("Kustomization", "Bucket"):
            # Flux's finalizers prune what was applied and drop the artifacts
            _wait_gone(kube, kind, meta["name"], ns, meta["uid"], timeout)
    for kind in ("Deployment", "Service", "Secret"):
        if kind in removed:
            _wait_gone(kube, kind, obj_name, ns, None, timeout)
    return removed


def _wait_gone(kube: Kube, kind: str, name: str, ns: str, uid: str | None,
               timeout: float) -> None:
    def gone() -> bool:
        obj = kube.get(kind, name, ns)
        return obj is None or (uid is not None and obj["metadata"]["uid"] != uid)
    try:
        kube.wait_for(f"{kind} {ns}/{name} to be deleted", gone, timeout)
    except UserError:
        # Flux's finalizers prune what a Kustomization applied: they need Flux
        hint = " (is Flux running? its finalizer must let it go)" \
            if "fluxcd" in KINDS[kind][0] else ""
        raise UserError(f"timed out after {timeout:g}s waiting for {kind} {ns}/{name} to be "
                        f"deleted{hint}") from None
