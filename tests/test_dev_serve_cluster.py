"""`tools/dev up` serves through serve_cluster (tools/dev.d/20-services.sh): when one of its
servers exits, it stops the others and fails, naming it. A node whose port was taken exited
at start and `up` exited 0 as if it had served.

Run on free ports of the test's own, against the test's database, with its own LOCAL
directory (the function removes node pid files there): never the dev services' ports.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import OPEN_ACCESS
from services import HOST, _make_traversable

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.executable).parent.parent
NGINX = Path("/usr/sbin/nginx")


def _port_pair() -> tuple[int, socket.socket]:
    """A free port p for nginx, and a socket holding p + 1, the first node's port."""
    for _ in range(100):
        holder = socket.socket()
        holder.bind((HOST, 0))
        port = holder.getsockname()[1] - 1
        with socket.socket() as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                holder.close()
                continue
        holder.listen()
        return port, holder
    raise RuntimeError("no pair of free ports")


def _serve_cluster(local: Path, port: int, database_url: str, redis_url: str):
    script = (f'set -euo pipefail; ROOT={ROOT}; cd "$ROOT"; '
              'source tools/dev.d/00-common.sh; source tools/dev.d/20-services.sh; '
              f'LOCAL={local}; VENV={VENV}; serve_cluster 1')
    env = {**os.environ, **OPEN_ACCESS, "PORT": str(port), "DATABASE_URL": database_url,
           "REDIS_URL": redis_url}
    return subprocess.Popen(["bash", "-c", script], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)


@pytest.fixture
def local(tmp_path):
    if not NGINX.exists():
        pytest.skip("nginx is not installed (tools/dev test installs it)")
    if os.geteuid() == 0:
        _make_traversable(tmp_path)  # nginx's workers run as nobody
    return tmp_path


def test_a_node_that_cannot_bind_its_port_fails_the_cluster(local, empty_gunicorn_database,
                                                              redis_server):
    port, holder = _port_pair()
    with holder:
        cluster = _serve_cluster(local, port, empty_gunicorn_database, redis_server.url())
        try:
            output, _ = cluster.communicate(timeout=120)
        finally:
            if cluster.poll() is None:
                os.killpg(cluster.pid, signal.SIGKILL)
    text = output.decode(errors="replace")
    assert cluster.returncode != 0, text
    assert f"gunicorn node 1 (127.0.0.1:{port + 1}) exited" in text, text


def test_an_interrupted_cluster_stops_and_exits_0(local, empty_gunicorn_database, redis_server):
    port, holder = _port_pair()
    holder.close()
    cluster = _serve_cluster(local, port, empty_gunicorn_database, redis_server.url())
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection((HOST, port + 1), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("the node did not listen")
        os.killpg(cluster.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
        output, _ = cluster.communicate(timeout=60)
    finally:
        if cluster.poll() is None:
            os.killpg(cluster.pid, signal.SIGKILL)
    assert cluster.returncode == 0, output.decode(errors="replace")
