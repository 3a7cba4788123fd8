"""`make dist` end to end: wheel and sdist, the zipapp, the krew archive and the
rendered krew manifest; then an install the way krew does it into a temporary
KREW_ROOT, used through real kubectl against the local cluster.

krew itself (and its validate-krew-manifest) cannot be built here: the Go
module proxy refuses sigs.k8s.io/krew. krew/manifest.py restates krew's
validation rules and `krew_install()` below does what `kubectl krew install
--manifest=... --archive=...` does: check the archive's sha256, unpack it,
apply the platform's `files` into store/<name>/<version>, link `bin` into
KREW_ROOT/bin as kubectl-<name with - as _>, and write a receipt.
"""
from __future__ import annotations

import glob
import hashlib
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROG = "kubectl-gitops_run"
HELPER = "kubectl_complete-gitops_run"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


krew = _load("krew_manifest", ROOT / "krew" / "manifest.py")
dist_mod = _load("gitops_run_dist", ROOT / "packaging" / "dist.py")


@pytest.fixture(scope="session")
def version() -> str:
    return dist_mod.version()


@pytest.fixture(scope="session")
def dist(tmp_path_factory) -> Path:
    """Everything `make dist` builds, built once into a temporary directory."""
    pytest.importorskip("kubectl_gitops_run.cli")
    if importlib.util.find_spec("build") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                        "--disable-pip-version-check", "build"], check=True)
    out = tmp_path_factory.mktemp("dist")
    res = subprocess.run([sys.executable, str(ROOT / "packaging" / "dist.py"), "--dist", str(out)],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-4000:]
    return out


@pytest.fixture(scope="session")
def zipapp_path(dist) -> Path:
    return dist / PROG


def run_zipapp(python: str, app: Path, *args: str, cache: Path | None = None, env=None,
               timeout=300) -> subprocess.CompletedProcess:
    e = dict(env or os.environ)
    if cache is not None:
        e["KUBECTL_GITOPS_RUN_CACHE"] = str(cache)
    return subprocess.run([python, "-I", str(app), *args], env=e, capture_output=True,
                          text=True, timeout=timeout)


# --- the artifacts ---------------------------------------------------------------


def test_dist_holds_every_artifact(dist, version):
    names = sorted(p.name for p in dist.iterdir())
    assert PROG in names
    assert krew.archive_name(version) in names
    assert "gitops-run.yaml" in names
    assert len([n for n in names if n.endswith(".whl")]) == 1
    sdists = [n for n in names if n.endswith(".tar.gz") and n != krew.archive_name(version)]
    assert len(sdists) == 1 and version in sdists[0]


def test_zipapp_is_an_executable_pure_python_archive(zipapp_path):
    data = zipapp_path.read_bytes()
    assert data.startswith(b"#!/usr/bin/env python3\n")
    assert zipapp_path.stat().st_mode & 0o111 == 0o111
    with zipfile.ZipFile(zipapp_path) as zf:
        names = zf.namelist()
    compiled = [n for n in names if n.endswith((".so", ".pyd", ".dylib", ".dll", ".pyc", ".pyo"))]
    assert compiled == []
    for pkg in ("kubectl_gitops_run/", "click/", "kubernetes/", "requests/", "yaml/",
                "tabulate", "pathspec/", "requests_aws4auth/"):
        assert any(n.startswith(pkg) for n in names), pkg
    assert "__main__.py" in names


def test_zipapp_runs_from_an_empty_venv(zipapp_path, version, tmp_path):
    venv = tmp_path / "empty"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME", "PYTHONPATH")}
    env.pop("KUBECTL_GITOPS_RUN_CACHE", None)
    env["HOME"] = str(home)
    res = run_zipapp(str(venv / "bin" / "python3"), zipapp_path, "--version", env=env)
    assert res.returncode == 0, res.stderr
    assert version in res.stdout
    # Unpacked once into the per-user cache, with bytecode.
    (unpacked,) = (home / ".cache" / "kubectl-gitops-run" / "zipapp").iterdir()
    assert unpacked.name.endswith(sys.implementation.cache_tag)
    assert (unpacked / "kubectl_gitops_run").is_dir()
    assert list(unpacked.glob("kubernetes/client/__pycache__/*.pyc"))


