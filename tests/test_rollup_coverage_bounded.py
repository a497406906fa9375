"""Until a refresher consumes them, every write logs its span: a query's coverage read must
not grow with how often a series was written, only with the level buckets those touched."""

from __future__ import annotations

from datetime import timedelta

from rollup_support import Store, assert_same, at
from sqlalchemy import event

from tsapi.store.rollup_refresh import refresh


def test_coverage_reads_one_span_per_touched_bucket_however_many_writes(make_app,
                                                                       database_urls, backend):
    # make_app: empty tables for this test; nothing here goes through HTTP.
    store = Store(database_urls[backend])
    try:
        store.write([(at(minute * 60), "temp", float(minute % 7), "a") for minute in range(360)])
        refresh(store.engine, store.storage, timedelta(0), now=at(6 * 3600))
        for second in range(60):  # 60 one-point writes, all in the hour from 2:00
            store.write([(at(2 * 3600 + second * 37), "temp", float(second), "a")])
        rows_read: list[int] = []

        def count(conn, cursor, statement, *rest):
            if "rollup_invalidations" in statement:
                rows_read.append(cursor.rowcount)

        event.listen(store.engine, "after_cursor_execute", count)
        raw, rolled, used, level = store.answers("temp", "avg", "1h", None, (), at(0),
                                                 at(6 * 3600))
        assert used and level == "1h"
        assert_same("avg", raw, rolled)
        # The watermark, the series, and one span (the hour from 2:00): 60 logged spans
        # each came back before.
        assert rows_read == [3]
    finally:
        store.dispose()
