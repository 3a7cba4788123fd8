"""The pure parts of the S3 client: key quoting, XML parsing, batching, signing."""
from __future__ import annotations

import base64
import hashlib
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
