"""Figures for the local control plane: start-to-ready time and memory.

    .venv/bin/python -m bench.control_plane [--runs 3]

Starts a private cluster (state in a temp dir) several times, and after each
start runs a small workload (a Deployment, a bucket-server pod) so the memory
figure includes the MinIO runtime. Memory is the sum over every process of the
harness of its peak resident set (VmHWM), an upper bound of the peak total.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from devcluster.build import pins
from devcluster.cluster import Cluster


def tree_pids(roots: list[int]) -> list[int]:
    """Every process in the process groups the harness started."""
    groups = set(roots)
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if os.getpgid(int(d.name)) in groups:
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def peak_rss_mib(pids: list[int]) -> dict[str, float]:
    by_name: dict[str, float] = {}
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        kib = int(fields.get("VmHWM", "0 kB").split()[0])
        name = fields["Name"].strip()
        by_name[name] = by_name.get(name, 0) + kib / 1024
    return by_name


def workload(c: Cluster) -> None:
    image = pins()["minio"]["image"]
    c.kubectl("create", "deployment", "web", "--image=example.invalid/web:1")
    c.kubectl("create", "deployment", "bucket", f"--image={image}", "--", "minio", "server", "/data")
    c.kubectl("set", "env", "deployment/bucket", "MINIO_ROOT_USER=benchuser", "MINIO_ROOT_PASSWORD=benchpassword")
    c.kubectl("rollout", "status", "deployment/web", "--timeout=60s")
    c.kubectl("rollout", "status", "deployment/bucket", "--timeout=60s")
    time.sleep(5)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    starts, totals = [], []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as d:
            c = Cluster(Path(d))
            try:
                starts.append(c.up())
                workload(c)
                per = peak_rss_mib(tree_pids(list(c.state.pids.values())))
                totals.append(sum(per.values()))
                print(f"run {i + 1}: ready in {starts[-1]:.1f}s, peak RSS {totals[-1]:.0f} MiB "
                      + json.dumps({k: round(v) for k, v in sorted(per.items())}))
            finally:
                c.down(quiet=True)
    print(f"start-to-ready: median {statistics.median(starts):.1f}s, "
          f"min {min(starts):.1f}s, max {max(starts):.1f}s over {len(starts)} runs")
    print(f"peak RSS of the running harness: max {max(totals):.0f} MiB")


if __name__ == "__main__":
    main()
