"""The Kubernetes access module without an API server: its failures in words,
its credential plugins, how little of `kubernetes` it imports, and its HTTP
retries (against a local stand-in that only replays HTTP answers)."""
from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kubectl_gitops_run.adapters import kube
from kubectl_gitops_run.errors import ApiError, UserError

REPO = Path(__file__).resolve().parents[3]


def test_root_cause_unwraps_reasons_and_causes():
    class Wrapper(Exception):
        def __init__(self, text, reason):
            super().__init__(text)
            self.reason = reason
    inner = ConnectionRefusedError("[Errno 111] Connection refused")
    assert kube._root_cause(Wrapper("Max retries exceeded", inner)) == str(inner)
    try:
        try:
            raise inner
        except OSError as e:
            raise RuntimeError("wrapped") from e
    except RuntimeError as outer:
        assert kube._root_cause(Wrapper("retries", outer)) == str(inner)
    assert kube._root_cause(ValueError("plain")) == "plain"


# -- what a path names, and the RBAC verb of a request ------------------------------------

@pytest.mark.parametrize("url, expected", [
    ("/api/v1/namespaces/dev/pods/p", ("", "pods", "dev", "p")),
    ("/api/v1/namespaces/dev/pods/p/portforward", ("", "pods/portforward", "dev", "p")),
    ("/api/v1/namespaces/dev/secrets", ("", "secrets", "dev", None)),
    ("/api/v1/namespaces/dev", ("", "namespaces", None, "dev")),
    ("/api/v1/namespaces", ("", "namespaces", None, None)),
    ("/api/v1/pods?labelSelector=a%3Db", ("", "pods", None, None)),
    ("/apis/source.toolkit.fluxcd.io/v1/namespaces/dev/buckets/b",
     ("source.toolkit.fluxcd.io", "buckets", "dev", "b")),
    ("/apis/coordination.k8s.io/v1/namespaces/dev/leases",
     ("coordination.k8s.io", "leases", "dev", None)),
    ("/apis/source.toolkit.fluxcd.io/v1", ("source.toolkit.fluxcd.io", "", None, None)),
    ("/version", ("", "", None, None)),
])
def test_target(url, expected):
    assert tuple(kube.target(url)) == expected


@pytest.mark.parametrize("method, url, watch, verb", [
    ("GET", "/api/v1/namespaces/dev/pods/p", False, "get"),
    ("GET", "/api/v1/namespaces/dev/pods", False, "list"),
    ("GET", "/api/v1/namespaces/dev/pods", True, "watch"),
    ("POST", "/api/v1/namespaces/dev/pods", False, "create"),
    ("PUT", "/apis/coordination.k8s.io/v1/namespaces/dev/leases/l", False, "update"),
    ("PATCH", "/apis/source.toolkit.fluxcd.io/v1/namespaces/dev/buckets/b", False, "patch"),
    ("DELETE", "/api/v1/namespaces/dev/secrets/s", False, "delete"),
    ("DELETE", "/api/v1/namespaces/dev/secrets", False, "deletecollection"),
])
def test_rbac_verb(method, url, watch, verb):
    assert kube.rbac_verb(method, url, watch) == verb


# -- every failure worded once ----------------------------------------------------------

BUCKET = "/apis/source.toolkit.fluxcd.io/v1/namespaces/dev/buckets/web"
LEASE = "/apis/coordination.k8s.io/v1/namespaces/dev/leases/gitops-run-web-sync"


def test_explain_401():
    line = kube.explain(401, "Unauthorized", "get", BUCKET, context="prod")
    assert line == ("unauthorized: the API server of context 'prod' rejected our credentials "
                    "(Unauthorized); log in again or check the user of the context in the "
                    "kubeconfig")


def test_explain_403_names_verb_resource_namespace_and_the_role_rule():
    message = ('buckets.source.toolkit.fluxcd.io "web" is forbidden: User "x" cannot patch '
               'resource "buckets" in API group "source.toolkit.fluxcd.io" in the namespace "dev"')
    assert kube.explain(403, message, "patch", BUCKET) == (
        'forbidden: user "x" cannot patch buckets.source.toolkit.fluxcd.io in namespace "dev"; '
        'ask for a Role rule: apiGroups ["source.toolkit.fluxcd.io"], resources ["buckets"], '
        'verbs ["patch"]')


