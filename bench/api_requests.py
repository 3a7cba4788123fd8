"""How many API requests each command costs the cluster (issue 9, point 4).

    .venv/bin/python -m bench.api_requests [--tree DIR] [--idle 60] [--state-dir DIR]

Counts, from the kube-apiserver's audit log of the dev cluster, the requests
of the `developer` user alone (the controllers' traffic is not audited):

- `up` of a three-file app;
- one `sync` of one changed file                 [target <= 15]
- an idle `sync --watch` over --idle seconds     [target <= 6 per 60 s]

A watch is one request however many events it carries; a port-forward tunnel
is one request too. --tree names the checkout whose plugin is measured (its
package is put first on PYTHONPATH), so the same run measures an older
commit: `git worktree add /tmp/before <commit>` then `--tree /tmp/before`.
Prints JSON: the counts and, for each, the requests by verb and resource.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from bench.common import local_cluster

ROOT = Path(__file__).resolve().parents[1]


def requests_between(audit_log: Path, start: float, end: float) -> list[dict]:
    """The audited requests received in [start, end) (epoch seconds)."""
    out = []
    for line in audit_log.read_text().splitlines():
        event = json.loads(line)
        received = datetime.fromisoformat(
            event["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp()
        if start <= received < end:
            out.append(event)
    return out


def breakdown(events: list[dict]) -> dict[str, int]:
    counts = collections.Counter()
    for e in events:
        ref = e.get("objectRef") or {}
        what = ref.get("resource", e["requestURI"].split("?")[0])
        if ref.get("subresource"):
            what += "/" + ref["subresource"]
        counts[f"{e['verb']} {what}"] += 1
    return dict(sorted(counts.items()))


class Plugin:
    """Runs one checkout's plugin as the audited developer."""

    def __init__(self, tree: Path, kubeconfig: Path, namespace: str):
        self.env = dict(os.environ, KUBECONFIG=str(kubeconfig),
                        PYTHONPATH=f"{tree}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
        self.tree, self.ns = tree, namespace     # `python -m` puts the cwd first: run in tree

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "kubectl_gitops_run", *args, "-n", self.ns]

    def run(self, *args: str) -> tuple[float, float]:
        start = time.time()
        subprocess.run(self.argv(*args), env=self.env, cwd=self.tree, check=True,
                       stdout=subprocess.DEVNULL)
        return start, time.time()

    def idle_watch(self, app: Path, seconds: float) -> tuple[float, float]:
        """`sync --watch` left alone for `seconds` after its first cycle."""
        proc = subprocess.Popen(self.argv("sync", "app", "--watch"), env=self.env,
                                cwd=self.tree, stdout=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            proc.stdout.readline()                  # "watching ..."
            proc.stdout.readline()                  # the first cycle's line
            start = time.time()
            time.sleep(seconds)
            end = time.time()
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(30)
        return start, end


def measure(plugin: Plugin, app: Path, audit_log: Path, idle: float) -> dict:
    figures: dict = {}

    def count(name: str, window: tuple[float, float]) -> None:
        time.sleep(1)       # a request is logged when it completes
        events = requests_between(audit_log, *window)
        figures[name] = {"requests": len(events), "by": breakdown(events)}

    count("up", plugin.run("up", str(app), "--name", "app"))
    (app / "configmap.yaml").write_text(
        (app / "configmap.yaml").read_text().replace("Hello from", "Hello again from"))
    count("sync_one_changed_file", plugin.run("sync", "app"))
    window = plugin.idle_watch(app, idle)
    count(f"idle_watch_{idle:g}s", window)
    plugin.run("down", "app")
    return figures


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tree", type=Path, default=ROOT, help="checkout whose plugin is measured")
    ap.add_argument("--idle", type=float, default=60)
    ap.add_argument("--state-dir", type=Path)
    args = ap.parse_args()
    with local_cluster(args.state_dir) as (cluster, ns, tmp):
        if not cluster.audit_log.parent.is_dir():
            raise SystemExit("this cluster has no audit log: restart it (make dev-cluster-down)")
        app = tmp / "app"
        shutil.copytree(ROOT / "examples" / "hello", app)
        plugin = Plugin(args.tree.resolve(), cluster.developer_kubeconfig(), ns)
        figures = measure(plugin, app, cluster.audit_log, args.idle)
    json.dump({"tree": str(args.tree), **figures}, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
