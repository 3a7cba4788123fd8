"""Bad inputs end to end (issue 12, "Bad inputs"): one table of cases across the
command line, directory contents, cluster states and the environment, run as a
user runs the plugin, against the real control plane.

Every case must end with the exit status it expects (2 for usage), one
`error: ` line that names the problem and the way out (its `want` substrings),
no traceback and no hang (each run is bounded in time), and nothing lost: a
session it touches keeps its last good revision (the Bucket's revision
annotation and what Flux applied), and the local tree is left as it was.
A few inputs must not fail at all (key files are left out with a notice, an
unwritable cache is only a hint): those cases expect exit 0 and their notice.

A full run writes docs/reliability.md: every case and its outcome.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import secrets
import shutil
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import yaml

from devcluster.cluster import Cluster, free_port
from tests.e2e.conftest import run_plugin
from tests.e2e.test_plugin import HELLO, get
from tests.e2e.test_rbac import ROLE, user_kubeconfig

REPO = Path(__file__).resolve().parents[2]
RELIABILITY = REPO / "docs" / "reliability.md"
# a process without these capabilities is held to file permissions, as a user is
NO_ROOT_FILES = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search")
AS_NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
SESSION = "s"                       # the session that session cases start first
CHANGED = "Changed by a sync that must not land"


@dataclass(frozen=True)
class Case:
    id: str
    category: str               # cli, directory, cluster or environment
    input: str                  # what is bad, as people say it
    args: tuple                 # the plugin's arguments; {app} {dir} {src} {tmp} {ns} {kc}
    want: tuple = ()            # in the error line (or, for code 0, on the output)
    code: int = 1               # expected exit status
    prepare: Callable | None = None     # (World) -> None: make the bad input
    session: bool = False       # start session `s` from {app} before `prepare`
    keeps: str = "all"          # what a session must keep: all, applied or nothing
    timeout: float = 60         # seconds the whole run may take
    xfail: str = ""             # why the product cannot pass yet: the file and the fix
    cwd: str = ""


@dataclass
class World:
    """One case's surroundings: its namespace, its trees, how the plugin runs."""
    cluster: object
    kubectl: Callable
    ns: str
    tmp: Path
    request: object
    env: dict = field(default_factory=dict)
    prefix: tuple = ()
    values: dict = field(default_factory=dict)
    has_session: bool = False       # session s exists: it must keep its last revision
    cleanups: list = field(default_factory=list)
    src: Path = field(init=False)   # every tree a case reads: hashed before and after
    app: Path = field(init=False)   # examples/hello, the session's source

    def __post_init__(self):
        self.src = self.tmp / "src"
        self.app = self.src / "app"

    def fill(self, arg: str) -> str:
        for key, value in self.values.items():
            arg = arg.replace("{" + key + "}", str(value))
        return arg

    def run(self, args, timeout: float, cwd: str | None = None):
        args = [self.fill(a) for a in args]
        if not self.prefix:
            cluster = dataclasses.replace(self.cluster, env=self.env)
            return run_plugin(cluster, *args, cwd=cwd, timeout=timeout)
        exe = shutil.which("kubectl-gitops_run", path=str(Path(sys.executable).parent))
        return subprocess.run([*self.prefix, exe, *args], cwd=cwd, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def start_session(self, source: Path, kubeconfig: Path | None = None) -> None:
        args = ["up", str(source), "--name", SESSION, "--timeout", "60s"]
        if kubeconfig:
            args += ["--kubeconfig", str(kubeconfig)]
        res = self.run(args, timeout=120)
        assert res.returncode == 0, f"starting the session: {res.stderr}"
        self.has_session = True

    def state(self) -> dict:
        """What the cluster holds of the session: the published revision and
        what Flux applied of it."""
        bucket = get(self.kubectl, "bucket", f"gitops-run-{SESSION}", self.ns) or {}
        notes = (bucket.get("metadata") or {}).get("annotations") or {}
        cm = get(self.kubectl, "configmap", "hello", self.ns) or {}
        return {"revision": notes.get("kubectl-gitops-run.io/revision"),
                "applied": cm.get("data")}


# -- making bad inputs --------------------------------------------------------------

def tree(spec: dict, at: str = "d", hello: bool = True) -> Callable:
    """A source directory {src}/<at>: examples/hello (unless not `hello`) plus
    `spec`, name -> text, bytes, or a function that makes the path."""
    def prepare(w: World) -> None:
        root = w.src / at
        root.mkdir(parents=True, exist_ok=True)
        if hello:
            for f in HELLO.iterdir():
                shutil.copy(f, root / f.name)
        for rel, content in spec.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if callable(content):
                content(path)
            elif isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
    return prepare


def into_app(spec: dict) -> Callable:
    """The session's own tree, with a change waiting and `spec` added."""
    return both(pending_change, tree(spec, at="app", hello=False))


def both(*prepares: Callable) -> Callable:
    def prepare(w: World) -> None:
        for p in prepares:
            p(w)
    return prepare


def pending_change(w: World) -> None:
    """A change that a failed sync must not publish."""
    cm = w.app / "configmap.yaml"
    cm.write_text(cm.read_text().replace("Hello from kubectl gitops-run", CHANGED))


def unreadable(text: str) -> Callable:
    def make(path: Path) -> None:
        path.write_text(text)
        path.chmod(0)
    return make


def unreadable_dir(path: Path) -> None:
    path.mkdir()
    (path / "x.yaml").write_text("a: b\n")
    path.chmod(0)


def symlink(target: str) -> Callable:
    return lambda path: path.symlink_to(target)


def deep_tree(w: World, levels: int = 2100) -> None:
    """{dir} with directories nested deeper than a path can name (each made
    relative to the one above); removed bottom up afterwards, as
    shutil.rmtree, pytest's too, recurses and would fail on it."""
    tree({})(w)
    top = w.src / "d" / "deep"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY)
    try:
        for _ in range(levels):
            os.mkdir("dd", dir_fd=fd)
            fd, old = os.open("dd", os.O_RDONLY, dir_fd=fd), fd
            os.close(old)
        os.close(os.open("x.yaml", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    finally:
        os.close(fd)
    w.cleanups.append(lambda: remove_deep(top))


def remove_deep(top: Path) -> None:
    fd, depth = os.open(top, os.O_RDONLY), 0
    while "dd" in os.listdir(fd):
        fd, old = os.open("dd", os.O_RDONLY, dir_fd=fd), fd
        os.close(old)
        depth += 1
    os.unlink("x.yaml", dir_fd=fd)
    for _ in range(depth):
        fd, old = os.open("..", os.O_RDONLY, dir_fd=fd), fd
        os.close(old)
        os.rmdir("dd", dir_fd=fd)
    os.close(fd)
    top.rmdir()


def odd_name(w: World) -> None:
    tree({})(w)
    with open(os.path.join(os.fsencode(w.src / "d"), b"\xff\xfe.yaml"), "w") as f:
        f.write("a: b\n")


def no_root(w: World) -> None:
    """File permissions hold for the plugin, as they do for a user."""
    w.prefix = NO_ROOT_FILES


def env(**changes) -> Callable:
    """Set (or, with None, unset) environment variables; values are filled in."""
    def prepare(w: World) -> None:
        for key, value in changes.items():
            if value is None:
                w.env.pop(key, None)
            else:
                w.env[key] = w.fill(value)
    return prepare


def read_only_cache(w: World) -> None:
    cache = w.tmp / "read-only-cache"
    cache.mkdir(mode=0o555)
    w.env["XDG_CACHE_HOME"] = str(cache)
    w.prefix = NO_ROOT_FILES


def nobody_without_home(w: World) -> None:
    """No HOME and no KUBECONFIG, as a user whose home has no kubeconfig either."""
    for key in ("HOME", "KUBECONFIG"):
        w.env.pop(key, None)
    w.prefix = AS_NOBODY


def kubeconfig(change: Callable | str) -> Callable:
    """A kubeconfig {kc}: the test's own with `change(cfg)` made, or this text."""
    def prepare(w: World) -> None:
        path = w.tmp / "kubeconfig-case"
        if isinstance(change, str):
            path.write_text(change)
        else:
            cfg = yaml.safe_load(Path(w.env["KUBECONFIG"]).read_text())
            change(cfg, w)
            path.write_text(yaml.safe_dump(cfg))
        w.values["kc"] = path
    return prepare


def user(**fields) -> Callable:
    def change(cfg: dict, w: World) -> None:
        cfg["users"][0]["user"] = fields
    return change


def exec_plugin(command: str, *args: str) -> Callable:
    return user(exec={"apiVersion": "client.authentication.k8s.io/v1", "command": command,
                      "args": list(args), "interactiveMode": "Never"})


def server(url: str) -> Callable:
    def change(cfg: dict, w: World) -> None:
        cfg["clusters"][0]["cluster"]["server"] = w.fill(url)
    return change


def context_field(**fields) -> Callable:
    def change(cfg: dict, w: World) -> None:
        ctx = cfg["contexts"][0]
        for key, value in fields.items():
            if key == "name":
                ctx["name"] = cfg["current-context"] = value
            else:
                ctx["context"][key] = value
    return change


def current_context(name: str) -> Callable:
    def change(cfg: dict, w: World) -> None:
        cfg["current-context"] = name
    return change


def foreign_ca(cfg: dict, w: World) -> None:
    """A certificate authority that did not sign the API server's certificate."""
    key, crt = w.tmp / "ca.key", w.tmp / "ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=someone-else", "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True)
    import base64
    cfg["clusters"][0]["cluster"]["certificate-authority-data"] = \
        base64.b64encode(crt.read_bytes()).decode()


def bad_server(mode: str) -> Callable:
    """A TCP server {port} that misbehaves: closes, resets, never answers, or
    speaks plain HTTP; and a kubeconfig {kc} pointing at it over https."""
    def prepare(w: World) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        stop = threading.Event()
        threading.Thread(target=_serve, args=(sock, mode, stop), daemon=True).start()
        w.cleanups.append(lambda: (stop.set(), sock.close()))
        w.values["port"] = sock.getsockname()[1]
        kubeconfig(server("https://127.0.0.1:{port}"))(w)
    return prepare


def _serve(sock: socket.socket, mode: str, stop: threading.Event) -> None:
    held = []
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except OSError:
            break
        if mode == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif mode == "hang":
            held.append(conn)           # accepted, never answered
            continue
        elif mode == "http":
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        conn.close()
    for conn in held:
        conn.close()


def bare_apiserver(w: World) -> None:
    w.values["kc"] = w.request.getfixturevalue("bare_apiserver")


def quota(**hard) -> Callable:
    def prepare(w: World) -> None:
        limits = ",".join(f"{k.replace('__', '/').replace('_', '.')}={v}"
                          for k, v in hard.items())
        w.kubectl("create", "quota", "q", "-n", w.ns, f"--hard={limits}")
    return prepare


def terminating_namespace(w: World) -> None:
    """A namespace stuck being deleted: a finalizer nobody removes holds it."""
    ns = f"{w.ns}-t"
    w.kubectl("create", "namespace", ns)
    w.kubectl("create", "configmap", "blocker", "-n", ns)
    w.kubectl("patch", "configmap", "blocker", "-n", ns, "--type=merge",
              "-p", '{"metadata":{"finalizers":["example.com/block"]}}')
    w.kubectl("delete", "namespace", ns, "--wait=false")
    w.cleanups.append(lambda: w.kubectl(
        "patch", "configmap", "blocker", "-n", ns, "--type=merge",
        "-p", '{"metadata":{"finalizers":null}}', check=False))


def patch(kind: str, body: dict, resume: dict | None = None) -> Callable:
    """Patch one of session s's objects; `resume` undoes it after the case."""
    def prepare(w: World) -> None:
        name = f"gitops-run-{SESSION}"
        w.kubectl("patch", kind, name, "-n", w.ns, "--type=merge", "-p", json.dumps(body))
        if resume:
            w.cleanups.append(lambda: w.kubectl("patch", kind, name, "-n", w.ns, "--type=merge",
                                                "-p", json.dumps(resume), check=False))
    return prepare


def kubectl_does(*args: str) -> Callable:
    def prepare(w: World) -> None:
        w.kubectl(*[w.fill(a) for a in args])
    return prepare


def held_lease(w: World) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": f"gitops-run-{SESSION}-sync", "namespace": w.ns},
             "spec": {"holderIdentity": "alice@elsewhere pid 4242", "leaseDurationSeconds": 3600,
                      "acquireTime": now, "renewTime": now}}
    w.kubectl("apply", "-f", "-", input=json.dumps(lease))


def foreign_secret(w: World) -> None:
    w.kubectl("create", "secret", "generic", "gitops-run-x", "-n", w.ns, "--from-literal=a=b")


def move_away(w: World) -> None:
    w.app.rename(w.src / "app.moved")


def empty_app(w: World) -> None:
    moved = w.src / "moved-out"
    moved.mkdir()
    for f in w.app.iterdir():
        f.rename(moved / f.name)


def home_is(path: str) -> Callable:
    return env(HOME=path)


# -- the RBAC cases: the published Role without one rule ----------------------------

# (resource, API group, verb, the command that needs it): every verb the plugin
# uses, found by removing each rule of docs/rbac-role.yaml in turn
USED = (
    [("secrets", "", v, "up") for v in ("get", "create", "patch")]
    + [("services", "", v, "up") for v in ("get", "create", "patch")]
    + [("serviceaccounts", "", v, "up") for v in ("create", "patch")]
    + [("deployments", "apps", v, "up") for v in ("get", "create", "patch")]
    + [("networkpolicies", "networking.k8s.io", v, "up") for v in ("create", "patch")]
    + [(r, "rbac.authorization.k8s.io", v, "up") for r in ("roles", "rolebindings")
       for v in ("create", "patch")]
    + [("pods", "", "list", "up"), ("pods/portforward", "", "get", "up"),
       ("pods/portforward", "", "create", "up")]
    + [("leases", "coordination.k8s.io", v, "up") for v in ("get", "create")]
    + [("buckets", "source.toolkit.fluxcd.io", v, "up") for v in ("get", "create", "patch")]
    + [("kustomizations", "kustomize.toolkit.fluxcd.io", v, "up")
       for v in ("get", "create", "patch")]
    + [(r, g, "list", "ls") for r, g in (("services", ""), ("deployments", "apps"),
                                         ("buckets", "source.toolkit.fluxcd.io"),
                                         ("kustomizations", "kustomize.toolkit.fluxcd.io"))]
    + [("leases", "coordination.k8s.io", "update", "sync")]
    + [("helmreleases", "helm.toolkit.fluxcd.io", v, "up-chart")
       for v in ("get", "create", "patch")]
    + [("helmreleases", "helm.toolkit.fluxcd.io", "delete", "down-chart")]
    + [("secrets", "", "update", "up-chart")]   # Helm's records, as the session applies
    + [(r, g, "get", "down") for r, g in (("serviceaccounts", ""),
                                          ("networkpolicies", "networking.k8s.io"),
                                          ("roles", "rbac.authorization.k8s.io"),
                                          ("rolebindings", "rbac.authorization.k8s.io"))]
    + [(r, g, "delete", "down") for r, g in (
        ("kustomizations", "kustomize.toolkit.fluxcd.io"), ("buckets", "source.toolkit.fluxcd.io"),
        ("deployments", "apps"), ("services", ""), ("networkpolicies", "networking.k8s.io"),
        ("secrets", ""), ("leases", "coordination.k8s.io"),
        ("rolebindings", "rbac.authorization.k8s.io"), ("roles", "rbac.authorization.k8s.io"),
        ("serviceaccounts", ""))]
)
RBAC_ARGS = {
    "up": ("up", "{src}/cm", "--name", SESSION, "--kubeconfig", "{kc}", "--timeout", "20s"),
    "up-chart": ("up", "{src}/chart", "--name", SESSION, "--kubeconfig", "{kc}",
                 "--timeout", "20s"),
    "ls": ("ls", "--kubeconfig", "{kc}"),
    "sync": ("sync", SESSION, "--kubeconfig", "{kc}", "--timeout", "20s"),
    "down": ("down", SESSION, "--kubeconfig", "{kc}", "--timeout", "20s"),
}
RBAC_ARGS["down-chart"] = RBAC_ARGS["down"]
RBAC_WANT = {   # a right the session's applier lacks: Flux says so, and what to do
    ("secrets", "update"): ('cannot update resource "secrets"',
                            "ask for them, or pass --service-account")}
CHART = {"Chart.yaml": "apiVersion: v2\nname: hello\nversion: 0.1.0\n",
         "values.yaml": "greeting: Hello from kubectl gitops-run\n",
         "templates/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello\n"
                                     "data:\n  greeting: {{ .Values.greeting | quote }}\n"}
APP_RULE = {"apiGroups": [""], "resources": ["configmaps"],    # what the test app needs
            "verbs": ["get", "list", "watch", "create", "patch", "delete"]}


def user_role() -> dict:
    role = yaml.safe_load(ROLE.read_text())
    role["rules"].append(APP_RULE)
    return role


def without(role: dict, resource: str, verb: str) -> dict:
    """`role` less one verb on one resource (the other rules stay as they are)."""
    out = copy.deepcopy(role)
    rules = []
    for rule in out["rules"]:
        if resource not in rule["resources"] or verb not in rule["verbs"]:
            rules.append(rule)
            continue
        others = [r for r in rule["resources"] if r != resource]
        if others:
            rules.append({**rule, "resources": others})
        verbs = [v for v in rule["verbs"] if v != verb]
        if verbs:
            rules.append({**rule, "resources": [resource], "verbs": verbs})
    out["rules"] = rules
    return out


def restricted(resource: str, group: str, verb: str, command: str) -> Callable:
    """A ServiceAccount {kc} bound to the published Role (and what the apps
    {src}/cm and {src}/chart need); for sync and down it starts the session
    first. Then the Role loses `verb` on `resource`."""
    def prepare(w: World) -> None:
        role = user_role()
        w.values["kc"] = kc = user_kubeconfig(w.cluster, w.kubectl, w.ns, w.tmp, role)
        tree({"configmap.yaml": (HELLO / "configmap.yaml").read_text()}, at="cm",
             hello=False)(w)
        tree(CHART, at="chart", hello=False)(w)
        if command in ("sync", "down", "down-chart"):
            source = w.src / ("chart" if command == "down-chart" else "cm")
            w.start_session(source, kubeconfig=kc)
            cm = w.src / "cm" / "configmap.yaml"
            cm.write_text(cm.read_text().replace("Hello from kubectl gitops-run", CHANGED))
        w.kubectl("apply", "-n", w.ns, "-f", "-", input=json.dumps(without(role, resource, verb)))
        who = f"--as=system:serviceaccount:{w.ns}:dev"
        target = f"{resource}.{group}" if group else resource
        for _ in range(100):    # the authorizer sees a Role change a moment later
            if w.kubectl("auth", "can-i", verb, target, "-n", w.ns, who,
                         check=False).strip() == "no":
                break
            time.sleep(0.1)
    return prepare


def rbac_cases() -> list[Case]:
    cases = []
    for resource, group, verb, command in USED:
        name = resource.replace("/", "-")
        cases.append(Case(
            f"403-{command}-{verb}-{name}", "cluster",
            f"`{command.replace('-chart', ' CHART')}` as a user whose Role lacks {verb} on "
            f"{resource}", RBAC_ARGS[command],
            RBAC_WANT.get((resource, verb),
                          (f'resources ["{resource}"]', f'"{verb}"', "ask for a Role rule")),
            prepare=restricted(resource, group, verb, command),
            keeps="nothing" if command.startswith("down") else "all", timeout=90))
    return cases


# -- the table --------------------------------------------------------------------

def usage(id: str, input: str, args: tuple, *want: str, **kw) -> Case:
    return Case(id, "cli", input, args, want, code=2, **kw)


UP = ("up", "{app}")
HELP = "--help"                    # "; see `kubectl gitops-run ... --help`"
NAME_RULE = "at most 52 lower-case letters"
NS_RULE = "at most 63 lower-case letters"
LONG = "a" * 64

CLI = [
    usage("unknown-flag", "`up --bogus`", UP + ("--bogus",), "No such option '--bogus'", HELP),
    usage("unknown-flag-before-command", "`--bogus ls`", ("--bogus", "ls"), "--bogus", HELP),
    usage("unknown-short-flag", "`ls -x`", ("ls", "-x"), "No such option '-x'", HELP),
    usage("unknown-command", "`frobnicate`", ("frobnicate",), "No such command 'frobnicate'",
          HELP),
    usage("extra-argument", "`up DIR extra`", UP + ("extra",), "unexpected extra argument",
          HELP),
    usage("flag-without-value", "`ls -o` with nothing after it", ("ls", "-o"),
          "'-o' requires an argument", HELP),
    usage("duration-unit", "`--timeout 5x`", UP + ("--timeout", "5x"),
          "invalid duration '5x'", "use e.g. 90s"),
    usage("duration-negative", "`sync --timeout -5s`", ("sync", "s", "--timeout", "-5s"),
          "invalid duration '-5s'", "use e.g. 90s"),
    usage("duration-days", "`down --timeout 1d`", ("down", "s", "--timeout", "1d"),
          "invalid duration '1d'", "use e.g. 90s"),
    usage("duration-empty", "`--timeout ''`", UP + ("--timeout", ""), "invalid duration ''",
          "use e.g. 90s"),
    usage("duration-spaced", "`--timeout '1h 30m'`", UP + ("--timeout", "1h 30m"),
          "invalid duration '1h 30m'", "use e.g. 90s"),
    usage("size-words", "`--max-file-size ten`", UP + ("--max-file-size", "ten"),
          "invalid size 'ten'", "use e.g. 10Mi"),
    usage("size-fraction", "`sync --max-file-size 1.5Mi`",
          ("sync", "s", "--max-file-size", "1.5Mi"), "invalid size '1.5Mi'", "use e.g. 10Mi"),
    usage("size-unit", "`--max-file-size 10Ti`", UP + ("--max-file-size", "10Ti"),
          "invalid size '10Ti'", "use e.g. 10Mi"),
    usage("size-negative", "`--max-file-size -1`", UP + ("--max-file-size", "-1"),
          "invalid size '-1'", "use e.g. 10Mi"),
    usage("namespace-space", "`ls -n 'a b'`", ("ls", "-n", "a b"),
          "invalid namespace 'a b' for -n", NS_RULE),
    usage("namespace-space-before-command", "`-n 'a b' ls`", ("-n", "a b", "ls"),
          "invalid namespace 'a b' for -n", NS_RULE),
    usage("namespace-upper-case", "`up -n Dev`", UP + ("-n", "Dev"), "invalid namespace 'Dev'",
          NS_RULE),
    usage("namespace-too-long", "`ls -n` with 64 characters", ("ls", "-n", LONG),
          f"invalid namespace '{LONG}'", NS_RULE),
    usage("namespace-path", "`ls -n kube-system/secrets` (a path in a URL)",
          ("ls", "-n", "kube-system/secrets"), "invalid namespace 'kube-system/secrets'", NS_RULE),
    usage("namespace-dot-dot", "`down s -n ..`", ("down", "s", "-n", ".."),
          "invalid namespace '..'", NS_RULE),
    usage("namespace-newline", "`ls -n $'dev\\n'`", ("ls", "-n", "dev\n"),
          "invalid namespace 'dev\\n'", NS_RULE),
    usage("namespace-empty", "`ls -n ''`", ("ls", "-n", ""), "invalid namespace ''", NS_RULE),
    usage("name-newline", "`up --name $'abc\\n'`", UP + ("--name", "abc\n"),
          "invalid session name 'abc\\n'", NAME_RULE),
    usage("name-upper-case", "`up --name Web`", UP + ("--name", "Web"),
          "invalid session name 'Web'", NAME_RULE),
    usage("name-too-long", "`up --name` with 53 characters", UP + ("--name", "a" * 53),
          "invalid session name", NAME_RULE),
    usage("name-leading-digit", "`up --name 1web`", UP + ("--name", "1web"),
          "invalid session name '1web'", NAME_RULE),
    usage("name-path", "`up --name ../x`", UP + ("--name", "../x"),
          "invalid session name '../x'", NAME_RULE),
    usage("name-empty", "`up --name ''`", UP + ("--name", ""), "invalid session name ''",
          NAME_RULE),
    usage("name-unicode", "`up --name café`", UP + ("--name", "café"),
          "invalid session name 'café'", NAME_RULE),
    usage("down-nothing", "`down` with no names", ("down",),
          "name the sessions to remove, or pass --all"),
    usage("down-names-and-all", "`down s --all`", ("down", "s", "--all"),
          "name the sessions to remove, or pass --all"),
    usage("down-name-space", "`down 'x y'`", ("down", "x y"), "invalid session name 'x y'",
          NAME_RULE),
    usage("down-name-path", "`down ../kube-system`", ("down", "../kube-system"),
          "invalid session name '../kube-system'", NAME_RULE),
    usage("sync-name-path", "`sync a/b`", ("sync", "a/b"), "invalid session name 'a/b'",
          NAME_RULE),
    usage("path-absolute", "`up --path /etc`", UP + ("--path", "/etc"),
          "--path '/etc' must be a directory inside DIR", "e.g. --path deploy"),
    usage("path-parent", "`up --path ../..`", UP + ("--path", "../.."),
          "--path '../..' must be a directory inside DIR", "e.g. --path deploy"),
    usage("path-climbs-back", "`up --path deploy/../../etc`", UP + ("--path", "deploy/../../etc"),
          "must be a directory inside DIR", "e.g. --path deploy"),
    usage("path-missing", "`up --path nope`", UP + ("--path", "nope"),
          "--path 'nope' is not a directory inside"),
    usage("path-is-a-file", "`up --path configmap.yaml`", UP + ("--path", "configmap.yaml"),
          "--path 'configmap.yaml' is not a directory inside"),
    usage("target-namespace-space", "`up --target-namespace 'a b'`",
          UP + ("--target-namespace", "a b"), "invalid namespace 'a b' for --target-namespace",
          NS_RULE),
    usage("target-namespace-upper-case", "`up --target-namespace Prod`",
          UP + ("--target-namespace", "Prod"), "invalid namespace 'Prod' for --target-namespace",
          NS_RULE),
    usage("flux-namespace-underscore", "`up --flux-namespace flux_system`",
          UP + ("--flux-namespace", "flux_system"), "for --flux-namespace", NS_RULE),
    usage("service-account-space", "`up --service-account 'a b'`",
          UP + ("--service-account", "a b"), "invalid name 'a b' for --service-account",
          "use lower-case letters"),
    usage("output-unknown", "`ls -o xml`", ("ls", "-o", "xml"), "'xml' is not one of",
          "'wide', 'json', 'yaml', 'name'"),
    usage("sync-output-yaml", "`sync -o yaml` (json only)", ("sync", "s", "-o", "yaml"),
          "'yaml' is not 'json'"),
    usage("selector-operator", "`ls -l ===`", ("ls", "-l", "==="),
          "invalid label selector '===' for -l", "e.g. -l app=web"),
    usage("selector-unclosed", "`ls -l 'tier in (web'`", ("ls", "-l", "tier in (web"),
          "invalid label selector 'tier in (web'", "e.g. -l app=web"),
    usage("selector-key-space", "`ls -l 'a b=c'`", ("ls", "-l", "a b=c"),
          "invalid label selector 'a b=c'", "e.g. -l app=web"),
    usage("completion-shell", "`completion tcsh`", ("completion", "tcsh"),
          "'tcsh' is not one of 'bash', 'zsh', 'fish'"),
    usage("kubeconfig-flag-directory", "`ls --kubeconfig DIR`", ("ls", "--kubeconfig", "{tmp}"),
          "is a directory"),
    Case("sync-unknown-session", "cli", "`sync nope`: no such session", ("sync", "nope"),
         ("session 'nope' not found", "it has no sessions", "kubectl gitops-run up")),
    Case("sync-outside-any-session", "cli", "`sync` from a directory no session holds",
         ("sync",), ("no session in namespace", "pass a session NAME or start one with `up`"),
         cwd="{src}"),
    Case("sync-dir-missing", "cli", "`sync s --dir MISSING --force`",
         ("sync", SESSION, "--dir", "{src}/absent", "--force", "--timeout", "20s"),
         ("absent does not exist",), session=True, prepare=pending_change),
]

UP_D = ("up", "{dir}", "--timeout", "30s")
SYNC = ("sync", SESSION, "--timeout", "20s")
HELLO_YAML = {f.name: f.read_text() for f in HELLO.iterdir()}
KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
       "-----END OPENSSH PRIVATE KEY-----\n")
