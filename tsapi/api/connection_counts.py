"""How many connections each gunicorn worker holds, in memory its forks share.

A kept-alive connection stays with the worker that accepted it, and gthread workers accept
whatever arrives, busy or not: two clients sending 5,000-point batches could both land on
one worker, whose GIL then parsed both batches in turn while the other core idled (same-run
ratio to fe03d71's sync workers 0.66x-1.18x, depending only on where the two connections
landed). tsapi.api.worker's DeadlineThreadWorker reads these counts to let the worker
holding the fewest connections take the next one.

The table is made by the arbiter before it forks any worker (an anonymous shared mapping:
every fork sees the same pages); each worker claims a slot, writes only its own count, and
frees the slot when it stops. A slot whose process is gone is free again, so a worker killed
without cleaning up costs nothing but its slot until the next worker claims it. The table
cannot grow once forked, and gunicorn adds workers later (TTIN, a reload raising `workers`):
it has room for SLOTS, and the scans stop at the highest slot ever claimed.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import tempfile
import time

FREE = 0
SLOTS = 1024  # 16 KiB; a worker finding none left goes on without the balancing
CLAIM_WAIT = 1.0


class ConnectionCounts:
    """Slots of (pid, connections held), one per live worker."""

    def __init__(self, slots: int = SLOTS):
        self._slots = slots
        # Two cells per slot, then one: how many slots were ever claimed (the scans' end).
        self._memory = mmap.mmap(-1, slots * 16 + 8)  # shared with the forks, zeroed
        self._cells = memoryview(self._memory).cast("q")
        self._used = 2 * slots
        # Claims exclude each other with a POSIX record lock on this file (inherited by the
        # forks): the kernel drops it when its holder dies, so a worker killed in the middle
        # of its claim keeps no later worker from a slot. A lock is held by a process, not a
        # thread: one claim at a time per process (a worker claims before its threads start).
        self._claiming = tempfile.TemporaryFile()  # noqa: SIM115 - open as long as the arbiter

    def claim(self, pid: int) -> int | None:
        """A slot for this worker, its count zero; None if every slot is taken."""
        # A live worker stuck holding the lock (stopped, say) would block the others'
        # claims: wait a little, then go without a slot (that worker only loses the
        # balancing).
        if not self._lock():
            return None
        try:
            # An earlier worker given the same pid and killed before it released (a timeout's
            # SIGKILL) left slots that would read as a live peer holding its last count.
            self.release_process(pid)
            used = self._cells[self._used]
            for slot in range(used):
                held_by = self._cells[2 * slot]
                if held_by == FREE or not _alive(held_by):
                    return self._take(slot, pid)
            if used < self._slots:
                slot = self._take(used, pid)
                self._cells[self._used] = used + 1  # after the pid: a scan sees it whole
                return slot
            return None
        finally:
            fcntl.lockf(self._claiming, fcntl.LOCK_UN)

    def _lock(self) -> bool:
        deadline = time.monotonic() + CLAIM_WAIT
        while True:
            try:
                fcntl.lockf(self._claiming, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except OSError:  # held by another live process
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.001)

    def _take(self, slot: int, pid: int) -> int:
        self._cells[2 * slot + 1] = 0
        self._cells[2 * slot] = pid
        return slot

    def release(self, slot: int, pid: int) -> None:
        if self._cells[2 * slot] == pid:
            self._cells[2 * slot] = FREE

    def release_process(self, pid: int) -> None:
        """Free every slot pid holds: the arbiter calls it as it reaps a worker (child_exit),
        before the pid can go to another process, which would otherwise pass for a live
        worker holding the dead one's last count."""
        for slot in range(self._cells[self._used]):
            if self._cells[2 * slot] == pid:
                self._cells[2 * slot] = FREE

    def publish(self, slot: int, connections: int) -> None:
        # One aligned 8-byte store: a reader sees the old count or the new, never a mix.
        self._cells[2 * slot + 1] = connections

    def fewest_elsewhere(self, slot: int) -> int | None:
        """The fewest connections any other live worker holds; None if there is none."""
        fewest = None
        for other in range(self._cells[self._used]):
            pid = self._cells[2 * other]
            if other == slot or pid == FREE:
                continue
            count = self._cells[2 * other + 1]
            if (fewest is None or count < fewest) and _alive(pid):
                fewest = count
        return fewest


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or someone else's pid now
        return False
    return True
