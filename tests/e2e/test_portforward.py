"""In-process port-forward against the real control plane, to a real bucket-server pod."""
from __future__ import annotations

import gc
import hashlib
import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from devcluster.build import pins
from kubectl_gitops_run.adapters.kube import connect
from kubectl_gitops_run.adapters import portforward
from kubectl_gitops_run.adapters.portforward import PortForward
from kubectl_gitops_run.adapters.s3 import S3
from kubectl_gitops_run.errors import S3Error
from tests.e2e.test_kube import service_account_kube

VERSIONS = pins()
BUCKET_IMAGE = VERSIONS["minio"]["image"]
OUR_THREADS = ("port-forward", "Kubernetes port forward proxy")


def wait_for(what, fn, timeout=60.0, interval=0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def ready_pods(kubectl, namespace, app):
    pods = json.loads(kubectl("get", "pods", "-n", namespace, "-l", f"app={app}", "-o", "json"))
    return [p["metadata"]["name"] for p in pods["items"]
            if not p["metadata"].get("deletionTimestamp")
            and any(c["type"] == "Ready" and c["status"] == "True"
                    for c in p["status"].get("conditions", []))]


class BucketPod:
    def __init__(self, name, user, password):
        self.name, self.user, self.password = name, user, password


@pytest.fixture
def kube(cluster, namespace):
    return connect(str(cluster.kubeconfig), None, namespace)


@pytest.fixture
def bucket_pod(kubectl, namespace):
    user, password = "u" + secrets.token_hex(10), secrets.token_hex(20)
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bucket"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "bucket"}},
                 "template": {"metadata": {"labels": {"app": "bucket"}}, "spec": {
                     "containers": [{
                         "name": "minio", "image": BUCKET_IMAGE,
                         "args": ["server", "/data", "--address", ":9000"],
                         "ports": [{"containerPort": 9000}],
                         "env": [{"name": "MINIO_ROOT_USER", "value": user},
                                 {"name": "MINIO_ROOT_PASSWORD", "value": password}],
                         "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                     "volumes": [{"name": "data", "emptyDir": {}}]}}}}
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(deployment))
    kubectl("rollout", "status", "-n", namespace, "deployment/bucket", "--timeout=90s")
    pod = wait_for("a Ready bucket pod", lambda: ready_pods(kubectl, namespace, "bucket"))[0]
    return BucketPod(pod, user, password)


def our_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith(OUR_THREADS)}


@pytest.fixture
def no_threads_left():
    """Fails the test if it leaves a port-forward thread behind (threads that were
    there before it, e.g. from another test's leak, do not count)."""
    before = our_threads()
    yield
    wait_for("no port-forward thread left", lambda: not (our_threads() - before), timeout=10)


def sockets() -> set[str]:
    """This process's open sockets, as 'socket:[inode]'."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:"):
            out.add(link)
    return out


def describe_sockets(links: set[str]) -> list[str]:
    inodes = {link[8:-1] for link in links}
    return [f"{f}: {line.strip()}" for f in ("/proc/self/net/tcp", "/proc/self/net/unix")
            for line in open(f) if inodes & set(line.split())] or sorted(links)


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except OSError:
        return True


def fetch(s3: S3, bucket: str, key: str) -> tuple[int, bytes]:
    """GET an object (a Response kept alive would keep the pool's sockets open)."""
    with s3._http.get(s3._url(bucket, key), auth=s3._auth, timeout=30) as r:
        return r.status_code, r.content


def wait_s3_ready(s3: S3):
    wait_for("the bucket server through the port-forward", s3.ready, timeout=30)


def test_s3_through_the_port_forward_with_concurrent_connections(
        no_threads_left, kube, namespace, bucket_pod):
    kube.get("Pod", bucket_pod.name)      # the client's one pooled API connection is not ours
    sockets_before = sockets()
    pf = PortForward(kube, namespace, bucket_pod.name, 9000)
    with pf:
        assert pf.local_port > 0 and pf.url == f"http://127.0.0.1:{pf.local_port}"
        assert pf._listener.getsockname()[0] == "127.0.0.1"
        s3 = S3(pf.url, bucket_pod.user, bucket_pod.password)
        wait_s3_ready(s3)
        s3.ensure_bucket("app")
        blobs = {f"dir {i % 7}/obj+{i}.yaml": os.urandom(500 + 97 * i) for i in range(240)}
        blobs["big/blob.bin"] = os.urandom(6 << 20)       # many frames each way
        seen = set()
        lock = threading.Lock()

        def upload(item):
            key, data = item
            with lock:
                seen.add(threading.get_ident())
            return s3.put("app", key, data, md5(data)) == md5(data)
        with ThreadPoolExecutor(16) as pool:
            assert all(pool.map(upload, blobs.items()))
        assert s3.list("app") == {k: md5(v) for k, v in blobs.items()}
        assert pf.tunnels_opened >= 8, pf.tunnels_opened   # one tunnel per connection
        assert fetch(s3, "app", "big/blob.bin") == (200, blobs["big/blob.bin"])
        s3.delete("app", list(blobs))
        assert s3.list("app") == {}
        s3.close()
    assert refused(pf.local_port)
    try:
        # (requests' own client sockets may wait for the garbage collector)
        wait_for("no socket left", lambda: gc.collect() >= 0 and sockets() <= sockets_before,
                 timeout=10)
    except AssertionError:
        raise AssertionError(describe_sockets(sockets() - sockets_before)) from None


def health(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/minio/health/live")
        return conn.getresponse().status
    finally:
        conn.close()


def test_a_spare_tunnel_serves_the_next_connection_then_closes(
        no_threads_left, kube, namespace, bucket_pod, monkeypatch):
    monkeypatch.setattr(portforward, "SPARE_LIFE", 2.0)
    picked = [bucket_pod.name]
    with PortForward(kube, namespace, lambda wait: (picked[0], 9000, ""), 9000,
                     spare=True) as pf:
        for _ in range(4):
            assert health(pf.local_port) == 200
            wait_for("a spare tunnel", lambda: pf._spare is not None, timeout=20)
        assert pf.spares_used == 3
        # each connection picks afresh: a spare to a pod no longer picked is not used
        picked[0] = "no-such-pod"
        with pytest.raises((OSError, http.client.HTTPException)):
            health(pf.local_port)
        assert pf.spares_used == 3 and pf._spare is None
        # and an unused one is closed after SPARE_LIFE
        picked[0] = bucket_pod.name
        assert health(pf.local_port) == 200
        wait_for("a spare tunnel", lambda: pf._spare is not None, timeout=20)
        wait_for("the spare closed", lambda: pf._spare is None, timeout=10)


def test_close_ends_open_connections_promptly(
        no_threads_left, kube, namespace, bucket_pod):
    pf = PortForward(kube, namespace, bucket_pod.name, 9000)
    port = pf.start()
    wait_s3_ready(S3(pf.url, bucket_pod.user, bucket_pod.password))
    clients = []
    for _ in range(5):      # idle and half-sent requests, tunnels open
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        c.sendall(b"GET /minio/health/ready HTTP/1.1\r\nHost: x\r\n")
        clients.append(c)
    wait_for("five tunnels", lambda: pf.tunnels_opened >= 6, timeout=20)
    t = time.monotonic()
    pf.close()
    assert time.monotonic() - t < 5
    for c in clients:
        try:
            assert c.recv(100) == b""
        except ConnectionResetError:
            pass
        c.close()
    assert refused(port)
    pf.close()   # idempotent


def test_a_missing_pod_closes_the_connection_and_the_listener_stays(
        no_threads_left, kube, namespace):
    pf = PortForward(kube, namespace, "no-such-pod", 9000)
    with pf:
        for _ in range(3):
            c = socket.create_connection(("127.0.0.1", pf.local_port), timeout=10)
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert c.recv(100) == b""
            c.close()
        assert pf.last_error.endswith("no-such-pod port 9000: the pod was not found"), pf.last_error
        s3 = S3(pf.url, "k", "s")
        assert not s3.ready()
        with pytest.raises(S3Error, match="cannot reach the bucket server"):
            s3.list("app")


def test_a_deleted_pod_fails_its_tunnels_and_a_new_forward_recovers(
        no_threads_left, kube, kubectl, namespace, bucket_pod):
    with PortForward(kube, namespace, bucket_pod.name, 9000) as pf:
        s3 = S3(pf.url, bucket_pod.user, bucket_pod.password)
        wait_s3_ready(s3)
        s3.ensure_bucket("app")
        s3.put("app", "a.yaml", b"a", md5(b"a"))
        kubectl("delete", "pod", "-n", namespace, bucket_pod.name, "--wait=true")
        t = time.monotonic()
        with pytest.raises(S3Error, match="cannot reach the bucket server"):
            s3.put("app", "b.yaml", b"b", md5(b"b"))
        assert time.monotonic() - t < 8       # not a read timeout: the watchdog saw the pod go
        assert pf.last_error.endswith("the pod was not found"), pf.last_error
        assert pf._listener is not None and not refused(pf.local_port)
        s3.close()
    new = wait_for("a replacement pod",
                   lambda: [p for p in ready_pods(kubectl, namespace, "bucket")
                            if p != bucket_pod.name])[0]
    with PortForward(kube, namespace, new, 9000) as pf:
        s3 = S3(pf.url, bucket_pod.user, bucket_pod.password)
        wait_s3_ready(s3)
        s3.ensure_bucket("app")       # the new pod starts empty
        s3.put("app", "b.yaml", b"b", md5(b"b"))
        assert s3.list("app") == {"b.yaml": md5(b"b")}
        s3.close()


def test_a_port_nothing_listens_on_closes_the_connection(
        no_threads_left, kube, namespace, bucket_pod):
    with PortForward(kube, namespace, bucket_pod.name, 9999) as pf:
        for _ in range(2):
            c = socket.create_connection(("127.0.0.1", pf.local_port), timeout=15)
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                assert c.recv(100) == b""
            except ConnectionResetError:
                pass
            c.close()
        assert not refused(pf.local_port)
        assert pf.last_error.startswith("port-forward failed to pod ") and "9999" in pf.last_error


def test_connections_dropped_mid_upload_are_retried(
        no_threads_left, kube, namespace, bucket_pod):
    """Tunnels cut while 16 uploaders are busy: S3 retries on fresh tunnels."""
    with PortForward(kube, namespace, bucket_pod.name, 9000) as pf:
        s3 = S3(pf.url, bucket_pod.user, bucket_pod.password)
        wait_s3_ready(s3)
        s3.ensure_bucket("app")
        blobs = {f"f/{i}.bin": os.urandom(300_000) for i in range(240)}
        done = threading.Event()
        cuts = 0

        def cutter():   # three waves: no request can lose all five of its attempts
            nonlocal cuts
            for _ in range(3):
                if done.wait(0.2):
                    return
                with pf._lock:
                    victims = [t.conn for t in pf._tunnels]
                for s in victims[:4]:
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                        cuts += 1
                    except OSError:
                        pass
        t = threading.Thread(target=cutter)
        t.start()
        try:
            with ThreadPoolExecutor(16) as pool:
                etags = list(pool.map(lambda kv: s3.put("app", kv[0], kv[1], md5(kv[1])),
                                      blobs.items()))
        finally:
            done.set()
            t.join()
        assert etags == [md5(v) for v in blobs.values()]
        assert cuts >= 3, cuts
        assert s3.list("app") == {k: md5(v) for k, v in blobs.items()}
        s3.close()


def test_importing_the_adapters_does_not_import_kubernetes():
    code = ("import sys, kubectl_gitops_run.adapters.portforward, kubectl_gitops_run.adapters.s3; "
            "assert not [m for m in sys.modules if m.startswith('kubernetes')]")
    subprocess.run([sys.executable, "-c", code], check=True,
                   cwd=Path(__file__).resolve().parents[2])


@pytest.mark.parametrize("rules, line", [
    (["--verb=get --resource=pods"],
     'user "system:serviceaccount:{ns}:viewer" cannot get pods/portforward in namespace "{ns}"; '
     'ask for a Role rule: apiGroups [""], resources ["pods/portforward"], '
     'verbs ["get", "create"]'),
    (["--verb=get --resource=pods,pods/portforward"],
     'cannot create pods/portforward in namespace "{ns}"; ask for a Role rule: apiGroups [""], '
     'resources ["pods/portforward"], verbs ["create"]'),
])
def test_a_forbidden_tunnel_says_which_role_rule_to_ask_for(
        no_threads_left, cluster, kubectl, namespace, bucket_pod, tmp_path, rules, line):
    # this user may look at pods but not (fully) forward to them
    viewer = service_account_kube(cluster, kubectl, namespace, tmp_path, "viewer", rules)
    with PortForward(viewer, namespace, bucket_pod.name, 9000) as pf:
        c = socket.create_connection(("127.0.0.1", pf.local_port), timeout=10)
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.recv(100) == b""
        c.close()
        assert pf.last_error == (f"cannot port-forward to pod {namespace}/{bucket_pod.name} port "
                                 f"9000: forbidden: " + line.format(ns=namespace))
