"""The identity Flux applies a session as: a ServiceAccount with the user's rights."""
from __future__ import annotations

from kubectl_gitops_run.core import manifests, rbac

SPEC = manifests.Spec(name="web", namespace="dev", source="/src/web", host="laptop", user="ana")


def test_mirrored_rules_keep_resource_rules_only_in_a_stable_order():
    review = {"status": {"resourceRules": [
        {"verbs": ["list", "get"], "apiGroups": ["apps"], "resources": ["deployments"]},
        {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
         "resources": ["selfsubjectrulesreviews"]},
        {"verbs": ["get"], "resources": ["configmaps"], "resourceNames": ["b", "a"]},
        {"verbs": [], "apiGroups": [""], "resources": ["pods"]},         # grants nothing
    ], "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/api"]}]}}
    assert rbac.mirrored_rules(review) == [
        {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"],
         "resourceNames": ["a", "b"]},
        {"verbs": ["get", "list"], "apiGroups": ["apps"], "resources": ["deployments"]},
        {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
         "resources": ["selfsubjectrulesreviews"]},
    ]
    assert rbac.mirrored_rules({}) == []


def test_role_and_binding_name_the_session_service_account():
    binding = rbac.role_binding(SPEC)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "gitops-run-web"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "gitops-run-web",
                                    "namespace": "dev"}]
    assert rbac.role(SPEC, [])["metadata"]["namespace"] == "dev"
    assert rbac.service_account(SPEC)["automountServiceAccountToken"] is False


def test_cluster_admin_binding_is_cluster_scoped_and_named_for_the_namespace():
    crb = rbac.cluster_admin_binding(SPEC)
    assert crb["metadata"]["name"] == "gitops-run-web-dev"
    assert "namespace" not in crb["metadata"]
    assert crb["roleRef"]["name"] == "cluster-admin"


def test_kustomization_applies_as_the_session_or_the_chosen_account():
    assert manifests.kustomization(SPEC)["spec"]["serviceAccountName"] == "gitops-run-web"
    chosen = manifests.Spec(**{**SPEC.__dict__, "service_account": "deployer"})
    assert manifests.kustomization(chosen)["spec"]["serviceAccountName"] == "deployer"
