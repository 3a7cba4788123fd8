"""Port-forward in-process, through the API server's pods/portforward.

A listener on 127.0.0.1 (a free port, never 0.0.0.0); every accepted
connection gets its own tunnel (one websocket to the API server) and two pumps
that copy bytes each way. A tunnel that cannot be opened, or that dies (the
pod is gone), closes only its client connection; the listener stays up, so
the next connection tries again. `close()` stops everything it started.

A tunnel to a deleted pod does not always end: the websocket may stay open
while nothing answers. So a watchdog looks at the pod whenever a request has
waited for its first answer byte longer than STALL seconds, and if the pod is
gone, being deleted or not running, it drops every tunnel: clients see a
closed connection at once instead of their read timeout.

The pod is fixed (the bucket server), or chosen afresh for each connection by
a `pick(wait)` callable giving (pod, port, reason): pod None while none is
Ready, after waiting up to `wait` s; `reason` says why, and goes to
`on_problem`. Its owner follows the pods and calls `drop_connections(pod)`
for one that goes away, so the watchdog only looks after a fixed pod.

Opening a tunnel (TLS, websocket upgrade, the API server's own connection to
the node) costs more than the request it carries. With `spare`, each accepted
connection has one more tunnel opened behind it, to the same pod, for the next
connection (browsers and clients come in bursts): it is used only if the pick
still names that pod and the app has not closed it, and closed unused after
SPARE_LIFE s, so the app never holds an idle connection for long.
"""
from __future__ import annotations

import errno
import logging
import select
import socket
import threading
import time
from typing import NamedTuple

from ..errors import ApiError, UserError

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
JOIN_TIMEOUT = 5.0
STALL = 1.5            # seconds a request may wait for an answer before the pod is checked
POD_CHECK_TIMEOUT = (3, 5)   # (connect, read) seconds of that check
PICK_WAIT = 10.0       # seconds a new connection waits for a Ready pod
SPARE_LIFE = 10.0      # seconds an unused spare tunnel is kept (an app's idle timeout is longer)
SPARE_WAIT = 2.0       # seconds a connection waits for a spare being opened


