"""Build the local control plane's programs from the Go module proxy.

    python -m devcluster.build          # build what is missing, print the bin dir
    python -m devcluster.build --check  # exit 1 unless everything is built

Every pin lives in versions.toml. Binaries land in a cache outside the repo,
keyed by a hash of that file and of RECIPE, so a warm cache is a no-op and a
changed pin builds a fresh set beside the old one. Each program is built in a
throwaway module because several of them carry replace directives that
`go install pkg@version` refuses; replace directives of a dependency are
ignored, so the throwaway module re-states the ones that point at published
modules.

A step has two phases: fetching (module downloads and `go get`, which wait on
the network) and compiling (`go build`, which waits on the CPU). Every step
fetches at once, niced, while the compiles run: only the first fetch is on the
critical path. Compiles run two at a time when memory allows, because each one
ends in a link that is mostly serial and leaves a core idle. Each step says when
it is done and how long it took, and every 30 s what is still running.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from devcluster.progress import Progress

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, published as tomli
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
VERSIONS_FILE = HERE / "versions.toml"
# Bump when the way a program is built changes, so old caches are not reused.
RECIPE = "3"
# Memory one compile may need at its peak: the kubernetes step links
# kube-apiserver and kube-controller-manager at once, several GB each.
GIB_PER_COMPILE = 8


def pins() -> dict:
    with open(VERSIONS_FILE, "rb") as f:
        return tomllib.load(f)


def cache_root() -> Path:
    root = os.environ.get("GITOPS_RUN_E2E_CACHE")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(xdg) / "kubectl-gitops-run" / "e2e"


def _key(data: bytes) -> str:
    return hashlib.sha256(data + RECIPE.encode()).hexdigest()[:12]


def cache_dir() -> Path:
    """The assembled set for the whole pin file: bin/ and share/ of links."""
    return cache_root() / _key(VERSIONS_FILE.read_bytes())


def step_dir(name: str, p: dict) -> Path:
    """Where one step's products live, keyed by that step's pins alone, so
    changing one pin rebuilds one program."""
    pinned = json.dumps({k: p[k] for k in STEP_PINS[name]}, sort_keys=True).encode()
    return cache_root() / "steps" / f"{name}-{_key(pinned)}"


def bin_dir() -> Path:
    return cache_dir() / "bin"


def share_dir() -> Path:
    """CRDs and kwok stage configs copied out of the downloaded module zips."""
    return cache_dir() / "share"


# Every one is run: kubectl by the cluster itself (kubectl apply) and by users
# (it goes on their PATH), the krew pair by the packaging tests and dist-check,
# sops and age-keygen by the tests of SOPS-encrypted manifests.
PROGRAMS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
            "kubectl", "kwok", "source-controller", "kustomize-controller",
            "helm-controller", "minio", "kubectl-krew", "validate-krew-manifest",
            "sops", "age-keygen"]
SHARED = ["crds", "kwok-stages", "kwok-crds"]


def missing() -> list[str]:
    out = [p for p in PROGRAMS if not (bin_dir() / p).exists()]
    return out + [f"share/{s}" for s in SHARED if not (share_dir() / s).exists()]


# --- go plumbing -----------------------------------------------------------

def _go_env(compiling: bool) -> dict:
    env = dict(os.environ)
    env["GOTOOLCHAIN"] = "local"
    env["CGO_ENABLED"] = "0"
    env.setdefault("GOFLAGS", "-buildvcs=false")
    if not compiling:
        # Fetches wait on the network; one thread each keeps their unpacking
        # and import scanning from taking cores from a compile.
        env["GOMAXPROCS"] = "1"
    return env


def _go(args: list[str], cwd: Path, log, compiling: bool = False) -> str:
    """Run one go command. Fetching commands run niced: a compile goes first."""
    log.write(f"$ go {' '.join(args)}   (in {cwd})\n")
    log.flush()
    argv = ["go", *args] if compiling else ["nice", "-n", "10", "go", *args]
    proc = subprocess.run(argv, cwd=cwd, env=_go_env(compiling), stdout=subprocess.PIPE,
                          stderr=log, text=True)
    if proc.returncode != 0:
        raise BuildError(f"go {args[0]} failed in {cwd}; see {log.name}")
    return proc.stdout


class BuildError(Exception):
    pass


def _download(module: str, version: str, log) -> dict:
    out = _go(["mod", "download", "-json", f"{module}@{version}"], Path.cwd(), log)
    return json.loads(out)


def _published_replaces(gomod: str) -> list[str]:
    """The replace directives of a go.mod that point at published modules.

    Local ones (`=> ./api`, `=> ../client`) exist only in the source tree and are
    dropped: the published twins are what MVS picks for a dependency anyway.
    """
    body = re.sub(r"//.*", "", gomod)
    lines = []
    for block in re.findall(r"^replace\s*\((.*?)^\)", body, re.M | re.S):
        lines += block.splitlines()
    lines += re.findall(r"^replace\s+([^(\n].*)$", body, re.M)
    keep = []
    for line in (l.strip() for l in lines):
        if "=>" not in line:
            continue
        target = line.split("=>", 1)[1].strip()
        if not target.startswith((".", "/")):
            keep.append(line)
    return keep


def _staging_replaces(gomod: str, minor: str, patch: str) -> list[str]:
    """Kubernetes replaces every k8s.io staging module with ./staging/...;
    each is published as k8s.io/<name> v0.<minor>.<patch>."""
    names = re.findall(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/", gomod, re.M)
    return [f"{n} => {n} v0.{minor}.{patch}" for n in names]


def _require(pin: dict) -> str:
    return f"{pin['module']} {pin['version']}"


def _throwaway(work: Path, name: str, requires: list[str], replaces: list[str],
               main_go: str | None = None) -> Path:
    d = work / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    text = f"module gitopsrun.local/build/{name}\n\ngo 1.26\n\nrequire (\n"
    text += "".join(f"\t{r}\n" for r in requires) + ")\n"
    if replaces:
        text += "\nreplace (\n" + "".join(f"\t{r}\n" for r in replaces) + ")\n"
    (d / "go.mod").write_text(text)
    if main_go:
        (d / "main.go").write_text(main_go)
    return d


def _get(work: Path, name: str, pin: dict, pkgs: list[str], log,
         replaces=_published_replaces) -> tuple[dict, Path]:
    """Download the pinned module, make its throwaway module with the replaces
    its go.mod needs carried over, and `go get` the packages to build there.
    Returns the module's download info (Dir, GoMod) and the throwaway dir."""
    info = _download(pin["module"], pin["version"], log)
    d = _throwaway(work, name, [_require(pin)], replaces(Path(info["GoMod"]).read_text()))
    _go(["get", *[f"{pkg}@{pin['version']}" for pkg in pkgs]], d, log)
    return info, d


