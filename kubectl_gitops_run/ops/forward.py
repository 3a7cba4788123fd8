"""Port-forwards that follow a session's pods (`--port-forward`, `forward`).

Each forward is one adapters.portforward.PortForward whose pod is picked
afresh for every connection from the pods behind its target, which one watch
(adapters.waiting, one per forward) keeps current. A connection to a pod that
goes away is dropped; the listener stays. While the loop runs, the forwards
are recorded on the session's Bucket (one annotation per loop), and removed
when it ends; each row carries an expiry the loop renews, so the record of a
loop killed with SIGKILL stops counting (core.forwards).
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from datetime import datetime, timezone

from ..adapters.portforward import PortForward
from ..adapters.waiting import until, until_list
from ..core import forwards as fw
from ..core import inventory, naming
from ..errors import ApiError, Cancelled, UserError, WaitTimeout
from .report import Reporter

log = logging.getLogger(__name__)

SPAN = 60.0         # seconds per watch: then the target is read again (a changed selector)
RETRY = 2.0         # seconds between looks at a target that is missing
REPEAT = 30.0       # seconds before the same "no Ready pod" line is logged again


class _Forward:
    """One forward: its listener, and the pods behind its target."""

    def __init__(self, kube, session: str, namespace: str, spec: fw.Spec, report: Reporter,
                 changed):
        self.kube, self.session, self.spec, self.report = kube, session, spec, report
        self.namespace = spec.namespace or namespace
        self.changed = changed              # called when state changes (the record)
        self.cond = threading.Condition()
        self.pods: list[dict] = []
        self.port: int | str = spec.remote  # on the pod: a Service port maps to its targetPort
        self.reason = "not looked at yet"
        self.replicasets: list[dict] = []
        self.seen: set[str] = set()
        self.announced = False
        self.state = "waiting"
        self._said: tuple[str, float] = ("", 0.0)
        self.forward = PortForward(kube, self.namespace, self.pick, spec.remote,
                                   local_port=spec.local, on_problem=self.no_pod, spare=True)

    def row(self) -> dict:
        return {"url": self.forward.url, "target": f"{self.spec.target}:{self.spec.remote}",
                "state": self.state}

    def pick(self, wait: float) -> fw.Choice:
        deadline = time.monotonic() + wait
        with self.cond:
            while True:
                choice = fw.choose(self.pods, self.port) if self.pods else \
                    fw.Choice(None, None, self.reason)
                left = deadline - time.monotonic()
                if choice.pod is not None or left <= 0:
                    return choice
                self.cond.wait(left)

    def no_pod(self, reason: str) -> None:
        """A connection found no Ready pod in time: one line, not one per request."""
        text = f"{self.session}: no Ready pod behind {self.spec.target} ({reason})"
        now = time.monotonic()
        if text != self._said[0] or now - self._said[1] > REPEAT:
            self._said = (text, now)
            self.report.forward_problem(text)

    def follow(self, cancel: threading.Event) -> None:
        """Keep self.pods current until cancelled."""
        while not cancel.is_set():
            try:
                self._watch_once(cancel)
            except (Cancelled, KeyboardInterrupt):
                return
            except WaitTimeout:
                continue            # read the target again
            except (UserError, ApiError) as e:
                self._update([], str(e))
                cancel.wait(RETRY)
            except Exception as e:  # noqa: BLE001 - keep forwarding; say what broke
                log.debug("following %s failed", self.spec, exc_info=True)
                self._update([], f"{type(e).__name__}: {e}")
                cancel.wait(RETRY)

    def _watch_once(self, cancel: threading.Event) -> None:
        kind, name = self.spec.kind, self.spec.name
        target = self.kube.get(kind, name, self.namespace)
        if target is None:
            self._update([], f"{self.spec.target} not found in namespace {self.namespace}")
            cancel.wait(RETRY)
            return
        if kind == "Pod":
            until(self.kube, "Pod", self.namespace, lambda p: self._update([p] if p else []),
                  name=name, timeout=SPAN, cancel=cancel, start=target)
            return
        if kind == "Service":
            self.port = fw.service_target_port(target, self.spec.remote)
        selector = fw.target_selector(kind, target)
        if selector is None:
            raise UserError(f"{self.spec.target} selects no pods (it has no selector)")
        until_list(self.kube, "Pod", self.namespace, selector,
                   lambda pods: self._update(self._behind(kind, target, selector, pods)),
                   timeout=SPAN, cancel=cancel)

    def _behind(self, kind: str, target: dict, selector: str, pods: list[dict]) -> list[dict]:
        if kind == "Deployment":
            known = {rs["metadata"]["uid"] for rs in self.replicasets}
            owners = {r.get("uid") for p in pods for r in p["metadata"].get("ownerReferences") or []}
            if owners - known:      # a new ReplicaSet (a rollout): read them again
                self.replicasets = self.kube.list("ReplicaSet", self.namespace, selector)
        return fw.pods_behind(kind, target, pods, self.replicasets)

    def _update(self, pods: list[dict], reason: str = "no pods") -> None:
        """New pods: wake waiting connections, drop those to pods gone, announce."""
        with self.cond:
            self.pods, self.reason = pods, reason
            self.cond.notify_all()
        alive = {p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")}
        for gone in self.seen - alive:
            self.forward.drop_connections(gone)
        self.seen = alive
        choice = fw.choose(pods, self.port) if pods else fw.Choice(None, None, reason)
        state = "ready" if choice.pod else f"waiting: {choice.reason}"
        if choice.pod and not self.announced:
            self.announced = True
            self.report.forwarding(self.forward.url, f"{self.spec.target}:{self.spec.remote}")
        if state != self.state:
            self.state = state
            self.changed()


class Forwards:
    """A loop's forwards: bind() first (a port in use fails before anything
    starts), then start(); close() (or leaving the `with`) ends them all,
    releases the ports and removes their record from the session."""

    def __init__(self, kube, session: str, specs: list[fw.Spec], report: Reporter):
        self.kube, self.session, self.report = kube, session, report
        self.namespace = kube.namespace
        fw.check_unique(specs)
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._recorded = False
        self._written = 0.0         # time.monotonic() of the last write of the record
        # one annotation per loop: two loops on one session do not overwrite each other
        self.key = f"{naming.ANNOTATION}{fw.FORWARDS}.{secrets.token_hex(3)}"
        self.items = [_Forward(kube, session, self.namespace, s, report, self._record)
                      for s in specs]

    def __enter__(self) -> "Forwards":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def bind(self) -> "Forwards":
        try:
            for item in self.items:
                item.forward.start()
        except BaseException:
            self.close()
            raise
        return self

    def check(self) -> None:
        """Each target in the session's inventory (a warning for one that exists
        outside it, a UserError for one that does not) and a Service's port
        among its ports, before anything starts."""
        ks = self.kube.get("Kustomization", naming.object_name(self.session), self.namespace)
        refs = inventory.entries(ks)
        for item in self.items:
            spec, where = item.spec, f"namespace {item.namespace}"
            inside = fw.in_inventory(spec, self.namespace, refs)
            target = None if inside and spec.kind != "Service" else \
                self.kube.get(spec.kind, spec.name, item.namespace)
            if target is None and not inside:
                raise UserError(f"{spec.target} is not in session {self.session!r}'s inventory "
                                f"and not found in {where}; check the name, or sync first")
            if target is not None and spec.kind == "Service":
                fw.service_target_port(target, spec.remote)
            if not inside:
                self.report.warning(f"{spec.target} in {where} is not in session "
                                    f"{self.session!r}'s inventory; forwarding to it anyway")

    def start(self) -> "Forwards":
        self.bind()
        for item in self.items:
            self._thread(item.follow, f"gitops-run forward {item.forward.url}", self._cancel)
        self._record(self._stale())
        self._thread(self._renew, "gitops-run forwards record")
        return self

    def close(self) -> None:
        self._cancel.set()
        for item in self.items:
            item.forward.close()
        for t in self._threads:
            t.join(2)
        self._write(None)

    def _thread(self, target, name: str, *args) -> None:
        t = threading.Thread(target=target, args=args, daemon=True, name=name)
        self._threads.append(t)
        t.start()

    # -- the record on the session's Bucket (core.forwards: rows with an expiry) --

    def _renew(self) -> None:
        """Renew the record before it expires: one write per fw.RENEW s at most."""
        while not self._cancel.wait(max(RETRY, self._written + fw.RENEW - time.monotonic())):
            if time.monotonic() - self._written >= fw.RENEW:
                self._record()

    def _stale(self) -> dict:
        """Records of loops that were killed (expired): deleted with our first write."""
        try:
            bucket = self.kube.get("Bucket", naming.object_name(self.session), self.namespace)
        except ApiError:
            return {}
        notes = ((bucket or {}).get("metadata") or {}).get("annotations")
        return {k: None for k in fw.stale(notes, naming.ANNOTATION + fw.FORWARDS, _utcnow())}

    def _record(self, also: dict | None = None) -> None:
        rows = [item.row() for item in self.items]
        self._write(fw.record(rows, fw.expiry(_utcnow())), also)

    def _write(self, value: str | None, also: dict | None = None) -> None:
        """The record on the session's Bucket (None: removed); a failure costs
        only the record, and its expiry then hides it."""
        with self._lock:
            if (value is None and not self._recorded) or (value and self._cancel.is_set()):
                return
            notes = {**(also or {}), self.key: value}
            try:
                self.kube.patch("Bucket", naming.object_name(self.session),
                                {"metadata": {"annotations": notes}}, self.namespace)
            except ApiError as e:
                log.debug("cannot record the forwards on the session: %s", e)
                return
            self._recorded, self._written = value is not None, time.monotonic()


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)
