#!/bin/sh
# The read replica's entrypoint (compose service db-replica): on first start, copy the
# primary with pg_basebackup -R (which writes primary_conninfo and standby.signal), then run
# it as a hot standby. Later starts reuse the volume and catch up by streaming.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
mkdir -p "$PGDATA"
chown postgres:postgres "$PGDATA"
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    until su-exec postgres pg_isready -h db -U "$POSTGRES_USER" -d "$POSTGRES_DB"; do sleep 1; done
    PGPASSWORD=$POSTGRES_PASSWORD su-exec postgres \
        pg_basebackup -h db -U "$POSTGRES_USER" -D "$PGDATA" -R -X stream -c fast
    # pg_basebackup -R stores the password in primary_conninfo (postgresql.auto.conf).
fi
exec su-exec postgres postgres -c hot_standby=on
