#!/bin/sh
# PaaSTech Redis add-on server (issue 15). Runs as the redis user; data (AOF) on the
# add-on's named volume (the working directory). The password goes through a config file
# so it is not on the command line.
set -eu
: "${PAASTECH_ADDON_PASSWORD:?PAASTECH_ADDON_PASSWORD is required}"
conf=$(mktemp)
printf 'requirepass %s\n' "$PAASTECH_ADDON_PASSWORD" >"$conf"
# A restore (Pomegranate puts restore.rdb on the volume while the server is stopped):
# the RDB replaces the data set and the AOF is rebuilt from it.
if [ -f restore.rdb ]; then
    rm -rf appendonlydir
    mv restore.rdb dump.rdb
    redis-server "$conf" --dir "$PWD" --appendonly no --bind 127.0.0.1 --port 0 \
        --unixsocket /tmp/restore.sock --daemonize no &
    pid=$!
    i=0
    until REDISCLI_AUTH=$PAASTECH_ADDON_PASSWORD redis-cli -s /tmp/restore.sock ping >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -lt 300 ] || { echo "restore: server did not start" >&2; exit 1; }
        sleep 0.1
    done
    REDISCLI_AUTH=$PAASTECH_ADDON_PASSWORD redis-cli -s /tmp/restore.sock config set appendonly yes >/dev/null
    until [ -f appendonlydir/*.manifest ] 2>/dev/null && \
        REDISCLI_AUTH=$PAASTECH_ADDON_PASSWORD redis-cli -s /tmp/restore.sock info persistence \
            | grep -q 'aof_rewrite_in_progress:0'; do
        sleep 0.1
    done
    REDISCLI_AUTH=$PAASTECH_ADDON_PASSWORD redis-cli -s /tmp/restore.sock shutdown nosave >/dev/null || true
    wait $pid || true
fi
exec redis-server "$conf" --dir "$PWD" --appendonly yes --bind '* -::*' --protected-mode no \
    --maxmemory "${PAASTECH_ADDON_MAXMEMORY:-64mb}" --maxmemory-policy noeviction