NOT_AN_OBJECT = "replicas: 3\nimage: web\n"
DUPLICATE = HELLO_YAML["configmap.yaml"]

DIRECTORY = [
    Case("dir-missing", "directory", "DIR does not exist", ("up", "{src}/absent"),
         ("absent does not exist",)),
    Case("dir-is-a-file", "directory", "DIR is a file", ("up", "{app}/configmap.yaml"),
         ("is a file",), code=2),
    Case("dir-empty", "directory", "an empty DIR", UP_D, ("has no files to sync",),
         prepare=tree({}, hello=False)),
    Case("dir-all-ignored", "directory", "a .sourceignore that leaves nothing", UP_D,
         ("has no files to sync", ".sourceignore"), prepare=tree({".sourceignore": "*\n"})),
    Case("dir-only-git", "directory", "only a .git directory", UP_D, ("has no files to sync",),
         prepare=tree({".git/config": "[core]\n"}, hello=False)),
    Case("dir-only-keys", "directory", "only key material (.env)", UP_D,
         ("has no files to sync", "--include-secrets"),
         prepare=tree({".env": "TOKEN=1\n"}, hello=False)),
    Case("yaml-invalid", "directory", "invalid YAML", UP_D,
         ("broken.yaml: invalid YAML at line 2",), prepare=tree({"broken.yaml": "a: [x\n"})),
    Case("yaml-invalid-nested", "directory", "invalid YAML three directories down", UP_D,
         ("a/b/c/x.yml: invalid YAML",), prepare=tree({"a/b/c/x.yml": "a: b: c\n"})),
    Case("yaml-tab-indent", "directory", "YAML indented with a tab", UP_D,
         ("tab.yaml: invalid YAML",), prepare=tree({"tab.yaml": "a:\n\tb: c\n"})),
    Case("yaml-not-utf8", "directory", "YAML in Latin-1", UP_D,
         ("latin.yaml: not valid UTF-8 at line 2", "YAML files must be UTF-8"),
         prepare=tree({"latin.yaml": b"a: b\nc: caf\xe9\n"})),
    Case("yaml-utf16", "directory", "YAML in UTF-16", UP_D,
         ("wide.yaml: not valid UTF-8", "YAML files must be UTF-8"),
         prepare=tree({"wide.yaml": "a: b\n".encode("utf-16")})),
    Case("yaml-deep", "directory", "YAML nested 100,000 levels deep", UP_D,
         ("deep.yaml: invalid YAML", "nesting depth"),
         prepare=tree({"deep.yaml": "a: " + "[" * 100_000 + "]" * 100_000 + "\n"})),
    Case("yaml-not-an-object", "directory", "a YAML file that is not a Kubernetes object", UP_D,
         ("values.yaml", "kustomize-controller would fail"),
         prepare=tree({"values.yaml": NOT_AN_OBJECT})),
    Case("yaml-duplicate-object", "directory", "two files define one object", UP_D,
         ("both define",), prepare=tree({"copy.yaml": DUPLICATE})),
    Case("kustomization-outside", "directory", "a kustomization.yaml that refers outside DIR",
         UP_D, ("outside the uploaded directory",),
         prepare=tree({"kustomization.yaml": "resources: [../secret.yaml]\n"})),
    Case("kustomization-missing-file", "directory", "a kustomization.yaml naming a missing file",
         UP_D, ("refers to gone.yaml", "not in the upload"),
         prepare=tree({"kustomization.yaml": "resources: [gone.yaml]\n"})),
    Case("file-too-large", "directory", "a file over --max-file-size", UP_D + (
         "--max-file-size", "1Ki"), ("blob.bin is", "--max-file-size", ".sourceignore"),
         prepare=tree({"blob.bin": b"\0" * 4096})),
    Case("max-file-size-zero", "directory", "`--max-file-size 0`", UP_D + (
         "--max-file-size", "0"), ("over the 0 B limit", "--max-file-size"), prepare=tree({})),
    Case("file-unreadable", "directory", "a file the user may not read", UP_D,
         ("secret.yaml: permission denied", "fix its permissions, or list it in .sourceignore"),
         prepare=both(tree({"secret.yaml": unreadable("a: b\n")}), no_root)),
    Case("dir-unreadable", "directory", "a sub-directory the user may not read", UP_D,
         ("cannot read directory locked", " in .sourceignore"),
         prepare=both(tree({"locked": unreadable_dir}), no_root)),
    Case("dir-too-deep", "directory", "directories nested deeper than PATH_MAX", UP_D,
         ("File name too long", " in .sourceignore"), prepare=deep_tree),
    Case("file-name-not-utf8", "directory", "a file name that is not UTF-8", UP_D,
         ("file name is not valid UTF-8", "rename"), prepare=odd_name),
    Case("ignore-file-huge", "directory", "a 2 MB .gitignore", UP_D,
         (".gitignore is larger than 1.0 MiB", "the limit for an ignore file"),
         prepare=tree({".gitignore": "x" * 2_000_000})),
    Case("source-is-root", "directory", "`up /`", ("up", "/"),
         ("refusing to sync /", "root of the file system", "pass the directory that holds")),
    Case("source-is-home", "directory", "`up $HOME`", ("up", "{app}"),
         ("refusing to sync", "your home directory", "pass the directory that holds"),
         prepare=home_is("{app}")),
    Case("ignore-fifo", "directory", "a FIFO as .gitignore (must not hang)",
         UP_D + ("--name", "fifo"), ("session fifo ready",), code=0,
         prepare=tree({".gitignore": os.mkfifo})),
    Case("ignore-dev-zero", "directory", ".gitignore symlinked to /dev/zero (must not exhaust "
         "memory)", UP_D + ("--name", "zero"), ("session zero ready",), code=0,
         prepare=tree({".gitignore": symlink("/dev/zero")})),
    Case("ignore-pathological", "directory", "the pattern *a*a*a*a*a*a*a*a*a*a*a*a*a*b and a "
         "long name (must not backtrack)", UP_D + ("--name", "patho"), ("session patho ready",),
         code=0, prepare=tree({".gitignore": "*a*a*a*a*a*a*a*a*a*a*a*a*a*b\n",
                               "a" * 200 + ".txt": "x\n"})),
    Case("ignore-malformed", "directory", "malformed patterns ([, [z-a], a lone \\)",
         UP_D + ("--name", "pats"), ("session pats ready",), code=0,
         prepare=tree({".gitignore": "[\n[z-a]\n\\\n!\n"})),
    Case("symlinks-odd", "directory", "symlink loop, dangling link, link out of DIR",
         UP_D + ("--name", "links"), ("session links ready", "3 files"), code=0,
         prepare=tree({"loop-a": symlink("loop-b"), "loop-b": symlink("loop-a"),
                       "dangling.yaml": symlink("gone.yaml"), "passwd": symlink("/etc/passwd")})),
    Case("keys-by-name", "directory", "key material: .env and id_rsa (left out, with a notice)",
         UP_D + ("--name", "keys"), ("may hold keys", ".env", "id_rsa", "--include-secrets",
                                     "3 files"), code=0,
         prepare=tree({".env": "TOKEN=1\n", "id_rsa": KEY})),
    Case("keys-by-content", "directory", "a private key in notes.txt (left out, with a notice)",
         UP_D + ("--name", "keyed"), ("may hold keys", "notes.txt", "--include-secrets"), code=0,
         prepare=tree({"notes.txt": KEY})),
    Case("sync-invalid-yaml", "directory", "`sync` with invalid YAML", SYNC,
         ("broken.yaml: invalid YAML",), session=True, prepare=into_app({"broken.yaml": "a: [\n"})),
    Case("sync-file-too-large", "directory", "`sync` with a file over --max-file-size",
         SYNC + ("--max-file-size", "1Ki"), ("big.bin is", "--max-file-size"), session=True,
         prepare=into_app({"big.bin": b"\0" * 4096})),
    Case("sync-unreadable", "directory", "`sync` with a file the user may not read", SYNC,
         ("locked.yaml: permission denied", ".sourceignore"), session=True,
         prepare=both(into_app({"locked.yaml": unreadable("a: b\n")}), no_root)),
    Case("sync-not-utf8", "directory", "`sync` with YAML in Latin-1", SYNC,
         ("latin.yaml: not valid UTF-8",), session=True,
         prepare=into_app({"latin.yaml": b"a: caf\xe9\n"})),
    Case("sync-not-an-object", "directory", "`sync` with a YAML file that is no object", SYNC,
         ("values.yaml", "kustomize-controller would fail"), session=True,
         prepare=into_app({"values.yaml": NOT_AN_OBJECT})),
    Case("sync-source-gone", "directory", "`sync` after the source directory was moved", SYNC,
         ("app does not exist",), session=True, prepare=both(pending_change, move_away)),
    Case("sync-source-emptied", "directory", "`sync` of an emptied source (must not prune)",
         SYNC, ("has no files to sync",), session=True, prepare=empty_app),
]

