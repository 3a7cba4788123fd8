"""Fixtures for tests that talk to the real local control plane
(devcluster/cluster.py).

`cluster` starts a private control plane for the test session in a temporary
state dir (or, with GITOPS_RUN_E2E_STATE=<dir>, reuses a running dev cluster
there and leaves it running). `namespace` gives each test a fresh namespace.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from devcluster import build
from devcluster.cluster import CONTEXT, Cluster

# A suite started in the background of a non-interactive shell inherits SIGINT
# ignored, and so would every plugin it starts: its Ctrl-C tests could not
# pass. Restore the default so that children start with it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@dataclass
class ClusterInfo:
    kubeconfig: Path
    context: str
    bin_dir: Path
    env: dict
    handle: Cluster

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        return self.handle.kubectl(*args, input=input, check=check)

    def api_client(self):
        from kubernetes import client, config
        cfg = client.Configuration()
        config.load_kube_config(str(self.kubeconfig), client_configuration=cfg)
        return client.ApiClient(cfg)


def _skip_without_go() -> None:
    if build.missing() and shutil.which("go") is None:
        msg = ("SKIPPING ALL E2E TESTS: Go is not installed, so the local control plane "
               "(kube-apiserver, etcd, kwok, Flux, MinIO) cannot be built")
        print(f"\n{'!' * 80}\n{msg}\n{'!' * 80}")
        pytest.skip(msg)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    _skip_without_go()
    if build.missing():
        build.build()
    reuse = os.environ.get("GITOPS_RUN_E2E_STATE")
    c = Cluster(Path(reuse) if reuse else tmp_path_factory.mktemp("cluster"))
    took = c.up()
    if took:
        print(f"\ncontrol plane ready in {took:.1f}s")
    try:
        yield ClusterInfo(c.state.kubeconfig, CONTEXT, c.bin, c.env(), c)
    finally:
        if not reuse:
            c.down(quiet=True)


@pytest.fixture
def namespace(cluster, request):
    base = "".join(ch if ch.isalnum() else "-" for ch in request.node.name.lower())[:40].strip("-")
    name = f"{base}-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def kubectl(cluster):
    """Run real kubectl against the test cluster; returns stdout."""
    def run(*args: str, input: str | None = None, check: bool = True) -> str:
        return cluster.kubectl(*args, input=input, check=check)
    return run


def run_plugin(cluster: ClusterInfo, *args: str, cwd=None, input=None, timeout=180):
    """Run the installed `kubectl-gitops_run` as a user would, against the test cluster."""
    exe = shutil.which("kubectl-gitops_run", path=str(Path(os.sys.executable).parent)) \
        or "kubectl-gitops_run"
    return subprocess.run([exe, *args], cwd=cwd, env=cluster.env, input=input,
                          capture_output=True, text=True, timeout=timeout)
