"""gunicorn workers (sync, and gthread) that give each request a deadline to arrive.

gunicorn's sync worker serves one connection at a time and reads it without a timeout: a
client that connects and sends nothing (or a header, or a body, a byte a minute) holds the
worker until the arbiter kills it, so as many idle sockets as there are workers stop the
service. Here every connection gets one deadline, GUNICORN_REQUEST_READ_TIMEOUT seconds
after it is accepted, for its request line, headers and body together; a read past it ends
the request (408 when the app was reading the body, else a silent close). Writing the
response is bounded separately: each send must finish within the same number of seconds,
so a client that stops reading an export frees the worker too.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from typing import Any

from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from tsapi.api.connection_counts import SLOTS, ConnectionCounts
from tsapi.api.deadline_socket import DeadlineSocket, ReadDeadlineExpired

__all__ = ["DeadlineSocket", "DeadlineSyncWorker", "DeadlineThreadWorker",
           "ReadDeadlineExpired", "read_timeout"]

ENV_VAR = "GUNICORN_REQUEST_READ_TIMEOUT"
DEFAULT_SECONDS = 30.0
# A busy worker's main thread waits for the GIL (5 ms switch interval) before it can accept:
# give the worker with fewer connections that long and more, then take the connection.
ACCEPT_PAUSE = 0.002
ACCEPT_WAIT = 0.025
# The arbiter's heartbeat at most this often (gthread beats on every turn of its loop).
HEARTBEAT_SECONDS = 1.0


def read_timeout(env: Mapping[str, str] = os.environ) -> float:
    raw = env.get(ENV_VAR) or str(DEFAULT_SECONDS)
    try:
        seconds = float(raw)
    except ValueError:
        raise RuntimeError(f"{ENV_VAR} must be a number of seconds, got {raw!r}") from None
    if seconds <= 0:
        raise RuntimeError(f"{ENV_VAR} must be positive, got {raw!r}")
    return seconds


class DeadlineSyncWorker(SyncWorker):
    """gunicorn's sync worker, each connection read against a deadline (DeadlineSocket)."""

    def init_process(self) -> None:
        self.read_timeout = read_timeout()
        super().init_process()

    def handle(self, listener: socket.socket, client: socket.socket, addr: Any) -> None:
        super().handle(listener, DeadlineSocket(client, self.read_timeout), addr)