UP_APP = ("up", "{app}", "--name", "a", "--timeout", "20s")
KC = ("--kubeconfig", "{kc}")
BAD_IMAGE = "quay.io/minio/minio:RELEASE.1999-01-01T00-00-00Z"
BROKEN_CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\ndata:\n  n: 1\n"
WIDGET = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n"
EXTRA_CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  a: b\n"
KUBECONFIG_FIX = "--kubeconfig"

CLUSTER = [
    Case("flux-not-installed", "cluster", "an API server without Flux's CRDs", UP + KC,
         ("Flux is not installed", "flux install"), prepare=bare_apiserver),
    Case("namespace-missing", "cluster", "`-n` names a namespace that does not exist",
         UP + ("-n", "{ns}-absent"), ("namespace '{ns}-absent' not found",
                                      "kubectl create namespace")),
    Case("namespace-terminating", "cluster", "the namespace is being deleted",
         UP_APP + ("-n", "{ns}-t"), ("being deleted", "pick another with -n"),
         prepare=terminating_namespace),
    Case("quota-pods", "cluster", "a ResourceQuota of pods: 0", UP_APP, ("exceeded quota",),
         prepare=quota(pods=0)),
    Case("quota-deployments", "cluster", "a ResourceQuota of count/deployments.apps: 0",
         UP_APP, ("exceeded quota", "raise the quota"), prepare=quota(count__deployments_apps=0)),
    Case("quota-secrets", "cluster", "a ResourceQuota of count/secrets: 0", UP_APP,
         ("exceeded quota", "raise the quota"), prepare=quota(count__secrets=0)),
    Case("quota-on-sync", "cluster", "`sync` adds a ConfigMap past a count/configmaps quota",
         SYNC, ("exceeded quota", "raise the quota"), session=True, keeps="applied",
         prepare=both(into_app({"extra.yaml": EXTRA_CM}), quota(count__configmaps=1))),
    Case("flux-rejects-manifest", "cluster", "`sync` of an object the API server rejects", SYNC,
         ("Flux could not apply revision", "broken", "fix"), session=True, keeps="applied",
         prepare=into_app({"broken.yaml": BROKEN_CM})),
    Case("flux-unknown-kind", "cluster", "`sync` of a kind the cluster does not know", SYNC,
         ("Flux could not apply revision", "Widget", "fix"), session=True, keeps="applied",
         prepare=into_app({"widget.yaml": WIDGET})),
    Case("source-controller-stopped", "cluster", "source-controller does not act on the "
         "session (its Bucket suspended)", SYNC, ("is suspended", "flux resume source bucket"),
         session=True, prepare=both(pending_change, patch(
             "bucket", {"spec": {"suspend": True}}, {"spec": {"suspend": False}}))),
    Case("kustomize-controller-stopped", "cluster", "kustomize-controller does not act on the "
         "session (its Kustomization suspended)", SYNC,
         ("Flux will not apply", "is suspended", "flux resume kustomization"), session=True,
         keeps="applied", prepare=both(pending_change, patch(
             "kustomization", {"spec": {"suspend": True}}, {"spec": {"suspend": False}}))),
    Case("bucket-unreachable-by-flux", "cluster", "source-controller cannot reach the bucket "
         "server (Bucket endpoint 127.0.0.1:1)", SYNC,
         ("connection refused", "kubectl gitops-run up"), session=True, timeout=90,
         prepare=both(pending_change, patch("bucket", {"spec": {"endpoint": "127.0.0.1:1"}}))),
    Case("bucket-deleted", "cluster", "the session's Bucket was deleted", SYNC,
         ("has no Flux Bucket", "kubectl gitops-run up"), session=True, keeps="applied",
         prepare=both(pending_change, kubectl_does("delete", "bucket", "gitops-run-s", "-n",
                                                   "{ns}"))),
    Case("credentials-deleted", "cluster", "the session's credentials Secret was deleted", SYNC,
         ("credentials Secret", "kubectl gitops-run up"), session=True,
         prepare=both(pending_change, kubectl_does("delete", "secret", "gitops-run-s", "-n",
                                                   "{ns}"))),
    Case("bucket-server-scaled-down", "cluster", "the bucket server scaled to 0", SYNC,
         ("no bucket-server pod", "kubectl get deployment gitops-run-s"), session=True,
         prepare=both(pending_change, kubectl_does("scale", "deployment", "gitops-run-s",
                                                   "--replicas=0", "-n", "{ns}"))),
    Case("lease-held", "cluster", "another shell holds the session's sync Lease",
         SYNC[:2] + ("--timeout", "3s"), ("another sync of session 's' is running",
                                          "alice@elsewhere", "expires"), session=True,
         prepare=both(pending_change, held_lease)),
    Case("takeover-refused", "cluster", "`up` of another directory under a session's name",
         ("up", "{dir}", "--name", SESSION, "--timeout", "20s"),
         ("belongs to", "pass --force"), session=True, prepare=both(pending_change, tree({}))),
    Case("sync-other-dir-refused", "cluster", "`sync --dir` of another directory",
         SYNC + ("--dir", "{dir}"), ("belongs to", "pass --force"), session=True,
         prepare=both(pending_change, tree({}))),
    Case("name-taken-by-others", "cluster", "a Secret gitops-run-x that is not ours",
         ("up", "{app}", "--name", "x", "--timeout", "20s"),
         ("is not part of session 'x'", "choose another --name"), prepare=foreign_secret),
    Case("bucket-image-missing", "cluster", "`--bucket-image` that cannot be pulled",
         UP_APP + ("--bucket-image", BAD_IMAGE), ("is not Ready", "check --bucket-image"),
         timeout=90),
    Case("api-unreachable", "cluster", "an API server URL nobody listens on", UP + KC,
         ("cannot reach the Kubernetes API server", "is the cluster running?"),
         prepare=kubeconfig(server("https://127.0.0.1:1"))),
    Case("api-unreachable-sync", "cluster", "`sync` while the API server is unreachable",
         ("sync", SESSION) + KC, ("cannot reach the Kubernetes API server",
                                  "is the cluster running?"), session=True,
         prepare=both(pending_change, kubeconfig(server("https://127.0.0.1:1")))),
    Case("api-closes-connections", "cluster", "a server that closes every connection",
         ("sync", SESSION) + KC, ("cannot reach the Kubernetes API server",),
         session=True, prepare=both(pending_change, bad_server("close"))),
    Case("api-resets-connections", "cluster", "a server that resets every connection",
         UP + KC, ("cannot reach the Kubernetes API server", "is the cluster running?"),
         prepare=bad_server("reset")),
    Case("api-never-answers", "cluster", "a server that accepts and never answers", UP + KC,
         ("timed out waiting for an answer", "try again"), prepare=bad_server("hang")),
    Case("api-speaks-http", "cluster", "plain HTTP behind an https:// server URL",
         ("ls",) + KC, ("TLS failure", "check the TLS settings"), prepare=bad_server("http")),
]

