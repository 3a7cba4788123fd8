"""Health ahead of Flux's poll (issue 13, item 4), on the dev cluster.

    .venv/bin/python -m bench.health [--runs 10] [--state-dir DIR]

A session of examples/web (the dev cluster's echo server behind a
Deployment) gets --runs image changes (the echo image answers to any tag),
each a rollout to a new pod. For each,
three moments are caught by watches running in this process: the new pod
turns Ready, the plugin reports its own verdict (ops.settle, through the
Reporter), and Flux sets the Kustomization's Healthy condition for that
revision. Prints the p50/p95/spread of "verdict - pod Ready" for the plugin
and for Flux, and their ratio (target: the plugin's p50 at most 1 s).
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import threading
import time
from pathlib import Path

from bench.common import EXE, local_cluster, percentile, spread
from kubectl_gitops_run import ops
from kubectl_gitops_run.adapters.bucketserver import BucketServer
from kubectl_gitops_run.adapters.kube import connect
from kubectl_gitops_run.core import flux
from kubectl_gitops_run.errors import Cancelled
from kubectl_gitops_run.ops.publish import Syncer
from kubectl_gitops_run.ops.report import Reporter

WEB = Path(__file__).resolve().parents[1] / "examples" / "web"


class Clock:
    """Arrival times of watch events, kept by this process's own watches."""

    def __init__(self, kube, ns: str):
        self.kube, self.ns = kube, ns
        self.pod_ready: dict[str, float] = {}       # pod name -> first seen Ready
        self.healthy: dict[str, float] = {}         # revision -> Flux's Healthy=True
        self.stop = threading.Event()
        for target in (self._pods, self._kustomization):
            threading.Thread(target=target, daemon=True).start()

    def _follow(self, kind: str, on_event, **kw) -> None:
        rv = self.kube.collection(kind, self.ns, kw.get("selector"))["metadata"][
            "resourceVersion"]
        while not self.stop.is_set():
            try:
                for _, obj in self.kube.watch(kind, self.ns, resource_version=rv, timeout=60,
                                              cancel=self.stop, **kw):
                    rv = obj["metadata"].get("resourceVersion") or rv
                    on_event(obj, time.monotonic())
            except Cancelled:
                return

    def _pods(self) -> None:
        def seen(pod, now):
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in (pod.get("status") or {}).get("conditions") or [])
            if ready:
                self.pod_ready.setdefault(pod["metadata"]["name"], now)
        self._follow("Pod", seen, selector="app=web")

    def _kustomization(self) -> None:
        def seen(ks, now):
            healthy = flux.condition(ks, "Healthy") or {}
            revision = (ks.get("status") or {}).get("lastAppliedRevision")
            if healthy.get("status") == "True" and revision:
                self.healthy.setdefault(revision, now)
        self._follow("Kustomization", seen, name="gitops-run-web")


class Stamp(Reporter):
    """When the sync reported its own healthy verdict."""
    at: float | None = None

    def judged(self, healthy: bool, message: str) -> None:
        self.at = time.monotonic() if healthy else None


def one_rollout(kube, ns: str, app: Path, clock: Clock, i: int) -> tuple[float, float] | None:
    """(plugin's verdict, Flux's Healthy) in seconds after the new pod is Ready."""
    path = app / "deployment.yaml"     # an image change: the echo image takes any tag
    path.write_text(re.sub(r"(gitops-run-echo):\S+", rf"\1:{i + 2}", path.read_text()))
    before = set(clock.pod_ready)
    stamp = Stamp()
    with BucketServer(kube, ns, "web") as server:
        result = Syncer(kube, ns, "web", server, report=stamp, timeout=180).sync(
            ops.scanner(str(app), 10 << 20))
    deadline = time.monotonic() + 10
    while result.revision not in clock.healthy and time.monotonic() < deadline:
        time.sleep(0.05)
    new = [t for name, t in clock.pod_ready.items() if name not in before]
    if not new or stamp.at is None or result.revision not in clock.healthy:
        return None
    ready = max(new)
    return stamp.at - ready, clock.healthy[result.revision] - ready


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--state-dir", type=Path)
    args = ap.parse_args()
    with local_cluster(args.state_dir) as (cluster, ns, tmp):
        app = tmp / "web"
        shutil.copytree(WEB, app)
        subprocess.run([EXE, "up", str(app), "-n", ns, "--name", "web"], env=cluster.env(),
                       check=True, stdout=subprocess.DEVNULL)
        kube = connect(str(cluster.state.kubeconfig), None, ns)
        clock = Clock(kube, ns)
        ours, theirs, missed = [], [], 0
        for i in range(args.runs):
            got = one_rollout(kube, ns, app, clock, i)
            if got is None:
                missed += 1
                continue
            ours.append(got[0])
            theirs.append(got[1])
        clock.stop.set()
    figures = {"runs": args.runs, "missed": missed}
    for name, values in (("plugin", ours), ("flux", theirs)):
        if values:
            figures[name] = {**spread(values), "p95": round(percentile(values, 95), 3)}
    if ours and theirs:
        figures["flux_over_plugin_p50"] = round(statistics.median(theirs) /
                                                max(statistics.median(ours), 1e-3), 1)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
