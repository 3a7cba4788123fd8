"""`make dist` end to end: wheel and sdist, the zipapp, the krew archive and the
rendered krew manifest; then krew itself checks and installs them.

krew and its validate-krew-manifest are built from the Go module proxy
(sigs.k8s.io/krew, pinned in devcluster/versions.toml, cached with the control
plane's programs by devcluster/build.py; krew is installed there as
kubectl-krew, so `kubectl krew` finds it). validate-krew-manifest checks
dist/gitops-run.yaml, and installs a copy rendered for a release server on
127.0.0.1 on every platform; it also rejects each broken manifest that
krew/manifest.py's restated rules (what `make dist` checks without Go) reject.
`kubectl krew install --manifest=dist/gitops-run.yaml --archive=<tar.gz>` then
installs the plugin into a temporary KREW_ROOT, and with KREW_ROOT/bin on PATH
`kubectl plugin list`, `kubectl gitops-run --version` and `kubectl gitops-run
ls` run the krew-installed plugin against the local cluster. `kubectl krew
install --manifest-url=...` from the loopback release server and `kubectl krew
uninstall` work too. Nothing here talks to anything but 127.0.0.1 (see OFFLINE),
apart from pip resolving the zipapp's dependencies in `make dist`.
"""
from __future__ import annotations

import functools
import glob
import hashlib
import http.server
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from devcluster import build as harness

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
                "tabulate", "requests_aws4auth/"):
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
             "tabulate, requests_aws4auth, click; print(kubernetes.__file__)")
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


def test_cache_is_private_and_a_tampered_copy_is_not_imported(zipapp_path, version, tmp_path):
    assert run_zipapp(sys.executable, zipapp_path, "--version", cache=tmp_path).returncode == 0
    (unpacked,) = (tmp_path / "zipapp").iterdir()
    assert unpacked.stat().st_mode & 0o077 == 0
    init = unpacked / "kubectl_gitops_run" / "__init__.py"
    assert init.stat().st_mode & 0o077 == 0
    init.write_text(init.read_text() + "\nprint('TAMPERED')\n")
    for pyc in (unpacked / "kubectl_gitops_run" / "__pycache__").glob("__init__*.pyc"):
        pyc.unlink()
    res = run_zipapp(sys.executable, zipapp_path, "--version", cache=tmp_path)
    assert res.returncode == 0 and version in res.stdout, res.stderr
    assert "TAMPERED" not in res.stdout + res.stderr


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


def test_manifest_points_at_the_archive(dist, version):
    path = dist / "gitops-run.yaml"
    doc = yaml.safe_load(path.read_text())
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


# --- krew's own validate-krew-manifest decides ------------------------------------


@pytest.fixture(scope="session")
def krew_bin() -> Path:
    """The control plane's bin dir, holding kubectl, kubectl-krew and
    validate-krew-manifest (sigs.k8s.io/krew, pinned in versions.toml)."""
    if harness.missing():
        if shutil.which("go") is None:
            msg = "SKIPPING: Go is not installed, so krew cannot be built from the module proxy"
            print(f"\n{'!' * 80}\n{msg}\n{'!' * 80}")
            pytest.skip(msg)
        harness.build()
    return harness.bin_dir()


def clean_path(*first: Path) -> str:
    """`first`, then this PATH without this venv and without any directory that
    holds another copy of the plugin: only what `first` holds can be found."""
    venv_bin = str(Path(sys.executable).parent)
    rest = [p for p in os.environ["PATH"].split(os.pathsep)
            if p and p != venv_bin and not any((Path(p) / n).exists() for n in (PROG, HELPER))]
    return os.pathsep.join([*map(str, first), *rest])


# krew goes to the network to clone or update its index (`install` does, unless
# given --manifest or --no-update-index), to download manifests and archives
# (not with --archive; here only from the loopback server below) and for its
# upgrade check (never in a build without a release tag, which is how
# devcluster/build.py builds it; KREW_NO_UPGRADE_CHECK besides). Anything that
# slips through goes to this proxy, a closed port on 127.0.0.1: it fails and
# never leaves the machine. Go never proxies loopback addresses.
OFFLINE = {"KREW_NO_UPGRADE_CHECK": "1",
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "NO_PROXY": "", "no_proxy": ""}


