"""Smoke tests of the local control plane itself: each asserts real behaviour
of the real programs (API server, controllers, kwok, Flux, MinIO, sops)."""
from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import subprocess
import threading
import time

import pytest
import requests
import yaml
from requests_aws4auth import AWS4Auth

from devcluster.build import pins
from devcluster.cluster import FLUX

BUCKET_IMAGE = pins()["minio"]["image"]


def wait_for(what, fn, timeout=60.0, interval=0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def apply(kubectl, namespace, *docs):
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs))


def get(kubectl, namespace, kind, name):
    out = kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(out) if out else None


def deployment(name, image, volumes=(), **container):
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "main", "image": image, **container}],
                                       "volumes": list(volumes)}}},
    }


FLUX_CRDS = {"buckets.source.toolkit.fluxcd.io": "v1",
             "kustomizations.kustomize.toolkit.fluxcd.io": "v1",
             "helmreleases.helm.toolkit.fluxcd.io": "v2"}


def test_node_is_ready_and_flux_crds_are_served(kubectl):
    nodes = json.loads(kubectl("get", "nodes", "-o", "json"))["items"]
    ready = [c["status"] for n in nodes for c in n["status"]["conditions"] if c["type"] == "Ready"]
    assert ready == ["True"]
    for crd, version in FLUX_CRDS.items():
        versions = json.loads(kubectl("get", "crd", crd, "-o", "json"))["spec"]["versions"]
        assert any(v["name"] == version and v["served"] for v in versions), crd


def test_every_flux_controller_is_ready(cluster):
    ports = cluster.handle.state.ports
    for short in FLUX.values():
        r = requests.get(f"http://127.0.0.1:{ports[f'{short}-health']}/readyz", timeout=5)
        assert r.status_code == 200, short


def test_deployment_pod_becomes_ready(kubectl, namespace):
    apply(kubectl, namespace, deployment("web", "example.invalid/web:1"))
    kubectl("wait", "-n", namespace, "--for=condition=Available", "deployment/web", "--timeout=60s")
    pods = json.loads(kubectl("get", "pods", "-n", namespace, "-l", "app=web", "-o", "json"))["items"]
    assert len(pods) == 1
    assert pods[0]["status"]["phase"] == "Running"
    assert pods[0]["spec"]["nodeName"] == "gitops-run-node"


def test_python_client_port_forward_reaches_a_local_process(cluster, kubectl, namespace):
    """pods/portforward through the API server, kwok's kubelet server, to a local socket."""
    from kubernetes import client
    from kubernetes.stream import portforward

    payload = b"hello through the API server\n"
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve():
        conn, _ = server.accept()
        with conn:
            got = conn.recv(100)
            conn.sendall(payload + got)
    threading.Thread(target=serve, daemon=True).start()

    apply(kubectl, namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "echo"},
        "spec": {"containers": [{"name": "main", "image": "example.invalid/echo:1",
                                 "ports": [{"containerPort": 7000}]}]}})
    kubectl("wait", "-n", namespace, "--for=condition=Ready", "pod/echo", "--timeout=60s")
    apply(kubectl, namespace, {
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "PortForward", "metadata": {"name": "echo"},
        "spec": {"forwards": [{"ports": [7000], "target": {
            "address": "127.0.0.1", "port": server.getsockname()[1]}}]}})
    core = client.CoreV1Api(cluster.api_client())

    def roundtrip():
        pf = portforward(core.connect_get_namespaced_pod_portforward, "echo", namespace, ports="7000")
        sock = pf.socket(7000)
        sock.settimeout(10)
        sock.sendall(b"ping")
        data = b""
        while len(data) < len(payload) + 4:
            chunk = sock.recv(1024)
            if not chunk:
                break
            data += chunk
        sock.close()
        pf.close()
        return data
    # kwok picks up the PortForward object through its informer: allow it a moment.
    data = wait_for("port-forward", lambda: _try(roundtrip), timeout=30)
    assert data == payload + b"ping"
    server.close()


