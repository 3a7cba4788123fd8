"""The manifests of a session's objects, and its credentials."""
from __future__ import annotations

import re

import pytest

from kubectl_gitops_run.core import manifests as s
from kubectl_gitops_run.core import naming as n

MANAGED = ("app.kubernetes.io/managed-by", "kubectl-gitops-run")
SESSION = "kubectl-gitops-run.io/session"
LIMIT = 63 - len("gitops-run-")             # 52: "gitops-run-<name>" is a DNS-1035 label
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
SPEC = s.Spec(name="web", namespace="dev", source="/src/web", host="laptop", user="ana")


def parse_selector(text: str) -> dict:
    """"k=v,k2" -> {k: v, k2: None} (None: the key must exist)."""
    out = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        out[key] = value if "=" in part else None
    return out


def matches(selector: str, labels: dict) -> bool:
    return all(k in labels and (v is None or labels[k] == v)
               for k, v in parse_selector(selector).items())


# -- credentials ----------------------------------------------------------------

def test_new_credentials():
    a, b = s.new_credentials(), s.new_credentials()
    assert set(a) == {"accesskey", "secretkey"}
    assert a["accesskey"] and a["secretkey"]
    assert a["accesskey"] != b["accesskey"] and a["secretkey"] != b["secretkey"]
    # token_urlsafe: 6 bits per character; at least 160 bits of randomness
    assert re.fullmatch(r"[A-Za-z0-9_-]+", a["secretkey"])
    assert len(a["secretkey"]) * 6 >= 160
    assert s.credentials_ok(a)
    assert not s.credentials_ok({"accesskey": "x"})
    assert not s.credentials_ok({"accesskey": "x", "secretkey": ""})
    assert not s.credentials_ok(None)


def test_credentials_digest():
    creds = {"accesskey": "AK", "secretkey": "very-secret-value"}
    digest = s.credentials_digest(creds)
    assert digest == s.credentials_digest(dict(creds))
    assert re.fullmatch(r"[0-9a-f]{16}", digest)
    assert "very-secret-value" not in digest and "AK" not in digest
    assert digest != s.credentials_digest({"accesskey": "AK", "secretkey": "other"})
    assert digest != s.credentials_digest({"accesskey": "AK2", "secretkey": "very-secret-value"})


def test_secret_manifest():
    creds = {"accesskey": "AK", "secretkey": "SK"}
    obj = s.secret(SPEC, creds)
    assert (obj["apiVersion"], obj["kind"], obj["type"]) == ("v1", "Secret", "Opaque")
    assert obj["stringData"] == creds


# -- manifests ----------------------------------------------------------------------

