"""The files a bucket slot holds, each with its ETag and size: what the `ui`
page lists as a session's current snapshot.

The sync engine's listing (S3.list) keeps keys and ETags only; the page also
wants sizes, so this walks ListObjectsV2 once more through the same client
(its signing, retries and tunnel). Nothing here holds or returns credentials.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

from ..errors import S3Error
from . import s3 as s3mod

MAX_KEYS = 1000         # one ListObjectsV2 page


def parse_page(body: bytes) -> tuple[dict[str, tuple[str, int]], str | None]:
    """One page -> ({key: (etag, size)}, the next continuation token or None)."""
    root = ET.fromstring(body)
    found: dict[str, tuple[str, int]] = {}
    for elem in root:
        if s3mod._local(elem.tag) == "Contents":
            size = s3mod._child_text(elem, "Size") or "0"
            found[s3mod._child_text(elem, "Key") or ""] = (
                s3mod.clean_etag(s3mod._child_text(elem, "ETag")),
                int(size) if size.isdigit() else 0)
    more = (s3mod._child_text(root, "IsTruncated") or "").strip().lower() == "true"
    return found, (s3mod._child_text(root, "NextContinuationToken") or None) if more else None


def files(s3: s3mod.S3, slot: str) -> dict[str, tuple[str, int]] | None:
    """Every object of `slot` as {key: (etag, size)}; None if the slot does
    not exist (a new bucket pod, or a session never synced into it)."""
    found: dict[str, tuple[str, int]] = {}
    token = None
    try:
        while True:
            query = f"list-type=2&max-keys={MAX_KEYS}"
            if token:
                query += "&continuation-token=" + s3mod.quote_param(token)
            resp = s3._call("GET", s3._url(slot, query=query), s3mod.describe("list", slot),
                            bucket=slot)
            page, token = parse_page(resp.content)
            found.update(page)
            if not token:
                return found
    except S3Error as e:
        if e.code == "NoSuchBucket":
            return None
        raise
    except ET.ParseError as e:
        raise S3Error(f"list s3://{slot} failed: unreadable answer ({e})", bucket=slot) from e
