# shellcheck shell=bash disable=SC2034  # settings used by the other files
# Shared settings and small helpers, sourced by tools/dev (which sets ROOT).

LOCAL=$ROOT/.local
VENV=$ROOT/.venv

PG_PORT=${TSAPI_PG_PORT:-55432}
REDIS_PORT=${TSAPI_REDIS_PORT:-56379}
PG_DATA=$LOCAL/pg
# Socket + log live outside the data dir; the socket path must stay < 108 bytes.
PG_RUN=${TSAPI_PG_SOCKET_DIR:-$LOCAL/pg-run}
PG_LOG=$PG_RUN/postgres.log
PG_STANDBY_PORT=${TSAPI_PG_STANDBY_PORT:-55433}
PG_STANDBY_DATA=$LOCAL/pg-standby
PG_STANDBY_LOG=$PG_RUN/standby.log
REDIS_DIR=$LOCAL/redis
REDIS_LOG=$REDIS_DIR/redis.log
REDIS_PID=$REDIS_DIR/redis.pid

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Package installs and `make install` need root; developers without root get sudo.
as_root() {
    if ((EUID == 0)); then "$@"; else sudo "$@"; fi
}

# initdb/pg_ctl refuse to run as root, so the local cluster belongs to `postgres`.
# Runs from / because the postgres user may not be allowed into the current directory.
as_postgres() {
    if [[ $(id -un) == postgres ]]; then
        (cd / && "$@")
    elif ((EUID == 0)); then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && sudo -u postgres -- "$@")
    fi
}

export_urls() {
    export DATABASE_URL="postgresql+psycopg2://postgres@127.0.0.1:$PG_PORT/tsapi"
    if [[ -n ${WITH_STANDBY:-} ]]; then
        export DATABASE_READ_URL="postgresql+psycopg2://postgres@127.0.0.1:$PG_STANDBY_PORT/tsapi"
    fi
    export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
}

# Wait up to $1 seconds for command "${@:2}" to succeed.
wait_for() {
    local timeout=$1 i
    shift
    for ((i = 0; i < timeout * 10; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    return 1
}