ENVIRONMENT = [
    Case("no-kubeconfig", "environment", "no KUBECONFIG and no ~/.kube/config", ("ls",),
         ("no kubeconfig found", "pass --kubeconfig, set KUBECONFIG"),
         prepare=env(KUBECONFIG=None, HOME="{tmp}")),
    Case("no-home-no-kubeconfig", "environment", "neither HOME nor KUBECONFIG set", ("ls",),
         ("no kubeconfig found", "pass --kubeconfig, set KUBECONFIG"),
         prepare=nobody_without_home),
    Case("no-home", "environment", "HOME unset (KUBECONFIG set): `up` still works",
         ("up", "{app}", "--name", "nohome", "--timeout", "30s"), ("session nohome ready",),
         code=0, prepare=env(HOME=None)),
    Case("cache-read-only", "environment", "XDG_CACHE_HOME is a read-only directory (the "
         "digest cache is only a hint)", ("up", "{app}", "--name", "rocache", "--timeout", "30s"),
         ("session rocache ready",), code=0, prepare=read_only_cache),
    Case("kubeconfig-env-directory", "environment", "KUBECONFIG names a directory", ("ls",),
         ("no kubeconfig found", "pass --kubeconfig"), prepare=env(KUBECONFIG="{tmp}")),
    Case("kubeconfig-garbage", "environment", "a kubeconfig that is not YAML", ("ls",) + KC,
         ("cannot use the kubeconfig", KUBECONFIG_FIX), prepare=kubeconfig("{{{ not: [yaml")),
    Case("kubeconfig-empty", "environment", "an empty kubeconfig file", ("ls",) + KC,
         ("cannot use the kubeconfig", KUBECONFIG_FIX), prepare=kubeconfig("")),
    Case("kubeconfig-a-list", "environment", "a kubeconfig that is a YAML list", ("ls",) + KC,
         ("cannot use the kubeconfig", "not a kubeconfig", KUBECONFIG_FIX),
         prepare=kubeconfig("- a\n- b\n")),
    Case("context-missing", "environment", "current-context names a context that is not there",
         ("ls",) + KC, ("context 'gone' not found", "--context"),
         prepare=kubeconfig(current_context("gone"))),
    Case("context-flag-missing", "environment", "`--context nope`", ("ls", "--context", "nope"),
         ("context 'nope' not found in the kubeconfig", "contexts: gitops-run-local")),
    Case("context-namespace-invalid", "environment", "the context's namespace is 'Bad NS'",
         ("ls",) + KC, ("'Bad NS'", "fix the kubeconfig, or pass -n"),
         prepare=kubeconfig(context_field(namespace="Bad NS"))),
    Case("context-not-local", "environment", "`up` in a context that is not a local cluster",
         UP + KC, ("does not look like a local cluster", "--allow-context prod"),
         prepare=kubeconfig(context_field(name="prod"))),
    Case("token-rejected", "environment", "a token the API server rejects", ("ls",) + KC,
         ("unauthorized", "log in again"), prepare=kubeconfig(user(token="wrong"))),
    Case("ca-foreign", "environment", "a certificate-authority that did not sign the server",
         ("ls",) + KC, ("TLS failure", "certificate-authority"), prepare=kubeconfig(foreign_ca)),
    Case("exec-plugin-missing", "environment", "an exec credential plugin that is not installed",
         ("ls",) + KC, ("credential plugin '/nonexistent/kubelogin'", "log in again"),
         prepare=kubeconfig(exec_plugin("/nonexistent/kubelogin"))),
    Case("exec-plugin-fails", "environment", "an exec credential plugin that exits 1",
         ("ls",) + KC, ("credential plugin 'sh'", "token expired", "log in again"),
         prepare=kubeconfig(exec_plugin("sh", "-c", "echo token expired >&2; exit 1"))),
    Case("exec-plugin-garbage", "environment", "an exec credential plugin that prints no JSON",
         ("ls",) + KC, ("credential plugin 'sh'", "decode", "log in again"),
         prepare=kubeconfig(exec_plugin("sh", "-c", "echo not-json"))),
    Case("exec-plugin-hangs", "environment", "an exec credential plugin that never returns",
         ("ls",) + KC, ("credential plugin 'sleep'",), timeout=20,
         prepare=kubeconfig(exec_plugin("sleep", "600"))),
]

