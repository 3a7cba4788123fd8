"""The pure parts of the S3 client: key quoting, XML parsing, batching, signing."""
from __future__ import annotations

import base64
import hashlib
import os
import sys
import xml.etree.ElementTree as ET

import pytest
import requests

from kubectl_gitops_run.adapters import s3
from kubectl_gitops_run.adapters.s3 import S3

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


@pytest.mark.parametrize("key, quoted", [
    ("apps/deploy.yaml", "apps/deploy.yaml"),
    ("a b/c d.yaml", "a%20b/c%20d.yaml"),
    ("x+y.yaml", "x%2By.yaml"),
    ("ü/日.yaml", "%C3%BC/%E6%97%A5.yaml"),
    ("a~b_c-d.e", "a~b_c-d.e"),
    ("q?#%&=.yaml", "q%3F%23%25%26%3D.yaml"),
])
def test_quote_key(key, quoted):
    assert s3.quote_key(key) == quoted


def test_quote_param_escapes_everything_reserved():
    assert s3.quote_param("a+b/c=d e") == "a%2Bb%2Fc%3Dd%20e"


@pytest.mark.parametrize("raw, clean", [
    ('"D41D8CD98F00B204E9800998ECF8427E"', "d41d8cd98f00b204e9800998ecf8427e"),
    ("abc", "abc"), ("", ""), (None, ""), (' "abc-2" ', "abc-2"),
])
def test_clean_etag(raw, clean):
    assert s3.clean_etag(raw) == clean


def page(contents: str, truncated: bool = False, token: str | None = None) -> bytes:
    extra = f"<NextContinuationToken>{token}</NextContinuationToken>" if token else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult {NS}>'
            f"<Name>b</Name><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>"
            f"<IsTruncated>{str(truncated).lower()}</IsTruncated>{extra}{contents}"
            f"</ListBucketResult>").encode()


def contents(key: str, etag: str) -> str:
    return (f"<Contents><Key>{key}</Key><LastModified>2026-11-24T00:00:00.000Z</LastModified>"
            f"<ETag>{etag}</ETag><Size>3</Size><StorageClass>STANDARD</StorageClass></Contents>")


def test_parse_list_page_last_page():
    body = page(contents("a b/ü.yaml", "&#34;ABC&#34;") + contents("x&amp;y&lt;", '"def"'))
    objects, token = s3.parse_list_page(body)
    assert objects == {"a b/ü.yaml": "abc", "x&y<": "def"}
    assert token is None


def test_parse_list_page_truncated_returns_token():
    objects, token = s3.parse_list_page(page(contents("k", '"1"'), True, "tok/+=="))
    assert objects == {"k": "1"} and token == "tok/+=="


def test_parse_list_page_truncated_without_token_is_an_error():
    with pytest.raises(ValueError):
        s3.parse_list_page(page("", True))


def test_parse_list_page_empty_bucket():
    assert s3.parse_list_page(page("")) == ({}, None)


def test_parse_error():
    body = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchBucket</Code>'
            b"<Message>The specified bucket does not exist</Message><BucketName>b</BucketName>"
            b"</Error>")
    assert s3.parse_error(body) == ("NoSuchBucket", "The specified bucket does not exist")
    assert s3.parse_error(b"") == (None, None)
    assert s3.parse_error(b"<html>bad gateway") == (None, None)
    assert s3.parse_error(page("")) == (None, None)


def test_parse_delete_errors():
    body = (f'<DeleteResult {NS}><Deleted><Key>ok</Key></Deleted>'
            f"<Error><Key>a&amp;b</Key><Code>AccessDenied</Code><Message>no</Message></Error>"
            f"</DeleteResult>").encode()
    assert s3.parse_delete_errors(body) == [("a&b", "AccessDenied", "no")]
    assert s3.parse_delete_errors(f"<DeleteResult {NS}/>".encode()) == []


def test_delete_body_escapes_keys_and_is_quiet():
    keys = ["a<b>&c.yaml", "ü x+y", "q'\"z"]
    root = ET.fromstring(s3.delete_body(keys))
    assert root.tag == "Delete" and root.find("Quiet").text == "true"
    assert [o.find("Key").text for o in root.findall("Object")] == keys


def test_batches():
    assert s3.batches([]) == []
    assert s3.batches(list(range(5)), 2) == [[0, 1], [2, 3], [4]]
    sizes = [len(b) for b in s3.batches(list(range(2345)))]
    assert sizes == [1000, 1000, 345]


def test_content_md5():
    assert s3.content_md5(hashlib.md5(b"abc").hexdigest()) == \
        base64.b64encode(hashlib.md5(b"abc").digest()).decode()


