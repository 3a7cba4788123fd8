"""`up`: create or repair every object of a session, then sync.

Idempotent, and it converges from whatever an interrupted command left
(docs/architecture.md, invariant 3); it touches only objects that carry our
labels for this session (invariant 4).
"""
from __future__ import annotations

import dataclasses
import functools
import os
import time
from typing import Callable

from ..adapters import localhost
from ..adapters.bucketserver import BucketServer
from ..adapters.kube import Kube
from ..core import flux, helm, manifests, naming, rbac
from ..core.contexts import is_local
from ..core.snapshot import Snapshot
from ..core.units import short_revision
from ..errors import ApiError, UsageError, UserError
from .down import get_if_allowed, wait_gone
from .history import record_sync
from .options import Options
from .publish import Result, Syncer
from .snapshots import scanner
from .sync import holding_lease

BUCKET_SERVER_KINDS = ("Deployment", "Service", "Bucket", "Kustomization", "HelmRelease")


def check_context(kube: Kube, allowed: tuple[str, ...]) -> None:
    if is_local(kube.context, kube.server) or kube.context in allowed:
        return
    raise UserError(f"context {kube.context!r} (server {kube.server}) does not look like a local "
                    f"cluster; to start a session there anyway, pass "
                    f"--allow-context {kube.context}")


def check_flux(kube: Kube, required=flux.REQUIRED) -> None:
    served = {f"{g}/{v}": kube.served(f"{g}/{v}") for g, v, _, _ in required}
    missing = flux.missing_apis(served, required)
    if missing:
        raise UserError(flux.install_hint(missing, kube.context))


def source_controller_namespace(kube: Kube) -> str:
    """Where Flux's source-controller runs (its pods are labelled
    app=source-controller); flux-system when we may not look, or find none."""
    try:
        pods = kube.list("Pod", None, "app=source-controller")
    except ApiError as e:
        if e.status != 403:
            raise
        pods = []
    found = sorted({p["metadata"]["namespace"] for p in pods})
    return found[0] if len(found) == 1 else "flux-system"


def _mine_or_absent(obj: dict | None, session: str) -> dict | None:
    if obj is not None and not naming.owns(obj, session):
        meta = obj["metadata"]
        raise UserError(f"{obj['kind']} {meta['namespace']}/{meta['name']} exists and is not part "
                        f"of session {session!r}; not touching it (choose another --name)")
    return obj


def check_owner(session: str, namespace: str, objects: list[dict | None], source: str,
                host: str) -> None:
    """Refuse to re-point a session that records another source directory or
    host: Flux would prune what that project deployed (pass --force to)."""
    for obj in filter(None, objects):
        theirs = (naming.fact(obj, naming.SOURCE), naming.fact(obj, naming.HOST))
        if theirs[0] and theirs != (source, host):
            raise UserError(
                f"session {session!r} in namespace {namespace!r} belongs to {theirs[0]} on "
                f"host {theirs[1]}, not {source} on {host}; taking it over would make Flux "
                f"prune what it deployed: choose another --name, or pass --force")


def up(connect: Callable[[], Kube], source: str, name: str, *, path: str = "",
       target_namespace: str = "", image: str = manifests.DEFAULT_IMAGE,
       allow_context: tuple[str, ...] = (), force: bool = False, service_account: str = "",
       flux_namespace: str = "", decryption_key: str | None = None,
       release_name: str = "", values: tuple[str, ...] = (),
       opts: Options = Options()) -> Result:
    """`decryption_key`: the text of an age key file, for SOPS-encrypted manifests;
    `release_name` and `values` (--values files) for a Helm chart."""
    start = time.monotonic()
    path = naming.confined_path(path)
    if path and not os.path.isdir(os.path.join(source, path)):
        raise UsageError(f"--path {path!r} is not a directory inside {source}")
    scan_source = scanner(source, opts.max_file_size, path=path,
                          include_keys=opts.include_secrets, report=opts.report,
                          decrypts=decryption_key is not None)
    # bad input fails before the cluster is touched (scanned again when the
    # bucket server is up: waiting for it may take minutes)
    snapshot = scan_source()
    deploy = deployer(source, path, snapshot, release_name, values)
    kube = connect()
    check_context(kube, allow_context)
    check_flux(kube, flux.REQUIRED_HELM if helm.is_chart(snapshot.entries, path)
               else flux.REQUIRED)
    del snapshot      # the upload scans again: 100,000 entries need not be held twice
    spec = manifests.Spec(name=name, namespace=kube.namespace, source=os.path.abspath(source),
                          host=localhost.host(), user=localhost.user(), path=path,
                          target_namespace=target_namespace, image=image,
                          service_account=service_account,
                          flux_namespace=flux_namespace or source_controller_namespace(kube))
    spec = _apply_bucket_server(kube, spec, force)
    spec = _apply_decryption(kube, spec, decryption_key)
    _apply_applier(kube, spec)
    try:        # the first sync is history too, recorded as ops.sync records each one
        result = _first_sync(kube, spec, scan_source, opts, deploy)
    except UserError as e:
        record_sync(kube, spec.name, error=str(e))
        raise
    record_sync(kube, spec.name, result)
    result.elapsed = time.monotonic() - start
    return result