def test_explain_403_asks_for_the_verb_the_api_server_checked_and_ours():
    # a server-side apply that creates the object is authorized as `create` too
    message = ('leases.coordination.k8s.io is forbidden: User "system:serviceaccount:dev:ci" '
               'cannot create resource "leases" in API group "coordination.k8s.io" in the '
               'namespace "dev"')
    line = kube.explain(403, message, "patch", LEASE)
    assert line == ('forbidden: user "system:serviceaccount:dev:ci" cannot create '
                    'leases.coordination.k8s.io in namespace "dev"; ask for a Role rule: apiGroups '
                    '["coordination.k8s.io"], resources ["leases"], verbs ["create", "patch"]')


def test_explain_403_of_a_tunnel():
    # a websocket tunnel is a GET that needs `create` as well; its second check says
    # no more than "forbidden"
    url = "/api/v1/namespaces/dev/pods/p/portforward"
    message = ('pods "p" is forbidden: User "dev" cannot get resource "pods/portforward" in API '
               'group "" in the namespace "dev"')
    assert kube.explain(403, message, "create", url) == (
        'forbidden: user "dev" cannot get pods/portforward in namespace "dev"; ask for a Role '
        'rule: apiGroups [""], resources ["pods/portforward"], verbs ["get", "create"]')
    assert kube.explain(403, 'pods "p" is forbidden: ', "create", url) == (
        'forbidden: cannot create pods/portforward in namespace "dev"; ask for a Role rule: '
        'apiGroups [""], resources ["pods/portforward"], verbs ["create"]')


def test_explain_403_core_group_subresource_and_cluster_scope():
    message = ('pods "p" is forbidden: User "dev" cannot create resource "pods/portforward" in '
               'API group "" in the namespace "dev"')
    assert kube.explain(403, message, "create", "/api/v1/namespaces/dev/pods/p/portforward") == (
        'forbidden: user "dev" cannot create pods/portforward in namespace "dev"; ask for a Role '
        'rule: apiGroups [""], resources ["pods/portforward"], verbs ["create"]')
    message = ('namespaces is forbidden: User "dev" cannot list resource "namespaces" in API '
               'group "" at the cluster scope')
    assert kube.explain(403, message, "list", "/api/v1/namespaces") == (
        'forbidden: user "dev" cannot list namespaces at the cluster scope; ask for a '
        'ClusterRole rule: apiGroups [""], resources ["namespaces"], verbs ["list"]')


def test_explain_403_that_is_not_rbac_says_what_the_server_said():
    message = ("unable to create new content in namespace dev because it is being terminated")
    assert kube.explain(403, message, "create", "/api/v1/namespaces/dev/secrets") == (
        f'forbidden: cannot create secrets in namespace "dev": {message}')


def test_explain_403_of_a_quota_says_the_way_out():
    message = ('secrets "gitops-run-a" is forbidden: exceeded quota: q, requested: '
               'count/secrets=1, used: count/secrets=0, limited: count/secrets=0')
    assert kube.explain(403, message, "patch", "/api/v1/namespaces/dev/secrets/gitops-run-a") == (
        f'forbidden: cannot patch secrets "gitops-run-a" in namespace "dev": {message}; free '
        f"some of what quota 'q' counts, or ask an admin to raise the quota (see `kubectl "
        f"describe resourcequota q -n dev`)")
    assert kube.quota_way_out("being terminated", "dev") is None


def test_explain_404_of_the_namespace():
    line = kube.explain(404, 'namespaces "dev" not found', "create", LEASE)
    assert line == ('namespace "dev" not found: create it (kubectl create namespace dev) or pick '
                    'another with -n')
    # an object that is missing is not a missing namespace
    line = kube.explain(404, 'buckets.source.toolkit.fluxcd.io "web" not found', "patch", BUCKET)
    assert line == ('cannot patch buckets.source.toolkit.fluxcd.io "web" in namespace "dev": '
                    'HTTP 404: buckets.source.toolkit.fluxcd.io "web" not found')


