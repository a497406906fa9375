"""CPU time that servers' process trees spend on a measured run, read from Linux /proc.

On a machine whose cores other work keeps busy, a server's throughput follows the CPU each
request costs it (all of its processes: workers, database backends, Redis), not the
request's wall time, which is mostly waiting for a core. tools/bench_small.py prints this
per request beside InfluxDB's and the framework ceiling's, so that a change is judged by the
figure that moves the rate: an in-process profile of the app alone missed most of it (the
PostgreSQL backend's share, gunicorn's share, and the app's own code run on cold caches).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """pid and its descendants now (processes that ended meanwhile are left out)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in _listdir(f"/proc/{current}/task"):
            try:
                todo += map(int, Path(f"/proc/{current}/task/{task}/children").read_text()
                            .split())
            except OSError:
                continue
    return found


def cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """Each process's user plus system CPU seconds so far (its own, not its children's:
    each child is listed by itself); processes that ended are left out."""
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime
    return used


def thread_cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """As cpu_seconds, to the nanosecond (the scheduler's run time of each live thread,
    /proc/<pid>/task/*/schedstat): a few requests' worth is measurable, where clock ticks
    are 10 ms. Threads that ended are left out, so only for processes whose threads live
    on (gunicorn's thread pool, PostgreSQL backends, influxd's Go threads)."""
    used = {}
    for pid in pids:
        total = 0
        for task in _listdir(f"/proc/{pid}/task"):
            try:
                total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
        if total:
            used[pid] = total / 1e9
    return used


def postmaster_pid(data_dir: Path) -> int:
    return int((Path(data_dir) / "postmaster.pid").read_text().split()[0])


class CpuMeter:
    """CPU seconds each named group of processes uses between start() and stop(); a group
    is a function giving its pids, asked at both ends. A process that starts meanwhile is
    counted whole; one that ends meanwhile is not counted at all (only lowering the
    figure): a gunicorn worker recycled mid-run, say."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]],
                 reader: Callable[[Iterable[int]], dict[int, float]] = cpu_seconds):
        self.groups = groups
        self._read = reader
        self._before: dict[str, dict[int, float]] = {}

    def start(self) -> None:
        self._before = {name: self._read(pids()) for name, pids in self.groups.items()}

    def stop(self) -> dict[str, float]:
        used = {}
        for name, pids in self.groups.items():
            before = self._before[name]
            now = self._read(set(before) | set(pids()))
            used[name] = sum(seconds - before.get(pid, 0.0) for pid, seconds in now.items())
        return used


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []
