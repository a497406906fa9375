#!/usr/bin/env python3
"""Print per-metric statistics (count, min, avg, max, time range) from a tsapi server;
with --plot DIR, also draw one PNG line chart per metric (needs matplotlib)."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tsapi.client import ApiError, Client, add_server_arguments

AGGREGATIONS = ("count", "min", "avg", "max")
# Metrics whose value_type says they are not numbers cannot be aggregated; anything else
# (including an unknown or missing type) is tried, so a new numeric type name still works.
NON_NUMERIC = {"string", "str", "text", "json", "jsonb", "object", "bool", "boolean"}


def end_after(last_seen: str) -> str:
    """last_seen + 1 s, because the query range end is exclusive."""
    value = datetime.fromisoformat(last_seen)  # 3.11 accepts a trailing "Z"
    return (value + timedelta(seconds=1)).isoformat()


def metric_stats(client: Client, metric: dict) -> dict[str, Any]:
    """One whole-range aggregate per statistic (no interval -> a single row)."""
    stats: dict[str, Any] = {}
    for agg in AGGREGATIONS:
        rows = client.query(metric["name"], metric["first_seen"],
                            end_after(metric["last_seen"]), aggregation=agg)
        stats[agg] = rows[0].get("value") if rows else None
    return stats


PLOT_BUCKETS = 500  # about one bucket per horizontal pixel pair of the chart


def plot_interval(first_seen: str, last_seen: str) -> str:
    """A whole number of minutes giving at most about PLOT_BUCKETS buckets."""
    span = datetime.fromisoformat(last_seen) - datetime.fromisoformat(first_seen)
    minutes = max(1, int(span.total_seconds() // 60 // PLOT_BUCKETS) + 1)
    return f"{minutes} minutes"


def plot_metric(client: Client, metric: dict, directory: Path) -> Path:
    """Hourly-ish averages of one metric, one line per device tag if it has one."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    interval = plot_interval(metric["first_seen"], metric["last_seen"])
    rows = client.query(metric["name"], metric["first_seen"], end_after(metric["last_seen"]),
                        aggregation="avg", interval=interval, group_by=["device"])
    lines: dict[str, tuple[list, list]] = {}
    for row in rows:
        label = (row.get("tags") or {}).get("device") or metric["name"]
        xs, ys = lines.setdefault(label, ([], []))
        xs.append(datetime.fromisoformat(row["time"]))
        ys.append(row["value"])
    fig, ax = plt.subplots(figsize=(10, 4), dpi=100)
    for label, (xs, ys) in sorted(lines.items()):
        ax.plot(xs, ys, linewidth=1, label=label)
    ax.set_title(f"{metric['name']} (avg per {interval})")
    ax.set_xlabel("time (UTC)")
    if len(lines) > 1:
        ax.legend(fontsize="small")
    fig.autofmt_xdate()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (re.sub(r"[^A-Za-z0-9_.-]", "_", metric["name"]) + ".png")
    fig.savefig(path)
    plt.close(fig)
    return path


def _num(value: Any, agg: str) -> str:
    if value is None:
        return "-"
    if not isinstance(value, int | float):
        return str(value)
    if agg == "count":
        return f"{int(value):,}"
    return f"{value:.6g}"


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Left-align text columns and right-align the numeric ones."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    numeric = set(AGGREGATIONS)
    lines = []
    for r in [header, *rows]:
        cells = [
            c.rjust(w) if h in numeric else c.ljust(w)
            for c, w, h in zip(r, widths, header, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    add_server_arguments(p)
    p.add_argument("--plot", type=Path, metavar="DIR",
                   help="also write one PNG chart per numeric metric into DIR")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    client = Client(args.url, args.api_key, args.timeout)
    try:
        metrics = client.metrics()
        table = []
        for m in sorted(metrics, key=lambda m: m["name"]):
            if str(m.get("value_type") or "").lower() in NON_NUMERIC:
                print(
                    f"skipping non-numeric metric {m['name']} ({m['value_type']})", file=sys.stderr
                )
                continue
            stats = metric_stats(client, m)
            if args.plot:
                print(f"wrote {plot_metric(client, m, args.plot)}", file=sys.stderr)
            table.append(
                [
                    m["name"],
                    *(_num(stats[a], a) for a in AGGREGATIONS),
                    str(m["first_seen"]),
                    str(m["last_seen"]),
                ]
            )
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (KeyError, TypeError, ValueError) as exc:
        print(f"error: unexpected response from {args.url}: {exc!r}", file=sys.stderr)
        return 1
    if not table:
        print("no numeric metrics stored")
        return 0
    print(format_table(["metric", *AGGREGATIONS, "first", "last"], table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
