"""Build every release artifact into dist/ (what `make dist` runs).

    python packaging/dist.py [--dist dist] [--base-url URL] [--homepage URL]

- the wheel and the sdist (`python -m build`);
- dist/kubectl-gitops_run: the zipapp (packaging/zipapp.py), from that wheel;
- dist/kubectl-gitops-run_<version>.tar.gz: the zipapp, the completion helper
  kubectl_complete-gitops_run, the completion scripts and LICENSE (the krew
  archive; reproducible: sorted entries, fixed owner and times);
- dist/gitops-run.yaml: the krew manifest rendered from krew/gitops-run.yaml.in
  with the archive's sha256, checked against krew's rules.
"""
from __future__ import annotations

import argparse
import gzip
import importlib.util
import io
import re
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMPLETIONS = ROOT / "completions"
HELPER = "kubectl_complete-gitops_run"
SCRIPTS = ("kubectl-gitops_run.bash", "_kubectl-gitops_run", "kubectl-gitops_run.fish")


def version(project: Path = ROOT) -> str:
    """The one place the version lives: kubectl_gitops_run/__init__.py."""
    text = (project / "kubectl_gitops_run" / "__init__.py").read_text()
    m = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.M)
    if not m:
        raise SystemExit("dist: no __version__ in kubectl_gitops_run/__init__.py")
    return m.group(1)


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _krew_manifest():
    return _load("krew_manifest", ROOT / "krew" / "manifest.py")


def build_python(dist: Path, project: Path = ROOT) -> Path:
    """Wheel and sdist; returns the wheel."""
    for old in list(dist.glob("*.whl")) + list(dist.glob("*.tar.gz")):
        old.unlink()
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(project)],
                   check=True, stdout=subprocess.DEVNULL)
    (wheel,) = dist.glob("*.whl")
    return wheel


def write_archive(out: Path, zipapp_path: Path) -> Path:
    """The krew archive: files at the top level, as the manifest's `files` expect."""
    members = [("kubectl-gitops_run", zipapp_path, 0o755),
               (HELPER, COMPLETIONS / HELPER, 0o755),
               ("LICENSE", ROOT / "LICENSE", 0o644)]
    members += [(f"completions/{name}", COMPLETIONS / name, 0o644) for name in SCRIPTS]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirinfo = tarfile.TarInfo("completions")
        dirinfo.type, dirinfo.mode, dirinfo.mtime = tarfile.DIRTYPE, 0o755, 0
        tar.addfile(dirinfo)
        for name, path, mode in sorted(members):
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    with open(out, "wb") as f, gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
        gz.write(buf.getvalue())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dist", type=Path, default=ROOT / "dist")
    krew = _krew_manifest()
    ap.add_argument("--base-url", default=f"{krew.HOMEPAGE}/releases/download")
    ap.add_argument("--homepage", default=krew.HOMEPAGE)
    ap.add_argument("--project", type=Path, default=ROOT,
                    help="the Python project to package (default: this repo)")
    ap.add_argument("--skip-python", action="store_true",
                    help="reuse the wheel already in --dist (no wheel/sdist build)")
    args = ap.parse_args(argv)
    dist = args.dist.resolve()
    dist.mkdir(parents=True, exist_ok=True)
    ver = version(args.project)
    if args.skip_python:
        (wheel,) = dist.glob("*.whl")
    else:
        wheel = build_python(dist, args.project)
    builder = _load("gitops_run_zipapp", ROOT / "packaging" / "zipapp.py")
    app = builder.build(dist / "kubectl-gitops_run", wheel)
    archive = write_archive(dist / krew.archive_name(ver), app)
    manifest = dist / "gitops-run.yaml"
    rc = krew.main(["render", "--version", ver, "--archive", str(archive),
                    "--base-url", args.base_url, "--homepage", args.homepage,
                    "--out", str(manifest)])
    if rc:
        return rc
    for p in sorted(dist.iterdir()):
        print(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
