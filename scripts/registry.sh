#!/usr/bin/env bash
# The platform image registry (issue 10): Debian's docker-registry (CNCF Distribution) on
# 127.0.0.1:$PAASTECH_REGISTRY_PORT, storage in $PAASTECH_DATA_DIR/registry, deletes enabled,
# htpasswd auth (a build cannot pull another project's image from it: it has no credentials).
#   scripts/registry.sh          run in the foreground (the Procfile's `registry` line)
#   scripts/registry.sh prepare  only write the config and the credentials
# The password is generated once and kept in $PAASTECH_DATA_DIR/registry/password (0600);
# Pomegranate reads it from there (or from PAASTECH_REGISTRY_PASSWORD).
set -euo pipefail
cd "$(dirname "$0")/.."

DATA_DIR=${PAASTECH_DATA_DIR:-.data}
PORT=${PAASTECH_REGISTRY_PORT:-5050}
USERNAME=${PAASTECH_REGISTRY_USERNAME:-paastech}
DIR="$DATA_DIR/registry"
mkdir -p "$DIR/storage"
DIR=$(cd "$DIR" && pwd)

command -v docker-registry >/dev/null || { echo "registry.sh: docker-registry is missing (scripts/bootstrap.sh)" >&2; exit 1; }
command -v htpasswd >/dev/null || { echo "registry.sh: htpasswd is missing (apache2-utils)" >&2; exit 1; }

umask 077
if [ -n "${PAASTECH_REGISTRY_PASSWORD:-}" ]; then
    password=$PAASTECH_REGISTRY_PASSWORD
else
    [ -s "$DIR/password" ] || head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$DIR/password"
    password=$(cat "$DIR/password")
fi
htpasswd -Bbn "$USERNAME" "$password" >"$DIR/htpasswd" 2>/dev/null
[ -s "$DIR/http-secret" ] || head -c 24 /dev/urandom | base64 >"$DIR/http-secret"

cat >"$DIR/config.yml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $DIR/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$PORT
  secret: $(cat "$DIR/http-secret")
auth:
  htpasswd:
    realm: paastech-registry
    path: $DIR/htpasswd
YAML

[ "${1:-run}" = prepare ] && exit 0
exec docker-registry serve "$DIR/config.yml"
