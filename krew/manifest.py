"""Render and check the krew manifest.

    python krew/manifest.py render --version 0.1.0 --archive dist/X.tar.gz \
        --base-url https://example.org/releases/download --out dist/gitops-run.yaml
    python krew/manifest.py validate dist/gitops-run.yaml

`validate` restates the rules of krew's own checks (krew v0.4.3,
`internal/index/validation` and `cmd/validate-krew-manifest`) so that
`make dist` can check what it renders without Go: supported apiVersion and
kind, a safe plugin name equal to the file name, a one-line short
description, a `v`-prefixed semantic version, and for every platform a uri,
a 64-hex sha256, a bin, well-formed `files` and a selector that uses only
`os` and `arch` and matches some platform krew knows; no two platforms may
match the same os/arch. The real `validate-krew-manifest` (built from the Go
module proxy by devcluster/build.py) is what decides: tests/e2e/test_packaging.py
runs it on the rendered manifest and checks that it rejects everything this
restatement rejects.
"""
from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "gitops-run.yaml.in"
PLUGIN_NAME = "gitops-run"
API_VERSION = "krew.googlecontainertools.github.com/v1alpha2"
# Where the project is published: set KREW_HOMEPAGE / KREW_BASE_URL in `make dist`
# for a real release (the defaults name the project's intended GitHub home).
HOMEPAGE = "https://github.com/gitops-run/kubectl-gitops-run"
# The platforms the one (Python) archive is published for.
PLATFORMS = [(os_, arch) for os_ in ("linux", "darwin") for arch in ("amd64", "arm64")]
# Every os/arch validate-krew-manifest knows (its allPlatforms()).
KREW_PLATFORMS = [("windows", a) for a in ("386", "amd64", "arm64")] + \
    [("linux", a) for a in ("386", "amd64", "arm", "arm64")] + \
    [("darwin", a) for a in ("386", "amd64", "arm64")]

_SAFE_NAME = re.compile(r"^[\w-]+$")
_SHA256 = re.compile(r"^[a-f0-9]{64}$")
# Semantic version as k8s.io/apimachinery's ParseSemantic reads it, after krew
# strips the mandatory leading "v".
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$")
_WINDOWS_FORBIDDEN = {"CON", "PRN", "AUX", "NUL"} | {f"COM{i}" for i in range(1, 10)} \
    | {f"LPT{i}" for i in range(1, 10)}


def archive_name(version: str) -> str:
    return f"kubectl-gitops-run_{version}.tar.gz"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def render(version: str, uri: str, sha256: str, template: str | None = None,
           homepage: str = HOMEPAGE) -> str:
    text = TEMPLATE.read_text() if template is None else template
    # The template's own header comment is about the template: replace it.
    lines = text.splitlines(keepends=True)
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    text = "# Rendered from krew/gitops-run.yaml.in by `make dist`; do not edit.\n" + "".join(lines)
    for key, value in (("VERSION", version), ("URI", uri), ("SHA256", sha256),
                       ("HOMEPAGE", homepage)):
        text = text.replace(f"@{key}@", value)
    left = re.findall(r"@[A-Z0-9_]+@", text)
    if left:
        raise ValueError(f"unfilled placeholders in the krew template: {sorted(set(left))}")
    return text


def _selector_matches(sel: dict, labels: dict) -> bool:
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in sel.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        has = key in labels
        if op == "In" and not (has and labels[key] in values):
            return False
        if op == "NotIn" and has and labels[key] in values:
            return False
        if op == "Exists" and not has:
            return False
        if op == "DoesNotExist" and has:
            return False
    return True


