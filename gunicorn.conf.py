"""gunicorn settings for production; each can be overridden by the environment.

Worker model: ingest and query spend most of their time in Python (JSON parsing, validation,
building COPY data), so threads add little on top of processes because of the GIL; while one
worker waits on PostgreSQL another can use the CPU. Measured with tools/bench_ingest.py on a
2-core machine, sync workers at 2 × cores served both big and small batches best (the figures
are in the README); more workers only added memory.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2))
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