def validate_krew_manifest(krew_bin: Path, manifest: Path, *flags: str, tmp: Path):
    """The real validator. Without -skip-install it runs `kubectl krew install`
    for every platform (with KREW_OS/KREW_ARCH) into temporary KREW_ROOTs, which
    downloads the archive from each platform's `uri`, then checks that a LICENSE
    was installed. Those installs get an environment of their own (PATH only)."""
    env = dict(os.environ, PATH=clean_path(krew_bin), TMPDIR=str(tmp), **OFFLINE)
    return subprocess.run([str(krew_bin / "validate-krew-manifest"), "-manifest", str(manifest),
                           *flags], env=env, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_request(self, code="-", size="-"):
        self.server.requests.append(self.path)

    def log_message(self, fmt, *args):  # keep pytest's output clean
        pass


@pytest.fixture(scope="session")
def release(dist, version, tmp_path_factory):
    """The release as users would download it, served on 127.0.0.1: the archive
    at <base>/v<version>/<archive> and a manifest rendered for that base URL at
    <base>/gitops-run.yaml. Yields (base URL, that manifest's path, the server,
    whose .requests lists the paths fetched)."""
    www = tmp_path_factory.mktemp("release")
    (www / f"v{version}").mkdir()
    archive = www / f"v{version}" / krew.archive_name(version)
    shutil.copyfile(dist / krew.archive_name(version), archive)
    srv = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(www)))
    srv.requests = []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_port}"
    manifest = www / "gitops-run.yaml"
    assert krew.main(["render", "--version", version, "--archive", str(archive),
                      "--base-url", base, "--out", str(manifest)]) == 0
    try:
        yield base, manifest, srv
    finally:
        srv.shutdown()
        srv.server_close()


