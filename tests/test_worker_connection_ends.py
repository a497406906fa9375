"""A gthread worker's loop closes a kept-alive connection its client closed, where gunicorn
would hand it to a pool thread only to read its end; and a new connection whose request has
arrived is read without a selector made to wait for it."""

from __future__ import annotations

import os
import selectors
import socket
import struct
from functools import partial

import pytest
from gunicorn.config import Config
from gunicorn.workers.gthread import TConn

from tsapi.api.worker import DeadlineSocket, DeadlineThreadWorker

REQUEST = b"GET /ping HTTP/1.1\r\nHost: tsapi\r\n\r\n"


@pytest.fixture
def listener():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock
    sock.close()


@pytest.fixture
def worker(listener):
    """A worker (not started) whose pool is a list: what it would hand to a thread."""
    cfg = Config()
    cfg.set("workers", 2)
    made = DeadlineThreadWorker(1, os.getpid(), [listener], None, 30, cfg, None)
    made.read_timeout = 30.0
    made.poller = selectors.DefaultSelector()
    made.handed: list = []
    made.enqueue_req = made.handed.append
    yield made
    made.poller.close()
    DeadlineThreadWorker.connection_counts = None


def connection(listener) -> tuple[socket.socket, TConn]:
    """(the client's socket, the server's connection as gthread accepted it)."""
    client = socket.create_connection(listener.getsockname())
    sock, addr = listener.accept()
    return client, TConn(Config(), sock, addr, listener.getsockname())


def kept_alive(worker, conn: TConn) -> None:
    """conn as gthread leaves it after answering a request: waiting in the poller."""
    conn.sock = DeadlineSocket(conn.sock, worker.read_timeout)
    conn.initialized = True
    worker.nr_conns += 1
    worker.keepalived_conns.append(conn)
    worker.poller.register(conn.sock, selectors.EVENT_READ,
                           partial(worker.on_client_socket_readable, conn))


def test_a_kept_alive_connection_its_client_closed_is_closed_in_the_loop(worker, listener):
    client, conn = connection(listener)
    kept_alive(worker, conn)
    client.close()
    worker.wait_for_and_dispatch_events(5)
    assert worker.handed == []
    assert worker.nr_conns == 0
    assert not worker.keepalived_conns
    assert all(key.fileobj is not conn.sock for key in worker.poller.get_map().values())
    assert conn.sock.fileno() == -1  # closed


def test_a_kept_alive_connection_its_client_reset_is_closed_in_the_loop(worker, listener):
    client, conn = connection(listener)
    kept_alive(worker, conn)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # a reset, not an orderly end
    worker.wait_for_and_dispatch_events(5)
    assert worker.handed == []
    assert worker.nr_conns == 0
    assert conn.sock.fileno() == -1


def test_a_kept_alive_connection_with_a_request_waiting_goes_to_a_thread(worker, listener):
    client, conn = connection(listener)
    kept_alive(worker, conn)
    client.sendall(REQUEST)
    client.shutdown(socket.SHUT_WR)  # the request stays to be read all the same
    worker.wait_for_and_dispatch_events(5)
    assert worker.handed == [conn]
    assert worker.nr_conns == 1
    assert conn.sock.recv(len(REQUEST)) == REQUEST  # nothing taken from it
    client.close()
    conn.close()


def answered_without_reading(worker, conn: TConn) -> list:
    """Run the worker's handling of conn (up to the app, not included); the waits for data
    it made."""
    waits = []

    def wait_for_data(timeout):
        waits.append(timeout)
        return False  # as if nothing came: gthread puts the connection back in the poller

    conn.wait_for_data = wait_for_data
    worker.handle_request = lambda req, conn: False  # the app is not what is tested
    worker.handle(conn)
    return waits


def test_a_new_connection_whose_request_arrived_is_read_at_once(worker, listener):
    client, conn = connection(listener)
    client.sendall(REQUEST)
    assert answered_without_reading(worker, conn) == []
    client.close()
    conn.close()


def test_a_new_connection_with_nothing_yet_is_waited_for(worker, listener):
    client, conn = connection(listener)
    assert answered_without_reading(worker, conn) != []
    client.close()
    conn.close()
