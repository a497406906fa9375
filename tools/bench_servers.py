"""The servers and HTTP clients of tools/bench_small.py: tsapi under gunicorn (this tree or a
git revision), a minimal Flask app (the framework's ceiling), InfluxDB 1.x, and the bare
commit (the database's floor)."""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import orjson
import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

import bench_ingest as bi  # noqa: E402
from services import free_port  # noqa: E402

HIGH_LIMIT = "10000000/minute"  # on, counted in Redis, never reached


# -- servers ------------------------------------------------------------------------------
class App:
    """gunicorn serving `module` (wsgi:app) from `app_dir` with `conf_dir`'s gunicorn.conf.py
    (by default that tree's own)."""

    def __init__(self, label: str, app_dir: Path, database_url: str, redis_url: str, *,
                 auth: bool = True, limits: bool = True, workers: int | None = None,
                 worker_class: str | None = "sync", threads: int = 1, module: str = "wsgi:app",
                 conf_dir: Path | None = None, bin_dir: Path | None = None,
                 reuse_port: bool = False, tree: Path | None = None,
                 settings: dict[str, str] | None = None):
        self.label = label
        self.url = database_url
        self.port = free_port()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("TSAPI_", "GUNICORN_", "PROMETHEUS_"))}
        env.update({
            "DATABASE_URL": database_url, "REDIS_URL": redis_url,
            "TSAPI_AUTH": "required" if auth else "off",
            "TSAPI_RATE_LIMITS": "on" if limits else "off",
            "TSAPI_RATE_LIMIT_WRITE": HIGH_LIMIT, "TSAPI_RATE_LIMIT_READ": HIGH_LIMIT,
            "TSAPI_RATE_LIMIT_ADMIN": HIGH_LIMIT,
            "GUNICORN_LOG_LEVEL": "warning",
            # The module's directory, then the tree whose tsapi it runs with (its worker class
            # and logger): not whichever tsapi the virtualenv has installed.
            "PYTHONPATH": os.pathsep.join(str(p) for p in (app_dir, tree) if p),
        })
        if worker_class:  # None: the worker model of that tree's gunicorn.conf.py
            env.update({"GUNICORN_WORKER_CLASS": worker_class, "GUNICORN_THREADS": str(threads)})
        if workers:
            env["GUNICORN_WORKERS"] = str(workers)
        if reuse_port:
            env["GUNICORN_REUSE_PORT"] = "on"
        env.update(settings or {})
        self.workers = workers or os.cpu_count() or 1
        gunicorn = (bin_dir or Path(sys.executable).parent) / "gunicorn"
        # Logs go to a file, not a terminal whose speed would be measured; shown on failure.
        self.log = Path(tempfile.mkstemp(prefix="bench-" + re.sub(r"\W", "-", label) + "-",
                                         suffix=".log")[1])
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [str(gunicorn), module, "-c", str((conf_dir or app_dir) / "gunicorn.conf.py"),
                 "--chdir", str(app_dir), "--bind", f"127.0.0.1:{self.port}"],
                cwd=app_dir, env=env, stderr=log,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if get(self.port, "/health") == 200 and len(self._children()) >= self.workers:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn ({label}) did not come up")

    def _children(self) -> list[str]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return path.read_text().split() if path.exists() else []

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)

    def errors(self) -> str:
        """The server log's lines that are not access lines (tracebacks, warnings)."""
        lines = self.log.read_text(errors="replace").splitlines()
        return "\n".join(line for line in lines if '"tsapi.access"' not in line)[-3000:]