def validate(doc: dict, filename: str | None = None) -> list[str]:
    """Every rule the manifest breaks, as messages; empty when it is valid."""
    errs: list[str] = []
    if not isinstance(doc, dict):
        return ["manifest is not a mapping"]
    meta = doc.get("metadata") or {}
    spec = doc.get("spec") or {}
    name = meta.get("name", "")
    if doc.get("apiVersion") != API_VERSION:
        errs.append(f"apiVersion={doc.get('apiVersion')!r}, want {API_VERSION!r}")
    if doc.get("kind") != "Plugin":
        errs.append(f"kind={doc.get('kind')!r}, only 'Plugin' is supported")
    if not _SAFE_NAME.match(name or "") or name.upper() in _WINDOWS_FORBIDDEN:
        errs.append(f"plugin name {name!r} is not allowed, must match {_SAFE_NAME.pattern}")
    if filename is not None and Path(filename).name != f"{name}.yaml":
        errs.append(f"file is named {Path(filename).name!r}, krew wants '{name}.yaml'")
    if not spec.get("shortDescription"):
        errs.append("should have a short description")
    elif any(c in str(spec["shortDescription"]) for c in "\r\n"):
        errs.append("should not have line breaks in short description")
    version = str(spec.get("version") or "")
    if not version:
        errs.append("should have a version specified")
    elif not version.startswith("v") or not _SEMVER.match(version[1:]):
        errs.append(f"version {version!r} is not a semantic version with a 'v' prefix")
    platforms = spec.get("platforms") or []
    if not platforms:
        errs.append("should have a platform specified")
    for i, p in enumerate(platforms):
        where = f"platforms[{i}]"
        if not p.get("uri"):
            errs.append(f"{where}: `uri` has to be set")
        if not p.get("sha256"):
            errs.append(f"{where}: `sha256` sum has to be set")
        elif not _SHA256.match(str(p["sha256"])):
            errs.append(f"{where}: `sha256` {p['sha256']!r} must match {_SHA256.pattern}")
        if not p.get("bin"):
            errs.append(f"{where}: `bin` has to be set")
        files = p.get("files")
        if files is not None:
            if not files:
                errs.append(f"{where}: `files` has to be unspecified or non-empty")
            for op in files:
                if not op.get("from"):
                    errs.append(f"{where}: `from` field has to be set")
                elif not op.get("to"):
                    errs.append(f"{where}: `to` field has to be set")
        sel = p.get("selector")
        if not sel or (sel.get("matchLabels") is None and not sel.get("matchExpressions")):
            errs.append(f"{where}: nil or empty selector is not supported")
            continue
        keys = list((sel.get("matchLabels") or {}).keys()) + \
            [e.get("key") for e in sel.get("matchExpressions") or []]
        for k in keys:
            if k not in ("os", "arch"):
                errs.append(f"{where}: selector key {k!r} not supported")
        if sel.get("matchLabels") is not None and not sel["matchLabels"]:
            errs.append(f"{where}: `matchLabels` specified but empty")
        if sel.get("matchExpressions") is not None and not sel["matchExpressions"]:
            errs.append(f"{where}: `matchExpressions` specified but empty")
        if not any(_selector_matches(sel, {"os": o, "arch": a}) for o, a in KREW_PLATFORMS):
            errs.append(f"{where}: selector doesn't match any supported platform")
    for os_, arch in KREW_PLATFORMS:
        hits = [i for i, p in enumerate(platforms)
                if _selector_matches(p.get("selector") or {}, {"os": os_, "arch": arch})]
        if len(hits) > 1:
            errs.append(f"{os_}/{arch} matches several platforms: {hits}")
    return errs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render")
    r.add_argument("--version", required=True)
    r.add_argument("--archive", type=Path, required=True)
    r.add_argument("--base-url", required=True,
                   help="where release archives are published; the archive's name is appended")
    r.add_argument("--homepage", default=HOMEPAGE)
    r.add_argument("--out", type=Path, required=True)
    v = sub.add_parser("validate")
    v.add_argument("manifest", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "render":
        uri = f"{args.base_url.rstrip('/')}/v{args.version}/{args.archive.name}"
        text = render(args.version, uri, sha256_file(args.archive), homepage=args.homepage)
        args.out.write_text(text)
        path = args.out
    else:
        path = args.manifest
    errs = validate(yaml.safe_load(path.read_text()), str(path))
    for e in errs:
        print(f"error: {path}: {e}", file=sys.stderr)
    if not errs:
        print(f"{path}: valid krew manifest", file=sys.stderr)
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
