"""The corpus (tests/corpus, issue 11 "Tests"): directories in the shapes real
repositories have, each run end to end on the dev cluster as a user runs the
plugin. Every case states its outcome and the words it must end with:

- ready: `up` ends with the session Ready and says what it applied;
- refused: the pre-flight stops `up` in one line before anything is uploaded;
- not-ready: Flux applies the tree, and the error names the object that is
  not Ready and why (issue 11, item 6).

And every case asks Flux's own verdict on the same tree: where the pre-flight
lets it through, kustomize-controller (or helm-controller) must build and
apply it; where the pre-flight refuses, the same tree pushed past the
pre-flight (the plugin run with the check taken out) must fail Flux's build.
The refused cases share one such session, and each case's session is taken
down when its case ends, so the suite stays short.
"""
from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import run_plugin
from tests.e2e.test_plugin import get

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
PROBE = "probe"         # the session the refused trees are pushed past the pre-flight in
# The plugin with the pre-flight taken out: how Flux's verdict on a refused tree is asked.
PAST_PREFLIGHT = ("import sys\n"
                  "from kubectl_gitops_run.core import preflight\n"
                  "preflight.check = lambda *args, **kwargs: None\n"
                  "from kubectl_gitops_run.cli import main\n"
                  "sys.exit(main())\n")


@dataclass(frozen=True)
class Case:
    id: str
    dir: str                    # under tests/corpus; the session is named after the case
    outcome: str                # ready, refused or not-ready
    want: tuple = ()            # in stdout (ready) or the one error line; {ns} is filled in
    args: tuple = ()            # more arguments for `up`
    flux: str = ""              # in Flux's message when its build fails (refused cases)


CASES = [
    # first: their sessions are taken down in the background while the others run
    Case("flux-helmreleases", "flux-helmreleases", "not-ready", args=("--timeout", "20s"),
         want=("not ready: HelmRelease.helm.toolkit.fluxcd.io {ns}/podinfo",)),
    Case("never-ready", "never-ready", "not-ready", args=("--timeout", "20s"),
         want=("Deployment.apps {ns}/worker", "ImagePullBackOff")),
    Case("pvc-pending", "pvc-pending", "not-ready", args=("--timeout", "20s"),
         want=("PersistentVolumeClaim {ns}/data: Pending",
               "no matching storage class or provisioner: no default storage class")),
    Case("repo-root", "repo-root", "refused",
         want=("docker-compose.images.yml is not a Kubernetes object: no apiVersion, kind, "
               "metadata.name", "--path k8s/", "`/docker-compose.images.yml` to .sourceignore"),
         flux="docker-compose.images.yml"),
    # .github/ and the image are Flux's default excludes: 8 of the 10 files go up
    Case("repo-root-k8s", "repo-root", "ready", args=("--path", "k8s"),
         want=("ready in namespace {ns}: 8 files", "applied 3 objects")),
    Case("nested-plain", "nested-plain", "ready", want=("applied 7 objects",)),
    Case("own-namespaces", "own-namespaces", "ready", want=("applied 5 objects",)),
    Case("base-outside", "base-outside/overlays/dev", "refused",
         want=("kustomization.yaml refers to ../../base, outside the uploaded directory",
               "base-outside --path overlays/dev` instead"),
         flux="base"),
    Case("base-outside-root", "base-outside", "ready", args=("--path", "overlays/dev"),
         want=("applied 3 objects",)),
    Case("chart-prod", "chart-prod", "ready", args=("--values", "values-prod.yaml"),
         want=("applied 1 object",)),
    Case("sops-secret", "sops-secret", "ready", want=("applied 2 objects",)),
    Case("generate-name", "generate-name", "refused",
         want=("migrate-job.yaml is not a Kubernetes object: no metadata.name (generateName is "
               "not enough for kustomize)",), flux="migrate-job.yaml"),
    Case("duplicates", "duplicates", "refused",
         want=("legacy/settings.yaml and configmap.yaml both define ConfigMap settings; keep "
               "one of them",), flux="settings"),
]


