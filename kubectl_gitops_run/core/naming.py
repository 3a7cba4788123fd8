"""Every naming rule of a session, defined once (docs/architecture.md, "Naming").

One session is one name in one namespace. Its objects are all named
`gitops-run-<session>` (its sync Lease `gitops-run-<session>-sync`) and carry
MANAGED_BY and SESSION_LABEL: they are selected by those, never by guess
(invariant 4). Facts about a session are annotations under ANNOTATION.
"""
from __future__ import annotations

import re

from ..errors import UsageError

MANAGED_BY = {"app.kubernetes.io/managed-by": "kubectl-gitops-run"}
SESSION_LABEL = "kubectl-gitops-run.io/session"
COMPONENT_LABEL = "app.kubernetes.io/component"
BUCKET_SERVER = "bucket-server"                  # the component label of its pods
ANNOTATION = "kubectl-gitops-run.io/"           # prefix of our annotations
POD_KEY_LABEL = "kubectl-gitops-run.io/pod-key"  # see core.manifests.new_pod_key
# the field manager of our server-side applies
FIELD_MANAGER = "kubectl-gitops-run"

PREFIX = "gitops-run-"
# Service names are DNS-1035 labels of at most 63 characters.
MAX_NAME = 63 - len(PREFIX)
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")

# The facts a session keeps as annotations: static ones on every object,
# per-sync ones on the Bucket.
SOURCE, HOST, USER, PATH, TARGET = ("source", "host", "user", "path", "target-namespace")
REVISION, FILES, BYTES, LAST_SYNC = ("revision", "files", "bytes", "last-sync")
SYNC_FACTS = (REVISION, FILES, BYTES, LAST_SYNC)


def object_name(session: str) -> str:
    return PREFIX + session


def lease_name(session: str) -> str:
    return f"{PREFIX}{session}-sync"


def sops_secret_name(session: str) -> str:
    """The Secret that holds a session's SOPS decryption key."""
    return f"{PREFIX}{session}-sops"


def reader_secret_name(session: str) -> str:
    """The Secret with the credentials of Flux's read-only bucket user."""
    return f"{PREFIX}{session}-reader"


def cluster_binding_name(session: str, namespace: str) -> str:
    """The one cluster-scoped object of a session: the namespace is in its name."""
    return f"{PREFIX}{session}-{namespace}"


def owned_objects(session: str, namespace: str) -> list[tuple[str, str]]:
    """(kind, name) of everything a session may own, in the order `down`
    removes them: the HelmRelease or Kustomization first (helm-controller
    uninstalls, Flux prunes what it applied, as the session's ServiceAccount,
    so that goes last), then the bucket server."""
    name = object_name(session)
    return [("HelmRelease", name), ("Kustomization", name), ("Bucket", name),
            ("Deployment", name),
            ("Service", name), ("NetworkPolicy", name), ("Secret", name),
            ("Secret", sops_secret_name(session)), ("Secret", reader_secret_name(session)),
            ("Lease", lease_name(session)),
            ("RoleBinding", name), ("Role", name),
            ("ClusterRoleBinding", cluster_binding_name(session, namespace)),
            ("ServiceAccount", name)]


def validate_name(name: str) -> str:
    if len(name) > MAX_NAME or not _LABEL.fullmatch(name) or name[0].isdigit():
        raise UsageError(
            f"invalid session name {name!r}: use at most {MAX_NAME} lower-case letters, digits "
            f"and '-', starting with a letter and ending with a letter or digit")
    return name


def validate_namespace(namespace: str, flag: str = "-n") -> str:
    """A namespace as Kubernetes accepts it (an RFC 1123 label), checked before
    any request so that it never goes into a URL as typed."""
    if len(namespace) > 63 or not _LABEL.fullmatch(namespace):
        raise UsageError(f"invalid namespace {namespace!r} for {flag}: use at most 63 "
                         f"lower-case letters, digits and '-', starting and ending with a "
                         f"letter or digit")
    return namespace


