"""The whole loop with a large tree (issue 13, item 6): one changed manifest,
from `sync` until Flux applied it, split by who spends the time.

    .venv/bin/python -m bench.whole_loop [--files 100,1000,10000,10000:ignored,10000:only]
        [--runs 5] [--state-dir DIR] [--fetch-timeout 10m]

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

The Bucket's spec.timeout (60 s, core.manifests) bounds source-controller's
fetch; a fetch that takes longer fails and is retried, forever. With
--fetch-timeout DURATION the bench starts each session with deploy/ alone,
patches the Bucket's timeout, then grows the tree (two syncs fill the slots).

A tree given as `files:variant` is a variant: `ignored`, with a
.sourceignore of `data/` (what a user with a large directory can do today);
`only`, with the Bucket's spec.ignore set by the bench to leave out all but
deploy/ and the session's own .gitops-run/ (ONLY), so source-controller
lists the whole slot but fetches those alone: a way for the plugin to make
Flux fetch less. Its syncs run with --no-wait, since the plugin waits for
the revision of the whole tree. (spec.prefix cannot do it: the Kustomization
needs .gitops-run/ too.) Prints JSON: median, min and max of each
step per tree.
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
# a Bucket's spec.ignore (.sourceignore rules) that lets Flux fetch only what the
# Kustomization reads: the applied path and the session's own files
ONLY = "/*\n!/deploy/\n!/.gitops-run/\n"
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

    def start(self, kube, fetch_timeout: str | None) -> int:
        """`up`; returns how many syncs fill both slots. With `fetch_timeout`
        (or ignore rules), the session starts with deploy/ alone, its Bucket is
        patched (`up` would put back its own spec), and then the tree grows."""
        spec = {k: v for k, v in (("timeout", fetch_timeout),
                                  ("ignore", ONLY if self.variant == "only" else None)) if v}
        self.grow(1 if spec else self.files)
        start = time.time()
        self.run("up", str(self.tree), "--name", self.name, "--path", "deploy")
        self.up_s = time.time() - start
        if not spec:
            return 1
        from kubectl_gitops_run.core import naming
        kube.patch("Bucket", naming.object_name(self.name), {"spec": spec}, self.ns)
        self.grow(self.files)
        return 2

    def edit(self) -> None:
        self.value += 1
        (self.tree / "deploy" / "cm.yaml").write_text(
            MANIFEST.format(name=self.name, value=self.value))

    def run(self, *argv: str) -> None:
        subprocess.run([EXE, *argv, "-n", self.ns], env=self.cluster.env(), check=True,
                       stdout=subprocess.DEVNULL)

    def sync(self, kube, stamps: Stamps) -> dict[str, float]:
        """One measured sync. With `only`, Flux's revision covers what it
        fetches alone and the plugin would wait for the whole tree's: the sync
        does not wait, and the fetch ends at the first new artifact."""
        from kubectl_gitops_run.core import flux, naming
        bucket_name = naming.object_name(self.name)
        before = flux.artifact_revision(kube.get("Bucket", bucket_name, self.ns))
        self.edit()
        start = time.time()
        self.run("sync", self.name, *(("--no-wait",) if self.variant == "only" else ()))
        exited = time.time()
        revision = naming.fact(kube.get("Bucket", bucket_name, self.ns), naming.REVISION)
        flip = stamps.first("Bucket", bucket_name, start,
                            lambda o: naming.fact(o, naming.REVISION) == revision)
        done = ((lambda r: r not in (None, before)) if self.variant == "only"
                else (lambda r: r == revision))
        fetched = stamps.first("Bucket", bucket_name, start,
                               lambda o: done(flux.artifact_revision(o)))
        value = str(self.value)
        applied = stamps.first("ConfigMap", self.name, start,
                               lambda o: (o.get("data") or {}).get("v") == value)
        return {"plugin": flip - start, "fetch": fetched - flip, "apply": applied - fetched,
                "to_applied": applied - start, "sync": exited - start}


def one_tree(cluster, ns: str, tmp: Path, kube, stamps: Stamps, files: int, runs: int,
             variant: str = "", fetch_timeout: str | None = None) -> dict:
    session = Session(cluster, ns, tmp, files, variant)
    fills = session.start(kube, fetch_timeout)
    out: dict = {"files": files, "variant": variant, "fetch_timeout": fetch_timeout,
                 "up_s": round(session.up_s, 2), "syncs_filling_the_slots": [
                     {k: round(v, 3) for k, v in session.sync(kube, stamps).items()}
                     for _ in range(fills)]}
    times: dict[str, list[float]] = {step: [] for step in STEPS}
    for _ in range(runs):
        for step, took in session.sync(kube, stamps).items():
            times[step].append(took)
    out.update({step: spread(times[step]) for step in STEPS})
    session.run("down", session.name)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", default="100,1000,10000,10000:ignored,10000:only",
                    help="the trees: files[:variant], variant ignored or only")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--state-dir", type=Path)
    ap.add_argument("--fetch-timeout", help="the Bucket's spec.timeout instead of the "
                    "plugin's (a fetch that takes longer never completes)")
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
                table.append(one_tree(cluster, ns, tmp, kube, stamps, files, args.runs, variant,
                                      args.fetch_timeout))
                print(json.dumps(table[-1]), file=sys.stderr, flush=True)
        finally:
            stamps.close()
            # local_cluster deletes it only after a run that ended well
            cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    print(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