def _go_build(out: str, pkgs: list[str], ldflags: str = "") -> list[str]:
    return ["build", "-trimpath", f"-ldflags=-s -w{ldflags}", "-o", out, *pkgs]


@dataclass
class Compile:
    """What is left of a step once its modules are fetched: the `go build`
    commands to run in its throwaway module."""
    dir: Path
    builds: list[list[str]]


# --- the programs: each fetches, and returns what to compile -----------------

ETCD_MAIN = ('package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\n'
             "func main() { etcdmain.Main(os.Args) }\n")


def build_etcd(p: dict, work: Path, out: Path, log) -> Compile:
    d = _throwaway(work, "etcd", [_require(p["etcd"])], [], ETCD_MAIN)
    _go(["mod", "tidy"], d, log)
    return Compile(d, [_go_build(str(out / "etcd"), ["."])])


def build_kubernetes(p: dict, work: Path, out: Path, log) -> Compile:
    pin = p["kubernetes"]
    version = pin["version"]
    major, minor, patch = version.lstrip("v").split(".")
    pkgs = [f"{pin['module']}/{c}" for c in pin["commands"]]
    _, d = _get(work, "kubernetes", pin, pkgs, log,
                lambda gomod: _staging_replaces(gomod, minor, patch))
    stamp = ""
    for where in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        stamp += (f" -X {where}.gitVersion={version} -X {where}.gitMajor={major}"
                  f" -X {where}.gitMinor={minor} -X {where}.gitTreeState=clean")
    # One `go build` for all four: they share most packages, compiled once.
    return Compile(d, [_go_build(str(out) + "/", pkgs, stamp)])


