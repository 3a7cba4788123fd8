"""A Docker-free Kubernetes + Flux control plane on 127.0.0.1.

    python -m devcluster.cluster up [--state-dir DIR]    # start (or reuse) and print exports
    python -m devcluster.cluster down [--state-dir DIR]  # stop everything
    python -m devcluster.cluster status [--state-dir DIR]

Real programs, each a local process: etcd, kube-apiserver (RBAC, token auth),
kube-controller-manager, kube-scheduler, kwok (one fake node, pod status,
port-forward), Flux's source-controller, kustomize-controller and
helm-controller, plus the bucket-server runtime (runtime.py) that runs MinIO
for pods of the bucket image. Ports are picked free at start and kept in the
state dir with the pids, logs and kubeconfig. Progress goes to stderr; stdout
carries only the two export lines, so `eval "$(python -m devcluster.cluster up)"`
works.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from devcluster import build

CONTEXT = "gitops-run-local"
NODE = "gitops-run-node"
REPO = Path(__file__).resolve().parents[1]
# The label kwok's stages leave alone: bucket-server pods get their status
# from runtime.py, which runs the real server behind them.
BUCKET_IMAGE_REPO = "minio"
ECHO_IMAGE_REPO = "gitops-run-echo"     # runtime.py's second image (devcluster/echo.py)
# The Flux controllers, each with the prefix of its metrics and health ports.
FLUX = {"source-controller": "sc", "kustomize-controller": "kc", "helm-controller": "hc"}


DEVELOPER = "developer"
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
- level: Metadata
  users: ["developer"]
- level: None
"""


def default_state_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(xdg) / "kubectl-gitops-run" / "dev-cluster"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class State:
    dir: Path
    ports: dict = field(default_factory=dict)
    pids: dict = field(default_factory=dict)
    token: str = ""

    @property
    def file(self) -> Path:
        return self.dir / "state.json"

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def path_dir(self) -> Path:
        """What `export PATH` adds: kubectl and the plugin, side by side."""
        return self.dir / "bin"

    def save(self) -> None:
        self.file.write_text(json.dumps(
            {"ports": self.ports, "pids": self.pids, "token": self.token}, indent=1))

    @classmethod
    def load(cls, d: Path) -> "State":
        st = cls(d)
        if st.file.exists():
            data = json.loads(st.file.read_text())
            st.ports, st.pids, st.token = data["ports"], data["pids"], data["token"]
        return st


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie of ours still answers kill(0); it is not running.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