CASES = CLI + DIRECTORY + CLUSTER + ENVIRONMENT + rbac_cases()
assert len({c.id for c in CASES}) == len(CASES) >= 80, "ids must be unique"


# -- fixtures -----------------------------------------------------------------------

class BareCluster(Cluster):
    """etcd and kube-apiserver alone, from the dev cluster's code: an API server
    that serves no Flux API."""

    def start(self) -> None:
        for sub in ("logs", "pki", "etcd"):
            (self.d / sub).mkdir(parents=True, exist_ok=True)
        self.state.ports = {n: free_port() for n in ("etcd-client", "etcd-peer", "apiserver")}
        self.state.token = secrets.token_hex(24)
        self.state.save()
        try:
            for step in (self._pki, self._start_etcd, self._start_apiserver):
                step()
        except BaseException:
            self.down(quiet=True)
            raise


@pytest.fixture(scope="module")
def bare_apiserver(cluster, tmp_path_factory):
    """A second API server, started without Flux's CRDs (`cluster` built its programs)."""
    bare = BareCluster(tmp_path_factory.mktemp("bare-apiserver"))
    bare.start()
    try:
        yield bare.state.kubeconfig
    finally:
        bare.down(quiet=True)


@pytest.fixture
def world(cluster, kubectl, namespace, tmp_path, request):
    """The case's namespace as its kubeconfig's default, and {app}: examples/hello."""
    cfg = yaml.safe_load(cluster.kubeconfig.read_text())
    for ctx in cfg["contexts"]:
        ctx["context"]["namespace"] = namespace
    kc = tmp_path / "kubeconfig"
    kc.write_text(yaml.safe_dump(cfg))
    kc.chmod(0o600)
    w = World(cluster, kubectl, namespace, tmp_path, request,
              env={**cluster.env, "KUBECONFIG": str(kc)})
    shutil.copytree(HELLO, w.app)
    w.values.update(app=w.app, dir=w.src / "d", src=w.src, tmp=tmp_path, ns=namespace)
    try:
        yield w
    finally:
        for undo in reversed(w.cleanups):
            undo()