def test_explain_409_and_422_carry_the_field_message():
    message = ('Operation cannot be fulfilled on leases.coordination.k8s.io "gitops-run-web-sync":'
               ' the object has been modified; please apply your changes to the latest version')
    line = kube.explain(409, message, "update", LEASE)
    assert line == (f'conflict: cannot update leases.coordination.k8s.io "gitops-run-web-sync" '
                    f'in namespace "dev": {message}; it changed meanwhile: run the command again')
    message = ('Bucket.source.toolkit.fluxcd.io "web" is invalid: spec.interval: Invalid value: '
               '"soon": spec.interval in body should match \'^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$\'')
    line = kube.explain(422, message, "patch", BUCKET)
    assert line.startswith('invalid: cannot patch buckets.source.toolkit.fluxcd.io "web" in '
                           'namespace "dev": ') and "spec.interval: Invalid value" in line


@pytest.mark.parametrize("status, start", [
    (429, "the API server of context 'c' is throttling us: cannot get "),
    (503, "the API server of context 'c' failed to get "),
    (500, "the API server of context 'c' failed to get "),
])
def test_explain_429_and_5xx_after_the_retries(status, start):
    line = kube.explain(status, "etcdserver: request timed out", "get", BUCKET, context="c",
                        tries=4)
    assert line.startswith(start), line
    assert "etcdserver: request timed out (after 4 tries); try again" in line


def test_transport_errors():
    import ssl
    from kubectl_gitops_run.adapters.transport import TransportError
    server = "https://10.0.0.1:6443"
    refused = TransportError("connect", ConnectionRefusedError(111, "Connection refused"))
    assert kube.transport_error(refused, server, "c") == (
        "cannot reach the Kubernetes API server at https://10.0.0.1:6443 (context 'c'): "
        "[Errno 111] Connection refused; is the cluster running?")
    verify = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
                                             "failed: unable to get local issuer certificate")
    line = kube.transport_error(TransportError("connect", verify), server, "c")
    assert line.startswith("TLS failure talking to the Kubernetes API server at "
                           "https://10.0.0.1:6443 (context 'c'): ")
    assert line.endswith("; check the certificate-authority of the cluster in the kubeconfig")
    for phase, start in (("read", "timed out waiting for an answer from the Kubernetes API "),
                         ("connect", "cannot reach the Kubernetes API server")):
        line = kube.transport_error(TransportError(phase, TimeoutError("timed out")), server, "c")
        assert line.startswith(start), line


def test_a_server_that_hangs_up_in_the_tls_handshake_is_unreachable():
    import ssl
    from kubectl_gitops_run.adapters.transport import TransportError
    eof = ssl.SSLEOFError(8, "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of "
                             "protocol (_ssl.c:1006)")
    assert kube.transport_error(TransportError("connect", eof), "https://h:1", "c") == (
        "cannot reach the Kubernetes API server at https://h:1 (context 'c'): it closed the "
        "connection during the TLS handshake; is the cluster running, and is the server in the "
        "kubeconfig its API server?")
    wrong = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")  # plain HTTP
    assert kube.transport_error(TransportError("connect", wrong), "https://h:1", "c").startswith(
        "TLS failure talking to")


@pytest.mark.parametrize("planned, retry_after, pause", [
    (0.2, None, 0.2), (0.2, "1", 1.0), (0.5, "0", 0.5), (0.2, "60", kube.RETRY_AFTER_MAX),
    (0.2, "Wed, 21 Oct 2015 07:28:00 GMT", 0.2),
])
def test_pause_honours_retry_after_up_to_a_bound(planned, retry_after, pause):
    assert kube._pause(planned, retry_after) == pause


def test_lines_joins_chunks_into_events_and_drops_a_cut_one():
    chunks = [b'{"a":', b'1}\n{"b":2}\n', b"\n", b'{"c"', b":3}\n", b'{"d":']
    assert list(kube._lines(chunks)) == [b'{"a":1}', b'{"b":2}', b'{"c":3}']


