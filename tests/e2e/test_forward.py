"""Port-forwards that follow a session's pods (issue 15), on the real control
plane, to the dev cluster's echo server (devcluster/echo.py)."""
from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from devcluster.cluster import free_port
from kubectl_gitops_run.core import forwards as fw
from tests.e2e.conftest import run_plugin
from tests.e2e.test_plugin import ok
from tests.e2e.test_portforward import wait_for

EXE = str(Path(os.sys.executable).parent / "kubectl-gitops_run")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "web"


def get(port: int, timeout: float = 15) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/")
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def port_free(port: int) -> bool:
    try:
        socket.create_server(("127.0.0.1", port)).close()
        return True
    except OSError:
        return False


class Loop:
    """A long-running plugin command, its output read as it comes."""

    def __init__(self, cluster, *args):
        self.proc = subprocess.Popen([EXE, *args], env=cluster.env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out: list[str] = []
        self.err: list[str] = []
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=lambda s=stream, k=sink: k.extend(iter(s.readline, "")),
                             daemon=True).start()

    def saw(self, text: str, timeout: float = 120) -> str:
        return wait_for(repr(text), lambda: next((l for l in self.out + self.err if text in l),
                                                 None), timeout=timeout)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(30)


@pytest.fixture
def app(tmp_path):
    tree = tmp_path / "web"
    shutil.copytree(EXAMPLE, tree)
    return tree


def greeting(tree: Path, value: str, extra: str = "") -> None:
    path = tree / "deployment.yaml"
    text = path.read_text()
    start = text.index("value: ") + len("value: ")
    end = text.index("\n", start)
    path.write_text(text[:start] + value + text[end:] + extra)


def forwards_listed(cluster, namespace) -> list:
    out = ok(cluster, "ls", "-n", namespace, "-o", "json").stdout
    return json.loads(out)["items"][0]["forwards"]


@pytest.mark.flaky(reruns=1)     # timing on a loaded machine: a second failure is real
def test_forward_follows_the_pods_across_syncs(cluster, kubectl, namespace, app):
    port = free_port()
    loop = Loop(cluster, "-v", "up", str(app), "-n", namespace, "--name", "web", "--watch",
                "--port-forward", "svc/web", f"{port}:http")      # kubectl's words, unquoted
    try:
        loop.saw(f"forwarding http://127.0.0.1:{port} -> svc/web:http")
        first = get(port)
        assert first["greeting"] == "Hello from kubectl gitops-run"
        assert forwards_listed(cluster, namespace)[0]["url"] == f"http://127.0.0.1:{port}"
        wide = ok(cluster, "ls", "-n", namespace, "-o", "wide").stdout
        assert f"http://127.0.0.1:{port}->svc/web:http(ready)" in wide
        # a sync that changes the env: the same local port answers from the new pod
        greeting(app, "v2")
        second = wait_for("the new pod", lambda: (lambda r: r if r["greeting"] == "v2" else None)(
            get(port)), timeout=120)
        assert second["pod"] != first["pod"]
        # the pod deleted by hand: a connection open on it is closed, not left
        # hanging, and the forward recovers
        idle = socket.create_connection(("127.0.0.1", port), timeout=30)
        idle.sendall(b"GET / HTTP/1.1\r\nHost: web\r\n")      # a request not finished
        time.sleep(1)       # its tunnel opens
        kubectl("delete", "pod", second["pod"], "-n", namespace, "--wait=false")
        with idle:
            try:
                assert idle.recv(1) == b""
            except ConnectionResetError:
                pass
        third = wait_for("a replacement pod", lambda: (lambda r: r if r["pod"] != second["pod"]
                                                       else None)(get(port)), timeout=120)
        assert third["greeting"] == "v2"
    finally:
        code = loop.stop()
        print("".join(loop.out + loop.err))
    assert code == 0, "".join(loop.err)
    assert port_free(port)
    assert forwards_listed(cluster, namespace) == []


def crash_looping(kubectl, namespace) -> bool:
    """Is the app's pod backing off after a crash, as a kubelet reports it?"""
    pods = json.loads(kubectl("get", "pods", "-n", namespace, "-l", "app=web", "-o", "json"))
    for p in pods["items"]:
        cs = (p["status"].get("containerStatuses") or [{}])[0]
        if (cs.get("state") or {}).get("waiting", {}).get("reason") == "CrashLoopBackOff":
            return (cs["lastState"]["terminated"]["exitCode"] == 1 and cs["restartCount"] >= 1
                    and p["status"]["phase"] == "Running")
    return False


