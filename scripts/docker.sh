#!/usr/bin/env bash
# Ensure a Docker engine answers `docker info`. Installs docker.io (Debian) and
# starts dockerd in the background when needed (no systemd on the target hosts).
# Idempotent and quiet on success. Callers use the legacy builder (DOCKER_BUILDKIT=0).
set -euo pipefail

die() { echo "docker.sh: $*" >&2; exit 1; }

docker_ok() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

docker_ok && exit 0

find_dockerd() {
    command -v dockerd 2>/dev/null && return 0
    [ -x /usr/sbin/dockerd ] && { echo /usr/sbin/dockerd; return 0; }
    [ -x /usr/bin/dockerd ] && { echo /usr/bin/dockerd; return 0; }
    return 1
}

apt_install() {
    [ "$(id -u)" -eq 0 ] || die "not root: cannot install $*"
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* manually"
    export DEBIAN_FRONTEND=noninteractive
    # Refresh the package lists only if they are missing or the install fails.
    if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
        apt-get update -qq >/dev/null || die "apt-get update failed"
    fi
    if ! apt-get install -y -qq "$@" >/dev/null 2>&1; then
        apt-get update -qq >/dev/null || die "apt-get update failed"
        apt-get install -y -qq "$@" >/dev/null || die "apt-get install $* failed"
    fi
}

DOCKERD=$(find_dockerd) || { apt_install docker.io; DOCKERD=$(find_dockerd) || die "dockerd still missing after installing docker.io"; }
command -v docker >/dev/null 2>&1 || apt_install docker.io
command -v docker >/dev/null 2>&1 || die "docker CLI missing"

LOG_DIR=${PAASTECH_STATE_DIR:-/var/log}
mkdir -p "$LOG_DIR"
LOG=$LOG_DIR/paastech-dockerd.log

# Start dockerd unless one is already running (e.g. still starting up).
if ! pgrep -x dockerd >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || die "not root: cannot start dockerd"
    # containerd/runc shipped with docker.io must be on PATH for dockerd.
    export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
    # A stale pid file from a killed daemon prevents a restart.
    if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid 2>/dev/null)" 2>/dev/null; then
        rm -f /var/run/docker.pid
    fi
    # setsid: its own session, so ending the shell or job that started it does not end it.
    # --live-restore: containers keep running while the engine restarts (an upgrade, a crash),
    # so apps stay up; the ingress and Pomegranate reconnect and resync when it is back.
    # (dockerd refuses a flag that its daemon.json sets too.)
    flags=(--live-restore)
    grep -qs '"live-restore"' /etc/docker/daemon.json && flags=()
    setsid nohup "$DOCKERD" "${flags[@]}" >>"$LOG" 2>&1 </dev/null &
    disown || true
fi

for _ in $(seq 1 60); do
    docker_ok && exit 0
    sleep 1
done
echo "docker.sh: dockerd did not answer within 60 s; last log lines ($LOG):" >&2
tail -n 20 "$LOG" >&2 2>/dev/null || true
exit 1
