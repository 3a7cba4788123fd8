"""Build the single-file plugin: an executable zipapp bundling every dependency.

    python packaging/zipapp.py --out dist/kubectl-gitops_run [--wheel WHEEL]

The project wheel (built here with `pip wheel` unless --wheel is given) and its
dependencies are installed with pip into a staging directory, resolved for the
oldest supported Python (3.10) so that markers for older interpreters pull in
their backports. Compiled extension modules are left out: every dependency has
a pure-Python fallback (aiohttp, yarl, multidict, frozenlist, propcache, PyYAML,
charset-normalizer). The archive is then checked to hold no compiled module and
to run (`--version`) with `python3 -I`.

The archive is reproducible for a given set of resolved packages: entries are
sorted and carry a fixed timestamp. Its __main__.py is packaging/bootstrap.py,
with the build id (a digest of every other entry) and the console-script entry
point filled in.
"""
from __future__ import annotations

import argparse
import configparser
import hashlib
import os
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP = Path(__file__).resolve().parent / "bootstrap.py"
SCRIPT_NAME = "kubectl-gitops_run"
MIN_PYTHON = "3.10"
SHEBANG = b"#!/usr/bin/env python3\n"
# Anything an interpreter loads as machine code, or bytecode tied to one version.
COMPILED_SUFFIXES = (".so", ".pyd", ".dylib", ".dll", ".pyc", ".pyo")
# Build inputs of those modules, useless at run time.
DROP_SUFFIXES = COMPILED_SUFFIXES + (".c", ".h", ".cpp", ".pyx", ".pxd", ".pyi")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def log(msg: str) -> None:
    print(f"zipapp: {msg}", file=sys.stderr)


def build_wheel(workdir: Path, project: Path = ROOT) -> Path:
    out = workdir / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(project)], check=True)
    (wheel,) = out.glob("*.whl")
    return wheel


def install(wheel: Path, target: Path, python_version: str) -> None:
    """Install the wheel and its dependencies, as wheels only, into target."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--no-compile", "--only-binary", ":all:", "--python-version", python_version,
         "--target", str(target), str(wheel)],
        check=True)


def entry_point(target: Path) -> str:
    """`module:function` of our console script, from the installed metadata."""
    for ep_file in target.glob("*.dist-info/entry_points.txt"):
        cp = configparser.ConfigParser(delimiters=("=",))
        cp.optionxform = str
        cp.read(ep_file)
        if cp.has_option("console_scripts", SCRIPT_NAME):
            return cp.get("console_scripts", SCRIPT_NAME).strip()
    raise SystemExit(f"zipapp: no console script {SCRIPT_NAME!r} in the installed wheel")


def collect(target: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    """(archive name, file) pairs to pack, sorted; and the names left out."""
    keep, dropped = [], []
    for path in sorted(target.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(target).as_posix()
        top = rel.split("/", 1)[0]
        if top == "bin" or "__pycache__" in rel.split("/"):
            dropped.append(rel)
        elif rel.endswith(DROP_SUFFIXES):
            dropped.append(rel)
        else:
            keep.append((rel, path))
    return keep, dropped


def compiled_members(archive: Path) -> list[str]:
    with zipfile.ZipFile(archive) as zf:
        return [n for n in zf.namelist() if n.endswith(COMPILED_SUFFIXES)]


def write_archive(out: Path, files: list[tuple[str, Path]], main_py: bytes) -> None:
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(SHEBANG)
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
            def add(name: str, data: bytes) -> None:
                info = zipfile.ZipInfo(name, ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                zf.writestr(info, data)
            add("__main__.py", main_py)
            for name, path in files:
                add(name, path.read_bytes())
    tmp.chmod(0o755)
    os.replace(tmp, out)


def build(out: Path, wheel: Path | None = None, python_version: str = MIN_PYTHON,
          project: Path = ROOT) -> Path:
    with tempfile.TemporaryDirectory(prefix="gitops-run-zipapp-") as tmp:
        work = Path(tmp)
        wheel = wheel or build_wheel(work, project)
        target = work / "site"
        log(f"installing {wheel.name} and its dependencies (Python {python_version} markers)")
        install(wheel, target, python_version)
        files, dropped = collect(target)
        native = [d for d in dropped if d.endswith((".so", ".pyd", ".dylib", ".dll"))]
        if native:
            log(f"left out {len(native)} compiled modules (pure-Python fallbacks are used): "
                + ", ".join(sorted({d.split('/')[0] for d in native})))
        digest = hashlib.sha256()
        for name, path in files:
            digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
        main_py = (BOOTSTRAP.read_text()
                   .replace("@BUILD_ID@", digest.hexdigest()[:16])
                   .replace("@ENTRY_POINT@", entry_point(target))).encode()
        out.parent.mkdir(parents=True, exist_ok=True)
        write_archive(out, files, main_py)
    bad = compiled_members(out)
    if bad:
        raise SystemExit(f"zipapp: {out} holds compiled modules: {', '.join(bad[:10])}")
    smoke(out)
    log(f"wrote {out} ({out.stat().st_size // 1024} KiB, {len(files) + 1} entries, "
        "no compiled module)")
    return out


def smoke(archive: Path) -> None:
    """Run the archive in isolated mode with a throwaway cache: it must start."""
    with tempfile.TemporaryDirectory(prefix="gitops-run-zipapp-smoke-") as cache:
        env = dict(os.environ, KUBECTL_GITOPS_RUN_CACHE=cache)
        res = subprocess.run([sys.executable, "-I", str(archive), "--version"],
                             env=env, capture_output=True, text=True, timeout=300)
        if res.returncode != 0:
            raise SystemExit(f"zipapp: `{archive} --version` failed:\n{res.stderr}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "dist" / SCRIPT_NAME)
    ap.add_argument("--wheel", type=Path, help="project wheel (default: build one)")
    ap.add_argument("--python-version", default=MIN_PYTHON,
                    help="resolve dependency markers for this Python (default %(default)s)")
    ap.add_argument("--project", type=Path, default=ROOT,
                    help="project to build when no --wheel is given (default: this repo)")
    args = ap.parse_args(argv)
    build(args.out, args.wheel, args.python_version, args.project)
    return 0


if __name__ == "__main__":
    sys.exit(main())
