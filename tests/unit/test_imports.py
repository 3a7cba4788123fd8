"""Start-up stays light (issue 13): `--help` imports no `kubernetes`, `requests`,
`yaml` nor the operations, and `ls` none of the generated API classes and
models of `kubernetes` (about 770 modules, a second of start-up), no OAuth2
library, neither requests nor urllib3's pool, and no operation but its own.

Each check runs the command's code path in a fresh interpreter and reads
sys.modules. `ls` runs against a kubeconfig that points at 127.0.0.1:1: it
fails to connect, after every import it needs. The same checks run against the
zipapp's unpacked copy when a built zipapp is at hand (GITOPS_RUN_ZIPAPP, or
dist/kubectl-gitops_run).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: dead
  cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}
users:
- name: dead
  user: {token: not-a-token}
contexts:
- name: dead
  context: {cluster: dead, user: dead, namespace: default}
current-context: dead
"""
# Runs the CLI with argv, then prints the loaded modules as JSON on stderr's last line.
PROBE = """\
import json, sys
sys.path[:0] = json.loads(sys.argv[1])
sys.argv = ["kubectl-gitops_run", *sys.argv[2:]]
from kubectl_gitops_run.cli import main
try:
    main()
except SystemExit:
    pass
sys.stderr.write("\\n" + json.dumps(sorted(sys.modules)) + "\\n")
"""
HELP_FORBIDDEN = ("kubernetes", "requests", "yaml", "urllib3", "kubectl_gitops_run.ops")
LS_FORBIDDEN = ("kubernetes.client.api", "kubernetes.client.models",
                "kubernetes.client.api_client", "kubernetes.dynamic", "kubernetes.watch",
                # requests go over the standard library (adapters.transport); urllib3
                # is registered for kube_config's import alone
                "kubernetes.client.rest", "requests", "urllib3.connectionpool",
                "urllib3.response", "urllib3.util",
                # HTTP/1.1 is spoken on sockets: http.client's email parser costs 12 ms
                "http.client", "email.parser",
                # the snapshot's digests and dataclasses are not for listing
                "kubectl_gitops_run.core.snapshot", "hashlib",
                # OIDC refreshes alone need these: loaded then (adapters.kube)
                "oauthlib.oauth2.rfc6749", "requests_oauthlib.oauth2_session",
                # the operations `ls` does not run
                "kubectl_gitops_run.ops.publish", "kubectl_gitops_run.ops.up",
                "kubectl_gitops_run.ops.watch", "kubectl_gitops_run.adapters.s3")


def loaded(argv: list[str], tmp_path: Path, site: str | None = None) -> set[str]:
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "PYTHON"))}
    env.update(KUBECONFIG=str(config), HOME=str(tmp_path))
    flags = ["-I"] if site else []          # the zipapp runs isolated from site-packages
    proc = subprocess.run([sys.executable, *flags, "-c", PROBE, json.dumps([site] if site else []),
                           *argv], env=env, capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert lines, proc.stdout
    return set(json.loads(lines[-1]))


def heavy(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


def check_help(tmp_path: Path, site: str | None = None) -> None:
    modules = loaded(["--help"], tmp_path, site)
    assert "click" in modules             # the probe did run the CLI
    assert heavy(modules, HELP_FORBIDDEN) == []


def check_ls(tmp_path: Path, site: str | None = None) -> None:
    modules = loaded(["ls", "-A"], tmp_path, site)
    assert "kubernetes.config.kube_config" in modules      # it did get as far as connecting
    assert heavy(modules, LS_FORBIDDEN) == []
    assert len(heavy(modules, ("kubernetes",))) < 40


def test_help_imports_neither_kubernetes_nor_the_operations(tmp_path):
    check_help(tmp_path)


def test_ls_imports_no_generated_api_or_model(tmp_path):
    check_ls(tmp_path)


def zipapp_site(tmp_path: Path) -> str:
    """The unpacked copy of a built zipapp (unpacked here, by running it)."""
    archive = Path(os.environ.get("GITOPS_RUN_ZIPAPP") or ROOT / "dist" / "kubectl-gitops_run")
    if not archive.is_file():
        pytest.skip(f"no zipapp at {archive}: `make dist`, or set GITOPS_RUN_ZIPAPP")
    cache = tmp_path / "zipapp-cache"
    subprocess.run([sys.executable, "-I", str(archive), "--version"], check=True,
                   env=dict(os.environ, KUBECTL_GITOPS_RUN_CACHE=str(cache)),
                   capture_output=True, timeout=300)
    (site,) = (cache / "zipapp").iterdir()
    return str(site)


def test_the_zipapp_imports_as_little(tmp_path):
    site = zipapp_site(tmp_path)
    check_help(tmp_path, site)
    check_ls(tmp_path, site)
