"""HTTPS to one API server: HTTP/1.1 on the standard library's sockets.

urllib3 and requests cost every command about 150 ms of CPU to import, a
third of what `ls` took (docs/benchmarks.md, "Start-up"), and `http.client`
another 12 ms for its `email` header parser. What `Kube` needs is small:
a few kept-alive connections shared by threads, the TLS of the kubeconfig, a
connect and a read timeout, and a response it can stream or cut from another
thread; the API server answers with a length or in chunks. A request that
gets no HTTP answer raises `TransportError`, which
`adapters.kube.transport_error` puts in words.
"""
from __future__ import annotations

import select
import socket
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

IDLE_MAX = 10           # kept-alive connections kept for reuse
MAX_LINE = 65536        # a status line, header or chunk size longer than this is refused
NO_BODY = (204, 304)    # and 1xx, and any answer to HEAD


class RemoteClosed(ConnectionError):
    """The server closed the connection before it answered."""


class BadResponse(Exception):
    """An answer that is not HTTP/1.1 as the server should speak it."""


# what a kept-alive connection the server has closed meanwhile raises on reuse
_STALE = (RemoteClosed, ConnectionResetError, BrokenPipeError, ssl.SSLEOFError)
_FAILED = (OSError, BadResponse)


class TransportError(Exception):
    """No HTTP answer: `phase` is "connect" or "read"; the cause is chained."""

    def __init__(self, phase: str, cause: BaseException):
        super().__init__(str(cause))
        self.phase = phase
        self.__cause__ = cause


@dataclass(frozen=True)
class TLS:
    """The TLS of a kubeconfig's cluster and user (paths, as the loader writes
    inline data to files)."""
    verify: bool = True
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None      # tls-server-name: the name to check and send

    def context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.ca_file:
            ctx.load_verify_locations(self.ca_file)
        else:
            ctx.load_default_certs()        # the system's roots, as kubectl; ~0.1 s of CPU
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


class _Conn:
    """One connection: its socket, and what has arrived of it, buffered."""

    def __init__(self, sock: socket.socket):
        self.sock, self.reader = sock, sock.makefile("rb")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class Headers(dict):
    """A response's headers, by lower-case name; get() ignores case."""

    def get(self, name: str, default=None):
        return super().get(name.lower(), default)


def _line(reader) -> bytes:
    line = reader.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise BadResponse("a line of the answer is too long")
    return line


def _head(reader) -> tuple[int, bool, Headers]:
    """(status, HTTP/1.1?, headers) of the next answer, past any 1xx."""
    while True:
        line = _line(reader)
        if not line:
            raise RemoteClosed("the server closed the connection without an answer")
        version, _, rest = line.partition(b" ")
        code = rest[:3]
        if not version.startswith(b"HTTP/") or not code.isdigit():
            raise BadResponse(f"not an HTTP answer: {line[:40]!r}")
        headers = Headers()
        while (line := _line(reader)) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if not 100 <= int(code) < 200:
            return int(code), version == b"HTTP/1.1", headers


