"""gunicorn settings for production; each can be overridden by the environment.

Worker model: gthread, one process per core with 4 threads each. Small requests mostly wait:
on the commit's WAL flush (acknowledged means durable), on Redis, on the client; a waiting
thread releases the GIL, and commits from several threads share one flush. Fewer, wider
processes because a kept-alive connection stays with the process that accepted it, and
gunicorn's gthread worker accepts whatever arrives, busy or not: with two processes per core,
the fleet's 64 connections sat 25/18/14/7 and 18/17/16/13 on the four workers mid-run, and the
busiest one's 2 threads and one GIL set the tail; with one per core, 32/32 and 33/31.
tsapi's worker (tsapi.api.worker) also leaves a new connection to the worker holding the
fewest (tsapi.api.connection_counts): two clients sending 5,000-point batches landed on one
worker in about half the runs, whose GIL then parsed both batches in turn (same-run ratio to
fe03d71's sync workers 0.66x-1.18x as the dice fell; gunicorn's gthread 2 x 4 had both
connections on one worker in 3 of 4 rounds of one run). Spread, the fleet sits 32/32 (16 x 4
on 4 x 2; gunicorn's gthread 41/23, 39/25, 34/30, 37/27 in the same runs), and 5,000-point
batches from 2 clients ran 1.04x-1.76x fe03d71, median 1.15x, in 9 of 9 alternated rounds
over 3 runs at load 4 (with COPY in binary, tsapi.store.large_batch: server CPU per batch
36-43 ms against fe03d71's 40-49). The fleet's tail did not move beyond its spread (tools/
bench_workers.py, fleet only, load 3.4-7.2, p99 ms, tsapi 2 x 4 / gunicorn gthread 2 x 4 /
tsapi 4 x 2: 207/242/44, 478/46/48, 59/33/688, 17.6/13.8/32.9, each run sent all, no errors,
every point stored once): the load the machine's other work puts on the 2 cores sets it, and
4 x 2 spread evenly is no steady gain either (mixed traffic lower: 279 against 364 requests/s
with the query computed, 473 against 605 cached, medians of 2), so the model stays.
Measured with tools/bench_workers.py (the models served side by side, runs alternated in one
process; auth and rate limits on, durable PostgreSQL) on a 2-core machine shared with other
benchmarks, load average 2-12 (the tail follows the load more than anything here):
  fleet, 2,000 devices x 7 points every 10 s, open loop, p99 ms, 2 x 4 threads / 4 x 2, same-
    run pairs, 30 s then 60 s: 346/1274, 24/467, 78/964, 57/1109, 189/239; 781/737, 13.0/39.4
    (load 4; p50 2.9/5.0), 14.3/25.9 (load 2; p50 3.4/4.9): one per core lower in 7 of 8,
    median 68 against 602; every run sent all, no errors, every point stored once;
  mixed traffic (4 clients cycling 1-point write, 50-point write, /query, GET /metrics),
    requests/s, 4 rounds, median (range), 2 x 4 / 4 x 2: query computed 230 (190-358) /
    240 (134-489); query cached 498 (417-858) / 505 (440-854), cached query p50 3.7 / 4.6 ms:
    no difference beyond the spread;
  gunicorn's sync workers (4) in the same runs as gthread: mixed 72-107 requests/s with the
    query computed, 126-197 cached (gthread 4 x 1, 4 x 2: 106-386), cached query p50 15-23 ms
    (gthread 3-6 ms); fleet p99 631-909 ms. Sync closes every connection and holds a process
    through each commit, so it stays out.
  50-point batches (tools/bench_small.py section 2, runs alternated, load 2.8-4.8),
    thousand points/s from 1/2/4 clients, 2 x 4 | 4 x 2: 13.5/14.6/13.4 | 7.4/11.8/11.8,
    5.5/9.0/11.5 | 8.1/13.7/14.7, 10.5/13.4/17.0 | 7.6/11.1/12.5, 8.0/9.8/12.2 | 5.0/5.9/8.4:
    one per core ahead in 3 of 4 pairs at each client count, medians 9.2/11.6/12.8 against
    7.5/11.5/12.2: no loss.
(The model before, 2 processes per core x 2 threads, was chosen on 50-point batches from 2
and 4 clients at load 1.4-3.2, not on the fleet; the figures above replace that claim.) Not
taken: a GIL switch interval of 0.5 ms (mixed: 80 and 178 requests/s against 128 and 153
with the query computed, 272 and 562 against 386 and 380 cached: no steady change), and
worker_connections = threads, which accepts a connection only with a thread free but ends
keep-alive (fleet p99 323 and 17.7 ms, two runs: not enough to trade keep-alive for).
reuse_port (one listening socket per worker, spread by the kernel) gave no steady gain on
2 x 4 or 4 x 2, and the kernel's hash too can put two clients on one worker.
The worker keeps the read deadline of the sync worker it replaces (tsapi/api/worker.py).
"""

import glob
import multiprocessing
import os
import tempfile

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count()))
# gunicorn's gthread worker, but each request must arrive within GUNICORN_REQUEST_READ_TIMEOUT
# seconds of its connection (request line, headers and body together) and each send of the
# response must finish within as long: idle or trickling clients cannot hold the workers
# (tsapi/api/worker.py). Behind nginx (which buffers whole requests by default) this is a
# second line of defence; nginx's client_header_timeout/client_body_timeout bound the
# client, and nginx sends the buffered body to gunicorn at local speed.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "tsapi.api.worker.DeadlineThreadWorker")
os.environ["GUNICORN_REQUEST_READ_TIMEOUT"] = os.environ.get("GUNICORN_REQUEST_READ_TIMEOUT",
                                                             "30")
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
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
logger_class = "tsapi.api.gunicorn_logger.GunicornLogger"  # builds that line only then
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
    counts = getattr(worker, "connection_counts", None)
    if counts is not None:  # tsapi.api.worker: the slot of a worker killed holding it
        counts.release_process(worker.pid)



def post_worker_init(worker):
    import gc

    # Everything loaded so far (Flask, SQLAlchemy, the app, its schemas) lives as long as the
    # worker: frozen, the cyclic collector stops walking it again and again while a large
    # batch's hundred thousand new objects trigger collections. tools/bench_small.py (4)
    # against the same code without it (--baseline-rev main), 2 runs x 3 alternated rounds,
    # load 0.5-1.8: gunicorn CPU per 5,000-point batch 17.1-19.3 ms against 21.8-25.7 ms,
    # throughput 0.96-1.56x (medians 1.11x, 1.23x); 50-point batches unchanged (0.94-1.17x).
    gc.freeze()
