"""Port-forward in-process, through the API server's pods/portforward.

A listener on 127.0.0.1 (a free port, never 0.0.0.0); every accepted
connection gets its own tunnel (one websocket to the API server) and two pumps
that copy bytes each way. A tunnel that cannot be opened, or that dies (the
pod is gone), closes only its client connection; the listener stays up, so
the next connection tries again. `close()` stops everything it started.
"""
from __future__ import annotations

import logging
import socket
import threading
import time

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
JOIN_TIMEOUT = 5.0


def _shutdown(sock) -> None:
    """Wake any thread blocked on `sock` (close() alone does not) and end both ways."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class PortForward:
    def __init__(self, api_client, namespace: str, pod: str, remote_port: int):
        self.api_client = api_client
        self.namespace, self.pod, self.remote_port = namespace, pod, int(remote_port)
        self.local_port = 0
        self.url = ""
        self.last_error: str | None = None   # why the latest tunnel failed, for messages
        self.tunnels_opened = 0
        self._listener: socket.socket | None = None
        self._accepter: threading.Thread | None = None
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._socks: set = set()
        self._threads: set[threading.Thread] = set()

    def __repr__(self) -> str:
        return f"PortForward({self.namespace}/{self.pod}:{self.remote_port} at {self.url or '-'})"

    def __enter__(self) -> "PortForward":
        if not self._listener:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> int:
        if self._listener:
            return self.local_port
        import kubernetes.stream  # noqa: F401  (fail here, not in a thread, if it is missing)
        self._closing.clear()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.local_port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.local_port}"
        self._accepter = threading.Thread(
            target=self._accept_loop, args=(self._listener,), daemon=True,
            name=f"port-forward {self.namespace}/{self.pod}:{self.remote_port}")
        self._accepter.start()
        log.debug("port-forward %s/%s:%d listening on %s", self.namespace, self.pod,
                  self.remote_port, self.url)
        return self.local_port

    def close(self) -> None:
        self._closing.set()
        listener, self._listener = self._listener, None
        if listener:
            _shutdown(listener)    # wakes accept()
            listener.close()
        if self._accepter:
            self._accepter.join(JOIN_TIMEOUT)
            self._accepter = None
        with self._lock:
            socks, threads = list(self._socks), list(self._threads)
        for sock in socks:
            _shutdown(sock)
        deadline = time.monotonic() + JOIN_TIMEOUT
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))

    # -- inside --

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                if self._closing.is_set():
                    return
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True,
                                 name=f"port-forward conn {self.pod}:{self.remote_port}")
            with self._lock:
                if self._closing.is_set():
                    conn.close()
                    return
                self._socks.add(conn)
                self._threads.add(t)
            t.start()

    def _open_tunnel(self):
        from kubernetes import client
        from kubernetes.stream import portforward
        # stream.portforward swaps ApiClient.request for the duration of the call,
        # which is not thread-safe: give every tunnel an ApiClient of its own.
        api = client.CoreV1Api(client.ApiClient(self.api_client.configuration))
        return portforward(api.connect_get_namespaced_pod_portforward, self.pod,
                           self.namespace, ports=str(self.remote_port))

    def _explain(self, error: Exception) -> str:
        """Why a tunnel did not open, in words: the websocket error says little, the
        pod says more."""
        from kubernetes import client
        from kubernetes.client.rest import ApiException
        try:
            pod = client.CoreV1Api(self.api_client).read_namespaced_pod(
                self.pod, self.namespace, _request_timeout=5)
        except ApiException as e:
            if e.status == 404:
                return "the pod was not found"
            return _reason(error)
        except Exception:  # noqa: BLE001 - the API server is not answering: say the first error
            return _reason(error)
        if pod.metadata.deletion_timestamp:
            return "the pod is being deleted"
        if pod.status and pod.status.phase != "Running":
            return f"the pod is {pod.status.phase}, not Running"
        return _reason(error)

    def _serve(self, conn: socket.socket) -> None:
        pf = remote = None
        try:
            try:
                pf = self._open_tunnel()
            except Exception as e:  # ApiException (pod gone, forbidden), network errors
                self.last_error = (f"cannot port-forward to pod {self.namespace}/{self.pod} "
                                   f"port {self.remote_port}: {self._explain(e)}")
                log.debug("%s", self.last_error)
                return
            remote = pf.socket(self.remote_port)
            with self._lock:
                self.tunnels_opened += 1
                if self._closing.is_set():
                    return
                self._socks.add(remote)
            back = threading.Thread(target=_pump, args=(remote, conn), daemon=True,
                                    name=f"port-forward pump {self.pod}:{self.remote_port}")
            back.start()
            _pump(conn, remote)
            back.join()
            error = pf.error(self.remote_port)
            if error:
                self.last_error = (f"port-forward to pod {self.namespace}/{self.pod} port "
                                   f"{self.remote_port} failed: {error.strip()}")
                log.debug("%s", self.last_error)
        finally:
            for sock in (conn, remote):
                if sock is not None:
                    _shutdown(sock)
                    sock.close()
            if pf is not None:
                pf.close()
            with self._lock:
                self._socks.difference_update((conn, remote))
                self._threads.discard(threading.current_thread())


def _pump(src, dst) -> None:
    """Copy src to dst until either side ends; then end both, so the other pump
    (blocked in recv on dst) stops too."""
    try:
        while True:
            data = src.recv(CHUNK)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        _shutdown(src)
        _shutdown(dst)


def _reason(e: Exception) -> str:
    reason = getattr(e, "reason", None) or str(e) or type(e).__name__
    status = getattr(e, "status", None)
    return f"HTTP {status}: {reason}" if status else str(reason)
