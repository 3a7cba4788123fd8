"""A slot's journal: read back exactly, refused when damaged or foreign, and
never part of what Flux indexes."""
from __future__ import annotations

import gzip
import hashlib
import json

from kubectl_gitops_run.core import journal
from kubectl_gitops_run.core.snapshot import revision

OBJECTS = {"deploy/cm.yaml": "a" * 32, "data/d 1/ü.txt": "b" * 32, "x": "c" * 32}


def test_round_trip():
    assert journal.decode(journal.encode(OBJECTS)) == OBJECTS


def test_no_journal_is_none():
    assert journal.decode(None) is None


def doc(**fields) -> bytes:
    base = {"format": journal.FORMAT, "revision": revision(OBJECTS), "objects": OBJECTS}
    return gzip.compress(json.dumps({**base, **fields}).encode())


def test_damaged_or_foreign_journals_are_refused():
    whole = journal.encode(OBJECTS)
    assert journal.decode(whole[:-8]) is None                   # cut short
    assert journal.decode(b"not gzip") is None
    assert journal.decode(gzip.compress(b"{not json")) is None
    assert journal.decode(doc(format=99)) is None
    assert journal.decode(doc(objects=[1, 2])) is None
    assert journal.decode(doc(objects={"k": 1})) is None
    # objects that do not add up to the revision written with them
    assert journal.decode(doc(objects={**OBJECTS, "extra": "d" * 32})) is None
    assert journal.decode(doc()) == OBJECTS


def test_the_journal_key_is_one_flux_skips():
    assert journal.KEY.endswith("/")        # source-controller skips keys ending in '/'
    listing = {**OBJECTS, journal.KEY: "e" * 32, "dir/": "f" * 32}
    assert journal.indexed(listing) == OBJECTS


def test_a_journal_of_10000_files_is_compressed():
    objects = {f"data/d{i // 100:02}/f{i:05}.txt": hashlib.md5(b"%d" % i).hexdigest()
               for i in range(10000)}
    data = journal.encode(objects)
    raw = len(json.dumps(objects))
    assert len(data) < raw * 0.6, (len(data), raw)
    assert journal.decode(data) == objects