# -- credential plugins ------------------------------------------------------------------

def kubeconfig(tmp_path, server: str, user: dict) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "ctx",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u",
                                                  "namespace": "dev"}}]}))
    return str(path)


def plugin(tmp_path, script: str) -> dict:
    path = tmp_path / "corp-login"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1",
                     "command": str(path), "interactiveMode": "Never"}}


CREDENTIAL = ('{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential",'
              '"status":{"token":"t","expirationTimestamp":"2000-01-01T00:00:00Z"}}')


def test_a_failing_credential_plugin_is_named_at_connect(tmp_path, capfd):
    user = plugin(tmp_path, "echo 'error: not logged in' >&2; exit 1\n")
    with pytest.raises(ApiError) as err:
        kube.connect(kubeconfig(tmp_path, "https://127.0.0.1:1", user))
    assert str(err.value) == (
        f"the credential plugin {user['exec']['command']!r} of context 'ctx' failed: exec: "
        f"process returned 1. error: not logged in; log in again (or run the plugin yourself "
        f"to see why) and retry")
    assert err.value.status == 401
    assert capfd.readouterr().err == ""      # kubernetes' own log line is kept off stderr


@pytest.mark.parametrize("then, said", [
    ('{ echo "session expired" >&2; exit 3; }',
     r"corp-login' of context 'ctx' failed: exec: process returned 3\. session expired; log in "
     r"again"),
    ("exec sleep 60", r"corp-login' \(context 'ctx'\) did not answer within 0\.5s; run it"),
])
def test_a_credential_plugin_failing_on_refresh_is_named_at_the_request(tmp_path, capfd,
                                                                        monkeypatch, then, said):
    monkeypatch.setattr(kube, "PLUGIN_TIME_LIMIT", 0.5)
    # the first run gives a token that has expired already; the refresh fails or hangs
    user = plugin(tmp_path, f'[ -e "$0.used" ] && {then}\n'
                            f'touch "$0.used"\necho \'{CREDENTIAL}\'\n')
    k = kube.connect(kubeconfig(tmp_path, "https://127.0.0.1:1", user))
    with pytest.raises(ApiError, match=said):
        k.get("Secret", "s")
    assert capfd.readouterr().err == ""


def test_a_credential_plugin_that_never_answers_is_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(kube, "PLUGIN_TIME_LIMIT", 0.5)
    user = plugin(tmp_path, "echo $$ > \"$0.pid\"; exec sleep 60\n")
    t0 = time.monotonic()
    with pytest.raises(ApiError) as err:
        kube.connect(kubeconfig(tmp_path, "https://127.0.0.1:1", user))
    assert time.monotonic() - t0 < 10
    assert str(err.value) == (
        f"credential plugin {user['exec']['command']!r} (context 'ctx') did not answer within "
        f"0.5s; run it yourself to see why (it may be waiting for a login), then retry")
    assert err.value.status == 401
    pid = int((tmp_path / "corp-login.pid").read_text())
    with pytest.raises(ProcessLookupError):      # killed and reaped, not left behind
        os.kill(pid, 0)


def test_a_credential_plugin_given_the_terminal_gets_longer(monkeypatch):
    monkeypatch.setattr(kube, "PLUGIN_TIME_LIMIT", 60)
    monkeypatch.setattr(kube, "PLUGIN_TIME_LIMIT_TTY", 0.3)  # may ask a person: stdin given
    proc = kube._PluginProcess(["sleep", "60"], stdin=subprocess.DEVNULL)
    with pytest.raises(kube._PluginTimeout) as stopped:
        proc.communicate()
    assert (stopped.value.command, stopped.value.seconds) == ("sleep", 0.3)
    assert proc.returncode is not None              # killed and reaped