class Response:
    """One answer, on a connection it hands back to the pool once read whole."""

    def __init__(self, pool: "Pool", conn: _Conn, method: str):
        self._pool, self._conn = pool, conn
        self.status, http11, self.headers = _head(conn.reader)
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        length = self.headers.get("content-length")
        if method == "HEAD" or self.status in NO_BODY:
            length = "0"
        # unframed (no length, not chunked): the body ends when the connection does
        self._left = None if self._chunked or length is None else _length(length)
        self._chunk = 0         # bytes of the current chunk still to read
        self._done = self._left == 0
        self._keep = http11 and (self._chunked or self._left is not None) and \
            "close" not in self.headers.get("connection", "").lower()
        self._data: bytes | None = None

    @property
    def data(self) -> bytes:
        """The whole body; the connection goes back to the pool."""
        if self._data is None:
            try:
                self._data = b"".join(iter(lambda: self._read1(1 << 20), b""))
            except _FAILED as e:
                self.close()
                raise TransportError("read", e) from e
            self.release()
        return self._data

    def chunks(self, size: int = 65536):
        """The body as it arrives (a watch), a piece at a time; TransportError
        when it is cut midway (by shutdown() too)."""
        while True:
            try:
                piece = self._read1(size)
            except _FAILED as e:
                raise TransportError("read", e) from e
            if not piece:
                return
            yield piece

    def _read1(self, size: int) -> bytes:
        """What has come of the body, at most `size` bytes (waiting for some);
        b"" at its end."""
        if self._done:
            return b""
        reader = self._conn.reader
        if self._chunked and not self._chunk:
            self._chunk = _chunk_size(_line(reader))
            if not self._chunk:             # the last chunk, then trailers
                while _line(reader) not in (b"\r\n", b"\n", b""):
                    pass
                self._done = True
                return b""
        want = self._chunk or self._left
        piece = reader.read1(size if want is None else min(size, want))
        if not piece:
            if self._left is None and not self._chunked:
                self._done = True
                return b""
            raise BadResponse("the answer was cut short")
        if self._chunked:
            self._chunk -= len(piece)
            if not self._chunk and _line(reader).strip():
                raise BadResponse("a chunk runs past its size")
        elif self._left is not None:
            self._left -= len(piece)
            self._done = not self._left
        return piece

    def release(self) -> None:
        """Give the connection back if the body was read to its end, else close it."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._done and self._keep:
            self._pool.put(conn)
        else:
            conn.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def shutdown(self) -> None:
        """Wake a read blocked on this response from another thread."""
        conn = self._conn
        if conn is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _length(value: str) -> int:
    if not value.isdigit():
        raise BadResponse(f"not a Content-Length: {value[:40]!r}")
    return int(value)


def _chunk_size(line: bytes) -> int:
    try:
        return int(line.split(b";", 1)[0], 16)
    except ValueError:
        raise BadResponse(f"not a chunk size: {line[:40]!r}") from None


class Pool:
    """Kept-alive connections to one server, shared by threads."""

    def __init__(self, server: str, tls: TLS):
        url = urlsplit(server)
        self._https = url.scheme == "https"
        self._host = url.hostname or ""
        self._port = url.port or (443 if self._https else 80)
        self._prefix = url.path.rstrip("/")     # a server behind a path (rancher, say)
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._host_header = host if url.port is None else f"{host}:{url.port}"
        self._tls, self._context = tls, None
        self._idle: list[_Conn] = []
        self._lock = threading.Lock()

    def put(self, conn: _Conn) -> None:
        with self._lock:
            if len(self._idle) < IDLE_MAX:
                self._idle.append(conn)
                return
        conn.close()

    def _take(self) -> _Conn | None:
        """An idle connection the server has not closed (one it closed reads as
        readable: its end of stream is waiting)."""
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None or not select.select([conn.sock], [], [], 0)[0]:
                return conn
            conn.close()

    def _connect(self, timeout: tuple[float, float]) -> _Conn:
        """A new connection; the TLS handshake gets the read timeout: a server
        that took the connection and never answers has been reached."""
        if self._https:
            with self._lock:            # here, so a bad CA file is a failed request
                if self._context is None:
                    self._context = self._tls.context()
        sock = socket.create_connection((self._host, self._port), timeout=timeout[0])
        # the request follows the handshake's last message at once: Nagle would
        # hold it for the server's delayed ACK (40 ms)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not self._https:
            return _Conn(sock)
        sock.settimeout(timeout[1])
        try:
            return _Conn(self._context.wrap_socket(
                sock, server_hostname=self._tls.server_name or self._host))
        except BaseException as e:
            sock.close()
            if isinstance(e, TimeoutError):
                raise TransportError("read", e) from e
            raise

    def request(self, method: str, url: str, body: bytes | None, headers: dict,
                timeout: tuple[float, float]) -> Response:
        """Send one request and read its status and headers. A kept-alive
        connection the server closed meanwhile is dropped and the request sent
        once more on a new one: the server never read it."""
        message = self._message(method, url, body, headers)
        conn = self._take()
        if conn is not None:
            try:
                return self._exchange(conn, method, message, timeout[1])
            except TransportError as e:
                if not isinstance(e.__cause__, _STALE):
                    raise
        try:
            conn = self._connect(timeout)
        except OSError as e:
            raise TransportError("connect", e) from e
        return self._exchange(conn, method, message, timeout[1])

    def _message(self, method: str, url: str, body: bytes | None, headers: dict) -> bytes:
        lines = [f"{method} {self._prefix + url} HTTP/1.1", f"Host: {self._host_header}",
                 "Accept-Encoding: identity", *(f"{k}: {v}" for k, v in headers.items())]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")

    def _exchange(self, conn: _Conn, method: str, message: bytes,
                  read_timeout: float) -> Response:
        try:
            conn.sock.settimeout(read_timeout)
            conn.sock.sendall(message)
            return Response(self, conn, method)
        except _FAILED as e:
            conn.close()
            raise TransportError("read", e) from e
