#!/usr/bin/env bash
# The project networks' firewall (issue 11): a packet routed from one project network to another
# is dropped, whatever state Docker's own rules are in at that moment.
#
# Why Docker's rules are not enough: Docker 20.10 drops such packets in its
# DOCKER-ISOLATION-STAGE-1/2 chains, but each time it creates a network it deletes its FORWARD
# jump to DOCKER-ISOLATION-STAGE-1 and inserts it again at the top (two iptables runs). In
# between, the bridges' own ACCEPT rules let a new connection from one bridge to another through:
# any tenant's first deploy creates a network, and a tenant probing another's address in a loop
# got through 190 times during 120 network creations. Docker never touches the mangle table, so
# a rule in mangle FORWARD holds through that window. Packets bridged within one network
# (br_netfilter hands them to FORWARD too) pass; packets routed between two networks of the pool
# are dropped.
#   PAASTECH_PROJECT_NETWORK_POOL=10.210.0.0/16 scripts/project-network-firewall.sh install
#       (idempotent; Pomegranate runs it before it uses a project network)
#   PAASTECH_PROJECT_NETWORK_POOL=10.210.0.0/16 scripts/project-network-firewall.sh remove
set -euo pipefail
POOL=${PAASTECH_PROJECT_NETWORK_POOL:-10.210.0.0/16}
CHAIN=PAASTECH-PROJECTS
IPT="iptables -w 10 -t mangle"

[[ $POOL =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$ ]] || { echo "project-network-firewall.sh: bad pool $POOL" >&2; exit 2; }

install() {
    command -v iptables >/dev/null || { echo "project-network-firewall.sh: iptables is missing" >&2; exit 1; }
    exec 9>/run/paastech-project-network-firewall.lock
    flock 9
    if ! $IPT -n -L "$CHAIN" >/dev/null 2>&1; then
        $IPT -N "$CHAIN"
    fi
    # The chain's two rules, whichever pools jump to it (each added only when missing).
    $IPT -C "$CHAIN" -m physdev --physdev-is-bridged -j RETURN 2>/dev/null \
        || $IPT -I "$CHAIN" 1 -m physdev --physdev-is-bridged -j RETURN
    $IPT -C "$CHAIN" -j DROP 2>/dev/null || $IPT -A "$CHAIN" -j DROP
    $IPT -C FORWARD -s "$POOL" -d "$POOL" -j "$CHAIN" 2>/dev/null \
        || $IPT -I FORWARD 1 -s "$POOL" -d "$POOL" -j "$CHAIN"
}

remove() {
    exec 9>/run/paastech-project-network-firewall.lock
    flock 9
    while $IPT -D FORWARD -s "$POOL" -d "$POOL" -j "$CHAIN" 2>/dev/null; do :; done
    # The chain goes with the last pool that jumps to it.
    if ! $IPT -S FORWARD 2>/dev/null | grep -q -- "-j $CHAIN\$"; then
        $IPT -F "$CHAIN" 2>/dev/null || true
        $IPT -X "$CHAIN" 2>/dev/null || true
    fi
}

case "${1:-install}" in
    install) install ;;
    remove) remove ;;
    *) echo "usage: $0 install|remove" >&2; exit 2 ;;
esac
