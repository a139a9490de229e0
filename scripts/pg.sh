#!/usr/bin/env bash
# A private, throw-away PostgreSQL server for tests.
#
# Source it and call the functions:
#     source scripts/pg.sh
#     pg_start                     # exports TEST_POSTGRES_URL, PG_BINDIR, PSQL
#     pg_create_database conf_x    # prints postgres://postgres@127.0.0.1:PORT/conf_x
#     pg_stop                      # also registered by pg_start on EXIT
# or run it:
#     bash scripts/pg.sh smoke     # start, query, create/drop a database, stop
#     bash scripts/pg.sh shell     # start, open psql, stop when psql exits
#
# The server runs from its own data directory under a mktemp directory, as the `postgres` OS
# user when we are root (initdb refuses root), listens on 127.0.0.1 only, on a free port from
# PG_PORT (default 55432) upwards, with trust authentication, fsync off and at most 256 MB of WAL
# (each test creates a database, which PostgreSQL 15 writes to the WAL). Missing server
# binaries are installed from apt (`postgresql`).

PG_PORT_BASE="${PG_PORT:-55432}"

_pg_log() { printf '[pg] %s\n' "$*" >&2; }

_pg_newest_initdb() {
    local f
    for f in /usr/lib/postgresql/*/bin/initdb; do
        [ -x "$f" ] && printf '%s\n' "$f"
    done | sort -V | tail -n 1
}

_pg_as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Sets PG_BINDIR to the newest /usr/lib/postgresql/*/bin holding initdb, installing it if needed.
pg_ensure_installed() {
    local initdb
    initdb=$(_pg_newest_initdb)
    if [ -z "$initdb" ]; then
        _pg_log "PostgreSQL server binaries not found: installing the Debian package"
        _pg_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || return 1
        _pg_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 || return 1
        initdb=$(_pg_newest_initdb)
        if [ -z "$initdb" ]; then
            _pg_log "still no initdb after installing postgresql"
            return 1
        fi
    fi
    PG_BINDIR=$(dirname "$initdb")
    PSQL="$PG_BINDIR/psql"
    export PG_BINDIR PSQL
}

# Runs a command as the OS user that owns the cluster, from a directory that user may enter,
# with only stdin/stdout/stderr open: the server must not inherit a caller's pipe (a `tee`,
# a CI runner's log), or whoever reads that pipe would wait for the server to exit.
_pg_run() {
    (
        cd / || exit 1
        for fd in "/proc/$BASHPID/fd/"*; do
            fd=${fd##*/}
            if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-"; fi
        done
        if [ "$(id -u)" -eq 0 ]; then
            exec runuser -u postgres -- "$@"
        else
            exec "$@"
        fi
    )
}

_pg_port_free() {
    # Something answers on 127.0.0.1:$1 -> taken.
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Starts the private server; exports TEST_POSTGRES_URL. Idempotent within one shell.
pg_start() {
    if [ -n "${PG_TMPDIR:-}" ] && [ -d "${PG_TMPDIR}/data" ]; then
        return 0
    fi
    pg_ensure_installed || return 1

    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres || return 1
    fi

    PG_TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/warbler-pg.XXXXXX") || return 1
    export PG_TMPDIR
    mkdir -p "$PG_TMPDIR/data" "$PG_TMPDIR/socket"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R postgres: "$PG_TMPDIR"
        chmod 0755 "$PG_TMPDIR"  # the postgres user must reach it even if TMPDIR is private
    fi
    if [ -z "${PG_NO_TRAP:-}" ]; then  # callers with their own EXIT trap call pg_stop themselves
        trap pg_stop EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
    fi

    if ! _pg_run "$PG_BINDIR/initdb" -D "$PG_TMPDIR/data" -U postgres --auth=trust \
        --encoding=UTF8 --locale=C --no-sync >"$PG_TMPDIR/initdb.log" 2>&1; then
        _pg_log "initdb failed:"
        cat "$PG_TMPDIR/initdb.log" >&2
        return 1
    fi

    local port=$PG_PORT_BASE _
    for _ in $(seq 1 50); do
        if _pg_port_free "$port"; then
            if _pg_run "$PG_BINDIR/pg_ctl" -D "$PG_TMPDIR/data" -l "$PG_TMPDIR/postgres.log" -w -t 60 \
                -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_TMPDIR/socket -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=64MB -c max_wal_size=256MB" \
                start >"$PG_TMPDIR/pg_ctl.log" 2>&1; then
                PG_PORT_USED=$port
                break
            fi
            # Lost a race for the port, or a real failure: look at the log before retrying.
            if ! grep -q "could not bind\|Address already in use" "$PG_TMPDIR/postgres.log" 2>/dev/null; then
                _pg_log "pg_ctl start failed:"
                cat "$PG_TMPDIR/pg_ctl.log" "$PG_TMPDIR/postgres.log" >&2 2>/dev/null
                return 1
            fi
        fi
        port=$((port + 1))
    done
    if [ -z "${PG_PORT_USED:-}" ]; then
        _pg_log "no free port from $PG_PORT_BASE"
        return 1
    fi
    export PG_PORT_USED
    export TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:${PG_PORT_USED}/postgres"
    if ! "$PG_BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT_USED" -t 30; then
        _pg_log "server does not answer"
        return 1
    fi
    _pg_log "PostgreSQL $("$PG_BINDIR/postgres" --version | awk '{print $3}') on $TEST_POSTGRES_URL (data in $PG_TMPDIR)"
}

# Stops the server and removes its directory. Safe to call more than once.
pg_stop() {
    if [ -n "${PG_TMPDIR:-}" ] && [ -d "$PG_TMPDIR" ]; then
        if [ -f "$PG_TMPDIR/data/postmaster.pid" ]; then
            _pg_run "$PG_BINDIR/pg_ctl" -D "$PG_TMPDIR/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
        fi
        rm -rf "$PG_TMPDIR"
        _pg_log "stopped and removed $PG_TMPDIR"
    fi
    PG_TMPDIR=
}

# psql against the private server (extra arguments are passed on).
pg_psql() {
    "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$TEST_POSTGRES_URL" "$@"
}

# Creates a database and prints its URL.
pg_create_database() {
    local name=$1
    pg_psql -c "CREATE DATABASE \"$name\"" >&2 || return 1
    printf 'postgres://postgres@127.0.0.1:%s/%s\n' "$PG_PORT_USED" "$name"
}

# Prints the tail of the server log (for failure reports).
pg_log_tail() {
    [ -n "${PG_TMPDIR:-}" ] && tail -n "${1:-50}" "$PG_TMPDIR/postgres.log" 2>/dev/null
}

pg_smoke() {
    pg_start || return 1
    local url version
    version=$(pg_psql -At -c "SHOW server_version") || return 1
    [ "$(pg_psql -At -c "SHOW fsync")" = off ] || { _pg_log "fsync is not off"; return 1; }
    [ "$(pg_psql -At -c "SHOW listen_addresses")" = 127.0.0.1 ] || { _pg_log "listens beyond 127.0.0.1"; return 1; }
    url=$(pg_create_database "smoke_$$") || return 1
    "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$url" -c "CREATE TABLE t (x int); INSERT INTO t VALUES (42);" || return 1
    [ "$("$PSQL" -X -At -d "$url" -c "SELECT x FROM t")" = 42 ] || return 1
    pg_psql -c "DROP DATABASE \"smoke_$$\"" || return 1
    _pg_log "smoke test passed (server $version, $TEST_POSTGRES_URL)"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u
    case "${1:-smoke}" in
        smoke) pg_smoke ;;
        shell) pg_start && pg_psql ;;
        *) echo "usage: $0 [smoke|shell]" >&2; exit 2 ;;
    esac
fi
