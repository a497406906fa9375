"""Private PostgreSQL (+TimescaleDB) and Redis instances for the test session.

Standard library only. Each server gets its own directory and a free port on
127.0.0.1; stop() really stops the process (connections are refused afterwards)
and restart() brings it back on the same port with its data intact, which is
what the fault-injection tests need.

When running as root, PostgreSQL's initdb/pg_ctl are run as the ``postgres``
user (they refuse to run as root) and the data directory is owned by it.
Every started server is registered for cleanup at interpreter exit and on
SIGTERM/SIGHUP, so an interrupted pytest run leaves no processes behind; even
after SIGKILL, Redis gets SIGTERM from the kernel (PR_SET_PDEATHSIG) and
PostgreSQL is shut down by a small watchdog process.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["InfluxServer", "PostgresServer", "RedisServer", "ServiceError", "free_port",
           "find_pg_bindir"]

HOST = "127.0.0.1"


class ServiceError(RuntimeError):
    """A test service could not be started or stopped."""


# --------------------------------------------------------------------------- ports

_ports_handed_out: set[int] = set()


def free_port(host: str = HOST) -> int:
    """Return a TCP port that is currently free on ``host``.

    Never returns the same port twice in one process, so two servers started
    back to back cannot be given the same port before either has bound it.
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port not in _ports_handed_out:
            _ports_handed_out.add(port)
            return port
    raise ServiceError("could not find a free port")


# ------------------------------------------------------------- exit-time cleanup

_live: dict[int, _Service] = {}
_live_lock = threading.Lock()
_owner_pid = os.getpid()
_handlers_installed = False


def _cleanup_all() -> None:
    # Forked children (gunicorn workers, multiprocessing) inherit atexit hooks and
    # signal handlers; only the process that started the servers may stop them.
    if os.getpid() != _owner_pid:
        return
    with _live_lock:
        services = list(_live.values())
    for service in services:
        with contextlib.suppress(Exception):  # best effort: clean up the others anyway
            service.cleanup(fast=True)


def _on_signal(signum: int, frame: object) -> None:
    _cleanup_all()
    # Then die of the same signal, as if we had not intercepted it.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _register(service: _Service) -> None:
    global _handlers_installed
    with _live_lock:
        _live[id(service)] = service
        if _handlers_installed:
            return
        _handlers_installed = True
    atexit.register(_cleanup_all)
    # KeyboardInterrupt already unwinds to atexit; SIGTERM/SIGHUP would not.
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(signum) is signal.SIG_DFL:
                signal.signal(signum, _on_signal)


def _unregister(service: _Service) -> None:
    with _live_lock:
        _live.pop(id(service), None)


# ---------------------------------------------------------------------- helpers


def _prepare_base_dir(base_dir: Path | None, prefix: str) -> Path:
    """Create this server's own directory (inside ``base_dir`` if given)."""
    if base_dir is not None:
        base_dir = Path(base_dir)
        base_dir.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base_dir)).resolve()
    # mkdtemp makes 0700 dirs; the postgres user must be able to enter it.
    path.chmod(0o755)
    return path


def _make_traversable(path: Path) -> None:
    """Give "others" search permission on ``path`` and its ancestors where missing.

    Needed when root runs the tests: the postgres user must reach the data
    directory, e.g. through /tmp/pytest-of-root (0700).
    """
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & 0o001:
            directory.chmod(mode | 0o001)


def _die_with_parent() -> None:
    """preexec_fn: make the child get SIGTERM if the test process dies (even SIGKILL)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _clean_env() -> dict[str, str]:
    # PG* variables (PGDATA, PGPORT, PGHOST, ...) must not redirect our tools.
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def find_pg_bindir() -> Path:
    """Directory with initdb/pg_ctl/psql: ``pg_config --bindir``.

    ``$TSAPI_PG_CONFIG`` overrides pg_config. If pg_config belongs to a client-only
    installation (no server binaries, e.g. libpq-dev), fall back to the newest
    Debian server under /usr/lib/postgresql/NN/bin.
    """
    pg_config = os.environ.get("TSAPI_PG_CONFIG") or shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            out = ""
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    candidates = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    if candidates:
        return max(candidates, key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0))
    raise ServiceError("PostgreSQL server binaries not found (no pg_config with initdb)")


# pg_ctl daemonizes the postmaster, so it would outlive a test process killed with
# SIGKILL (atexit never runs), and so would the server directories. This tiny
# watchdog holds the read end of a pipe whose write end only the test process has:
# once that process is gone, for whatever reason, the read returns EOF and the
# watchdog stops the postmaster (SIGQUIT = immediate shutdown) named by the given
# postmaster.pid, if any, and deletes the directory. After a normal cleanup() there
# is nothing left to do and it just exits.
_WATCHDOG = r"""
import os, shutil, signal, sys, time
fd, top, pidfile = int(sys.argv[1]), sys.argv[2], sys.argv[3]
while os.read(fd, 64):
    pass
