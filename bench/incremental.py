"""One changed file in a large tree: the plugin's part of a sync against
`rclone sync --checksum`, over one port-forward to the same bucket server
(issue 13, target: >= 3x faster at 10,000 files).

    .venv/bin/python -m bench.incremental [--files 1000,10000,50000] [--runs 5]
                                          [--listing-up-to 10000] [--state-dir DIR]

For each tree size, --runs rounds, each: one file changed, then in turn
- the plugin, reading what each slot holds from its journal (core.journal);
- the plugin with the journals not read: each slot listed in parallel
  ranges, as before the journal (tree sizes up to --listing-up-to only);
- rclone sync --checksum of the same tree into its own bucket.
The plugin's figure is Syncer.sync(wait=False) in-process (scan to flip);
Flux is let finish between syncs, as `sync` does. Also reported: one GET of a
slot's journal, and one full listing of the slot, sequential and in ranges.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from bench.common import EXE, empty_session, local_cluster, spread
from bench.live_loop import make_tree, rclone_env, rclone_exe


def clock(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class Round:
    """The three contenders on one tree, each timed the same way."""

    def __init__(self, kube, ns: str, name: str, tree: Path, server, rclone: str):
        from kubectl_gitops_run import ops
        from kubectl_gitops_run.ops import publish
        from kubectl_gitops_run.ops.publish import Syncer
        self.publish, self.tree, self.rclone = publish, tree, rclone
        self.scanner = ops.scanner(str(tree), 10 << 20, path="deploy")   # as the session applies it
        self.syncer = Syncer(kube, ns, name, server)
        self.s3 = server.s3()
        self.env = rclone_env(self.s3.endpoint, server.credentials()[0])
        self.remote = f"b:rclone-{name}"

    def plugin(self, journals: bool = True) -> float:
        decode = self.publish.journal.decode
        if not journals:    # nor the journals this Syncer remembers
            self.publish.journal.decode = lambda data: None
            self.syncer.journals.clear()
        try:
            start = time.perf_counter()
            result = self.syncer.sync(self.scanner, wait=False)
            took = time.perf_counter() - start
        finally:
            self.publish.journal.decode = decode
        self.syncer.wait_applied(result.revision)
        return took

    def rclone_run(self, *argv: str) -> float:
        return clock(lambda: subprocess.run(
            [self.rclone, *argv, str(self.tree), self.remote], env=self.env, check=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def listing(self, slot: str, keys: list[str], ranges: bool) -> float:
        from kubectl_gitops_run.adapters.s3 import range_cuts
        return clock(lambda: self.s3.list(slot, range_cuts(keys) if ranges else ()))

    def reads(self, slot: str, runs: int) -> dict[str, list[float]]:
        """One GET of the slot's journal, and one listing of it, each way."""
        from kubectl_gitops_run.core import journal
        keys = sorted(self.s3.list(slot))
        out = {"one_journal_get": [clock(lambda: journal.decode(
            self.s3.get(slot, journal.KEY))) for _ in range(runs)]}
        for ranges in (False, True):
            out[f"one_listing_{'ranges' if ranges else 'sequential'}"] = [
                self.listing(slot, keys, ranges) for _ in range(runs)]
        return out


def one_size(cluster, ns: str, tmp: Path, kube, files: int, runs: int, rclone: str,
             listing: bool) -> dict:
    from kubectl_gitops_run.adapters.bucketserver import BucketServer
    name = f"i{files}"
    tree = tmp / name
    empty_session(cluster, ns, tree, name, make_tree, files)
    # the session applies deploy/: Flux fetches that alone (core.fetchscope), so
    # the rounds no longer wait for it to fetch the whole tree
    out: dict = {"files": files}
    contenders = [(True, "plugin_journal")] + [(False, "plugin_listing")] * listing
    times: dict[str, list[float]] = {key: [] for _, key in contenders}
    times["rclone_sync_checksum"] = []
    with BucketServer(kube, ns, name) as server:
        r = Round(kube, ns, name, tree, server, rclone)
        out["initial_upload_plugin_s"] = round(r.plugin(), 2)
        out["initial_upload_rclone_copy_s"] = round(r.rclone_run("copy"), 2)
        changed = tree / "data" / "d000" / "f00000.txt"
        changed.write_text("catch up\n")
        out["second_slot_fill_s"] = round(r.plugin(), 2)      # the other slot was empty
        for i in range(runs):
            for journals, key in contenders:
                changed.write_text(f"changed {i} {key}\n")
                times[key].append(r.plugin(journals))
            times["rclone_sync_checksum"].append(r.rclone_run("sync", "--checksum"))
        slot = kube.get("Bucket", f"gitops-run-{name}", ns)["spec"]["bucketName"]
        times.update(r.reads(slot, runs))
    out.update({k: spread(v) for k, v in times.items()})
    rc = out["rclone_sync_checksum"]["median"]
    for _, key in contenders:
        out[f"speedup_{key}_vs_rclone"] = round(rc / out[key]["median"], 2)
    subprocess.run([EXE, "down", name, "-n", ns], env=cluster.env(), check=False,
                   stdout=subprocess.DEVNULL)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", default="1000,10000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--listing-up-to", type=int, default=10000)
    ap.add_argument("--state-dir", type=Path)
    args = ap.parse_args()
    from kubectl_gitops_run.adapters.kube import connect
    rclone = rclone_exe()
    figures = []
    with local_cluster(args.state_dir) as (cluster, ns, tmp):
        kube = connect(str(cluster.state.kubeconfig), None, ns)
        for files in (int(n) for n in args.files.split(",")):
            figures.append(one_size(cluster, ns, tmp, kube, files, args.runs, rclone,
                                    files <= args.listing_up_to))
            print(json.dumps(figures[-1], indent=1), flush=True)
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
