"""Slow clients against a server: do other clients' requests still get through?

    .venv/bin/python tools/slow_clients.py --url http://127.0.0.1:8001 --slow 40   # a node
    .venv/bin/python tools/slow_clients.py --url http://127.0.0.1:8000 --slow 40   # nginx

Opens --slow connections that hold the server (a quarter each: idle, headers never finished,
body never finished, answer never read), then sends --probes GET /health requests one after
another, each given --timeout seconds, and prints how many answered and their median time.
Standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import socket
import statistics
import sys
import time

KINDS = [
    b"",  # connected, says nothing
    b"GET /health HTTP/1.1\r\nHost: x\r\n",  # headers never finished
    b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 1000\r\n\r\n{\"data\": [",  # body never finished
    b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n",  # answer never read
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--slow", type=int, default=40, help="slow connections to hold")
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per probe")
    args = parser.parse_args(argv)
    host, _, port = args.url.removeprefix("http://").partition(":")
    held = []
    for n in range(args.slow):
        s = socket.create_connection((host, int(port)), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(KINDS[n % len(KINDS)])
        held.append(s)
    time.sleep(0.5)  # let the server pick them up
    answered, times = 0, []
    for _ in range(args.probes):
        started = time.monotonic()
        conn = http.client.HTTPConnection(host, int(port), timeout=args.timeout)
        try:
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                answered += 1
                times.append(time.monotonic() - started)
        except OSError:
            pass
        finally:
            conn.close()
    for s in held:
        s.close()
    median = f"{statistics.median(times) * 1000:.1f} ms" if times else "-"
    print(f"{args.url}: {args.slow} slow clients; {answered} of {args.probes} /health probes "
          f"answered within {args.timeout:g} s (median {median})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
