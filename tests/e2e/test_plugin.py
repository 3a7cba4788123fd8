"""The plugin's commands end to end, run as a user runs them (the installed
`kubectl-gitops_run`), against the real control plane: real API server, real
Flux controllers, a real MinIO behind every bucket pod."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from kubectl_gitops_run.adapters.scanner import scan
from kubectl_gitops_run.core import namespaces
from devcluster.cluster import free_port
from tests.e2e.conftest import run_plugin

REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "examples" / "hello"


def ok(cluster, *args, cwd=None):
    res = run_plugin(cluster, *args, cwd=cwd)
    assert res.returncode == 0, f"{args}: rc={res.returncode}\n{res.stdout}\n{res.stderr}"
    return res


def failed(cluster, *args, code=1, cwd=None):
    res = run_plugin(cluster, *args, cwd=cwd)
    assert res.returncode == code, f"{args}: rc={res.returncode}\n{res.stdout}\n{res.stderr}"
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


def revision(tree: Path, namespace: str) -> str:
    """The revision of a tree as a session in `namespace` applying its root
    uploads it: with the files the session adds (core.namespaces)."""
    return namespaces.with_session_files(scan(tree), "", namespace).revision


def get(kubectl, kind, name, ns):
    out = kubectl("get", kind, name, "-n", ns, "-o", "json", "--ignore-not-found")
    return json.loads(out) if out.strip() else None


def wait_for(what, check, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture
def app(tmp_path):
    """A copy of examples/hello the test may change."""
    d = tmp_path / "hello"
    shutil.copytree(HELLO, d)
    return d


def ours(kubectl, ns):
    """Our objects in the namespace, by kind."""
    out = {}
    for kind in ("secret", "deployment", "service", "bucket", "kustomization"):
        items = json.loads(kubectl("get", kind, "-n", ns, "-l",
                                   "app.kubernetes.io/managed-by=kubectl-gitops-run",
                                   "-o", "json"))["items"]
        if items:
            out[kind] = [i["metadata"]["name"] for i in items]
    return out


def test_up_sync_ls_down(cluster, kubectl, namespace, app):
    res = ok(cluster, "up", str(app), "-n", namespace)
    assert f"session hello ready in namespace {namespace}: 3 files" in res.stdout
    assert "applied 3 objects" in res.stdout
    cm = get(kubectl, "configmap", "hello", namespace)
    assert cm["data"]["greeting"] == "Hello from kubectl gitops-run"
    assert get(kubectl, "deployment", "hello", namespace)

    # invariant 1: Flux's revision is the digest of the local snapshot
    bucket = get(kubectl, "bucket", "gitops-run-hello", namespace)
    assert bucket["status"]["artifact"]["revision"] == revision(app, namespace)
    assert bucket["spec"]["provider"] == "generic"
    # Flux read it as its own read-only user, not with the root credentials
    assert bucket["spec"]["secretRef"] == {"name": "gitops-run-hello-reader"}
    root, reader = (get(kubectl, "secret", n, namespace)["data"]
                    for n in ("gitops-run-hello", "gitops-run-hello-reader"))
    assert root["accesskey"] != reader["accesskey"] and root["secretkey"] != reader["secretkey"]
    ks = get(kubectl, "kustomization", "gitops-run-hello", namespace)
    assert ks["status"]["lastAppliedRevision"] == revision(app, namespace)
    assert ks["spec"]["prune"] is True

    # ls, like kubectl get
    table = ok(cluster, "ls", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "SOURCE", "FILES", "REVISION", "READY", "STATUS",
                                "LAST", "SYNC", "AGE"]
    row = table[1].split()
    assert row[0] == "hello" and row[2] == "3" and row[3] == revision(app, namespace)[:15]
    assert row[4] == "True"
    (item,) = json.loads(ok(cluster, "ls", "-n", namespace, "-o", "json").stdout)["items"]
    assert item["source"] == str(app) and item["files"] == 3 and item["ready"] == "True"
    assert item["objectsApplied"] == 3 and item["bucketPod"].startswith("gitops-run-hello-")
    assert ok(cluster, "get", "-n", namespace, "-o", "name").stdout == "session/hello\n"
    assert ok(cluster, "ls", "-n", namespace, "--no-headers").stdout.startswith("hello ")

    # an edit, an addition and a deletion, found from the working directory
    (app / "configmap.yaml").write_text((app / "configmap.yaml").read_text()
                                        .replace("Hello from", "Changed by"))
    (app / "extra.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n"
                                    "data:\n  a: b\n")
    (app / "service.yaml").unlink()
    res = ok(cluster, "sync", "-n", namespace, cwd=app)
    assert res.stdout.startswith("+1 ~1 -1 files, revision sha256:"), res.stdout
    assert "applied 3 objects" in res.stdout
    assert get(kubectl, "configmap", "hello", namespace)["data"]["greeting"] == \
        "Changed by kubectl gitops-run"
    assert get(kubectl, "configmap", "extra", namespace)
    assert get(kubectl, "service", "hello", namespace) is None       # pruned
    assert get(kubectl, "bucket", "gitops-run-hello", namespace)["status"]["artifact"][
        "revision"] == revision(app, namespace)

    # nothing changed: up to date, and JSON for scripts
    assert ok(cluster, "sync", "hello", "-n", namespace).stdout.startswith("up to date")
    doc = json.loads(ok(cluster, "sync", "hello", "-n", namespace, "-o", "json").stdout)
    assert doc["upToDate"] is True and doc["revision"] == revision(app, namespace)

    # down removes the session and what it deployed
    res = ok(cluster, "down", "hello", "-n", namespace)
    assert "session hello removed and what it deployed" in res.stdout
    assert ours(kubectl, namespace) == {}
    for kind, name in (("configmap", "hello"), ("configmap", "extra"), ("deployment", "hello")):
        assert get(kubectl, kind, name, namespace) is None
    res = run_plugin(cluster, "ls", "-n", namespace)
    assert res.returncode == 0 and res.stdout == ""
    assert res.stderr.strip() == f"No resources found in {namespace} namespace."
    # down is idempotent
    assert "nothing to remove" in ok(cluster, "down", "hello", "-n", namespace).stdout


def test_up_options_path_target_namespace_and_repair(cluster, kubectl, namespace, app, tmp_path):
    target = namespace + "-t"
    kubectl("create", "namespace", target)
    try:
        overlay = app / "deploy"
        overlay.mkdir()
        (app / "configmap.yaml").rename(overlay / "configmap.yaml")
        ok(cluster, "up", str(app), "-n", namespace, "--name", "web", "--path", "deploy",
           "--target-namespace", target)
        assert get(kubectl, "configmap", "hello", target)
        assert get(kubectl, "deployment", "hello", target) is None   # outside --path
        ks = get(kubectl, "kustomization", "gitops-run-web", namespace)
        assert ks["spec"]["path"] == "./deploy" and ks["spec"]["targetNamespace"] == target

        # up again repairs what was broken and syncs
        kubectl("delete", "service", "gitops-run-web", "-n", namespace)
        kubectl("patch", "bucket", "gitops-run-web", "-n", namespace, "--type=merge",
                "-p", '{"spec":{"interval":"1m"}}')
        ok(cluster, "up", str(app), "-n", namespace, "--name", "web", "--path", "deploy",
           "--target-namespace", target)
        assert get(kubectl, "service", "gitops-run-web", namespace)
        assert get(kubectl, "bucket", "gitops-run-web", namespace)["spec"]["interval"] == "60m"

        wide = ok(cluster, "ls", "-A", "-o", "wide").stdout.splitlines()
        assert wide[0].split()[:2] == ["NAMESPACE", "NAME"]
        assert "TARGET NAMESPACE" in wide[0] and "BUCKET POD" in wide[0]
        assert any(line.split()[:2] == [namespace, "web"] and target in line for line in wide)

        ok(cluster, "down", "web", "-n", namespace, "--keep-workloads")
        assert ours(kubectl, namespace) == {}
        assert get(kubectl, "configmap", "hello", target)           # kept
    finally:
        kubectl("delete", "namespace", target, "--wait=false", check=False)


def test_invalid_yaml_changes_nothing(cluster, kubectl, namespace, app):
    ok(cluster, "up", str(app), "-n", namespace, "--name", "yml")
    before = get(kubectl, "bucket", "gitops-run-yml", namespace)
    (app / "broken.yaml").write_text("kind: ConfigMap\nmetadata:\n  name: [x\n")
    line = failed(cluster, "sync", "yml", "-n", namespace)
    assert "broken.yaml" in line and "line 4" in line, line
    after = get(kubectl, "bucket", "gitops-run-yml", namespace)
    assert after["metadata"]["annotations"] == before["metadata"]["annotations"]
    assert after["spec"]["bucketName"] == before["spec"]["bucketName"]


def test_sync_errors_name_the_candidates(cluster, namespace, app, tmp_path):
    line = failed(cluster, "sync", "nope", "-n", namespace)
    assert "session 'nope' not found" in line and "it has no sessions" in line
    ok(cluster, "up", str(app), "-n", namespace, "--name", "one", "--no-wait")
    line = failed(cluster, "sync", "-n", namespace, cwd=tmp_path)
    assert "no session" in line and "one (" in line and str(app) in line


def test_bucket_pod_never_ready(cluster, kubectl, namespace, app):
    line = failed(cluster, "up", str(app), "-n", namespace, "--name", "badimg",
                  "--bucket-image", "quay.io/minio/minio:RELEASE.1999-01-01T00-00-00Z",
                  "--timeout", "60s")
    assert "is not Ready" in line and ("ErrImagePull" in line or "ImagePullBackOff" in line)
    assert "--bucket-image" in line
    res = ok(cluster, "down", "badimg", "-n", namespace)
    assert "removed" in res.stdout and ours(kubectl, namespace) == {}


def test_context_guard(cluster, namespace, app, tmp_path):
    cfg = yaml.safe_load(cluster.kubeconfig.read_text())
    cfg["clusters"][0]["cluster"]["server"] = "https://192.0.2.10:6443"   # never contacted
    cfg["contexts"][0]["name"] = "prod"
    cfg["current-context"] = "prod"
    kc = tmp_path / "kubeconfig"
    kc.write_text(yaml.safe_dump(cfg))
    line = failed(cluster, "up", str(app), "--kubeconfig", str(kc), "-n", namespace)
    assert "context 'prod'" in line and "--allow-context prod" in line
    # a loopback server alone is no proof: an SSH tunnel to production looks like one
    cfg["clusters"][0]["cluster"]["server"] = yaml.safe_load(
        cluster.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    kc.write_text(yaml.safe_dump(cfg))
    line = failed(cluster, "up", str(app), "--kubeconfig", str(kc), "-n", namespace)
    assert "context 'prod'" in line and "--allow-context prod" in line


def test_unreachable_and_missing_kubeconfig(cluster, tmp_path):
    cfg = yaml.safe_load(cluster.kubeconfig.read_text())
    # a loopback port with nothing listening on it
    cfg["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"
    kc = tmp_path / "kubeconfig"
    kc.write_text(yaml.safe_dump(cfg))
    line = failed(cluster, "ls", "--kubeconfig", str(kc))
    assert "cannot reach the Kubernetes API server" in line and "Connection refused" in line
    line = failed(cluster, "ls", "--kubeconfig", str(tmp_path / "missing"))
    assert "no kubeconfig found" in line


def test_forbidden_names_verb_and_resource(cluster, kubectl, namespace, tmp_path):
    kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    token = kubectl("create", "token", "nobody", "-n", namespace).strip()
    cfg = yaml.safe_load(cluster.kubeconfig.read_text())
    cfg["users"] = [{"name": "nobody", "user": {"token": token}}]
    cfg["contexts"][0]["context"]["user"] = "nobody"
    kc = tmp_path / "kubeconfig"
    kc.write_text(yaml.safe_dump(cfg))
    line = failed(cluster, "ls", "--kubeconfig", str(kc), "-n", namespace)
    assert "forbidden" in line and "cannot list kustomizations.kustomize.toolkit.fluxcd.io" \
        in line and 'ask for a Role rule: apiGroups ["kustomize.toolkit.fluxcd.io"]' in line, line


def test_interrupted_up_is_repaired_or_removed(cluster, kubectl, namespace, app):
    exe = shutil.which("kubectl-gitops_run", path=str(Path(os.sys.executable).parent))
    proc = subprocess.Popen([exe, "up", str(app), "-n", namespace, "--name", "cut"],
                            env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    wait_for("the bucket Deployment", lambda: get(kubectl, "deployment", "gitops-run-cut",
                                                   namespace), timeout=60)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and err.startswith("error: interrupted"), err
    # the next up finishes the job
    ok(cluster, "up", str(app), "-n", namespace, "--name", "cut")
    assert get(kubectl, "configmap", "hello", namespace)
    # interrupted again, after the Bucket exists; down removes everything
    proc = subprocess.Popen([exe, "down", "cut", "-n", namespace], env=cluster.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    ok(cluster, "down", "cut", "-n", namespace)
    assert ours(kubectl, namespace) == {}
    wait_for("pruned workloads", lambda: get(kubectl, "configmap", "hello", namespace) is None)


def test_only_our_objects_are_touched(cluster, kubectl, namespace, app):
    kubectl("create", "secret", "generic", "gitops-run-mine", "-n", namespace,
            "--from-literal=accesskey=x", "--from-literal=secretkey=y")
    line = failed(cluster, "up", str(app), "-n", namespace, "--name", "mine")
    assert "not part of session 'mine'" in line
    assert "nothing to remove" in ok(cluster, "down", "mine", "-n", namespace).stdout
    secret = get(kubectl, "secret", "gitops-run-mine", namespace)
    assert secret is not None and "labels" not in secret["metadata"]


def test_ls_selector_and_all(cluster, kubectl, namespace, app):
    ok(cluster, "up", str(app), "-n", namespace, "--name", "sel", "--no-wait")
    kubectl("label", "kustomization", "gitops-run-sel", "-n", namespace, "team=blue")
    out = ok(cluster, "ls", "-n", namespace, "-l", "team=blue", "-o", "name").stdout
    assert out == "session/sel\n"
    res = run_plugin(cluster, "ls", "-n", namespace, "-l", "team=red")
    assert res.returncode == 0 and res.stdout == "" and "No resources found" in res.stderr
    res = ok(cluster, "down", "--all", "-n", namespace)
    assert "session sel removed" in res.stdout


def test_flux_failure_names_the_object_and_the_fix_goes_through(cluster, kubectl, namespace, app):
    ok(cluster, "up", str(app), "-n", namespace, "--name", "fail", "--timeout", "90s")
    # valid YAML, but not a valid object: the API server rejects Flux's dry-run
    (app / "bad.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\n"
                                  "data:\n  - not a map\n")
    line = failed(cluster, "sync", "fail", "-n", namespace, "--timeout", "90s")
    assert "Flux could not apply" in line and "ConfigMap" in line and "bad" in line, line
    assert get(kubectl, "configmap", "hello", namespace)        # last good state stays
    (app / "bad.yaml").unlink()
    assert ok(cluster, "sync", "fail", "-n", namespace).stdout.startswith("+0 ~0 -1 files")
    # Flux may run one more reconcile of its own right after (Ready Unknown meanwhile)
    wait_for("the session Ready", lambda: json.loads(ok(
        cluster, "ls", "-n", namespace, "-o", "json").stdout)["items"][0]["ready"] == "True")


def test_no_silent_takeover_of_a_same_named_session(cluster, kubectl, namespace, tmp_path):
    """`up p1/deploy` then `up p2/deploy`: the default names collide, and the
    second would re-point the first project's session (issue 12, item 3)."""
    first, second = tmp_path / "p1" / "deploy", tmp_path / "p2" / "deploy"
    for d in (first, second):
        shutil.copytree(HELLO, d)
    ok(cluster, "up", str(first), "-n", namespace, "--no-wait")
    line = failed(cluster, "up", str(second), "-n", namespace, "--no-wait")
    assert str(first) in line and str(second) in line and "--force" in line
    line = failed(cluster, "sync", "deploy", "--dir", str(second), "-n", namespace)
    assert str(first) in line and "--force" in line
    bucket = get(kubectl, "bucket", "gitops-run-deploy", namespace)
    assert bucket["metadata"]["annotations"]["kubectl-gitops-run.io/source"] == str(first)
    ok(cluster, "up", str(second), "-n", namespace, "--no-wait", "--force")
    bucket = get(kubectl, "bucket", "gitops-run-deploy", namespace)
    assert bucket["metadata"]["annotations"]["kubectl-gitops-run.io/source"] == str(second)
    ok(cluster, "down", "deploy", "-n", namespace)