def test_krew_validates_the_release_manifest(dist, krew_bin, tmp_path):
    """dist/gitops-run.yaml as it would go to a krew index. Its `uri`s name the
    project's release downloads, so the install part is left to the next test."""
    path = dist / "gitops-run.yaml"
    res = validate_krew_manifest(krew_bin, path, "-skip-install", tmp=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "structural validation OK" in res.stderr
    assert "no overlapping spec.platform[].selector" in res.stderr
    # The restated rules (what `make dist` checks without Go) agree.
    assert krew.validate(yaml.safe_load(path.read_text()), str(path)) == []


def test_krew_validation_installs_every_platform(release, version, krew_bin, tmp_path):
    """The same manifest rendered for a loopback release server: the validator
    installs it as linux and darwin on amd64 and arm64, downloading the archive,
    checking its sha256, applying `files`, and finding the LICENSE."""
    base, manifest, srv = release
    before = len(srv.requests)
    res = validate_krew_manifest(krew_bin, manifest, tmp=tmp_path)
    assert res.returncode == 0, res.stderr
    assert f"all {len(krew.PLATFORMS)} spec.platforms installed fine" in res.stderr
    fetched = srv.requests[before:]
    assert fetched.count(f"/v{version}/{krew.archive_name(version)}") == len(krew.PLATFORMS)


def test_template_renders_a_valid_manifest_without_a_build(krew_bin, tmp_path):
    path = tmp_path / "gitops-run.yaml"
    path.write_text(krew.render("1.2.3-rc.1", "https://e.invalid/a.tar.gz", "a" * 64))
    res = validate_krew_manifest(krew_bin, path, "-skip-install", tmp=tmp_path)
    assert res.returncode == 0, res.stderr
    assert krew.validate(yaml.safe_load(path.read_text()), str(path)) == []


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.update(apiVersion="krew.googlecontainertools.github.com/v1alpha1"), "apiVersion"),
    (lambda d: d.update(kind="Plugins"), "kind"),
    (lambda d: d["metadata"].update(name="gitops run"), "not allowed"),
    (lambda d: d["spec"].update(version="0.1.0"), "'v' prefix"),
    (lambda d: d["spec"].update(version="v1.2"), "'v' prefix"),
    (lambda d: d["spec"].pop("shortDescription"), "short description"),
    (lambda d: d["spec"].update(shortDescription="two\nlines"), "line breaks"),
    (lambda d: d["spec"].update(platforms=[]), "platform specified"),
    (lambda d: d["spec"]["platforms"][0].update(sha256="ABC"), "sha256"),
    (lambda d: d["spec"]["platforms"][0].pop("uri"), "`uri`"),
    (lambda d: d["spec"]["platforms"][0].pop("bin"), "`bin`"),
    (lambda d: d["spec"]["platforms"][0].update(files=[]), "`files`"),
    (lambda d: d["spec"]["platforms"][0].update(files=[{"from": "x"}]), "`to`"),
    (lambda d: d["spec"]["platforms"][0].pop("selector"), "selector"),
    (lambda d: d["spec"]["platforms"][0]["selector"]["matchLabels"].update(distro="debian"),
     "not supported"),
    (lambda d: d["spec"]["platforms"][0]["selector"]["matchLabels"].update(arch="riscv64"),
     "any supported platform"),
    (lambda d: d["spec"]["platforms"][1]["selector"].update(
        matchLabels={"os": "linux", "arch": "amd64"}), "several platforms"),
])
def test_validation_rejects_what_krew_rejects(mutate, message, krew_bin, tmp_path):
    """Each broken manifest is rejected by the real validator, and by the
    restated rules with a message that names the problem."""
    doc = yaml.safe_load(krew.render("0.1.0", "https://e.invalid/a.tar.gz", "a" * 64))
    mutate(doc)
    path = tmp_path / "gitops-run.yaml"
    path.write_text(yaml.safe_dump(doc))
    res = validate_krew_manifest(krew_bin, path, "-skip-install", tmp=tmp_path)
    assert res.returncode != 0, f"validate-krew-manifest accepted it:\n{res.stderr}"
    errs = krew.validate(doc, str(path))
    assert any(message in e for e in errs), errs


def test_manifest_file_must_be_named_for_the_plugin(krew_bin, tmp_path):
    path = tmp_path / "plugin.yaml"
    path.write_text(krew.render("0.1.0", "https://e.invalid/a.tar.gz", "a" * 64))
    res = validate_krew_manifest(krew_bin, path, "-skip-install", tmp=tmp_path)
    assert res.returncode != 0 and 'should be named "plugin"' in res.stderr, res.stderr
    assert any("krew wants" in e for e in krew.validate(yaml.safe_load(path.read_text()),
                                                          str(path)))


# --- install with krew, use through kubectl ---------------------------------------


def krew_env(krew_root: Path, krew_bin: Path, **extra) -> dict:
    """PATH: KREW_ROOT/bin, then the control plane's bin dir (kubectl and
    kubectl-krew), then the system; nothing of this venv, so only the
    krew-installed plugin can be found."""
    env = dict(os.environ, PATH=clean_path(krew_root / "bin", krew_bin),
               KREW_ROOT=str(krew_root), **extra)
    env.pop("PYTHONPATH", None)
    return env


def local_index(krew_root: Path) -> None:
    """`kubectl krew list` and `uninstall` refuse to run before `kubectl krew
    update` has cloned the default index (a git checkout in index/default).
    An empty local repository stands in for it: nothing is ever fetched."""
    subprocess.run(["git", "init", "-q", str(krew_root / "index" / "default")], check=True)


