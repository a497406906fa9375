# shellcheck shell=bash
# Installation of everything tools/dev needs: apt packages, TimescaleDB (built from the
# Debian trixie source package, as bookworm has none) and the project virtualenv.
# Every step checks first and does nothing when already done, so reruns are fast.

PYTHON=${TSAPI_PYTHON:-python3}
APT_UPDATED=

# install_all [test]: `test` adds what only the test suite needs (the browser test's Chromium,
# InfluxDB 1.x as the InfluxQL oracle).
install_all() {
    mkdir -p "$LOCAL"
    # Serialise concurrent `up`/`test` runs: they would otherwise build/pip-install twice.
    exec 9>"$LOCAL/.install.lock"
    flock 9
    ensure_system_packages
    [[ ${1:-} != test ]] || ensure_test_browser
    [[ ${1:-} != test ]] || ensure_test_influxdb
    ensure_timescaledb
    ensure_venv
    # Release the lock (and close fd 9 so the exec'd gunicorn does not keep holding it).
    flock -u 9
    exec 9>&-
}

# Locate the PostgreSQL server: sets PG_CONFIG, PG_BIN, PG_MAJOR. Returns 1 if none.
# pg_config on PATH wins if it belongs to an installed server; otherwise the newest
# Debian server (a client-only pg_config, e.g. from libpq-dev, has no server binaries).
pg_detect() {
    local cfg=${TSAPI_PG_CONFIG:-} newest
    if [[ -z $cfg ]]; then
        cfg=$(command -v pg_config || true)
        if [[ -z $cfg || ! -x "$("$cfg" --bindir 2>/dev/null)/postgres" ]]; then
            newest=$(printf '%s\n' /usr/lib/postgresql/*/bin/postgres | sort -V | tail -n1)
            [[ -x $newest ]] || return 1
            cfg=${newest%/postgres}/pg_config
        fi
    fi
    [[ -x $cfg ]] || return 1
    PG_CONFIG=$cfg
    PG_BIN=$("$cfg" --bindir)
    [[ -x $PG_BIN/postgres ]] || return 1
    PG_MAJOR=$("$cfg" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
}

# Install the given apt packages that are not installed yet. `apt-get update` runs at
# most once per invocation, and only when something actually has to be installed.
apt_install() {
    local pkg missing=()
    for pkg in "$@"; do
        if [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) != "install ok installed" ]]; then
            missing+=("$pkg")
        fi
    done
    ((${#missing[@]})) || return 0
    command -v apt-get >/dev/null || die "please install: ${missing[*]} (no apt-get here)"
    if [[ -z $APT_UPDATED ]]; then
        log "apt-get update"
        as_root apt-get update -qq
        APT_UPDATED=1
    fi
    log "apt-get install ${missing[*]}"
    # Wait for another apt/dpkg run (e.g. a second checkout's tools/dev) instead of failing.
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 \
        "${missing[@]}" >/dev/null
}

ensure_system_packages() {
    if ! pg_detect; then
        apt_install postgresql # the distribution's default major version
        pg_detect || die "PostgreSQL server still not found after installing it"
    fi
    command -v redis-server >/dev/null || apt_install redis-server
    # The buffering reverse proxy in front of gunicorn's workers (tools/dev up, tests).
    [[ -x /usr/sbin/nginx ]] || apt_install nginx
}

# The explorer page's browser test drives Debian's Chromium through its matching chromedriver
# (same source package, so the versions always agree; nothing is downloaded at test time).
ensure_test_browser() {
    [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]] || apt_install chromium chromium-driver
}

# The InfluxQL tests compare tsapi's /query with InfluxDB 1.x's own answers: Debian's influxd
# is the oracle, started by the tests on a loopback port with a private data directory.
ensure_test_influxdb() {
    [[ -x /usr/bin/influxd ]] && return 0
    apt_install influxdb
    # The package enables a system-wide influxd on :8086 where systemd runs; the tests start
    # their own, so keep the machine's ports as they were.
    if [[ -d /run/systemd/system ]]; then
        as_root systemctl disable --now influxdb >/dev/null 2>&1 || true
    fi
}

# Print "URI KEYRING" of this machine's main Debian archive (the entry carrying the bare
# release codename, i.e. not -security/-updates). Reads deb822 *.sources files and
# one-line *.list files, so no mirror host name is ever hard-coded here. (Extra files
# may be given as arguments, for testing.)
debian_archive_source() {
    local codename files=() f
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    for f in "${@:-/etc/apt/sources.list}" /etc/apt/sources.list.d/*.{list,sources}; do
        [[ -f $f ]] && files+=("$f")
    done
    ((${#files[@]})) || return 1
    awk -v codename="$codename" '
        function emit(uris, suites, key,   u, s, nu, ns, U, S) {
            nu = split(uris, U, /[ \t]+/); ns = split(suites, S, /[ \t]+/)
            for (u = 1; u <= nu; u++) for (s = 1; s <= ns; s++)
                if (U[u] != "" && (S[s] == codename || (codename == "" && U[u] !~ /security/)))
                    print U[u], (key == "" ? "-" : key)
        }
        function flush() {
            if (types ~ /(^|[ \t])deb(-src)?([ \t]|$)/ && tolower(enabled) != "no") emit(uris, suites, key)
            types = uris = suites = key = enabled = ""
        }
        FNR == 1 { flush(); deb822 = (FILENAME ~ /\.sources$/) }
        /^[ \t]*#/ { next }
        deb822 && /^[ \t]*$/ { flush(); next }
        deb822 && /^[^ \t]/ {
            field = tolower($0); sub(/:.*/, "", field)
            value = $0; sub(/^[^:]*:[ \t]*/, "", value)
            if (field == "types") types = value
            else if (field == "uris") uris = value
            else if (field == "suites") suites = value
            else if (field == "enabled") enabled = value
            else if (field == "signed-by" && value ~ /^\//) key = value
            next
        }
        !deb822 && ($1 == "deb" || $1 == "deb-src") {
            line = $0; key = ""
            if (match(line, /\[[^]]*\]/)) {
                opts = substr(line, RSTART + 1, RLENGTH - 2)
                if (match(opts, /signed-by=[^ \t]+/)) key = substr(opts, RSTART + 10, RLENGTH - 10)
                line = substr($0, 1, index($0, "[") - 1) substr(line, index(line, "]") + 1)
            }
            split(line, F, " ")
            emit(F[2], F[3], key); key = ""
        }
        END { flush() }
    ' "${files[@]}" | awk '$1 !~ /security/ && !found { print; found = 1 } END { exit !found }'
}

