"""The aggregation allowlist, shared by the request schemas and the SQL builder."""

# Aggregations that work on any value type; the others need a numeric metric.
ANY_TYPE = frozenset({"count"})
NUMERIC = frozenset({"avg", "sum", "min", "max"})
ALL = ANY_TYPE | NUMERIC
