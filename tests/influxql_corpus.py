"""The points and statements the InfluxQL oracle test sends to both InfluxDB 1.x and tsapi.

Points are written once, as line protocol, to both. Statements are those Grafana's InfluxDB
data source sends (default time-series panel, table panel, template variables, query editor
metadata) and a spread of the InfluxQL subset tsapi answers.
"""

from __future__ import annotations

import random
import time

T0 = 1_594_512_000  # 2020-07-12T00:00:00Z, seconds
T1 = T0 + 3 * 3600
S, E = f"{T0 * 1000}ms", f"{T1 * 1000}ms"  # as Grafana writes an absolute range
GRAFANA_RANGE = f"time >= {S} and time <= {E}"
ISO_RANGE = "time >= '2020-07-12T00:00:00Z' AND time < '2020-07-12T03:00:00Z'"


def fixed_lines() -> list[str]:
    """Deterministic points in 2020: four cpu series (one without region), mem, the
    default measurement, and a string field."""
    rng = random.Random(13)
    lines = []
    hosts = [("a", "us", 0), ("b", "us", 3), ("c", "eu", 7), ("d", None, 11)]
    for host, region, skew in hosts:
        tags = f"host={host}" + (f",region={region}" if region else "")
        t = T0 + skew
        while t < T1:
            if rng.random() < 0.9:  # gaps, so fill() has buckets to fill
                user = round(rng.uniform(0, 100), 3)
                idle = round(rng.uniform(0, 100), 2)
                lines.append(f"cpu,{tags} usage_user={user},usage_idle={idle} {t}000000000")
            t += rng.choice((20, 30, 45, 60))
    for host in ("a", "b"):
        counter = 0
        for i in range(0, 3 * 3600, 120):
            counter += rng.randint(0, 50)
            if i == 5400 and host == "b":
                counter = 3  # a counter reset
            used = round(rng.uniform(1e6, 5e6), 1)
            lines.append(f"mem,host={host} used={used},total={counter}i "
                         f"{T0 + i + (5 if host == 'b' else 0)}000000000")
    for i in range(0, 3 * 3600, 300):
        lines.append(f"tsapi,room=kitchen temp={round(20 + rng.uniform(-3, 3), 2)} "
                     f"{T0 + i + 1}000000000")
    for i, state in enumerate(("open", "closed", "open", "ajar", "closed", "open")):
        lines.append(f'door,room=hall state="{state}" {T0 + i * 1200 + 2}000000000')
    return lines


def recent_lines(now: float | None = None) -> list[str]:
    """Points between 3 and 1 hours ago, for Grafana's relative ranges (now() - 6h)."""
    now = int(now or time.time())
    rng = random.Random(7)
    start = now - 3 * 3600
    lines = []
    for host in ("x", "y"):
        for i in range(0, 2 * 3600, 300):
            lines.append(f"recent,host={host} load={round(rng.uniform(0, 4), 3)} "
                         f"{start + i + (1 if host == 'y' else 0)}000000000")
    return lines


