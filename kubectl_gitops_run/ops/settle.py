"""Watch what Flux just applied until it settles, and judge it (core.verdict)
sooner than kustomize-controller's 5 s health poll.

Each object is followed by the one wait primitive (adapters.waiting); a
workload also has its pods followed meanwhile, since a pod stuck in
CrashLoopBackOff never changes its Deployment's status. Only Flux's verdict
sets the exit code (ops.publish).
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from ..adapters.kube import Kube
from ..adapters.waiting import until, until_list
from ..core import health, verdict
from ..core.inventory import Ref
from ..errors import Cancelled, WaitTimeout

CANCEL_CHECK = 0.1      # seconds between looks at the caller's cancel


class _Failing(Exception):
    pass


def settle(kube: Kube, refs: list[Ref], *, timeout: float,
           cancel: threading.Event) -> verdict.Verdict | None:
    """Our verdict once every watched object is Current or one is failing;
    None when Flux alone can judge (custom resources) or the wait ran out."""
    start = time.monotonic()
    watch, unjudged = verdict.plan(refs)
    if unjudged:
        return None
    try:
        for ref in watch:
            left = timeout - (time.monotonic() - start)
            _settle_one(kube, ref, left, cancel)
    except _Failing as e:
        return verdict.Verdict(False, str(e), time.monotonic() - start)
    except WaitTimeout:
        return None
    return verdict.Verdict(True, "", time.monotonic() - start)


class Judge:
    """settle() in a thread beside the wait for Flux's verdict: it reports as
    soon as it knows, and stops when Flux has spoken."""

    def __init__(self, kube: Kube, refs: list[Ref], timeout: float,
                 report: Callable[[verdict.Verdict, int], None]):
        self.verdict: verdict.Verdict | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(kube, refs, timeout, report),
                                        daemon=True, name="gitops-run health verdict")
        self._thread.start()

    def _run(self, kube: Kube, refs: list[Ref], timeout: float, report) -> None:
        if not refs:
            return
        try:
            found = settle(kube, refs, timeout=timeout, cancel=self._stop)
        except Exception:       # Cancelled, a refusal: Flux's verdict is enough
            return
        if found is not None and not self._stop.is_set():
            self.verdict = found
            report(found, len(refs))

    def stop(self) -> verdict.Verdict | None:
        """Our verdict, if it came before Flux's."""
        self._stop.set()
        self._thread.join(1.0)
        return self.verdict


def _settle_one(kube: Kube, ref: Ref, timeout: float, cancel: threading.Event) -> None:
    """Return once `ref` is Current; raise _Failing with why once it, or one
    of its pods, fails."""
    done = threading.Event()     # ends the pods' watch when the object settles
    pods: list[threading.Thread] = []
    failing: list[str] = []      # a stuck pod, as the pods' watch found it

    def judged(obj: dict | None):
        if obj is not None and ref.kind in verdict.WORKLOADS and not pods:
            pods.append(_follow_pods(kube, ref, obj, timeout, done, failing))
        if failing:
            raise _Failing(failing[0])
        state = health.status(obj)
        if state.status == health.FAILED:
            raise _Failing(f"{ref}: {state.reason}")
        return obj if state.status == health.CURRENT else None

    watcher = threading.Thread(target=_chain, args=(cancel, done), daemon=True)
    watcher.start()
    try:
        until(kube, ref.kind, ref.namespace, judged, name=ref.name, timeout=timeout,
              cancel=done)
    except Cancelled:
        if failing:
            raise _Failing(failing[0]) from None
        raise
    finally:
        done.set()


def _follow_pods(kube: Kube, ref: Ref, workload: dict, timeout: float,
                 done: threading.Event, failing: list[str]) -> threading.Thread:
    """A thread that records the first stuck pod of the workload and ends
    the object's wait (through `done`) when it finds one."""
    selector = verdict.pod_selector(workload)

    def stuck(items: list[dict]):
        why = verdict.stuck_pod(items)
        if why:
            failing.append(f"{ref}: {why}")
            done.set()
        return why

    def run() -> None:
        try:
            until_list(kube, "Pod", ref.namespace, selector, stuck, timeout=timeout, cancel=done)
        except Exception:   # Cancelled, a timeout, a refusal: only a hint, Flux still judges
            pass

    thread = threading.Thread(target=run, daemon=True, name=f"gitops-run pods of {ref.name}")
    if selector:
        thread.start()
    return thread


def _chain(outer: threading.Event, inner: threading.Event) -> None:
    """Set `inner` when `outer` is set, until `inner` is set anyway."""
    while not inner.wait(CANCEL_CHECK):
        if outer.is_set():
            inner.set()
