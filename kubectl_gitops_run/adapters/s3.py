"""A small S3 client for the session bucket: requests + SigV4, path-style URLs.

Only the calls the sync engine needs. One `requests.Session` with a connection
pool sized for a thread pool of uploaders; every call is idempotent and retried
a few times on connection errors and 5xx, since the port-forward under it may
drop a connection at any time. Credentials never appear in messages or logs.
Uploads stream from the file, a block at a time, signed UNSIGNED-PAYLOAD and
guarded by Content-MD5, so a file is never held in memory whole.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO, Sequence
from urllib.parse import quote
from xml.sax.saxutils import escape

import requests
from requests.adapters import HTTPAdapter
from requests_aws4auth import AWS4Auth

from ..errors import FileChanged, S3Error

log = logging.getLogger(__name__)

DELETE_BATCH = 1000          # DeleteObjects accepts at most 1000 keys
PAGE_KEYS = 1000             # ListObjectsV2 returns at most 1000 keys a page
LIST_WORKERS = 8             # ranges of one listing fetched at once
POOL_SIZE = 24               # ~16 upload workers plus listings
TIMEOUT = (5.0, 20.0)        # (connect, read) seconds, on every request
RETRY_DELAYS = (0.1, 0.3, 0.7, 1.5)   # pauses between attempts: 5 attempts in all
IDLE_REUSE = 3.0             # seconds an idle pooled connection is trusted
NOT_MODIFIED = 304           # a conditional GET whose object still has the ETag given
RETRY_CODES = {"InternalError", "SlowDown", "ServiceUnavailable", "RequestTimeout",
               "XMinioServerNotInitialized"}
AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"}
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"   # SigV4's marker for a body left out of the signature


# ---- pure helpers (unit-tested) ------------------------------------------

def quote_key(key: str) -> str:
    """Percent-encode an object key for the URL path, as SigV4 for S3 wants it:
    UTF-8, everything but unreserved characters and '/' escaped once."""
    return quote(key, safe="/~")


def quote_param(value: str) -> str:
    """Percent-encode a query value fully (no '+' for space, '/' escaped)."""
    return quote(value, safe="-_.~")


def clean_etag(etag: str | None) -> str:
    return (etag or "").strip().strip('"').lower()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(elem: ET.Element, name: str) -> str | None:
    for child in elem:
        if _local(child.tag) == name:
            return child.text or ""
    return None


def parse_list_page(body: bytes, sizes: bool = False) -> tuple[dict, str | None]:
    """One ListObjectsV2 page -> ({key: etag}, or with `sizes` {key: (etag,
    size)}; the next continuation token or None)."""
    root = ET.fromstring(body)
    objects: dict = {}
    for elem in root:
        if _local(elem.tag) == "Contents":
            etag = clean_etag(_child_text(elem, "ETag"))
            if sizes:
                size = (_child_text(elem, "Size") or "0").strip()
                etag = (etag, int(size) if size.isdigit() else 0)
            objects[_child_text(elem, "Key") or ""] = etag
    truncated = (_child_text(root, "IsTruncated") or "").strip().lower() == "true"
    token = _child_text(root, "NextContinuationToken") if truncated else None
    if truncated and not token:
        raise ValueError("listing is truncated but has no NextContinuationToken")
    return objects, token


def range_cuts(keys: Sequence[str], size: int = PAGE_KEYS) -> list[str]:
    """Cut points for S3.list from the sorted keys a bucket is expected to
    hold: one range per page of them, so each range is about one request."""
    return list(keys[size - 1:-1:size])


def parse_error(body: bytes) -> tuple[str | None, str | None]:
    """An S3 <Error> document -> (code, message); (None, None) if it is not one."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None, None
    if _local(root.tag) != "Error":
        return None, None
    return _child_text(root, "Code"), _child_text(root, "Message")


def parse_delete_errors(body: bytes) -> list[tuple[str, str, str]]:
    """A DeleteObjects result -> [(key, code, message)] for the keys that failed."""
    root = ET.fromstring(body)
    return [(_child_text(e, "Key") or "", _child_text(e, "Code") or "",
             _child_text(e, "Message") or "")
            for e in root if _local(e.tag) == "Error"]