BACKGROUND: list[subprocess.Popen] = []     # downs still running


@pytest.fixture(scope="module")
def ns(cluster):
    """One namespace for the whole corpus: sessions are per case."""
    name = f"corpus-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    run_plugin(cluster, "down", PROBE, "-n", name)
    for proc in BACKGROUND:
        proc.wait(timeout=300)
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def down(cluster, case: Case, ns: str) -> None:
    """A session whose objects never became Ready takes as long to remove as
    kustomize-controller's health checks may run (its finalizer waits for
    them, up to the Kustomization's timeout): that one goes in the background."""
    if case.outcome != "not-ready":
        run_plugin(cluster, "down", case.id, "-n", ns)
        return
    exe = shutil.which("kubectl-gitops_run", path=str(Path(sys.executable).parent))
    BACKGROUND.append(subprocess.Popen([exe, "down", case.id, "-n", ns], env=cluster.env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))


def copy_case(case: Case, tmp_path: Path, ns: str) -> Path:
    """The case's tree, copied (the plugin keeps digests of what it scans),
    with the cluster-wide names made unique to this run."""
    top = case.dir.split("/")[0]
    shutil.copytree(CORPUS / top, tmp_path / top)
    for path in (tmp_path / top).rglob("*.yaml"):
        text = path.read_text()
        if "corpus-team-" in text:
            path.write_text(text.replace("corpus-team-", f"{ns}-team-"))
    return tmp_path / case.dir


def error_line(res) -> str:
    lines = res.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr
    return lines[-1]


def ready(kubectl, kind: str, name: str, ns: str) -> tuple[dict, dict]:
    """The object's Ready condition ({} if none), and its status."""
    status = (get(kubectl, kind, name, ns) or {}).get("status") or {}
    cond = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})
    return cond, status


def flux_builds(kubectl, case: Case, ns: str) -> None:
    """Flux's verdict on a tree the pre-flight let through: built and applied
    (Ready, or its objects applied and their health checks under way)."""
    if case.dir.startswith("chart"):
        cond, status = ready(kubectl, "helmrelease", f"gitops-run-{case.id}", ns)
        assert cond.get("status") == "True", status
        return
    cond, status = ready(kubectl, "kustomization", f"gitops-run-{case.id}", ns)
    assert cond.get("reason") != "BuildFailed", status
    assert (status.get("inventory") or {}).get("entries"), status


def flux_refuses(cluster, kubectl, case: Case, source: Path, ns: str) -> None:
    """Push the refused tree past the pre-flight: Flux's build must fail too."""
    res = subprocess.run([sys.executable, "-c", PAST_PREFLIGHT, "up", str(source), "-n", ns,
                          "--name", PROBE, "--force", "--timeout", "60s"],
                         env=cluster.env, capture_output=True, text=True, timeout=150)
    assert res.returncode == 1, res.stdout + res.stderr
    cond, status = ready(kubectl, "kustomization", f"gitops-run-{PROBE}", ns)
    assert (cond.get("status"), cond.get("reason")) == ("False", "BuildFailed"), status
    assert case.flux in cond["message"], cond["message"]
    assert case.flux in error_line(res)     # the plugin passes Flux's words on


def encrypt_secret(cluster, tree: Path, tmp_path: Path) -> Path:
    """secret.yaml encrypted in place by the real sops for a fresh age key;
    returns the key file."""
    key = tmp_path / "keys" / "age.agekey"
    key.parent.mkdir()
    subprocess.run([str(cluster.bin_dir / "age-keygen"), "-o", str(key)], check=True,
                   capture_output=True)
    recipient = re.search(r"public key: (age1\w+)", key.read_text()).group(1)
    sealed = subprocess.run([str(cluster.bin_dir / "sops"), "--encrypt", "--age", recipient,
                             "--encrypted-regex", "^(data|stringData)$",
                             str(tree / "secret.yaml")],
                            check=True, capture_output=True, text=True).stdout
    (tree / "secret.yaml").write_text(sealed)
    return key


