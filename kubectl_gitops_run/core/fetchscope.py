"""What of a snapshot Flux needs to fetch, and the Bucket's `spec.ignore` that
says so (pure).

source-controller fetches every object of the slot on each new revision, one
request each: 10,000 files took 96 s on the dev cluster, past the Bucket's
timeout (docs/benchmarks.md, "The whole loop with a large tree"). When the
session applies a subdirectory, the build reads only that directory, the
directories its kustomizations reference, and the session's own component.
The Bucket then ignores the rest, and its revision becomes the digest of the
kept keys alone, which `Snapshot.revision` computes with the same scope.
Invariant 1 holds: the scope is set in the patch that flips the slot, so each
artifact is the kept part of one whole snapshot.

A scope is a tuple of directories; () means the whole snapshot.
"""
from __future__ import annotations

import posixpath
from typing import Mapping

from .preflight import KUSTOMIZATION_FILES, RESERVED, kustomization_dirs

REFERENCES = ("resources", "bases", "components")
SECONDS_PER_OBJECT = 0.02       # the Bucket's fetch timeout: 2x the dev cluster's 10 ms
MIN_TIMEOUT = 60


def scope(docs: Mapping[str, list], keys: set[str], path: str) -> tuple[str, ...]:
    """The directories the build of `path` reads, or () when that is the
    whole tree or cannot be bounded (a reference to the root, or a file
    reference of another kind that leaves its directory)."""
    if not path:
        return ()
    dirs, todo = set(), [path]
    with_kustomization = kustomization_dirs(keys)
    while todo:
        base = todo.pop()
        if base in dirs:
            continue
        dirs.add(base)
        for ref in _references(docs, keys, base, with_kustomization):
            if ref is None or ref in ("", "."):
                return ()
            todo.append(ref)
    return _outermost(dirs | {RESERVED})


def _references(docs, keys, base: str, with_kustomization: set[str]):
    """The directories that `base`'s kustomizations (its own, and those of
    its subdirectories) read outside `base`; None for one we cannot bound."""
    for sub in sorted(d for d in with_kustomization if d == base or d.startswith(base + "/")):
        name = next(posixpath.join(sub, f) for f in KUSTOMIZATION_FILES
                    if posixpath.join(sub, f) in keys)
        doc = (docs.get(name) or [None])[0]
        if not isinstance(doc, dict) or doc.get("leaves"):
            yield None          # another field reads a file outside its directory
            continue
        for ref in (r for field in REFERENCES for r in doc.get(field) or []):
            if not isinstance(ref, str) or "://" in ref or ref.startswith(("github.com/", "git@")):
                continue        # a remote base: kustomize fetches it
            target = posixpath.normpath(posixpath.join(sub, ref))
            if target == base or target.startswith(base + "/"):
                continue
            yield target if target in with_kustomization or target not in keys \
                else posixpath.dirname(target)


def _outermost(dirs: set[str]) -> tuple[str, ...]:
    """The directories not inside another of them, sorted."""
    return tuple(sorted(d for d in dirs
                        if not any(d.startswith(o + "/") for o in dirs if o != d)))


def prefixes(dirs: tuple[str, ...]) -> tuple[str, ...]:
    """What the keys under `dirs` start with, for `str.startswith`."""
    return tuple(d + "/" for d in dirs)


def ignore_rules(dirs: tuple[str, ...]) -> str | None:
    """`spec.ignore` (gitignore syntax, the last match wins) that keeps only
    `dirs`: ignore everything, then at each depth bring back the ancestors of
    a kept directory and ignore their other entries, down to the kept ones."""
    if not dirs:
        return None
    lines, depth = ["/*"], 1
    while True:
        level = sorted({"/".join(d.split("/")[:depth]) for d in dirs
                        if len(d.split("/")) >= depth})
        if not level:
            return "\n".join(lines) + "\n"
        lines += [f"!/{p}/" for p in level]
        lines += [f"/{p}/*" for p in level if p not in dirs]
        depth += 1


def fetch_timeout(objects: int) -> str:
    """The Bucket's `spec.timeout`, which bounds a whole fetch of `objects`."""
    return f"{max(MIN_TIMEOUT, round(objects * SECONDS_PER_OBJECT))}s"
