"""The file list of a bucket slot, with sizes (adapters/bucketfiles.py)."""
from __future__ import annotations

from kubectl_gitops_run.adapters.bucketfiles import parse_page

PAGE = b"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>snapshot-a</Name><IsTruncated>true</IsTruncated>
  <NextContinuationToken>next/1</NextContinuationToken>
  <Contents><Key>apps/web.yaml</Key><ETag>&quot;0cc175b9c0f1b6a831c399e269772661&quot;</ETag>
    <Size>1234</Size></Contents>
  <Contents><Key>a b.yaml</Key><ETag>"92eb5ffee6ae2fec3ad71c777531578f"</ETag><Size>0</Size>
  </Contents>
</ListBucketResult>"""


def test_a_page_gives_keys_etags_sizes_and_the_next_token():
    found, token = parse_page(PAGE)
    assert found == {"apps/web.yaml": ("0cc175b9c0f1b6a831c399e269772661", 1234),
                     "a b.yaml": ("92eb5ffee6ae2fec3ad71c777531578f", 0)}
    assert token == "next/1"


def test_the_last_page_has_no_token():
    last = PAGE.replace(b"<IsTruncated>true", b"<IsTruncated>false")
    assert parse_page(last)[1] is None
