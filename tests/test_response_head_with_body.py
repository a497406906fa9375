"""A response's head (status line and headers) leaves with the first part of its body: sent
apart, the client woke for the head and again for the body. An interim 100 Continue is never
held, and a response without a body still leaves."""

from __future__ import annotations

import socket

import pytest
from conftest import reset_state
from gunicorn_server import GunicornServer
from services import HOST

from tsapi.api.worker import HEAD_WITH_BODY_UP_TO, DeadlineSocket

HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"


@pytest.fixture
def pair():
    ours, theirs = socket.socketpair()
    theirs.settimeout(5)
    yield DeadlineSocket(ours, 5), theirs
    ours.close()
    theirs.close()


def waiting(sock: socket.socket) -> bytes:
    """What has arrived on sock so far, without waiting."""
    sock.setblocking(False)
    try:
        return sock.recv(1 << 20)
    except BlockingIOError:
        return b""
    finally:
        sock.settimeout(5)


def test_the_head_waits_for_the_body_and_leaves_with_it(pair):
    sock, client = pair
    sock.hold_head()
    sock.sendall(HEAD)
    assert waiting(client) == b""
    sock.sendall(b"body")
    assert waiting(client) == HEAD + b"body"
    sock.sendall(b"more")  # only the first write after hold_head is held
    assert waiting(client) == b"more"


def test_a_head_without_body_leaves_on_flush(pair):
    sock, client = pair
    sock.hold_head()
    sock.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
    sock.flush()
    assert waiting(client) == b"HTTP/1.1 204 No Content\r\n\r\n"


def test_an_interim_response_is_not_held(pair):
    sock, client = pair
    sock.hold_head()
    sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert waiting(client) == b"HTTP/1.1 100 Continue\r\n\r\n"


def test_a_large_body_follows_the_head_in_order(pair):
    sock, client = pair
    body = bytes(range(256)) * (HEAD_WITH_BODY_UP_TO // 128)
    sock.hold_head()
    sock.sendall(HEAD)
    sock.sendall(body)
    received = b""
    while len(received) < len(HEAD) + len(body):
        received += client.recv(1 << 20)
    assert received == HEAD + body


@pytest.fixture(scope="module")
def server(gunicorn_database, redis_server, tmp_path_factory):
    reset_state(gunicorn_database, redis_server.url())
    with GunicornServer(gunicorn_database, redis_server.url(),
                        tmp_path_factory.mktemp("head")) as server:
        yield server


def exchange(server, request: bytes, *, then: bytes = b"") -> bytes:
    """Send request (and, once something came back, `then`); everything the server sends
    until it closes the connection."""
    with socket.create_connection((HOST, server.port), timeout=30) as sock:
        sock.sendall(request)
        received = sock.recv(65536)
        if then:
            sock.sendall(then)
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_a_response_without_a_body_reaches_the_client(server):
    answer = exchange(server, b"GET /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 204 ")


def test_a_client_expecting_100_continue_gets_it_before_sending_the_body(server):
    body = b'{"data": []}'
    answer = exchange(server, b"POST /ingest HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                      b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body), then=body)
    assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 ")
    assert b'"ingested_count":0' in answer
