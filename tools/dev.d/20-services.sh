# shellcheck shell=bash
# The project-local PostgreSQL cluster (.local/pg) and Redis (.local/redis) used by
# `tools/dev up`. Both are reused when already running, so `up` can be rerun freely.

# The cluster lives inside the repo, which may sit below a private directory (e.g. a
# clone in /root): give "others" search (not read) permission on each directory on
# the way down that the postgres user cannot enter yet.
ensure_postgres_can_reach() {
    local target=$1 dir='' part parts
    as_postgres test -x "$target" 2>/dev/null && return 0
    IFS=/ read -ra parts <<<"${target#/}"
    for part in "${parts[@]}"; do
        dir+=/$part
        if ! as_postgres test -x "$dir" 2>/dev/null; then
            warn "chmod o+x $dir (so the postgres user can reach $target)"
            as_root chmod o+x "$dir"
        fi
    done
}

pg_ctl_() { as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" "$@"; }
pg_running() { pg_ctl_ status >/dev/null 2>&1; }
pg_running_port() { as_postgres sed -n 4p "$PG_DATA/postmaster.pid" 2>/dev/null; }

# initdb once; our settings go to tsapi.conf, included from postgresql.conf.
pg_init() {
    as_postgres test -f "$PG_DATA/PG_VERSION" 2>/dev/null && return 0
    log "initdb $PG_DATA"
    as_root install -d -o postgres -g postgres -m 700 "$PG_DATA"
    as_postgres "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust \
        -E UTF8 --locale=C >/dev/null
    echo "include_if_exists = 'tsapi.conf'" | as_postgres tee -a "$PG_DATA/postgresql.conf" >/dev/null
}

# Rewritten on every start so a changed TSAPI_PG_PORT takes effect.
pg_write_conf() { pg_conf "$PG_PORT" | as_postgres tee "$PG_DATA/tsapi.conf" >/dev/null; }

pg_conf() {
    cat <<EOF
# Written by tools/dev; edits are overwritten.
listen_addresses = '127.0.0.1'
port = $1
unix_socket_directories = '$PG_RUN'
max_connections = 100
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
EOF
}

pg_start() {
    # Unix socket paths are limited to 107 bytes.
    ((${#PG_RUN} + 17 < 108)) ||
        die "socket dir path too long: $PG_RUN (set TSAPI_PG_SOCKET_DIR to a short dir)"
    pg_init
    as_root install -d -o postgres -g postgres -m 755 "$PG_RUN"
    if pg_running; then
        local port
        port=$(pg_running_port)
        if [[ $port == "$PG_PORT" ]]; then
            log "PostgreSQL already running on 127.0.0.1:$PG_PORT"
            return 0
        fi
        log "PostgreSQL runs on port $port but TSAPI_PG_PORT=$PG_PORT: restarting it"
        pg_stop
    fi
    pg_write_conf
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    if ! pg_ctl_ -l "$PG_LOG" -w -t 60 -s start; then
        as_root tail -n 20 "$PG_LOG" >&2 || true
        die "PostgreSQL did not start (log: $PG_LOG)"
    fi
}

pg_stop() {
    if [[ -n ${PG_BIN:-} ]] && pg_running; then
        log "stopping PostgreSQL"
        pg_ctl_ -m fast -w -t 60 -s stop
    else
        log "PostgreSQL is not running"
    fi
}

pg_ensure_database() {
    local db=$1
    local psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres)
    if [[ -z $("${psql[@]}" -tAc "select 1 from pg_database where datname = '$db'") ]]; then
        log "creating database $db"
        "${psql[@]}" -c "create database \"$db\""
    fi
}

# PID of our redis-server if it is alive (guards against a stale pidfile whose PID
# was reused by another process).
redis_pid() {
    local pid
    [[ -f $REDIS_PID ]] || return 1
    pid=$(<"$REDIS_PID")
    [[ $pid =~ ^[0-9]+$ && $(cat "/proc/$pid/comm" 2>/dev/null) == redis-server* ]] || return 1
    echo "$pid"
}

# PING over bash's /dev/tcp, so redis-cli is not required.
redis_ping() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT" || exit 1
        printf 'PING\r\n' >&3
        IFS= read -r -t 2 reply <&3 && [[ $reply == +PONG* ]]
    ) 2>/dev/null
}

redis_up() { redis_pid >/dev/null && redis_ping; }

redis_start() {
    mkdir -p "$REDIS_DIR"
    local pid
    if pid=$(redis_pid); then
        if redis_ping; then
            log "Redis already running on 127.0.0.1:$REDIS_PORT"
            return 0
        fi
        log "Redis (pid $pid) does not answer on port $REDIS_PORT: restarting it"
        redis_stop
    fi
    log "starting Redis on 127.0.0.1:$REDIS_PORT"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --daemonize yes --pidfile "$REDIS_PID" --logfile "$REDIS_LOG" --dir "$REDIS_DIR"
    if ! wait_for 10 redis_up; then
        tail -n 20 "$REDIS_LOG" >&2 || true
        die "Redis did not start (log: $REDIS_LOG)"
    fi
}

pid_gone() { ! kill -0 "$1" 2>/dev/null; }

redis_stop() {
    local pid
    if pid=$(redis_pid); then
        log "stopping Redis (pid $pid)"
        kill "$pid"
        wait_for 10 pid_gone "$pid" || die "Redis (pid $pid) did not stop"
        rm -f "$REDIS_PID"
    else
        log "Redis is not running"
    fi
}

# --- the streaming standby (`tools/dev up --replica`): a read replica of the local cluster ---

standby_ctl() { as_postgres "$PG_BIN/pg_ctl" -D "$PG_STANDBY_DATA" "$@"; }
standby_running() { standby_ctl status >/dev/null 2>&1; }

# pg_basebackup -R once (it writes primary_conninfo and standby.signal), then start it as a
# hot standby on its own port. The primary's defaults allow it: wal_level=replica, 10 WAL
# senders, and initdb's trust entries for replication connections from 127.0.0.1.
standby_start() {
    if ! as_postgres test -f "$PG_STANDBY_DATA/PG_VERSION" 2>/dev/null; then
        log "pg_basebackup of 127.0.0.1:$PG_PORT into ${PG_STANDBY_DATA#"$ROOT"/}"
        as_root install -d -o postgres -g postgres -m 700 "$PG_STANDBY_DATA"
        as_postgres "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PG_PORT" -U postgres \
            -D "$PG_STANDBY_DATA" -R -X stream -c fast
    fi
    if standby_running; then
        log "standby already running on 127.0.0.1:$PG_STANDBY_PORT"
        return 0
    fi
    # The base backup copied the primary's tsapi.conf; the standby needs its own port.
    { pg_conf "$PG_STANDBY_PORT" && echo "hot_standby = on"; } |
        as_postgres tee "$PG_STANDBY_DATA/tsapi.conf" >/dev/null
    log "starting the standby on 127.0.0.1:$PG_STANDBY_PORT"
    if ! standby_ctl -l "$PG_STANDBY_LOG" -w -t 60 -s start; then
        as_root tail -n 20 "$PG_STANDBY_LOG" >&2 || true
        die "the standby did not start (log: $PG_STANDBY_LOG)"
    fi
}

standby_stop() {
    if [[ -n ${PG_BIN:-} ]] && standby_running; then
        log "stopping the standby"
        standby_ctl -m fast -w -t 60 -s stop
    fi
}

# --- serving: N gunicorn nodes behind nginx -------------------------------------------------

# serve_cluster N: nodes on 127.0.0.1:PORT+1…PORT+N, nginx on 127.0.0.1:PORT in front (the
# config deploy/nginx/tsapi.conf.template, rendered by tools/nginx_conf.py). Runs until
# Ctrl-C or until any of them exits, then stops the others. One that failed (a node or nginx
# that cannot bind its port, taken, exits 1 at start) fails `up` naming it: it must not look
# as if it served. One stopped as asked (Ctrl-C reaches them all too, and they exit 0, maybe
# before the INT trap has run) returns 0.
serve_cluster() {
    local count=$1 port=${PORT:-8000} i node_port pid status=0
    local dir=$LOCAL/nginx nodes=() pids=() interrupted=""
    local -A names=()
    mkdir -p "$dir"
    rm -f "$dir"/node-*.pid # tools/tier_cost.py finds the nodes by these
    chmod 755 "$dir" # nginx's workers (nobody, when run as root) write temporary files here
    # nginx appends the client's address to X-Forwarded-For; the nodes believe that one entry.
    export TSAPI_TRUSTED_PROXIES=1
    for ((i = 1; i <= count; i++)); do
        node_port=$((port + i))
        nodes+=(--node "127.0.0.1:$node_port")
        # Each node its own Prometheus directory (gunicorn.conf.py makes one when unset).
        env -u PROMETHEUS_MULTIPROC_DIR GUNICORN_BIND="127.0.0.1:$node_port" \
            "$VENV/bin/gunicorn" wsgi:app --pid "$dir/node-$i.pid" &
        pids+=($!)
        names[$!]="gunicorn node $i (127.0.0.1:$node_port)"
    done
    # The rollup refresher runs beside the nodes and stops with them.
    "$VENV/bin/tsapi" rollups run &
    pids+=($!)
    names[$!]="the rollup refresher"
    "$VENV/bin/python" tools/nginx_conf.py --dir "$dir" --listen "127.0.0.1:$port" \
        "${nodes[@]}" >"$dir/nginx.conf"
    /usr/sbin/nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;' &
    pids+=($!)
    names[$!]="nginx (127.0.0.1:$port; log ${dir#"$ROOT"/}/error.log)"
    # shellcheck disable=SC2064  # expand the pids now
    trap "kill ${pids[*]} 2>/dev/null; wait" EXIT
    trap 'interrupted=1' INT TERM
    wait -n -p pid "${pids[@]}" || status=$?
    if [[ -n $interrupted ]] || ((status == 0)); then return 0; fi
    die "${names[$pid]:-a server} exited (status $status), so the others were stopped" \
        "(see its messages above)"
}
