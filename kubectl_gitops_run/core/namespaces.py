"""Namespaces as the user means them (pure): an object that names a
namespace keeps it, one that names none lands in the session's namespace, and
Namespace objects are never rewritten, as `kubectl apply -n NS` would do.

Flux offers no such setting: `spec.targetNamespace` overwrites every
object's namespace and renames Namespace objects (two of them then clash:
"namespace transformation produces ID conflict"), and without it
kustomize-controller refuses a namespaced object that names none
("namespace not specified"). kustomize's builtin NamespaceTransformer with
`unsetOnly` does the right thing, and it cannot be given inline in a Flux
Kustomization, so the upload carries it: one kustomize Component, listed in
the Kustomization's `spec.components` (Flux adds those to the kustomization it
builds, the user's own or the one it generates).

kustomize-controller generates a kustomization by walking the applied path,
and it would take the component's directory for a resource. Where the
component lies below the applied path (the path is the upload's root) and the
path has no kustomization of its own, the upload therefore also carries the
kustomization kustomize-controller would have generated (core.preflight's
rules), so that no walk happens.

These files are part of the snapshot, so the revision still covers exactly
the uploaded keys (docs/architecture.md, invariant 1); they have no local
file, and `added_keys` tells them from the user's.
"""
from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import dataclass
from typing import Iterable

from .preflight import KUSTOMIZATION_FILES, RESERVED, kustomization_dirs, walked_resources
from .snapshot import Entry, Plan, Snapshot

DIR = RESERVED                          # no user file may lie there (core.preflight)
COMPONENT = DIR + "/namespace"
TRANSFORMER_NAME = "gitops-run-namespace"
HEADER = "# Written by kubectl gitops-run for its session; not a file of yours.\n"


@dataclass(frozen=True, slots=True)
class Added(Entry):
    """A file the session adds to the upload: its content, no local file."""
    data: bytes = b""


def _quote(text: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is one)."""
    return json.dumps(text, ensure_ascii=False)


def component(namespace: str) -> str:
    """The Component: objects that name no namespace get `namespace`.
    RoleBinding subjects are left as written (kubectl would not touch them)."""
    return (HEADER
            + "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
            + "transformers:\n- |\n  apiVersion: builtin\n  kind: NamespaceTransformer\n"
            + f"  metadata:\n    name: {TRANSFORMER_NAME}\n    namespace: {_quote(namespace)}\n"
            + "  unsetOnly: true\n  setRoleBindingSubjects: none\n")


def generated_kustomization(keys: Iterable[str], path: str) -> str:
    """What kustomize-controller writes for a path without a kustomization:
    the walked resources, named "./<relative>" as it names them."""
    resources = ["./" + posixpath.relpath(r, path or ".") for r in walked_resources(keys, path)]
    listed = "".join(f"- {_quote(r)}\n" for r in resources)
    return (HEADER + "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            + ("resources:\n" + listed if listed else "resources: []\n"))


def component_ref(path: str) -> str:
    """The component as `spec.components` names it: relative to the path."""
    return posixpath.relpath(COMPONENT, path.strip("/") or ".")


def session_files(keys: Iterable[str], path: str, namespace: str) -> dict[str, str]:
    """The files the session adds to the user's `keys`, by key."""
    keys = [k for k in keys if not k.startswith(DIR + "/")]
    files = {COMPONENT + "/kustomization.yaml": component(namespace)}
    # the component is below the applied path only when that is the root
    if not path.strip("/") and "" not in kustomization_dirs(keys):
        files[KUSTOMIZATION_FILES[0]] = generated_kustomization(keys, "")
    return files


def applied_path(fact: str | None) -> str:
    """The applied path as a key prefix ('' for the root, which the path
    annotation calls ".")."""
    path = (fact or "").strip("/")
    return "" if path == "." else path


def with_session_files(snapshot: Snapshot, path: str, namespace: str) -> Snapshot:
    """The snapshot plus the session's files, as entries without a local file
    (for a Kustomization: a Helm chart gets none)."""
    entries = dict(snapshot.entries)
    for key, text in session_files(entries, path, namespace).items():
        data = text.encode()
        entries[key] = Added(key, "", len(data), hashlib.md5(data).hexdigest(), data)
    return Snapshot(snapshot.root, dict(sorted(entries.items())), snapshot.fetched)


def added_keys(snapshot: Snapshot) -> set[str]:
    """The keys of a snapshot that hold no file of the user's."""
    return {k for k, e in snapshot.entries.items() if isinstance(e, Added)}


def users_plan(todo: Plan, snapshot: Snapshot) -> Plan:
    """A plan as the user reads it: without the session's own files."""
    ours = added_keys(snapshot)

    def theirs(keys: list[str]) -> list[str]:
        return [k for k in keys if k not in ours and not k.startswith(DIR + "/")]
    return Plan(theirs(todo.added), theirs(todo.changed), theirs(todo.removed))


def users_size(snapshot: Snapshot) -> tuple[int, int]:
    """The user's files in a snapshot: how many, and their bytes."""
    ours = [e for e in snapshot.entries.values() if isinstance(e, Added)]
    return len(snapshot.entries) - len(ours), snapshot.total_bytes - sum(e.size for e in ours)
