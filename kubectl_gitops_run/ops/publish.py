"""One sync: publish a local snapshot, point Flux at it, wait until applied.

No torn syncs (docs/architecture.md, invariant 1). The bucket server holds two slots;
the Flux Bucket reads one (`spec.bucketName`). A sync fills the other slot
until its listing is exactly the local snapshot, then flips the Bucket to it
in one patch (with the session's sync facts), so every artifact Flux builds
is one whole snapshot. A slot is written only once source-controller has
observed the Bucket's latest spec: from then on it reconciles only from the
slot that spec names, never from the one being written.

Nothing present is pruned (invariant 2): a snapshot holds every file present
at scan time; a file that changes after the scan fails its upload's
Content-MD5 check, and the sync starts over from a fresh scan.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from ..adapters.bucketserver import BucketServer
from ..adapters.discovery import Discovery
from ..adapters.s3 import range_cuts
from ..adapters.kube import Kube
from ..adapters.waiting import until
from ..core import flux, health, helm, inventory, journal, manifests, namespaces, naming, verdict
from ..core.snapshot import Plan, Snapshot, plan
from ..core.units import short_revision
from ..errors import BucketUnreachable, FileChanged, S3Error, UserError, WaitTimeout
from .report import SILENT, Reporter
from .settle import Judge

log = logging.getLogger(__name__)

UPLOAD_WORKERS = 16
ATTEMPTS = 3                # publishing survives this many dead tunnels or bucket pods


@dataclass
class Result:
    plan: Plan                   # against what Flux had
    revision: str
    files: int
    bytes: int
    applied: int | None = None   # objects in the Kustomization's inventory; None: not waited
    elapsed: float = 0.0
    flipped: bool = False

    @property
    def up_to_date(self) -> bool:
        return self.plan.empty and not self.flipped


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Syncer:
    def __init__(self, kube: Kube, namespace: str, session: str, server: BucketServer, *,
                 timeout: float = 300, cancel: threading.Event | None = None,
                 report: Reporter = SILENT):
        self.kube, self.namespace, self.session = kube, namespace, session
        self.name = naming.object_name(session)
        self.server, self.timeout = server, timeout
        self.cancel = cancel or threading.Event()
        self.report = report
        self.last_flip: dict | None = None    # the Bucket as our last flip left it
        self.judged: verdict.Verdict | None = None  # our verdict on the last apply
        # slot -> (ETag, objects) of the journal last read or written here
        self.journals: dict[str, tuple[str, dict[str, str]]] = {}

    # -- the whole sync ------------------------------------------------------

    def sync(self, scan: Callable[[], Snapshot], *, wait: bool = True,
             spec: manifests.Spec | None = None, first: Snapshot | None = None) -> Result:
        """`spec` (from `up`) lets a missing Bucket be created; `sync` needs one.
        `first`: a snapshot the caller just took, used instead of a first scan."""
        start = time.monotonic()
        for attempt in range(ATTEMPTS):
            snapshot = first if attempt == 0 and first is not None else scan()
            try:
                result = self.publish(snapshot, spec)
                break
            except FileChanged as e:
                log.debug("%s changed during the sync: scanning again", e)
        else:
            raise UserError("files kept changing during the sync; try again")
        if wait:
            result.applied = self.wait_applied(result.revision)
        result.elapsed = time.monotonic() - start
        return result

    def publish(self, snapshot: Snapshot, spec: manifests.Spec | None) -> Result:
        bucket, active, snapshot = self._prepare(snapshot, spec)
        local = snapshot.etags()
        revision = snapshot.revision
        for attempt in range(ATTEMPTS):
            try:
                s3 = self.server.s3()
                target = manifests.other_slot(active)
                # one slot, then the other, over one pooled connection (a second at
                # once would open a second tunnel): the target's matters only if
                # something changed; a journal is one GET, a listing is in ranges
                had = (self._list(s3, active, local) if active else None) or {}
                if had == local and bucket is not None:
                    if flux.artifact_revision(bucket) != revision:
                        self._request(self.name)     # published earlier, not yet indexed
                    return _result(snapshot, local, had, revision)
                held = self._list(s3, target, local) or {}
                bucket = self._await_spec_seen(bucket)
                self._fill(s3, target, held, snapshot, local)
                break
            except BucketUnreachable as e:
                if attempt == ATTEMPTS - 1:
                    raise UserError(str(e)) from None
                self.server.reconnect()
        self._flip(bucket, target, snapshot, revision, spec)
        return _result(snapshot, local, had, revision, flipped=True)

    def _prepare(self, snapshot: Snapshot, spec: manifests.Spec | None):
        """(the Bucket, checked ours and not suspended; the slot Flux reads;
        the snapshot with the session's own files)."""
        bucket = self.kube.get("Bucket", self.name, self.namespace)
        if bucket is None and spec is None:
            raise UserError(f"session {self.session!r} in namespace {self.namespace!r} has no "
                            f"Flux Bucket; run `kubectl gitops-run up` to repair it")
        if bucket is not None and not naming.owns(bucket, self.session):
            raise UserError(f"Bucket {self.namespace}/{self.name} is not managed by "
                            f"kubectl-gitops-run; not touching it")
        if flux.suspended("Bucket", bucket):    # Flux would never pick the sync up
            raise UserError(f"not syncing session {self.session!r}: "
                            + flux.suspended("Bucket", bucket))
        active = (bucket or {}).get("spec", {}).get("bucketName")
        active = active if active in manifests.SLOTS else None
        # every upload carries what the session's Kustomization reads besides
        # the user's files (core.namespaces), whoever asks for the sync
        path = namespaces.applied_path(spec.path if spec else naming.fact(bucket, naming.PATH))
        if not helm.is_chart(snapshot.entries, path):
            snapshot = namespaces.with_session_files(snapshot, path, self.namespace)
        return bucket, active, snapshot

    def preview(self, snapshot: Snapshot, spec: manifests.Spec | None = None) -> Result:
        """What a sync of `snapshot` would upload and remove (`--dry-run`): the
        slot Flux reads, against the snapshot; nothing is written."""
        _, active, snapshot = self._prepare(snapshot, spec)
        local = snapshot.etags()
        try:
            had = self._list(self.server.s3(), active, local) if active else None
        except BucketUnreachable as e:
            raise UserError(str(e)) from None
        return _result(snapshot, local, had or {}, snapshot.revision)

    # -- publishing ---------------------------------------------------------

    def _list(self, s3, slot: str, local: dict[str, str]) -> dict[str, str] | None:
        """The slot's objects as Flux indexes them; None if it does not exist (a
        new bucket pod). Its journal tells in one GET (core.journal); without one
        it is listed, in parallel ranges cut at the local keys."""
        try:
            known = self._journal(s3, slot)
            return known if known is not None else journal.indexed(
                s3.list(slot, range_cuts(list(local))))
        except S3Error as e:
            if e.code == "NoSuchBucket":
                return None
            raise _down(e)

    def _journal(self, s3, slot: str) -> dict[str, str] | None:
        """The slot's journal (None: none, or not whole). One read or written
        by this Syncer before is used again while the server says the object
        still has its ETag, the MD5 of its bytes: `sync --watch` of a large
        tree then sends no journal back and forth."""
        etag, objects = self.journals.pop(slot, ("", None))
        got = s3.get_if_changed(slot, journal.KEY, etag)
        if got is None:
            return None
        body, etag = got
        if body is not None:
            objects = journal.decode(body)
        if objects is not None:
            self.journals[slot] = etag, objects
        return objects

    def _fill(self, s3, slot: str, held: dict[str, str], snapshot: Snapshot,
              local: dict[str, str]) -> None:
        """Make `slot` (now holding `held`) hold exactly the snapshot (`local`:
        its etags). The journal goes first and comes back last (core.journal):
        a sync stopped in between leaves the slot to be listed. Every write
        is checked by the server (Content-MD5), and the Lease keeps other
        syncs out, so the slot is not listed again."""
        try:
            if not held:    # a new bucket pod has no bucket, nor Flux's user
                s3.ensure_bucket(slot)
                self.server.admit_reader()
            else:
                self.journals.pop(slot, None)
                s3.delete(slot, [journal.KEY])
            todo = plan(local, held)
            self._upload(s3, slot, snapshot, todo.upload)
            if todo.removed:
                s3.delete(slot, todo.removed)
            record = journal.encode(local)
            self.journals[slot] = s3.put(slot, journal.KEY, record,
                                         hashlib.md5(record).hexdigest()), local
        except S3Error as e:
            if e.code == "BadDigest":
                raise FileChanged(e.key) from None
            raise _down(e)

    def _upload(self, s3, slot: str, snapshot: Snapshot, keys: list[str]) -> None:
        if not keys:
            return
        total = sum(snapshot.entries[k].size for k in keys)
        lock, done = threading.Lock(), [0, 0]      # files, bytes

        def put(key: str) -> None:
            entry = snapshot.entries[key]
            if isinstance(entry, namespaces.Added):     # the session's own file, in memory
                s3.put(slot, key, entry.data, entry.md5)
            else:
                try:
                    f = open(entry.path, "rb")
                except OSError:
                    raise FileChanged(key) from None
                with f:     # streamed: 16 workers never hold 16 whole files
                    s3.put(slot, key, f, entry.md5, entry.size)   # Content-MD5: a changed file fails
            with lock:
                done[0] += 1
                done[1] += entry.size
                self.report.uploading(done[0], len(keys), done[1], total)

        # Workers take the keys one at a time: a future per file would hold about
        # 1 KB each (10 MB for 10,000 files). A failed file does not stop the
        # others: what lands now need not be sent again when the sync retries.
        todo, taking, failures = iter(keys), threading.Lock(), []

        def work() -> None:
            while True:
                with taking:
                    key = next(todo, None)
                if key is None:
                    return
                try:
                    put(key)
                except Exception as e:      # noqa: BLE001 - raised below, once all ran
                    failures.append(e)

        try:
            workers = min(UPLOAD_WORKERS, len(keys))
            with ThreadPoolExecutor(workers) as pool:
                for future in [pool.submit(work) for _ in range(workers)]:
                    future.result()
        finally:
            self.report.uploaded()
        if failures:
            raise failures[0]

    def _await_spec_seen(self, bucket: dict | None) -> dict | None:
        """Wait until source-controller works from the Bucket's current spec, so
        it no longer reads the slot we are about to write."""
        last = [bucket]

        def seen(obj: dict | None):
            last[0] = obj
            return (obj,) if obj is None or flux.spec_seen(obj) else None
        try:
            return until(self.kube, "Bucket", self.namespace, seen, name=self.name,
                         timeout=self.timeout, start=bucket)[0]
        except WaitTimeout:
            said = flux.message(last[0]) if flux.ready(last[0]) == "False" else ""
            why = (f"; Flux says: {said}; `kubectl gitops-run up` repairs a Bucket changed by "
                   f"hand" if said else "; is Flux's source-controller running?")
            raise UserError(
                f"source-controller has not picked up the last sync of session "
                f"{self.session!r} after {self.timeout:g}s (Bucket {self.namespace}/"
                f"{self.name} generation {bucket['metadata'].get('generation')}){why}") from None

    def _flip(self, bucket: dict | None, slot: str, snapshot: Snapshot, revision: str,
              spec: manifests.Spec | None) -> None:
        files, size = namespaces.users_size(snapshot)
        facts = naming.annotations(revision=revision, files=files, bytes=size,
                                 last_sync=now_rfc3339())
        token, request = flux.request_reconcile()
        # what Flux fetches moves with the slot, in one generation (invariant 1)
        fetch = manifests.fetch_spec(snapshot.fetched, len(snapshot.fetched_keys()))
        if bucket is None:
            manifest = manifests.bucket(spec, slot, facts, fetch)
            manifest["metadata"]["annotations"][flux.REQUESTED_AT] = token
            self.last_flip = self.kube.apply(manifest)
        else:
            patch = {"metadata": {"annotations": {**facts, flux.REQUESTED_AT: token}},
                     "spec": {"bucketName": slot, **fetch}}
            self.last_flip = self.kube.patch("Bucket", self.name, patch, self.namespace)

    def _request(self, name: str, kind: str = "Bucket") -> tuple[str, dict]:
        """Ask Flux to reconcile now; returns the request's token and the object."""
        token, patch = flux.request_reconcile()
        return token, self.kube.patch(kind, name, patch, self.namespace)

    # -- waiting for Flux -----------------------------------------------------

    def wait_applied(self, revision: str, kind: str = helm.KUSTOMIZATION) -> int | None:
        """Wait until the Bucket holds `revision` and the session's `kind` (its
        Kustomization, or HelmRelease for a chart) applied it; returns the
        number of objects applied."""
        self._wait("Bucket", lambda obj: flux.bucket_progress(obj, revision), revision,
                   start=self.last_flip)
        if kind == helm.HELM_RELEASE:
            return self._wait_release(revision)
        ks = self.kube.get("Kustomization", self.name, self.namespace)
        if ks is None:
            raise self._missing("Kustomization")
        if flux.kustomization_progress(ks, revision).state == flux.DONE:
            return flux.applied_count(ks)
        # a failure Flux reported before this request is no verdict on this sync
        token, ks = self._request(self.name, "Kustomization")
        flux_verdict = functools.partial(flux.kustomization_progress, revision=revision,
                                         token=token)
        ks = self._wait("Kustomization", lambda obj: _applied(flux_verdict(obj), obj, revision),
                        revision, start=ks, detail=self._not_ready)
        # nothing to judge unless Flux is running its health checks of `revision`
        judge = Judge(self.kube, inventory.entries(ks) if flux.checking_health(ks, revision)
                      else [], self.timeout, self._judged)
        try:
            ks = self._wait("Kustomization", flux_verdict, revision, start=ks,
                            detail=self._not_ready)
        except UserError as e:
            raise UserError(_with(str(e), verdict.disagreement(judge.stop(), False))) from None
        finally:
            judge.stop()
        if verdict.disagreement(judge.stop(), True):
            self.report.warning(verdict.disagreement(judge.stop(), True))
        return flux.applied_count(ks)

    def _judged(self, ours: verdict.Verdict, objects: int) -> None:
        self.judged = ours
        self.report.judged(ours.healthy, verdict.describe(ours, objects))

    def _wait_release(self, revision: str) -> int | None:
        """The HelmChart that helm-controller makes is built from exactly
        `revision`, then the HelmRelease deploys its chart version (core.helm)."""
        release = self.kube.get("HelmRelease", self.name, self.namespace)
        if release is None:
            raise self._missing("HelmRelease")
        template = release["spec"]["chart"]["spec"]
        chart = self._wait("HelmChart", lambda obj: helm.chart_progress(obj, revision, template),
                           revision, name=helm.chart_name(self.namespace, self.name))
        version = helm.chart_version(chart)
        release = self._wait("HelmRelease", lambda obj: helm.release_progress(obj, version),
                             revision, start=release, detail=self._not_ready)
        return flux.applied_count(release)

    def _not_ready(self, deployer: dict) -> str:
        """What the Kustomization or HelmRelease applied that is not ready, and
        why (core.health): Helm's message on a wait that ran out names none."""
        discovery = Discovery(self.kube)

        def pods_of(workload: dict) -> list[dict]:     # their waiting reasons say why
            return self.kube.list("Pod", workload["metadata"].get("namespace") or self.namespace,
                                  health.pod_selector(workload))
        return health.not_ready([(ref, discovery.get(ref.api_version, ref.kind, ref.namespace,
                                                     ref.name))
                                 for ref in inventory.entries(deployer)], pods_of)

    def _wait(self, kind: str, progress, revision: str, start: dict | None = None,
              name: str | None = None, detail: Callable[[dict], str] = lambda obj: "") -> dict:
        """Watch one of our Flux objects until `progress` says DONE (or FAILED);
        or, given its `name`, one that a controller makes (absent until then).
        `detail` adds to what Flux says of a failure (or of the last state seen)."""
        name = name or self.name
        own = name == self.name
        # no repeated reconcile requests: each makes source-controller list (and
        # maybe fetch) the whole bucket again, which slows the next sync
        last = [flux.Progress(flux.WAITING)]
        seen: list[dict | None] = [start]      # for why a timeout ran out

        def check(obj: dict | None) -> dict | None:
            if obj is None and own:
                raise self._missing(kind)
            if flux.suspended(kind, obj):       # no use waiting
                raise UserError(f"Flux will not apply revision {short_revision(revision)}: "
                                + flux.suspended(kind, obj))
            seen[0], last[0] = obj, progress(obj)
            if last[0].state == flux.FAILED:
                raise UserError(f"Flux could not apply revision {short_revision(revision)}: "
                                f"{kind} {self.namespace}/{name}: "
                                f"{flux.missing_kind(last[0].message)}{detail(obj)}"
                                + flux.advice(last[0].message, self.namespace,
                                              self.applier(obj)))
            return obj if last[0].state == flux.DONE else None
        try:
            return until(self.kube, kind, self.namespace, check, name=name,
                         timeout=self.timeout, cancel=self.cancel, start=start)
        except WaitTimeout:
            why = (f": {flux.missing_kind(last[0].message)}" if last[0].message
                   else flux.stalled(kind, seen[0])) + (detail(seen[0]) if seen[0] else "")
            raise UserError(f"timed out after {self.timeout:g}s waiting for {kind} "
                            f"{self.namespace}/{name} to reach revision "
                            f"{short_revision(revision)}{why}") from None

    def applier(self, obj: dict) -> str:
        return (obj.get("spec") or {}).get("serviceAccountName") or self.name

    def _missing(self, kind: str) -> UserError:
        return UserError(f"{kind} {self.namespace}/{self.name} of session {self.session!r} is "
                         f"missing; run `kubectl gitops-run up` to repair the session")


def _applied(progress: flux.Progress, ks: dict | None, revision: str) -> flux.Progress:
    """Flux's verdict, or done already once Flux applied `revision` and began
    its health checks: the plugin then judges them itself (ops.settle)."""
    if progress.state == flux.WAITING and flux.checking_health(ks, revision):
        return flux.Progress(flux.DONE)
    return progress


def _with(message: str, more: str) -> str:
    return f"{message} ({more})" if more else message


def _result(snapshot: Snapshot, local: dict[str, str], had: dict[str, str], revision: str,
            flipped: bool = False) -> Result:
    """The sync as the user reads it: their files, not the session's own
    (core.namespaces). `local` and `revision`: the snapshot's, computed once."""
    shown = namespaces.users_plan(plan(local, had), snapshot)
    return Result(shown, revision, *namespaces.users_size(snapshot), flipped=flipped)


def _down(e: S3Error) -> Exception:
    """A dead tunnel or bucket pod (no HTTP status, a dropped client, a server
    error that outlived the retries) can be reconnected; any other S3 failure
    is the user's to see."""
    return BucketUnreachable(str(e)) if e.status is None or e.status >= 499 else UserError(str(e))


