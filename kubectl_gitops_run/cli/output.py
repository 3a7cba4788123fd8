"""What the commands print: sessions as kubectl-style tables, JSON, YAML or
names, and the one line (or JSON) that reports a sync. Pure.

A session arrives as a plain dict of stable fields (name, namespace, kind,
source, path, targetNamespace, host, user, created, lastSync, revision, files,
bytes, ready, status, bucketPod, objectsApplied); missing values are None. That same
dict is what `-o json|yaml` prints per item.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone

from ..core.units import human_bytes, short_revision

NONE = "<none>"
UNKNOWN = "<unknown>"
STATUS_WIDTH = 60
# kubectl's tabwriter: padding 3, minimal cell width 6 (padding included).
PADDING = 3
MIN_CELL = 6
FORMATS = ("wide", "json", "yaml", "name")


# kubectl (1.26+) shows ESC as "^[" and CR as "\\r", so that a file name or a
# cluster string cannot move the cursor or rewrite the screen; other control
# characters (BEL, C1 CSI ...) are shown as \\xNN here too.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def escape(text: str) -> str:
    """Text safe for a terminal: tabs and newlines stay, other controls are shown."""
    def show(m: re.Match) -> str:
        c = m.group()
        return "^[" if c == "\x1b" else "\\r" if c == "\r" else f"\\x{ord(c):02x}"
    return _CONTROL.sub(show, text)


def human_duration(seconds: float) -> str:
    """apimachinery's duration.HumanDuration, branch for branch."""
    s = int(seconds)  # truncates toward zero, as Go's int(d.Seconds())
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 60 * 2:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        years, days = divmod(hours // 24, 365)
        return f"{years}y{days}d" if days else f"{years}y"
    return f"{hours // 24 // 365}y"


def _parse_time(timestamp: str) -> datetime:
    # fromisoformat only learnt "Z" in 3.11; we support 3.10.
    if timestamp.endswith(("Z", "z")):
        timestamp = timestamp[:-1] + "+00:00"
    parsed = datetime.fromisoformat(timestamp)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def age(timestamp: str | None, now: datetime) -> str:
    if not timestamp:
        return UNKNOWN
    try:
        then = _parse_time(timestamp)
    except (TypeError, ValueError):
        return UNKNOWN
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return human_duration((now - then).total_seconds())


def table(headers: list[str], rows: list[list[str]], no_headers: bool = False) -> str:
    lines = ([] if no_headers else [[h.upper() for h in headers]])
    lines += [[NONE if c is None or str(c) == "" else escape(str(c)) for c in row]
              for row in rows]
    if not lines:
        return ""
    ncols = max(len(line) for line in lines)
    widths = [max(len(line[i]) for line in lines if i < len(line)) for i in range(ncols)]
    out = []
    for line in lines:
        # Every cell but the last is padded, so no line has trailing spaces.
        cells = [cell.ljust(max(widths[i] + PADDING, MIN_CELL)) for i, cell in enumerate(line[:-1])]
        out.append("".join(cells) + line[-1])
    return "\n".join(out) + "\n"


def home_relative(path: str | None, home: str) -> str:
    if path is None:
        return NONE
    home = home.rstrip("/")
    if not home:
        return path
    if path.rstrip("/") == home:
        return "~"
    if path.startswith(home + "/"):
        return "~/" + path[len(home) + 1:]
    return path


def _status(message: str | None) -> str:
    text = re.sub(r"\s+", " ", message or "").strip()
    # Flux quotes whole digests: the short form is what REVISION shows too
    text = re.sub(r"\b(sha256:[0-9a-f]{8})[0-9a-f]{56}\b", r"\1", text)
    if len(text) > STATUS_WIDTH:
        text = text[:STATUS_WIDTH - 3] + "..."
    return text


def _sorted(sessions: list[dict]) -> list[dict]:
    return sorted(sessions, key=lambda s: (s.get("namespace") or "", s.get("name") or ""))


def _cell(value) -> str:
    return "" if value is None else str(value)


def sessions_table(sessions: list[dict], *, wide: bool = False, all_namespaces: bool = False,
                   no_headers: bool = False, now: datetime, home: str) -> str:
    headers = ["NAME", "SOURCE", "FILES", "REVISION", "READY", "STATUS", "LAST SYNC", "AGE"]
    if all_namespaces:
        headers.insert(0, "NAMESPACE")
    if wide:
        headers += ["KIND", "HOST", "TARGET NAMESPACE", "BUCKET POD", "OBJECTS", "FORWARDS"]
    rows = []
    for s in _sorted(sessions):
        row = [_cell(s.get("name")), home_relative(s.get("source"), home), _cell(s.get("files")),
               short_revision(s.get("revision")), _cell(s.get("ready")), _status(s.get("status")),
               # Never synced is a fact, not an unknown: print it as empty.
               age(s["lastSync"], now) if s.get("lastSync") else NONE,
               age(s.get("created"), now)]
        if all_namespaces:
            row.insert(0, _cell(s.get("namespace")))
        if wide:
            row += [_cell(s.get("kind")), _cell(s.get("host")), _cell(s.get("targetNamespace")),
                    _cell(s.get("bucketPod")), _cell(s.get("objectsApplied")),
                    forwards_cell(s.get("forwards"))]
        rows.append(row)
    return table(headers, rows, no_headers=no_headers)


def forwards_cell(rows: list[dict] | None) -> str:
    """The FORWARDS column: `URL->TARGET(STATE)` of each forward of a running
    loop; STATE is `ready` or `waiting` (-o json has the reason)."""
    return ",".join(f"{r.get('url')}->{r.get('target')}({str(r.get('state')).split(':')[0]})"
                    for r in rows or [])


def forward_line(url: str, target: str) -> str:
    """A port-forward's URL, printed once, when its target first has a Ready pod."""
    return f"forwarding {url} -> {target}"


def _document(sessions: list[dict]) -> dict:
    return {"apiVersion": "v1", "kind": "List", "items": [dict(s) for s in _sorted(sessions)]}


def sessions_json(sessions: list[dict]) -> str:
    return json.dumps(_document(sessions), indent=4, ensure_ascii=False) + "\n"


def sessions_yaml(sessions: list[dict]) -> str:
    import yaml  # only -o yaml pays for it
    return yaml.safe_dump(_document(sessions), sort_keys=False, default_flow_style=False)


def sessions_names(sessions: list[dict]) -> str:
    return "".join(f"session/{s.get('name')}\n" for s in _sorted(sessions))


def render(sessions: list[dict], output: str | None, *, all_namespaces: bool, no_headers: bool,
           now: datetime, home: str) -> str:
    if output in (None, "", "wide"):
        return sessions_table(sessions, wide=output == "wide", all_namespaces=all_namespaces,
                              no_headers=no_headers, now=now, home=home)
    if output == "json":
        return sessions_json(sessions)
    if output == "yaml":
        return sessions_yaml(sessions)
    if output == "name":
        return sessions_names(sessions)
    raise ValueError(f'unable to match a printer suitable for the output format "{output}", '
                     f"allowed formats are: {','.join(sorted(FORMATS))}")


def summary_line(plan_summary: str, revision: str, applied: int | None, elapsed: float) -> str:
    head = f"{plan_summary} files, revision {short_revision(revision)}"
    if applied is None:
        return f"{head}, uploaded in {elapsed:.1f}s"
    noun = "object" if applied == 1 else "objects"
    return f"{head}, applied {applied} {noun} in {elapsed:.1f}s"


def result_line(result) -> str:
    """One sync's result (ops.Result), as `sync` and each watch cycle print it."""
    if result.up_to_date and result.applied is not None:
        return f"up to date, revision {short_revision(result.revision)}"
    return summary_line(result.plan.summary(), result.revision, result.applied, result.elapsed)


def result_json(result, dry_run: bool = False) -> str:
    return json.dumps({
        "added": result.plan.added, "changed": result.plan.changed,
        "removed": result.plan.removed, "revision": result.revision,
        "files": result.files, "bytes": result.bytes, "upToDate": result.up_to_date,
        "objectsApplied": result.applied, "seconds": round(result.elapsed, 3),
        "dryRun": dry_run}, indent=2)


def dry_run_lines(result) -> list[str]:
    """What a sync would do (ops.preview): a summary, then a line per file."""
    if result.plan.empty:
        return [f"up to date, revision {short_revision(result.revision)} (dry run)"]
    head = (f"would sync {result.plan.summary()} files, revision "
            f"{short_revision(result.revision)} (dry run: nothing uploaded)")
    marks = (("+", result.plan.added), ("~", result.plan.changed), ("-", result.plan.removed))
    return [head] + [f"{mark} {key}" for mark, keys in marks for key in keys]


def cycle_line(result, error: str | None, when: datetime) -> str:
    """A watch cycle: its time, then its result or its error."""
    stamp = when.strftime("%H:%M:%S")
    return f"{stamp} error: {error}" if error is not None else f"{stamp} {result_line(result)}"


def up_line(name: str, namespace: str, result) -> str:
    applied = "" if result.applied is None else f", applied {result.applied} objects"
    return (f"session {name} ready in namespace {namespace}: {result.files} files "
            f"({human_bytes(result.bytes)}), revision {short_revision(result.revision)}"
            f"{applied} in {result.elapsed:.1f}s")


def removal_lines(name: str, namespace: str, removal, keep_workloads: bool,
                  dry_run: bool) -> list[str]:
    """What `down` did (or, dry run, would do) to one session (ops.down.Removal)."""
    if not removal.objects:
        return [f"session {name} not found in namespace {namespace}: nothing to remove"]
    kinds = ", ".join(removal.kinds)
    deployed = "" if keep_workloads or not {"Kustomization", "HelmRelease"} & set(removal.kinds) \
        else " and what it deployed"
    if dry_run:
        lines = [f"session {name} would be removed ({kinds})"]
        lines += [f"  would prune {ref}" for ref in removal.pruned]
    else:
        lines = [f"session {name} removed{deployed} ({kinds})"]
    lines += [f"  kept {ref}: {reason}" for ref, reason in removal.kept]
    return lines
