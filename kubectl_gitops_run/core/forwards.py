"""Port-forward targets (pure): kubectl's `[NAMESPACE/]TYPE/NAME [LOCAL:]REMOTE`
parsed, and resolved against objects read for it: a Service port to a pod's
port, and the pods behind a Service (its selector) or a workload (by
ownerReferences uid, never by a guessed label; docs/architecture.md,
invariant 4)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from ..errors import UsageError
from .pods import brief_problem, current_pod, pod_ready

# kubectl's names for the types it forwards to -> our kind
TYPES = {"svc": "Service", "service": "Service", "services": "Service",
         "deploy": "Deployment", "deployment": "Deployment", "deployments": "Deployment",
         "sts": "StatefulSet", "statefulset": "StatefulSet", "statefulsets": "StatefulSet",
         "po": "Pod", "pod": "Pod", "pods": "Pod"}
SHORT = {"Service": "svc", "Deployment": "deploy", "StatefulSet": "sts", "Pod": "pod"}
FIRST_UNPRIVILEGED = 1024
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_PORT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
EXAMPLE = "e.g. svc/web 8080:80"


@dataclass(frozen=True)
class Spec:
    namespace: str | None
    kind: str
    name: str
    local: int              # 0: a free port
    remote: int | str       # a number, or a port name

    @property
    def target(self) -> str:
        return f"{SHORT[self.kind]}/{self.name}"

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{where}{self.target} {self.local or ''}:{self.remote}"


def _port(text: str, what: str, spec: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"invalid {what} port {text!r} in --port-forward {spec!r}: use a "
                         f"number from 1 to 65535 ({EXAMPLE})")
    return int(text)


def parse_target(text: str) -> tuple[str | None, str, str]:
    """`[NAMESPACE/]TYPE/NAME` -> (namespace, kind, name)."""
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f"malformed target {text!r}: use [NAMESPACE/]TYPE/NAME ({EXAMPLE})")
    namespace = parts[0] if len(parts) == 3 else None
    kind = TYPES.get(parts[-2].lower())
    if kind is None:
        raise UsageError(f"unknown type {parts[-2]!r} in {text!r}: use svc, deploy, sts or pod")
    for part in (namespace, parts[-1]):
        if part is not None and not _NAME.fullmatch(part):
            raise UsageError(f"malformed target {text!r}: {part!r} is not a Kubernetes name")
    return namespace, kind, parts[-1]


def parse_ports(text: str, spec: str = "") -> tuple[int, int | str]:
    """`[LOCAL:]REMOTE` -> (local, remote); an empty LOCAL is 0 (a free port)."""
    spec = spec or text
    local, sep, remote = text.rpartition(":")
    if not sep:
        local = remote      # kubectl: `8080` forwards 8080 to 8080
    if ":" in local or not remote:
        raise UsageError(f"malformed ports {text!r} in --port-forward {spec!r}: use "
                         f"[LOCAL:]REMOTE ({EXAMPLE})")
    number = _port(local, "local", spec) if local else 0
    if 0 < number < FIRST_UNPRIVILEGED:
        raise UsageError(f"local port {number} in --port-forward {spec!r} is privileged (below "
                         f"{FIRST_UNPRIVILEGED}): pick a local port of 1024 or more, or leave "
                         f"it empty for a free one (:{remote})")
    if remote.isdigit():
        return number, _port(remote, "remote", spec)
    if not _PORT_NAME.fullmatch(remote) or len(remote) > 15:
        raise UsageError(f"malformed remote port {remote!r} in --port-forward {spec!r}: use a "
                         f"number or a port name ({EXAMPLE})")
    return number, remote


def parse(text: str) -> list[Spec]:
    """One --port-forward value, `TARGET PORTS...` (or `TARGET=PORTS`, spaces being
    awkward in some shells): one Spec per port pair."""
    words = text.replace("=", " ").split()
    if len(words) < 2:
        raise UsageError(f"malformed --port-forward {text!r}: use "
                         f"'[NAMESPACE/]TYPE/NAME [LOCAL:]REMOTE' ({EXAMPLE})")
    return specs(words[0], words[1:], text)


def specs(target: str, ports: list[str], text: str = "") -> list[Spec]:
    namespace, kind, name = parse_target(target)
    out = [Spec(namespace, kind, name, *parse_ports(p, text or f"{target} {p}")) for p in ports]
    check_unique(out)
    return out


_PORT_WORD = re.compile(r"\d+|\d*:[a-z0-9][-a-z0-9]*")     # 8080, 8080:80, :http


def join_words(args: list[str]) -> list[str]:
    """A command line with kubectl's `--port-forward svc/web 8080:80` (ports as
    words of their own) made one value per option, `svc/web 8080:80`, as
    parse() takes it; words that look like anything but ports are left as
    they are (a DIR argument after it, say)."""
    out: list[str] = []
    ended = False           # after `--`, every word is an argument
    for word in args:
        ended = ended or word == "--"
        if not ended and _PORT_WORD.fullmatch(word) and _after_forward(out):
            out[-1] += f" {word}"
        else:
            out.append(word)
    return out


def _after_forward(out: list[str]) -> bool:
    """Is out[-1] a --port-forward value (given as its own word or after `=`)?"""
    return bool(out) and (out[-1].startswith("--port-forward=")
                          or (len(out) > 1 and out[-2] == "--port-forward"))


def split_args(args: list[str]) -> tuple[str | None, list[tuple[str, list[str]]]]:
    """`forward`'s arguments: `[SESSION] TYPE/NAME [LOCAL:]REMOTE... [TYPE/NAME ...]`
    -> (session, [(target, ports)]); a word with a '/' starts a target."""
    session = args.pop(0) if args and "/" not in args[0] else None
    groups: list[tuple[str, list[str]]] = []
    for word in args:
        if "/" in word:
            groups.append((word, []))
        elif groups:
            groups[-1][1].append(word)
    if not groups or not all(ports for _, ports in groups):
        raise UsageError("malformed arguments: use [SESSION] TYPE/NAME [LOCAL:]REMOTE... "
                         f"({EXAMPLE})")
    return session, groups


def check_unique(all_specs: list[Spec]) -> None:
    seen: set[int] = set()
    for s in all_specs:
        if s.local and s.local in seen:
            raise UsageError(f"local port {s.local} is given to two forwards")
        seen.add(s.local)


# -- resolution -------------------------------------------------------------

def selector_string(labels: dict | None, expressions: list | None = None) -> str | None:
    """A label selector string from a Service's selector map, or a LabelSelector's
    matchLabels and matchExpressions; None when it is empty (it selects nothing
    we should forward to)."""
    parts = [f"{k}={v}" for k, v in sorted((labels or {}).items())]
    for e in expressions or []:
        key, values = e.get("key"), ",".join(e.get("values") or [])
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                      "Exists": key, "DoesNotExist": f"!{key}"}[e.get("operator")])
    return ",".join(parts) or None


def target_selector(kind: str, target: dict) -> str | None:
    """The selector to list a target's pods by: its own, never a guessed label."""
    spec = target.get("spec") or {}
    if kind == "Service":
        return selector_string(spec.get("selector"))
    if kind == "Pod":
        return None
    sel = spec.get("selector") or {}
    return selector_string(sel.get("matchLabels"), sel.get("matchExpressions"))


