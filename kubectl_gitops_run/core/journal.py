"""A slot's journal (pure): what a snapshot slot holds, in one object.

The sync that fills a slot deletes the slot's journal before its first write
and puts a new one after its last, so a journal that is present describes the
slot exactly, and one GET replaces a listing of every key (issue 13). Whatever
else can change a slot takes the journal with it: a replaced bucket pod starts
empty, a killed sync left none, a slot emptied by hand lost it with the rest.
Without one, the slot is listed (docs/architecture.md, invariant 1).

Its key ends in '/': source-controller skips such keys (a directory marker),
so the journal is never part of the artifact nor of its revision.
"""
from __future__ import annotations

import gzip
import json
from typing import Mapping

from .snapshot import revision

KEY = ".kubectl-gitops-run/journal/"
FORMAT = 1


def encode(etags: Mapping[str, str]) -> bytes:
    """The journal of a slot holding `etags` (key -> etag), with its revision
    so that a damaged one is known. gzip level 1: keys share long prefixes,
    and the journal of 10,000 files shrinks by about half for a few ms."""
    objects = etags if isinstance(etags, dict) else dict(etags)    # 100,000 keys: no copy
    doc = {"format": FORMAT, "revision": revision(objects), "objects": objects}
    return gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), compresslevel=1,
                         mtime=0)


def decode(data: bytes | None) -> dict[str, str] | None:
    """The objects a journal names; None for no journal, or one that is not
    whole and ours (then the slot is listed instead)."""
    if data is None:
        return None
    try:
        doc = json.loads(gzip.decompress(data))
    except (OSError, EOFError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return None
    objects = doc.get("objects")
    if not isinstance(objects, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in objects.items()):
        return None
    return objects if revision(objects) == doc.get("revision") else None


def indexed(listing: Mapping[str, str]) -> dict[str, str]:
    """The objects of a slot's listing that source-controller indexes: not
    those whose key ends in '/' (the journal among them)."""
    return {k: e for k, e in listing.items() if not k.endswith("/")}