def deployer(source: str, path: str, snapshot: Snapshot, release_name: str,
             values: tuple[str, ...]) -> functools.partial:
    """The manifest of what deploys the applied path, given a Spec: a
    Kustomization, or a HelmRelease for a Helm chart (core.helm)."""
    if not helm.is_chart(snapshot.entries, path):
        if release_name or values:
            raise UsageError(f"--release-name and --values are for a Helm chart, and "
                             f"{os.path.join(source, path)} holds no {helm.CHART_FILE}")
        return functools.partial(manifests.kustomization)
    given = [_values_key(source, path, v) for v in values]
    return functools.partial(helm.release, release_name=release_name,
                             values=helm.values_files(path, snapshot.entries, given))


def _values_key(source: str, path: str, given: str) -> str:
    """A --values FILE as a key of the upload: a path in the chart, in DIR,
    or from here (it must be inside DIR: Flux gets nothing else)."""
    top = os.path.realpath(source)
    for base in (os.path.join(top, path), top, os.getcwd()):
        candidate = os.path.join(base, given)
        if os.path.isfile(candidate):
            try:
                relative = os.path.relpath(os.path.realpath(candidate), top)
            except ValueError:      # on another drive (Windows)
                relative = ".."
            return helm.values_key(relative, given)
    raise UsageError(f"--values {given}: no such file in the chart, in {source} or here")


def _apply_bucket_server(kube: Kube, spec: manifests.Spec, force: bool) -> manifests.Spec:
    """Create or repair the credentials, the bucket server and (if it exists)
    the Bucket, keeping the credentials, the pod key and the slot Flux reads."""
    ns, obj_name = spec.namespace, naming.object_name(spec.name)
    existing = [_mine_or_absent(get_if_allowed(kube, kind, obj_name, ns), spec.name)
                for kind in BUCKET_SERVER_KINDS]
    if not force:
        check_owner(spec.name, ns, existing, spec.source, spec.host)
    spec = dataclasses.replace(spec, pod_key=manifests.pod_key(existing[0])
                               or manifests.new_pod_key())
    creds = _kept_credentials(kube, spec, obj_name)
    try:
        kube.apply(manifests.secret(spec, creds))
    except ApiError as e:
        if e.status == 404:
            raise UserError(f"namespace {ns!r} not found; create it with `kubectl create "
                            f"namespace {ns}` or pick another with -n") from None
        if e.status == 403 and "being terminated" in str(e):   # the API server's words
            raise UserError(f"namespace {ns!r} is being deleted; wait until it is gone and "
                            f"create it again, or pick another with -n") from None
        raise
    reader = _kept_credentials(kube, spec, naming.reader_secret_name(spec.name))
    kube.apply(manifests.reader_secret(spec, reader))
    kube.apply(manifests.deployment(spec, manifests.credentials_digest(creds)))
    kube.apply(manifests.service(spec))
    kube.apply(manifests.network_policy(spec))
    bucket = kube.get("Bucket", obj_name, ns)
    if bucket is not None:   # repair its spec, keeping the slot Flux reads and the sync facts
        synced = {naming.ANNOTATION + k for k in naming.SYNC_FACTS}
        facts = {k: v for k, v in bucket["metadata"].get("annotations", {}).items()
                 if k in synced}
        slot = bucket["spec"].get("bucketName")
        # what Flux fetches belongs to the slot's snapshot: the next flip moves it
        fetch = {k: bucket["spec"].get(k) for k in ("ignore", "timeout")}
        kube.apply(manifests.bucket(spec, slot if slot in manifests.SLOTS else manifests.SLOTS[0],
                                    facts, fetch if fetch["timeout"] else None))
    return spec