def _other_pythons() -> list[str]:
    """One interpreter per other supported minor version found here (that runs)."""
    found = []
    for minor in (10, 12, 13, 14):
        if sys.version_info[:2] == (3, minor):
            continue
        cands = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/3.{minor}.*/bin/python3")))
        cands += [c for c in [shutil.which(f"python3.{minor}")] if c]
        for c in cands:
            ok = subprocess.run([c, "-c", "import sys"], capture_output=True).returncode == 0
            if ok:
                found.append(c)
                break
    return found


@pytest.mark.parametrize("python", _other_pythons() or [None])
def test_zipapp_runs_on_other_supported_pythons(zipapp_path, version, python, tmp_path):
    if python is None:
        pytest.skip("no other Python 3.10+ on this machine")
    res = run_zipapp(python, zipapp_path, "--version", cache=tmp_path)
    assert res.returncode == 0, res.stderr
    assert version in res.stdout
    # The full client stack imports, from the unpacked copy.
    probe = ("import kubernetes.client, kubernetes.config, kubernetes.stream, yaml, requests, "
             "tabulate, pathspec, requests_aws4auth, click; print(kubernetes.__file__)")
    (unpacked,) = (tmp_path / "zipapp").iterdir()
    res = subprocess.run([python, "-I", "-c", f"import sys; sys.path.insert(0, {str(unpacked)!r}); "
                          + probe], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert str(unpacked) in res.stdout


def test_concurrent_first_runs_share_one_unpacked_copy(zipapp_path, version, tmp_path):
    def one(_):
        return run_zipapp(sys.executable, zipapp_path, "--version", cache=tmp_path)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, range(4)))
    for res in results:
        assert res.returncode == 0, res.stderr
        assert version in res.stdout
    entries = sorted(p.name for p in (tmp_path / "zipapp").iterdir())
    assert len(entries) == 1 and not entries[0].startswith(".unpack-"), entries


def test_later_runs_reuse_the_cache(zipapp_path, tmp_path):
    assert run_zipapp(sys.executable, zipapp_path, "--version", cache=tmp_path).returncode == 0
    (unpacked,) = (tmp_path / "zipapp").iterdir()
    before = {p: p.stat().st_mtime_ns for p in unpacked.rglob("*.pyc")}
    assert run_zipapp(sys.executable, zipapp_path, "--help", cache=tmp_path).returncode == 0
    after = {p: p.stat().st_mtime_ns for p in unpacked.rglob("*.pyc")}
    assert before == after