def _try(fn):
    try:
        return fn()
    except Exception:  # noqa: BLE001 - retried by wait_for
        return None


def revision(listing: dict[str, str]) -> str:
    return "sha256:" + hashlib.sha256(
        "".join(f"{k} {listing[k]}\n" for k in sorted(listing)).encode()).hexdigest()


class PortForwardedS3:
    """A bucket reached the way a user would: `kubectl port-forward` to the pod."""

    def __init__(self, cluster, namespace, pod, access, secret):
        self.proc = subprocess.Popen(
            [str(cluster.bin_dir / "kubectl"), "port-forward", "-n", namespace, f"pod/{pod}", ":9000"],
            env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert m, f"kubectl port-forward said: {line}"
        self.url = f"http://127.0.0.1:{m.group(1)}"
        self.auth = AWS4Auth(access, secret, "us-east-1", "s3")

    def call(self, method, path, **kw):
        r = requests.request(method, self.url + path, auth=self.auth, timeout=10, **kw)
        assert r.status_code < 300, (r.status_code, r.text)
        return r

    def listing(self, bucket) -> dict[str, str]:
        xml = self.call("GET", f"/{bucket}?list-type=2").text
        keys = re.findall(r"<Key>(.*?)</Key>", xml)
        etags = [e.replace("&#34;", "").replace("&quot;", "").strip('"')
                 for e in re.findall(r"<ETag>(.*?)</ETag>", xml)]
        return dict(zip(keys, etags))

    def close(self):
        self.proc.terminate()
        self.proc.wait()


def configmap(name, value):
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                           "data": {"value": value}})


def reconcile(kubectl, namespace, kind, name):
    token = str(time.time_ns())
    kubectl("annotate", "-n", namespace, "--overwrite", kind, name,
            f"reconcile.fluxcd.io/requestedAt={token}")
    wait_for(f"{kind} {name} to handle {token}",
             lambda: (get(kubectl, namespace, kind, name) or {}).get("status", {})
             .get("lastHandledReconcileAt") == token)


def serve_bucket(cluster, kubectl, namespace, access, secret) -> PortForwardedS3:
    """A bucket-server Deployment and Service `bucket`, its credentials in the
    Secret `creds` (the keys a Flux Bucket reads), and a client to it."""
    apply(kubectl, namespace,
          {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
           "stringData": {"accesskey": access, "secretkey": secret}},
          deployment("bucket", BUCKET_IMAGE, args=["server", "/data", "--address", ":9000"],
                     ports=[{"containerPort": 9000}],
                     env=[{"name": "MINIO_ROOT_USER", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "accesskey"}}},
                          {"name": "MINIO_ROOT_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "secretkey"}}}],
                     volumeMounts=[{"name": "data", "mountPath": "/data"}],
                     volumes=[{"name": "data", "emptyDir": {}}]),
          {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bucket"},
           "spec": {"selector": {"app": "bucket"}, "ports": [{"port": 9000, "targetPort": 9000}]}})
    kubectl("rollout", "status", "-n", namespace, "deployment/bucket", "--timeout=60s")
    pod = json.loads(kubectl("get", "pods", "-n", namespace, "-l", "app=bucket", "-o", "json"))["items"]
    pod = [p for p in pod if not p["metadata"].get("deletionTimestamp")][0]["metadata"]["name"]
    s3 = PortForwardedS3(cluster, namespace, pod, access, secret)
    wait_for("bucket server through port-forward",
             lambda: _try(lambda: requests.get(s3.url + "/minio/health/ready", timeout=2).ok))
    s3.call("PUT", "/app")
    return s3


def flux_bucket(namespace) -> dict:
    """A Flux Bucket `app` on the bucket `app` of serve_bucket's server."""
    return {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "Bucket", "metadata": {"name": "app"},
            "spec": {"provider": "generic", "bucketName": "app", "insecure": True,
                     "endpoint": f"bucket.{namespace}.svc:9000", "interval": "1h",
                     "secretRef": {"name": "creds"}}}


