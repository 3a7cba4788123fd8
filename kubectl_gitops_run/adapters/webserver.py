"""The `ui` HTTP server: the standard library's ThreadingHTTPServer on
127.0.0.1, the security rules of core.webauth on every request, static files,
JSON calls and server-sent events.

What the page shows and does is the `app` it is given (ops.ui): an object
with `subscribe(query)` (a stream of JSON texts, for /api/events),
`get(name, query)` and `post(name, body)` (each a (status, dict) pair).
"""
from __future__ import annotations

import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from ..core import webauth
from ..errors import UserError

log = logging.getLogger(__name__)
_TOKEN = re.compile(r"token=[^&\s]*")

LOOPBACK = "127.0.0.1"          # docs/architecture.md, invariant 5: never another address
KEEPALIVE = 15.0                # seconds between SSE comments on a quiet stream
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


class UiServer:
    """Serve `app` and the `static` files (name -> bytes) on 127.0.0.1:port
    (0: a free one). `url` is the one URL that logs a browser in."""

    def __init__(self, app, static: dict[str, bytes], port: int = 0):
        self.app, self.static = app, static
        self.login, self.cookie = webauth.LoginToken(), webauth.new_secret()
        self.closing = threading.Event()
        self.httpd = ThreadingHTTPServer((LOOPBACK, port), _Handler)
        self.httpd.daemon_threads = True        # open event streams never block exit
        self.httpd.ui = self
        self.port = self.httpd.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.httpd.server_address[:2]

    @property
    def token(self) -> str:
        return self.login.value

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/?token={self.token}"

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def start(self) -> "UiServer":
        """Serve from a thread (tests, benchmarks)."""
        self._thread = threading.Thread(target=self.serve_forever, daemon=True,
                                        name="gitops-run ui server")
        self._thread.start()
        return self

    def close(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    server_version = "kubectl-gitops-run"
    sys_version = ""

    @property
    def ui(self) -> UiServer:
        return self.server.ui

    def log_message(self, format, *args) -> None:   # noqa: A002 - the stdlib's name
        if log.isEnabledFor(logging.DEBUG):     # the login token stays out of logs
            log.debug("ui: %s", _TOKEN.sub("token=...", format % args))

    # -- answers -------------------------------------------------------------

    def _head(self, status: int, content_type: str, length: int | None = None,
              extra: dict | None = None) -> None:
        self.send_response(status)
        for name, value in {**webauth.SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None):
        self._head(status, content_type, len(body), extra)
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, doc: dict) -> None:
        self._send(status, json.dumps(doc).encode(), "application/json")

    # -- the rules -----------------------------------------------------------

    def _admitted(self, url) -> bool:
        """Host, then the token (traded once for the cookie), then the cookie."""
        if not webauth.host_ok(self.headers.get("Host"), self.ui.port):
            self._json(403, {"error": "unknown Host: open the URL that `ui` printed"})
            return False
        given = webauth.cookie_value(self.headers.get("Cookie"), self.ui.port)
        logged_in = webauth.same(given, self.ui.cookie)
        token = parse_qs(url.query).get("token", [None])[0]
        if token is not None and self.command == "GET":
            if logged_in or self.ui.login.redeem(token):
                # the token leaves the address bar (and history) at once
                cookie = {} if logged_in else {
                    "Set-Cookie": webauth.set_cookie(self.ui.port, self.ui.cookie)}
                self._send(303, b"", "text/plain", {"Location": url.path, **cookie})
            elif webauth.same(token, self.ui.token):
                self._json(401, {"error": "this login URL was used already (it works once): "
                                          "open the page in the browser that used it, or "
                                          "restart `ui` for a new URL"})
            else:
                self._json(401, {"error": "wrong login token: open the URL that `ui` printed"})
            return False
        if not logged_in:
            self._json(401, {"error": "not logged in: open the URL that `ui` printed"})
            return False
        return True

    # -- methods -------------------------------------------------------------

    def do_GET(self) -> None:       # noqa: N802 - the stdlib's name
        url = urlsplit(self.path)
        if not self._admitted(url):
            return
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/api/events":
            self._stream(query)
        elif url.path.startswith("/api/"):
            self._call(lambda: self.ui.app.get(url.path[5:], query))
        else:
            self._file(url.path)

    do_HEAD = do_GET

    def do_POST(self) -> None:      # noqa: N802 - the stdlib's name
        url = urlsplit(self.path)
        if not self._admitted(url):
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        problem = webauth.post_problem(headers, self.ui.port)
        if problem:
            self._json(403, {"error": problem})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > webauth.MAX_BODY:
            self._json(413, {"error": "request too large"})
            return
        try:
            body = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            body = None
        if not isinstance(body, dict) or not url.path.startswith("/api/"):
            self._json(400, {"error": "a POST takes a JSON object, at /api/ACTION"})
            return
        self._call(lambda: self.ui.app.post(url.path[5:], body))

    def _call(self, fn) -> None:
        try:
            status, doc = fn()
        except UserError as e:
            status, doc = 400, {"error": str(e)}
        except Exception as e:  # noqa: BLE001 - the page shows one line, the log the rest
            log.debug("ui request failed", exc_info=True)
            status, doc = 500, {"error": f"{type(e).__name__}: {e}"}
        self._json(status, doc)

    def _file(self, path: str) -> None:
        name = "index.html" if path == "/" else path.lstrip("/")
        body = self.ui.static.get(name)
        if body is None:
            self._json(404, {"error": f"no such page: {path}"})
            return
        suffix = name[name.rfind("."):]
        self._send(200, body, TYPES.get(suffix, "application/octet-stream"))

    def _stream(self, query: dict) -> None:
        """Server-sent events: each new view as one `data:` line, until the
        page goes away or the server stops."""
        try:
            feed = self.ui.app.subscribe(query)
        except UserError as e:
            self._json(400, {"error": str(e)})
            return
        self._head(200, "text/event-stream")
        try:
            while not self.ui.closing.is_set():
                text = feed.next(KEEPALIVE)
                chunk = ": keepalive\n\n" if text is None else f"data: {text}\n\n"
                self.wfile.write(chunk.encode())
                self.wfile.flush()
        except OSError:
            pass                # the page closed: nothing to tell
        finally:
            feed.close()
