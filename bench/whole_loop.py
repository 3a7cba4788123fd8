"""The whole loop with a large tree (issue 13, item 6): one changed manifest,
from `sync` until Flux applied it, split by who spends the time.

    .venv/bin/python -m bench.whole_loop [--files 100,1000,10000,10000:root,10000:ignored]
        [--runs 5] [--state-dir DIR]

For each tree, a session of deploy/cm.yaml and files-1 other files (the trees
of bench.live_loop), made with `up DIR --path deploy`; one unmeasured sync
fills the second slot. Then --runs times: the ConfigMap's value changed and
`kubectl-gitops_run sync NAME` run as a user runs it. Watches of the
namespace's Buckets and ConfigMaps in the bench stamp each step:

    plugin  command start -> the Bucket's revision annotation names the new
            revision (the flip: scan, listings, upload, patch; start-up included)
    fetch   flip -> the Bucket's artifact is that revision (source-controller
            lists the slot, fetches every object, archives them)
    apply   artifact -> the ConfigMap shows the new value (kustomize-controller)
    sync    command start -> the command exits (it waits for the
            Kustomization to be Ready, then reports)

The plugin makes Flux fetch deploy/ and its own .gitops-run/ alone
(core.fetchscope: the Bucket's spec.ignore, set in each flip). A tree given
as `files:variant` is a peer in the same run: `root`, the same tree applied
from its root (`up DIR`, no --path), which Flux fetches whole, as every
session before the fetch scope; `ignored`, with a .sourceignore of `data/`
(what a user could do before, by hand). The Bucket's fetch timeout grows
with the objects fetched (60 s, or 20 ms an object). Prints JSON: median,
min and max of each step per tree.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.common import EXE, local_cluster, spread
from bench.live_loop import make_tree

MANIFEST = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: '{value}'\n"
STAMP_WAIT = 300.0      # seconds for a step to show: a --no-wait sync returns before it
STEPS = ("plugin", "fetch", "apply", "to_applied", "sync")


class Stamps:
    """When each Bucket and ConfigMap of the namespace changed, as one watch
    of each kind in the bench sees it."""

    def __init__(self, kube, ns: str):
        from kubectl_gitops_run.adapters.informer import Informer
        from kubectl_gitops_run.core.resources import KINDS, path
        self.events: dict[str, list[tuple[float, dict]]] = {"Bucket": [], "ConfigMap": []}
        self.informers = [
            Informer(kube, kind, KINDS[kind][0], path(kind, ns),
                     reset=lambda items, kind=kind: self._add(kind, items),
                     event=lambda _, obj, kind=kind: self._add(kind, [obj]),
                     failed=lambda message: None).start()
            for kind in self.events]

    def _add(self, kind: str, objs: list[dict]) -> None:
        now = time.time()
        self.events[kind].extend((now, obj) for obj in objs)

    def first(self, kind: str, name: str, since: float, test) -> float:
        """When `test` first held for the object `name` after `since`."""
        deadline = time.time() + STAMP_WAIT
        while time.time() < deadline:
            for stamp, obj in list(self.events[kind]):
                if stamp >= since and obj["metadata"]["name"] == name and test(obj):
                    return stamp
            time.sleep(0.05)
        raise RuntimeError(f"{kind} {name}: no matching event after {since}")

    def close(self) -> None:
        for informer in self.informers:
            informer.close()


class Session:
    """One tree of the table and its session."""

    def __init__(self, cluster, ns: str, tmp: Path, files: int, variant: str):
        self.cluster, self.ns, self.files, self.variant = cluster, ns, files, variant
        self.name = f"w{files}" + (f"-{variant}" if variant else "")
        self.tree = tmp / self.name
        self.value = 0
        self.up_s = 0.0

    def grow(self, files: int) -> None:
        shutil.rmtree(self.tree, ignore_errors=True)
        make_tree(self.tree, files)
        if self.variant == "ignored":   # Flux gets deploy/ alone; so does the upload
            (self.tree / ".sourceignore").write_text("data/\n")
        self.edit()

    def start(self) -> None:
        self.grow(self.files)
        start = time.time()
        self.run("up", str(self.tree), "--name", self.name,
                 *(() if self.variant == "root" else ("--path", "deploy")))
        self.up_s = time.time() - start

    def edit(self) -> None:
        self.value += 1
        (self.tree / "deploy" / "cm.yaml").write_text(
            MANIFEST.format(name=self.name, value=self.value))

    def run(self, *argv: str) -> None:
        subprocess.run([EXE, *argv, "-n", self.ns], env=self.cluster.env(), check=True,
                       stdout=subprocess.DEVNULL)

    def sync(self, kube, stamps: Stamps) -> dict[str, float]:
        """One measured sync."""
        from kubectl_gitops_run.core import flux, naming
        bucket_name = naming.object_name(self.name)
        self.edit()
        start = time.time()
        self.run("sync", self.name)
        exited = time.time()
        revision = naming.fact(kube.get("Bucket", bucket_name, self.ns), naming.REVISION)
        flip = stamps.first("Bucket", bucket_name, start,
                            lambda o: naming.fact(o, naming.REVISION) == revision)
        fetched = stamps.first("Bucket", bucket_name, start,
                               lambda o: flux.artifact_revision(o) == revision)
        value = str(self.value)
        applied = stamps.first("ConfigMap", self.name, start,
                               lambda o: (o.get("data") or {}).get("v") == value)
        return {"plugin": flip - start, "fetch": fetched - flip, "apply": applied - fetched,
                "to_applied": applied - start, "sync": exited - start}


def one_tree(cluster, ns: str, tmp: Path, kube, stamps: Stamps, files: int, runs: int,
             variant: str = "") -> dict:
    session = Session(cluster, ns, tmp, files, variant)
    session.start()
    out: dict = {"files": files, "variant": variant, "up_s": round(session.up_s, 2),
                 "sync_filling_the_second_slot": {
                     k: round(v, 3) for k, v in session.sync(kube, stamps).items()}}
    times: dict[str, list[float]] = {step: [] for step in STEPS}
    for _ in range(runs):
        for step, took in session.sync(kube, stamps).items():
            times[step].append(took)
    out.update({step: spread(times[step]) for step in STEPS})
    session.run("down", session.name)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", default="100,1000,10000,10000:root,10000:ignored",
                    help="the trees: files[:variant], variant root or ignored")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--state-dir", type=Path)
    args = ap.parse_args()
    from kubectl_gitops_run.adapters.kube import connect
    rows = [(int(files), variant) for files, _, variant in
            (row.partition(":") for row in args.files.split(","))]
    table = []
    with local_cluster(args.state_dir) as (cluster, ns, tmp):
        kube = connect(str(cluster.state.kubeconfig), None, ns)
        stamps = Stamps(kube, ns)
        try:
            for files, variant in rows:
                table.append(one_tree(cluster, ns, tmp, kube, stamps, files, args.runs, variant))
                print(json.dumps(table[-1]), file=sys.stderr, flush=True)
        finally:
            stamps.close()
            # local_cluster deletes it only after a run that ended well
            cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    print(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