def test_no_ready_pod_waits_then_says_why(cluster, kubectl, namespace, app):
    greeting(app, "x", "            - name: ECHO_EXIT\n              value: \"1\"\n")
    ok(cluster, "up", str(app), "-n", namespace, "--name", "web", "--no-wait")
    # the dev cluster's runtime reports the crash as a kubelet would
    wait_for("the pod in CrashLoopBackOff", lambda: crash_looping(kubectl, namespace),
             timeout=120)
    port = free_port()
    loop = Loop(cluster, "forward", "web", "-n", namespace, "deploy/web", f"{port}:8080")
    try:
        wait_for("the listener", lambda: not port_free(port), timeout=30)
        started = time.monotonic()
        with pytest.raises((OSError, http.client.HTTPException)):
            get(port, timeout=60)
        # bounded: the wait for a Ready pod (adapters.portforward.PICK_WAIT), then closed
        assert time.monotonic() - started < 30
        line = loop.saw("no Ready pod behind deploy/web", timeout=30)
        # between two back-offs the container shows its last exit (Error) for a moment
        assert re.fullmatch(r"web: no Ready pod behind deploy/web \((CrashLoopBackOff|Error), "
                            r"exit code 1\)", line.strip()), line
        assert re.match(r"waiting: (CrashLoop|Error)",
                        forwards_listed(cluster, namespace)[0]["state"])
    finally:
        assert loop.stop() == 0, "".join(loop.err)


def bucket_records(kubectl, namespace) -> dict:
    notes = json.loads(kubectl("get", "bucket", "gitops-run-web", "-n", namespace, "-o",
                               "json"))["metadata"].get("annotations") or {}
    return {k: v for k, v in notes.items() if k.startswith("kubectl-gitops-run.io/forwards.")}


@pytest.mark.flaky(reruns=1)     # timing on a loaded machine: a second failure is real
def test_a_killed_loops_forwards_expire(cluster, kubectl, namespace, app):
    ok(cluster, "up", str(app), "-n", namespace, "--name", "web")
    loop = Loop(cluster, "forward", "web", "-n", namespace, "svc/web", ":http")
    loop.saw("forwarding http://127.0.0.1:")
    # a loop that runs longer than a record lives keeps it (it renews it)
    time.sleep(fw.TTL + 10)
    assert [r["state"] for r in forwards_listed(cluster, namespace)] == ["ready"]
    loop.proc.kill()            # SIGKILL: no chance to remove its record
    loop.proc.wait(10)
    killed = bucket_records(kubectl, namespace)
    assert len(killed) == 1 and forwards_listed(cluster, namespace)
    # readers drop it once it expires
    wait_for("the forward to expire", lambda: "->svc/web" not in ok(
        cluster, "ls", "-n", namespace, "-o", "wide").stdout, timeout=fw.TTL + 30, interval=2)
    assert bucket_records(kubectl, namespace).keys() == killed.keys()     # still written there
    # the next loop on the session deletes it
    second = Loop(cluster, "forward", "web", "-n", namespace, "svc/web", ":http")
    try:
        second.saw("forwarding http://127.0.0.1:")
        wait_for("the stale record gone", lambda: len(bucket_records(kubectl, namespace)) == 1
                 and not bucket_records(kubectl, namespace).keys() & killed.keys())
    finally:
        assert second.stop() == 0, "".join(second.err)
    assert bucket_records(kubectl, namespace) == {}


def test_bad_inputs_fail_before_anything_starts(cluster, kubectl, namespace, app):
    ok(cluster, "up", str(app), "-n", namespace, "--name", "web")

    def fails(*args, words):
        r = run_plugin(cluster, *args, "-n", namespace, timeout=60)
        assert r.returncode in (1, 2), r
        assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
        assert words in r.stderr, r.stderr

    fails("forward", "web", "job/web", "8080:80", words="unknown type 'job'")
    fails("forward", "web", "svc/web", "80:80", words="privileged")
    fails("forward", "web", "svc/web", "8080:80:1", words="malformed")
    free = free_port()      # not 8080: another test on this machine may hold it
    fails("forward", "web", "svc/nope", f"{free}:80", words="not in session 'web''s inventory")
    fails("forward", "web", "svc/web", f"{free}:81", words="service/web has no port 81")
    fails("sync", "web", "--watch", "--port-forward", "svc", words="malformed")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        used = busy.getsockname()[1]
        fails("forward", "web", "svc/web", f"{used}:80", words=f"local port {used} is in use")
    # a target that exists outside the inventory: a warning, and it still forwards
    kubectl("create", "service", "clusterip", "other", "--tcp=80:8080", "-n", namespace)
    kubectl("label", "--overwrite", "service", "other", "app=web", "-n", namespace)
    loop = Loop(cluster, "forward", "web", "-n", namespace, "svc/other", ":80")
    try:
        loop.saw("svc/other in namespace")
        assert any("not in session 'web''s inventory" in line for line in loop.err)
    finally:
        assert loop.stop() == 0