@dataclass
class Row:
    case: Case
    outcome: str = "not run"
    seen: str = ""


class Table:
    """The outcome of every case, for docs/reliability.md."""

    def __init__(self):
        self.rows: dict[str, Row] = {}

    def row(self, case: Case) -> Row:
        self.rows[case.id] = row = Row(case)
        return row

    def complete(self) -> bool:
        return set(self.rows) == {c.id for c in CASES}

    def markdown(self) -> str:
        rows = [self.rows[c.id] for c in CASES]
        counts = {o: sum(r.outcome == o for r in rows) for o in ("pass", "xfail", "fail")}
        kinds = ", ".join(f"{sum(c.category == k for c in CASES)} {k}"
                          for k in ("cli", "directory", "cluster", "environment"))
        lines = [HEADER.format(date=time.strftime("%Y-%m-%d"), total=len(rows), kinds=kinds,
                               **counts),
                 "| id | category | input | expected | outcome | error line seen |",
                 "| --- | --- | --- | --- | --- | --- |"]
        for r in rows:
            outcome = f"xfail: {r.case.xfail}" if r.outcome == "xfail" else r.outcome
            cells = (f"`{r.case.id}`", r.case.category, r.case.input, expectation(r.case),
                     outcome, _shorten(r.seen))
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        return "\n".join(lines) + "\n"


