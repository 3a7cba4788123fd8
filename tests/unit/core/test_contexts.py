"""Which kube contexts count as local clusters: by name and by server."""
from __future__ import annotations

import pytest

from kubectl_gitops_run.core.contexts import is_local


@pytest.mark.parametrize("context, server", [
    ("kind-dev", "https://127.0.0.1:6443"), ("k3d-mycluster", "https://0.0.0.0:41235"),
    ("minikube", "https://192.168.49.2:8443"), ("minikube", "https://127.0.0.1:32771"),
    ("docker-desktop", "https://kubernetes.docker.internal:6443"),
    ("rancher-desktop", "https://127.0.0.1:6443"), ("orbstack", "https://k8s.orb.local:26443"),
    ("gitops-run-local", "https://127.0.0.1:34567"), ("kind-dev", "https://[::1]:6443"),
    ("kind-dev", "http://localhost:8080"), ("minikube", "https://192.168.39.12:8443"),
])
def test_local_products_by_name_and_server(context, server):
    assert is_local(context, server)


@pytest.mark.parametrize("context, server", [
    ("prod", "https://127.0.0.1:6443"),          # a tunnel or kubectl proxy to production
    ("prod", "http://localhost:8001"),
    ("kind-prod", "https://10.0.0.1:6443"),      # a local name, a remote server
    ("docker-desktop", "https://api.example.com"),
    ("minikube", "https://192.168.39.example.com"),
    ("prod", "https://api.example.com"), ("kind-dev", ""),
    ("kind-dev", "https://127.example.com:6443"),
])
def test_anything_else_is_not_local(context, server):
    assert not is_local(context, server)
