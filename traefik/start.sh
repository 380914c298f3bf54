#!/bin/sh
# Entry point of the traefik service (compose.yaml): choose the static configuration from
# PAASTECH_TLS, put the ACME account email in it, and run Traefik on the result.
set -eu
src="${PAASTECH_TRAEFIK_DIR:-/etc/paastech}"  # where compose.yaml mounts traefik/
out="${PAASTECH_TRAEFIK_RENDERED:-/tmp/traefik.yml}"
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
        ;;
    *)
        cp "$src/traefik-notls.yml" "$out"
        ;;
esac
exec traefik --configFile="$out"
