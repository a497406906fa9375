"""A gthread worker leaves a new connection to a worker holding fewer (kept-alive connections
stay where they land, and two busy ones on one worker share its GIL), but never for long."""

from __future__ import annotations

import multiprocessing
import os
import selectors
import socket
import subprocess
import time

import pytest
from gunicorn.config import Config

from tsapi.api.connection_counts import ConnectionCounts
from tsapi.api.worker import ACCEPT_PAUSE, ACCEPT_WAIT, DeadlineThreadWorker


class RecordingSelector(selectors.DefaultSelector):
    """The worker's poller, remembering how long each wait was allowed to last."""

    def __init__(self):
        super().__init__()
        self.timeouts: list[float | None] = []

    def select(self, timeout=None):
        self.timeouts.append(timeout)
        return super().select(timeout)


@pytest.fixture
def listener():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


@pytest.fixture
def other_worker():
    """A live process holding a slot in the shared counts, as another worker would."""
    process = subprocess.Popen(["sleep", "60"])
    DeadlineThreadWorker.connection_counts = ConnectionCounts(8)
    slot = DeadlineThreadWorker.connection_counts.claim(process.pid)
    yield process, slot
    process.kill()
    process.wait()
    DeadlineThreadWorker.connection_counts = None


def worker_holding(connections: int, listener: socket.socket) -> tuple[DeadlineThreadWorker,
                                                                       list]:
    """A worker (not started: only its accepting is exercised) holding that many
    connections; returns it and the list the connections it accepts go to."""
    cfg = Config()
    cfg.set("workers", 2)
    worker = DeadlineThreadWorker(1, os.getpid(), [listener], None, 30, cfg, None)
    worker.take_counts_slot()
    worker.poller = RecordingSelector()
    accepted: list = []
    worker.enqueue_req = accepted.append
    worker.nr_conns = connections
    worker.wait_for_and_dispatch_events(0)  # shows its count to the others
    return worker, accepted


def connect(listener: socket.socket) -> socket.socket:
    return socket.create_connection(listener.getsockname())


def test_a_worker_holding_more_leaves_the_connection_to_one_holding_fewer(listener,
                                                                            other_worker):
    worker, accepted = worker_holding(1, listener)
    with connect(listener):
        worker.accept(listener)
        assert accepted == []
        assert worker.worker_connections == 0  # not listening for now
        taken, _ = listener.accept()  # still waiting: the other worker can take it
        taken.close()


def test_a_worker_holding_no_more_than_the_others_accepts_at_once(listener, other_worker):
    _, slot = other_worker
    DeadlineThreadWorker.connection_counts.publish(slot, 1)
    worker, accepted = worker_holding(1, listener)
    with connect(listener):
        worker.accept(listener)
        assert len(accepted) == 1
    accepted[0].sock.close()


def test_a_connection_nobody_else_takes_is_accepted_after_the_wait(listener, other_worker):
    worker, accepted = worker_holding(3, listener)
    started = time.monotonic()
    with connect(listener):
        while not accepted and time.monotonic() - started < 30:
            worker.accept(listener)
            time.sleep(ACCEPT_PAUSE)
        assert len(accepted) == 1
    assert time.monotonic() - started >= ACCEPT_WAIT
    accepted[0].sock.close()


def test_after_another_worker_took_the_connection_waits_last_as_long_as_asked(listener,
                                                                             other_worker):
    worker, _ = worker_holding(1, listener)
    with connect(listener):
        worker.accept(listener)
        taken, _ = listener.accept()  # the other worker took it
        taken.close()
    time.sleep(2 * ACCEPT_PAUSE)  # the pause is over
    worker.poller.timeouts.clear()
    worker.wait_for_and_dispatch_events(0.05)
    assert worker.poller.timeouts == [0.05]  # not 0: a loop that polls would spin
    assert worker.worker_connections > 0  # listening again


def test_a_worker_that_exited_is_not_waited_for(listener, other_worker):
    process, _ = other_worker
    process.kill()
    process.wait()
    worker, accepted = worker_holding(5, listener)
    with connect(listener):
        worker.accept(listener)
        assert len(accepted) == 1
    accepted[0].sock.close()


def test_the_slot_of_a_process_gone_is_claimed_again():
    counts = ConnectionCounts(1)
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert counts.claim(gone.pid) == 0
    assert counts.claim(os.getpid()) == 0
    assert counts.fewest_elsewhere(0) is None