class Cluster:
    def __init__(self, state_dir: Path | None = None):
        self.state = State.load(Path(state_dir or default_state_dir()))
        self.bin = build.bin_dir()
        self.share = build.share_dir()

    # --- helpers -----------------------------------------------------------

    @property
    def d(self) -> Path:
        return self.state.dir

    def _api(self) -> str:
        return f"https://127.0.0.1:{self.state.ports['apiserver']}"

    def env(self) -> dict:
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.state.kubeconfig)
        env["PATH"] = f"{self.state.path_dir}:{env.get('PATH', '')}"
        return env

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        proc = subprocess.run([str(self.bin / "kubectl"), "--kubeconfig", str(self.state.kubeconfig),
                               *args], input=input, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def _spawn(self, name: str, argv: list[str], env: dict | None = None) -> None:
        logf = open(self.d / "logs" / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env or os.environ.copy(), cwd=self.d, start_new_session=True)
        self.state.pids[name] = proc.pid
        self.state.save()

    def _wait(self, what: str, check, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            for name, pid in self.state.pids.items():
                if not alive(pid):
                    tail = (self.d / "logs" / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{name} exited while waiting for {what}; its log ends:\n{tail}")
            try:
                if check():
                    return
            except Exception as e:  # noqa: BLE001 - keep polling; report the last failure
                last = e
            time.sleep(0.2)
        raise RuntimeError(f"timed out waiting for {what}: {last}")

    def _http_ok(self, url: str, token: str | None = None) -> bool:
        req = urllib.request.Request(url)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        ctx = ssl._create_unverified_context()  # readiness probe of our own loopback server
        try:
            with urllib.request.urlopen(req, timeout=2, context=ctx) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    # --- lifecycle ---------------------------------------------------------

    def running(self) -> bool:
        pids = self.state.pids
        return bool(pids) and all(alive(p) for p in pids.values()) and \
            self._http_ok(self._api() + "/readyz", self.state.token)

    def up(self) -> float:
        if self.running():
            log(f"reusing the running cluster in {self.d}")
            return 0.0
        if self.state.pids:
            self.down(quiet=True)
        missing = build.missing()
        if missing:
            raise RuntimeError(f"programs not built ({', '.join(missing)}): run `make e2e-bins`")
        started = time.monotonic()
        shutil.rmtree(self.d, ignore_errors=True)
        for sub in ("logs", "pki", "etcd", "flux-storage", "pods", "bin"):
            (self.d / sub).mkdir(parents=True, exist_ok=True)
        self.state = State(self.d)
        names = ["etcd-client", "etcd-peer", "apiserver", "kcm", "scheduler", "kwok",
                 "sc-storage", "proxy"]
        names += [f"{short}-{kind}" for short in FLUX.values() for kind in ("metrics", "health")]
        self.state.ports = {n: free_port() for n in names}
        self.state.token = secrets.token_hex(24)
        self.state.save()
        try:
            self._pki()
            self._start_etcd()
            self._start_apiserver()
            self._start_controllers()
            self._start_kwok()
            self._start_flux()
            self._start_runtime()
            self._link_path()
        except BaseException:
            self.down(quiet=True)
            raise
        return time.monotonic() - started

    def _pki(self) -> None:
        pki = self.d / "pki"
        subprocess.run(["openssl", "genrsa", "-out", str(pki / "sa.key"), "2048"],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "rsa", "-in", str(pki / "sa.key"), "-pubout",
                        "-out", str(pki / "sa.pub")], check=True, capture_output=True)
        (pki / "tokens.csv").write_text(
            f'{self.state.token},admin,admin,"system:masters"\n'
            f'{self.developer_token},{DEVELOPER},{DEVELOPER},"system:masters"\n')
        # Requests of the developer user alone are audited: the benchmarks count
        # what a command costs the API server without the controllers' traffic.
        (pki / "audit-policy.yaml").write_text(AUDIT_POLICY)

    def _start_etcd(self) -> None:
        p = self.state.ports
        client, peer = f"http://127.0.0.1:{p['etcd-client']}", f"http://127.0.0.1:{p['etcd-peer']}"
        self._spawn("etcd", [
            str(self.bin / "etcd"), "--name=default", f"--data-dir={self.d / 'etcd'}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}", "--unsafe-no-fsync", "--log-level=warn"])
        self._wait("etcd", lambda: self._http_ok(f"{client}/health"))

    def _start_apiserver(self) -> None:
        p, pki = self.state.ports, self.d / "pki"
        self._spawn("kube-apiserver", [
            str(self.bin / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{p['etcd-client']}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={p['apiserver']}", f"--cert-dir={pki}",
            f"--token-auth-file={pki / 'tokens.csv'}", "--authorization-mode=Node,RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16", "--allow-privileged=true",
            "--kubelet-preferred-address-types=InternalIP", "--profiling=false",
            "--enable-priority-and-fairness=false", "--v=0",
            f"--audit-policy-file={pki / 'audit-policy.yaml'}",
            f"--audit-log-path={self.audit_log}", "--audit-log-maxsize=100",
            "--audit-log-maxbackup=1"])
        self._wait("kube-apiserver", lambda: self._http_ok(self._api() + "/readyz", self.state.token),
                   timeout=120)
        self._write_kubeconfig()

    @property
    def developer_token(self) -> str:
        return self.state.token + "-dev"

    @property
    def audit_log(self) -> Path:
        """One JSON line per request of the developer user (see AUDIT_POLICY)."""
        return self.d / "logs" / "audit.log"

    def _write_kubeconfig(self, path: Path | None = None, user: str = "admin",
                          token: str | None = None) -> Path:
        ca = (self.d / "pki" / "apiserver.crt").read_bytes()
        import base64
        cfg = {
            "apiVersion": "v1", "kind": "Config", "current-context": CONTEXT,
            "clusters": [{"name": CONTEXT, "cluster": {
                "server": self._api(),
                "certificate-authority-data": base64.b64encode(ca).decode()}}],
            "users": [{"name": user, "user": {"token": token or self.state.token}}],
            "contexts": [{"name": CONTEXT, "context": {
                "cluster": CONTEXT, "user": user, "namespace": "default"}}],
        }
        path = path or self.state.kubeconfig
        path.write_text(yaml.safe_dump(cfg))
        path.chmod(0o600)
        return path

    def developer_kubeconfig(self) -> Path:
        """A kubeconfig of a cluster-admin whose every request is audited."""
        return self._write_kubeconfig(self.d / "kubeconfig-developer", DEVELOPER,
                                      self.developer_token)

    def _start_controllers(self) -> None:
        p, pki, kc = self.state.ports, self.d / "pki", str(self.state.kubeconfig)
        self._spawn("kube-controller-manager", [
            str(self.bin / "kube-controller-manager"), f"--kubeconfig={kc}",
            "--bind-address=127.0.0.1", f"--secure-port={p['kcm']}", "--leader-elect=false",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'apiserver.crt'}", "--use-service-account-credentials=false",
            "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller",
            "--concurrent-deployment-syncs=5", "--v=0"])
        self._spawn("kube-scheduler", [
            str(self.bin / "kube-scheduler"), f"--kubeconfig={kc}", "--leader-elect=false",
            "--bind-address=127.0.0.1", f"--secure-port={p['scheduler']}", "--v=0"])

    def _stage_config(self) -> Path:
        """kwok's stock stages, with pod readiness withheld from bucket-server
        and echo pods: runtime.py reports their status from the real server."""
        stages = self.share / "kwok-stages"
        docs = []
        for rel in ("node/fast/node-initialize.yaml",
                    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
                    "pod/fast/pod-ready.yaml", "pod/fast/pod-complete.yaml",
                    "pod/fast/pod-delete.yaml"):
            doc = yaml.safe_load((stages / rel).read_text())
            if doc["metadata"]["name"] == "pod-ready":
                doc["spec"]["selector"]["matchExpressions"].append({
                    "key": '.spec.containers.[0].image | split(":") | .[0] | split("/") | last',
                    "operator": "NotIn", "values": [BUCKET_IMAGE_REPO, ECHO_IMAGE_REPO]})
            docs.append(doc)
        out = self.d / "kwok-stages.yaml"
        out.write_text(yaml.safe_dump_all(docs))
        return out

    def _start_kwok(self) -> None:
        p = self.state.ports
        self.kubectl("apply", "--server-side", "-f", str(self.share / "kwok-crds"))
        self.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                     "-f", str(self.share / "kwok-crds"))
        config = self._stage_config()
        self._spawn("kwok", [
            str(self.bin / "kwok"), f"--kubeconfig={self.state.kubeconfig}",
            f"--config={config}", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--server-address=127.0.0.1:{p['kwok']}", "--node-ip=127.0.0.1",
            f"--node-port={p['kwok']}", "--cidr=10.0.0.1/24", "--enable-crds=PortForward",
            # renew the node's Lease: without it the node goes NotReady after 40 s, and
            # kwok's re-initialisation then leaves it without addresses (no port-forward)
            "--node-lease-duration-seconds=40"])
        node = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": NODE, "annotations": {"kwok.x-k8s.io/node": "fake"},
                         "labels": {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux",
                                    "kubernetes.io/arch": "amd64", "type": "kwok"}},
            "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "250",
                                       "ephemeral-storage": "500Gi"},
                       "capacity": {"cpu": "32", "memory": "256Gi", "pods": "250",
                                    "ephemeral-storage": "500Gi"}},
        }
        self.kubectl("apply", "-f", "-", input=json.dumps(node))

        def node_ready() -> bool:
            out = self.kubectl("get", "node", NODE, "-o",
                               "jsonpath={.status.conditions[?(@.type=='Ready')].status}", check=False)
            return out.strip() == "True"
        self._wait("the kwok node to be Ready", node_ready)

    def _start_flux(self) -> None:
        p = self.state.ports
        self.kubectl("apply", "--server-side", "-f", str(self.share / "crds"))
        # a controller that starts before its kinds are served exits at once
        self.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                     "-f", str(self.share / "crds"))
        self.kubectl("create", "namespace", "flux-system", check=False)
        env = dict(os.environ, KUBECONFIG=str(self.state.kubeconfig), RUNTIME_NAMESPACE="flux-system")
        # Bucket endpoints name in-cluster Services: source-controller reaches
        # them through runtime.py's proxy (loopback itself is never proxied).
        proxied = dict(env, HTTP_PROXY=f"http://127.0.0.1:{p['proxy']}", NO_PROXY="127.0.0.1,localhost")
        proxied.pop("HTTPS_PROXY", None)
        self._spawn_flux("source-controller", [
            f"--storage-addr=127.0.0.1:{p['sc-storage']}",
            f"--storage-adv-addr=127.0.0.1:{p['sc-storage']}",
            f"--storage-path={self.d / 'flux-storage'}"], proxied)
        # The other two fetch artifacts (and helm-controller its charts) from the
        # URLs source-controller advertises: its --storage-adv-addr on loopback.
        self._spawn_flux("kustomize-controller", [], env)
        self._spawn_flux("helm-controller", [], env)
        for name, short in FLUX.items():
            port = p[f"{short}-health"]
            self._wait(name, lambda port=port: self._http_ok(f"http://127.0.0.1:{port}/readyz"))

    def _spawn_flux(self, name: str, args: list[str], env: dict) -> None:
        p, short = self.state.ports, FLUX[name]
        self._spawn(name, [
            str(self.bin / name), "--watch-all-namespaces",
            f"--metrics-addr=127.0.0.1:{p[short + '-metrics']}",
            f"--health-addr=127.0.0.1:{p[short + '-health']}",
            *args, "--events-addr=", "--log-level=info"], env)

    def _start_runtime(self) -> None:
        p = self.state.ports
        ready = self.d / "runtime.ready"
        self._spawn("bucket-runtime", [
            sys.executable, "-m", "devcluster.runtime", f"--kubeconfig={self.state.kubeconfig}",
            f"--proxy-port={p['proxy']}", f"--minio={self.bin / 'minio'}",
            f"--pods-dir={self.d / 'pods'}", f"--ready-file={ready}"],
            dict(os.environ, PYTHONPATH=str(REPO)))
        self._wait("the bucket-server runtime", ready.exists)

    def _link_path(self) -> None:
        """One directory for PATH: kubectl and the plugin of this checkout's venv."""
        pd = self.state.path_dir
        (pd / "kubectl").symlink_to(self.bin / "kubectl")
        for name in ("kubectl-gitops_run",):
            src = Path(sys.executable).parent / name
            if src.exists():
                (pd / name).symlink_to(src)
        completer = REPO / "completions" / "kubectl_complete-gitops_run"
        if completer.exists():
            (pd / completer.name).symlink_to(completer)

    def down(self, quiet: bool = False) -> list[str]:
        stopped = []
        # Reverse start order: the runtime stops its MinIO processes itself.
        for name, pid in reversed(list(self.state.pids.items())):
            if not alive(pid):
                continue
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            stopped.append(name)
        deadline = time.monotonic() + 15
        for name, pid in self.state.pids.items():
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if alive(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for pid in self.state.pids.values():
            try:  # the whole group: nothing a component started may outlive it
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.state.pids = {}
        if self.d.exists():
            self.state.save()
        if not quiet:
            log(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        return stopped


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m devcluster.cluster", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["up", "down", "status"])
    ap.add_argument("--state-dir", type=Path, default=None)
    args = ap.parse_args(argv)
    c = Cluster(args.state_dir)
    try:
        if args.command == "up":
            took = c.up()
            if took:
                log(f"cluster ready in {took:.1f}s (context {CONTEXT}, state in {c.d})")
            print(f"export KUBECONFIG={c.state.kubeconfig}")
            print(f"export PATH={c.state.path_dir}:$PATH")
        elif args.command == "down":
            c.down()
        else:
            ok = c.running()
            log("running" if ok else "not running")
            return 0 if ok else 1
    except RuntimeError as e:
        log(f"error: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
