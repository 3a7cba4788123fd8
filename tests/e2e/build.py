"""Build the local control plane's programs from the Go module proxy.

    python -m tests.e2e.build          # build what is missing, print the bin dir
    python -m tests.e2e.build --check  # exit 1 unless everything is built

Every pin lives in versions.toml. Binaries land in a cache outside the repo,
keyed by a hash of that file and of RECIPE, so a warm cache is a no-op and a
changed pin builds a fresh set beside the old one. Each program is built in a
throwaway module because several of them carry replace directives that
`go install pkg@version` refuses; replace directives of a dependency are
ignored, so the throwaway module re-states the ones that point at published
modules.
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
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERSIONS_FILE = HERE / "versions.toml"
# Bump when the way a program is built changes, so old caches are not reused.
RECIPE = "3"


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


PROGRAMS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
            "kubectl", "kwok", "source-controller", "kustomize-controller", "minio",
            "kubectl-krew", "validate-krew-manifest"]
SHARED = ["crds", "kwok-stages", "kwok-crds"]


def missing() -> list[str]:
    out = [p for p in PROGRAMS if not (bin_dir() / p).exists()]
    return out + [f"share/{s}" for s in SHARED if not (share_dir() / s).exists()]


# --- go plumbing -----------------------------------------------------------

def _go_env() -> dict:
    env = dict(os.environ)
    env["GOTOOLCHAIN"] = "local"
    env["CGO_ENABLED"] = "0"
    env.setdefault("GOFLAGS", "-buildvcs=false")
    return env


def _go(args: list[str], cwd: Path, log) -> str:
    log.write(f"$ go {' '.join(args)}   (in {cwd})\n")
    log.flush()
    proc = subprocess.run(["go", *args], cwd=cwd, env=_go_env(), stdout=subprocess.PIPE,
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


# --- the programs ----------------------------------------------------------

def build_etcd(p: dict, work: Path, out: Path, log) -> None:
    pin = p["etcd"]
    main = ('package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\n'
            "func main() { etcdmain.Main(os.Args) }\n")
    d = _throwaway(work, "etcd", [f"{pin['module']} {pin['version']}"], [], main)
    _go(["mod", "tidy"], d, log)
    _go(["build", "-trimpath", "-ldflags=-s -w", "-o", str(out / "etcd"), "."], d, log)


def build_kubernetes(p: dict, work: Path, out: Path, log) -> None:
    pin = p["kubernetes"]
    version = pin["version"]
    major, minor, patch = version.lstrip("v").split(".")
    info = _download(pin["module"], version, log)
    gomod = Path(info["GoMod"]).read_text()
    d = _throwaway(work, "kubernetes", [f"{pin['module']} {version}"],
                   _staging_replaces(gomod, minor, patch))
    pkgs = [f"{pin['module']}/{c}" for c in pin["commands"]]
    _go(["get", *[f"{pkg}@{version}" for pkg in pkgs]], d, log)
    stamp = []
    for where in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        stamp += [f"-X {where}.gitVersion={version}", f"-X {where}.gitMajor={major}",
                  f"-X {where}.gitMinor={minor}", f"-X {where}.gitTreeState=clean"]
    _go(["build", "-trimpath", f"-ldflags=-s -w {' '.join(stamp)}", "-o", str(out) + "/",
         *pkgs], d, log)


def build_kwok(p: dict, work: Path, out: Path, log) -> None:
    pin = p["kwok"]
    share = out.parent / "share"
    info = _download(pin["module"], pin["version"], log)
    d = _throwaway(work, "kwok", [f"{pin['module']} {pin['version']}"],
                   _published_replaces(Path(info["GoMod"]).read_text()))
    _go(["get", f"{pin['module']}/cmd/kwok@{pin['version']}"], d, log)
    _go(["build", "-trimpath", "-ldflags=-s -w", "-o", str(out / "kwok"),
         f"{pin['module']}/cmd/kwok"], d, log)
    src = Path(info["Dir"]) / "kustomize"
    shutil.copytree(src / "stage", share / "kwok-stages", dirs_exist_ok=True)
    shutil.copytree(src / "crd" / "bases", share / "kwok-crds", dirs_exist_ok=True)


def _build_flux(name: str, p: dict, work: Path, out: Path, log) -> None:
    pin = p[name]
    info = _download(pin["module"], pin["version"], log)
    d = _throwaway(work, name, [f"{pin['module']} {pin['version']}"],
                   _published_replaces(Path(info["GoMod"]).read_text()))
    _go(["get", f"{pin['module']}@{pin['version']}"], d, log)
    _go(["build", "-trimpath", "-ldflags=-s -w", "-o", str(out / name), pin["module"]], d, log)
    crds = out.parent / "share" / "crds"
    crds.mkdir(parents=True, exist_ok=True)
    for f in (Path(info["Dir"]) / "config" / "crd" / "bases").glob("*.yaml"):
        shutil.copyfile(f, crds / f.name)


def build_source_controller(p, work, out, log):
    _build_flux("source-controller", p, work, out, log)


def build_kustomize_controller(p, work, out, log):
    _build_flux("kustomize-controller", p, work, out, log)


def build_minio(p: dict, work: Path, out: Path, log) -> None:
    pin = p["minio"]
    d = _throwaway(work, "minio", [f"{pin['module']} {pin['version']}"], [])
    _go(["get", f"{pin['module']}@{pin['version']}"], d, log)
    _go(["build", "-trimpath", "-ldflags=-s -w", "-o", str(out / "minio"), pin["module"]], d, log)


def build_krew(p: dict, work: Path, out: Path, log) -> None:
    """krew as the kubectl plugin `kubectl-krew`, and validate-krew-manifest.

    The release tag is left unset on purpose (versions.toml says why); the
    version goes into GitCommit, which `kubectl krew version` prints."""
    pin = p["krew"]
    info = _download(pin["module"], pin["version"], log)
    d = _throwaway(work, "krew", [f"{pin['module']} {pin['version']}"],
                   _published_replaces(Path(info["GoMod"]).read_text()))
    pkgs = [f"{pin['module']}/{c}" for c in pin["commands"]]
    _go(["get", *[f"{pkg}@{pin['version']}" for pkg in pkgs]], d, log)
    ldflags = f"-s -w -X {pin['module']}/internal/version.gitCommit={pin['version']}"
    for pkg in pkgs:
        name = pkg.rsplit("/", 1)[1]
        exe = "kubectl-krew" if name == "krew" else name
        _go(["build", "-trimpath", f"-ldflags={ldflags}", "-o", str(out / exe), pkg], d, log)


STEPS = {
    "etcd": build_etcd,
    "kubernetes": build_kubernetes,
    "kwok": build_kwok,
    "source-controller": build_source_controller,
    "kustomize-controller": build_kustomize_controller,
    "minio": build_minio,
    "krew": build_krew,
}
# Which pins each step depends on (its cache key). Both Flux controllers
# contribute CRDs to share/crds.
STEP_PINS = {name: [name] for name in STEPS}


def build(quiet: bool = False) -> Path:
    if shutil.which("go") is None:
        raise BuildError("Go is not installed: the local control plane is built from the "
                         "Go module proxy and needs the go command (1.26+) on PATH")
    with _lock():
        return _build(quiet)


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


def _build(quiet: bool) -> Path:
    p = pins()
    total = time.monotonic()
    built = False
    for name, step in STEPS.items():
        sd = step_dir(name, p)
        if not (sd / ".done").exists():
            built = True
            shutil.rmtree(sd, ignore_errors=True)
            (sd / "bin").mkdir(parents=True)
            (sd / "share").mkdir()
            started = time.monotonic()
            if not quiet:
                print(f"building {name} ...", file=sys.stderr, flush=True)
            with open(sd / "build.log", "w") as log:
                step(p, sd / "work", sd / "bin", log)
            shutil.rmtree(sd / "work", ignore_errors=True)
            (sd / ".done").touch()
            if not quiet:
                print(f"built {name} in {time.monotonic() - started:.0f}s", file=sys.stderr,
                      flush=True)
        _assemble(sd)
    left = missing()
    if left:
        raise BuildError(f"build finished but these are missing: {', '.join(left)}")
    if built and not quiet:
        print(f"control plane built in {time.monotonic() - total:.0f}s into {bin_dir()}",
              file=sys.stderr)
    return bin_dir()


def _assemble(sd: Path) -> None:
    """Link a step's products into the set for the current pin file."""
    for sub, dest in (("bin", bin_dir()), ("share", share_dir())):
        dest.mkdir(parents=True, exist_ok=True)
        for f in (sd / sub).iterdir():
            if f.is_dir():  # share/crds gets files from two steps
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
    ap = argparse.ArgumentParser(prog="python -m tests.e2e.build", description=__doc__,
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
