#!/usr/bin/env python3
"""Load an environmental-sensor telemetry CSV into tsapi via POST /ingest."""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path
from typing import IO

import orjson
import telemetry

from tsapi.client import ApiError, Client, add_server_arguments

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "sample_data" / "iot_telemetry_sample.csv"


class Progress:
    """A one-line progress bar on stderr; plain lines when stderr is not a terminal."""

    def __init__(self, total_rows: int | None, out: IO[str] | None = None):
        self.total = total_rows
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self.started = time.monotonic()
        self.shown = -1  # rows in the last line written, to avoid repeating it

    def update(self, rows: int, points: int, final: bool = False) -> None:
        if rows == self.shown and not (final and self.tty):
            return
        self.shown = rows
        elapsed = max(time.monotonic() - self.started, 1e-9)
        stats = f"{rows:,} rows  {points:,} points  {points / elapsed:,.0f} points/s"
        if self.total:
            frac = min(rows / self.total, 1.0)
            filled = round(frac * 30)
            line = f"[{'#' * filled}{'.' * (30 - filled)}] {frac:6.1%}  {stats}"
        else:
            line = stats
        line += f"  {elapsed:.1f}s"
        if self.tty:
            # \r rewrites the line in place; trailing spaces wipe a longer previous line.
            self.out.write("\r" + line.ljust(100) + ("\n" if final else ""))
        else:
            self.out.write(line + "\n")
        self.out.flush()


def count_rows(path: Path) -> int:
    """Data rows in a CSV (lines minus header), counted cheaply for the progress bar."""
    lines = 0
    last = b"\n"
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":  # a final line without a newline still counts
        lines += 1
    return max(lines - 1, 0)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--file",
        type=Path,
        default=DEFAULT_FILE,
        help="CSV to load (default: sample_data/iot_telemetry_sample.csv)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=5000,
        help="CSV rows per request; each row is up to 7 points (default: %(default)s)",
    )
    p.add_argument("--max-rows", type=int, default=None, help="stop after this many CSV rows")
    add_server_arguments(p, timeout=120.0)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.batch_size < 1:
        print("error: --batch-size must be >= 1", file=sys.stderr)
        return 2
    if not args.file.is_file():
        print(f"error: no such file: {args.file}", file=sys.stderr)
        return 1

    client = Client(args.url, args.api_key, args.timeout)
    total = count_rows(args.file)
    if args.max_rows is not None:
        total = min(total, max(args.max_rows, 0))
    progress = Progress(total)
    rows_done = points_done = 0
    try:
        with args.file.open(newline="", encoding="utf-8") as f:
            readings = telemetry.read_csv(f, args.max_rows)
            while batch := list(itertools.islice(readings, args.batch_size)):
                points = [p for r in batch for p in telemetry.row_to_points(r)]
                points_done += client.ingest(orjson.dumps({"data": points}))
                rows_done += len(batch)
                progress.update(rows_done, points_done)
    except ApiError as exc:
        progress.update(rows_done, points_done, final=True)
        print(f"error: ingest failed after {rows_done:,} rows: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # includes a non-UTF-8 file
        progress.update(rows_done, points_done, final=True)
        print(f"error: {args.file}: {exc}", file=sys.stderr)
        return 1
    progress.update(rows_done, points_done, final=True)
    elapsed = time.monotonic() - progress.started
    print(
        f"Loaded {rows_done:,} rows as {points_done:,} points in {elapsed:.1f}s from {args.file}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