class Influx:
    """InfluxDB 1.x on a free loopback port, its data in a private directory."""

    def __init__(self, base: Path):
        binary = shutil.which("influxd")
        if binary is None:
            raise RuntimeError("influxd not found (Debian package `influxdb`)")
        self.dir = Path(tempfile.mkdtemp(prefix="influx-", dir=base))
        self.port, rpc = free_port(), free_port()
        conf = self.dir / "influxdb.conf"
        conf.write_text(
            f'reporting-disabled = true\nbind-address = "127.0.0.1:{rpc}"\n'
            f'[meta]\n  dir = "{self.dir}/meta"\n'
            f'[data]\n  dir = "{self.dir}/data"\n  wal-dir = "{self.dir}/wal"\n'
            f'  query-log-enabled = false\n'
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            f'[monitor]\n  store-enabled = false\n'
        )
        self.proc = subprocess.Popen([binary, "-config", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if get(self.port, "/ping") == 204:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError("influxd did not come up")
        status = post(self.port, "/query?q=CREATE+DATABASE+bench", b"", {})[0]
        assert status == 200, f"influx CREATE DATABASE: {status}"
        self.version = subprocess.run([binary, "version"], capture_output=True,
                                      text=True).stdout.strip()

    def count(self) -> int:
        status, body = post(self.port, "/query?db=bench&q=SELECT+count(*)+FROM+tsapi", b"", {})
        series = orjson.loads(body)["results"][0].get("series")
        if not series:
            return 0
        return sum(v for v in series[0]["values"][0][1:] if v)

    def drop(self) -> None:
        post(self.port, "/query?q=DROP+DATABASE+bench", b"", {})
        post(self.port, "/query?q=CREATE+DATABASE+bench", b"", {})

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


def print_server_errors(apps: list[App]) -> None:
    """After a failed run: what each server logged besides its access lines."""
    for a in apps:
        if a.errors().strip():
            print(f"--- {a.label} server log (not access lines):\n{a.errors()}")


def stop_servers(apps: list[App]) -> None:
    for a in apps:
        a.stop()
        a.log.unlink(missing_ok=True)


def get(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def post(port: int, path: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def checkout(rev: str, base: Path) -> Path:
    """The files of a git revision (e.g. main) in a fresh directory, to serve side by side."""
    target = Path(tempfile.mkdtemp(prefix="baseline-", dir=base))
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def tree_venv(tree: Path) -> Path:
    """The bin directory of a virtualenv with the dependencies `tree` declares (an older
    revision may need packages this tree dropped), made once per pyproject.toml and kept
    under .local/bench-venvs."""
    digest = hashlib.sha256((tree / "pyproject.toml").read_bytes()).hexdigest()[:16]
    venv = ROOT / ".local" / "bench-venvs" / digest
    if not (venv / "bin" / "gunicorn").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(tree)], check=True)
    return venv / "bin"


# -- clients ------------------------------------------------------------------------------
def auth_headers(token: str | None, content_type: str = "application/json") -> dict:
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


class Client:
    """One keep-alive connection (reopened when the server closes it), timing each request."""

    def __init__(self, port: int, headers: dict):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = headers

    def send(self, method: str, path: str, body: bytes | None, ok: int,
             headers: dict | None = None) -> float:
        start = time.perf_counter()
        self.conn.request(method, path, body=body, headers=headers or self.headers)
        response = self.conn.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - start
        if response.status != ok:
            raise RuntimeError(f"{method} {path}: {response.status} {payload[:300]!r}")
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
        return elapsed


def make_key(url: str, token: str | None = None) -> str:
    """An admin key; with `token`, the same token stored in another database."""
    from sqlalchemy import create_engine, text

    from tsapi.store.keys import TOKEN_PREFIX, create_key, token_hash

    engine = create_engine(url)
    with engine.begin() as conn:
        if token is None:
            _, token = create_key(conn, f"bench-{os.getpid()}-{time.time_ns()}",
                                  {"admin", "read", "write"})
        else:
            prefix = token[len(TOKEN_PREFIX):].partition("_")[0]
            conn.execute(text("INSERT INTO api_keys (name, prefix, token_hash, scopes) "
                              "VALUES ('bench', :p, :h, ARRAY['admin','read','write'])"),
                         {"p": prefix, "h": token_hash(token)})
    engine.dispose()
    return token


def migrated_database(admin_url: str, name: str, tree: Path,
                      bin_dir: Path | None = None) -> str:
    """A fresh database migrated by the code in `tree` (its own migrations)."""
    conn = psycopg2.connect(bi.dsn(admin_url))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    url = bi.sqlalchemy_url(admin_url, name)
    tsapi = (bin_dir or Path(sys.executable).parent) / "tsapi"
    subprocess.run([str(tsapi), "db", "upgrade"], check=True,
                   env={**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(tree)}, cwd=tree,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return url




# -- floors and ceilings ------------------------------------------------------------------
def framework_ceiling(label: str, **kind) -> App:
    """tools/bench_floor_app.py (one view: read the body, answer 204) under gunicorn with
    tsapi's gunicorn.conf.py and the same worker settings: no Flask service can do more."""
    return App(label, ROOT / "tools", "", "", module="bench_floor_app:app", conf_dir=ROOT,
               tree=ROOT, **kind)


class CommitFloor:
    """A bare one-row INSERT and COMMIT over one psycopg2 connection kept open (as tsapi's
    pool keeps its own), on the benchmark's durable PostgreSQL: a durable 1-point write
    cannot be acknowledged faster than this."""

    def __init__(self, url: str):
        self.conn = psycopg2.connect(bi.dsn(url))
        with self.conn.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS bench_commit_floor "
                        "(time timestamptz NOT NULL, value float8)")
        self.conn.commit()

    def send(self) -> float:
        start = time.perf_counter()
        with self.conn.cursor() as cur:
            cur.execute("INSERT INTO bench_commit_floor VALUES (now(), %s)", (1.0,))
        self.conn.commit()
        return time.perf_counter() - start

    def close(self) -> None:
        self.conn.close()


def set_commit_delay(admin_url: str, microseconds: int | None,
                     siblings: int = 2) -> None:
    """Group commit on (commit_delay > 0) or off, server-wide, for the next statements; None
    restores the configured setting. Durable either way: a commit still waits for its flush,
    it only waits a little for others to share it."""
    conn = psycopg2.connect(bi.dsn(admin_url))
    conn.autocommit = True
    with conn.cursor() as cur:
        if microseconds is None:
            cur.execute("ALTER SYSTEM RESET commit_delay")
            cur.execute("ALTER SYSTEM RESET commit_siblings")
        else:
            cur.execute("ALTER SYSTEM SET commit_delay = %s", (microseconds,))
            cur.execute("ALTER SYSTEM SET commit_siblings = %s", (siblings,))
        cur.execute("SELECT pg_reload_conf()")
    conn.close()
    time.sleep(0.3)  # backends read the new value when they next go idle