def test_error_message_is_for_people():
    e = S3._error("upload s3://b/k", 403, "SignatureDoesNotMatch", "The signature did not match.",
                  "b", "k")
    assert str(e) == ("upload s3://b/k failed: HTTP 403 SignatureDoesNotMatch: The signature "
                      "did not match (check the session's S3 access key and secret key)")
    assert (e.status, e.code, e.bucket, e.key) == (403, "SignatureDoesNotMatch", "b", "k")
    assert str(S3._error("list s3://b", 502, None, None, "b", None)) == \
        "list s3://b failed: HTTP 502"


def signed(client: S3, method: str, url: str, **kw) -> requests.PreparedRequest:
    req = requests.Request(method, url, auth=client._auth, **kw)
    return client._http.prepare_request(req)


def test_urls_are_path_style_and_signed_as_sent():
    client = S3("http://127.0.0.1:9000/", "AKID", "SECRETSECRET")
    url = client._url("bkt", "a b/x+y ü.yaml", "list-type=2&continuation-token="
                      + s3.quote_param("a+b/="))
    assert url == ("http://127.0.0.1:9000/bkt/a%20b/x%2By%20%C3%BC.yaml"
                   "?list-type=2&continuation-token=a%2Bb%2F%3D")
    prep = signed(client, "GET", url)
    assert prep.url == url                     # requests does not re-encode it
    cano = client._auth.get_canonical_request(prep, "", "")
    assert cano.split("\n")[1] == "/bkt/a%20b/x%2By%20%C3%BC.yaml"
    assert cano.split("\n")[2] == "continuation-token=a%2Bb%2F%3D&list-type=2"
    assert prep.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKID/")


def test_credentials_stay_out_of_reprs():
    client = S3("http://127.0.0.1:9000", "AKIDXYZ", "SECRETSECRET")
    assert "SECRET" not in repr(client) and "SECRET" not in repr(client._auth)


# ---- streamed uploads -------------------------------------------------------------

class Drain(requests.adapters.BaseAdapter):
    """A transport that reads each request's body the way urllib3 does (a block
    at a time) and answers 200 with its MD5 as the ETag; `fail` first
    attempts die with a dropped connection half way through the body."""

    def __init__(self, fail: int = 0):
        super().__init__()
        self.seen: list[tuple[requests.PreparedRequest, object, bytes]] = []
        self.fail = fail

    def send(self, request, **kwargs):
        body = request.body
        if hasattr(body, "read"):
            if self.fail:
                self.fail -= 1
                body.read(3)
                raise requests.ConnectionError("connection reset")
            data = b"".join(iter(lambda: body.read(16384), b""))
        else:
            data = body or b""
        self.seen.append((request, body, data))
        resp = requests.Response()
        resp.status_code, resp._content, resp.request, resp.url = 200, b"", request, request.url
        resp.headers["ETag"] = f'"{hashlib.md5(data).hexdigest()}"'
        return resp

    def close(self):
        pass


def draining(fail: int = 0) -> tuple[S3, Drain]:
    client = S3("http://127.0.0.1:9000", "AKID", "SECRETSECRET")
    drain = Drain(fail)
    client._http.mount("http://", drain)
    return client, drain


def signature_of(client: S3, req: requests.PreparedRequest) -> str:
    """The SigV4 signature of `req` as it stands, with the payload hash it carries."""
    import hmac
    auth = client._auth
    headers, signed_headers = s3.AWS4Auth.get_canonical_headers(req, auth.include_hdrs)
    cano = auth.get_canonical_request(req, headers, signed_headers)
    text = auth.get_sig_string(req, cano, auth.signing_key.scope)
    return hmac.new(auth.signing_key.key, text.encode(), hashlib.sha256).hexdigest()


def test_a_file_is_streamed_and_signed_unsigned_payload(tmp_path):
    data = b"kind: ConfigMap\n" * 5000
    (tmp_path / "f").write_bytes(data)
    client, drain = draining()
    with open(tmp_path / "f", "rb") as f:
        assert client.put("b", "k.yaml", f, hashlib.md5(data).hexdigest(), len(data)) == \
            hashlib.md5(data).hexdigest()
    (req, body, sent), = drain.seen
    assert isinstance(body, s3.Stream) and sent == data      # a stream, not bytes
    assert req.headers["Content-Length"] == str(len(data))
    assert "Transfer-Encoding" not in req.headers
    assert req.headers["Content-MD5"] == s3.content_md5(hashlib.md5(data).hexdigest())
    assert req.headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert req.headers["Authorization"].endswith("Signature=" + signature_of(client, req))