def kustomization(namespace, **spec) -> dict:
    return {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "app"},
            "spec": {"sourceRef": {"kind": "Bucket", "name": "app"}, "path": "./", "prune": True,
                     "interval": "1h", "targetNamespace": namespace, **spec}}


def test_flux_applies_a_bucket_served_by_the_bucket_server(cluster, kubectl, namespace):
    s3 = serve_bucket(cluster, kubectl, namespace, "smoke-access-key", "smoke-secret-key-0123456789")
    try:
        s3.call("PUT", "/app/config.yaml", data=configmap("smoke", "one"))
        apply(kubectl, namespace, flux_bucket(namespace), kustomization(namespace))

        def applied(value):
            cm = get(kubectl, namespace, "configmap", "smoke")
            return cm and cm["data"]["value"] == value
        wait_for("the ConfigMap from the bucket", lambda: applied("one"), timeout=90)
        bucket = get(kubectl, namespace, "bucket", "app")
        assert bucket["status"]["artifact"]["revision"] == revision(s3.listing("app"))

        s3.call("PUT", "/app/config.yaml", data=configmap("smoke", "two"))
        reconcile(kubectl, namespace, "bucket", "app")
        assert get(kubectl, namespace, "bucket", "app")["status"]["artifact"]["revision"] == \
            revision(s3.listing("app"))
        reconcile(kubectl, namespace, "kustomization", "app")
        wait_for("the ConfigMap to change", lambda: applied("two"))

        s3.call("DELETE", "/app/config.yaml")
        reconcile(kubectl, namespace, "bucket", "app")
        reconcile(kubectl, namespace, "kustomization", "app")
        wait_for("the ConfigMap to be pruned", lambda: get(kubectl, namespace, "configmap", "smoke") is None)
    finally:
        s3.close()


CHART = {
    "Chart.yaml": "apiVersion: v2\nname: hello\nversion: 0.1.0\n",
    "templates/configmap.yaml": ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                 "  name: {{ .Release.Name }}-hello\n"
                                 "data:\n  message: {{ .Values.message | quote }}\n"),
}


def helm_release(namespace) -> dict:
    """A HelmRelease of the chart at the root of the Bucket `app`: with
    reconcileStrategy Revision every new Bucket revision is a new chart version."""
    return {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": "hello"},
            "spec": {"interval": "1h", "releaseName": "smoke",
                     "chart": {"spec": {"chart": "./", "reconcileStrategy": "Revision",
                                        "sourceRef": {"kind": "Bucket", "name": "app"}}}}}


def test_helm_controller_installs_and_upgrades_a_chart_from_a_bucket(cluster, kubectl, namespace):
    s3 = serve_bucket(cluster, kubectl, namespace, "helm-access-key", "helm-secret-key-0123456789")
    try:
        for key, text in CHART.items():
            s3.call("PUT", f"/app/{key}", data=text)
        s3.call("PUT", "/app/values.yaml", data="message: one\n")
        apply(kubectl, namespace, flux_bucket(namespace), helm_release(namespace))

        def message():
            cm = get(kubectl, namespace, "configmap", "smoke-hello")
            return cm and cm["data"]["message"]
        assert wait_for("the chart's ConfigMap", message, timeout=120) == "one"
        first = get(kubectl, namespace, "helmrelease", "hello")["status"]
        assert first["history"][0]["chartVersion"].startswith("0.1.0+")

        s3.call("PUT", "/app/values.yaml", data="message: two\n")
        reconcile(kubectl, namespace, "bucket", "app")
        wait_for("the upgrade", lambda: message() == "two", timeout=120)
        status = get(kubectl, namespace, "helmrelease", "hello")["status"]
        assert [h["version"] for h in status["history"]] == [2, 1]
        assert status["history"][0]["chartVersion"] != first["history"][0]["chartVersion"]
    finally:
        s3.close()


SECRET = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: sealed\nstringData:\n  password: hunter2\n"


