"""A client socket whose reads share one deadline and whose sends each have a timeout (the
workers in tsapi.api.worker wrap each connection in one), in as few system calls as it can."""

from __future__ import annotations

import errno
import socket
import time
from typing import Any

from gunicorn.http.errors import NoMoreData

_NO_WAIT = socket.MSG_DONTWAIT
# A held response head is joined to the body's first bytes up to this size (a copy); a
# larger body goes out after the head instead.
_JOINED_SEND_BYTES = 65536


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
    everything else is the socket's own.

    Each read or send first tries without waiting (MSG_DONTWAIT): a request the worker was
    handed has arrived already, and a small answer fits the socket's buffer, so the common
    case is one system call instead of three (the timeout's ioctl, poll, then the call).
    Only a call that would wait arms the timeout. A response's head can be held back to go
    out with the first bytes of its body (hold_head): one send and one TCP segment for a
    small answer, not two."""

    def __init__(self, sock: socket.socket, seconds: float):
        self._sock = sock
        self._seconds = seconds
        self._deadline = time.monotonic() + seconds
        self._held: bytes | None = None  # None: nothing is held back

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

    def _may_try_at_once(self, flags: tuple) -> bool:
        # Only on a socket that does not wait by itself (gthread makes it blocking for each
        # request): on one with a timeout, Python would poll for up to that timeout first.
        return not flags and not self._sock.gettimeout()

    def recv(self, size: int, *flags: int) -> bytes:
        if time.monotonic() >= self._deadline:
            raise ReadDeadlineExpired(self._seconds)
        if self._may_try_at_once(flags):
            try:
                return self._sock.recv(size, _NO_WAIT)
            except BlockingIOError:
                pass  # nothing to read yet: wait for it, within the deadline
        self._arm()
        try:
            return self._sock.recv(size, *flags)
        except TimeoutError:
            raise ReadDeadlineExpired(self._seconds) from None

    def recv_into(self, buffer: Any, nbytes: int = 0, *flags: int) -> int:
        if time.monotonic() >= self._deadline:
            raise ReadDeadlineExpired(self._seconds)
        if self._may_try_at_once(flags):
            try:
                return self._sock.recv_into(buffer, nbytes, _NO_WAIT)
            except BlockingIOError:
                pass
        self._arm()
        try:
            return self._sock.recv_into(buffer, nbytes, *flags)
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
        """Keep the next sendall (gunicorn's response head) until the one after it, or until
        send_held: the head and the body's first bytes then leave in one send."""
        self._held = b""

    def send_held(self) -> None:
        """Send what is still held (a response without a body), and hold nothing more."""
        held, self._held = self._held, None
        if held:
            self.sendall(held)

    def drop_held(self) -> None:
        """The response failed: what is held is never sent."""
        self._held = None

    def send(self, data: bytes, *flags: int) -> int:
        self.send_held()
        return self._send("send", data, *flags)

    def sendall(self, data: bytes, *flags: int) -> None:
        held = self._held
        if held is not None:
            if not held and data:
                self._held = bytes(data)
                return
            self._held = None
            if len(data) <= _JOINED_SEND_BYTES:
                data = held + data
            else:
                self.sendall(held)
        if self._may_try_at_once(flags):
            try:
                sent = self._sock.send(data, _NO_WAIT)
            except BlockingIOError:
                sent = 0
            if sent == len(data):
                return
            data = memoryview(data)[sent:]
        self._send("sendall", data, *flags)

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        self.send_held()
        return self._send("sendfile", file, offset, count)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)
