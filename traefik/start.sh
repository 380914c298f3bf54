#!/bin/sh
# Entry point of the traefik service (compose.yaml): choose the static configuration from
# PAASTECH_TLS, put the ACME account email in it, put the matching platform routes beside the
# API's custom-domain routes, and run Traefik on the result.
set -eu
src="${PAASTECH_TRAEFIK_DIR:-/etc/paastech}"  # where compose.yaml mounts traefik/
out="${PAASTECH_TRAEFIK_RENDERED:-/tmp/traefik.yml}"
routes="${PAASTECH_TRAEFIK_ROUTES:-/etc/paastech/routing}"  # the file provider's directory
mkdir -p "$routes"
case "${PAASTECH_TLS:-true}" in
    true | True | TRUE | 1 | yes | on)
        email="${PAASTECH_ACME_EMAIL:-}"
        case "$email" in
            *@*.*) ;;
            *) echo "start.sh: set PAASTECH_ACME_EMAIL to the Let's Encrypt account email" >&2; exit 2 ;;
        esac
        case "$email" in
            *[!A-Za-z0-9@._+-]*) echo "start.sh: unexpected characters in PAASTECH_ACME_EMAIL" >&2; exit 2 ;;
        esac
        sed "s|@PAASTECH_ACME_EMAIL@|$email|" "$src/traefik.yml" >"$out"
        cp "$src/dynamic/tls.yml" "$routes/platform.yml"
        ;;
    *)
        cp "$src/traefik-notls.yml" "$out"
        cp "$src/dynamic/notls.yml" "$routes/platform.yml"
        ;;
esac
# Issue 16: on a Docker Swarm, Traefik's Swarm provider instead of its Docker provider.
case "${PAASTECH_RUNTIME:-docker}" in
    docker) ;;
    swarm)
        awk -v block="$src/provider-swarm.yml" '
            /# >>> docker provider/ { while ((getline line < block) > 0) print line; skip = 1; next }
            /# <<< docker provider/ { skip = 0; next }
            !skip' "$out" >"$out.swarm"
        mv "$out.swarm" "$out"
        # Off host networking (compose.swarm.yaml), the platform's routes go to the host's
        # address on Traefik's bridge instead of 127.0.0.1.
        addr="${PAASTECH_PLATFORM_ADDRESS:-}"
        case "$addr" in
            *[!A-Za-z0-9.:-]*) echo "start.sh: unexpected characters in PAASTECH_PLATFORM_ADDRESS" >&2; exit 2 ;;
            ?*) sed "s|http://127\.0\.0\.1:|http://$addr:|" "$routes/platform.yml" >"$routes/platform.yml.tmp"
                mv "$routes/platform.yml.tmp" "$routes/platform.yml" ;;
        esac
        ;;
    *) echo "start.sh: PAASTECH_RUNTIME is docker or swarm" >&2; exit 2 ;;
esac
exec traefik --configFile="$out"
