"""Peak RSS of the plugin by tree size (issue 13, targets in brackets).

    .venv/bin/python -m bench.memory [--files 1000,10000] [--local 1000,10000,100000]
                                     [--runs 5] [--state-dir DIR]

- `up --no-wait` of a fresh tree: the first upload, every file, into an
  empty slot, for each of --files                      [10,000 files: <= 100 MB]
- the local side of a sync for each of --local (scan with digests, YAML
  check, revision, one slot's journal written and read, one listing of the
  same size parsed from S3 pages, the plan), in a fresh process, without a
  cluster                                           [100,000 files: <= 250 MB]
- the interpreter with the plugin imported and connected: the floor.

Peak RSS is the child's ru_maxrss (os.wait4); medians over --runs runs, and
how the first upload's grows: MB per 1,000 more files between tree sizes.
"""
from __future__ import annotations

import argparse
import os
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import EXE, local_cluster, spread
from bench.sync_speed import make_tree

PAGE = ('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>{}'
        '<IsTruncated>{}</IsTruncated>{}</ListBucketResult>')


def rss_mb(argv: list[str], env: dict | None = None) -> float:
    """Peak RSS of one command, in MB."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{argv[:3]} exited {os.waitstatus_to_exitcode(status)}")
    return usage.ru_maxrss / 1024


def listing(etags: dict[str, str]) -> dict[str, str]:
    """The bucket's answer for these objects, parsed page by page as S3.list does."""
    from kubectl_gitops_run.adapters.s3 import parse_list_page
    keys, out = list(etags), {}
    for start in range(0, len(keys), 1000):
        page = keys[start:start + 1000]
        more = start + 1000 < len(keys)
        body = PAGE.format("".join(f"<Contents><Key>{k}</Key><ETag>&quot;{etags[k]}&quot;"
                                   f"</ETag></Contents>" for k in page),
                           "true" if more else "false",
                           "<NextContinuationToken>t</NextContinuationToken>" if more else "")
        out.update(parse_list_page(body.encode())[0])
    return out


def probe(tree: str, kubeconfig: str | None) -> None:
    """In a fresh process: what a sync holds locally; prints peak RSS in MB."""
    from kubectl_gitops_run import ops
    from kubectl_gitops_run.adapters.kube import connect
    from kubectl_gitops_run.core.snapshot import plan
    if kubeconfig:
        connect(kubeconfig, None, "default")
    from kubectl_gitops_run.core import journal
    snapshot = ops.scanner(tree, 10 << 20)()
    local = snapshot.etags()
    # what each slot holds: read from its journal (a sync writes one too), or listed
    had, held = journal.decode(journal.encode(local)), listing(local)
    plan(local, had)
    assert snapshot.revision and held
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def local_side(counts: list[int], runs: int, tmp: Path, kubeconfig: str | None) -> dict:
    out = {}
    for files in counts:
        tree = tmp / f"local{files}"
        make_tree(tree, files)
        argv = [sys.executable, "-m", "bench.memory", "--probe", str(tree)]
        argv += ["--kubeconfig", kubeconfig] if kubeconfig else []
        # the first run writes the digest cache; later runs read it, as syncs do
        cold = float(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)
        warm = [float(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)
                for _ in range(runs)]
        out[files] = {"first_scan_mb": round(cold, 1), "cached_scan_mb": spread(warm, 1)}
    return out


def first_upload(cluster, ns: str, tmp: Path, counts: list[int], runs: int) -> dict:
    env, out = cluster.env(), {}
    for files in counts:
        tree = tmp / f"up{files}"
        make_tree(tree, files)
        peaks = []
        for i in range(runs):
            name = f"m{files}-{i}"
            peaks.append(rss_mb([EXE, "up", str(tree), "-n", ns, "--name", name,
                                 "--path", "deploy", "--no-wait"], env))
            subprocess.run([EXE, "down", name, "-n", ns], env=env, check=True,
                           stdout=subprocess.DEVNULL)
        out[files] = spread(peaks, 1)
    return out


def growth(figures: dict[int, dict]) -> dict[str, float]:
    """MB per 1,000 more files, between each pair of tree sizes (medians)."""
    sizes = sorted(figures)
    return {f"{a}-{b}": round((figures[b]["median"] - figures[a]["median"]) * 1000 / (b - a), 2)
            for a, b in zip(sizes, sizes[1:])}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", default="1000,10000")
    ap.add_argument("--local", default="1000,10000,100000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--state-dir", type=Path)
    ap.add_argument("--probe")
    ap.add_argument("--kubeconfig")
    args = ap.parse_args()
    if args.probe:
        probe(args.probe, args.kubeconfig)
        return 0
    numbers = lambda s: [int(n) for n in s.split(",") if n]     # noqa: E731
    out: dict = {}
    with local_cluster(args.state_dir) as (cluster, ns, tmp):
        kubeconfig = str(cluster.state.kubeconfig)
        floor = [sys.executable, "-c", "import sys; from kubectl_gitops_run import ops; "
                 "from kubectl_gitops_run.adapters.kube import connect; "
                 "connect(sys.argv[1], None, 'default')", kubeconfig]
        out["floor_mb"] = spread([rss_mb(floor) for _ in range(args.runs)], 1)
        with tempfile.TemporaryDirectory(prefix="bench-mem-") as scratch:
            env_home = os.environ.get("XDG_CACHE_HOME")
            os.environ["XDG_CACHE_HOME"] = scratch     # digest caches of these trees only
            try:
                out["local_side"] = local_side(numbers(args.local), args.runs, tmp, kubeconfig)
                out["first_upload"] = first_upload(cluster, ns, tmp, numbers(args.files),
                                                   args.runs)
                out["first_upload_mb_per_1000_files"] = growth(out["first_upload"])
            finally:
                os.environ.pop("XDG_CACHE_HOME") if env_home is None else \
                    os.environ.update(XDG_CACHE_HOME=env_home)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
