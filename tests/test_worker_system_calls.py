"""The gthread worker's per-request system calls: a request that has arrived is read without
arming a timeout, a small answer leaves in one send, the arbiter's heartbeat is not written on
every turn of the loop, and gunicorn builds no access line nobody logs. Deadlines still hold
(tests/test_slow_clients_are_dropped.py runs them against a real gunicorn)."""

from __future__ import annotations

import ast
import importlib
import os
import socket
import threading
from pathlib import Path

import pytest
from gunicorn.config import Config

from tsapi.api.deadline_socket import DeadlineSocket, ReadDeadlineExpired
from tsapi.api.worker import DeadlineThreadWorker

ROOT = Path(__file__).resolve().parent.parent


class Recording:
    """A real socket that remembers which of its methods were called, and with what."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.calls: list[tuple[str, tuple]] = []

    def __getattr__(self, name):
        method = getattr(self.sock, name)

        def recorded(*args):
            self.calls.append((name, args))
            return method(*args)

        return recorded

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def pair():
    ours, peer = socket.socketpair()
    ours.setblocking(True)  # as gthread hands a connection to its thread
    peer.settimeout(2)
    yield Recording(ours), peer
    ours.close()
    peer.close()


def received(peer: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = peer.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def holding(sock: Recording, head: bytes) -> DeadlineSocket:
    """A writer on `sock` holding `head`, sent to it as a response's head is, for its body."""
    writer = DeadlineSocket(sock, 5)
    writer.hold_head()
    writer.sendall(head)
    return writer


def test_a_request_that_has_arrived_is_read_without_arming_a_timeout(pair):
    sock, peer = pair
    peer.sendall(b"GET / HTTP/1.1\r\n\r\n")
    reader = DeadlineSocket(sock, 5)
    assert reader.recv(100) == b"GET / HTTP/1.1\r\n\r\n"
    assert "settimeout" not in sock.names()  # one recv, no ioctl and poll before it


def test_a_read_that_must_wait_still_ends_at_the_deadline(pair):
    sock, _ = pair
    reader = DeadlineSocket(sock, 0.2)
    with pytest.raises(ReadDeadlineExpired):
        while reader.recv(100):
            pass


def test_a_read_after_one_that_waited_still_ends_at_the_deadline_as_such(pair):
    """Once a read has waited, the socket has a timeout of its own; a later read must not
    wait that (older, longer) timeout out, nor fail with anything but the deadline."""
    sock, peer = pair
    reader = DeadlineSocket(sock, 0.5)
    threading.Timer(0.1, lambda: peer.sendall(b"GET / HTTP/1.1\r\n")).start()
    assert reader.recv(100) == b"GET / HTTP/1.1\r\n"  # waited for it
    with pytest.raises(ReadDeadlineExpired):
        reader.recv(100)


def test_a_small_answer_leaves_in_one_send(pair):
    sock, peer = pair
    writer = holding(sock, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
    writer.sendall(b"{}")
    writer.send_held()
    sends = [args for name, args in sock.calls if name.startswith("send")]
    assert [args[0] for args in sends] == [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"]
    assert "settimeout" not in sock.names()
    assert received(peer, 40) == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"


def test_a_head_without_a_body_is_sent_when_the_response_ends(pair):
    sock, peer = pair
    writer = holding(sock, b"HTTP/1.1 204 No Content\r\n\r\n")
    assert not [name for name in sock.names() if name.startswith("send")]
    writer.send_held()
    assert received(peer, 27) == b"HTTP/1.1 204 No Content\r\n\r\n"


def test_a_failed_response_sends_nothing_held(pair):
    sock, peer = pair
    writer = holding(sock, b"HTTP/1.1 200 OK\r\n\r\n")
    writer.drop_held()
    writer.sendall(b"HTTP/1.1 500 Internal Server Error\r\n\r\n")  # gunicorn's error answer
    assert received(peer, 38) == b"HTTP/1.1 500 Internal Server Error\r\n\r\n"


def test_a_held_head_goes_before_a_file_sent_by_sendfile(pair, tmp_path):
    sock, peer = pair
    body = tmp_path / "body"
    body.write_bytes(b"file contents")
    writer = holding(sock, b"HEAD\r\n\r\n")
    with body.open("rb") as f:
        writer.sendfile(f, 0, 13)
    writer.send_held()
    assert received(peer, 21) == b"HEAD\r\n\r\nfile contents"


def test_a_large_body_follows_its_held_head_whole(pair):
    sock, peer = pair
    body = os.urandom(200_000)
    writer = holding(sock, b"HEAD\r\n\r\n")
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(received(peer, 8 + len(body))))
    reader.start()
    writer.sendall(body)
    writer.send_held()
    reader.join(10)
    assert got == [b"HEAD\r\n\r\n" + body]


class CountingHeartbeat:
    def __init__(self):
        self.beats = 0

    def notify(self):
        self.beats += 1


def test_the_heartbeat_is_written_once_a_second_not_on_every_turn_of_the_loop():
    cfg = Config()
    worker = DeadlineThreadWorker(1, os.getpid(), [], None, 30, cfg, None)
    worker.tmp = CountingHeartbeat()
    for _ in range(100):  # fifty requests' worth of turns
        worker.notify()
    assert worker.tmp.beats == 1


def configured_logger_class():
    """gunicorn.conf.py's logger_class, read without running the file."""
    tree = ast.parse((ROOT / "gunicorn.conf.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                getattr(t, "id", None) == "logger_class" for t in node.targets):
            module, _, name = ast.literal_eval(node.value).rpartition(".")
            return getattr(importlib.import_module(module), name)
    raise AssertionError("gunicorn.conf.py sets no logger_class")


def test_gunicorn_builds_no_access_line_without_an_access_log(monkeypatch):
    cfg = Config()
    cfg.set("logconfig_dict", {"version": 1, "disable_existing_loggers": False})
    logger = configured_logger_class()(cfg)

    def atoms(*args):
        raise AssertionError("an access line was built")

    monkeypatch.setattr(logger, "atoms", atoms)
    logger.access(None, None, {}, None)
