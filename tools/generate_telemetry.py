#!/usr/bin/env python3
"""Write deterministic synthetic environmental-sensor telemetry CSV (see tools/telemetry.py)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from datetime import UTC, datetime

import telemetry


def parse_start(text: str) -> datetime:
    """Accept unix seconds or ISO-8601; a time without a zone is taken as UTC."""
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not ISO-8601 or unix seconds: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def positive_float(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError("must be a finite number > 0")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--rows",
        type=non_negative_int,
        default=telemetry.FULL_ROWS,
        help="total rows over all devices (default: %(default)s, the full set)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=telemetry.DEFAULT_SEED,
        help="random seed (default: %(default)s)",
    )
    p.add_argument(
        "--start",
        type=parse_start,
        default=telemetry.DEFAULT_START,
        help="first instant, ISO-8601 or unix seconds (default: 2020-07-12T00:01:34Z)",
    )
    p.add_argument(
        "--days",
        type=positive_float,
        default=telemetry.DEFAULT_DAYS,
        help="length of the covered period in days (default: %(default)s)",
    )
    p.add_argument("--output", "-o", default="-", help="output file (default: stdout)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rows = telemetry.generate_rows(args.rows, args.seed, args.start, args.days)
    if args.output == "-":
        try:
            telemetry.write_csv(rows, sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader (e.g. `head`) went away: point stdout at devnull so the final
            # flush at exit does not raise again, and exit like other tools on EPIPE.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        return 0
    # newline="\n" keeps the output byte-identical across platforms.
    with open(args.output, "w", encoding="utf-8", newline="\n") as f:
        telemetry.write_csv(rows, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
