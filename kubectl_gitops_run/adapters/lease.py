"""One sync at a time per session, across shells: a coordination.k8s.io Lease.

The Lease `gitops-run-<session>-sync` lives in the session's namespace. A sync
holds it (holderIdentity "user@host pid N") and a daemon thread renews it every
duration/3 s; a holder that dies stops renewing, so the Lease expires and
blocks others for at most `duration` s. Every write carries the resourceVersion
it was based on, so when two shells race for a free or expired Lease the API
server lets exactly one write through and the other re-reads.

Expiry is judged two ways: the holder's renewTime + leaseDurationSeconds is
past by our clock, or (while we wait) the Lease has not changed for a whole
leaseDurationSeconds by our monotonic clock, which copes with a holder whose
clock is ahead.
"""
from __future__ import annotations

import itertools
import logging
import os
import random
import threading
import time
from datetime import datetime, timedelta, timezone

from ..core.naming import labels, lease_name
from ..errors import LeaseHeld
from . import localhost

log = logging.getLogger(__name__)

POLL = 0.5            # seconds between looks at a held Lease while waiting
TIMEOUT = (5, 10)      # (connect, read) seconds of each Lease request

_instances = itertools.count(1)


def default_identity() -> str:
    n = next(_instances)
    # a second SyncLease in one process is a different holder, not "already ours"
    return f"{localhost.identity()} pid {os.getpid()}" + (f" #{n}" if n > 1 else "")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _fmt(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")        # metav1.MicroTime


def _parse(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))   # 3.10 knows no "Z"


def _expires(spec: dict) -> datetime | None:
    """When the holder's term ends by its last renewal; None if it never renewed."""
    if not spec.get("renewTime"):
        return None
    return _parse(spec["renewTime"]) + timedelta(seconds=spec.get("leaseDurationSeconds") or 0)


def _held(session: str, holder: str, expires: datetime | None,
          waited: float | None = None) -> LeaseHeld:
    msg = f"another sync of session {session!r} is running, by {holder}"
    if expires is not None:
        left = max(0.0, (expires - _now()).total_seconds())
        msg += f"; its lease expires at {expires:%H:%M:%S} UTC (in {left:.0f}s) unless renewed"
    if waited is not None:
        msg = f"waited {waited:.0f}s: " + msg
    return LeaseHeld(msg, holder)


class SyncLease:
    def __init__(self, kube, namespace: str, session: str, duration: int = 15,
                 identity: str | None = None):
        self.kube = kube
        self.namespace, self.session, self.duration = namespace, session, int(duration)
        self.name = lease_name(session)
        self.identity = identity or default_identity()
        self.lost = False           # set when renewal finds someone else holding it
        self._lease: dict | None = None     # our last successful write, while held
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    @property
    def held(self) -> bool:
        return self._lease is not None and not self.lost

    def __enter__(self) -> SyncLease:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self, wait: bool = True, timeout: float = 120) -> None:
        if self.held:
            return
        start = time.monotonic()
        seen_rv, seen_at = None, start
        while True:
            lease = self._read()
            now = time.monotonic()
            if lease is not None:
                spec = lease.get("spec") or {}
                holder = spec.get("holderIdentity")
                if lease["metadata"]["resourceVersion"] != seen_rv:
                    seen_rv, seen_at = lease["metadata"]["resourceVersion"], now
                term = spec.get("leaseDurationSeconds") or self.duration
                expires = _expires(spec)
                free = (not holder or holder == self.identity or expires is None
                        or expires < _now() or now - seen_at > term)
                if not free:
                    if not wait or now - start >= timeout:
                        raise _held(self.session, holder, expires,
                                        None if not wait else now - start)
                    left = (expires - _now()).total_seconds()
                    time.sleep(max(0.05, min(POLL, left + 0.05, start + timeout - now)))
                    continue
            written = self._write(lease)
            if written is not None:
                break
            # lost a race: somebody wrote in between; look again at once
            time.sleep(random.uniform(0, 0.05))
        with self._lock:
            self._lease, self.lost = written, False
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew_loop, daemon=True,
                                         name=f"gitops-run-lease-{self.session}")
        self._renewer.start()
        log.debug("holding lease %s/%s as %s", self.namespace, self.name, self.identity)

    def release(self) -> None:
        """Give the Lease up if it is still ours (best effort: if this fails, the
        Lease simply expires)."""
        self._stop.set()
        if self._renewer is not None and self._renewer is not threading.current_thread():
            self._renewer.join(10)
        self._renewer = None
        with self._lock:
            lease, self._lease = self._lease, None
        if lease is None or self.lost:
            return
        for _ in range(3):
            try:
                if self._write(lease, holder=None) is not None:
                    return
                lease = self._read()        # changed meanwhile: ours still?
            except Exception as e:  # noqa: BLE001 - the Lease expires anyway
                log.warning("could not release lease %s/%s: %s", self.namespace, self.name, e)
                return
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return

    # -- renewal -----------------------------------------------------------

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.duration / 3):
            try:
                self._renew()
            except Exception as e:  # noqa: BLE001 - retried next tick, before expiry
                log.warning("could not renew lease %s/%s: %s", self.namespace, self.name, e)
            if self.lost:
                return

    def _renew(self) -> None:
        with self._lock:
            lease = self._lease
            if lease is None:
                return
            written = self._write(lease)
            if written is None:             # someone else wrote: who holds it now?
                current = self._read()
                holder = ((current or {}).get("spec") or {}).get("holderIdentity")
                if holder == self.identity:
                    written = self._write(current)
                if written is None:
                    self.lost = True
                    log.warning("lost the sync lease of session %r to %s", self.session, holder)
                    return
            if not self._stop.is_set():     # released meanwhile: keep it released
                self._lease = written

    # -- API ---------------------------------------------------------------

    def _read(self) -> dict | None:
        return self.kube.get("Lease", self.name, self.namespace, timeout=TIMEOUT)

    def _write(self, base: dict | None, holder: str | None = "") -> dict | None:
        """Create the Lease, or replace `base` with us as holder (holder=None:
        nobody). Returns the stored Lease, or None if `base` was stale (409)."""
        holder = self.identity if holder == "" else holder
        now = _fmt(_now())
        meta = {k: v for k, v in ((base or {}).get("metadata") or {}).items()
                if k != "managedFields"}
        meta.update(name=self.name, namespace=self.namespace)
        meta["labels"] = {**(meta.get("labels") or {}), **labels(self.session)}
        spec = dict((base or {}).get("spec") or {})
        previous = spec.get("holderIdentity")
        spec.update(leaseDurationSeconds=self.duration, renewTime=now)
        if holder is None:
            spec.pop("holderIdentity", None)
        else:
            spec["holderIdentity"] = holder
            if previous != holder:
                spec["acquireTime"] = now
                spec["leaseTransitions"] = spec.get("leaseTransitions", 0) + (1 if base else 0)
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": meta, "spec": spec}
        # someone else created, changed or deleted it meanwhile: None, look again
        if base is None:
            return self.kube.create(body, timeout=TIMEOUT)
        return self.kube.replace(body, timeout=TIMEOUT)
