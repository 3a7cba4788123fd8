"""The bucket-server runtime: the container runtime for one image, on loopback.

kwok fakes every pod. For pods of the bucket-server image (repository name
`minio`, any registry, so mirrored images count) and of the echo app image
(`gitops-run-echo`, devcluster/echo.py), this process plays the kubelet for
real: it runs the program with the pod's args and env (secretKeyRef resolved
from the real Secret, emptyDirs as fresh per-pod directories), reports the pod
Ready only once the server answers its health check, and stops the server when
the pod goes away, so a replacement pod starts empty as a real one would. A
tag other than the pinned one is an image this "registry" does not have:
ErrImagePull / ImagePullBackOff and an event.

A container that exits is reported as a kubelet reports it: terminated with
its exit code, then waiting in CrashLoopBackOff (the last run's exit code in
lastState, restartCount counted) while it backs off, 10 s doubling up to
5 min, before it is started again.

Two ways in, as in a cluster:
- pods/portforward: a kwok PortForward (owned by the pod) maps the container
  port to the local server;
- the Service address a Flux Bucket uses (`<svc>.<ns>.svc:<port>`):
  source-controller runs with HTTP_PROXY pointing at the forward proxy here,
  which resolves Service -> selected Ready pod -> local server.
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import ipaddress
import itertools
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from devcluster.build import pins
from devcluster.cluster import free_port

NODE = "gitops-run-node"
REPO_NAME = "minio"
ECHO_REPO = "gitops-run-echo"   # devcluster/echo.py, any tag: an app to forward to
ECHO_PORT = 8080                # its port when the container names none
KWOK_SETTLE = 0.3               # seconds for kwok to pick up a new PortForward
PINNED_TAG = pins()["minio"]["image"].rsplit(":", 1)[1]
SERVICE_TTL = 2.0
BACKOFF = (10.0, 300.0)         # the kubelet's restart back-off: first, cap (seconds)
_pod_ips = (f"10.0.1.{i}" for i in itertools.cycle(range(2, 255)))


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_repo_and_tag(image: str) -> tuple[str, str]:
    image = image.split("@", 1)[0]      # a digest pins what the tag names
    name, _, tag = image.rpartition(":")
    if "/" in tag or not name:  # "host:port/repo" without a tag
        name, tag = image, "latest"
    return name.rsplit("/", 1)[-1], tag


@dataclass
class Running:
    namespace: str
    name: str
    uid: str
    labels: dict
    proc: subprocess.Popen | None = None
    ports: dict = field(default_factory=dict)  # container port -> local port
    ready: bool = False
    dir: Path | None = None
    health: str = "/minio/health/ready"
    argv: list = field(default_factory=list)    # how to (re)start the container
    env: dict = field(default_factory=dict)
    log: str = "container.log"
    restarts: int = 0
    started: str = ""       # when the container last started (RFC 3339)
    stopped: threading.Event = field(default_factory=threading.Event)


class Runtime:
    def __init__(self, minio: str, pods_dir: Path):
        self.minio = minio
        self.pods_dir = pods_dir
        self.core = client.CoreV1Api()
        self.custom = client.CustomObjectsApi()
        self.pods: dict[str, Running] = {}  # by uid
        self._services: dict[str, tuple[float, object]] = {}
        self.lock = threading.Lock()

    # --- pod lifecycle ------------------------------------------------------

    def handle(self, pod) -> None:
        uid = pod.metadata.uid
        if pod.metadata.deletion_timestamp:
            self.stop(uid)
            return
        containers = pod.spec.containers or []
        repo = image_repo_and_tag(containers[0].image)[0] if containers else ""
        if repo not in (REPO_NAME, ECHO_REPO):
            return
        with self.lock:
            if uid in self.pods:
                return
            run = Running(pod.metadata.namespace, pod.metadata.name, uid, pod.metadata.labels or {})
            self.pods[uid] = run
        tag = image_repo_and_tag(containers[0].image)[1]
        if repo == REPO_NAME and tag != PINNED_TAG:
            self.image_pull_failed(pod, containers[0])
            return
        try:
            (self.start_echo if repo == ECHO_REPO else self.start)(run, pod)
        except Exception as e:  # noqa: BLE001 - report on the pod, as a kubelet would
            self.set_status(pod, ready=False, waiting=("CreateContainerConfigError", str(e)))

    def start(self, run: Running, pod) -> None:
        c = pod.spec.containers[0]
        run.dir = self.pods_dir / f"{run.namespace}_{run.name}_{run.uid[:8]}"
        mounts = {}
        for vm in c.volume_mounts or []:
            local = run.dir / vm.name
            local.mkdir(parents=True, exist_ok=True)
            mounts[vm.mount_path.rstrip("/")] = str(local)

        rootfs = run.dir / "rootfs"

        def local_path(value: str) -> str:
            """A path inside the container: under a volume, or in the pod's own root."""
            for mount, local in mounts.items():
                if value == mount or value.startswith(mount + "/"):
                    return local + value[len(mount):]
            if value.startswith("/"):
                (rootfs / value.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
                return str(rootfs) + value
            return value

        env = self.env(run, c, local_path)
        args = list(c.args or [])
        if c.command and c.command[0].rsplit("/", 1)[-1] == "minio":
            args = list(c.command[1:]) + args
        argv, skip = [self.minio], False
        for i, a in enumerate(args):
            if skip:
                skip = False
                continue
            if a in ("--address", "--console-address") and i + 1 < len(args):
                port = int(args[i + 1].rsplit(":", 1)[1])
                local = free_port()
                if a == "--address":
                    run.ports[port] = local
                argv += [a, f"127.0.0.1:{local}"]
                skip = True
            else:
                argv.append(local_path(a))
        if "--address" not in args:  # MinIO's default
            run.ports[9000] = free_port()
            argv += ["--address", f"127.0.0.1:{run.ports[9000]}"]
        self.launch(run, pod, argv, env, "minio.log")

    def launch(self, run: Running, pod, argv: list[str], env: dict, log_name: str) -> None:
        run.dir.mkdir(parents=True, exist_ok=True)
        run.argv, run.env, run.log = argv, env, log_name
        for cport, lport in run.ports.items():
            self.port_forward(pod, cport, lport)
        self.set_status(pod, ready=False, waiting=("ContainerCreating", ""))
        self.exec(run)
        threading.Thread(target=self.supervise, args=(run, pod), daemon=True).start()

    def exec(self, run: Running) -> None:
        run.started = now()
        with open(run.dir / run.log, "ab") as log:
            run.proc = subprocess.Popen(run.argv, env=run.env, stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def start_echo(self, run: Running, pod) -> None:
        """devcluster/echo.py with the pod's env, on a free port for its first
        container port; Ready once it answers."""
        c = pod.spec.containers[0]
        run.dir = self.pods_dir / f"{run.namespace}_{run.name}_{run.uid[:8]}"
        port = next((p.container_port for p in c.ports or []), ECHO_PORT)
        run.ports[port] = free_port()
        run.health = "/healthz"
        env = {**self.env(run, c, lambda v: v), "POD_NAME": run.name,
               "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        argv = [sys.executable, "-m", "devcluster.echo", "--port", str(run.ports[port])]
        self.launch(run, pod, argv, env, "echo.log")

    def env(self, run: Running, c, local_path) -> dict:
        env = {"PATH": os.environ.get("PATH", "")}
        for e in c.env or []:
            env[e.name] = local_path(self.env_value(run.namespace, e))
        return env

    def env_value(self, namespace: str, e) -> str:
        if e.value_from is None:
            return e.value or ""
        if e.value_from.secret_key_ref:
            ref = e.value_from.secret_key_ref
            data = self.core.read_namespaced_secret(ref.name, namespace).data or {}
            return base64.b64decode(data[ref.key]).decode()
        if e.value_from.config_map_key_ref:
            ref = e.value_from.config_map_key_ref
            return (self.core.read_namespaced_config_map(ref.name, namespace).data or {})[ref.key]
        return ""

    def supervise(self, run: Running, pod) -> None:
        """The container's life as a kubelet sees it: Ready once healthy; on
        exit, terminated, then CrashLoopBackOff until the back-off ends and it
        runs again. Ends when the pod goes away (stop())."""
        backoff = BACKOFF[0]
        while not run.stopped.is_set():
            if self.await_ready(run):
                run.ready = True
                self.set_status(pod, ready=True, restarts=run.restarts)
                run.proc.wait()
                run.ready = False
            if run.stopped.is_set():
                return
            ended = {"exitCode": run.proc.returncode, "startedAt": run.started, "finishedAt": now(),
                     "reason": "Completed" if run.proc.returncode == 0 else "Error"}
            run.restarts += 1
            self.set_status(pod, ready=False, state={"terminated": ended}, restarts=run.restarts)
            message = (f"back-off {int(backoff)}s restarting failed container="
                       f"{pod.spec.containers[0].name} pod={pod.metadata.name}_"
                       f"{pod.metadata.namespace}({pod.metadata.uid})")
            self.set_status(pod, ready=False, waiting=("CrashLoopBackOff", message),
                            last=ended, restarts=run.restarts)
            if run.stopped.wait(backoff):
                return
            backoff = min(backoff * 2, BACKOFF[1])
            self.exec(run)
            self.set_status(pod, ready=False, last=ended, restarts=run.restarts)

    def await_ready(self, run: Running) -> bool:
        """Has the container answered its health check (False: it exited first)?"""
        url = f"http://127.0.0.1:{next(iter(run.ports.values()))}{run.health}"
        while run.proc.poll() is None and not run.stopped.is_set():
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        time.sleep(KWOK_SETTLE)     # kwok must have seen its PortForward
                        return run.proc.poll() is None
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def port_forward(self, pod, container_port: int, local_port: int) -> None:
        body = {
            "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "PortForward",
            "metadata": {"name": pod.metadata.name, "namespace": pod.metadata.namespace,
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Pod",
                                              "name": pod.metadata.name, "uid": pod.metadata.uid}]},
            "spec": {"forwards": [{"ports": [container_port],
                                   "target": {"address": "127.0.0.1", "port": local_port}}]},
        }
        try:
            self.custom.create_namespaced_custom_object(
                "kwok.x-k8s.io", "v1alpha1", pod.metadata.namespace, "portforwards", body)
        except ApiException as e:
            if e.status != 409:
                raise

    def stop(self, uid: str) -> None:
        with self.lock:
            run = self.pods.pop(uid, None)
        if run is None:
            return
        run.stopped.set()
        if run.proc and run.proc.poll() is None:
            run.proc.terminate()
            try:
                run.proc.wait(5)
            except subprocess.TimeoutExpired:
                run.proc.kill()
        if run.dir:
            shutil.rmtree(run.dir, ignore_errors=True)

    def stop_all(self) -> None:
        for uid in list(self.pods):
            self.stop(uid)

    # --- what the kubelet would report ---------------------------------------

    def set_status(self, pod, ready: bool, waiting: tuple[str, str] | None = None, *,
                   state: dict | None = None, last: dict | None = None,
                   restarts: int = 0) -> None:
        """The pod's status: running (Ready or not), or waiting with a reason,
        or the given container `state`; `last`: how its previous run ended.
        A container that has run once keeps the pod Running, as a kubelet's."""
        c = pod.spec.containers[0]
        t = now()
        if state is None:
            state = ({"running": {"startedAt": t}} if waiting is None else
                     {"waiting": {"reason": waiting[0],
                                  **({"message": waiting[1]} if waiting[1] else {})}})
        phase = "Running" if "running" in state or restarts else "Pending"
        # a strategic merge patch merges `state` key by key: null the other two
        state = {k: state.get(k) for k in ("running", "terminated", "waiting")}
        flag = "True" if ready else "False"
        cond = lambda typ, status: {"type": typ, "status": status, "lastTransitionTime": t}  # noqa: E731
        conditions = [cond("PodScheduled", "True"), cond("Initialized", "True"),
                      cond("ContainersReady", flag), cond("Ready", flag)]
        if not ready:
            for x in conditions[2:]:
                x["reason"] = "ContainersNotReady"
        ip = pod.status.pod_ip if pod.status and pod.status.pod_ip else next(_pod_ips)
        container = {"name": c.name, "image": c.image, "imageID": "", "ready": ready,
                     "restartCount": restarts, "started": bool(state["running"]), "state": state}
        if last:
            container["lastState"] = {"terminated": last}
        status = {
            "phase": phase,
            "conditions": conditions, "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": ip, "podIPs": [{"ip": ip}], "startTime": t,
            "containerStatuses": [container],
        }
        try:
            self.core.patch_namespaced_pod_status(pod.metadata.name, pod.metadata.namespace,
                                                  {"status": status})
        except ApiException as e:
            if e.status != 404:
                raise
        pod.status.pod_ip = ip

    def image_pull_failed(self, pod, c) -> None:
        msg = (f'Failed to pull image "{c.image}": not found: the local cluster only has '
               f"the bucket-server image with tag {PINNED_TAG}")
        self.set_status(pod, ready=False, waiting=("ErrImagePull", msg))
        self.event(pod, "Failed", msg)
        time.sleep(0.5)
        self.set_status(pod, ready=False,
                        waiting=("ImagePullBackOff", f'Back-off pulling image "{c.image}"'))
        self.event(pod, "BackOff", f'Back-off pulling image "{c.image}"')

    def event(self, pod, reason: str, message: str) -> None:
        t = now()
        self.core.create_namespaced_event(pod.metadata.namespace, {
            "metadata": {"generateName": f"{pod.metadata.name}.", "namespace": pod.metadata.namespace},
            "involvedObject": {"kind": "Pod", "apiVersion": "v1", "name": pod.metadata.name,
                               "namespace": pod.metadata.namespace, "uid": pod.metadata.uid},
            "reason": reason, "message": message, "type": "Warning",
            "source": {"component": "kubelet", "host": NODE},
            "firstTimestamp": t, "lastTimestamp": t, "count": 1})

    # --- the watch loop -------------------------------------------------------

    def run(self) -> None:
        selector = f"spec.nodeName={NODE}"
        while True:
            try:
                pods = self.core.list_pod_for_all_namespaces(field_selector=selector)
                present = {p.metadata.uid for p in pods.items}
                for uid in set(self.pods) - present:
                    self.stop(uid)
                for p in pods.items:
                    self.handle(p)
                w = watch.Watch()
                for ev in w.stream(self.core.list_pod_for_all_namespaces, field_selector=selector,
                                   resource_version=pods.metadata.resource_version,
                                   timeout_seconds=300):
                    if ev["type"] == "DELETED":
                        self.stop(ev["object"].metadata.uid)
                    elif ev["type"] in ("ADDED", "MODIFIED"):
                        self.handle(ev["object"])
            except Exception as e:  # noqa: BLE001 - a watch error: list again
                print(f"watch: {e}", file=sys.stderr, flush=True)
                time.sleep(0.5)

    # --- Service addresses, for the proxy ------------------------------------

    def resolve(self, host: str, port: int) -> tuple[str, int] | None:
        # Services barely change: a short cache spares an API call per request
        # (the proxy sees one per object Flux fetches); pods are looked up live.
        cached = self._services.get(host)
        if cached and time.monotonic() - cached[0] < SERVICE_TTL:
            svc = cached[1]
        else:
            svc = self.service(host)
            self._services[host] = (time.monotonic(), svc)
        if svc is None:
            return None
        target = None
        for sp in svc.spec.ports or []:
            if sp.port == port:
                target = sp.target_port if sp.target_port is not None else sp.port
        if target is None or not svc.spec.selector:
            return None
        with self.lock:
            runs = [r for r in self.pods.values() if r.ready and r.namespace == svc.metadata.namespace
                    and all(r.labels.get(k) == v for k, v in svc.spec.selector.items())]
        for r in runs:
            if isinstance(target, int) or str(target).isdigit():
                local = r.ports.get(int(target))
            else:  # a named port: every bucket-server pod names its one port
                local = next(iter(r.ports.values()), None)
            if local:
                return "127.0.0.1", local
        return None

    def service(self, host: str):
        try:
            ipaddress.ip_address(host)
            for s in self.core.list_service_for_all_namespaces().items:
                if s.spec.cluster_ip == host:
                    return s
            return None
        except ValueError:
            pass
        parts = host.split(".")
        if len(parts) < 2:
            return None
        try:
            return self.core.read_namespaced_service(parts[0], parts[1])
        except ApiException:
            return None


def pipe(a: socket.socket, b: socket.socket) -> None:
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def one_request(head: bytes) -> bytes:
    """A plain-HTTP proxy connection may carry requests for many hosts (Go keys
    such connections by proxy alone), but this proxy routes a connection by its
    first request: ask for `Connection: close` so each request gets its own."""
    header, sep, body = head.partition(b"\r\n\r\n")
    lines = [line for line in header.split(b"\r\n")
             if not line.lower().startswith((b"connection:", b"proxy-connection:"))]
    return b"\r\n".join(lines + [b"Connection: close"]) + sep + body


def make_proxy(runtime: Runtime, port: int) -> socketserver.ThreadingTCPServer:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            conn = self.request
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            method, target = head.split(b" ", 2)[:2]
            connect = method == b"CONNECT"
            hostport = target.decode() if connect else target.decode().split("://", 1)[-1].split("/", 1)[0]
            host, _, p = hostport.rpartition(":")
            if not host:
                host, p = hostport, "443" if connect else "80"
            backend = runtime.resolve(host, int(p))
            if backend is None:
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            up = socket.create_connection(backend)
            if connect:
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                rest = head.split(b"\r\n\r\n", 1)[1]
                if rest:
                    up.sendall(rest)
            else:  # absolute-form requests are valid HTTP/1.1; MinIO takes them as they are
                up.sendall(one_request(head))
            t = threading.Thread(target=pipe, args=(up, conn), daemon=True)
            t.start()
            pipe(conn, up)
            t.join()
            up.close()

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True
        # source-controller opens a burst of connections per Bucket fetch; with
        # the default backlog of 5 the kernel drops their handshakes and they
        # stall for seconds of SYN retransmits
        request_queue_size = 1024

    return Server(("127.0.0.1", port), Handler)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--proxy-port", type=int, required=True)
    ap.add_argument("--minio", required=True)
    ap.add_argument("--pods-dir", type=Path, required=True)
    ap.add_argument("--ready-file", type=Path, required=True)
    args = ap.parse_args()
    config.load_kube_config(args.kubeconfig)
    rt = Runtime(args.minio, args.pods_dir)

    def terminate(*_):
        rt.stop_all()
        os._exit(0)
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    proxy = make_proxy(rt, args.proxy_port)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    args.ready_file.write_text(str(os.getpid()))
    rt.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