def test_a_credential_plugin_that_answers_in_time_is_used(tmp_path):
    fresh = CREDENTIAL.replace("2000-01-01", "2999-01-01")
    user = plugin(tmp_path, f"sleep 0.2; echo '{fresh}'\n")
    k = kube.connect(kubeconfig(tmp_path, "https://127.0.0.1:1", user))
    assert k._auth() == {"authorization": "Bearer t"}


# -- kubeconfigs that cannot be used ------------------------------------------------------

GOOD = b"current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\n"


@pytest.mark.parametrize("text, context, problem", [
    (b"{{{ not: [yaml", None, "cannot use the kubeconfig K: invalid YAML at line 1, column 15: "
                              "expected ',' or ']', but got '<stream end>'; fix it, or pass "
                              "another with --kubeconfig"),
    (b"", None, "cannot use the kubeconfig K: the file is empty; fix it, or pass another with "
                "--kubeconfig"),
    (b"- a\n- b\n", None, "cannot use the kubeconfig K: not a kubeconfig (a mapping of "
                          "clusters, contexts and users) but a list; fix it, or pass another "
                          "with --kubeconfig"),
    (b"contexts: 3\n", None, "cannot use the kubeconfig K: its contexts are not a list of "
                             "mappings; fix it, or pass another with --kubeconfig"),
    (b"current-context: gone\ncontexts: [{name: a}, {name: b}]\n", None,
     "context 'gone' not found in the kubeconfig K (its current-context; contexts: a, b); pick "
     "one with --context (see `kubectl config get-contexts`)"),
    (GOOD, "nope", "context 'nope' not found in the kubeconfig K (contexts: a); pick one with "
                   "--context (see `kubectl config get-contexts`)"),
    (b"contexts: []\n", None, "the kubeconfig K sets no current-context; pick a context with "
                              "--context (see `kubectl config get-contexts`)"),
    (GOOD, None, None), (GOOD, "a", None),
])
def test_kubeconfig_problem(text, context, problem):
    assert kube.kubeconfig_problem([("K", text)], context) == problem


def test_kubeconfig_problem_merges_files_as_the_client_does():
    other = b"current-context: b\ncontexts: [{name: b}]\n"
    assert kube.kubeconfig_problem([("K1", GOOD), ("K2", other)], None) is None
    assert kube.kubeconfig_problem([("K1", GOOD), ("K2", b"")], None).startswith(
        "cannot use the kubeconfig K2: the file is empty")
    assert kube.kubeconfig_problem([("K1", other), ("K2", b"current-context: c\n")], "x") == (
        f"context 'x' not found in the kubeconfig K1{os.pathsep}K2 (contexts: b); pick one with "
        f"--context (see `kubectl config get-contexts`)")


def test_connect_names_what_is_wrong_with_the_kubeconfig(tmp_path):
    good = kubeconfig(tmp_path, "https://127.0.0.1:1", {"token": "t"})
    bad = tmp_path / "bad"
    bad.write_text("- a\n")
    with pytest.raises(UserError, match=rf"^cannot use the kubeconfig {bad}: not a kubeconfig"):
        kube.connect(str(bad))
    with pytest.raises(UserError, match=r"^context 'nope' not found in the kubeconfig .*"
                                        r"\(contexts: ctx\); pick one with --context"):
        kube.connect(good, context="nope")
    # --context picks a good one though the current-context is gone
    cfg = json.loads(Path(good).read_text())
    cfg["current-context"] = "gone"
    Path(good).write_text(json.dumps(cfg))
    with pytest.raises(UserError, match=r"^context 'gone' not found .*its current-context"):
        kube.connect(good)
    assert kube.connect(good, context="ctx").context == "ctx"


# -- import cost ---------------------------------------------------------------------------

IMPORTS = """
import sys
from kubectl_gitops_run.adapters import kube
from kubectl_gitops_run.errors import ApiError
k = kube.connect(sys.argv[1])
try:
    k.get("Secret", "s")
except ApiError:
    pass
loaded = [m for m in sys.modules if m.startswith("kubernetes")]
print(len(loaded), " ".join(sorted(loaded)))
"""


