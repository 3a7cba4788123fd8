"""Figures for the plugin's own speed (issue targets in brackets).

    .venv/bin/python -m bench.sync_speed [--files 1000] [--runs 5] [--state-dir DIR]

- `kubectl-gitops_run --help` wall time, median of runs            [<= 150 ms]
- `sync` with nothing changed in a tree of --files files, wall      [<= 1 s]
- one changed file: the plugin's own part (scan, upload, patches),
  measured in-process around Syncer.sync(wait=False)                [<= 0.5 s]
  and the whole `sync` command including Flux applying it, wall.

Starts a private local control plane (or reuses the one in --state-dir).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import EXE, local_cluster, timed


def make_tree(root: Path, files: int) -> None:
    """A few manifests Flux applies (--path deploy) and many plain files."""
    (root / "deploy").mkdir(parents=True)
    (root / "deploy" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bench\ndata:\n  n: '0'\n")
    for i in range(files - 1):
        d = root / "data" / f"d{i // 100:02}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05}.txt").write_text(f"file {i}\n" * 20)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--state-dir", type=Path)
    args = ap.parse_args()
    figures: dict[str, float] = {}
    with local_cluster(args.state_dir) as (cluster, ns, tmp):
        env = cluster.env()
        figures["help_ms"] = 1000 * statistics.median(
            timed([EXE, "--help"], env) for _ in range(args.runs))
        tree = tmp / "tree"
        make_tree(tree, args.files)
        up = timed([EXE, "up", str(tree), "-n", ns, "--name", "bench", "--path", "deploy"], env)
        figures["up_s"] = up

        figures["sync_nochange_s"] = statistics.median(
            timed([EXE, "sync", "bench", "-n", ns], env) for _ in range(args.runs))

        # one changed file: the plugin's part in-process, then the whole command
        from kubectl_gitops_run import ops
        from kubectl_gitops_run.adapters.bucketserver import BucketServer
        from kubectl_gitops_run.adapters.kube import connect
        from kubectl_gitops_run.ops.publish import Syncer
        kube = connect(str(cluster.state.kubeconfig), None, ns)
        own = []
        with BucketServer(kube, ns, "bench") as server:
            server.s3()
            syncer = Syncer(kube, ns, "bench", server)
            for i in range(args.runs):
                (tree / "data" / "d00" / "f00000.txt").write_text(f"changed {i}\n")
                start = time.perf_counter()
                result = syncer.sync(ops.scanner(str(tree), 10 << 20), wait=False)
                own.append(time.perf_counter() - start)
                syncer.wait_applied(result.revision)     # settle before the next one
        figures["one_change_plugin_part_s"] = statistics.median(own)
        walls = []
        for i in range(args.runs):
            (tree / "deploy" / "cm.yaml").write_text(
                f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bench\ndata:\n"
                f"  n: '{i + 1}'\n")
            walls.append(timed([EXE, "sync", "bench", "-n", ns], env))
        figures["one_change_sync_command_s"] = statistics.median(walls)
        subprocess.run([EXE, "down", "bench", "-n", ns], env=env, check=True,
                       stdout=subprocess.DEVNULL)
    print(json.dumps({"files": args.files, **{k: round(v, 3) for k, v in figures.items()}},
                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
