"""Idle and trickling clients cannot hold the workers: each request has a time to arrive.

Against a real gunicorn with two workers of THREADS threads (gunicorn.conf.py's worker class)
and GUNICORN_REQUEST_READ_TIMEOUT=2. Before, with sync workers, two silent sockets blocked
every other client until gunicorn's worker timeout (120 s) killed the workers. The bounds
below are generous (30 s for a 2 s deadline): they tell "dropped at the deadline" from "held
until something else gives up", whatever the machine's speed.
"""

import socket
import time

import pytest
from conftest import reset_state
from gunicorn_server import GunicornServer
from helpers import points_stored
from services import HOST

DEADLINE = 2
WORKERS, THREADS = 2, 4  # gunicorn.conf.py's threads per worker, set here so idle() fills them
PATIENCE = 30  # how long the test waits for what the server must do after DEADLINE


@pytest.fixture(scope="module")
def server(gunicorn_database, redis_server, tmp_path_factory):
    reset_state(gunicorn_database, redis_server.url())
    with GunicornServer(gunicorn_database, redis_server.url(), tmp_path_factory.mktemp("slow"),
                        workers=WORKERS, GUNICORN_THREADS=str(THREADS),
                        GUNICORN_REQUEST_READ_TIMEOUT=str(DEADLINE)) as server:
        yield server


def _connect(server) -> socket.socket:
    return socket.create_connection((HOST, server.port), timeout=PATIENCE)


def _closed_by_server(sock: socket.socket) -> bytes | None:
    """What the server sent before closing the connection; None if it kept it open."""
    received = bytearray()
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        return None
    return bytes(received)


def test_idle_connections_do_not_block_other_clients(server):
    idle = [_connect(server) for _ in range(2 * WORKERS * THREADS)]  # twice the threads
    try:
        time.sleep(0.5)  # let the workers accept them
        status, _, _ = server.request("GET", "/health", timeout=PATIENCE)
        assert status == 200
        for sock in idle:
            assert _closed_by_server(sock) is not None
    finally:
        for sock in idle:
            sock.close()


def test_a_trickled_request_line_is_dropped_at_the_deadline(server):
    with _connect(server) as sock:
        request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 1000
        started = time.monotonic()
        for byte in request:  # a byte every 0.1 s: each read is quick, the whole is not
            try:
                sock.send(bytes([byte]))
            except OSError:
                break  # the server closed it
            time.sleep(0.1)
            if time.monotonic() - started > PATIENCE:
                break
        assert _closed_by_server(sock) is not None
        assert time.monotonic() - started < PATIENCE


def test_a_stalled_body_gets_408_and_stores_nothing(server, gunicorn_database):
    body = b"m v=1 1700000000\nm v=2 1700000001\n"
    with _connect(server) as sock:
        sock.sendall(b"POST /write?db=d&precision=s HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % (len(body) * 2)
                     + body)  # half the body, then nothing
        answer = _closed_by_server(sock)
    assert answer is not None and answer.startswith(b"HTTP/1.1 408"), answer
    assert points_stored(gunicorn_database) == 0