def run(env, *argv, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def kubectl_krew(env, *args) -> subprocess.CompletedProcess:
    return run(dict(env, **OFFLINE), "kubectl", "krew", *args)


@pytest.fixture
def installed(dist, version, krew_bin, cluster, tmp_path) -> dict:
    """`kubectl krew install --manifest=dist/gitops-run.yaml --archive=<the tar.gz>`
    into a fresh KREW_ROOT; returns the environment to use it with."""
    krew_root = tmp_path / "krew"
    env = krew_env(krew_root, krew_bin, KUBECONFIG=str(cluster.kubeconfig),
                   KUBECTL_GITOPS_RUN_CACHE=str(tmp_path / "cache"))
    res = kubectl_krew(env, "install", f"--manifest={dist / 'gitops-run.yaml'}",
                       f"--archive={dist / krew.archive_name(version)}")
    assert res.returncode == 0, res.stderr
    assert "Installed plugin: gitops-run" in res.stderr
    assert "python3 >= 3.10" in res.stderr  # the caveats are shown
    return env


def test_krew_installed_plugin_works_through_kubectl(installed, version, namespace):
    krew_root = Path(installed["KREW_ROOT"])
    local_index(krew_root)
    res = kubectl_krew(installed, "list")
    assert res.returncode == 0, res.stderr
    # Not a terminal: names only. Installed from a file, it is in no index.
    assert res.stdout.split() == ["detached/gitops-run"], res.stdout
    receipt = yaml.safe_load((krew_root / "receipts" / "gitops-run.yaml").read_text())
    assert receipt["spec"]["version"] == f"v{version}"
    link = krew_root / "bin" / PROG
    assert link.is_symlink()
    assert link.resolve() == (krew_root / "store" / "gitops-run" / f"v{version}" / PROG).resolve()
    res = run(installed, "kubectl", "plugin", "list")
    assert res.returncode == 0, res.stderr
    assert str(link) in res.stdout.splitlines()
    res = run(installed, "kubectl", "gitops-run", "--version")
    assert res.returncode == 0, res.stderr
    assert version in res.stdout
    res = run(installed, "kubectl", "gitops-run", "ls", "-n", namespace)
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""
    assert f"No resources found in {namespace} namespace." in res.stderr


def test_krew_installed_completion_helper(installed, version):
    """The caveats' one-liner: link the helper beside the plugin link."""
    store = Path(installed["KREW_ROOT"]) / "store" / "gitops-run" / f"v{version}"
    (Path(installed["KREW_ROOT"]) / "bin" / HELPER).symlink_to(store / HELPER)
    res = run(installed, "kubectl", "__complete", "gitops-run", "")
    assert res.returncode == 0, res.stderr
    out = res.stdout.splitlines()
    assert out[-1] == ":4" and {"up", "sync", "ls", "down"} <= set(out), out
    res = run(installed, "kubectl", "__complete", "gitops-run", "ls", "--context", "")
    assert "gitops-run-local" in res.stdout.splitlines()
    assert (store / "completions" / "kubectl-gitops_run.bash").is_file()


def test_krew_installs_from_a_release_url_and_uninstalls(release, version, krew_bin, tmp_path):
    """What the README tells users: `kubectl krew install --manifest-url=...`,
    krew downloading the archive from the manifest's `uri`; then uninstall."""
    base, _, srv = release
    krew_root = tmp_path / "krew"
    env = krew_env(krew_root, krew_bin, KUBECTL_GITOPS_RUN_CACHE=str(tmp_path / "cache"))
    before = len(srv.requests)
    # --no-update-index: unlike --manifest, --manifest-url would first clone the
    # default index from GitHub (OFFLINE turns that into a failure).
    res = kubectl_krew(env, "install", "--no-update-index", f"--manifest-url={base}/gitops-run.yaml")
    assert res.returncode == 0, res.stderr
    assert srv.requests[before:] == ["/gitops-run.yaml",
                                     f"/v{version}/{krew.archive_name(version)}"]
    res = run(env, "kubectl", "gitops-run", "--version")
    assert res.returncode == 0, res.stderr
    assert version in res.stdout
    local_index(krew_root)
    res = kubectl_krew(env, "uninstall", "gitops-run")
    assert res.returncode == 0, res.stderr
    assert not (krew_root / "bin" / PROG).exists()
    assert not (krew_root / "store" / "gitops-run").exists()


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
