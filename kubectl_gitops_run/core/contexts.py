"""Which kube contexts a session may start in without being told (pure)."""
from __future__ import annotations

import ipaddress
from urllib.parse import urlparse

LOCAL_CONTEXT_PREFIXES = ("kind-", "k3d-", "minikube", "docker-desktop", "rancher-desktop",
                          "orbstack", "gitops-run-local")


def is_local(context: str, server: str) -> bool:
    """A local cluster's name, or an API server on a loopback address."""
    if context.startswith(LOCAL_CONTEXT_PREFIXES):
        return True
    host = (urlparse(server).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:      # a DNS name, even one like 127.example.com
        return False