def test_unwritable_cache_still_runs(zipapp_path, version, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    res = run_zipapp(sys.executable, zipapp_path, "--version", cache=blocker / "cache")
    assert res.returncode == 0, res.stderr
    assert version in res.stdout


def test_archive_layout(dist, version, zipapp_path):
    with tarfile.open(dist / krew.archive_name(version)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert sorted(n for n, m in members.items() if m.isfile()) == sorted([
            PROG, HELPER, "LICENSE", "completions/_kubectl-gitops_run",
            "completions/kubectl-gitops_run.bash", "completions/kubectl-gitops_run.fish"])
        assert members[PROG].mode & 0o111 and members[HELPER].mode & 0o111
        assert tar.extractfile(PROG).read() == zipapp_path.read_bytes()
        assert b"Apache License" in tar.extractfile("LICENSE").read()


def test_manifest_is_valid_and_points_at_the_archive(dist, version):
    path = dist / "gitops-run.yaml"
    doc = yaml.safe_load(path.read_text())
    assert krew.validate(doc, str(path)) == []
    assert doc["metadata"]["name"] == "gitops-run"
    assert doc["spec"]["version"] == f"v{version}"
    sha = hashlib.sha256((dist / krew.archive_name(version)).read_bytes()).hexdigest()
    got = {(p["selector"]["matchLabels"]["os"], p["selector"]["matchLabels"]["arch"])
           for p in doc["spec"]["platforms"]}
    assert got == set(krew.PLATFORMS)
    for p in doc["spec"]["platforms"]:
        assert p["sha256"] == sha
        assert p["uri"].endswith(f"/v{version}/{krew.archive_name(version)}")
        assert p["bin"] == PROG
    caveats = doc["spec"]["caveats"]
    assert "python3 >= 3.10" in caveats and "Flux" in caveats
    assert doc["spec"]["description"].strip()


def test_template_renders_a_valid_manifest_without_a_build():
    doc = yaml.safe_load(krew.render("1.2.3-rc.1", "https://e.invalid/a.tar.gz", "a" * 64))
    assert krew.validate(doc, "gitops-run.yaml") == []


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.update(apiVersion="krew.googlecontainertools.github.com/v1alpha1"), "apiVersion"),
    (lambda d: d.update(kind="Plugins"), "kind"),
    (lambda d: d["metadata"].update(name="gitops run"), "not allowed"),
    (lambda d: d["spec"].update(version="0.1.0"), "'v' prefix"),
    (lambda d: d["spec"].update(version="v1.2"), "'v' prefix"),
    (lambda d: d["spec"].pop("shortDescription"), "short description"),
    (lambda d: d["spec"].update(platforms=[]), "platform specified"),
    (lambda d: d["spec"]["platforms"][0].update(sha256="ABC"), "sha256"),
    (lambda d: d["spec"]["platforms"][0].pop("uri"), "`uri`"),
    (lambda d: d["spec"]["platforms"][0].pop("bin"), "`bin`"),
    (lambda d: d["spec"]["platforms"][0].update(files=[]), "`files`"),
    (lambda d: d["spec"]["platforms"][0].update(files=[{"from": "x"}]), "`to`"),
    (lambda d: d["spec"]["platforms"][0].pop("selector"), "selector"),
    (lambda d: d["spec"]["platforms"][0]["selector"]["matchLabels"].update(distro="debian"),
     "not supported"),
    (lambda d: d["spec"]["platforms"][1]["selector"].update(
        matchLabels={"os": "linux", "arch": "amd64"}), "several platforms"),
])
def test_validation_catches_what_krew_rejects(mutate, message):
    doc = yaml.safe_load(krew.render("0.1.0", "https://e.invalid/a.tar.gz", "a" * 64))
    mutate(doc)
    errs = krew.validate(doc, "gitops-run.yaml")
    assert any(message in e for e in errs), errs


def test_manifest_file_must_be_named_for_the_plugin():
    doc = yaml.safe_load(krew.render("0.1.0", "https://e.invalid/a.tar.gz", "a" * 64))
    assert any("krew wants" in e for e in krew.validate(doc, "plugin.yaml"))


# --- install like krew, use through kubectl -----------------------------------------


def host_platform() -> tuple[str, str]:
    os_ = {"Linux": "linux", "Darwin": "darwin"}[platform.system()]
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}[
        platform.machine().lower()]
    return os_, arch


def krew_install(manifest: Path, archive: Path, krew_root: Path) -> Path:
    """What `kubectl krew install --manifest=M --archive=A` does; returns KREW_ROOT/bin."""
    doc = yaml.safe_load(manifest.read_text())
    errs = krew.validate(doc, str(manifest))
    assert errs == [], errs
    name, version = doc["metadata"]["name"], doc["spec"]["version"]
    plat = krew.matching_platform(doc, *host_platform())
    assert plat is not None, "no platform matches this machine"
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == plat["sha256"]
    staging = krew_root / "staging"
    with tarfile.open(archive) as tar:
        tar.extractall(staging)
    store = krew_root / "store" / name / version
    store.mkdir(parents=True)
    for op in plat.get("files") or [{"from": "*", "to": "."}]:
        matches = glob.glob(str(staging / op["from"]))
        assert matches, f"`files` from {op['from']!r} matches nothing in the archive"
        dest = store / op["to"]
        dest.mkdir(parents=True, exist_ok=True)
        for m in matches:
            shutil.move(m, dest / Path(m).name)
    bin_path = (store / plat["bin"]).resolve()
    assert bin_path.is_relative_to(store.resolve()) and bin_path.is_file()
    bin_dir = krew_root / "bin"
    bin_dir.mkdir()
    (bin_dir / ("kubectl-" + name.replace("-", "_"))).symlink_to(bin_path)
    receipts = krew_root / "receipts"
    receipts.mkdir()
    (receipts / f"{name}.yaml").write_text(yaml.safe_dump(
        dict(doc, status={"source": {"name": "detached"}})))
    shutil.rmtree(staging)
    return bin_dir


