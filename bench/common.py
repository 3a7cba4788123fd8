"""What the benchmarks share: a local control plane, a namespace, timing."""
from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devcluster import build
from devcluster.cluster import Cluster

EXE = str(Path(sys.executable).parent / "kubectl-gitops_run")


@contextlib.contextmanager
def local_cluster(state_dir: Path | None):
    """A private control plane (or the running one in state_dir) and a fresh
    namespace: yields (cluster, namespace, scratch dir)."""
    if build.missing():
        build.build()
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    cluster = Cluster(state_dir or tmp / "cluster")
    try:
        cluster.up()
        ns = f"bench-{os.getpid()}-{int(time.time())}"
        cluster.kubectl("create", "namespace", ns)
        yield cluster, ns, tmp
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    finally:
        if not state_dir:
            cluster.down(quiet=True)
        shutil.rmtree(tmp, ignore_errors=True)


def timed(argv: list[str], env: dict, cwd: str | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def spread(values: list[float], digits: int = 3) -> dict:
    """Median, min and max of a figure's runs, as the docs report them."""
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits), "runs": len(values)}


def alternate(commands: dict[str, list[str]], env: dict, runs: int) -> dict[str, list[float]]:
    """Wall times of each command, run in turn `runs` times (paired runs: a
    busy moment of a shared machine falls on both alike)."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            times[name].append(timed(argv, env))
    return times


def empty_session(cluster, ns: str, tree: Path, name: str, make_tree, files: int) -> None:
    """A session `up` with a one-file tree (no wait), then `tree` rebuilt with
    `files` files: the next sync uploads them all into an empty slot."""
    make_tree(tree, 1)
    subprocess.run([EXE, "up", str(tree), "-n", ns, "--name", name, "--path", "deploy",
                    "--no-wait"], env=cluster.env(), check=True, stdout=subprocess.DEVNULL)
    shutil.rmtree(tree)
    make_tree(tree, files)