def validate_object_name(name: str, flag: str) -> str:
    """An object name as Kubernetes accepts most (an RFC 1123 subdomain)."""
    if len(name) > 253 or not all(len(part) <= 63 and _LABEL.fullmatch(part)
                                  for part in name.split(".")):
        raise UsageError(f"invalid name {name!r} for {flag}: use lower-case letters, digits, "
                         f"'-' and '.', each part starting and ending with a letter or digit")
    return name


# apimachinery's label selector grammar: a key (an optional DNS prefix and '/',
# then a name), an operator and values, each part at most 63 characters
_PART = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_KEY = rf"(?:[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?/)?{_PART}"
_VALUE = rf"(?:{_PART})?"
_REQUIREMENT = re.compile(
    rf"\s*(?:!\s*{_KEY}|{_KEY}(?:\s*(?:==?|!=)\s*{_VALUE}|\s*[<>]\s*\d+"
    rf"|\s+(?:in|notin)\s*\(\s*{_VALUE}(?:\s*,\s*{_VALUE})*\s*\))?)\s*")


def validate_selector(text: str, flag: str = "-l") -> str:
    """A label selector as the API server parses it, checked before any request
    (the server's own complaint would be about the selector we add to it)."""
    requirements = re.split(r",(?![^(]*\))", text)     # commas outside (...)
    if text.strip() and not all(_REQUIREMENT.fullmatch(r) for r in requirements):
        raise UsageError(f"invalid label selector {text!r} for {flag}: use requirements such as "
                         f"app=web, tier!=db, 'tier in (web,api)' or !canary, separated by "
                         f"commas (e.g. -l app=web)")
    return text


def confined_path(path: str) -> str:
    """--path as a '/'-separated path inside the source directory ("" for its root)."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if path.startswith(("/", "\\")) or ".." in parts:
        raise UsageError(f"--path {path!r} must be a directory inside DIR, relative to it "
                         f"(e.g. --path deploy)")
    return "/".join(parts)


def name_from_dir(basename: str) -> str:
    """A directory's basename made into a valid session name ("My_App" -> "my-app")."""
    name = re.sub(r"[^a-z0-9]+", "-", basename.lower()).strip("-")
    name = name.lstrip("0123456789-") or "app"
    return name[:MAX_NAME].rstrip("-")


def labels(session: str, component: str | None = None) -> dict:
    out = {**MANAGED_BY, SESSION_LABEL: session}
    if component:
        out[COMPONENT_LABEL] = component
    return out


def selector(session: str | None = None, extra: str | None = None) -> str:
    """A label selector for our objects: all sessions, or one; `extra` is the
    user's -l selector, which narrows, never widens."""
    parts = [f"{k}={v}" for k, v in MANAGED_BY.items()]
    parts.append(f"{SESSION_LABEL}={session}" if session else SESSION_LABEL)
    if extra:
        parts.append(extra)
    return ",".join(parts)


def bucket_pods_selector(session: str | None = None, extra: str | None = None) -> str:
    """The bucket-server pods of one session, or of all."""
    return selector(session, extra) + f",{COMPONENT_LABEL}={BUCKET_SERVER}"


def annotations(**facts) -> dict:
    """Our facts as annotations: None values are left out; others become strings."""
    return {ANNOTATION + k.replace("_", "-"): str(v) for k, v in facts.items() if v is not None}


def fact(obj: dict | None, key: str) -> str | None:
    return (((obj or {}).get("metadata") or {}).get("annotations") or {}).get(ANNOTATION + key)


def owns(obj: dict | None, session: str) -> bool:
    """Only our own objects are touched: labelled as ours and as this session's."""
    got = ((obj or {}).get("metadata") or {}).get("labels") or {}
    return all(got.get(k) == v for k, v in labels(session).items())


def identity(user: str, host: str) -> str:
    """Who a session or a sync belongs to, as people read it."""
    return f"{user}@{host}"