@pytest.fixture
def krew_env(dist, version, cluster, tmp_path) -> dict:
    """PATH: KREW_ROOT/bin, then the cluster's bin dir (kubectl), then the system;
    nothing of this venv, so only the krew-installed plugin can be found."""
    krew_root = tmp_path / "krew"
    bin_dir = krew_install(dist / "gitops-run.yaml", dist / krew.archive_name(version), krew_root)
    venv_bin = str(Path(sys.executable).parent)
    rest = [p for p in os.environ["PATH"].split(os.pathsep) if p and p != venv_bin]
    env = dict(cluster.env)
    env.update(PATH=os.pathsep.join([str(bin_dir), str(cluster.bin_dir), *rest]),
               KREW_ROOT=str(krew_root), KUBECONFIG=str(cluster.kubeconfig),
               KUBECTL_GITOPS_RUN_CACHE=str(tmp_path / "cache"))
    env.pop("PYTHONPATH", None)
    return env


def kubectl(env, *args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(["kubectl", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_krew_installed_plugin_works_through_kubectl(krew_env, version, namespace):
    res = kubectl(krew_env, "plugin", "list")
    assert res.returncode == 0, res.stderr
    assert f"{krew_env['KREW_ROOT']}/bin/{PROG}" in res.stdout
    res = kubectl(krew_env, "gitops-run", "--version")
    assert res.returncode == 0, res.stderr
    assert version in res.stdout
    res = kubectl(krew_env, "gitops-run", "ls", "-n", namespace)
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""
    assert f"No resources found in {namespace} namespace." in res.stderr


def test_krew_installed_completion_helper(krew_env, version):
    """The caveats' one-liner: link the helper beside the plugin link."""
    store = Path(krew_env["KREW_ROOT"]) / "store" / "gitops-run" / f"v{version}"
    (Path(krew_env["KREW_ROOT"]) / "bin" / HELPER).symlink_to(store / HELPER)
    res = kubectl(krew_env, "__complete", "gitops-run", "")
    assert res.returncode == 0, res.stderr
    out = res.stdout.splitlines()
    assert out[-1] == ":4" and {"up", "sync", "ls", "down"} <= set(out), out
    res = kubectl(krew_env, "__complete", "gitops-run", "ls", "--context", "")
    assert "gitops-run-local" in res.stdout.splitlines()
    assert (store / "completions" / "kubectl-gitops_run.bash").is_file()


def test_shell_scripts_match_the_cli(zipapp_path, tmp_path):
    """`kubectl gitops-run completion SHELL` (here through the zipapp) prints the
    committed scripts."""
    for shell, name in (("bash", "kubectl-gitops_run.bash"), ("zsh", "_kubectl-gitops_run"),
                        ("fish", "kubectl-gitops_run.fish")):
        res = run_zipapp(sys.executable, zipapp_path, "completion", shell, cache=tmp_path)
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == (ROOT / "completions" / name).read_text().strip()


def test_version_lives_in_one_place(version):
    assert re.fullmatch(r"\d+\.\d+\.\d+([-+.].*)?", version)
    hits = subprocess.run(["git", "grep", "--untracked", "-l", "-F", f'"{version}"', "--", "*.py", "*.cfg",
                           "*.toml", "*.in", ":!tests"], cwd=ROOT, capture_output=True, text=True).stdout
    assert hits.split() == ["kubectl_gitops_run/__init__.py"], hits