try:
    with open(pidfile) as f:
        pid, data_dir = int(f.readline()), f.readline().strip()
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        ours = data_dir.encode() in f.read()
    if ours:
        os.kill(pid, signal.SIGQUIT)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)
except (OSError, ValueError):
    pass
shutil.rmtree(top, ignore_errors=True)
"""


class _Service:
    """Common lifecycle: start/stop/restart/cleanup plus context-manager support."""

    name = "service"
    port: int
    dir: Path
    _watchdog: subprocess.Popen | None = None
    _watchdog_fd: int | None = None

    def _guard(self, postmaster_pid: Path | None = None) -> None:
        """Register for exit-time cleanup and start the watchdog (see _WATCHDOG)."""
        _register(self)
        read_fd, self._watchdog_fd = os.pipe()
        self._watchdog = subprocess.Popen(
            [
                sys.executable,
                "-I",  # isolated, no site: starts fast, ignores PYTHON* variables
                "-S",
                "-c",
                _WATCHDOG,
                str(read_fd),
                str(self.dir),
                str(postmaster_pid or ""),
            ],
            pass_fds=(read_fd,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # not hit by the terminal's Ctrl-C
        )
        os.close(read_fd)

    def _release_watchdog(self) -> None:
        if self._watchdog_fd is not None:
            os.close(self._watchdog_fd)  # EOF: it finds nothing left and exits
            self._watchdog_fd = None
        if self._watchdog is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._watchdog.wait(timeout=10)
            self._watchdog = None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self, mode: str = "fast") -> None:
        raise NotImplementedError

    def is_running(self) -> bool:
        raise NotImplementedError

    def restart(self) -> None:
        """Stop (if running) and start again on the same port; data is kept."""
        if self.is_running():
            self.stop()
        self.start()

    def cleanup(self, fast: bool = False) -> None:
        """Stop the server and delete its directory."""
        try:
            if self.is_running():
                self.stop(mode="immediate" if fast else "fast")
        finally:
            _unregister(self)
            shutil.rmtree(self.dir, ignore_errors=True)
            self._release_watchdog()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"<{type(self).__name__} {HOST}:{self.port} {state} dir={self.dir}>"


# ------------------------------------------------------------------- PostgreSQL


class PostgresServer(_Service):
    """A throw-away PostgreSQL cluster tuned for tests (no fsync, trust auth)."""

    name = "postgres"

    def __init__(
        self,
        base_dir: Path | None = None,
        preload_timescaledb: bool = True,
        extra_conf: dict[str, str | int] | None = None,
    ) -> None:
        self.bindir = find_pg_bindir()
        self.preload_timescaledb = preload_timescaledb
        self.extra_conf = dict(extra_conf or {})
        self._as_root = os.geteuid() == 0
        if self._as_root:
            try:
                self._pg_user = pwd.getpwnam("postgres")
            except KeyError:
                raise ServiceError("running as root but there is no 'postgres' user") from None

        self.port = free_port()
        self.dir = _prepare_base_dir(base_dir, "postgres-")
        self.data_dir = self.dir / "data"
        self.run_dir = self.dir / "run"  # unix socket + server log
        self.log_file = self.run_dir / "postgres.log"
        self._initialized = False
        if self._as_root:
            _make_traversable(self.dir)
        self._guard(postmaster_pid=self.data_dir / "postmaster.pid")

    # -- running commands as the cluster owner

    def _run(self, *args: str | os.PathLike, check: bool = True) -> subprocess.CompletedProcess:
        kwargs: dict = {}
        if self._as_root:
            user = self._pg_user
            kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        cmd = [str(a) for a in args]
        proc = subprocess.run(
            cmd, cwd=self.dir, env=_clean_env(), capture_output=True, text=True, **kwargs
        )
        if check and proc.returncode != 0:
            raise ServiceError(
                f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
                f"{self._log_tail()}"
            )
        return proc

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_file.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "\n--- postgres log ---\n" + "\n".join(text)

    def _mkdir_owned(self, path: Path, mode: int) -> None:
        path.mkdir(mode=mode, exist_ok=True)
        path.chmod(mode)
        if self._as_root:
            os.chown(path, self._pg_user.pw_uid, self._pg_user.pw_gid)

    # -- lifecycle

    def _initdb(self) -> None:
        if self.preload_timescaledb:
            sharedir = Path(
                subprocess.run(
                    [str(self.bindir / "pg_config"), "--sharedir"],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.strip()
            )
            if not (sharedir / "extension" / "timescaledb.control").exists():
                raise ServiceError(
                    f"TimescaleDB is not installed for {self.bindir}; run tools/dev test "
                    "(it builds it) or use PostgresServer(preload_timescaledb=False)"
                )
        self._mkdir_owned(self.data_dir, 0o700)
        self._mkdir_owned(self.run_dir, 0o755)
        self._run(
            self.bindir / "initdb", "-D", self.data_dir, "-U", "postgres", "--auth=trust",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        self._write_conf()
        self._initialized = True

    def _write_conf(self) -> None:
        conf = {
            "listen_addresses": f"'{HOST}'",
            "port": self.port,
            "unix_socket_directories": f"'{self.run_dir}'",
            "max_connections": 100,
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        if self.preload_timescaledb:
            conf["shared_preload_libraries"] = "'timescaledb'"
            conf["timescaledb.telemetry_level"] = "off"
        conf.update(self.extra_conf)
        # Own file, included last: re-written when the port has to change.
        (self.data_dir / "tests.conf").write_text(
            "".join(f"{key} = {value}\n" for key, value in conf.items())
        )
        postgresql_conf = self.data_dir / "postgresql.conf"
        include = "include = 'tests.conf'\n"
        if include not in postgresql_conf.read_text():
            with postgresql_conf.open("a") as f:
                f.write(include)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        if self.is_running():
            return
        if not self._initialized:
            self._initdb()
        for attempt in range(3):
            proc = self._run(
                self.bindir / "pg_ctl", "-D", self.data_dir, "-l", self.log_file,
                "-w", "-t", "60", "-s", "start",
                check=False,
            )  # fmt: skip
            if proc.returncode == 0:
                return
            # Another process grabbed the port between free_port() and bind: pick
            # a new one, but only before anyone could have learned the old one.
            if attempt < 2 and not self._ever_started and "could not bind" in self._log_tail():
                self.port = free_port()
                self._write_conf()
                continue
            raise ServiceError(f"PostgreSQL did not start:\n{proc.stderr}{self._log_tail()}")

    @property
    def _ever_started(self) -> bool:
        # The server log only contains "ready to accept connections" after a start.
        try:
            return "ready to accept connections" in self.log_file.read_text(errors="replace")
        except OSError:
            return False

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (mode: smart, fast or immediate) and wait until it is gone."""
        if not self.is_running():
            return
        self._run(self.bindir / "pg_ctl", "-D", self.data_dir, "-m", mode, "-w", "-t", "60",
                  "-s", "stop")  # fmt: skip

    def is_running(self) -> bool:
        if not self._initialized:
            return False
        return self._run(self.bindir / "pg_ctl", "-D", self.data_dir, "status",
                         check=False).returncode == 0  # fmt: skip

    # -- access

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL for ``dbname``."""
        return f"postgresql+psycopg2://postgres@{HOST}:{self.port}/{dbname}"

    def dsn(self, dbname: str = "postgres") -> str:
        """libpq connection string for ``dbname`` (for psycopg2.connect)."""
        return f"host={HOST} port={self.port} user=postgres dbname={dbname}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL through psql (over TCP, as the current user); return its output."""
        proc = subprocess.run(
            [str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", HOST, "-p", str(self.port), "-U", "postgres", "-d", dbname, "-c", sql],
            capture_output=True, text=True, env=_clean_env(),
        )  # fmt: skip
        if proc.returncode != 0:
            raise ServiceError(f"psql failed: {proc.stderr.strip()}")
        return proc.stdout

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create database ``name``; return its SQLAlchemy URL."""
        sql = f"CREATE DATABASE {_quote_ident(name)}"
        if template:
            sql += f" TEMPLATE {_quote_ident(template)}"
        self.psql(sql)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.psql(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ------------------------------------------------------------------------ Redis


class _ProcessService(_Service):
    """A server that is one child process of ours: stopped by a signal, not a control tool."""

    _proc: subprocess.Popen | None = None

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``mode="immediate"`` kills it (SIGKILL) instead of SIGTERM."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        if mode == "immediate":
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None


class RedisServer(_ProcessService):
    """A throw-away redis-server without persistence, run as a child process."""

    name = "redis"

    def __init__(self, base_dir: Path | None = None) -> None:
        binary = shutil.which("redis-server")
        if not binary:
            raise ServiceError("redis-server not found on PATH")
        self.binary = binary
        self.port = free_port()
        self.dir = _prepare_base_dir(base_dir, "redis-")
        self.log_file = self.dir / "redis.log"
        self._proc: subprocess.Popen | None = None
        self._ever_started = False
        self._guard()

    def start(self) -> None:
        """Start redis-server and wait until it answers PING."""
        if self.is_running():
            return
        for attempt in range(3):
            with self.log_file.open("ab") as log:
                self._proc = subprocess.Popen(
                    [self.binary, "--port", str(self.port), "--bind", HOST,
                     "--save", "", "--appendonly", "no", "--dir", str(self.dir),
                     "--daemonize", "no"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    cwd=self.dir,
                    start_new_session=True,  # Ctrl-C in the terminal must not kill it mid-test
                    preexec_fn=_die_with_parent,
                )  # fmt: skip
            if self._wait_ready(timeout=10):
                self._ever_started = True
                return
            self._kill()
            if attempt < 2 and not self._ever_started:
                self.port = free_port()  # port was taken; no one knows this one yet
                continue
            raise ServiceError(f"redis-server did not start:\n{self._log_tail()}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return False
            if self.ping():
                return True
            time.sleep(0.02)
        return False

    def ping(self) -> bool:
        """True if the server answers PING."""
        try:
            with socket.create_connection((HOST, self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def url(self, db: int = 0) -> str:
        return f"redis://{HOST}:{self.port}/{db}"


class StandbyServer(PostgresServer):
    """A hot standby of `primary`, streaming from it: pg_basebackup -R, as tools/dev does.

    Read-only; stop() and start() keep its data, and on start it catches up from the primary.
    """

    name = "standby"

    def __init__(self, primary: PostgresServer, base_dir: Path | None = None) -> None:
        self.primary = primary
        super().__init__(base_dir, preload_timescaledb=primary.preload_timescaledb,
                         extra_conf={"hot_standby": "on", **primary.extra_conf})

    def _initdb(self) -> None:
        self._mkdir_owned(self.data_dir, 0o700)
        self._mkdir_owned(self.run_dir, 0o755)
        # -R writes primary_conninfo and standby.signal; -X stream copies the WAL needed to
        # start consistent. The primary's tests.conf comes along and is rewritten below.
        self._run(
            self.bindir / "pg_basebackup", "-h", HOST, "-p", str(self.primary.port),
            "-U", "postgres", "-D", self.data_dir, "-R", "-X", "stream", "-c", "fast",
            "--no-sync",
        )  # fmt: skip
        self._write_conf()
        self._initialized = True

    def replay_lsn(self, dbname: str = "postgres") -> str:
        return self.psql("SELECT pg_last_wal_replay_lsn()", dbname).strip()


class InfluxServer(_ProcessService):
    """A throw-away InfluxDB 1.x (Debian's influxd): the oracle of the InfluxQL tests.

    Its own config, data, WAL and meta directories; HTTP and RPC on free loopback ports;
    no self-monitoring database, no usage reporting.
    """

    name = "influxdb"

    def __init__(self, base_dir: Path | None = None) -> None:
        binary = shutil.which("influxd")
        if not binary:
            raise ServiceError("influxd not found (Debian package influxdb; tools/dev test "
                               "installs it)")
        self.binary = binary
        self.port = free_port()
        self.rpc_port = free_port()
        self.dir = _prepare_base_dir(base_dir, "influxdb-")
        self.log_file = self.dir / "influxd.log"
        self._proc: subprocess.Popen | None = None
        self._guard()

    def _config(self) -> Path:
        path = self.dir / "influxdb.conf"
        path.write_text(
            "reporting-disabled = true\n"
            f'bind-address = "{HOST}:{self.rpc_port}"\n'
            f'[meta]\n  dir = "{self.dir}/meta"\n  logging-enabled = false\n'
            f'[data]\n  dir = "{self.dir}/data"\n  wal-dir = "{self.dir}/wal"\n'
            "  query-log-enabled = false\n"
            "[monitor]\n  store-enabled = false\n"
            f'[http]\n  bind-address = "{HOST}:{self.port}"\n  log-enabled = false\n'
            "[continuous_queries]\n  enabled = false\n"
            "[logging]\n  level = \"warn\"\n"
        )
        return path

    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        """Start influxd and wait until /ping answers."""
        if self.is_running():
            return
        config = self._config()
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                [self.binary, "-config", str(config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.dir, start_new_session=True, preexec_fn=_die_with_parent,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            if self.ping():
                return
            time.sleep(0.05)
        self.stop(mode="immediate")
        tail = self.log_file.read_text(errors="replace")[-2000:]
        raise ServiceError(f"influxd did not start:\n{tail}")

    def ping(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1) as sock:
                sock.sendall(b"GET /ping HTTP/1.0\r\n\r\n")
                return b" 204 " in sock.recv(64)
        except OSError:
            return False

