"""session: names, labels, annotations, credentials and the manifests of one session."""
from __future__ import annotations

import random
import re
import string

import pytest

from kubectl_gitops_run.core import manifests as s
from kubectl_gitops_run.core import naming as n
from kubectl_gitops_run.errors import UsageError

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


# -- names ----------------------------------------------------------------------

def test_max_name_fits_a_dns_label():
    assert n.MAX_NAME == LIMIT == 52
    assert n.object_name("web") == "gitops-run-web"


@pytest.mark.parametrize("name", ["a", "web", "my-app-2", "a1", "a--b", "x" * LIMIT])
def test_validate_name_accepts(name):
    assert n.validate_name(name) == name


@pytest.mark.parametrize("name", [
    "", "x" * (LIMIT + 1), "Web", "my_app", "1app", "9", "app-", "-app", "a.b", "a b", "ä",
])
def test_validate_name_rejects_with_the_rule(name):
    with pytest.raises(UsageError) as e:
        n.validate_name(name)
    text = str(e.value)
    assert repr(name) in text
    assert f"at most {LIMIT}" in text and "lower-case" in text and "starting with a letter" in text
    assert e.value.code == 2


@pytest.mark.parametrize("basename, expected", [
    ("My_App", "my-app"),
    ("web", "web"),
    ("123", "app"),
    ("---", "app"),
    ("", "app"),
    ("2048-game", "game"),
    ("_hidden", "hidden"),
    ("Hello World!", "hello-world"),
    ("a" * 60, "a" * LIMIT),
    ("a" * (LIMIT - 1) + "_b", "a" * (LIMIT - 1)),      # cut at the '-', which is dropped
])
def test_name_from_dir(basename, expected):
    assert n.name_from_dir(basename) == expected


def test_name_from_dir_always_valid():
    rnd = random.Random(1234)
    alphabet = string.ascii_letters + string.digits + "-_. ~äß" + "0" * 5 + "-" * 5
    names = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 80))) for _ in range(3000)]
    names += ["-" * 70, "9" * 70, "a" + "-" * 70 + "b", "x" * (LIMIT - 1) + "-yz", "ÄÖÜ"]
    for basename in names:
        name = n.name_from_dir(basename)
        assert n.validate_name(name) == name, basename
        assert len(name) <= LIMIT and DNS_1035.match(name), basename


# -- labels, selectors, annotations ------------------------------------------

def test_labels():
    assert n.labels("web") == {MANAGED[0]: MANAGED[1], SESSION: "web"}
    assert n.labels("web", "bucket-server") == {
        MANAGED[0]: MANAGED[1], SESSION: "web", "app.kubernetes.io/component": "bucket-server"}


def test_selector():
    every = "app.kubernetes.io/managed-by=kubectl-gitops-run,kubectl-gitops-run.io/session"
    assert n.selector(None) == every
    assert n.selector() == every
    assert n.selector("web") == \
        "app.kubernetes.io/managed-by=kubectl-gitops-run,kubectl-gitops-run.io/session=web"
    assert n.selector(None, "team=a") == every + ",team=a"
    assert n.selector("web", "team=a,tier!=db") == \
        "app.kubernetes.io/managed-by=kubectl-gitops-run,kubectl-gitops-run.io/session=web," \
        "team=a,tier!=db"


@pytest.mark.parametrize("labels, expected", [
    ({MANAGED[0]: MANAGED[1], SESSION: "web"}, True),
    ({MANAGED[0]: MANAGED[1], SESSION: "web", "extra": "x"}, True),
    ({MANAGED[0]: MANAGED[1], SESSION: "other"}, False),
    ({MANAGED[0]: MANAGED[1]}, False),
    ({SESSION: "web"}, False),
    ({MANAGED[0]: "helm", SESSION: "web"}, False),
    ({}, False),
    (None, False),
])
def test_owns(labels, expected):
    assert n.owns({"metadata": {"name": "gitops-run-web", "labels": labels}}, "web") is expected


def test_owns_without_object_or_metadata():
    assert n.owns(None, "web") is False
    assert n.owns({}, "web") is False


def test_annotations_and_fact_round_trip():
    ann = n.annotations(source="/src/web", files=12, bytes=0, last_sync=None, target_namespace="t")
    assert ann == {"kubectl-gitops-run.io/source": "/src/web",
                   "kubectl-gitops-run.io/files": "12",
                   "kubectl-gitops-run.io/bytes": "0",
                   "kubectl-gitops-run.io/target-namespace": "t"}
    obj = {"metadata": {"annotations": ann}}
    assert n.fact(obj, "source") == "/src/web"
    assert n.fact(obj, "files") == "12"
    assert n.fact(obj, "target-namespace") == "t"
    assert n.fact(obj, "last-sync") is None
    assert n.fact(None, "source") is None
    assert n.fact({"metadata": {}}, "source") is None
    assert n.fact({"metadata": {"annotations": None}}, "source") is None


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
    assert data == [{"name": "data", "emptyDir": {}}]
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
    assert spec["secretRef"] == {"name": "gitops-run-web"}
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
    assert k["spec"]["targetNamespace"] == "dev"
    other = s.Spec(name="web", namespace="dev", source="/s", host="h", user="u",
                   target_namespace="web-dev")
    assert s.kustomization(other)["spec"]["targetNamespace"] == "web-dev"
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
