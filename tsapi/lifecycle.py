"""Deleting a metric: the transaction, then the cache generations it invalidates."""

from tsapi.cache import CATALOG, response_cache
from tsapi.errors import NotFound
from tsapi.store import database
from tsapi.store.lifecycle import delete_metric


def delete_metric_named(name: str) -> None:
    if "\x00" in name:  # no metric is named so; PostgreSQL cannot even bind it
        raise NotFound(f"Metric '{name}' not found")
    with database().engine.begin() as conn:
        found = delete_metric(conn, name)
    if not found:
        raise NotFound(f"Metric '{name}' not found")
    # After commit: a reader that sees the new generation also sees the deletion.
    response_cache().bump([name, CATALOG])