HEADER = """\
# Reliability: bad inputs

Generated by `tests/e2e/test_bad_inputs.py` on {date}; a run of the whole table
rewrites it (do not edit it by hand). Each case runs the installed plugin, as a
user does, against the local control plane, and expects: its exit status (2 for
usage; 0 where the input must be tolerated), one `error: ` line that names the
problem and the way out (the phrases under "expected"), no traceback, no hang
(every run is bounded in time), and no lost data: a session the case touches
keeps its last good revision (the Bucket's revision annotation and what Flux
applied), and the local tree is byte for byte as it was.

{total} cases ({kinds}):
{pass} pass, {xfail} xfail (a known gap; the reason names the file to fix), {fail} fail.
"""


def expectation(case: Case) -> str:
    said = ", ".join(f"“{w}”" for w in case.want)
    text = (f"exit 0; says {said}" if case.code == 0 else
            f"exit {case.code}; one error line with {said}" if said else f"exit {case.code}")
    if case.session and case.keeps == "all":
        text += "; session keeps its revision"
    elif case.session and case.keeps == "applied":
        text += "; what Flux applied stays"
    return text


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _shorten(text: str, most: int = 400) -> str:
    return text if len(text) <= most else text[:most - 1] + "…"


@pytest.fixture(scope="session")
def reliability():
    table = Table()
    yield table
    if table.complete():       # a partial run (-k, -x, an interrupt) leaves the document be
        RELIABILITY.write_text(table.markdown())