def delete_body(keys: list[str]) -> bytes:
    objects = "".join(f"<Object><Key>{escape(k)}</Key></Object>" for k in keys)
    return (f'<?xml version="1.0" encoding="UTF-8"?><Delete><Quiet>true</Quiet>'
            f"{objects}</Delete>").encode()


def batches(items: list, size: int = DELETE_BATCH) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def content_md5(md5_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(md5_hex)).decode()


def describe(method: str, bucket: str, key: str | None = None) -> str:
    return f"{method} s3://{bucket}/{key}" if key is not None else f"{method} s3://{bucket}"


# ---- the client -----------------------------------------------------------

class Stream:
    """`size` bytes of an open binary file, from where it stands, as an upload
    body: requests sends it with a Content-Length, a block at a time, and it
    starts over on each retry. A file that ends early raises FileChanged, since
    a body shorter than its Content-Length would hang the request."""

    def __init__(self, file: BinaryIO, size: int, key: str):
        self._file, self._size, self._key = file, size, key
        self._start = file.tell()
        self._left = size

    def __len__(self) -> int:          # requests' Content-Length
        return self._size

    def __iter__(self):                # requests sends iterables as streams
        while block := self.read(64 * 1024):
            yield block

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""                 # never more than announced, should the file grow
        n = self._left if n is None or n < 0 else min(n, self._left)
        try:
            block = self._file.read(n)
        except OSError:
            raise FileChanged(self._key) from None
        if not block:
            raise FileChanged(self._key)
        self._left -= len(block)
        return block

    def rewind(self) -> None:
        self._file.seek(self._start)
        self._left = self._size


