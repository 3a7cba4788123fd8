"""Flux fetches only what the build reads (core.fetchscope, issue 13 item 6):
a session applying a subdirectory sets the Bucket's `spec.ignore` in the
flip, source-controller's revision is the digest of the kept keys alone, and
the plugin waits for exactly that revision."""
from __future__ import annotations

from pathlib import Path

from kubectl_gitops_run.adapters.scanner import scan
from kubectl_gitops_run.core import fetchscope, namespaces
from tests.e2e.test_plugin import get, ok

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: \"{v}\"\n"
SCOPE = (".gitops-run", "apps/base", "apps/dev")


def tree(root: Path) -> Path:
    files = {"apps/base/kustomization.yaml": "resources: [cm.yaml]\n",
             "apps/base/cm.yaml": CM.format(name="base", v=1),
             "apps/dev/kustomization.yaml": "resources: [../base, dev.yaml]\n",
             "apps/dev/dev.yaml": CM.format(name="dev", v=1),
             "apps/prod/kustomization.yaml": "resources: [../base]\n",
             "README.md": "not fetched\n",
             **{f"data/{i}.txt": f"{i}\n" for i in range(300)}}
    for key, text in files.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_text(text)
    return root


def kept_revision(root: Path, namespace: str) -> str:
    snapshot = namespaces.with_session_files(scan(str(root)), "apps/dev", namespace)
    snapshot.fetched = SCOPE
    return snapshot.revision


def test_flux_fetches_only_what_the_build_reads(cluster, kubectl, namespace, tmp_path):
    src = tree(tmp_path / "src")
    ok(cluster, "up", str(src), "--path", "apps/dev", "--name", "scope", "-n", namespace)
    bucket = get(kubectl, "bucket", "gitops-run-scope", namespace)
    assert bucket["spec"]["ignore"] == fetchscope.ignore_rules(SCOPE)
    assert bucket["status"]["artifact"]["revision"] == kept_revision(src, namespace)
    assert get(kubectl, "configmap", "dev", namespace)["data"]["v"] == "1"

    # a change Flux does not fetch moves the slot, not the revision
    (src / "data/0.txt").write_text("changed\n")
    before = kept_revision(src, namespace)
    ok(cluster, "sync", "scope", "-n", namespace)
    bucket = get(kubectl, "bucket", "gitops-run-scope", namespace)
    assert bucket["status"]["artifact"]["revision"] == before

    # a change it fetches is applied, and the revision is still of the kept keys
    (src / "apps/base/cm.yaml").write_text(CM.format(name="base", v=2))
    ok(cluster, "sync", "scope", "-n", namespace)
    assert get(kubectl, "configmap", "base", namespace)["data"]["v"] == "2"
    bucket = get(kubectl, "bucket", "gitops-run-scope", namespace)
    assert bucket["status"]["artifact"]["revision"] == kept_revision(src, namespace) != before
    ok(cluster, "down", "scope", "-n", namespace)


def test_a_session_of_the_root_fetches_everything(cluster, kubectl, namespace, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "cm.yaml").write_text(CM.format(name="root", v=1))
    ok(cluster, "up", str(src), "--name", "whole", "-n", namespace)
    bucket = get(kubectl, "bucket", "gitops-run-whole", namespace)
    assert "ignore" not in bucket["spec"] and bucket["spec"]["timeout"] == "60s"
    ok(cluster, "down", "whole", "-n", namespace)
