"""Deleting a metric: the transaction, then the cache generations it invalidates."""

from tsapi.errors import metric_not_found
from tsapi.services.response_cache import CATALOG
from tsapi.services.runtime import Runtime
from tsapi.store.lifecycle import delete_metric


def delete_metric_named(rt: Runtime, name: str) -> None:
    with rt.db.engine.begin() as conn:
        found = delete_metric(conn, name)
    if not found:
        raise metric_not_found(name)
    rt.db.acknowledge_write()  # reads from a replica wait until it has replayed the deletion
    # After commit: a reader that sees the new generation also sees the deletion.
    rt.cache.bump([name, CATALOG])