def build_kwok(p: dict, work: Path, out: Path, log) -> Compile:
    pin = p["kwok"]
    cmd = f"{pin['module']}/cmd/kwok"
    info, d = _get(work, "kwok", pin, [cmd], log)
    src, share = Path(info["Dir"]) / "kustomize", out.parent / "share"
    shutil.copytree(src / "stage", share / "kwok-stages", dirs_exist_ok=True)
    shutil.copytree(src / "crd" / "bases", share / "kwok-crds", dirs_exist_ok=True)
    return Compile(d, [_go_build(str(out / "kwok"), [cmd])])


def _build_flux(name: str, p: dict, work: Path, out: Path, log) -> Compile:
    pin = p[name]
    info, d = _get(work, name, pin, [pin["module"]], log)
    crds = out.parent / "share" / "crds"
    crds.mkdir(parents=True, exist_ok=True)
    for f in (Path(info["Dir"]) / "config" / "crd" / "bases").glob("*.yaml"):
        shutil.copyfile(f, crds / f.name)
    return Compile(d, [_go_build(str(out / name), [pin["module"]])])


def build_source_controller(p, work, out, log):
    return _build_flux("source-controller", p, work, out, log)


def build_kustomize_controller(p, work, out, log):
    return _build_flux("kustomize-controller", p, work, out, log)


def build_helm_controller(p, work, out, log):
    return _build_flux("helm-controller", p, work, out, log)


def _build_commands(name: str, p: dict, work: Path, out: Path, log,
                    ldflags: str = "") -> Compile:
    """The pin's `commands`, each named after its package's last element."""
    pin = p[name]
    pkgs = [f"{pin['module']}/{c}" for c in pin["commands"]]
    _, d = _get(work, name, pin, pkgs, log)
    return Compile(d, [_go_build(str(out) + "/", pkgs, ldflags)])


def build_sops(p, work, out, log):
    return _build_commands("sops", p, work, out, log)


def build_age(p, work, out, log):
    # Built as a dependency, age-keygen would report "(devel)" as its version.
    return _build_commands("age", p, work, out, log, f" -X main.Version={p['age']['version']}")


def build_minio(p: dict, work: Path, out: Path, log) -> Compile:
    pin = p["minio"]
    d = _throwaway(work, "minio", [_require(pin)], [])
    _go(["get", f"{pin['module']}@{pin['version']}"], d, log)
    return Compile(d, [_go_build(str(out / "minio"), [pin["module"]])])


def build_krew(p: dict, work: Path, out: Path, log) -> Compile:
    """krew as the kubectl plugin `kubectl-krew`, and validate-krew-manifest.

    The release tag is left unset on purpose (versions.toml says why); the
    version goes into GitCommit, which `kubectl krew version` prints."""
    pin = p["krew"]
    pkgs = [f"{pin['module']}/{c}" for c in pin["commands"]]
    _, d = _get(work, "krew", pin, pkgs, log)
    stamp = f" -X {pin['module']}/internal/version.gitCommit={pin['version']}"
    builds = []
    for pkg in pkgs:
        name = pkg.rsplit("/", 1)[1]
        exe = "kubectl-krew" if name == "krew" else name
        builds.append(_go_build(str(out / exe), [pkg], stamp))
    return Compile(d, builds)


STEPS = {
    "etcd": build_etcd,
    "kubernetes": build_kubernetes,
    "kwok": build_kwok,
    "source-controller": build_source_controller,
    "kustomize-controller": build_kustomize_controller,
    "minio": build_minio,
    "krew": build_krew,
    "helm-controller": build_helm_controller,
    "sops": build_sops,
    "age": build_age,
}
# Which pins each step depends on (its cache key): a step added here leaves the
# keys of the others, and so their cached builds, as they are. The three Flux
# controllers contribute CRDs to share/crds.
STEP_PINS = {name: [name] for name in STEPS}


