"""A `sync` with nothing to upload stays light (issue 13, item 1): when Flux
has fetched the revision of our last flip from the pod that still serves the
bucket, the sync opens no tunnel, so it imports neither requests nor the
websocket client; after the bucket pod is replaced, the same sync fills a
slot again."""
from __future__ import annotations

import json
import subprocess
import sys

from kubectl_gitops_run.core import naming
from tests.e2e.test_plugin import get, ok

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: light\ndata:\n  v: \"1\"\n"
PROBE = """\
import json, sys
sys.argv = ["kubectl-gitops_run", *sys.argv[1:]]
from kubectl_gitops_run.cli import main
try:
    code = main()
except SystemExit as e:
    code = e.code
sys.stderr.write("\\n" + json.dumps([code, sorted(sys.modules)]) + "\\n")
"""
HEAVY = ("requests", "urllib3.connectionpool", "websocket", "kubernetes.stream",
         "kubectl_gitops_run.adapters.s3", "kubectl_gitops_run.adapters.portforward")


def probe(cluster, *argv: str) -> tuple[int, set[str], str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], env=cluster.env,
                          capture_output=True, text=True, timeout=180)
    code, modules = json.loads(proc.stderr.strip().splitlines()[-1])
    return code, set(modules), proc.stdout


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_a_sync_with_nothing_to_upload_opens_no_tunnel(cluster, kubectl, namespace, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "cm.yaml").write_text(CM)
    ok(cluster, "up", str(src), "--name", "light", "-n", namespace)
    code, modules, out = probe(cluster, "sync", "light", "-n", namespace)
    assert code in (0, None) and "up to date" in out, out
    assert heavy(modules) == []

    # a new pod holds no slots: the same sync fills one again
    pods = naming.bucket_pods_selector("light")
    pod = kubectl("get", "pods", "-n", namespace, "-l", pods, "-o",
                  "jsonpath={.items[0].metadata.name}")
    kubectl("delete", "pod", pod, "-n", namespace)
    code, modules, out = probe(cluster, "sync", "light", "-n", namespace)
    assert code in (0, None), out
    assert "kubectl_gitops_run.adapters.s3" in modules
    bucket = get(kubectl, "bucket", "gitops-run-light", namespace)
    uids = kubectl("get", "pods", "-n", namespace, "-l", pods, "-o",
                   "jsonpath={.items[*].metadata.uid}").split()
    assert naming.fact(bucket, naming.POD_UID) in uids
    ok(cluster, "down", "light", "-n", namespace)
