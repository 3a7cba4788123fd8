"""The ui server's security rules, each on the real server in-process over
127.0.0.1 (adapters/webserver.py), serving an empty session source."""
from __future__ import annotations

import http.client
import json
import socket
from urllib.parse import urlsplit

import pytest

from kubectl_gitops_run.adapters.webserver import UiServer
from kubectl_gitops_run.ops.ui import UiApp

STATIC = {"index.html": b"<!doctype html><title>t</title>", "app.js": b"//", "style.css": b""}


@pytest.fixture
def server():
    app = UiApp(None, "dev").start()
    srv = UiServer(app, STATIC).start()
    yield srv
    srv.close()
    app.close()


def request(srv, method, path, *, host=None, headers=None, body=None, port=None):
    conn = http.client.HTTPConnection("127.0.0.1", port or srv.port, timeout=5)
    conn.putrequest(method, path, skip_host=True)
    conn.putheader("Host", host or f"127.0.0.1:{srv.port}")
    for k, v in (headers or {}).items():
        conn.putheader(k, v)
    data = json.dumps(body).encode() if isinstance(body, dict) else (body or b"")
    if method == "POST":
        conn.putheader("Content-Length", str(len(data)))
    conn.endheaders(data if method == "POST" else None)
    resp = conn.getresponse()
    if resp.getheader("Content-Type") == "text/event-stream":
        return resp, resp.fp.readline()
    return resp, resp.read()


def login(srv) -> dict:
    """The cookie, from the URL's token: traded once, kept for the test."""
    if not hasattr(srv, "test_cookie"):
        resp, _ = request(srv, "GET", "/?" + urlsplit(srv.url).query)
        srv.test_cookie = {"Cookie": resp.getheader("Set-Cookie").split(";")[0]}
    return srv.test_cookie


def post_headers(srv, cookie, **extra):
    return {**cookie, "Origin": f"http://127.0.0.1:{srv.port}",
            "Content-Type": "application/json", **extra}


def test_the_token_is_traded_for_a_strict_httponly_cookie_and_leaves_the_url(server):
    assert len(server.token) * 6 >= 128
    resp, _ = request(server, "GET", "/?" + urlsplit(server.url).query)
    assert resp.status == 303 and resp.getheader("Location") == "/"
    cookie = resp.getheader("Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert server.token not in cookie
    resp, body = request(server, "GET", "/", headers={"Cookie": cookie.split(";")[0]})
    assert resp.status == 200 and body == STATIC["index.html"]


def test_the_token_logs_in_once_only(server):
    query = "/?" + urlsplit(server.url).query
    first, _ = request(server, "GET", query)
    assert first.status == 303 and first.getheader("Set-Cookie")
    again, body = request(server, "GET", query)         # another browser, a link preview...
    assert again.status == 401 and again.getheader("Set-Cookie") is None
    assert "used already" in json.loads(body)["error"]
    # the browser that logged in may open the URL again: on to the page, no new cookie
    cookie = {"Cookie": first.getheader("Set-Cookie").split(";")[0]}
    mine, _ = request(server, "GET", query, headers=cookie)
    assert mine.status == 303 and mine.getheader("Set-Cookie") is None


@pytest.mark.parametrize("path", ["/", "/app.js", "/api/events?view=list", "/?token=wrong"])
def test_without_the_cookie_every_request_gets_401(server, path):
    resp, _ = request(server, "GET", path)
    assert resp.status == 401
    resp, _ = request(server, "GET", path, headers={"Cookie": f"gitops_run_ui_{server.port}=no"})
    assert resp.status == 401


def test_a_post_without_the_cookie_gets_401(server):
    resp, _ = request(server, "POST", "/api/reconcile", body={"namespace": "dev", "name": "web"},
                      headers=post_headers(server, {}))
    assert resp.status == 401


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.2:{port}",
                                  "localhost:1"])
def test_another_host_header_gets_403(server, host):
    cookie = login(server)
    resp, _ = request(server, "GET", "/", host=host.format(port=server.port), headers=cookie)
    assert resp.status == 403
    resp, _ = request(server, "GET", "/?" + urlsplit(server.url).query,
                      host=host.format(port=server.port))
    assert resp.status == 403 and resp.getheader("Set-Cookie") is None


def test_localhost_is_our_name_too(server):
    resp, _ = request(server, "GET", "/", host=f"localhost:{server.port}", headers=login(server))
    assert resp.status == 200


@pytest.mark.parametrize("change", [
    {"Origin": None}, {"Origin": "http://evil.example"}, {"Origin": "null"},
    {"Content-Type": "application/x-www-form-urlencoded"}, {"Content-Type": "text/plain"}])
def test_a_post_needs_our_origin_and_json(server, change):
    headers = {k: v for k, v in {**post_headers(server, login(server)), **change}.items()
               if v is not None}
    resp, body = request(server, "POST", "/api/reconcile", headers=headers,
                         body={"namespace": "dev", "name": "web"})
    assert resp.status == 403, body


def test_a_same_origin_json_post_reaches_the_app(server):
    headers = post_headers(server, login(server))
    resp, body = request(server, "POST", "/api/nothing", headers=headers, body={"name": "x"})
    assert resp.status == 404 and "no such action" in json.loads(body)["error"]
    resp, body = request(server, "POST", "/api/reconcile", headers=headers, body=b"[1]")
    assert resp.status == 400
    resp, body = request(server, "POST", "/api/reconcile", headers=headers,
                         body={"namespace": "other", "name": "web"})
    assert resp.status == 400 and "not the one this page serves" in json.loads(body)["error"]


def test_every_answer_has_the_csp_and_no_cors(server):
    cookie = login(server)
    evil = {"Origin": "http://evil.example"}
    answers = [request(server, "GET", "/", headers={**cookie, **evil})[0],
               request(server, "GET", "/", headers=evil)[0],
               request(server, "GET", "/missing", headers=cookie)[0],
               request(server, "OPTIONS", "/api/delete", headers=evil)[0],
               request(server, "GET", "/api/events?view=list", headers={**cookie, **evil})[0]]
    for resp in answers:
        headers = {k.lower(): v for k, v in resp.getheaders()}
        if resp.status != 501:      # the stdlib refuses OPTIONS before any handler
            assert headers["content-security-policy"] == \
                "default-src 'self'; frame-ancestors 'none'"
        assert not [h for h in headers if h.startswith("access-control-")]


def test_events_stream_the_view_at_once(server):
    resp, line = request(server, "GET", "/api/events?view=list", headers=login(server))
    assert resp.status == 200 and resp.getheader("Content-Type") == "text/event-stream"
    doc = json.loads(line.decode().removeprefix("data: "))
    assert doc == {"view": "list", "sessions": [], "errors": [], "namespaces": []}


def test_it_listens_on_127_0_0_1_only(server):
    assert server.address[0] == "127.0.0.1"
    others = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    for ip in others - {"127.0.0.1"}:
        with pytest.raises(OSError):
            socket.create_connection((ip, server.port), timeout=1).close()
