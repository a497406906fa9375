"""gunicorn settings for production; each can be overridden by the environment.

Worker model: ingest and query spend most of their time in Python (JSON parsing, validation,
building COPY data), so threads add little to processes because of the GIL, and PostgreSQL
needs CPU of its own for COPY. Measured with tools/bench_ingest.py on a 2-core machine, sync
workers, one per core, served both 5,000-point and 50-point batches best: 2 workers took
255,000 points/s from 2 clients against 231,000 for 4 workers, and 16,700 against 13,800
points/s in 50-point batches from 4 clients. More workers only added contention and memory.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count()))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# A 100,000-point batch takes about a second; leave room for slow disks.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
# On SIGTERM a worker finishes its current request (a batch commits whole or not at all).
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "60"))
keepalive = 5
# Recycle workers now and then, so a slow leak can never grow without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "20000"))
max_requests_jitter = 2000
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None  # empty: no access log
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")

