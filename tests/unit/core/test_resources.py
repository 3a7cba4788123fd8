"""API paths and descriptions of the kinds the plugin uses."""
from __future__ import annotations

import pytest

from kubectl_gitops_run.core import resources as kube


@pytest.mark.parametrize("args, expected", [
    (("Pod", "dev", "p"), "/api/v1/namespaces/dev/pods/p"),
    (("Pod", "dev"), "/api/v1/namespaces/dev/pods"),
    (("Pod", None), "/api/v1/pods"),
    (("Secret", "dev", "s"), "/api/v1/namespaces/dev/secrets/s"),
    (("Namespace", None, "dev"), "/api/v1/namespaces/dev"),
    (("Namespace", "ignored", "dev"), "/api/v1/namespaces/dev"),
    (("Namespace", None), "/api/v1/namespaces"),
    (("Deployment", "dev", "d"), "/apis/apps/v1/namespaces/dev/deployments/d"),
    (("Deployment", None), "/apis/apps/v1/deployments"),
    (("Lease", "dev", "l"), "/apis/coordination.k8s.io/v1/namespaces/dev/leases/l"),
    (("Bucket", "dev", "b"), "/apis/source.toolkit.fluxcd.io/v1/namespaces/dev/buckets/b"),
    (("Bucket", None), "/apis/source.toolkit.fluxcd.io/v1/buckets"),
    (("Kustomization", "dev", "k"),
     "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/dev/kustomizations/k"),
])
def test_api_path(args, expected):
    assert kube.path(*args) == expected


def test_describe():
    assert kube.describe("Pod", "dev", "p") == "pods/p in namespace 'dev'"
    assert kube.describe("Bucket", None, "b") == "buckets/b"
    assert kube.describe("Deployment", "dev", None) == "deployments in namespace 'dev'"
    assert kube.describe("Namespace", "dev", "x") == "namespaces/x"
