#!/usr/bin/env bash
# Ensure a dedicated PostgreSQL server for PaaSTech answers on 127.0.0.1:$PAASTECH_PG_PORT
# (default 55432), data in $PAASTECH_PG_DIR (default /var/lib/paastech-pg), with a role
# `paastech` (password `paastech`, CREATEDB) and a database `paastech`. No systemd, and the
# distribution's default cluster (5432) is left alone. Prints the database URL.
set -euo pipefail

die() { echo "postgres.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root"

PORT=${PAASTECH_PG_PORT:-55432}
DIR=${PAASTECH_PG_DIR:-/var/lib/paastech-pg}
SOCK=/var/run/postgresql
LOG=$DIR/server.log

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1; }

if [ -z "$(pg_bin)" ] || ! [ -x "$(pg_bin)/initdb" ]; then
    export DEBIAN_FRONTEND=noninteractive
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install PostgreSQL manually"
    ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1 || apt-get update -qq >/dev/null
    if ! apt-get install -y -qq postgresql >/dev/null 2>&1; then
        apt-get update -qq >/dev/null || die "apt-get update failed"
        apt-get install -y -qq postgresql >/dev/null || die "apt-get install postgresql failed"
    fi
fi
BIN=$(pg_bin)
[ -x "$BIN/initdb" ] || die "PostgreSQL server binaries not found under /usr/lib/postgresql"
id postgres >/dev/null 2>&1 || die "user postgres missing (the postgresql package creates it)"

as_pg() { runuser -u postgres -- "$@"; }

mkdir -p "$SOCK"
chown postgres:postgres "$SOCK"

if ! "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
    if ! [ -f "$DIR/PG_VERSION" ]; then
        mkdir -p "$DIR"
        chown postgres:postgres "$DIR"
        chmod 700 "$DIR"
        # Unix socket: trust (admin via runuser); TCP: password (scram) auth.
        as_pg "$BIN/initdb" -D "$DIR" -U postgres -E UTF8 --locale=C \
            --auth-local=trust --auth-host=scram-sha-256 >"$DIR/../paastech-pg-initdb.log" 2>&1 \
            || die "initdb failed: see $DIR/../paastech-pg-initdb.log"
        rm -f "$DIR/../paastech-pg-initdb.log"
    fi
    as_pg "$BIN/pg_ctl" -D "$DIR" -l "$LOG" -w -t 60 start \
        -o "-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$SOCK" >/dev/null \
        || { tail -n 20 "$LOG" >&2 2>/dev/null; die "pg_ctl start failed (log: $LOG)"; }
    for _ in $(seq 1 30); do
        "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" && break
        sleep 1
    done
    "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" || die "server not ready on 127.0.0.1:$PORT (log: $LOG)"
fi

as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -d postgres >/dev/null <<'SQL' \
    || die "could not create role/database paastech (is 127.0.0.1:$PORT our cluster?)"
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'paastech') THEN
    CREATE ROLE paastech LOGIN CREATEDB PASSWORD 'paastech';
  ELSE
    ALTER ROLE paastech LOGIN CREATEDB PASSWORD 'paastech';
  END IF;
END
$$;
SELECT 'CREATE DATABASE paastech OWNER paastech'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'paastech')
\gexec
SQL

echo "postgres://paastech:paastech@127.0.0.1:$PORT/paastech"
