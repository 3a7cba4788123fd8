"""Predict kustomize-controller's verdict on a tree before uploading it (pure).

Without a kustomization.yaml at the applied path, kustomize-controller
generates one: every .yaml/.yml file below the path is a resource,
recursively, except that a directory with a kustomization of its own is one
resource and is not entered. Every document of every such file must be a
Kubernetes object (apiVersion, kind, metadata.name), or the whole build fails,
and two files may not define the same object. A kustomization.yaml is left to
kustomize itself, except for what is certain: a resource outside the uploaded
directory is never found. The first problem is reported in one line that
names the file and what to do (docs/architecture.md, invariant 6).
"""
from __future__ import annotations

import posixpath
from typing import Iterable, Mapping

from ..errors import SnapshotError

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
YAML = (".yaml", ".yml")
RESERVED = ".gitops-run"        # the session's own files (core.namespaces)


class Problem(SnapshotError):
    """What kustomize-controller would fail on, worded for the user."""


def _under(key: str, path: str) -> bool:
    return not path or key.startswith(path + "/")


def kustomization_dirs(keys: Iterable[str]) -> set[str]:
    # endswith first: one C call rules out most keys of a large tree
    return {posixpath.dirname(k) for k in keys
            if k.endswith(KUSTOMIZATION_FILES) and posixpath.basename(k) in KUSTOMIZATION_FILES}


def essentials(doc):
    """What the pre-flight reads of a YAML document: the identity fields of an
    object and the references of a kustomization (an empty document stays None,
    anything but a mapping becomes a marker)."""
    if not isinstance(doc, dict):
        return doc if doc is None else "not a mapping"
    meta = doc.get("metadata")
    kept = {k: doc[k] for k in ("apiVersion", "kind", "resources", "bases", "components")
            if k in doc}
    if isinstance(doc.get("sops"), dict):
        kept["sops"] = True
    if _leaves({k: v for k, v in doc.items() if k not in ("resources", "bases", "components")}):
        kept["leaves"] = True       # a generator or patch file above: core.fetchscope
    if isinstance(meta, dict):
        kept["metadata"] = {k: meta[k] for k in ("name", "namespace", "generateName")
                            if k in meta}
    elif meta is not None:
        kept["metadata"] = meta
    return kept


def _leaves(value) -> bool:
    """Does a string anywhere in `value` climb out of its directory ("..")?"""
    if isinstance(value, str):
        return value == ".." or "../" in value
    if isinstance(value, dict):
        return any(_leaves(v) for v in value.values())
    if isinstance(value, list):
        return any(_leaves(v) for v in value)
    return False


def generated_resources(keys: Iterable[str], path: str) -> list[str]:
    """The files kustomize-controller's generated kustomization would list:
    YAML below `path`, not inside a directory that has its own kustomization."""
    keys = sorted(keys)
    nested = [d + "/" for d in kustomization_dirs(keys) if d != path and _under(d, path)]
    return [k for k in keys if _under(k, path) and k.endswith(YAML)
            and not any(k.startswith(d) for d in nested)]


def walked_resources(keys: Iterable[str], path: str) -> list[str]:
    """The resources of kustomize-controller's generated kustomization in the
    order its walk finds them (names sorted in each directory): the YAML
    files, and each directory with a kustomization of its own, not entered."""
    keys = list(keys)
    nested = [d for d in kustomization_dirs(keys) if d != path and _under(d, path)]
    tops = [d for d in nested if not any(d.startswith(o + "/") for o in nested)]
    return sorted(generated_resources(keys, path) + tops, key=lambda k: k.split("/"))


def _identity(doc: dict) -> tuple[str, str, str, str]:
    group = str(doc["apiVersion"]).rpartition("/")[0]
    meta = doc["metadata"]
    return group, str(doc["kind"]), str(meta.get("namespace") or ""), str(meta["name"])


def _object_problem(doc) -> str | None:
    if not isinstance(doc, dict):
        return "is not a Kubernetes object (a mapping with apiVersion, kind and metadata.name)"
    missing = [f for f in ("apiVersion", "kind") if not doc.get(f)]
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        only_generate = isinstance(meta, dict) and meta.get("generateName")
        missing.append("metadata.name" + (" (generateName is not enough for kustomize)"
                                          if only_generate else ""))
    return f"is not a Kubernetes object: no {', '.join(missing)}" if missing else None


def _manifest_dirs(docs: Mapping[str, list]) -> list[str]:
    """Top-level directories whose YAML files are all Kubernetes objects, the
    fullest first: where --path should point."""
    files: dict[str, int] = {}
    spoilt: set[str] = set()
    for key, items in docs.items():
        if "/" in key:
            top = key.split("/", 1)[0]
            files[top] = files.get(top, 0) + 1
            if any(d is not None and _object_problem(d) for d in items):
                spoilt.add(top)
    return sorted((d for d in files if d not in spoilt), key=lambda d: (-files[d], d))


