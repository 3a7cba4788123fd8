"""Which kube contexts a session may start in without being told (pure).

A context counts as a local cluster only if both its name and its server say
so: a loopback server alone is not enough (an SSH tunnel or `kubectl proxy`
to production looks like one), and neither is a name (anyone can name a
context `kind-prod`). Everything else needs `--allow-context`.
"""
from __future__ import annotations

import ipaddress
from urllib.parse import urlparse

# context name prefix -> the server hosts that product uses, besides loopback
LOCAL_PRODUCTS = {
    "kind-": (),
    "k3d-": ("0.0.0.0", "host.docker.internal", "host.k3d.internal"),
    "minikube": ("192.168.49.2", "192.168.39.*", "192.168.64.*", "192.168.59.*"),
    "docker-desktop": ("kubernetes.docker.internal",),
    "rancher-desktop": (),
    "orbstack": ("k8s.orb.local",),
    "gitops-run-local": (),
}


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:      # a DNS name, even one like 127.example.com
        return False


def _matches(host: str, pattern: str) -> bool:
    return host == pattern or (pattern.endswith(".*") and host.startswith(pattern[:-1])
                               and host[len(pattern) - 1:].isdigit())


def is_local(context: str, server: str) -> bool:
    """A known local product's context, by name and by server."""
    host = (urlparse(server).hostname or "").lower()
    for prefix, hosts in LOCAL_PRODUCTS.items():
        if context.startswith(prefix):
            return _loopback(host) or any(_matches(host, h) for h in hosts)
    return False
