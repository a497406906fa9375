"""gunicorn settings for production; each can be overridden by the environment.

Worker model: gthread, two processes per core with 2 threads each. Small requests mostly wait:
on the commit's WAL flush (acknowledged means durable), on Redis, on the client; a waiting
thread releases the GIL, and commits from several threads share one flush. Measured with
tools/bench_small.py on a 2-core machine shared with other work (load average 5-9), same code,
auth and rate limits on, durable PostgreSQL, runs alternated (sync / gthread):
  mixed traffic (4 clients cycling 1-point write, 50-point write, cached query, metrics):
    sync 169 and 177 requests/s, gthread 182, 187 and 210 requests/s;
  a fleet of 2,000 devices x 7 points every 10 s for 60 s (12,000 requests): sync fell
    behind (2,548 and 4,515 requests still unsent 30 s after the end), gthread kept the
    schedule (all sent, 0 errors, done in 60.4-66.6 s), though p99 latency was 0.51-0.75 s
    on this loaded machine;
  5,000-point batches from 2 clients, against the previous code in the same run: gthread
    0.99-1.45x, sync 1.11-1.19x: no loss.
Two processes per core with 2 threads, not one with 4: each process has one GIL, shared by
its threads' CPU work (HTTP parsing, JSON, SQLAlchemy), and a keep-alive connection stays
with the process that accepted it. (Sampled connection counts did not show clients piling
on one worker more often than not; the gain is measured, its cause not pinned down.) Same
tool, 50-point JSON batches, 1,500 rows of 7 points, runs alternated on the same machine
(load average 1.4-3.2), points/s, 2 workers x 4 threads then 4 x 2:
  2 clients: 15.2k/27.1k, 20.8k/26.5k, 12.4k/14.7k, 16.8k/26.8k, 24.0k/21.4k;
  4 clients: 15.4k/28.0k, 25.1k/28.7k, 11.8k/18.6k, 16.9k/27.9k, 24.2k/24.7k;
  1 client: 18.9k/18.4k, 16.5k/19.2k, 17.3k/11.8k, 16.5k/19.3k, 17.2k/14.7k (no change);
  1-point write p50 1.62/1.56 and 1.69/1.79 ms; fleet (2,000 devices, 30 s) all sent, 0
  errors, p99 10.3/11.5 and 17.2/17.5 ms (no change).
reuse_port (one listening socket per worker, spread by the kernel) gave no steady gain on
2 x 4 or 4 x 2 in the same runs, and the kernel's hash too can put two clients on one worker.
The worker keeps the read deadline of the sync worker it replaces (tsapi/api/worker.py).
"""

import glob
import multiprocessing
import os
import tempfile

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("GUNICORN_WORKERS", 2 * multiprocessing.cpu_count()))
# gunicorn's gthread worker, but each request must arrive within GUNICORN_REQUEST_READ_TIMEOUT
# seconds of its connection (request line, headers and body together) and each send of the
# response must finish within as long: idle or trickling clients cannot hold the workers
# (tsapi/api/worker.py). Behind nginx (which buffers whole requests by default) this is a
# second line of defence; nginx's client_header_timeout/client_body_timeout bound the
# client, and nginx sends the buffered body to gunicorn at local speed.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "tsapi.api.worker.DeadlineThreadWorker")
os.environ["GUNICORN_REQUEST_READ_TIMEOUT"] = os.environ.get("GUNICORN_REQUEST_READ_TIMEOUT",
                                                             "30")
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
# SO_REUSEPORT: each worker binds its own listening socket and the kernel spreads new
# connections across them. Off: no measured gain (above), and a recycled worker's closing
# socket drops the connections still queued on it.
reuse_port = os.environ.get("GUNICORN_REUSE_PORT", "").lower() in ("1", "true", "yes", "on")
# A 100,000-point batch takes about a second; leave room for slow disks.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
# On SIGTERM a worker finishes its current request (a batch commits whole or not at all).
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "60"))
keepalive = 5
# Recycle workers now and then, so a slow leak can never grow without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "20000"))
max_requests_jitter = 2000
# Logs are one JSON object per line on stderr (tsapi/api/logs.py). The app writes the access line
# itself, with the request id, route and duration that gunicorn cannot know; gunicorn's own
# access log would be a second line per request, so it is off unless GUNICORN_ACCESS_LOG is
# set (to anything, e.g. "-"; it then also goes to stderr, as JSON). gunicorn's error log
# (boot, worker exits, timeouts) goes through the same JSON formatter: every line parses.
# gunicorn 24+ opens a control socket at one fixed path per user: two servers on one host
# (e.g. the tests' servers) would fight over it, and nothing here uses it.
control_socket_disable = True
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "tsapi.api.logs.JsonFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                            "stream": "ext://sys.stderr"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": loglevel.upper(),
                           "propagate": False},
        "gunicorn.access": {"handlers": ["stderr"] if accesslog else [], "level": "INFO",
                            "propagate": False},
    },
}

# Prometheus metrics (GET /internal/metrics) must add up every worker, including workers
# already recycled by max_requests: prometheus_client's multiprocess mode keeps each process's
# values in files in this directory. Set here, before any worker imports the app, and
# inherited by the workers; a directory of your own can be given in the environment.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tsapi-prometheus-")
PROMETHEUS_MULTIPROC_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"]
os.makedirs(PROMETHEUS_MULTIPROC_DIR, exist_ok=True)


def on_starting(server):
    # Files left by an earlier run would add its counts to this one's.
    for path in glob.glob(os.path.join(PROMETHEUS_MULTIPROC_DIR, "*.db")):
        os.remove(path)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    # Its counters stay in the totals; its live-gauge files are dropped.
    multiprocess.mark_process_dead(worker.pid)

