"""Who Flux applies a session's manifests as (pure).

kustomize-controller applies with its own, cluster-wide identity unless a
Kustomization names a ServiceAccount, so a user who may only create things in
one namespace could `up` a ClusterRoleBinding to cluster-admin for themselves.
A session therefore applies as its own ServiceAccount, bound to a Role that
mirrors the user's rights in the session's namespace (SelfSubjectRulesReview):
the session can do what its user can, there, and nothing cluster-wide. A user
who may do everything everywhere gets a ClusterRoleBinding to cluster-admin
instead (the API server lets only such a user create it), so their Namespaces
and CRDs still apply.
"""
from __future__ import annotations

from .manifests import Spec
from .naming import cluster_binding_name, object_name

RBAC_API = "rbac.authorization.k8s.io/v1"
# what the mirrored rules leave out: they grant nothing inside a namespace
_CLUSTER_ONLY = {"nonResourceURLs"}


def rules_review(namespace: str) -> dict:
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
            "metadata": {}, "spec": {"namespace": namespace}}


def everything_review() -> dict:
    """May the user do every verb on every resource, cluster-wide?"""
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "metadata": {}, "spec": {"resourceAttributes": {"verb": "*", "group": "*", "resource": "*"}}}


def mirrored_rules(review: dict) -> list[dict]:
    """A SelfSubjectRulesReview's resource rules as Role rules, in a stable order."""
    rules = []
    for rule in (review.get("status") or {}).get("resourceRules") or []:
        clean = {k: sorted(v) for k, v in rule.items()
                 if k in ("verbs", "apiGroups", "resources", "resourceNames") and v}
        if clean.get("verbs") and clean.get("resources"):
            clean.setdefault("apiGroups", [""])
            rules.append(clean)
    return sorted(rules, key=lambda r: (r["apiGroups"], r["resources"], r["verbs"],
                                        r.get("resourceNames", [])))


def service_account(spec: Spec) -> dict:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": spec.meta("applier"),
            "automountServiceAccountToken": False}


def role(spec: Spec, rules: list[dict]) -> dict:
    return {"apiVersion": RBAC_API, "kind": "Role", "metadata": spec.meta("applier"),
            "rules": rules}


def _subject(spec: Spec) -> list[dict]:
    return [{"kind": "ServiceAccount", "name": object_name(spec.name),
             "namespace": spec.namespace}]


def role_binding(spec: Spec) -> dict:
    return {"apiVersion": RBAC_API, "kind": "RoleBinding", "metadata": spec.meta("applier"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": object_name(spec.name)},
            "subjects": _subject(spec)}


def cluster_admin_binding(spec: Spec) -> dict:
    meta = spec.meta("applier")
    meta["name"] = cluster_binding_name(spec.name, spec.namespace)
    del meta["namespace"]
    return {"apiVersion": RBAC_API, "kind": "ClusterRoleBinding", "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "cluster-admin"},
            "subjects": _subject(spec)}