# -- the test ---------------------------------------------------------------------

def digest(root: Path) -> str:
    """The local tree as it is: names, types, modes, times and contents (links
    are not followed); without recursion, as a tree may be deeper than a path."""
    h = hashlib.sha256()
    stack = [os.fsencode(root)]
    while stack:
        directory = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as e:
            h.update(b"%s unreadable %d\n" % (directory[-200:], e.errno))
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as e:        # deeper than a path can name
                h.update(b"%s %d\n" % (entry.name, e.errno))
                continue
            h.update(b"%s %o %d %d\n" % (entry.name, st.st_mode, st.st_size, st.st_mtime_ns))
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(entry.path))
            elif stat.S_ISDIR(st.st_mode):
                stack.append(entry.path)
            elif stat.S_ISREG(st.st_mode):
                with open(entry.path, "rb") as f:
                    h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def run_case(w: World, case: Case, row: Row) -> subprocess.CompletedProcess:
    cwd = w.fill(case.cwd) if case.cwd else None
    try:
        res = w.run(case.args, timeout=case.timeout, cwd=cwd)
    except subprocess.TimeoutExpired:
        row.seen = f"(nothing after {case.timeout:g}s: it hangs)"
        raise AssertionError(row.seen) from None
    lines = res.stderr.strip().splitlines()
    if case.code == 0:
        said = [line for line in lines if not line.startswith("waiting for")]
        seen = " ⏎ ".join(said) or (res.stdout.strip().splitlines() or [""])[-1]
    else:
        seen = " ⏎ ".join(lines) or f"(exit {res.returncode}, nothing on stderr)"
    # the same words from run to run: no temporary paths, no random namespaces
    row.seen = seen.replace(str(w.tmp), "<tmp>").replace(w.ns, "<ns>")
    return res


def check_said(w: World, case: Case, res: subprocess.CompletedProcess) -> None:
    """Exit status, one error line that says what `case.want` says, no traceback."""
    assert "Traceback" not in res.stdout + res.stderr, res.stderr
    want = [w.fill(s) for s in case.want]
    lines = res.stderr.strip().splitlines()
    if case.code == 0:
        assert res.returncode == 0, f"exit {res.returncode}: {res.stderr}"
        assert not [line for line in lines if line.startswith("error")], res.stderr
        said = res.stdout + res.stderr
    else:
        assert res.returncode == case.code, f"exit {res.returncode}, not {case.code}: " \
                                            f"{res.stderr}"
        assert len(lines) == 1 and lines[0].startswith("error: "), \
            f"not one error line: {res.stderr!r}"
        said = lines[0]
    missing = [s for s in want if s not in said]
    assert not missing, f"does not say {missing}: {said}"


def check_kept(w: World, case: Case, tree_before: str, cluster_before: dict | None) -> None:
    """Nothing lost: the local tree as it was, and the session's last good revision."""
    assert digest(w.src) == tree_before, "the local tree changed"
    if cluster_before is None or case.keeps == "nothing":
        return
    after = w.state()
    kept = ("revision", "applied") if case.keeps == "all" else ("applied",)
    for key in kept:
        assert after[key] == cluster_before[key], \
            f"the session's {key} changed: {cluster_before[key]} -> {after[key]}"


def _param(case: Case):
    marks = [pytest.mark.xfail(reason=case.xfail, strict=False)] if case.xfail else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input(case: Case, world: World, reliability: Table):
    row = reliability.row(case)
    try:
        if case.session:
            world.start_session(world.app)
        if case.prepare:
            case.prepare(world)
        tree_before = digest(world.src)
        cluster_before = world.state() if world.has_session else None
        if cluster_before is not None:      # the session applied its first revision
            assert cluster_before["revision"] is not None or case.keeps != "all"
            assert "Hello from" in json.dumps(cluster_before["applied"])
        res = run_case(world, case, row)
        check_said(world, case, res)
        check_kept(world, case, tree_before, cluster_before)
    except BaseException:
        row.outcome = "xfail" if case.xfail else "fail"
        raise
    row.outcome = "pass"