def test_down_keeps_what_the_session_did_not_create(cluster, kubectl, namespace, tmp_path):
    """The session's own Namespace, a ConfigMap shared before the session and
    one annotated prune: disabled end up in the inventory; `down` keeps them
    and prunes only what the session created (issue 12, item 2)."""
    kubectl("create", "configmap", "shared", "-n", namespace, "--from-literal=a=1")
    app = tmp_path / "adopt"
    app.mkdir()
    (app / "ns.yaml").write_text(f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n")
    (app / "shared.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n"
                                     "data:\n  a: '1'\n")
    (app / "own.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: own\n"
                                  "data:\n  b: '2'\n")
    (app / "pinned.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: pinned\n  annotations:\n"
        "    kustomize.toolkit.fluxcd.io/prune: disabled\ndata:\n  c: '3'\n")
    ok(cluster, "up", str(app), "-n", namespace)
    dry = ok(cluster, "down", "adopt", "-n", namespace, "--dry-run").stdout
    assert f"would prune ConfigMap {namespace}/own" in dry
    assert f"kept Namespace {namespace}: a Namespace is never pruned" in dry
    assert f"kept ConfigMap {namespace}/shared: it existed before the session" in dry
    assert f"kept ConfigMap {namespace}/pinned: it is annotated" in dry
    assert get(kubectl, "kustomization", "gitops-run-adopt", namespace) is not None
    ok(cluster, "down", "adopt", "-n", namespace)
    assert get(kubectl, "configmap", "own", namespace) is None
    for kept in ("shared", "pinned"):
        assert get(kubectl, "configmap", kept, namespace) is not None
    ns = json.loads(kubectl("get", "namespace", namespace, "-o", "json"))
    assert "deletionTimestamp" not in ns["metadata"]


def test_dry_runs_list_the_files_and_touch_nothing(cluster, kubectl, namespace, app):
    # up --dry-run of a new session: every file would go up; nothing is created
    res = ok(cluster, "up", str(app), "-n", namespace, "--dry-run")
    assert res.stdout.splitlines() == [
        f"would sync +3 ~0 -0 files, revision {revision(app, namespace)[:15]} "
        f"(dry run: nothing uploaded)", "+ configmap.yaml", "+ deployment.yaml",
        "+ service.yaml"]
    assert ours(kubectl, namespace) == {}
    ok(cluster, "up", str(app), "-n", namespace)
    applied = get(kubectl, "bucket", "gitops-run-hello", namespace)["status"]["artifact"]
    # an edit, an addition and a deletion: listed, not synced
    (app / "configmap.yaml").write_text((app / "configmap.yaml").read_text()
                                        .replace("Hello from", "Not yet"))
    (app / "extra.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n")
    (app / "service.yaml").unlink()
    res = ok(cluster, "sync", "-n", namespace, "--dry-run", cwd=app)
    assert res.stdout.splitlines()[1:] == ["+ extra.yaml", "~ configmap.yaml", "- service.yaml"]
    assert res.stdout.startswith("would sync +1 ~1 -1 files"), res.stdout
    doc = json.loads(ok(cluster, "sync", "hello", "-n", namespace, "--dry-run", "-o",
                        "json").stdout)
    assert doc["dryRun"] is True and doc["removed"] == ["service.yaml"]
    assert doc["revision"] == revision(app, namespace)
    assert get(kubectl, "bucket", "gitops-run-hello", namespace)["status"]["artifact"] == applied
    assert get(kubectl, "configmap", "hello", namespace)["data"]["greeting"] == \
        "Hello from kubectl gitops-run"
    assert get(kubectl, "service", "hello", namespace) is not None
    assert "--dry-run and --watch" in failed(cluster, "sync", "hello", "-n", namespace,
                                             "--dry-run", "--watch", code=2)
