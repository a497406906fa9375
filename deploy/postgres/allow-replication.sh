#!/bin/sh
# Run once by the PostgreSQL image when it creates the primary's cluster
# (/docker-entrypoint-initdb.d): let the standby (compose service db-replica) stream from it
# with the same user and password. wal_level=replica and 10 WAL senders are the defaults.
set -eu
echo "host replication ${POSTGRES_USER} all scram-sha-256" >> "$PGDATA/pg_hba.conf"
