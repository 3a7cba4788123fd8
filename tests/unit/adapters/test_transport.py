"""The standard-library transport against small local servers on 127.0.0.1:
connections kept alive and reused, a closed one dropped, a stream read as it
arrives and cut from another thread, and failures named by phase. TLS is
exercised against the real API server by the e2e tests."""
from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest

from kubectl_gitops_run.adapters.transport import TLS, Pool, TransportError

TIMEOUT = (2, 2)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"       # keep-alive
    connections: list = []
    paths: list = []

    def setup(self):
        super().setup()
        self.connections.append(self.client_address)

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.paths.append(self.path)
        if self.path.endswith("/stream"):
            return self._stream()
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        if self.path.endswith("/close"):
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self.paths.append(self.path)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204 if self.path.endswith("/none") else 201)
        if not self.path.endswith("/none"):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not self.path.endswith("/none"):
            self.wfile.write(body)

    def do_PUT(self):
        """Chunks, then the last one with a trailer: a whole body, framed."""
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.write(b"5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nX-Trailer: 1\r\n\r\n")

    def _stream(self):
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for line in (b'{"n": 1}\n', b'{"n": 2}\n'):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()
        time.sleep(30)          # then silence: a watch with nothing to say


@pytest.fixture
def server():
    Handler.connections, Handler.paths = [], []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def url(srv, prefix: str = "") -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}{prefix}"


def test_connections_are_kept_alive_and_reused(server):
    pool = Pool(url(server), TLS())
    for _ in range(3):
        resp = pool.request("GET", "/api", None, {}, TIMEOUT)
        assert (resp.status, resp.data) == (200, b'{"ok": true}')
    assert len(Handler.connections) == 1


def test_a_connection_the_server_closed_is_not_reused(server):
    pool = Pool(url(server), TLS())
    assert pool.request("GET", "/close", None, {}, TIMEOUT).data
    assert pool.request("GET", "/api", None, {}, TIMEOUT).data
    assert len(Handler.connections) == 2


def test_a_server_path_prefixes_every_request(server):
    pool = Pool(url(server, "/k8s/clusters/c1/"), TLS())
    pool.request("GET", "/api/v1", None, {}, TIMEOUT).data
    assert Handler.paths == ["/k8s/clusters/c1/api/v1"]


def test_a_stream_arrives_as_sent_and_another_thread_can_cut_it(server):
    pool = Pool(url(server), TLS())
    resp = pool.request("GET", "/stream", None, {}, (2, 30))
    chunks = resp.chunks()
    assert next(chunks) == b'{"n": 1}\n'
    assert next(chunks) == b'{"n": 2}\n'
    threading.Timer(0.3, resp.shutdown).start()
    started = time.monotonic()
    with pytest.raises(TransportError):     # the blocked read ends
        next(chunks)
    assert time.monotonic() - started < 5
    resp.close()


def test_a_server_that_never_answers_times_out_reading():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        pool = Pool(f"http://127.0.0.1:{listener.getsockname()[1]}", TLS())
        with pytest.raises(TransportError) as e:
            pool.request("GET", "/api", None, {}, (2, 0.3))
        assert e.value.phase == "read" and isinstance(e.value.__cause__, TimeoutError)
    finally:
        listener.close()


def test_nobody_listening_fails_to_connect():
    spare = socket.socket()
    spare.bind(("127.0.0.1", 0))
    port = spare.getsockname()[1]
    spare.close()
    with pytest.raises(TransportError) as e:
        Pool(f"https://127.0.0.1:{port}", TLS(verify=False)).request("GET", "/", None, {},
                                                                      TIMEOUT)
    assert e.value.phase == "connect" and isinstance(e.value.__cause__, ConnectionRefusedError)


def test_a_tls_handshake_left_unanswered_times_out_reading():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        pool = Pool(f"https://127.0.0.1:{listener.getsockname()[1]}", TLS(verify=False))
        with pytest.raises(TransportError) as e:
            pool.request("GET", "/api", None, {}, (2, 0.3))
        assert e.value.phase == "read"
    finally:
        listener.close()


def test_a_missing_ca_file_is_a_failed_request_not_a_crash():
    with pytest.raises(TransportError) as e:
        Pool("https://127.0.0.1:1", TLS(ca_file="/nonexistent/ca.crt")).request(
            "GET", "/", None, {}, TIMEOUT)
    assert isinstance(e.value.__cause__, FileNotFoundError)


def test_a_body_is_sent_with_its_length_and_an_answer_without_one_keeps_the_connection(server):
    pool = Pool(url(server), TLS())
    resp = pool.request("POST", "/echo", b'{"a": 1}', {"Content-Type": "application/json"},
                        TIMEOUT)
    assert (resp.status, resp.data) == (201, b'{"a": 1}')
    resp = pool.request("POST", "/none", b"", {}, TIMEOUT)
    assert (resp.status, resp.data) == (204, b"")
    assert pool.request("GET", "/api", None, {}, TIMEOUT).headers.get("CONTENT-length") == "12"
    assert len(Handler.connections) == 1


def test_a_chunked_body_is_read_whole_and_its_connection_reused(server):
    pool = Pool(url(server), TLS())
    for _ in range(2):
        assert pool.request("PUT", "/chunked", b"", {}, TIMEOUT).data == b"hello!"
    assert len(Handler.connections) == 1


@pytest.mark.parametrize("answer, said", [
    (b"SSH-2.0-OpenSSH_9.6\r\n", "not an HTTP answer"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", "not a Content-Length"),
])
def test_an_answer_that_is_not_http_is_a_failed_read(answer, said):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def reply():
        conn, _ = listener.accept()
        conn.recv(4096)
        conn.sendall(answer)
        conn.close()
    threading.Thread(target=reply, daemon=True).start()
    try:
        with pytest.raises(TransportError) as e:
            Pool(f"http://127.0.0.1:{listener.getsockname()[1]}", TLS()).request(
                "GET", "/api", None, {}, TIMEOUT)
        assert e.value.phase == "read" and said in str(e.value)
    finally:
        listener.close()
