"""HTTPS to one API server on the standard library's `http.client`.

urllib3 and requests cost every command about 150 ms of CPU to import, a
third of what `ls` takes (docs/benchmarks.md, "Start-up"). What `Kube` needs
of them is small: a few kept-alive connections shared by threads, the TLS of
the kubeconfig, a connect and a read timeout, and a response it can stream or
cut from another thread. A request that gets no HTTP answer raises
`TransportError`, which `adapters.kube.transport_error` puts in words.
"""
from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

IDLE_MAX = 10           # kept-alive connections kept for reuse
# what a kept-alive connection the server has closed meanwhile raises on reuse
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
          ssl.SSLEOFError)


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


class _HTTPS(http.client.HTTPSConnection):
    """An HTTPS connection that may check and send another name than the
    host's, and gives the TLS handshake the read timeout: a server that took
    the connection and never answers has been reached."""

    def __init__(self, host, port, *, server_name, handshake_timeout, **kw):
        super().__init__(host, port, **kw)
        self._server_name = server_name or host
        self._handshake_timeout = handshake_timeout

    def connect(self):
        http.client.HTTPConnection.connect(self)
        self.sock.settimeout(self._handshake_timeout)
        try:
            self.sock = self._context.wrap_socket(self.sock, server_hostname=self._server_name)
        except TimeoutError as e:
            raise TransportError("read", e) from e


class Response:
    """One answer, on a connection it hands back to the pool once read whole."""

    def __init__(self, pool: "Pool", conn: http.client.HTTPConnection,
                 raw: http.client.HTTPResponse):
        self._pool, self._conn, self._raw = pool, conn, raw
        self.status = raw.status
        self.headers = raw.headers       # an email.message.Message: get() ignores case
        self._data: bytes | None = None

    @property
    def data(self) -> bytes:
        """The whole body; the connection goes back to the pool."""
        if self._data is None:
            try:
                self._data = self._raw.read()
            except (OSError, http.client.HTTPException) as e:
                self.close()
                raise TransportError("read", e) from e
            self.release()
        return self._data

    def chunks(self, size: int = 65536):
        """The body as it arrives (a watch), a chunk at a time; TransportError
        when it is cut midway (by shutdown() too)."""
        while True:
            try:
                chunk = self._raw.read1(size)
            except (OSError, http.client.HTTPException) as e:
                raise TransportError("read", e) from e
            if not chunk:
                return
            yield chunk

    def release(self) -> None:
        """Give the connection back if the body was read to its end, else close it."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._raw.isclosed() and not self._raw.will_close:
            self._pool.put(conn)
        else:
            conn.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def shutdown(self) -> None:
        """Wake a read blocked on this response from another thread."""
        sock = getattr(self._conn, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Pool:
    """Kept-alive connections to one server, shared by threads."""

    def __init__(self, server: str, tls: TLS):
        url = urlsplit(server)
        self._https = url.scheme == "https"
        self._host = url.hostname or ""
        self._port = url.port or (443 if self._https else 80)
        self._prefix = url.path.rstrip("/")     # a server behind a path (rancher, say)
        self._tls, self._context = tls, None
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def put(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < IDLE_MAX:
                self._idle.append(conn)
                return
        conn.close()

    def _take(self) -> http.client.HTTPConnection | None:
        """An idle connection the server has not closed (one it closed reads as
        readable: its end of stream is waiting)."""
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None or not select.select([conn.sock], [], [], 0)[0]:
                return conn
            conn.close()

    def _new(self, timeout: tuple[float, float]) -> http.client.HTTPConnection:
        if not self._https:
            return http.client.HTTPConnection(self._host, self._port, timeout=timeout[0])
        with self._lock:                # here, so a bad CA file is a failed request
            if self._context is None:
                self._context = self._tls.context()
        return _HTTPS(self._host, self._port, server_name=self._tls.server_name,
                      handshake_timeout=timeout[1], context=self._context, timeout=timeout[0])

    def request(self, method: str, url: str, body: bytes | None, headers: dict,
                timeout: tuple[float, float]) -> Response:
        """Send one request and read its status and headers. A kept-alive
        connection the server closed meanwhile is dropped and the request sent
        once more on a new one: the server never read it."""
        conn = self._take()
        if conn is not None:
            try:
                return self._exchange(conn, method, url, body, headers, timeout[1])
            except TransportError as e:
                if not isinstance(e.__cause__, _STALE):
                    raise
        conn = None
        try:
            conn = self._new(timeout)
            conn.connect()
        except (OSError, TransportError) as e:
            if conn is not None:
                conn.close()
            if isinstance(e, TransportError):
                raise
            raise TransportError("connect", e) from e
        return self._exchange(conn, method, url, body, headers, timeout[1])

    def _exchange(self, conn, method, url, body, headers, read_timeout) -> Response:
        try:
            conn.sock.settimeout(read_timeout)
            conn.request(method, self._prefix + url, body=body, headers=headers)
            return Response(self, conn, conn.getresponse())
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise TransportError("read", e) from e
