"""The kinds the plugin reads and writes, and their API paths (pure)."""
from __future__ import annotations

from urllib.parse import quote

# kind -> (apiVersion, plural, namespaced)
KINDS = {
    "Namespace": ("v1", "namespaces", False),
    "Secret": ("v1", "secrets", True),
    "Service": ("v1", "services", True),
    "ConfigMap": ("v1", "configmaps", True),
    "Pod": ("v1", "pods", True),
    "Event": ("v1", "events", True),
    "Deployment": ("apps/v1", "deployments", True),
    "ReplicaSet": ("apps/v1", "replicasets", True),
    "StatefulSet": ("apps/v1", "statefulsets", True),
    "DaemonSet": ("apps/v1", "daemonsets", True),
    "Job": ("batch/v1", "jobs", True),
    "PersistentVolumeClaim": ("v1", "persistentvolumeclaims", True),
    "Lease": ("coordination.k8s.io/v1", "leases", True),
    "Bucket": ("source.toolkit.fluxcd.io/v1", "buckets", True),
    "Kustomization": ("kustomize.toolkit.fluxcd.io/v1", "kustomizations", True),
    "HelmRelease": ("helm.toolkit.fluxcd.io/v2", "helmreleases", True),
    "HelmChart": ("source.toolkit.fluxcd.io/v1", "helmcharts", True),
    "ServiceAccount": ("v1", "serviceaccounts", True),
    "NetworkPolicy": ("networking.k8s.io/v1", "networkpolicies", True),
    "Role": ("rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": ("rbac.authorization.k8s.io/v1", "rolebindings", True),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    "SelfSubjectRulesReview": ("authorization.k8s.io/v1", "selfsubjectrulesreviews", False),
    "SelfSubjectAccessReview": ("authorization.k8s.io/v1", "selfsubjectaccessreviews", False),
}


def path(kind: str, namespace: str | None = None, name: str | None = None) -> str:
    api_version, plural, namespaced = KINDS[kind]
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    # names are validated before any request; quoting is the second line of defence
    if namespaced and namespace:
        base += f"/namespaces/{quote(namespace, safe='')}"
    base += f"/{plural}"
    return f"{base}/{quote(name, safe='')}" if name else base


def describe(kind: str, namespace: str | None, name: str | None) -> str:
    plural = KINDS[kind][1]
    where = f" in namespace {namespace!r}" if namespace and KINDS[kind][2] else ""
    return f"{plural}/{name}{where}" if name else f"{plural}{where}"