def walk(node, path=()):
    """Every (path, key, value) in a nested manifest."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield path, k, v
            yield from walk(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, path + (i,))


def test_deployment():
    spec = s.Spec(name="web", namespace="dev", source="/src/web", host="h", user="u",
                  image="registry.local/minio:1")
    dep = s.deployment(spec, "0123456789abcdef")
    assert (dep["apiVersion"], dep["kind"]) == ("apps/v1", "Deployment")
    assert dep["metadata"]["name"] == "gitops-run-web" and dep["metadata"]["namespace"] == "dev"
    d = dep["spec"]
    assert d["replicas"] == 1
    assert d["strategy"] == {"type": "Recreate"}
    pod = d["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "registry.local/minio:1"
    refs = {e["valueFrom"]["secretKeyRef"]["key"]: e["valueFrom"]["secretKeyRef"]["name"]
            for e in container["env"] if "valueFrom" in e}
    assert refs == {"accesskey": "gitops-run-web", "secretkey": "gitops-run-web"}
    assert not any("secret" in str(e.get("value", "")).lower() for e in container["env"])
    assert container["readinessProbe"]
    assert container["ports"][0]["containerPort"] == 9000
    assert set(container["resources"]) == {"requests", "limits"}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    data = [v for v in pod["volumes"] if v["name"] == "data"]
    assert data == [{"name": "data", "emptyDir": {"sizeLimit": s.BUCKET_SIZE}}]
    assert {"name": "data", "mountPath": "/data"} in container["volumeMounts"]
    assert d["template"]["metadata"]["annotations"] == {
        "kubectl-gitops-run.io/credentials": "0123456789abcdef"}


def test_no_host_port_or_host_network_anywhere():
    for obj in (s.deployment(SPEC, "d"), s.service(SPEC)):
        for path, key, value in walk(obj):
            assert key not in ("hostPort", "hostNetwork", "nodePort", "hostPath"), path
    assert s.service(SPEC)["spec"]["type"] == "ClusterIP"


def test_pod_labels_match_every_selector():
    dep, svc = s.deployment(SPEC, "d"), s.service(SPEC)
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    match = dep["spec"]["selector"]["matchLabels"]
    assert all(pod_labels.get(k) == v for k, v in match.items())
    assert all(pod_labels.get(k) == v for k, v in svc["spec"]["selector"].items())
    assert svc["spec"]["selector"][SESSION] == "web"
    assert matches(n.selector("web"), pod_labels)
    assert matches(n.selector(), pod_labels)
    assert not matches(n.selector("other"), pod_labels)
    # the selector the bucket server waits on
    assert matches(n.selector("web") + ",app.kubernetes.io/component=bucket-server", pod_labels)


def test_service():
    svc = s.service(SPEC)
    assert (svc["apiVersion"], svc["kind"]) == ("v1", "Service")
    assert svc["metadata"]["name"] == "gitops-run-web"
    assert svc["spec"]["type"] == "ClusterIP"
    [port] = svc["spec"]["ports"]
    assert port["port"] == 9000
    dep = s.deployment(SPEC, "d")
    named = {p["name"]: p["containerPort"]
             for p in dep["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert named.get(port["targetPort"], port["targetPort"]) == 9000


def test_bucket():
    facts = n.annotations(revision="sha256:abc", files=3)
    b = s.bucket(SPEC, "snapshot-b", facts)
    assert (b["apiVersion"], b["kind"]) == ("source.toolkit.fluxcd.io/v1", "Bucket")
    assert b["metadata"]["name"] == "gitops-run-web"
    spec = b["spec"]
    assert spec["provider"] == "generic"
    assert spec["insecure"] is True
    # Flux reads with its own read-only user, never with the root credentials
    assert spec["secretRef"] == {"name": "gitops-run-web-reader"}
    assert spec["endpoint"] == "gitops-run-web.dev.svc.cluster.local:9000"
    assert spec["bucketName"] == "snapshot-b"
    assert spec["interval"]
    assert b["metadata"]["annotations"]["kubectl-gitops-run.io/revision"] == "sha256:abc"
    assert b["metadata"]["annotations"]["kubectl-gitops-run.io/files"] == "3"


@pytest.mark.parametrize("path, expected", [
    ("", "./"), ("/", "./"), ("overlays/dev", "./overlays/dev"),
    ("overlays/dev/", "./overlays/dev"), ("/base", "./base"),
])
def test_kustomization_path(path, expected):
    spec = s.Spec(name="web", namespace="dev", source="/s", host="h", user="u", path=path)
    assert s.kustomization(spec)["spec"]["path"] == expected


def test_kustomization():
    k = s.kustomization(SPEC)
    assert (k["apiVersion"], k["kind"]) == ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
    assert k["spec"]["prune"] is True
    assert k["spec"]["wait"] is True
    assert k["spec"]["sourceRef"] == {"kind": "Bucket", "name": "gitops-run-web"}
    # namespaces as the user means them: no targetNamespace, the session's component
    assert "targetNamespace" not in k["spec"]
    assert k["spec"]["components"] == [".gitops-run/namespace"]
    other = s.Spec(name="web", namespace="dev", source="/s", host="h", user="u",
                   target_namespace="web-dev", path="apps/web")
    assert s.kustomization(other)["spec"]["targetNamespace"] == "web-dev"
    assert s.kustomization(other)["spec"]["components"] == ["../../.gitops-run/namespace"]
    assert n.fact(s.kustomization(other), "target-namespace") == "web-dev"
    assert n.fact(k, "target-namespace") == "dev"


def all_objects(spec: s.Spec) -> list[dict]:
    return [s.secret(spec, {"accesskey": "a", "secretkey": "b"}), s.deployment(spec, "d"),
            s.service(spec), s.bucket(spec, s.SLOTS[0], {}), s.kustomization(spec)]


def test_every_object_is_labelled_and_annotated():
    objs = all_objects(SPEC)
    assert [o["kind"] for o in objs] == ["Secret", "Deployment", "Service", "Bucket",
                                         "Kustomization"]
    for obj in objs:
        meta = obj["metadata"]
        assert meta["name"] == "gitops-run-web" and meta["namespace"] == "dev", obj["kind"]
        assert meta["labels"][MANAGED[0]] == MANAGED[1], obj["kind"]
        assert meta["labels"][SESSION] == "web", obj["kind"]
        assert n.owns(obj, "web") and not n.owns(obj, "webx"), obj["kind"]
        assert n.fact(obj, "source") == "/src/web", obj["kind"]
        assert n.fact(obj, "host") == "laptop", obj["kind"]
        assert n.fact(obj, "user") == "ana", obj["kind"]
        assert n.fact(obj, "path") == ".", obj["kind"]


def test_reader_secret_holds_only_the_reader_credentials():
    root = {"accesskey": "AK-root", "secretkey": "SK-root"}
    reader = {"accesskey": "AK-reader", "secretkey": "SK-reader"}
    obj = s.reader_secret(SPEC, reader)
    assert obj["metadata"]["name"] == "gitops-run-web-reader"
    assert n.owns(obj, "web") and obj["stringData"] == reader
    assert "SK-root" not in repr(obj) and "SK-root" not in repr(s.secret(SPEC, reader))
    assert s.secret(SPEC, root)["metadata"]["name"] != obj["metadata"]["name"]


def test_secret_value_only_in_the_secret():
    creds = {"accesskey": "AK-0123456789", "secretkey": "SK-not-to-be-seen-anywhere"}
    objs = all_objects(SPEC)[1:] + [s.deployment(SPEC, s.credentials_digest(creds))]
    for obj in objs:
        assert "SK-not-to-be-seen-anywhere" not in repr(obj), obj["kind"]


def test_other_slot():
    assert len(s.SLOTS) == 2 and s.SLOTS[0] != s.SLOTS[1]
    assert s.other_slot(s.SLOTS[0]) == s.SLOTS[1]
    assert s.other_slot(s.SLOTS[1]) == s.SLOTS[0]
    assert s.other_slot(None) == s.SLOTS[0]
    assert s.other_slot("something-else") == s.SLOTS[0]


def test_bucket_server_is_hardened():
    """Issue 12, item 6: capped disk, read-only root, pinned image."""
    pod = s.deployment(SPEC, "d")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["limits"]["ephemeral-storage"] == s.BUCKET_SIZE
    assert all(v["emptyDir"].get("sizeLimit") for v in pod["volumes"])
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert "--certs-dir" in container["args"]
    assert re.fullmatch(r"quay\.io/minio/minio:RELEASE\.[-0-9TZ]+@sha256:[0-9a-f]{64}",
                        s.DEFAULT_IMAGE)


def test_pod_key_narrows_the_service_to_our_template():
    keyed = s.Spec(**{**SPEC.__dict__, "pod_key": "k1"})
    dep, svc = s.deployment(keyed, "d"), s.service(keyed)
    assert dep["spec"]["template"]["metadata"]["labels"][n.POD_KEY_LABEL] == "k1"
    assert svc["spec"]["selector"][n.POD_KEY_LABEL] == "k1"
    assert n.POD_KEY_LABEL not in dep["spec"]["selector"]["matchLabels"]    # immutable
    assert s.pod_key(dep) == "k1" and s.pod_key(None) == ""
    assert len(s.new_pod_key()) == 16 and s.new_pod_key() != s.new_pod_key()


def test_network_policy_admits_source_controller_only():
    policy = s.network_policy(SPEC)
    assert policy["spec"]["podSelector"]["matchLabels"][SESSION] == "web"
    [rule] = policy["spec"]["ingress"]
    [peer] = rule["from"]
    assert peer["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "flux-system"}
    assert peer["podSelector"]["matchLabels"] == {"app": "source-controller"}
    assert rule["ports"] == [{"protocol": "TCP", "port": 9000}]


def test_secret_records_the_pod_key_for_the_plugin():
    keyed = s.Spec(**{**SPEC.__dict__, "pod_key": "k1"})
    sec = s.secret(keyed, {"accesskey": "a", "secretkey": "b"})
    assert sec["metadata"]["annotations"]["kubectl-gitops-run.io/pod-key"] == "k1"
    assert "kubectl-gitops-run.io/pod-key" not in s.secret(SPEC, {})["metadata"]["annotations"]