def _owned_by(obj: dict, uids: set[str]) -> bool:
    return any(ref.get("uid") in uids for ref in obj["metadata"].get("ownerReferences") or [])


def pods_behind(kind: str, target: dict, pods: list[dict], replicasets: list[dict]) -> list[dict]:
    """The pods of a target: a Service's by its selector (the caller lists with
    it), a StatefulSet's and a Pod by uid, a Deployment's through the
    ReplicaSets it owns."""
    uid = target["metadata"]["uid"]
    if kind == "Service":
        return list(pods)
    if kind == "Pod":
        return [p for p in pods if p["metadata"].get("uid") == uid]
    if kind == "Deployment":
        owners = {rs["metadata"]["uid"] for rs in replicasets if _owned_by(rs, {uid})}
        return [p for p in pods if _owned_by(p, owners)]
    return [p for p in pods if _owned_by(p, {uid})]


def pod_port(pod: dict, port: int | str) -> int | None:
    """A port on a pod: a number as it is, a name through its containers' ports."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == port:
                return int(p["containerPort"])
    return None


def service_target_port(service: dict, port: int | str) -> int | str:
    """A Service port (number or name) -> its targetPort, as kubectl maps it;
    a UsageError naming the ports it has when none matches."""
    ports = (service.get("spec") or {}).get("ports") or []
    for p in ports:
        if p.get("port") == port or (p.get("name") and p.get("name") == port) \
                or (str(port).isdigit() and p.get("port") == int(port)):
            return p.get("targetPort") or p["port"]
    have = ", ".join(f"{p.get('name') or '-'}:{p.get('port')}" for p in ports) or "none"
    raise UsageError(f"service/{service['metadata']['name']} has no port {port!r} "
                     f"(its ports: {have})")


class Choice(NamedTuple):
    """What adapters.portforward's pick gives: (pod, port, reason)."""
    pod: str | None
    port: int | None
    reason: str = ""        # why there is no pod to use, when pod is None


