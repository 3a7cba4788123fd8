"""A listing split into parallel ranges is still the whole bucket, whatever it
holds against the local keys it was cut at (docs/architecture.md, invariant 1:
a slot is flipped to only when its listing equals the snapshot)."""
from __future__ import annotations

import threading
from urllib.parse import parse_qs, urlsplit

import pytest

from kubectl_gitops_run.adapters import s3
from kubectl_gitops_run.adapters.s3 import S3
from tests.unit.adapters.test_s3 import contents, page


class Bucket:
    """ListObjectsV2 over sorted keys: start-after, continuation-token, max-keys."""

    def __init__(self, keys):
        self.keys = sorted(keys)
        self.requests = 0
        self.lock = threading.Lock()

    def answer(self, query: dict) -> bytes:
        with self.lock:
            self.requests += 1
        size = int(query["max-keys"][0])
        after = (query.get("continuation-token") or query.get("start-after") or [None])[0]
        rest = [k for k in self.keys if after is None or k > after]
        chunk, more = rest[:size], len(rest) > size
        body = "".join(contents(k, f'"{k}-etag"') for k in chunk)
        return page(body, more, chunk[-1] if more else None)


class Reply:
    def __init__(self, content: bytes):
        self.content, self.status_code = content, 200


@pytest.fixture
def client(monkeypatch):
    def with_bucket(keys, page_keys=3):
        bucket = Bucket(keys)
        monkeypatch.setattr(s3, "PAGE_KEYS", page_keys)
        c = S3("http://127.0.0.1:1", "AK", "SK")
        monkeypatch.setattr(c, "_call", lambda method, url, what, **kw:
                            Reply(bucket.answer(parse_qs(urlsplit(url).query))))
        return c, bucket
    return with_bucket


LOCAL = [f"k{i:03}" for i in range(20)]


@pytest.mark.parametrize("remote", [
    LOCAL,                                           # the usual case: as expected
    [],                                              # an empty slot
    LOCAL[:7],                                       # fewer than expected
    LOCAL + ["a", "k0025", "k0055", "z", "zz/y"],    # extra keys around and between cuts
    [k for k in LOCAL if k not in ("k002", "k005", "k008")],   # the cut keys missing
    [f"k{i:03}x" for i in range(40)],                # nothing in common
])
def test_ranges_list_the_whole_bucket(client, remote):
    c, bucket = client(remote)
    cuts = s3.range_cuts(LOCAL, 3)
    got = c.list("b", cuts)
    assert list(got) == sorted(remote)
    assert got == {k: f"{k}-etag" for k in remote}


def test_cuts_make_one_request_per_range_when_the_slot_holds_the_local_keys(client):
    c, bucket = client(LOCAL)
    cuts = s3.range_cuts(LOCAL, 3)
    assert cuts == ["k002", "k005", "k008", "k011", "k014", "k017"]
    c.list("b", cuts)
    assert bucket.requests == len(cuts) + 1


def test_no_cuts_for_a_small_tree():
    assert s3.range_cuts(LOCAL, 1000) == []
    assert s3.range_cuts(LOCAL[:3], 3) == []