def checks_after(kubectl, case: Case, ns: str) -> None:
    """What some cases must have put where."""
    if case.id == "own-namespaces":
        for team in "ab":     # Namespace objects keep their names; objects keep their namespace
            assert get(kubectl, "namespace", f"{ns}-team-{team}", "")
            cm = get(kubectl, "configmap", "settings", f"{ns}-team-{team}")
            assert cm["data"] == {"team": team}
        assert get(kubectl, "configmap", "settings", ns)["data"] == {"team": "shared"}
    elif case.id == "chart-prod":
        cm = get(kubectl, "configmap", "chart-prod-greeter", ns)
        assert cm["data"] == {"greeting": "hello from prod", "environment": "prod"}
    elif case.id == "sops-secret":
        secret = get(kubectl, "secret", "db-credentials", ns)
        assert base64.b64decode(secret["data"]["password"]) == b"correct-horse-battery-staple"
    elif case.id == "nested-plain":     # jobs/ was built as a unit, with its own prefix
        assert get(kubectl, "cronjob", "nightly-cleanup", ns)
    elif case.id == "repo-root-k8s":
        assert get(kubectl, "deployment", "shop", ns)["status"].get("readyReplicas") == 1


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_corpus(cluster, kubectl, ns, tmp_path, case):
    source = copy_case(case, tmp_path, ns)
    args = list(case.args)
    if case.id == "sops-secret":
        args += ["--decryption-key", str(encrypt_secret(cluster, source, tmp_path))]
    start = time.monotonic()
    res = run_plugin(cluster, "up", str(source), "-n", ns, "--name", case.id, *args,
                     timeout=150)
    took = time.monotonic() - start
    print(f"\n{case.id}: {case.outcome} in {took:.1f}s")
    want = [w.format(ns=ns) for w in case.want]
    try:
        if case.outcome == "ready":
            assert res.returncode == 0, res.stderr
            assert all(w in res.stdout for w in want), res.stdout
        else:
            assert res.returncode == 1, res.stdout + res.stderr
            line = error_line(res)
            print(line)
            assert all(w in line for w in want), line
        if case.outcome == "refused":
            assert get(kubectl, "bucket", f"gitops-run-{case.id}", ns) is None   # nothing sent
            flux_refuses(cluster, kubectl, case, source, ns)
        else:
            flux_builds(kubectl, case, ns)
            checks_after(kubectl, case, ns)
    finally:
        if case.outcome != "refused":
            down(cluster, case, ns)
        if case.id == "own-namespaces":      # down keeps Namespaces: they were not ours
            for team in "ab":
                kubectl("delete", "namespace", f"{ns}-team-{team}", "--wait=false", check=False)


def test_target_namespace_still_forces_one(cluster, kubectl, ns, tmp_path):
    """--target-namespace: every object in it, the ones that name another too,
    as Flux's targetNamespace does."""
    target = f"{ns}-forced"
    kubectl("create", "namespace", target)
    tree = tmp_path / "forced"
    shutil.copytree(CORPUS / "own-namespaces" / "shared", tree)
    (tree / "named.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: named\n"
                                     f"  namespace: {ns}-elsewhere\ndata:\n  a: b\n")
    try:
        res = run_plugin(cluster, "up", str(tree), "-n", ns, "--target-namespace", target)
        assert res.returncode == 0, res.stderr
        assert get(kubectl, "configmap", "settings", target)
        assert get(kubectl, "configmap", "named", target)
        assert get(kubectl, "configmap", "settings", ns) is None
    finally:
        run_plugin(cluster, "down", "forced", "-n", ns)
        kubectl("delete", "namespace", target, "--wait=false", check=False)
