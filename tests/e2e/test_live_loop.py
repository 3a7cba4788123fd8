"""The live loop under stress, on the real control plane: no torn syncs, nothing
present pruned, surviving dead tunnels and bucket pods, serialized syncs,
`sync --watch`, and processes killed mid-sync."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from kubectl_gitops_run import ops
from kubectl_gitops_run.adapters.bucketserver import BucketServer
from kubectl_gitops_run.adapters.kube import connect
from kubectl_gitops_run.ops.publish import Syncer
from tests.e2e.conftest import run_plugin
from tests.e2e.test_plugin import get, ok, revision, wait_for

EXE = str(Path(os.sys.executable).parent / "kubectl-gitops_run")


def configmap(name: str, value: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: '{value}'\n"


@pytest.fixture
def session(cluster, namespace, tmp_path):
    """A started session over a tree of ConfigMaps; yields (kube, tree)."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(5):
        (tree / f"keep{i}.yaml").write_text(configmap(f"keep{i}", "0"))
    ok(cluster, "up", str(tree), "-n", namespace, "--name", "live")
    kube = connect(str(cluster.kubeconfig), None, namespace)
    yield kube, tree


class watch_events:
    """`kubectl get -w --output-watch-events -o json` in the background, its
    output drained as it comes (a full pipe would stall the watch)."""

    def __init__(self, cluster, namespace, resource):
        self.proc = subprocess.Popen(
            [str(cluster.bin_dir / "kubectl"), "--kubeconfig", str(cluster.kubeconfig), "get",
             resource, "-n", namespace, "-w", "--output-watch-events", "-o", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.chunks: list[str] = []
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self):
        for line in self.proc.stdout:
            self.chunks.append(line)

    def events(self) -> list[dict]:
        time.sleep(2)               # let the last events arrive
        self.proc.terminate()
        self.proc.wait(10)
        self.reader.join(10)
        out = "".join(self.chunks)
        decoder, docs, i = json.JSONDecoder(), [], 0
        while i < len(out):
            if out[i].isspace():
                i += 1
                continue
            try:
                doc, i = decoder.raw_decode(out, i)
            except json.JSONDecodeError:     # one cut off by terminate()
                break
            docs.append(doc)
        return docs


def test_no_torn_syncs_and_nothing_present_pruned(cluster, kubectl, namespace, session):
    kube, tree = session
    rng = random.Random(4)
    snapshots = {revision(tree, namespace)}
    churn: set[str] = set()
    bucket_events = watch_events(cluster, namespace, "buckets.source.toolkit.fluxcd.io")
    cm_events = watch_events(cluster, namespace, "configmaps")
    stop = threading.Event()

    def hammer():      # reconcile requests as often as the API server takes them
        n = 0
        while not stop.is_set():
            n += 1
            kubectl("annotate", "--overwrite", "bucket", "gitops-run-live", "-n", namespace,
                    f"reconcile.fluxcd.io/requestedAt=hammer-{n}", check=False)

    hammers = [threading.Thread(target=hammer, daemon=True) for _ in range(2)]
    for h in hammers:
        h.start()
    try:
        with BucketServer(kube, namespace, "live") as server:
            syncer = Syncer(kube, namespace, "live", server, timeout=120)
            for i in range(110):
                op = rng.choice(["add", "edit", "delete", "rename", "edit"])
                present = sorted(churn)
                if op == "add" or not present:
                    name = f"churn{i}"
                    (tree / f"{name}.yaml").write_text(configmap(name, str(i)))
                    churn.add(name)
                elif op == "edit":
                    (tree / f"keep{i % 5}.yaml").write_text(configmap(f"keep{i % 5}", str(i)))
                elif op == "delete":
                    name = rng.choice(present)
                    (tree / f"{name}.yaml").unlink()
                    churn.discard(name)
                else:     # a rename: the object's name changes with its file
                    old = rng.choice(present)
                    new = f"renamed{i}"
                    (tree / f"{old}.yaml").rename(tree / f"{new}.yaml")
                    (tree / f"{new}.yaml").write_text(configmap(new, str(i)))
                    churn.discard(old)
                    churn.add(new)
                snapshots.add(revision(tree, namespace))
                result = syncer.sync(ops.scanner(str(tree), 10 << 20), wait=i % 10 == 9)
                assert result.revision in snapshots
            final = revision(tree, namespace)
            syncer.wait_applied(final)
    finally:
        stop.set()
        for h in hammers:
            h.join(10)
    revisions = {((e["object"].get("status") or {}).get("artifact") or {}).get("revision")
                 for e in bucket_events.events()} - {None}
    deleted = {e["object"]["metadata"]["name"] for e in cm_events.events()
               if e["type"] == "DELETED"}
    print(f"\n{len(snapshots)} local snapshots, {len(revisions)} revisions recorded by Flux, "
          f"{len(deleted)} ConfigMaps pruned")
    assert len(revisions) > 20, "the Bucket watch saw too few revisions to prove anything"
    assert revisions <= snapshots, f"torn or foreign revisions: {revisions - snapshots}"
    assert final in revisions
    # keep*.yaml were never deleted locally: never pruned
    assert not {n for n in deleted if n.startswith("keep")}, deleted
    # what is present now is deployed, what is gone was pruned
    names = {i["metadata"]["name"] for i in json.loads(
        kubectl("get", "configmaps", "-n", namespace, "-o", "json"))["items"]}
    assert churn | {f"keep{i}" for i in range(5)} <= names
    assert not {n for n in names if n.startswith(("churn", "renamed"))} - churn


@pytest.mark.flaky(reruns=1)     # tunnels cut every 50 ms: load can outlast the retries once
def test_survives_dropped_tunnels_mid_upload(namespace, session):
    kube, tree = session
    for i in range(300):
        (tree / "data").mkdir(exist_ok=True)
        (tree / "data" / f"blob{i:03}.txt").write_text(os.urandom(4096).hex())
    with BucketServer(kube, namespace, "live") as server:
        server.s3()
        stop = threading.Event()

        def cut():
            while not stop.wait(0.05):
                if server._forward is not None:
                    server._forward.drop_connections()

        cutter = threading.Thread(target=cut, daemon=True)
        cutter.start()
        try:
            result = Syncer(kube, namespace, "live", server).sync(
                ops.scanner(str(tree), 10 << 20), wait=False)
        finally:
            stop.set()
            cutter.join(5)
        assert result.revision == revision(tree, namespace)
        Syncer(kube, namespace, "live", server).wait_applied(result.revision)


def test_survives_the_bucket_pod_being_replaced(cluster, kubectl, namespace, session):
    kube, tree = session
    pod_before = get_pod(kubectl, namespace)
    for i in range(200):
        (tree / f"more{i:03}.txt").write_text(os.urandom(2048).hex())
    with BucketServer(kube, namespace, "live") as server:
        server.s3()
        killer = threading.Timer(0.3, lambda: kubectl("delete", "pod", pod_before, "-n",
                                                       namespace, "--wait=false"))
        killer.start()
        result = Syncer(kube, namespace, "live", server, timeout=120).sync(
            ops.scanner(str(tree), 10 << 20))
        killer.join()
    assert result.revision == revision(tree, namespace)
    assert get_pod(kubectl, namespace) != pod_before
    assert get(kubectl, "configmap", "keep0", namespace)


def get_pod(kubectl, namespace) -> str:
    def ready():
        pods = json.loads(kubectl("get", "pods", "-n", namespace, "-l",
                                  "app.kubernetes.io/component=bucket-server", "-o", "json"))
        names = [p["metadata"]["name"] for p in pods["items"]
                 if not p["metadata"].get("deletionTimestamp") and any(
                     c["type"] == "Ready" and c["status"] == "True"
                     for c in p["status"].get("conditions", []))]
        return names[0] if names else None
    return wait_for("a Ready bucket pod", ready, timeout=90)


def test_emptied_bucket_is_restored(cluster, kubectl, namespace, session):
    kube, tree = session
    with BucketServer(kube, namespace, "live") as server:
        s3 = server.s3()
        slot = get(kubectl, "bucket", "gitops-run-live", namespace)["spec"]["bucketName"]
        s3.delete(slot, list(s3.list(slot)))
        assert s3.list(slot) == {}
    # Flux still serves the last artifact; the next sync restores everything
    assert get(kubectl, "configmap", "keep0", namespace)
    res = ok(cluster, "sync", "live", "-n", namespace)
    assert res.stdout.startswith("+5 ~0 -0 files"), res.stdout
    bucket = get(kubectl, "bucket", "gitops-run-live", namespace)
    assert bucket["status"]["artifact"]["revision"] == revision(tree, namespace)
    assert get(kubectl, "configmap", "keep4", namespace)


def test_two_syncs_are_serialized(cluster, namespace, session):
    kube, tree = session
    from kubectl_gitops_run.adapters.lease import SyncLease
    lease = SyncLease(kube, namespace, "live", identity="someone@elsewhere pid 1")
    lease.acquire()
    try:
        (tree / "keep0.yaml").write_text(configmap("keep0", "serial"))
        res = run_plugin(cluster, "sync", "live", "-n", namespace, "--no-wait")
        assert res.returncode == 1 and "another sync of session 'live' is running" in res.stderr
        assert "someone@elsewhere" in res.stderr
        waiting = subprocess.Popen([EXE, "sync", "live", "-n", namespace], env=cluster.env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        assert waiting.poll() is None          # still waiting for the lease
    finally:
        lease.release()
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert out.startswith("+0 ~1 -0 files")


def test_killed_syncs_are_repaired(cluster, kubectl, namespace, session):
    kube, tree = session
    rng = random.Random(7)
    for round_ in range(6):
        for i in range(40):
            (tree / f"k{round_}-{i}.txt").write_text(os.urandom(1024).hex())
        (tree / "keep1.yaml").write_text(configmap("keep1", f"round{round_}"))
        proc = subprocess.Popen([EXE, "sync", "live", "-n", namespace], env=cluster.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 3.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # the killed holder's lease expires; the next sync converges
    res = run_plugin(cluster, "sync", "live", "-n", namespace, timeout=240)
    assert res.returncode == 0, res.stderr
    assert get(kubectl, "bucket", "gitops-run-live", namespace)["status"]["artifact"][
        "revision"] == revision(tree, namespace)
    assert get(kubectl, "configmap", "keep1", namespace)["data"]["v"] == "round5"


def test_watch_syncs_every_change_and_stops_on_ctrl_c(cluster, kubectl, namespace, session):
    kube, tree = session
    proc = subprocess.Popen([EXE, "sync", "live", "-n", namespace, "--watch"],
                            env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        lines = []

        def line_with(text):
            while True:
                line = proc.stdout.readline()
                assert line, f"watch ended early: {lines}"
                lines.append(line)
                if text in line:
                    return line

        line_with("watching")
        line_with("up to date")            # the first cycle
        (tree / "keep2.yaml").write_text(configmap("keep2", "watched"))
        assert "+0 ~1 -0 files" in line_with("files")
        wait_for("the watched value", lambda: get(kubectl, "configmap", "keep2", namespace)[
            "data"]["v"] == "watched")
        # a broken file is reported, and the fix is synced without waiting for a timeout
        (tree / "bad.yaml").write_text("a: [\n")
        assert "bad.yaml" in line_with("error")
        (tree / "bad.yaml").write_text(configmap("fixed", "1"))
        line_with("+1 ~0 -0 files")
        assert get(kubectl, "configmap", "fixed", namespace)
        # editors save by rename, in a new directory
        (tree / "sub").mkdir()
        tmp = tree / "sub" / ".new.yaml.swp"
        tmp.write_text(configmap("subcm", "1"))
        tmp.rename(tree / "sub" / "new.yaml")
        line_with("+1 ~0 -0 files")
        assert get(kubectl, "configmap", "subcm", namespace)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "session live stays" in out
    assert get(kubectl, "bucket", "gitops-run-live", namespace)