class _LockedAuth(AWS4Auth):
    """AWS4Auth signing one request at a time (it mutates itself when the UTC
    date changes), and a Stream body as UNSIGNED-PAYLOAD: AWS4Auth would read
    a whole stream into memory to hash it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._unsigned = False

    def __call__(self, req):
        with self._lock:
            body = req.body
            self._unsigned = isinstance(body, Stream)
            if self._unsigned:
                req.body = None        # nothing for AWS4Auth to read and hash
            try:
                return super().__call__(req)
            finally:
                req.body = body

    def get_canonical_headers(self, req, include=None):
        # AWS4Auth calls this right after setting its payload hash: replace it
        if self._unsigned:
            req.headers["x-amz-content-sha256"] = UNSIGNED_PAYLOAD
        return super().get_canonical_headers(req, include)

    def __repr__(self) -> str:
        return "<S3 SigV4 auth>"


class S3:
    def __init__(self, endpoint_url: str, access_key: str, secret_key: str,
                 region: str = "us-east-1", timeout: tuple[float, float] = TIMEOUT):
        self.endpoint = endpoint_url.rstrip("/")
        self.region = region
        self.timeout = timeout
        self._auth = _LockedAuth(access_key, secret_key, region, "s3")
        self._http = requests.Session()
        self._http.trust_env = False     # never send the bucket traffic through a proxy
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=POOL_SIZE)
        self._http.mount("http://", adapter)
        self._http.mount("https://", adapter)
        self._used = time.monotonic()
        self._idle_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3({self.endpoint!r})"

    def close(self) -> None:
        self._http.close()

    # -- plumbing --

    def _url(self, bucket: str, key: str | None = None, query: str = "") -> str:
        url = f"{self.endpoint}/{quote_key(bucket)}"
        if key is not None:
            url += "/" + quote_key(key)
        return url + (f"?{query}" if query else "")

    def _call(self, method: str, url: str, what: str, *, bucket: str, key: str | None = None,
              data: bytes | Stream | None = None,
              headers: dict | None = None) -> requests.Response:
        """Send one signed request, retrying connection errors and 5xx; return a 2xx
        response, else raise S3Error."""
        with self._idle_lock:
            if time.monotonic() - self._used > IDLE_REUSE:
                # A port-forward tunnel that sat idle may be dead without saying so:
                # a request sent into it would wait for the whole read timeout.
                self._http.close()          # the pools reopen on the next request
            self._used = time.monotonic()
        timeouts = 0
        for attempt in range(len(RETRY_DELAYS) + 1):
            last = attempt == len(RETRY_DELAYS)
            if isinstance(data, Stream):
                data.rewind()
            try:
                resp = self._http.request(method, url, data=data, headers=headers,
                                          auth=self._auth, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError) as e:
                # A stalled tunnel costs a whole read timeout: retry that once only.
                timeouts += isinstance(e, requests.Timeout)
                if last or timeouts > 1:
                    raise S3Error(f"{what} failed: cannot reach the bucket server at "
                                  f"{self.endpoint} ({type(e).__name__})",
                                  bucket=bucket, key=key) from e
                log.debug("%s: %s, retrying", what, type(e).__name__)
                time.sleep(RETRY_DELAYS[attempt])
                continue
            self._used = time.monotonic()
            if 200 <= resp.status_code < 300 or resp.status_code == NOT_MODIFIED:
                return resp
            code, message = parse_error(resp.content)
            # 499: MinIO saw the client go (a tunnel cut mid-request): send it again
            if not last and (resp.status_code >= 499 or code in RETRY_CODES):
                log.debug("%s: HTTP %s %s, retrying", what, resp.status_code, code)
                time.sleep(RETRY_DELAYS[attempt])
                continue
            raise self._error(what, resp.status_code, code, message, bucket, key)
        raise AssertionError("unreachable")

    @staticmethod
    def _error(what, status, code, message, bucket, key) -> S3Error:
        text = f"{what} failed: HTTP {status}"
        if code:
            text += f" {code}"
        if message:
            text += f": {message.rstrip('.')}"
        if code in AUTH_CODES or (status == 403 and not code):
            text += " (check the session's S3 access key and secret key)"
        return S3Error(text, status=status, code=code, bucket=bucket, key=key)

    # -- the API --

    def ensure_bucket(self, bucket: str) -> None:
        body = None
        if self.region != "us-east-1":
            body = (f"<CreateBucketConfiguration><LocationConstraint>{escape(self.region)}"
                    f"</LocationConstraint></CreateBucketConfiguration>").encode()
        try:
            self._call("PUT", self._url(bucket), describe("create bucket", bucket),
                       bucket=bucket, data=body)
        except S3Error as e:
            if e.code != "BucketAlreadyOwnedByYou":
                raise

    def admin_put(self, path: str, body: bytes, what: str) -> bytes:
        """A PUT to MinIO's admin API (signed as S3 is, payload hashed); its answer."""
        return self._call("PUT", self.endpoint + path, what, bucket="", data=body).content

    def list(self, bucket: str, cuts: Sequence[str] = (), sizes: bool = False) -> dict:
        """Every object of the bucket, {key: etag} (with `sizes`, {key: (etag,
        size)}) in key order. `cuts` (sorted keys, see `range_cuts`) split the
        listing into ranges (lo, hi] listed in parallel; each range reads on
        past its last expected key to its bound, so the union is the whole
        bucket whatever it holds."""
        bounds = [None, *cuts, None]
        ranges = list(zip(bounds, bounds[1:]))
        if len(ranges) == 1:
            return self._list_range(bucket, None, None, sizes)
        objects: dict = {}
        with ThreadPoolExecutor(min(LIST_WORKERS, len(ranges))) as pool:
            for part in pool.map(lambda r: self._list_range(bucket, *r, sizes), ranges):
                objects.update(part)        # ranges in order: keys stay sorted
        return objects

    def _list_range(self, bucket: str, after: str | None, upto: str | None,
                    sizes: bool = False) -> dict:
        """The objects with after < key <= upto (None: unbounded)."""
        objects: dict = {}
        token = None
        while True:
            query = f"list-type=2&max-keys={PAGE_KEYS}"
            if after is not None:      # ignored by the server once a token is sent
                query += "&start-after=" + quote_param(after)
            if token:
                query += "&continuation-token=" + quote_param(token)
            resp = self._call("GET", self._url(bucket, query=query),
                              describe("list", bucket), bucket=bucket)
            try:
                page, token = parse_list_page(resp.content, sizes)
            except (ET.ParseError, ValueError) as e:
                raise S3Error(f"list s3://{bucket} failed: unreadable answer ({e})",
                              bucket=bucket) from e
            if upto is None:
                objects.update(page)
            else:
                objects.update((k, e) for k, e in page.items() if k <= upto)
                if page and next(reversed(page)) >= upto:
                    return objects      # the rest belongs to the next range
            if not token:
                return objects

    def put(self, bucket: str, key: str, body: bytes | BinaryIO, md5_hex: str,
            size: int | None = None) -> str:
        """Upload one object: `body` is bytes, or a binary file whose next `size`
        bytes are streamed. Content-MD5 makes the server refuse a body that is
        not what was hashed (BadDigest); a file that ends early raises FileChanged."""
        if not isinstance(body, bytes):
            if size is None:
                raise TypeError("S3.put: a file body needs its size")
            # an empty stream would go chunked, without a Content-Length
            body = Stream(body, size, key) if size else b""
        resp = self._call("PUT", self._url(bucket, key), describe("upload", bucket, key),
                          bucket=bucket, key=key, data=body,
                          headers={"Content-MD5": content_md5(md5_hex),
                                   "Content-Type": "application/octet-stream"})
        return clean_etag(resp.headers.get("ETag"))

    def get(self, bucket: str, key: str) -> bytes | None:
        """One object's body, read whole (small objects only); None if the
        bucket has no such key."""
        got = self.get_if_changed(bucket, key, None)
        return got and got[0]

    def get_if_changed(self, bucket: str, key: str,
                       etag: str | None) -> tuple[bytes | None, str] | None:
        """(body, ETag) of one object, read whole; (None, etag) while it still
        has `etag` (If-None-Match: the server compares, and sends no body);
        None if the bucket has no such key."""
        headers = {"If-None-Match": f'"{etag}"'} if etag else None
        try:
            resp = self._call("GET", self._url(bucket, key), describe("download", bucket, key),
                              bucket=bucket, key=key, headers=headers)
        except S3Error as e:
            if e.code == "NoSuchKey":
                return None
            raise
        if resp.status_code == NOT_MODIFIED:
            return None, etag
        return resp.content, clean_etag(resp.headers.get("ETag"))

    def copy(self, bucket: str, key: str, src_bucket: str, src_key: str) -> str:
        what = f"copy s3://{src_bucket}/{src_key} to s3://{bucket}/{key}"
        source = "/" + quote_key(src_bucket) + "/" + quote_key(src_key)
        for attempt in range(len(RETRY_DELAYS) + 1):
            resp = self._call("PUT", self._url(bucket, key), what, bucket=bucket, key=key,
                              headers={"x-amz-copy-source": source})
            # CopyObject may answer 200 with an <Error> body when it fails late.
            code, message = parse_error(resp.content)
            if code is None:
                try:
                    root = ET.fromstring(resp.content)
                except ET.ParseError as e:
                    raise S3Error(f"{what} failed: unreadable answer ({e})",
                                  bucket=bucket, key=key) from e
                return clean_etag(_child_text(root, "ETag"))
            if attempt == len(RETRY_DELAYS) or code not in RETRY_CODES:
                raise self._error(what, resp.status_code, code, message, bucket, key)
            time.sleep(RETRY_DELAYS[attempt])
        raise AssertionError("unreachable")

    def delete(self, bucket: str, keys: list[str]) -> None:
        for batch in batches(list(keys)):
            body = delete_body(batch)
            md5_hex = hashlib.md5(body).hexdigest()
            resp = self._call("POST", self._url(bucket, query="delete="),
                              describe(f"delete {len(batch)} objects from", bucket),
                              bucket=bucket, data=body,
                              headers={"Content-MD5": content_md5(md5_hex),
                                       "Content-Type": "application/xml"})
            errors = parse_delete_errors(resp.content)
            if errors:
                key, code, message = errors[0]
                more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
                raise S3Error(f"delete s3://{bucket}/{key} failed: {code}: {message}{more}",
                              code=code, bucket=bucket, key=key)

    def ready(self) -> bool:
        """True when the server answers: MinIO's readiness probe, or else a signed
        ListBuckets for other S3 servers."""
        try:
            resp = self._http.get(f"{self.endpoint}/minio/health/ready", timeout=(2.0, 5.0))
            if resp.status_code == 200:
                return True
            if resp.status_code != 404:
                return False
            resp = self._http.get(f"{self.endpoint}/", auth=self._auth, timeout=(2.0, 5.0))
            return resp.status_code == 200
        except requests.RequestException:
            return False