def statements() -> list[str]:
    g, iso = GRAFANA_RANGE, ISO_RANGE
    grafana = [
        # Grafana's default time-series panel query ($timeFilter, $__interval expanded)
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(1m) fill(null)',
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(10s) fill(null)',
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(5m) fill(null)',
        f'SELECT mean("usage_user") FROM "autogen"."cpu" WHERE {g} GROUP BY time(1m) '
        "fill(null)",
        f'SELECT mean("usage_user") FROM "cpu" WHERE ("host" = \'a\') AND {g} '
        "GROUP BY time(1m) fill(null)",
        f'SELECT mean("usage_user") FROM "cpu" WHERE ("host" =~ /^a$/) AND {g} '
        "GROUP BY time(1m) fill(null)",
        f'SELECT mean("usage_user") FROM "cpu" WHERE ("host" =~ /^(a|c)$/) AND {g} '
        'GROUP BY time(1m), "host" fill(null)',
        f'SELECT mean("usage_user") FROM "cpu" WHERE ("host" = \'a\' AND "region" = \'us\') '
        f"AND {g} GROUP BY time(2m) fill(null)",
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(1m), "host" '
        "fill(null)",
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(1m), "region" '
        "fill(none)",
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(30m), * fill(null)',
        f'SELECT max("usage_user") FROM "cpu" WHERE {g} GROUP BY time(15m) fill(previous)',
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(1m) fill(linear)',
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(1m) fill(0)',
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(1m) fill(none)',
        # table panel: raw and last-value tables
        f'SELECT "usage_user" FROM "cpu" WHERE {g}',
        f'SELECT "usage_user", "usage_idle" FROM "cpu" WHERE ("host" = \'b\') AND {g}',
        f'SELECT last("usage_user") FROM "cpu" WHERE {g} GROUP BY "host"',
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY "host"',
        f'SELECT last("usage_user") AS "current", max("usage_user") AS "peak" FROM "cpu" '
        f'WHERE {g} GROUP BY "host"',
        # template variables and the query editor's metadata queries
        "SHOW MEASUREMENTS",
        'SHOW MEASUREMENTS ON "telegraf" LIMIT 1',
        'SHOW TAG KEYS ON "telegraf" FROM "cpu"',
        'SHOW FIELD KEYS ON "telegraf" FROM "cpu"',
        f'SELECT mean("usage_user") FROM "cpu" WHERE ("host"::tag =~ /^(a|b)$/) AND {g} '
        'GROUP BY time(15m), "region"::tag fill(null)',
        f'SELECT last("usage_user") FROM "cpu" WHERE "host"::tag = \'c\' AND {g} '
        "GROUP BY time(1h)",
        "SHOW MEASUREMENTS LIMIT 100",
        "SHOW MEASUREMENTS WITH MEASUREMENT =~ /(?i)cp/ LIMIT 100",
        "SHOW MEASUREMENTS WITH MEASUREMENT =~ /m/",
        'SHOW FIELD KEYS FROM "cpu"',
        'SHOW FIELD KEYS FROM "autogen"."cpu"',
        'SHOW TAG KEYS FROM "cpu"',
        "SHOW TAG KEYS",
        'SHOW TAG VALUES WITH KEY = "host"',
        'SHOW TAG VALUES FROM "cpu" WITH KEY = "host"',
        'SHOW TAG VALUES FROM "cpu" WITH KEY = "region"',
        'SHOW TAG VALUES FROM "cpu" WITH KEY = "host" WHERE "region" =~ /^us$/',
        'SHOW TAG VALUES FROM "cpu" WITH KEY = "host" WHERE "region" = \'eu\'',
        'SHOW TAG VALUES FROM "cpu" WITH KEY IN ("host", "region")',
        'SHOW TAG VALUES FROM "cpu" WITH KEY =~ /reg/',
        "SHOW RETENTION POLICIES",
        'SHOW RETENTION POLICIES on "telegraf"',
        "SHOW DATABASES",
        'SHOW SERIES FROM "cpu"',
        'SHOW SERIES FROM "cpu" WHERE "host" = \'a\'',
        "SHOW SERIES",
        'SHOW TAG VALUES FROM "mem" WITH KEY = "host" LIMIT 1',
        'SHOW TAG KEYS FROM "cpu" WHERE "host" = \'d\'',
        f'SHOW TAG VALUES FROM "cpu" WITH KEY = "region" WHERE {g}',
        'SHOW TAG VALUES WITH KEY != "host"',
        f'SHOW SERIES FROM "mem" WHERE {g}',
        "SHOW MEASUREMENTS WHERE time > 0",
        'SHOW FIELD KEYS FROM "nope"',
    ]
    functions = []
    for fn in ("mean", "median", "count", "sum", "min", "max", "first", "last", "spread",
               "stddev"):
        functions.append(f'SELECT {fn}("usage_user") FROM "cpu" WHERE {g} '
                         "GROUP BY time(20m) fill(null)")
        functions.append(f'SELECT {fn}("usage_idle") FROM "cpu" WHERE {iso} GROUP BY "host"')
    functions += [
        f'SELECT count("usage_user") FROM "cpu" WHERE {g} GROUP BY time(10m), "host" '
        "fill(null)",
        f'SELECT percentile("usage_user", 95) FROM "cpu" WHERE {g} GROUP BY time(30m) '
        "fill(none)",
        f'SELECT percentile("usage_user", 50) FROM "cpu" WHERE {g} GROUP BY "host"',
        f'SELECT percentile("usage_user", 5) FROM "cpu" WHERE {g}',
        f'SELECT max("usage_user") FROM "cpu" WHERE {g}',
        f'SELECT min("usage_user") FROM "cpu" WHERE {g} GROUP BY "region"',
        f'SELECT first("usage_user") FROM "cpu" WHERE {g}',
        f'SELECT last("usage_user") FROM "cpu" WHERE {g}',
        f'SELECT mean("usage_user"), max("usage_idle") FROM "cpu" WHERE {g} '
        "GROUP BY time(30m) fill(null)",
        f'SELECT mean("usage_user"), mean("usage_idle") FROM "cpu" WHERE {g} '
        'GROUP BY time(30m), "host" fill(none)',
        f'SELECT mean("usage_user") AS "u", count("usage_user") AS "n" FROM "cpu" WHERE {g}',
        f'SELECT sum("usage_user") FROM "cpu" WHERE {g}',
        f'SELECT max("usage_user"), max("usage_idle"), mean("usage_user") AS "max_1" '
        f'FROM "cpu" WHERE {g} GROUP BY time(1h)',
        f'SELECT count(distinct("room")) FROM "tsapi" WHERE {g}',
        f'SELECT count(distinct("state")) FROM "door" WHERE {g}',
        f'SELECT distinct("state") FROM "door" WHERE {g}',
        f'SELECT count("state") FROM "door" WHERE {g} GROUP BY time(1h) fill(null)',
        f'SELECT last("state") FROM "door" WHERE {g}',
        f'SELECT first("state") FROM "door" WHERE {g} GROUP BY time(1h)',
        f'SELECT mean("temp") FROM "tsapi" WHERE {g} GROUP BY time(30m) fill(null)',
        f'SELECT mean("used"), sum("total") FROM "mem" WHERE {g} GROUP BY time(1h), "host"',
        f'SELECT derivative("total", 1m) FROM "mem" WHERE ("host" = \'a\') AND {g}',
        f'SELECT non_negative_derivative("total", 1m) FROM "mem" WHERE {g} GROUP BY "host"',
        f'SELECT derivative("used") FROM "mem" WHERE {g} GROUP BY "host" LIMIT 5',
        f'SELECT derivative(mean("used"), 1h) FROM "mem" WHERE {g} GROUP BY time(30m) '
        "fill(none)",
        f'SELECT non_negative_derivative(max("total"), 10m) FROM "mem" WHERE {g} '
        'GROUP BY time(10m), "host" fill(none)',
        f'SELECT spread("total") FROM "mem" WHERE {g} GROUP BY "host"',
    ]
    clauses = [
        f'SELECT "usage_user" FROM "cpu" WHERE {g} ORDER BY time DESC LIMIT 5',
        f'SELECT "usage_user" FROM "cpu" WHERE {g} LIMIT 3 OFFSET 2',
        f'SELECT "usage_user" FROM "cpu" WHERE {g} GROUP BY "host" LIMIT 2',
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(30m) fill(null) '
        "ORDER BY time DESC",
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(10m) fill(null) '
        "LIMIT 4",
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(10m) fill(null) '
        "LIMIT 4 OFFSET 10",
        f"SELECT mean(\"usage_user\") FROM \"cpu\" WHERE {g} GROUP BY time(1h) fill(null) "
        "tz('Europe/Berlin')",
        f"SELECT \"usage_user\" FROM \"cpu\" WHERE {g} AND \"host\" = 'd' LIMIT 3 "
        "tz('America/New_York')",
        f"SELECT * FROM \"cpu\" WHERE {g} AND \"host\" = 'a' LIMIT 5",
        f"SELECT * FROM \"cpu\" WHERE {g} LIMIT 8",
        f"SELECT * FROM \"mem\" WHERE {g} GROUP BY \"host\" LIMIT 3",
        f'SELECT * FROM "door" WHERE {g}',
        f'SELECT "usage_user", "host" FROM "cpu" WHERE {g} LIMIT 6',
        f'SELECT "usage_user" FROM "cpu" WHERE time >= {S} AND time < {T0 * 1000 + 120000}ms',
        f'SELECT "usage_user" FROM "cpu" WHERE time > {S} AND time <= {T0 * 1000 + 3000}ms',
        "SELECT \"usage_user\" FROM \"cpu\" WHERE time = '2020-07-12T00:00:03Z'",
        f'SELECT "usage_user" FROM "cpu" WHERE time >= {T0}s AND time <= {T0 + 60}s',
        f'SELECT "usage_user" FROM "cpu" WHERE time >= {T0 * 10**9} AND '
        f"time <= {(T0 + 60) * 10**9}",
        "SELECT \"usage_user\" FROM \"cpu\" WHERE time >= '2020-07-12T00:00:00Z' + 1m "
        "AND time <= '2020-07-12 00:03:00'",
        f"SELECT \"usage_user\" FROM \"cpu\" WHERE \"region\" != 'us' AND {g} LIMIT 4",
        f"SELECT \"usage_user\" FROM \"cpu\" WHERE \"region\" = '' AND {g} LIMIT 4",
        f"SELECT \"usage_user\" FROM \"cpu\" WHERE \"host\" !~ /^[ab]$/ AND {g} LIMIT 4",
        f"SELECT count(\"usage_user\") FROM \"cpu\" WHERE (\"host\" = 'a' OR \"host\" = 'b') "
        f"AND {g}",
        f"SELECT count(\"usage_user\") FROM \"cpu\" WHERE \"host\" <> 'a' AND {g} "
        "GROUP BY \"host\"",
        f"SELECT count(\"usage_user\") FROM \"cpu\" WHERE \"host\" = 'nope' AND {g}",
        f"SELECT count(\"usage_user\") FROM \"cpu\" WHERE (\"host\" = 'a' OR \"region\" = 'eu') "
        f"AND {g} GROUP BY \"host\"",
        f"SELECT mean(\"usage_user\") FROM \"cpu\" WHERE (\"host\" = 'd' OR \"region\" = 'eu') "
        f"AND {g} GROUP BY time(1h) fill(null)",
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(1h, 0s) tz(\'UTC\')',
        f'SELECT count("usage_user") FROM "nope" WHERE {g}',
        f'SELECT count("nofield") FROM "cpu" WHERE {g}',
        f'SELECT mean("usage_user") FROM /c.u/ WHERE {g} GROUP BY time(1h)',
        f'SELECT mean("used") FROM "mem", "cpu" WHERE {g}',
        f'SELECT mean(usage_user) FROM cpu WHERE {g} GROUP BY time(1h)',
        f'select MEAN("usage_user") from "cpu" where {g} group by time(1h) FILL(null)',
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(1h) fill(null); '
        'SHOW TAG KEYS FROM "cpu"',
        'SELECT "load" FROM "recent" WHERE time >= now() - 6h GROUP BY "host"',
        'SELECT mean("load") FROM "recent" WHERE time >= now() - 6h and time <= now() '
        'GROUP BY time(30m), "host" fill(none)',
        'SELECT count("load") FROM "recent" WHERE time >= now() - 1h and time <= now() - 2h',
        'SELECT "usage_user" FROM "cpu" WHERE time >= now() - 1h',
        f'SELECT "usage_user" FROM "cpu" WHERE "usage_user" > 95 AND {g}',
        f'SELECT "usage_user" FROM "cpu" WHERE ("usage_idle" < 5 OR "usage_user" >= 99) '
        f"AND \"host\" = 'a' AND {g}",
        f'SELECT * FROM "cpu" WHERE "usage_idle" <= 2 AND {g} GROUP BY "host"',
        f"SELECT \"state\" FROM \"door\" WHERE \"state\" = 'open' AND {g}",
        'SELECT "state" FROM "door" WHERE "state" =~ /^c/ OR "room" = \'x\'',
        f'SELECT "usage_user" FROM "cpu" WHERE 99 < "usage_user" AND {g} LIMIT 2',
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(1w) fill(null)',
        f'SELECT count("usage_user"), max("usage_idle") FROM "cpu" WHERE {g} '
        'GROUP BY time(1w), "host"',
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(1h, 15m) fill(null)',
        f'SELECT first("usage_user"), last("usage_user") FROM "cpu" WHERE {g} '
        "GROUP BY time(1h, 15m) fill(none)",
        f'SELECT spread("usage_user"), min("usage_user") FROM "cpu" WHERE {g} '
        "GROUP BY time(40m, -20m) fill(previous)",
        f'SELECT sum("usage_user") FROM "cpu" WHERE {g} GROUP BY time(7m) fill(0)',
        f'SELECT median("usage_user") FROM "cpu" WHERE {g} GROUP BY time(1w)',
        f'SELECT stddev("usage_user") FROM "cpu" WHERE {g} GROUP BY time(1h, 7m), "host"',
        f'SELECT count(distinct("state")) FROM "door" WHERE {g} GROUP BY time(1h, 30m)',
        f'SELECT count("usage_user") FROM "cpu" WHERE {g} GROUP BY time(30d)',
        f'SELECT count("usage_user") FROM "cpu" WHERE {g} GROUP BY time(1h, 30m) fill(null) '
        "tz('Asia/Kolkata')",
        f'SELECT percentile("usage_user", 90) FROM "cpu" WHERE {g} GROUP BY time(1h, 10m)',
        f'SELECT mean("usage_user") FROM "cpu" WHERE time <= {E} GROUP BY time(30m)',
        f'SELECT max("used") FROM "mem" WHERE time <= {E} AND "host" = \'b\' '
        "GROUP BY time(1h) fill(0)",
        'SELECT count("usage_user") FROM "cpu" GROUP BY time(1h), "host" fill(none)',
        # The longest durations InfluxDB keeps (2**63 - 1 ns, about 292 years), and past them
        'SELECT count("usage_user") FROM "cpu" GROUP BY time(15250w)',
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(106751d) fill(null)',
        f'SELECT max("usage_user") FROM "cpu" WHERE {g} GROUP BY time(9223372036s)',
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(1h, 90m) fill(none)',
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(15251w)',
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(1000000d)',
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(9223372036854775808ns)',
        'SELECT mean("usage_user") FROM "cpu" WHERE time > now() - 2562048h',
        # Integers past int64 and uint64, in fill() and beside time
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(1m) '
        "fill(9223372036854775807)",
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(1m) '
        "fill(-9223372036854775808)",
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(1m) '
        "fill(9223372036854775808)",
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(1m) '
        "fill(-9223372036854775809)",
        f'SELECT mean("usage_user") FROM "cpu" WHERE {g} GROUP BY time(1m) '
        "fill(99999999999999999999999)",
        'SELECT "usage_user" FROM "cpu" WHERE time > 9223372036854775808',
        'SELECT "usage_user" FROM "cpu" WHERE "usage_user" > 18446744073709551616',
    ]
    errors = [
        "SELEC * FROM cpu",
        'SELECT mean("usage_user") FROM',
        'SELECT mean("usage_user") FROM "cpu" WHERE',
        "SELECT FROM cpu",
        'SELECT mean("usage_user") FROM "cpu" GROUP BY time(1m) fill(bogus)',
        "SHOW NONSENSE",
        'SELECT "usage_user" FROM "cpu" WHERE "host" = \'a',
        'SELECT mean("usage_user"), "usage_idle" FROM "cpu"',
        f'SELECT "usage_user" FROM "cpu" WHERE {g} GROUP BY time(1m)',
        f'SELECT percentile("usage_user") FROM "cpu" WHERE {g}',
        f'SELECT mean("usage_user", 2) FROM "cpu" WHERE {g}',
        f"SELECT mean(\"usage_user\") FROM \"cpu\" WHERE {g} tz('Mars/Olympus')",
        "SHOW TAG VALUES FROM \"cpu\"",
    ]
    return grafana + functions + clauses + errors


# Statements tsapi answers differently from InfluxDB, by design, with the reason: they are
# sent to tsapi only, which must answer with an InfluxDB-style error naming the gap.
UNSUPPORTED = {
    f'SELECT mean("usage_user") FROM "cpu" WHERE "usage_user" > 50 AND {GRAFANA_RANGE}':
        "conditions on field values with functions",
    f'SELECT mean("usage_user") * 2 FROM "cpu" WHERE {GRAFANA_RANGE}': "arithmetic",
    f'SELECT mode("usage_user") FROM "cpu" WHERE {GRAFANA_RANGE}': "mode()",
}