# --- the build -----------------------------------------------------------------

def build(quiet: bool = False) -> Path:
    if shutil.which("go") is None:
        raise BuildError("Go is not installed: the local control plane is built from the "
                         "Go module proxy and needs the go command (1.26+) on PATH")
    with _lock():
        return _build(Progress(quiet))


@contextlib.contextmanager
def _lock():
    """One build at a time per cache: a second `make e2e-bins` (or a test run
    that finds something missing) waits, then finds the steps done."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".build.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def compile_slots() -> int:
    """How many steps compile at once: each `go build` already uses every
    core, so a second one only fills the cores a link or a package load leaves
    idle; it is worth it while memory holds both (GITOPS_RUN_BUILD_JOBS overrides)."""
    if os.environ.get("GITOPS_RUN_BUILD_JOBS"):
        return max(1, int(os.environ["GITOPS_RUN_BUILD_JOBS"]))
    try:
        gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):  # memory unknown: do not risk two links at once
        return 1
    return max(1, min(os.cpu_count() or 1, int(gib // GIB_PER_COMPILE), 2))


def _build(progress: Progress) -> Path:
    p = pins()
    todo = [name for name in STEPS if not (step_dir(name, p) / ".done").exists()]
    if todo:
        started = time.monotonic()
        _run_steps(todo, p, progress)
        progress.say(f"control plane built in {time.monotonic() - started:.0f} s "
                     f"into {bin_dir()}")
    for name in STEPS:
        _assemble(step_dir(name, p))
    left = missing()
    if left:
        raise BuildError(f"build finished but these are missing: {', '.join(left)}")
    return bin_dir()


def _run_steps(todo: list[str], p: dict, progress: Progress) -> None:
    """Every step at once, compiles limited to compile_slots(). A failed step
    does not stop the others: what they build is cached for the next run."""
    slots = compile_slots()
    first = " (all of it: about 40 minutes on 2 cores)" if len(todo) == len(STEPS) else ""
    progress.say(f"building {', '.join(todo)}{first}: fetching all at once, compiling "
                 f"{slots} at a time")
    gate = threading.Semaphore(slots)
    with progress.ticking(), ThreadPoolExecutor(len(todo)) as pool:
        futures = [pool.submit(_run_step, name, p, progress, gate) for name in todo]
    errors = [f.exception() for f in futures if f.exception()]
    if errors:
        raise errors[0]


def _run_step(name: str, p: dict, progress: Progress, gate: threading.Semaphore) -> None:
    sd = step_dir(name, p)
    shutil.rmtree(sd, ignore_errors=True)
    (sd / "bin").mkdir(parents=True)
    (sd / "share").mkdir()
    with open(sd / "build.log", "w") as log, progress.step(name) as st:
        plan = STEPS[name](p, sd / "work", sd / "bin", log)
        st.enter("waiting to compile")
        with gate:
            st.enter("compiling")
            for args in plan.builds:
                _go(args, plan.dir, log, compiling=True)
    shutil.rmtree(sd / "work", ignore_errors=True)
    (sd / ".done").touch()


def _assemble(sd: Path) -> None:
    """Link a step's products into the set for the current pin file."""
    for sub, dest in (("bin", bin_dir()), ("share", share_dir())):
        dest.mkdir(parents=True, exist_ok=True)
        for f in (sd / sub).iterdir():
            if f.is_dir():  # share/crds gets files from three steps
                (dest / f.name).mkdir(exist_ok=True)
                for g in f.iterdir():
                    _link(g, dest / f.name / g.name)
            else:
                _link(f, dest / f.name)


def _link(src: Path, dest: Path) -> None:
    if dest.is_symlink() or dest.exists():
        dest.unlink()
    dest.symlink_to(src)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m devcluster.build", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 unless all is built")
    ap.add_argument("--print-bin", action="store_true", help="print the bin dir only")
    args = ap.parse_args(argv)
    if args.print_bin:
        print(bin_dir())
        return 0
    if args.check:
        left = missing()
        if left:
            print(f"missing: {', '.join(left)}", file=sys.stderr)
            return 1
        print(bin_dir())
        return 0
    try:
        print(build())
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
