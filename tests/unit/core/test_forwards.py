"""core.forwards: kubectl's port-forward syntax, and the pods and ports behind a target."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from kubectl_gitops_run.core import forwards as fw
from kubectl_gitops_run.errors import UsageError


def test_parse_kubectl_syntax():
    assert fw.parse("svc/web 8080:80") == [fw.Spec(None, "Service", "web", 8080, 80)]
    assert fw.parse("dev/deploy/api :http") == [fw.Spec("dev", "Deployment", "api", 0, "http")]
    assert fw.parse("pod/p 9000") == [fw.Spec(None, "Pod", "p", 9000, 9000)]
    assert fw.parse("sts/db=5432:5432")[0].kind == "StatefulSet"
    two = fw.parse("service/web 8080:80 :http")
    assert [(s.local, s.remote) for s in two] == [(8080, 80), (0, "http")]


@pytest.mark.parametrize("spec, words", [
    ("job/x 80", "unknown type 'job'"),
    ("web 80", "malformed"),
    ("svc/web", "malformed"),
    ("svc/ 80", "malformed"),
    ("svc/web 80:", "malformed"),
    ("svc/web 1:2:3", "malformed"),
    ("svc/web 80:80", "privileged"),
    ("svc/web 70000:80", "invalid local port"),
    ("svc/web 8080:0", "invalid remote port"),
    ("svc/Web 8080:80", "not a Kubernetes name"),
    ("svc/web 8080:HTTP", "malformed remote port"),
    ("svc/web 8080:80 8080:81", "given to two"),
])
def test_bad_specs_are_one_line_usage_errors(spec, words):
    with pytest.raises(UsageError) as e:
        fw.parse(spec)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_port_forward_words_as_kubectl_takes_them():
    assert fw.join_words(["up", "web", "--watch", "--port-forward", "svc/web", "8080:80"]) == \
        ["up", "web", "--watch", "--port-forward", "svc/web 8080:80"]
    assert fw.join_words(["--port-forward", "svc/web", "8080:80", ":http", "9000", "dir"]) == \
        ["--port-forward", "svc/web 8080:80 :http 9000", "dir"]
    assert fw.join_words(["--port-forward=svc/web", ":80", "-n", "dev"]) == \
        ["--port-forward=svc/web :80", "-n", "dev"]
    quoted = ["--port-forward", "svc/web 8080:80", "--port-forward", "deploy/api", "9090"]
    assert fw.join_words(quoted) == ["--port-forward", "svc/web 8080:80", "--port-forward",
                                     "deploy/api 9090"]
    # ports only right after a --port-forward value, and not after `--`
    assert fw.join_words(["sync", "8080:80"]) == ["sync", "8080:80"]
    assert fw.join_words(["--port-forward", "--", "8080"]) == ["--port-forward", "--", "8080"]
    assert fw.join_words(["--port-forward", "svc/web", "web"]) == \
        ["--port-forward", "svc/web", "web"]
    assert fw.parse(fw.join_words(["--port-forward", "svc/web", "8080:80"])[1]) == \
        fw.parse("svc/web 8080:80")


def test_forward_verb_arguments():
    assert fw.split_args(["web", "svc/web", "8080:80", "deploy/api", ":http"]) == \
        ("web", [("svc/web", ["8080:80"]), ("deploy/api", [":http"])])
    assert fw.split_args(["svc/web", "8080:80"]) == (None, [("svc/web", ["8080:80"])])
    with pytest.raises(UsageError):
        fw.split_args(["web", "svc/web"])


def obj(kind, name, uid, owners=(), **extra):
    meta = {"name": name, "uid": uid, "creationTimestamp": extra.pop("created", "2026-01-01T00:00:00Z"),
            "ownerReferences": [{"uid": o} for o in owners]}
    return {"kind": kind, "metadata": meta, **extra}


def pod(name, uid, owners=(), ready=True, ports=(), created="2026-01-01T00:00:00Z", waiting=None):
    status = {"phase": "Running", "conditions": [{"type": "Ready", "status": str(ready)}]}
    if waiting:
        status["containerStatuses"] = [{"state": {"waiting": {"reason": waiting}}}]
    spec = {"containers": [{"ports": [{"name": n, "containerPort": p} for n, p in ports]}]}
    return obj("Pod", name, uid, owners, spec=spec, status=status, created=created)


def test_deployment_pods_through_the_replicasets_it_owns():
    deploy = obj("Deployment", "web", "d1")
    rs_new, rs_other = obj("ReplicaSet", "web-2", "r2", ["d1"]), obj("ReplicaSet", "x", "r9", ["d9"])
    mine, stranger = pod("web-2-a", "p1", ["r2"]), pod("x-a", "p2", ["r9"])
    assert fw.pods_behind("Deployment", deploy, [mine, stranger], [rs_new, rs_other]) == [mine]
    sts = obj("StatefulSet", "db", "s1")
    assert fw.pods_behind("StatefulSet", sts, [pod("db-0", "p3", ["s1"]), mine], []) == \
        [pod("db-0", "p3", ["s1"])]
    assert fw.pods_behind("Pod", obj("Pod", "x-a", "p2"), [mine, stranger], []) == [stranger]


def test_selectors_are_the_targets_own():
    svc = {"spec": {"selector": {"app": "web", "tier": "fe"}}}
    assert fw.target_selector("Service", svc) == "app=web,tier=fe"
    deploy = {"spec": {"selector": {"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "env", "operator": "In", "values": ["a", "b"]},
        {"key": "gone", "operator": "DoesNotExist"}]}}}
    assert fw.target_selector("Deployment", deploy) == "app=web,env in (a,b),!gone"
    assert fw.target_selector("Service", {"spec": {}}) is None


def test_service_port_to_target_port():
    svc = {"metadata": {"name": "web"}, "spec": {"ports": [
        {"name": "http", "port": 80, "targetPort": "http"}, {"name": "m", "port": 9090}]}}
    assert fw.service_target_port(svc, 80) == "http"
    assert fw.service_target_port(svc, "http") == "http"
    assert fw.service_target_port(svc, "m") == 9090
    with pytest.raises(UsageError, match="no port 81.*http:80, m:9090"):
        fw.service_target_port(svc, 81)


def test_choose_a_ready_pod_and_its_named_port():
    old = pod("a", "1", ports=[("http", 8080)], created="2026-01-01T00:00:00Z")
    new = pod("b", "2", ports=[("http", 8081)], created="2026-01-02T00:00:00Z")
    assert fw.choose([old, new], "http") == fw.Choice("b", 8081, "")
    assert fw.choose([old], 9000) == ("a", 9000, "")
    crash = pod("c", "3", ready=False, waiting="CrashLoopBackOff")
    assert fw.choose([crash], 80) == (None, None, "CrashLoopBackOff")
    crash["status"]["containerStatuses"][0]["lastState"] = {"terminated": {"exitCode": 3}}
    assert fw.choose([crash], 80).reason == "CrashLoopBackOff, exit code 3"
    assert fw.choose([], 80).reason == "no pods"
    assert "no port named 'web'" in fw.choose([old], "web").reason


def test_inventory_and_records():
    from kubectl_gitops_run.core.inventory import Ref
    refs = [Ref("dev", "web", "", "v1", "Service")]
    assert fw.in_inventory(fw.parse("svc/web 8080:80")[0], "dev", refs)
    assert not fw.in_inventory(fw.parse("deploy/web 8080:80")[0], "dev", refs)
    assert not fw.in_inventory(fw.parse("other/svc/web 8080:80")[0], "dev", refs)
    rows = [{"url": "http://127.0.0.1:8080", "target": "svc/web:80", "state": "ready"}]
    stamped = [{**rows[0], "expires": "2026-12-02T18:00:00Z"}]
    annotations = {"kubectl-gitops-run.io/forwards.ab": fw.record(rows, "2026-12-02T18:00:00Z"),
                   "x": "y", "kubectl-gitops-run.io/forwards.cd": "not json"}
    assert fw.read_records(annotations, "kubectl-gitops-run.io/forwards") == stamped
    assert json.loads(fw.record(rows, "2026-12-02T18:00:00Z")) == stamped


PREFIX = "kubectl-gitops-run.io/forwards"
NOON = datetime(2026, 12, 2, 12, 0, 0, tzinfo=timezone.utc)


def row(expires=None, url="http://127.0.0.1:8080"):
    out = {"url": url, "target": "svc/web:80", "state": "ready"}
    return {**out, "expires": expires} if expires else out


def test_a_record_expires_ttl_after_it_is_written():
    assert fw.expiry(NOON) == "2026-12-02T12:01:00Z"
    assert fw.RENEW * 2 < fw.TTL        # a missed renewal does not hide a running loop
    written = row(fw.expiry(NOON))
    assert not fw.expired(written, NOON + timedelta(seconds=fw.TTL - 1))
    assert fw.expired(written, NOON + timedelta(seconds=fw.TTL))
    assert fw.live([written], NOON + timedelta(seconds=fw.TTL + 5)) == []


def test_rows_without_a_readable_expiry_are_kept():
    # written by an older plugin, or mangled: nothing says the loop is gone
    assert fw.live([row(), row("soon")], NOON) == [row(), row("soon")]


def test_readers_drop_expired_rows():
    notes = {f"{PREFIX}.aa": fw.record([row(url="http://a")], "2026-12-02T11:59:59Z"),
             f"{PREFIX}.bb": fw.record([row(url="http://b")], "2026-12-02T12:00:30Z")}
    assert [r["url"] for r in fw.read_records(notes, PREFIX)] == ["http://a", "http://b"]
    assert [r["url"] for r in fw.read_records(notes, PREFIX, NOON)] == ["http://b"]


def test_stale_records_are_those_of_killed_loops():
    notes = {f"{PREFIX}.dead": fw.record([row(), row()], "2026-12-02T11:00:00Z"),
             f"{PREFIX}.alive": fw.record([row()], "2026-12-02T12:00:30Z"),
             f"{PREFIX}.old": json.dumps([row()]),        # no expiry: left alone
             f"{PREFIX}.junk": "not json", f"{PREFIX}.empty": "[]", "other": "[]"}
    assert fw.stale(notes, PREFIX, NOON) == [f"{PREFIX}.dead"]