def advice(key: str, docs: Mapping[str, list], path: str) -> str:
    """What to do about a file that is no manifest: point --path at the
    manifests, or ignore the file."""
    dirs = [d for d in _manifest_dirs(docs) if not key.startswith(d + "/") and not path]
    way = f"point up at the manifests with --path {dirs[0]}/, or " if dirs else ""
    return f"To fix it, {way}add the line `/{key}` to .sourceignore."


def check_plain(docs: Mapping[str, list], path: str) -> None:
    """`docs`: every YAML file's documents, by key. Raises Problem."""
    seen: dict[tuple, str] = {}
    for key in generated_resources(docs, path):
        for doc in docs[key]:
            if doc is None:
                continue            # an empty document (a lone ---) is fine
            why = _object_problem(doc)
            if why:
                raise Problem(f"{key} {why}; kustomize-controller would fail the whole "
                              f"build. {advice(key, docs, path)}")
            ident = _identity(doc)
            same = ident[:2] + (ident[2] or "default",) + ident[3:]   # kustomize's IDs
            if same in seen and seen[same] != key:
                raise Problem(f"{key} and {seen[same]} both define {ident[1]} "
                              f"{'/'.join(filter(None, ident[2:]))}; keep one of them")
            seen[same] = key


def _outside(where: str, ref: str, base: str, root: str) -> Problem:
    """A reference above the upload: name the directory that holds both, and
    the --path that applies this kustomization from there."""
    way = f"run up from a directory that holds both, with --path {base or '.'}"
    if posixpath.isabs(ref):
        way = "make it relative, to a path inside the directory"
    elif root:
        here = posixpath.normpath(posixpath.join(root, base))
        both = posixpath.commonpath([here, posixpath.normpath(posixpath.join(here, ref))])
        way = f"run `up {both} --path {posixpath.relpath(here, both)}` instead"
    return Problem(f"{where} refers to {ref}, outside the uploaded directory, which Flux never "
                   f"gets; {way}")


def check_kustomization(kustomization, base: str, keys: set[str], root: str = "") -> None:
    """References of one kustomization file (in directory `base`) that are not
    in the upload can never be found. `root`: the uploaded directory's absolute
    path, to say where to run from instead."""
    where = posixpath.join(base, "kustomization.yaml")
    if not isinstance(kustomization, dict):
        raise Problem(f"{where} is not a kustomization (a mapping)")
    refs = [r for field in ("resources", "bases", "components")
            for r in kustomization.get(field) or []]
    for ref in refs:
        if not isinstance(ref, str) or "://" in ref or ref.startswith(("github.com/", "git@")):
            continue            # a remote base: kustomize fetches it
        target = posixpath.normpath(posixpath.join(base, ref))
        if target == ".." or target.startswith("../") or posixpath.isabs(ref):
            raise _outside(where, ref, base, root)
        if target not in keys and not any(k.startswith(target + "/") for k in keys):
            raise Problem(f"{where} refers to {ref}, which is not in the upload (missing, "
                          f"or left out by an ignore rule)")


def check(docs: Mapping[str, list], keys: set[str], path: str, chart: bool = False,
          root: str = "") -> None:
    """kustomize-controller's verdict on the upload, applied at `path`: raises
    Problem for the first file that would fail the build. `docs` holds the
    parsed YAML files; `keys` every uploaded file; `root` the directory's
    absolute path. A Helm chart at `path` (`chart`) is deployed by
    helm-controller: kustomize's rules do not apply."""
    if chart:
        return
    reserved = sorted(k for k in keys if k.startswith(RESERVED + "/"))
    if reserved:
        raise Problem(f"{reserved[0]}: the directory {RESERVED}/ is kept for the session's "
                      f"own files; rename yours, or add the line `/{RESERVED}/` to .sourceignore")
    for base in sorted(kustomization_dirs(keys)):
        if _under(base + "/", path) or base == path:
            name = next(posixpath.join(base, f) if base else f for f in KUSTOMIZATION_FILES
                        if (posixpath.join(base, f) if base else f) in keys)
            check_kustomization((docs.get(name) or [None])[0], base, keys, root)
    if path not in kustomization_dirs(keys):
        check_plain(docs, path)


def encrypted(docs: Mapping[str, list]) -> list[str]:
    """The files with a SOPS-encrypted document (a top-level `sops:` block)."""
    return sorted(k for k, items in docs.items()
                  if any(isinstance(d, dict) and d.get("sops") for d in items))
