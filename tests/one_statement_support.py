"""Shared by the one-statement rollup tests: tagged points below HTTP, the two paths compared."""

from __future__ import annotations

from rollup_support import Store, at, close_enough, write_tagged

ANSWERED_FROM = "X-Tsapi-Answered-From"


def body_for(start_s: float, end_s: float, **extra) -> dict:
    return {"metric": "temp", "start_time": at(start_s).isoformat(),
            "end_time": at(end_s).isoformat(), "aggregation": "avg", "interval": "1h", **extra}


def same_answer(rolled, raw, body) -> str:
    """The same bytes (count, min, max, first, last) or values within 1e-9 (sum, avg,
    stddev); the rollup path's X-Tsapi-Answered-From."""
    a, b = rolled.post("/query", json=body), raw.post("/query", json=body)
    assert a.status_code == b.status_code, (body, a.get_data(), b.get_data())
    assert a.status_code in (200, 422), a.get_data()  # 422: a sum overflowing on both
    if body.get("aggregation") in ("sum", "avg", "stddev") and a.status_code == 200:
        assert close_enough(a.get_json(), b.get_json()), (body, a.get_data(), b.get_data())
    else:
        assert a.get_data() == b.get_data(), body
    return a.headers.get(ANSWERED_FROM, "")


def series_data(store: Store, hours: int = 8) -> None:
    """Two metrics, three series each (device a, b, c), a point every 10 minutes plus some on
    the hour boundaries exactly."""
    points = []
    for metric, scale in (("temp", 1.0), ("hum", -3.0)):
        for step in range(hours * 6):
            for k, device in enumerate("abc"):
                value = scale * ((step * 7 + k * 5) % 23 - 11) / 4
                points.append((at(step * 600 + k * 0.000001), metric, value, {"device": device}))
    write_tagged(store, points)

def shapes(metric: str = "temp") -> list[dict]:
    """Aligned bodies of several shapes: level-wide, wider, edged, grouped, tagged."""
    out = []
    for aggregation in ("count", "first", "last", "max", "avg"):
        out += [body_for(0, 8 * 3600, metric=metric, aggregation=aggregation),
                body_for(0, 8 * 3600, metric=metric, aggregation=aggregation, interval="2h"),
                body_for(0.5, 8 * 3600 - 0.5, metric=metric, aggregation=aggregation),
                body_for(0, 8 * 3600, metric=metric, aggregation=aggregation, group_by=["device"]),
                body_for(0, 8 * 3600, metric=metric, aggregation=aggregation,
                      tags={"device": "a"})]
    return out
