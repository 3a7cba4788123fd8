"""Which kube contexts count as local clusters."""
from __future__ import annotations

import pytest

from kubectl_gitops_run.core import contexts as kube


@pytest.mark.parametrize("context", [
    "kind-dev", "k3d-mycluster", "minikube", "docker-desktop", "rancher-desktop", "orbstack",
    "gitops-run-local",
])
def test_local_context_names(context):
    assert kube.is_local(context, "https://10.0.0.1:6443")


@pytest.mark.parametrize("server", [
    "https://127.0.0.1:6443", "https://127.0.1.1:42", "http://localhost:8080",
    "https://LOCALHOST:6443", "https://[::1]:6443", "https://api.cluster.localhost",
])
def test_loopback_servers(server):
    assert kube.is_local("prod", server)


@pytest.mark.parametrize("context, server", [
    ("prod", "https://10.0.0.1:6443"), ("prod", "https://api.example.com"),
    ("prod", "https://localhost.example.com"), ("staging-kind", "https://10.0.0.2"),
    ("prod", ""),
])
def test_remote_contexts(context, server):
    assert not kube.is_local(context, server)


def test_dns_name_starting_with_127_is_not_loopback():
    assert not kube.is_local("prod", "https://127.example.com:6443")