def test_kustomize_controller_decrypts_a_secret_encrypted_by_sops(cluster, kubectl, namespace, tmp_path):
    """The real sops CLI encrypts for a key made by age-keygen; Flux decrypts on apply."""
    key = tmp_path / "age.agekey"
    subprocess.run([str(cluster.bin_dir / "age-keygen"), "-o", str(key)], check=True, capture_output=True)
    recipient = re.search(r"public key: (age1\w+)", key.read_text()).group(1)
    plain = tmp_path / "secret.yaml"
    plain.write_text(SECRET)
    encrypted = subprocess.run(
        [str(cluster.bin_dir / "sops"), "--encrypt", "--age", recipient,
         "--encrypted-regex", "^(data|stringData)$", str(plain)],
        check=True, capture_output=True, text=True).stdout
    assert "hunter2" not in encrypted and "sops:" in encrypted
    s3 = serve_bucket(cluster, kubectl, namespace, "sops-access-key", "sops-secret-key-0123456789")
    try:
        s3.call("PUT", "/app/secret.yaml", data=encrypted)
        kubectl("create", "secret", "generic", "sops-age", "-n", namespace,
                f"--from-file=age.agekey={key}")
        apply(kubectl, namespace, flux_bucket(namespace), kustomization(
            namespace, decryption={"provider": "sops", "secretRef": {"name": "sops-age"}}))
        secret = wait_for("the decrypted Secret", lambda: get(kubectl, namespace, "secret", "sealed"),
                          timeout=90)
        assert base64.b64decode(secret["data"]["password"]) == b"hunter2"
    finally:
        s3.close()


def test_replacement_bucket_pod_starts_empty(cluster, kubectl, namespace):
    """Deleting a bucket-server pod stops its server; the Deployment's new pod has no data."""
    apply(kubectl, namespace, deployment(
        "b", BUCKET_IMAGE, args=["server", "/data"],
        env=[{"name": "MINIO_ROOT_USER", "value": "replacement-user"},
             {"name": "MINIO_ROOT_PASSWORD", "value": "replacement-password"}]))
    kubectl("rollout", "status", "-n", namespace, "deployment/b", "--timeout=60s")

    def pod_names():
        pods = json.loads(kubectl("get", "pods", "-n", namespace, "-l", "app=b", "-o", "json"))["items"]
        return [p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")
                and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]
    first = wait_for("a Ready pod", pod_names)[0]
    s3 = PortForwardedS3(cluster, namespace, first, "replacement-user", "replacement-password")
    wait_for("server", lambda: _try(lambda: requests.get(s3.url + "/minio/health/ready", timeout=2).ok))
    s3.call("PUT", "/keep")
    s3.close()
    kubectl("delete", "pod", "-n", namespace, first)
    second = wait_for("a replacement pod", lambda: [n for n in pod_names() if n != first])[0]
    s3 = PortForwardedS3(cluster, namespace, second, "replacement-user", "replacement-password")
    try:
        wait_for("server", lambda: _try(lambda: requests.get(s3.url + "/minio/health/ready", timeout=2).ok))
        r = requests.get(s3.url + "/keep", auth=s3.auth, timeout=10)
        assert r.status_code == 404 and "NoSuchBucket" in r.text
    finally:
        s3.close()


@pytest.mark.parametrize("image", ["quay.io/minio/minio:RELEASE.2020-01-01T00-00-00Z"])
def test_unknown_bucket_image_tag_never_becomes_ready(kubectl, namespace, image):
    apply(kubectl, namespace, deployment("bad", image))

    def waiting_reason():
        pods = json.loads(kubectl("get", "pods", "-n", namespace, "-l", "app=bad", "-o", "json"))["items"]
        for p in pods:
            for cs in p["status"].get("containerStatuses", []):
                reason = cs["state"].get("waiting", {}).get("reason")
                if reason == "ImagePullBackOff":
                    return reason
    assert wait_for("ImagePullBackOff", waiting_reason) == "ImagePullBackOff"
    events = kubectl("get", "events", "-n", namespace, "-o", "json")
    assert "Failed to pull image" in events