def test_a_slot_left_by_a_killed_worker_whose_pid_came_back_is_no_peer():
    """A worker killed holding its slot (a timeout's SIGKILL, the OOM killer), its pid given
    later to the next worker: that worker must not take its own old slot for another worker
    holding nothing, or it would hold back every connection for ACCEPT_WAIT."""
    counts = ConnectionCounts(2)
    earlier = subprocess.Popen(["sleep", "60"])
    assert counts.claim(earlier.pid) == 0
    stale = counts.claim(os.getpid())  # this pid's earlier worker, killed before releasing
    counts.publish(stale, 0)
    earlier.kill()
    earlier.wait()
    slot = counts.claim(os.getpid())  # the worker that got the pid again
    assert counts.fewest_elsewhere(slot) is None


def test_the_slot_of_a_reaped_worker_is_freed_even_if_its_pid_is_taken_again():
    """The arbiter frees a reaped worker's slot (child_exit): an unrelated process given the
    pid later is not taken for a worker holding nothing."""
    counts = ConnectionCounts(2)
    reused = subprocess.Popen(["sleep", "60"])  # stands for the process that got the pid
    try:
        gone = counts.claim(reused.pid)  # the worker killed holding this slot
        counts.publish(gone, 0)
        counts.release_process(reused.pid)  # the arbiter reaped that worker
        slot = counts.claim(os.getpid())
        assert counts.fewest_elsewhere(slot) is None
    finally:
        reused.kill()
        reused.wait()


def test_a_worker_that_stopped_listening_to_drain_is_no_peer(listener, other_worker):
    """A worker past max_requests stops accepting and drains (up to graceful_timeout, with a
    long export in flight): the others must not hold back connections for it meanwhile."""
    _, slot = other_worker
    worker, _ = worker_holding(0, listener)
    assert DeadlineThreadWorker.connection_counts.fewest_elsewhere(slot) == 0
    worker.alive = False  # what gthread's handle_request does at max_requests
    worker.wait_for_and_dispatch_events(0)  # a pass of its draining loop
    assert DeadlineThreadWorker.connection_counts.fewest_elsewhere(slot) is None


def test_workers_added_after_the_arbiter_started_get_a_slot_too(listener):
    """The arbiter makes the table before its first fork, from `workers`; gunicorn adds
    workers later (TTIN, a reload raising `workers`), which must find a slot as well."""
    cfg = Config()
    cfg.set("workers", 1)
    DeadlineThreadWorker.connection_counts = None
    DeadlineThreadWorker(1, os.getpid(), [listener], None, 30, cfg, None)  # the first spawn
    counts = DeadlineThreadWorker.connection_counts
    added = [subprocess.Popen(["sleep", "60"]) for _ in range(40)]  # 39 TTINs later
    try:
        slots = [counts.claim(process.pid) for process in added]
        assert None not in slots and len(set(slots)) == len(added)
        for n, slot in enumerate(slots):
            counts.publish(slot, n + 1)
        assert counts.fewest_elsewhere(slots[0]) == 2  # the others are all seen
    finally:
        for process in added:
            process.kill()
            process.wait()
        DeadlineThreadWorker.connection_counts = None


def test_a_worker_killed_while_claiming_a_slot_does_not_keep_others_from_theirs():
    """SIGKILL (a timeout, the OOM killer) may hit a worker in the middle of its claim: the
    workers started after it must still get slots."""
    counts = ConnectionCounts(4)
    fork = multiprocessing.get_context("fork")  # a fork shares the table, as a worker does
    inside = fork.Event()
    worker = fork.Process(target=_stop_for_good_while_claiming, args=(counts, inside))
    worker.start()
    try:
        assert inside.wait(30)
    finally:
        worker.kill()
        worker.join()
    assert counts.claim(os.getpid()) is not None


def _stop_for_good_while_claiming(counts: ConnectionCounts, inside) -> None:
    def stuck(self, pid):
        inside.set()
        time.sleep(60)

    ConnectionCounts.release_process = stuck  # in this process only: claim calls it
    counts.claim(os.getpid())


def test_a_pause_over_before_the_loop_waits_does_not_keep_it_from_listening(listener,
                                                                            other_worker):
    """gthread's loop stops listening when it sees a pause on (worker_connections 0); if the
    pause ends before the loop's next wait, that wait must listen, not time out first (up to
    a second, with another worker holding more: nobody took the connection meanwhile)."""
    _, slot = other_worker
    DeadlineThreadWorker.connection_counts.publish(slot, 1)
    worker, accepted = worker_holding(2, listener)
    with connect(listener):
        worker.accept(listener)  # holding more: it leaves the connection to the other
        assert accepted == [] and worker.worker_connections == 0
        worker.set_accept_enabled(False)  # the loop saw the pause
        time.sleep(2 * ACCEPT_PAUSE)  # over before the loop waits
        DeadlineThreadWorker.connection_counts.publish(slot, 5)  # the other got busier
        worker.wait_for_and_dispatch_events(0.5)
        assert len(accepted) == 1
    accepted[0].sock.close()
