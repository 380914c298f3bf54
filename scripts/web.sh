#!/usr/bin/env bash
# The web app (frontend/, Reflex): its own virtualenv, bun from the npm registry, the build.
#   scripts/web.sh install   frontend/.venv (reflex, gql) and bun in frontend/.bun
#   scripts/web.sh build     install, then compile and build the production frontend
#   scripts/web.sh run       build, then serve it and its backend on 127.0.0.1:$PAASTECH_WEB_PORT
#   scripts/web.sh test      install (selenium for tests/e2e is a dev dependency of the platform)
#   scripts/web.sh env       print the environment the other modes use (for `eval`)
# Idempotent and offline after the first install: nothing is downloaded from outside the PyPI
# and npm registries; Reflex's telemetry, version check and bun download are off.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
FRONT="$ROOT/frontend"
mode="${1:-build}"
PYTHON="${PYTHON:-python3}"
BUN_VERSION=1.4.5
WEB_VENV="$FRONT/.venv"

export PATH="$FRONT/.bun/bin:$WEB_VENV/bin:$PATH"
export REFLEX_TELEMETRY_ENABLED=false
export REFLEX_CHECK_LATEST_VERSION=false
export REFLEX_DIR="$FRONT/.reflex"
export BUN_INSTALL="$FRONT/.bun"
export BUN_INSTALL_CACHE_DIR="$FRONT/.cache/bun"
export BUN_RUNTIME_TRANSPILER_CACHE_PATH="$FRONT/.cache/bun-transpiler"
export DO_NOT_TRACK=1
# The npm registry this machine is configured with (Reflex would otherwise probe mirrors).
if [ -z "${NPM_CONFIG_REGISTRY:-}" ]; then
    NPM_CONFIG_REGISTRY="$(npm config get registry 2>/dev/null || echo https://registry.npmjs.org/)"
    export NPM_CONFIG_REGISTRY
fi

install_bun() {
    if [ -x "$FRONT/.bun/bin/bun" ] && [ "$("$FRONT/.bun/bin/bun" --version 2>/dev/null)" = "$BUN_VERSION" ]; then
        return 0
    fi
    command -v npm >/dev/null 2>&1 || { echo "web: npm is missing (scripts/bootstrap.sh installs it)" >&2; exit 1; }
    echo "web: installing bun $BUN_VERSION from the npm registry into frontend/.bun"
    npm install -g --prefix "$FRONT/.bun" --no-fund --no-audit "bun@$BUN_VERSION" >/dev/null
    "$FRONT/.bun/bin/bun" --version >/dev/null
}

install_venv() {
    if [ ! -x "$WEB_VENV/bin/python" ]; then
        "$PYTHON" -m venv "$WEB_VENV"
    fi
    local stamp="$WEB_VENV/.installed"
    if [ ! -f "$stamp" ] || [ "$FRONT/requirements.txt" -nt "$stamp" ]; then
        echo "web: installing frontend/requirements.txt into frontend/.venv"
        local log="$WEB_VENV/pip-install.log"
        if ! { "$WEB_VENV/bin/python" -m pip install --upgrade pip \
            && "$WEB_VENV/bin/python" -m pip install -r "$FRONT/requirements.txt"; } >"$log" 2>&1; then
            tail -n 30 "$log" >&2
            echo "web: pip install failed (full log: $log)" >&2
            exit 1
        fi
        touch "$stamp"
    fi
}


build() {
    cd "$FRONT"
    # Compiles the pages and builds the production bundle into frontend/.web/build/client.
    # React Router's prerender step gives each page a fixed 10 s (not configurable): on a loaded
    # 2-core machine it timed out in about 1 build of 4 ("Prerender: Request failed ... timed
    # out"), and once in all three attempts of a build while two test suites ran. As root the
    # build runs ahead of other work (nice -5); three attempts, then it fails with the last error.
    local attempt nice=()
    [ "$(id -u)" -eq 0 ] && nice=(nice -n -5)
    for attempt in 1 2 3; do
        if "${nice[@]}" reflex export --frontend-only --no-zip --env prod --loglevel warning; then
            return 0
        fi
        echo "web: build attempt $attempt failed" >&2
    done
    return 1
}

case "$mode" in
    install) install_bun; install_venv ;;
    build) install_bun; install_venv; build ;;
    run)
        install_bun; install_venv
        cd "$FRONT"
        export PAASTECH_WEB_PORT="${PAASTECH_WEB_PORT:-3000}"
        # The key that makes the API trust the visitor addresses this app forwards (issue 12):
        # derived from the master key by the platform, so the web app never holds the master key.
        if [ -z "${PAASTECH_WEB_FORWARD_KEY:-}" ] && [ -x "$ROOT/.venv/bin/python" ]; then
            PAASTECH_WEB_FORWARD_KEY="$(cd "$ROOT" && .venv/bin/python -m backend derive-key web-forwarding)"
            export PAASTECH_WEB_FORWARD_KEY
        fi
        exec reflex run --env prod --loglevel "${REFLEX_LOGLEVEL:-warning}" \
            --frontend-port "$PAASTECH_WEB_PORT" --backend-port "$PAASTECH_WEB_PORT" \
            --backend-host "${PAASTECH_HOST:-127.0.0.1}"
        ;;
    test) install_bun; install_venv ;;
    env)
        for v in PATH REFLEX_TELEMETRY_ENABLED REFLEX_CHECK_LATEST_VERSION REFLEX_DIR BUN_INSTALL \
            BUN_INSTALL_CACHE_DIR BUN_RUNTIME_TRANSPILER_CACHE_PATH DO_NOT_TRACK NPM_CONFIG_REGISTRY; do
            printf 'export %s=%q\n' "$v" "${!v}"
        done
        ;;
    *) echo "usage: scripts/web.sh install|build|run|test|env" >&2; exit 2 ;;
esac
