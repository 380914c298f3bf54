#!/usr/bin/env bash
# Install what is missing: Debian packages (when root) and the project's virtualenv.
#   scripts/bootstrap.sh up     what `make up` needs (git, ssh, Docker, image-building tools)
#   scripts/bootstrap.sh test   what `make test` needs (adds PostgreSQL)
# Idempotent: a second run installs nothing and takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-up}"
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

need_cmds=(git ssh ssh-keygen make curl)
pkgs_up=(git openssh-client make curl ca-certificates docker.io debootstrap busybox-static)
# Issue 10: the isolated builder (buildah with runc, CNI plugins, iptables) and the registry.
pkgs_up+=(buildah runc containernetworking-plugins iptables docker-registry apache2-utils)
# `make up`'s supervisor (backend/supervise.py): runsvdir, runsv, svlogd and sv.
pkgs_up+=(runit)
# browser tests: Debian's Chromium + chromedriver; pebble: the ACME test server (issue 21);
# iproute2: private engines of the reliability tests (issue 20)
pkgs_test=(postgresql chromium chromium-driver pebble iproute2)

missing_pkgs() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
    done
}

install_pkgs() {
    [ $# -gt 0 ] || return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "bootstrap: please install: $*" >&2
        return 1
    fi
    echo "bootstrap: installing $*"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq "$@" >/dev/null 2>&1; then
        apt-get update -qq >/dev/null
        apt-get install -y -qq "$@" >/dev/null
    fi
}

if command -v dpkg-query >/dev/null 2>&1; then
    wanted=("${pkgs_up[@]}")
    [ "$mode" = test ] && wanted+=("${pkgs_test[@]}")
    # python3-venv only when the interpreter cannot make a virtualenv by itself.
    "$PYTHON" -c "import ensurepip, venv" 2>/dev/null || wanted+=(python3-venv)
    # The web app's build needs node and npm (bun comes from the npm registry, scripts/web.sh);
    # a node that came with its own npm (e.g. NodeSource's package) is kept as it is.
    command -v npm >/dev/null 2>&1 || wanted+=(nodejs npm)
    mapfile -t todo < <(missing_pkgs "${wanted[@]}")
    # A tool may be present without Debian's package (e.g. a docker CLI in /usr/local/bin).
    install_pkgs "${todo[@]}"
fi
for c in "${need_cmds[@]}"; do
    command -v "$c" >/dev/null 2>&1 || { echo "bootstrap: $c is missing" >&2; exit 1; }
done

stamp="$VENV/.installed"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    log="$VENV/pip-install.log"
    if ! { "$VENV/bin/python" -m pip install --upgrade pip && "$VENV/bin/python" -m pip install -e '.[dev]'; } >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        echo "bootstrap: pip install failed (full log: $log)" >&2
        exit 1
    fi
    touch "$stamp"
fi
