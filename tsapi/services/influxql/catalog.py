"""Measurements, fields and tags as InfluxDB sees them, read from tsapi's metric catalog.

Line protocol stores field `f` of measurement `m` as the metric `m.f`, and fields of the
default measurement under the bare name `f`; this module reads that mapping backwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from tsapi.formats.influxql.regex import compile_regex
from tsapi.formats.influxql.results import to_ns
from tsapi.formats.influxql.tokens import InfluxQLError
from tsapi.services.discovery import metric_catalog, metric_series
from tsapi.services.runtime import Runtime

MAX_SERIES_PER_METRIC = 10_000
# Each metric's series are one statement: a request may read those of this many metrics.
# One line protocol write can create 100,000 fields, and a SHOW without FROM reads them all.
MAX_METRICS_READ = 1_000


def split_metric(name: str, default_measurement: str) -> tuple[str, str]:
    """(measurement, field) of a metric name."""
    measurement, dot, field_key = name.partition(".")
    if not dot or not measurement or not field_key:
        return default_measurement, name
    return measurement, field_key


@dataclass
class MeasurementInfo:
    name: str
    fields: dict[str, str] = field(default_factory=dict)  # field key -> metric name
    types: dict[str, str] = field(default_factory=dict)  # field key -> number | string
    first_seen: dict[str, int] = field(default_factory=dict)  # field key -> nanoseconds
    series: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # metric -> tags

    @property
    def tag_keys(self) -> list[str]:
        return sorted({k for sets in self.series.values() for tags in sets for k in tags})

    def tag_values(self, key: str) -> list[str]:
        return sorted({tags[key] for sets in self.series.values() for tags in sets
                       if key in tags})


class Catalog:
    """The measurements of this tsapi, looked up once per request."""

    def __init__(self, rt: Runtime):
        self.rt = rt
        self.default = rt.line_protocol.default_measurement
        self._metrics: list[dict] | None = None
        self._by_measurement: dict[str, list[dict]] | None = None
        self._measurements: dict[str, MeasurementInfo] = {}
        self._metrics_read = 0

    def metrics(self) -> list[dict]:
        if self._metrics is None:
            self._metrics = metric_catalog(self.rt)
        return self._metrics

    def measurement_names(self) -> list[str]:
        return sorted({split_metric(m["name"], self.default)[0] for m in self.metrics()})

    def matching(self, regex: str) -> list[str]:
        pattern = compile_regex(regex)
        return [name for name in self.measurement_names() if pattern.search(name)]

    def _grouped(self) -> dict[str, list[dict]]:
        # One pass over the catalog, not one per measurement looked up.
        if self._by_measurement is None:
            self._by_measurement = {}
            for metric in self.metrics():
                measurement = split_metric(metric["name"], self.default)[0]
                self._by_measurement.setdefault(measurement, []).append(metric)
        return self._by_measurement

    def measurement(self, name: str) -> MeasurementInfo | None:
        if name in self._measurements:
            return self._measurements[name]
        info = MeasurementInfo(name)
        for metric in self._grouped().get(name, ()):
            field_key = split_metric(metric["name"], self.default)[1]
            info.fields[field_key] = metric["name"]
            info.types[field_key] = metric["value_type"]
            if metric.get("first_seen"):
                info.first_seen[field_key] = to_ns(datetime.fromisoformat(metric["first_seen"]))
        if not info.fields:
            return None
        self._metrics_read += len(info.fields)
        if self._metrics_read > MAX_METRICS_READ:
            raise InfluxQLError(f"the statement reads the series of more than "
                                f"{MAX_METRICS_READ} metrics (fields): name fewer "
                                "measurements with FROM")
        for metric_name in info.fields.values():
            tag_sets = metric_series(self.rt, metric_name, MAX_SERIES_PER_METRIC + 1)
            if tag_sets is not None and len(tag_sets) > MAX_SERIES_PER_METRIC:
                raise InfluxQLError(f"max-select-series limit exceeded: metric "
                                    f"'{metric_name}' has more than "
                                    f"{MAX_SERIES_PER_METRIC} series")
            info.series[metric_name] = tag_sets or []
        self._measurements[name] = info
        return info
