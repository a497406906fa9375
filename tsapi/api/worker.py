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

ENV_VAR = "GUNICORN_REQUEST_READ_TIMEOUT"
DEFAULT_SECONDS = 30.0


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
    everything else is the socket's own."""

    def __init__(self, sock: socket.socket, seconds: float):
        self._sock = sock
        self._seconds = seconds
        self._deadline = time.monotonic() + seconds

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

    def send(self, data: bytes, *flags: int) -> int:
        return self._send("send", data, *flags)

    def sendall(self, data: bytes, *flags: int) -> None:
        return self._send("sendall", data, *flags)

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
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
    most GUNICORN_REQUEST_READ_TIMEOUT seconds, and other threads keep serving meanwhile."""

    def init_process(self) -> None:
        self.read_timeout = read_timeout()
        super().init_process()

    def handle(self, conn: Any) -> Any:
        if isinstance(conn.sock, DeadlineSocket):
            conn.sock.restart()
        elif not conn.initialized:  # before the parser takes the socket
            conn.sock = DeadlineSocket(conn.sock, self.read_timeout)
        return super().handle(conn)
