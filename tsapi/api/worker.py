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

import errno
import os
import socket
import time
from collections.abc import Mapping
from typing import Any

from gunicorn.http.errors import NoMoreData
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from tsapi.api.connection_counts import SLOTS, ConnectionCounts

ENV_VAR = "GUNICORN_REQUEST_READ_TIMEOUT"
DEFAULT_SECONDS = 30.0
# A busy worker's main thread waits for the GIL (5 ms switch interval) before it can accept:
# give the worker with fewer connections that long and more, then take the connection.
ACCEPT_PAUSE = 0.002
ACCEPT_WAIT = 0.025
# A response head goes with the body's first write up to this size (a copy), before it above.
HEAD_WITH_BODY_UP_TO = 64 * 1024


class ReadDeadlineExpired(NoMoreData, TimeoutError):
    """The request did not arrive in time. A NoMoreData, so gunicorn drops the connection
    quietly while it reads headers; a TimeoutError, so the app answers 408 mid-body."""

    def __init__(self, seconds: float):
        TimeoutError.__init__(self, f"the request did not arrive within {seconds:g} s")
        self.buf = b""  # NoMoreData's own attribute, read by its __str__

    def __str__(self) -> str:
        return TimeoutError.__str__(self)


class DeadlineSocket:
    """A client socket whose reads share one deadline and whose sends each have a timeout;
    everything else is the socket's own. It can also hold a response's head (hold_head) to
    send it with the first part of the body."""

    def __init__(self, sock: socket.socket, seconds: float):
        self._sock = sock
        self._seconds = seconds
        self._deadline = time.monotonic() + seconds
        self._hold = False
        self._held = b""

    @property
    def raw(self) -> socket.socket:
        """The socket itself, for a look that must not arm the deadline."""
        return self._sock

    def restart(self) -> None:
        """A new request on a kept-alive connection gets the whole time again."""
        self._deadline = time.monotonic() + self._seconds

    def _arm(self) -> None:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise ReadDeadlineExpired(self._seconds)
        self._sock.settimeout(remaining)

    def recv(self, size: int, *flags: int) -> bytes:
        self._arm()
        try:
            return self._sock.recv(size, *flags)
        except TimeoutError:
            raise ReadDeadlineExpired(self._seconds) from None

    def recv_into(self, buffer: Any, *args: int) -> int:
        self._arm()
        try:
            return self._sock.recv_into(buffer, *args)
        except TimeoutError:
            raise ReadDeadlineExpired(self._seconds) from None

    def _send(self, method: str, *args: Any) -> Any:
        self._sock.settimeout(self._seconds)
        try:
            return getattr(self._sock, method)(*args)
        except TimeoutError:
            # gunicorn drops a connection whose writes fail with EPIPE without a traceback.
            raise BrokenPipeError(errno.EPIPE, "the client stopped reading the response"
                                  ) from None

    def hold_head(self) -> None:
        """Keep the next response's head (its status line and headers, gunicorn's first
        write) until the body's first write, and send them together. Written apart, they
        left as two segments: the client woke for the head, parsed it, and slept again until
        the body came (on busy cores, each wake-up a wait for a core). flush() sends a head
        still held (a response without a body)."""
        self._hold = True

    def flush(self) -> None:
        held, self._held = self._held, b""
        if held:
            self._send("sendall", held)

    def send(self, data: bytes, *flags: int) -> int:
        self.flush()
        return self._send("send", data, *flags)

    def sendall(self, data: bytes, *flags: int) -> None:
        if self._hold:
            self._hold = False
            # Not an interim response (100 Continue), which the client waits for.
            if data[:7] == b"HTTP/1." and data[9:10] != b"1":
                self._held = bytes(data)
                return None
        if self._held:
            held, self._held = self._held, b""
            if len(data) > HEAD_WITH_BODY_UP_TO:
                self._send("sendall", held)  # rather than copying a large body
            else:
                data = held + data
        return self._send("sendall", data, *flags)

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        self.flush()
        return self._send("sendfile", file, offset, count)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


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

    def handle(self, conn: Any) -> Any:
        if isinstance(conn.sock, DeadlineSocket):
            conn.sock.restart()
        elif not conn.initialized:  # before the parser takes the socket
            # A client sends its request as it connects: it is usually there already, and
            # gthread would make, wait on and close a selector of its own to learn that.
            conn.data_ready = conn.data_ready or _readable(conn.sock)
            conn.sock = DeadlineSocket(conn.sock, self.read_timeout)
        sock = conn.sock if isinstance(conn.sock, DeadlineSocket) else None
        if sock is None:
            return super().handle(conn)
        sock.hold_head()
        keep = super().handle(conn)
        try:
            sock.flush()
        except OSError:  # the client is gone: the connection with it
            return False
        return keep

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
