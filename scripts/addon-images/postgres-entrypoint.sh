#!/bin/sh
# PaaSTech PostgreSQL add-on server (issue 15). Runs as the postgres user.
# Env: PAASTECH_ADDON_PASSWORD (the app role's password, set again at every start so a
# rotation is a container re-creation), PGDATA (on the add-on's named volume).
set -eu
: "${PAASTECH_ADDON_PASSWORD:?PAASTECH_ADDON_PASSWORD is required}"
case $PAASTECH_ADDON_PASSWORD in *[!A-Za-z0-9_-]*) echo "bad password characters" >&2; exit 2;; esac
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    # Local (socket) connections are the container's own postgres user (backups, psql by
    # the platform); network connections need the app role's password.
    initdb -D "$PGDATA" -U postgres --auth-local=peer --auth-host=scram-sha-256 -E UTF8 \
        --locale=C.UTF-8 >/dev/null
    printf 'host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n' \
        >>"$PGDATA/pg_hba.conf"
    postgres --single -D "$PGDATA" postgres >/dev/null <<SQL
CREATE ROLE app LOGIN PASSWORD '$PAASTECH_ADDON_PASSWORD'
CREATE DATABASE app OWNER app
SQL
fi
postgres --single -D "$PGDATA" postgres >/dev/null <<SQL
ALTER ROLE app PASSWORD '$PAASTECH_ADDON_PASSWORD'
SQL
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp \
    -c "max_connections=${PAASTECH_ADDON_MAX_CONNECTIONS:-20}"