def _shutdown(sock) -> None:
    """Wake any thread blocked on `sock` (close() alone does not) and end both ways."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Tunnel:
    """One accepted connection and, once open, its pod-side socket."""

    __slots__ = ("conn", "remote", "waiting_since", "pod")

    def __init__(self, conn: socket.socket):
        self.conn, self.remote, self.pod = conn, None, None
        self.waiting_since: float | None = None   # request bytes sent, no answer yet

    def drop(self) -> None:
        for sock in (self.conn, self.remote):
            if sock is not None:
                _shutdown(sock)


class _Spare(NamedTuple):
    """A tunnel opened ahead of the connection that will use it."""
    pod: str
    port: int
    pf: object                  # kube.open_portforward's tunnel
    gone: threading.Event       # taken by a connection, or dropped


def _alive(spare: _Spare) -> bool:
    """Has the app kept the spare's connection open? (Bytes it sent first, a
    greeting, wait in the tunnel for the client.)"""
    sock = spare.pf.socket(spare.port)
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return not readable or sock.recv(1, socket.MSG_PEEK) != b""
    except (OSError, ValueError):
        return False


class PortForward:
    def __init__(self, kube, namespace: str, pod, remote_port: int | str, *,
                 local_port: int = 0, on_problem=None, wait: float = PICK_WAIT,
                 spare: bool = False):
        """pod: a pod name, or a pick(wait) callable (see the module's docstring);
        spare: keep a tunnel open ahead of the next connection."""
        self.kube = kube
        self.namespace, self.remote_port = namespace, remote_port
        self.pod = None if callable(pod) else pod
        self._pick = pod if callable(pod) else (lambda _wait: (self.pod, int(remote_port), ""))
        self.on_problem = on_problem or (lambda _message: None)
        self.wait = wait
        self.local_port = int(local_port)
        self.url = ""
        self.last_error: str | None = None   # why the latest tunnel failed, for messages
        self.tunnels_opened = 0
        self._listener: socket.socket | None = None
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._tunnels: set[_Tunnel] = set()
        self._threads: set[threading.Thread] = set()
        self._pod_uid: str | None = None
        self.spares = spare
        self.spares_used = 0
        self._spare: _Spare | None = None
        self._opening = threading.Event()   # set while no spare is being opened
        self._opening.set()
        self._opening_to: tuple[str, int] | None = None

    def __repr__(self) -> str:
        return f"PortForward({self.namespace}/{self.pod}:{self.remote_port} at {self.url or '-'})"

    def __enter__(self) -> "PortForward":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> int:
        if self._listener:
            return self.local_port
        self._closing.clear()
        try:
            self._listener = socket.create_server(("127.0.0.1", self.local_port), backlog=128)
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise
            raise UserError(f"local port {self.local_port} is in use; pick another, or leave "
                            f"LOCAL empty for a free port (:{self.remote_port})") from None
        self.local_port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.local_port}"
        self._spawn(self._accept_loop, "accept", self._listener)
        if self.pod is not None:
            self._spawn(self._watchdog, "watchdog")
        log.debug("port-forward %s/%s:%s listening on %s", self.namespace, self.pod,
                  self.remote_port, self.url)
        return self.local_port

    def close(self) -> None:
        self._closing.set()
        listener, self._listener = self._listener, None
        if listener:
            _shutdown(listener)    # wakes accept()
            listener.close()
        self.drop_connections()
        deadline = time.monotonic() + JOIN_TIMEOUT
        while True:
            with self._lock:
                threads = [t for t in self._threads if t is not threading.current_thread()]
            if not threads or time.monotonic() > deadline:
                return
            threads[0].join(max(0.0, deadline - time.monotonic()))

    def drop_connections(self, pod: str | None = None) -> None:
        """End every open client connection (to `pod` only, when given) and its
        tunnel; the listener stays."""
        with self._lock:
            tunnels = [t for t in self._tunnels if pod is None or t.pod == pod]
        for tunnel in tunnels:
            tunnel.drop()
        spare = self._take_spare(lambda sp: pod in (None, sp.pod))
        if spare:
            spare.pf.close()

    # -- inside --

    def _spawn(self, target, role: str, *args) -> None:
        name = f"port-forward {role} {self.namespace}/{self.pod or '*'}:{self.remote_port}"
        t = threading.Thread(target=self._run, args=(target, *args), daemon=True, name=name)
        with self._lock:
            self._threads.add(t)
        t.start()

    def _run(self, target, *args) -> None:
        try:
            target(*args)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                if self._closing.is_set():
                    return
                time.sleep(0.05)    # e.g. out of file descriptors: do not spin
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tunnel = _Tunnel(conn)
            with self._lock:
                if self._closing.is_set():
                    conn.close()
                    return
                self._tunnels.add(tunnel)
            self._spawn(self._serve, "conn", tunnel)

    def _serve(self, tunnel: _Tunnel) -> None:
        pf = None
        try:
            pod, port, reason = self._pick(self.wait)
            if pod is None:
                self.on_problem(reason)
                return
            tunnel.pod = pod
            try:
                pf = self._spare_for(pod, port) or self.kube.open_portforward(self.namespace,
                                                                              pod, port)
            except Exception as e:  # noqa: BLE001 - ApiError (pod gone, forbidden), and any other
                problem = self._pod_problem() if self.pod else None
                self._failed("cannot port-forward to", pod, port, problem or str(e))
                return
            if self.spares:
                self._spawn(self._open_spare, "spare", pod, port)
            with self._lock:
                self.tunnels_opened += 1
                tunnel.remote = pf.socket(port)
            if self._closing.is_set():
                return
            back = threading.Thread(target=self._pump, args=(tunnel, False), daemon=True,
                                    name=f"port-forward pump {pod}:{port}")
            back.start()
            self._pump(tunnel, True)
            back.join()
            error = pf.error(port)
            if error:
                self._failed("port-forward failed to", pod, port, error.strip())
        finally:
            tunnel.drop()
            for sock in (tunnel.conn, tunnel.remote):
                if sock is not None:
                    sock.close()
            if pf is not None:
                pf.close()
            with self._lock:
                self._tunnels.discard(tunnel)

    def _take_spare(self, match=None) -> _Spare | None:
        """The spare tunnel (if match(spare), when given), now no longer the spare."""
        with self._lock:
            spare = self._spare
            if spare is None or (match is not None and not match(spare)):
                return None
            self._spare = None
        spare.gone.set()
        return spare

    def _spare_for(self, pod: str, port: int):
        """The spare tunnel, if it leads to this pod and port and is still open;
        one being opened is waited for (it started before this connection came)."""
        if self._opening_to == (pod, port):
            self._opening.wait(SPARE_WAIT)
        spare = self._take_spare()
        if spare and spare.pod == pod and spare.port == port and _alive(spare):
            self.spares_used += 1
            return spare.pf
        if spare:
            spare.pf.close()
        return None

    def _open_spare(self, pod: str, port: int) -> None:
        """Open a tunnel for the next connection; close it if unused after SPARE_LIFE."""
        with self._lock:
            if self._spare is not None or not self._opening.is_set():
                return
            self._opening.clear()
            self._opening_to = (pod, port)
        spare = None
        try:
            spare = _Spare(pod, port, self.kube.open_portforward(self.namespace, pod, port),
                           threading.Event())
        except Exception:  # noqa: BLE001 - the next connection opens its own, and says why
            pass
        with self._lock:
            kept = spare is not None and self._spare is None and not self._closing.is_set()
            if kept:
                self._spare = spare
            self._opening.set()
        if spare is None or (kept and (spare.gone.wait(SPARE_LIFE)
                                       or self._take_spare(lambda sp: sp is spare) is None)):
            return      # none, or taken by a connection, or dropped (and closed) by drop_connections
        spare.pf.close()

    @staticmethod
    def _pump(tunnel: _Tunnel, outbound: bool) -> None:
        """Copy one way until either side ends; then end both, so the other pump
        (blocked in recv) stops too. Tracks requests that wait for an answer."""
        src, dst = (tunnel.conn, tunnel.remote) if outbound else (tunnel.remote, tunnel.conn)
        try:
            while True:
                data = src.recv(CHUNK)
                if not data:
                    break
                if outbound:
                    if tunnel.waiting_since is None:
                        tunnel.waiting_since = time.monotonic()
                else:
                    tunnel.waiting_since = None
                dst.sendall(data)
        except OSError:
            pass
        finally:
            tunnel.drop()

    def _watchdog(self) -> None:
        checked = 0.0
        while not self._closing.wait(STALL / 3):
            now = time.monotonic()
            with self._lock:
                stalled = any(t.waiting_since is not None and now - t.waiting_since > STALL
                              for t in self._tunnels)
            if not stalled or now - checked < STALL:    # one look per STALL at most
                continue
            checked = now
            problem = self._pod_problem()
            if problem:
                self._failed("dropped the connections to", self.pod, self.remote_port, problem)
                self.drop_connections()

    def _pod_problem(self) -> str | None:
        """What is wrong with the pod, in words, or None if it looks fine (or the
        API server cannot tell right now)."""
        try:
            pod = self.kube.get("Pod", self.pod, self.namespace, timeout=POD_CHECK_TIMEOUT)
        except ApiError:
            return None
        if pod is None:
            return "the pod was not found"
        meta, phase = pod["metadata"], (pod.get("status") or {}).get("phase")
        if self._pod_uid is None:
            self._pod_uid = meta.get("uid")
        if meta.get("uid") != self._pod_uid:
            return "the pod was replaced by another of the same name"
        if meta.get("deletionTimestamp"):
            return "the pod is being deleted"
        if phase and phase != "Running":
            return f"the pod is {phase}, not Running"
        return None

    def _failed(self, what: str, pod: str, port, why: str) -> None:
        self.last_error = f"{what} pod {self.namespace}/{pod} port {port}: {why}"
        log.debug("%s", self.last_error)

