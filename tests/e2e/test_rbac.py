"""A user with namespace rights only: the published Role is enough for the
whole flow, and a session cannot escalate through kustomize-controller
(issue 12, item 1 and "Minimal RBAC")."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.e2e.test_plugin import failed, get, ok

ROLE = Path(__file__).resolve().parents[2] / "docs" / "rbac-role.yaml"
SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports: [{port: 80}]
  selector: {app: web}
"""


def user_kubeconfig(cluster, kubectl, namespace, tmp_path, role: dict) -> Path:
    """A ServiceAccount bound to `role` in `namespace` only, as a kubeconfig."""
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(role))
    kubectl("create", "serviceaccount", "dev", "-n", namespace)
    kubectl("create", "rolebinding", "dev", "-n", namespace, f"--role={role['metadata']['name']}",
            f"--serviceaccount={namespace}:dev")
    token = kubectl("create", "token", "dev", "-n", namespace, "--duration=1h").strip()
    cfg = yaml.safe_load(cluster.kubeconfig.read_text())
    cfg["users"] = [{"name": "dev", "user": {"token": token}}]
    cfg["contexts"][0]["context"].update(user="dev", namespace=namespace)
    kc = tmp_path / "kubeconfig-dev"
    kc.write_text(yaml.safe_dump(cfg))
    return kc


@pytest.fixture
def as_developer(cluster, kubectl, namespace, tmp_path) -> Path:
    """A kubeconfig of a user with exactly the published Role in the namespace."""
    return user_kubeconfig(cluster, kubectl, namespace, tmp_path,
                           yaml.safe_load(ROLE.read_text()))


def service_app(tmp_path: Path, name: str) -> Path:
    app = tmp_path / name
    app.mkdir()
    (app / "service.yaml").write_text(SERVICE)
    return app


def test_the_whole_flow_with_exactly_the_published_role(cluster, kubectl, namespace, tmp_path,
                                                        as_developer):
    kc, app = as_developer, service_app(tmp_path, "app")
    ok(cluster, "up", str(app), "--kubeconfig", str(kc))
    assert get(kubectl, "service", "web", namespace) is not None
    assert "app" in ok(cluster, "ls", "--kubeconfig", str(kc)).stdout
    (app / "service.yaml").write_text(SERVICE.replace("port: 80", "port: 8080"))
    ok(cluster, "sync", "app", "--kubeconfig", str(kc))
    assert get(kubectl, "service", "web", namespace)["spec"]["ports"][0]["port"] == 8080
    ok(cluster, "down", "app", "--kubeconfig", str(kc))
    assert get(kubectl, "service", "web", namespace) is None
    assert get(kubectl, "serviceaccount", "gitops-run-app", namespace) is None


ESCALATION = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {name}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}
subjects: [{{kind: ServiceAccount, name: dev, namespace: {ns}}}]
"""


def test_no_privilege_escalation_through_flux(cluster, kubectl, namespace, tmp_path,
                                              as_developer):
    kc, app = as_developer, service_app(tmp_path, "escalate")
    crb = f"escalate-{namespace}"
    (app / "crb.yaml").write_text(ESCALATION.format(name=crb, ns=namespace))
    line = failed(cluster, "up", str(app), "--kubeconfig", str(kc), "--timeout", "60s")
    assert "forbidden" in line and f"ServiceAccount {namespace}/gitops-run-escalate" in line
    assert "--service-account" in line
    assert get(kubectl, "clusterrolebinding", crb, "default") is None
    # the same user's ordinary namespaced app still deploys
    (app / "crb.yaml").unlink()
    ok(cluster, "sync", "escalate", "--kubeconfig", str(kc))
    assert get(kubectl, "service", "web", namespace) is not None
    ok(cluster, "down", "escalate", "--kubeconfig", str(kc))