def choose(pods: list[dict], port: int | str) -> Choice:
    """The Ready pod to forward to (core.pods.current_pod) and its port number;
    else why not, in a few words."""
    pod = current_pod(pods)
    if pod is None:
        return Choice(None, None, "no pods")
    if not pod_ready(pod):
        return Choice(None, None, brief_problem(pod))
    number = pod_port(pod, port)
    if number is None:
        return Choice(None, None, f"pod {pod['metadata']['name']} has no port named {port!r}")
    return Choice(pod["metadata"]["name"], number)


def in_inventory(spec: Spec, namespace: str, refs) -> bool:
    """Is the target among what the session applied (core.inventory.Ref list)?"""
    ns = spec.namespace or namespace
    return any(r.kind == spec.kind and r.name == spec.name and r.namespace in (ns, "")
               for r in refs)


# -- the record on the session's Bucket, while a loop runs -------------------
#
# One annotation per loop, holding a JSON list of rows {url, target, state,
# expires}. A loop killed with SIGKILL cannot remove its record, so each row
# carries an expiry the loop renews (every RENEW s, well before TTL s run out:
# one write per RENEW, and a missed renewal or two costs nothing); readers
# drop rows past it, and the next loop on the session deletes such records.
# Rows without `expires` (older plugins) are kept: nothing says they are stale.

FORWARDS = "forwards"       # annotation key prefix (after naming.ANNOTATION)
TTL = 60.0                  # seconds a record lives unless renewed
RENEW = 20.0                # seconds between renewals
_TIME = "%Y-%m-%dT%H:%M:%SZ"


def expiry(now: datetime) -> str:
    """When a record written at `now` (UTC) stops counting."""
    return (now + timedelta(seconds=TTL)).strftime(_TIME)


def record(rows: list[dict], expires: str) -> str:
    return json.dumps([{**r, "expires": expires} for r in rows], separators=(",", ":"),
                      sort_keys=True)


def expired(row: dict, now: datetime) -> bool:
    """Is the row past its expiry? A row without one, or with one we cannot
    read, is not (a reader must not hide a live loop's forward)."""
    try:
        until = datetime.strptime(str(row["expires"]), _TIME).replace(tzinfo=timezone.utc)
    except (KeyError, ValueError):
        return False
    return until <= now


def live(rows: list[dict], now: datetime) -> list[dict]:
    """The rows of loops still running at `now` (UTC)."""
    return [r for r in rows if not expired(r, now)]


def _rows(value: str) -> list[dict] | None:
    try:
        rows = json.loads(value)
    except ValueError:
        return None
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else None


def read_records(annotations: dict, prefix: str, now: datetime | None = None) -> list[dict]:
    """Every running loop's forwards, from the annotations that start with
    prefix; with `now`, without those expired."""
    out: list[dict] = []
    for key, value in sorted((annotations or {}).items()):
        rows = _rows(value) if key.startswith(prefix) else None
        out += rows or []
    return out if now is None else live(out, now)


def stale(annotations: dict, prefix: str, now: datetime) -> list[str]:
    """The record annotations whose every row has expired: a loop that was
    killed. Unreadable or empty ones are left alone (not ours to judge)."""
    return [key for key, value in sorted((annotations or {}).items())
            if key.startswith(prefix) and (rows := _rows(value))
            and all(expired(r, now) for r in rows)]