class DeadlineThreadWorker(ThreadWorker):
    """gunicorn's gthread worker with the same deadline for every request of a connection
    (kept-alive connections get it afresh per request): a slow client holds a thread for at
    most GUNICORN_REQUEST_READ_TIMEOUT seconds, and other threads keep serving meanwhile.

    It also leaves a new connection to a worker holding fewer (tsapi.api.connection_counts):
    a worker holding more than the fewest another live worker holds stops listening for
    ACCEPT_PAUSE seconds at a time, and takes the connection itself only if it is still
    waiting after ACCEPT_WAIT (the other worker may be busy or stuck). Kept-alive
    connections stay where they land, so where they land decides which GIL serves them."""

    # Made in the arbiter, before its first fork: every worker shares it.
    connection_counts: ConnectionCounts | None = None

    def __init__(self, *args: Any, **kwargs: Any):
        self._slot: int | None = None
        self._paused_until = 0.0
        self._waiting_since: float | None = None
        self._notified_at = float("-inf")
        super().__init__(*args, **kwargs)  # sets worker_connections (the property below)
        if DeadlineThreadWorker.connection_counts is None:
            # Room for workers added later too (TTIN, a reload raising `workers`).
            DeadlineThreadWorker.connection_counts = ConnectionCounts(
                max(SLOTS, 4 * self.cfg.workers))

    @property
    def worker_connections(self) -> int:
        # gthread's loop listens while nr_conns < worker_connections: 0 stops it listening.
        return 0 if time.monotonic() < self._paused_until else self._max_connections

    @worker_connections.setter
    def worker_connections(self, value: int) -> None:
        self._max_connections = value

    def init_process(self) -> None:
        self.read_timeout = read_timeout()
        self.take_counts_slot()
        super().init_process()

    def take_counts_slot(self) -> None:
        """Show this process's connection count to the other workers from now on."""
        self._slot = self.connection_counts.claim(os.getpid())

    def run(self) -> None:
        try:
            super().run()
        finally:
            self._release()

    def handle_exit(self, sig: int, frame: Any) -> None:
        self._release()  # stopping: it takes no new connection, so it is nobody's peer
        super().handle_exit(sig, frame)

    def _release(self) -> None:
        if self._slot is not None:
            self.connection_counts.release(self._slot, os.getpid())
            self._slot = None

    def accept(self, listener: socket.socket) -> None:
        if self._leave_to_another():
            return
        super().accept(listener)
        self._publish()

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        # Paused: wake when the pause ends, to listen again. Only while it lasts: a pause
        # long over (another worker took the connection) must not make every wait a poll.
        remaining = self._paused_until - time.monotonic()
        if remaining > 0:
            timeout = min(timeout, remaining)
        elif not self._accepting and self.alive and self.nr_conns < self._max_connections:
            # The pause ended between the loop's look at worker_connections (which stopped
            # it listening) and now: listen again before this wait, not after it (a second).
            self.set_accept_enabled(True)
        super().wait_for_and_dispatch_events(timeout)
        self._publish()  # connections closed meanwhile

    def _publish(self) -> None:
        if not self.alive:
            # Draining (max_requests reached: no SIGTERM, so handle_exit did not run): it
            # accepts nothing more, so no other worker should hold a connection back for it.
            self._release()
        elif self._slot is not None:
            self.connection_counts.publish(self._slot, self.nr_conns)

    def _leave_to_another(self) -> bool:
        """Whether to stop listening a moment, so that a worker holding fewer connections
        accepts the one waiting."""
        if self._slot is None:
            return False
        now = time.monotonic()
        if self._waiting_since is None or now - self._paused_until > ACCEPT_WAIT:
            # A new wait: the last one ended long ago with another worker taking the
            # connection. (A loop woken late after a pause goes on with the same wait.)
            self._waiting_since = now
        fewest = self.connection_counts.fewest_elsewhere(self._slot)
        if fewest is None or self.nr_conns <= fewest or now - self._waiting_since >= ACCEPT_WAIT:
            self._waiting_since = None
            self._paused_until = 0.0
            return False
        self._paused_until = now + ACCEPT_PAUSE
        return True

    def notify(self) -> None:
        # gunicorn calls this on each turn of the loop, twice a request (its arrival wakes the
        # loop, and so does its end), and each call is a utime() of the heartbeat file: a
        # system call that also hands the GIL to the request's thread and takes it back. The
        # arbiter needs one beat within its timeout (self.timeout is half of it).
        now = time.monotonic()
        if now - self._notified_at >= min(HEARTBEAT_SECONDS, self.timeout or HEARTBEAT_SECONDS):
            self._notified_at = now
            super().notify()

    def handle_request(self, req: Any, conn: Any) -> Any:
        # The response's head waits for the body's first bytes (DeadlineSocket.hold_head);
        # a failed response sends nothing held (gunicorn then closes the connection).
        sock = conn.sock
        if not isinstance(sock, DeadlineSocket):
            return super().handle_request(req, conn)
        sock.hold_head()
        try:
            keep = super().handle_request(req, conn)
        except BaseException:
            sock.drop_held()
            raise
        sock.send_held()
        return keep

    def handle(self, conn: Any) -> Any:
        if isinstance(conn.sock, DeadlineSocket):
            conn.sock.restart()
        elif not conn.initialized:  # before the parser takes the socket
            # A client sends its request as it connects: it is usually there already, and
            # gthread would make, wait on and close a selector of its own to learn that.
            conn.data_ready = conn.data_ready or _readable(conn.sock)
            conn.sock = DeadlineSocket(conn.sock, self.read_timeout)
        return super().handle(conn)

    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        # A kept-alive connection its client closed (one request per connection, as scripts,
        # health checks and benchmarks send them) is closed here, in the loop: gthread hands
        # it to a pool thread to read its end, which then wakes this loop again to close it,
        # each of those thread switches a wait for the GIL and, on busy cores, for a core.
        if not self.cfg.is_ssl and _closed_by_client(client):
            self.poller.unregister(client)
            self.keepalived_conns.remove(conn)
            self.nr_conns -= 1
            conn.close()
            return
        super().on_client_socket_readable(conn, client)


def _peek(sock: Any) -> bytes | None:
    """The first byte waiting on a plain socket (b"": the client closed it), without taking
    it; None when nothing is there yet."""
    raw = sock.raw if isinstance(sock, DeadlineSocket) else sock
    try:
        return raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return None


def _readable(sock: Any) -> bool:
    try:
        return bool(_peek(sock))
    except OSError:
        return True  # reading it fails the same way, where gthread handles that


def _closed_by_client(sock: Any) -> bool:
    try:
        return _peek(sock) == b""
    except ConnectionError:  # reset
        return True
    except OSError:
        return False  # left to gthread's own handling
