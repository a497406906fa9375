"""A real gunicorn, started as gunicorn.conf.py configures it, on a free 127.0.0.1 port."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from helpers import OPEN_ACCESS
from services import HOST, _die_with_parent, free_port

ROOT = Path(__file__).resolve().parent.parent


class GunicornServer:
    """`gunicorn -c gunicorn.conf.py wsgi:app` against the given database; stderr to a file.
    Runs with OPEN_ACCESS unless `env` says otherwise."""

    def __init__(self, database_url: str, redis_url: str, workdir: Path, *, workers: int = 2,
                 **env: str):
        self.port = free_port()
        self.log_path = workdir / f"gunicorn-{self.port}.log"
        self.env = {
            **os.environ,
            **OPEN_ACCESS,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "GUNICORN_BIND": f"{HOST}:{self.port}",
            "GUNICORN_WORKERS": str(workers),
            "PROMETHEUS_MULTIPROC_DIR": str(workdir / f"prometheus-{self.port}"),
            **env,
        }
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> GunicornServer:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(gunicorn), "-c", "gunicorn.conf.py", "wsgi:app"], cwd=ROOT, env=self.env,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent)  # never outlives a killed test run
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited at start:\n{self.log()}")
            try:
                status, _, _ = self.request("GET", "/health", timeout=2)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer within {timeout} s:\n{self.log()}")

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 60.0):
        """(status, headers, body) of one request on a new connection."""
        return request_once(self.port, method, path, body, headers, timeout)

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(p) for p in children.read_text().split()]

    def rss_mb(self) -> dict[int, float]:
        """Each worker's resident memory now, in MB."""
        return {pid: _status_kb(pid, "VmRSS") / 1024 for pid in self.worker_pids()}

    def peak_growth_mb(self, before: dict[int, float]) -> float:
        """The largest growth of any worker's peak RSS (VmHWM) over `before` (from rss_mb,
        taken after reset_peaks)."""
        peaks = {pid: _status_kb(pid, "VmHWM") / 1024 for pid in self.worker_pids()}
        return max(peaks[pid] - before.get(pid, peaks[pid]) for pid in peaks)

    def reset_peaks(self) -> dict[int, float]:
        """Reset every worker's VmHWM to its current RSS; returns rss_mb()."""
        for pid in self.worker_pids():
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        return self.rss_mb()

    def raw_exchange(self, data: bytes, *, close_write: bool = True,
                     timeout: float = 60.0) -> bytes:
        """Send bytes as they are on a new connection, optionally half-close it (the body
        ends there), and return everything the server answers until it closes."""
        with socket.create_connection((HOST, self.port), timeout=timeout) as sock:
            sock.sendall(data)
            if close_write:
                sock.shutdown(socket.SHUT_WR)
            received = bytearray()
            while chunk := sock.recv(65536):
                received += chunk
            return bytes(received)

    def signal(self, signum: int, pid: int | None = None) -> None:
        os.kill(pid or self.process.pid, signum)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 60.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def __enter__(self) -> GunicornServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def request_once(port: int, method: str, path: str, body: bytes | None = None,
                 headers: dict[str, str] | None = None, timeout: float = 60.0):
    """(status, headers, body) of one request to 127.0.0.1:port on a new connection."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()