def test_bytes_are_still_signed_with_their_hash():
    client, drain = draining()
    client.put("b", "k", b"abc", hashlib.md5(b"abc").hexdigest())
    (req, body, _), = drain.seen
    assert body == b"abc"
    assert req.headers["x-amz-content-sha256"] == hashlib.sha256(b"abc").hexdigest()
    assert req.headers["Authorization"].endswith("Signature=" + signature_of(client, req))


def test_an_empty_file_is_an_empty_body(tmp_path):
    (tmp_path / "f").write_bytes(b"")
    client, drain = draining()
    with open(tmp_path / "f", "rb") as f:
        client.put("b", "k", f, hashlib.md5(b"").hexdigest(), 0)
    (req, body, _), = drain.seen
    assert not body and req.headers["Content-Length"] == "0"


def test_a_retry_sends_the_file_from_its_start(tmp_path):
    (tmp_path / "f").write_bytes(b"0123456789")
    client, drain = draining(fail=1)
    with open(tmp_path / "f", "rb") as f:
        f.read(2)     # the body is what follows the file's position
        client.put("b", "k", f, "0" * 32, 8)
    assert [sent for _, _, sent in drain.seen] == [b"23456789"]


def test_a_file_that_shrinks_or_grows_during_its_upload(tmp_path):
    from kubectl_gitops_run.errors import FileChanged
    (tmp_path / "f").write_bytes(b"x" * 100)
    client, drain = draining()
    with open(tmp_path / "f", "rb") as f:
        with pytest.raises(FileChanged):          # fewer bytes than announced
            client.put("b", "k", f, "0" * 32, 200)
    with open(tmp_path / "f", "rb") as f:         # more: only what was announced
        client.put("b", "k", f, "0" * 32, 60)
    assert drain.seen[-1][2] == b"x" * 60


RSS_PROBE = """
import resource, sys
import requests
from kubectl_gitops_run.adapters.s3 import S3

class Discard(requests.adapters.BaseAdapter):
    def send(self, request, **kwargs):
        self.sent = sum(len(b) for b in iter(lambda: request.body.read(16384), b""))
        resp = requests.Response()
        resp.status_code, resp._content, resp.request = 200, b"", request
        return resp

    def close(self):
        pass

path, size = sys.argv[1], int(sys.argv[2])
client, drain = S3("http://127.0.0.1:9000", "AKID", "SECRETSECRET"), Discard()
client._http.mount("http://", drain)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open(path, "rb") as f:
    client.put("b", "big.bin", f, "0" * 32, size)
assert drain.sent == size
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB is Linux's")
def test_uploading_a_big_file_keeps_memory_flat(tmp_path):
    import subprocess
    from pathlib import Path
    size = 256 * 1024 * 1024
    with open(tmp_path / "big.bin", "wb") as f:      # sparse: nothing really written
        f.truncate(size)
    root = Path(s3.__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", RSS_PROBE, str(tmp_path / "big.bin"), str(size)],
                         capture_output=True, text=True, timeout=120, cwd=root,
                         env={**os.environ, "PYTHONPATH": str(root)})
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) < 32 * 1024, f"peak RSS grew by {int(out.stdout)} KiB"


def test_a_syncs_uploads_stream_their_files(tmp_path):
    from types import SimpleNamespace

    from kubectl_gitops_run.adapters.scanner import scan
    from kubectl_gitops_run.ops.publish import Syncer
    from kubectl_gitops_run.ops.report import SILENT
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(f"name: {name}\n")
    snapshot, bodies = scan(tmp_path), []

    class Recorder:
        def put(self, bucket, key, body, md5_hex, size=None):
            bodies.append((key, type(body).__name__, body.read(), size))
            return md5_hex
    syncer = SimpleNamespace(report=SILENT)
    Syncer._upload(syncer, Recorder(), "slot", snapshot, ["a.yaml", "b.yaml"])
    assert sorted(bodies) == [("a.yaml", "BufferedReader", b"name: a.yaml\n", 13),
                              ("b.yaml", "BufferedReader", b"name: b.yaml\n", 13)]


def test_parse_list_page_with_sizes():
    body = page(contents("apps/web.yaml", '"0cc175b9"').replace("<Size>3<", "<Size>1234<")
                + contents("a b.yaml", '"92eb5ffe"').replace("<Size>3<", "<Size><"),
                True, "next/1")
    objects, token = s3.parse_list_page(body, sizes=True)
    assert objects == {"apps/web.yaml": ("0cc175b9", 1234), "a b.yaml": ("92eb5ffe", 0)}
    assert token == "next/1"
    assert s3.parse_list_page(body)[0] == {"apps/web.yaml": "0cc175b9", "a b.yaml": "92eb5ffe"}