def test_connect_and_a_request_import_little_of_kubernetes(tmp_path):
    """The generated APIs and models (~770 modules, most of the client's second)
    stay unloaded: only the kubeconfig loader, Configuration and the REST pool."""
    kc = kubeconfig(tmp_path, "https://127.0.0.1:1", {"token": "t"})
    out = subprocess.run([sys.executable, "-c", IMPORTS, kc], capture_output=True, text=True,
                         check=True, cwd=REPO, timeout=60).stdout.split()
    count, loaded = int(out[0]), out[1:]
    heavy = [m for m in loaded if m.startswith(("kubernetes.client.api", "kubernetes.client.models",
                                                "kubernetes.stream", "kubernetes.watch"))]
    assert not heavy, heavy[:5]
    assert count <= 20, loaded


def test_the_whole_client_still_imports_after_a_shallow_one(tmp_path):
    kc = kubeconfig(tmp_path, "https://127.0.0.1:1", {"token": "t"})
    code = IMPORTS + ("from kubernetes import client, watch\nimport kubernetes\n"
                      "assert client.CoreV1Api and watch.Watch and kubernetes.dynamic\n")
    subprocess.run([sys.executable, "-c", code, kc], check=True, cwd=REPO, timeout=60,
                   capture_output=True)


# -- HTTP behaviour: retries and one-line errors (the API server's semantics are in e2e) ----

class Replies(http.server.BaseHTTPRequestHandler):
    """Answers each request with the next of `script`: (status, headers, body)."""
    script: list = []
    seen: list = []

    def do_GET(self):
        self.seen.append((self.path, dict(self.headers)))
        status, headers, body = self.script.pop(0)
        data = json.dumps(body).encode()
        self.send_response(status)
        for k, v in {**headers, "Content-Type": "application/json",
                     "Content-Length": str(len(data))}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    Replies.script, Replies.seen = [], []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Replies)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield kube.connect(kubeconfig(tmp_path, url, {"token": "sekret"}))
    httpd.shutdown()
    httpd.server_close()


def status(code: int, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
            "code": code}


def test_5xx_and_429_are_retried_with_backoff(server):
    secret = {"kind": "Secret", "metadata": {"name": "s"}}
    Replies.script = [(503, {}, status(503, "etcd is down")),
                      (429, {"Retry-After": "1"}, status(429, "slow down")), (200, {}, secret)]
    t0 = time.monotonic()
    assert server.get("Secret", "s") == secret
    took = time.monotonic() - t0
    assert 0.2 + 1.0 <= took < 3, took         # the 429 asked for 1 s, more than the plan's 0.5
    paths = [p for p, _ in Replies.seen]
    assert paths == ["/api/v1/namespaces/dev/secrets/s"] * 3
    headers = Replies.seen[0][1]
    assert headers["authorization"] == "Bearer sekret"
    assert headers["User-Agent"].startswith("kubectl-gitops-run/")


def test_5xx_is_reported_after_the_last_try(server, monkeypatch):
    monkeypatch.setattr(kube, "RETRY_PAUSES", (0.01, 0.01, 0.01))
    Replies.script = [(500, {}, status(500, "boom"))] * 4
    with pytest.raises(ApiError) as err:
        server.get("Secret", "s")
    assert err.value.status == 500 and len(Replies.seen) == 4
    assert str(err.value) == ("the API server of context 'ctx' failed to get secrets \"s\" in "
                              "namespace \"dev\": HTTP 500: boom (after 4 tries); try again, or "
                              "check the health of the control plane")


def test_403_is_one_line_and_not_retried(server):
    Replies.script = [(403, {"Audit-Id": "x"}, status(403, (
        'secrets "s" is forbidden: User "dev" cannot get resource "secrets" in API group "" in '
        'the namespace "dev"')))]
    with pytest.raises(ApiError) as err:
        server.get("Secret", "s")
    assert len(Replies.seen) == 1 and err.value.status == 403
    assert str(err.value) == ('forbidden: user "dev" cannot get secrets in namespace "dev"; ask '
                              'for a Role rule: apiGroups [""], resources ["secrets"], '
                              'verbs ["get"]')
