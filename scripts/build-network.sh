#!/usr/bin/env bash
# The build network's firewall (issue 10). RUN steps of the isolated builder run on a CNI bridge
# with the subnet $PAASTECH_BUILD_SUBNET (default 10.89.0.0/24). These rules let them reach the
# internet (package indexes) through the host's default route and nothing local:
#   - nothing on the host itself (INPUT): the platform's ports, the registry, anything bound to
#     the bridge gateway or another host address;
#   - no private, link-local (169.254.169.254, the cloud metadata address) or CGNAT destinations:
#     Docker's bridges (other tenants' containers), other builds, the host's LAN;
#   - except the DNS servers of /etc/resolv.conf when they are on a private address.
# One chain PAASTECH-BUILD of these rules in two tables:
#   - filter INPUT (the host): REJECT, so a step fails at once with "unreachable";
#   - mangle FORWARD (everything routed on): DROP. Not the filter table: Docker 20.10 deletes
#     and re-inserts its own FORWARD rules each time it creates a network (any tenant's first
#     deploy), and in that window a published port's ACCEPT comes first; a build probing another
#     tenant's container in a loop got through. Docker never touches mangle (REJECT is
#     filter-only, so a forwarded probe times out instead of being refused).
#   scripts/build-network.sh install   (idempotent; Pomegranate runs it before its first build)
#   scripts/build-network.sh remove
set -euo pipefail
SUBNET=${PAASTECH_BUILD_SUBNET:-10.89.0.0/24}
CHAIN=PAASTECH-BUILD
IPT="iptables -w 10"
MANGLE="iptables -w 10 -t mangle"

remove() {
    while $IPT -D INPUT -s "$SUBNET" -j "$CHAIN" 2>/dev/null; do :; done
    while $IPT -D INPUT -s "$SUBNET" -j REJECT 2>/dev/null; do :; done
    while $MANGLE -D FORWARD -s "$SUBNET" -j "$CHAIN" 2>/dev/null; do :; done
    remove_filter_forward
    local t
    for t in "$IPT" "$MANGLE"; do
        $t -F "$CHAIN" 2>/dev/null || true
        $t -X "$CHAIN" 2>/dev/null || true
    done
}

# The filter FORWARD and DOCKER-USER jumps of earlier versions (the hole above).
remove_filter_forward() {
    while $IPT -D FORWARD -s "$SUBNET" -j "$CHAIN" 2>/dev/null; do :; done
    while $IPT -D DOCKER-USER -s "$SUBNET" -j "$CHAIN" 2>/dev/null; do :; done
}

# fill TABLE-COMMAND VERDICT...: the chain's rules in one table, ending each match in VERDICT.
fill() {
    local t=$1; shift
    $t -N "$CHAIN" 2>/dev/null || $t -F "$CHAIN"
    # Replies to connections the build opened (e.g. DNS answers routed back) stay allowed.
    $t -A "$CHAIN" -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
    local ns
    for ns in $(awk '$1 == "nameserver" { print $2 }' /etc/resolv.conf | grep -E '^[0-9.]+$' | grep -v '^127\.' || true); do
        $t -A "$CHAIN" -d "$ns" -p udp --dport 53 -j RETURN
        $t -A "$CHAIN" -d "$ns" -p tcp --dport 53 -j RETURN
    done
    # An outgoing proxy the host uses (HTTP(S)_PROXY) may sit on a private address.
    local proxy host ip
    for proxy in "${HTTP_PROXY:-}" "${HTTPS_PROXY:-}" "${http_proxy:-}" "${https_proxy:-}"; do
        [ -n "$proxy" ] || continue
        host=$(echo "$proxy" | sed -E 's#^[a-z]+://##; s#^[^@]*@##; s#[:/].*$##')
        for ip in $(getent ahostsv4 "$host" | awk '{ print $1 }' | sort -u); do
            $t -A "$CHAIN" -d "$ip" -p tcp -j RETURN
        done
    done
    local net
    for net in 127.0.0.0/8 10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 169.254.0.0/16 100.64.0.0/10 \
               192.0.2.0/24 198.18.0.0/15 224.0.0.0/4 240.0.0.0/4 "$SUBNET"; do
        $t -A "$CHAIN" -d "$net" "$@"
    done
    # Every address of this host, whatever network it is on.
    local addr
    for addr in $(ip -4 -o addr show | awk '{ split($4, a, "/"); print a[1] }'); do
        $t -A "$CHAIN" -d "$addr" "$@"
    done
}

installed() {
    $IPT -C INPUT -s "$SUBNET" -j "$CHAIN" 2>/dev/null \
        && $IPT -C INPUT -s "$SUBNET" -j REJECT 2>/dev/null \
        && $MANGLE -C FORWARD -s "$SUBNET" -j "$CHAIN" 2>/dev/null \
        && ! $IPT -C FORWARD -s "$SUBNET" -j "$CHAIN" 2>/dev/null
}

install() {
    command -v iptables >/dev/null || { echo "build-network.sh: iptables is missing" >&2; exit 1; }
    exec 9>/run/paastech-build-network.lock
    flock 9
    # Installed already (by another Pomegranate on this host): leave it, never flush the chains
    # under builds that are running. `remove` then `install` picks up new host addresses.
    installed && return 0
    fill "$IPT" -j REJECT --reject-with icmp-net-prohibited
    fill "$MANGLE" -j DROP
    $MANGLE -C FORWARD -s "$SUBNET" -j "$CHAIN" 2>/dev/null || $MANGLE -I FORWARD 1 -s "$SUBNET" -j "$CHAIN"
    remove_filter_forward
    # INPUT: the host itself is never a destination (the chain above returns only for replies
    # and DNS to other hosts); anything that falls through to the host is refused. Docker never
    # rewrites INPUT.
    $IPT -C INPUT -s "$SUBNET" -j "$CHAIN" 2>/dev/null || $IPT -I INPUT 1 -s "$SUBNET" -j "$CHAIN"
    $IPT -C INPUT -s "$SUBNET" -j REJECT 2>/dev/null || $IPT -I INPUT 2 -s "$SUBNET" -j REJECT
}

case "${1:-install}" in
    install) install ;;
    remove) remove ;;
    *) echo "usage: $0 install|remove" >&2; exit 2 ;;
esac
