"""A snapshot of the local tree, its revision, and the plan that turns a
bucket's contents into it (pure).

The revision is computed exactly as source-controller computes a Bucket's
(`internal/index`): "sha256:" over the sorted lines "<key> <etag>\\n", so a
sync can wait for the revision of one complete snapshot (docs/architecture.md,
invariant 1).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Mapping

from .fetchscope import prefixes


@dataclass(frozen=True, slots=True)    # one per file: no __dict__ (~100 B each)
class Entry:
    key: str    # '/'-separated path relative to the root
    path: str   # absolute path to read (a symlink's target)
    size: int
    md5: str    # lowercase hex, equal to the ETag of a single PUT


@dataclass
class Snapshot:
    root: str                                   # absolute path of the tree
    entries: dict[str, Entry] = field(default_factory=dict)
    # the directories Flux fetches (core.fetchscope); () for all
    fetched: tuple[str, ...] = ()

    def etags(self) -> dict[str, str]:
        return {k: e.md5 for k, e in self.entries.items()}

    def fetched_keys(self) -> list[str]:
        if not self.fetched:
            return list(self.entries)
        under = prefixes(self.fetched)      # one C call a key: 10,000 keys in 1 ms
        return [k for k in self.entries if k.startswith(under)]

    @property
    def revision(self) -> str:
        """The revision Flux gives the Bucket: of the fetched keys alone."""
        return revision({k: self.entries[k].md5 for k in self.fetched_keys()})

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries.values())


def revision(etags: Mapping[str, str]) -> str:
    """source-controller's Bucket revision: sha256 over "<key> <etag>\\n" by key.
    Python's str order is code point order, which is UTF-8 byte order (Go's)."""
    lines = "".join(f"{key} {etags[key]}\n" for key in sorted(etags))
    return "sha256:" + hashlib.sha256(lines.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Plan:
    added: list[str]
    changed: list[str]
    removed: list[str]

    @property
    def upload(self) -> list[str]:
        return self.added + self.changed

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)

    def summary(self) -> str:
        """Counts for the summary line: "+2 ~1 -1"."""
        return f"+{len(self.added)} ~{len(self.changed)} -{len(self.removed)}"


def plan(local: Mapping[str, str], remote: Mapping[str, str]) -> Plan:
    """What to upload and delete so that the bucket holds `local` (key -> md5)."""
    def differs(key: str) -> bool:    # servers may quote ETags or use upper case
        a, b = local[key], remote[key]
        return a != b and a.strip('"').lower() != b.strip('"').lower()
    return Plan(
        added=sorted(k for k in local if k not in remote),
        changed=sorted(k for k in local if k in remote and differs(k)),
        removed=sorted(k for k in remote if k not in local),
    )