# TimescaleDB is not packaged for bookworm: fetch the trixie source package and build
# the Apache-2 edition against the local server. Skipped when already installed.
ensure_timescaledb() {
    local sharedir
    sharedir=$("$PG_CONFIG" --sharedir)
    [[ -f $sharedir/extension/timescaledb.control ]] && return 0

    local started=$SECONDS
    log "TimescaleDB missing for PostgreSQL $PG_MAJOR: building it from the trixie source package"
    apt_install "postgresql-server-dev-$PG_MAJOR" cmake libssl-dev build-essential dpkg-dev

    local src uri key work=$LOCAL/build/timescaledb
    read -r uri key < <(debian_archive_source) ||
        die "cannot find the Debian archive URI in /etc/apt/sources.list{,.d/}"
    [[ $key != - ]] || key=/usr/share/keyrings/debian-archive-keyring.gpg
    local opts=
    [[ ! -f $key ]] || opts="[signed-by=$key] "
    rm -rf "$work"
    mkdir -p "$work"/apt/{lists/partial,cache/archives/partial,parts} "$work/src"

    # A private apt configuration (own sources file, lists and cache under $work): the
    # trixie deb-src entry never touches /etc/apt or the system's package lists, so it
    # cannot break or slow down a later `apt-get update` and needs no cleanup.
    printf 'deb-src %s%s trixie main\n' "$opts" "$uri" >"$work/apt/sources.list"
    local apt=(apt-get -qq
        -o "Dir::Etc::SourceList=$work/apt/sources.list"
        -o "Dir::Etc::SourceParts=$work/apt/parts"
        -o "Dir::State::Lists=$work/apt/lists"
        -o "Dir::Cache=$work/apt/cache"
        -o APT::Sandbox::User=root)
    "${apt[@]}" update
    (cd "$work/src" && "${apt[@]}" source timescaledb >/dev/null)
    rm -rf "$work/apt" # ~25 MB of trixie package lists, not needed any more
    src=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d -name 'timescaledb-*' | head -n1)
    [[ -n $src ]] || die "apt-get source timescaledb produced no source tree"

    # TimescaleDB's build asks git for its commit; keep git from finding *our* repo
    # (the build dir is inside it) and stamping tsapi's commit into the extension.
    export GIT_CEILING_DIRECTORIES=$ROOT
    cmake -S "$src" -B "$work/build" -Wno-dev \
        -DPG_CONFIG="$PG_CONFIG" \
        -DCMAKE_BUILD_TYPE=Release \
        -DAPACHE_ONLY=1 -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
        -DUSE_TELEMETRY=OFF -DSEND_TELEMETRY_DEFAULT=OFF \
        -DWARNINGS_AS_ERRORS=OFF >"$work/cmake.log" 2>&1 ||
        { cat "$work/cmake.log" >&2; die "cmake failed"; }
    make -C "$work/build" -j"$(nproc)" >"$work/make.log" 2>&1 ||
        { tail -n 50 "$work/make.log" >&2; die "TimescaleDB build failed (log: $work/make.log)"; }
    as_root make -C "$work/build" install >>"$work/make.log" 2>&1 ||
        { tail -n 20 "$work/make.log" >&2; die "make install failed (log: $work/make.log)"; }
    [[ -f $sharedir/extension/timescaledb.control ]] || die "make install did not install TimescaleDB"
    log "TimescaleDB $(basename "$src") installed in $((SECONDS - started))s"
}

# .venv with `pip install -e '.[dev]'`; a stamp holding pyproject.toml's sha256 makes
# reruns free until pyproject.toml changes.
ensure_venv() {
    local stamp=$VENV/.tsapi-pyproject.sha256 want
    want=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [[ -f $stamp && $(<"$stamp") == "$want" ]] && venv_healthy; then
        return 0
    fi
    if ! "$VENV/bin/python" -c '' 2>/dev/null; then
        log "creating $VENV"
        "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
            die "$PYTHON is $("$PYTHON" -V 2>&1); tsapi needs Python >= 3.11 (set TSAPI_PYTHON)"
        # Debian's system python needs python3-venv for `-m venv`; pyenv builds have it.
        "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    log "pip install -e '.[dev]'"
    rm -f "$stamp"
    "$VENV/bin/pip" install --disable-pip-version-check -q -e '.[dev]'
    echo "$want" >"$stamp"
}

venv_healthy() {
    "$VENV/bin/python" -c '' 2>/dev/null || return 1
    # An editable install made before tsapi/ existed maps no package; redo it then.
    [[ ! -d tsapi ]] || (cd / && "$VENV/bin/python" -c \
        'import importlib.util as u, sys; sys.exit(u.find_spec("tsapi") is None)')
}