def _kept_credentials(kube: Kube, spec: manifests.Spec, secret_name: str) -> dict:
    """The credentials our Secret holds, kept across repairs; new ones if none."""
    secret = _mine_or_absent(kube.get("Secret", secret_name, spec.namespace), spec.name)
    creds = manifests.decode_secret(secret)
    if not manifests.credentials_ok(creds):
        creds = manifests.new_credentials()
    return {k: creds[k] for k in ("accesskey", "secretkey")}


def _apply_decryption(kube: Kube, spec: manifests.Spec, key: str | None) -> manifests.Spec:
    """Store the age key for Flux (never printed, never uploaded); a session
    that has one keeps decrypting when `up` repairs it without the flag."""
    if key is not None:
        kube.apply(manifests.sops_secret(spec, key))
    elif not naming.owns(kube.get("Secret", naming.sops_secret_name(spec.name),
                                  spec.namespace), spec.name):
        return spec
    return dataclasses.replace(spec, decrypt=True)


def _apply_applier(kube: Kube, spec: manifests.Spec) -> None:
    """The identity Flux applies the session as: the user's own rights in the
    namespace, never the controller's (core.rbac)."""
    if spec.service_account:
        return
    kube.apply(rbac.service_account(spec))
    if ((kube.create(rbac.everything_review()) or {}).get("status") or {}).get("allowed"):
        kube.apply(rbac.cluster_admin_binding(spec))
        return
    rules = rbac.mirrored_rules(kube.create(rbac.rules_review(spec.namespace)) or {})
    kube.apply(rbac.role(spec, rules))
    kube.apply(rbac.role_binding(spec))


def _first_sync(kube: Kube, spec: manifests.Spec, scan_source, opts: Options,
                deploy: functools.partial) -> Result:
    """Upload, point the Kustomization (or HelmRelease) at the Bucket, and wait
    for Flux."""
    ns, name = spec.namespace, spec.name
    with BucketServer(kube, ns, name, timeout=opts.timeout) as server:
        opts.report.waiting(f"waiting for the bucket server of session {name}...")
        server.s3()
        server.admit_reader()    # the pod may predate Flux's read-only user
        syncer = Syncer(kube, ns, name, server, timeout=opts.timeout, report=opts.report)
        with holding_lease(kube, ns, name, wait=True, timeout=opts.timeout):
            result = syncer.sync(scan_source, wait=False, spec=spec)
        manifest = deploy(spec)
        _remove_other_deployer(kube, spec, manifest["kind"], opts.timeout)
        kube.apply(manifest)
        if opts.wait:
            opts.report.waiting(f"waiting for Flux to apply revision "
                                f"{short_revision(result.revision)}...")
            result.applied = syncer.wait_applied(result.revision, manifest["kind"])
    return result


def _remove_other_deployer(kube: Kube, spec: manifests.Spec, kind: str, timeout: float) -> None:
    """A session whose path became a chart (or stopped being one) changes kind:
    the old deployer goes first, so that what it deployed is pruned (or
    uninstalled) before the new one applies the same objects."""
    other = helm.KUSTOMIZATION if kind == helm.HELM_RELEASE else helm.HELM_RELEASE
    obj_name = naming.object_name(spec.name)
    old = get_if_allowed(kube, other, obj_name, spec.namespace)
    if naming.owns(old, spec.name):
        kube.delete(other, obj_name, spec.namespace, uid=old["metadata"]["uid"])
        wait_gone(kube, other, obj_name, spec.namespace, old["metadata"]["uid"], timeout)
