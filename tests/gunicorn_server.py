"""A real gunicorn, started as gunicorn.conf.py configures it, on a free 127.0.0.1 port."""

from __future__ import annotations

import http.client
import os
import signal
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
        conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(p) for p in children.read_text().split()]

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
