#!/usr/bin/env bash
# A 3-node Docker Swarm on this machine, for the Swarm runtime's tests and `make cluster`
# (issue 16). Each node is a dockerd of its own in a network namespace of its own, joined by veth
# pairs on a host bridge; node 1 is the manager, 2 and 3 workers. The host's own dockerd is never
# touched: it joins no swarm and none of its settings change.
#
#   scripts/cluster.sh up [--registry-port PORT]   create (idempotent: a running cluster is kept)
#   scripts/cluster.sh down                         remove exactly what the state file names
#   scripts/cluster.sh status                       the nodes as the manager sees them
#   scripts/cluster.sh env                          PAASTECH_* settings to drive the cluster
#   scripts/cluster.sh kill-node N                  node N "dies" (tests: SIGKILL all its processes);
#                                                   `up` starts it again and it rejoins
#
# The platform registry listens on the host's 127.0.0.1, which a namespace cannot reach: nodes pull
# from BRIDGE_IP:PORT instead, DNAT-ed by one host rule to 127.0.0.1:PORT (route_localnet on our
# bridge only), and each node trusts the bridge's /24 as an insecure registry. The Swarm runtime
# names images by the same digest at that address (PAASTECH_SWARM_REGISTRY_ADDRESS).
#
# Everything made is appended to $STATE (one "kind value" a line) *before* it is made, so `down`
# removes it even after a half-finished `up`; `down` removes in reverse order, tolerating what is
# already gone.
set -euo pipefail

DIR=${PAASTECH_CLUSTER_DIR:-/var/tmp/paastech-cluster}
STATE="$DIR/state"
NODES=${PAASTECH_CLUSTER_NODES:-3}
PREFIX=${PAASTECH_CLUSTER_SUBNET:-10.231.7}  # a private /24 nothing else on this machine uses
BRIDGE=ptsw0
BRIDGE_IP="$PREFIX.1"
NS=pt-sw  # namespaces pt-sw1, pt-sw2, ...
DOCKERD=$(command -v dockerd || echo /usr/sbin/dockerd)

node_ip() { echo "$PREFIX.$((10 + $1))"; }
node_sock() { echo "$DIR/n$1/docker.sock"; }
in_ns() { local n=$1; shift; nsenter --net="/var/run/netns/$NS$n" "$@"; }
dk() { local n=$1; shift; docker -H "unix://$(node_sock "$n")" "$@"; }
record() { mkdir -p "$DIR"; recorded "$*" || echo "$*" >>"$STATE"; }
recorded() { [ -f "$STATE" ] && grep -qxF "$*" "$STATE"; }

wait_for() {  # wait_for SECONDS CMD...: run CMD until it succeeds, at most SECONDS
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
}

up_network() {
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        record bridge "$BRIDGE"
        ip link add "$BRIDGE" type bridge
        ip addr add "$BRIDGE_IP/24" dev "$BRIDGE"
        ip link set "$BRIDGE" up
    fi
    # Docker's FORWARD policy is DROP: let node-to-node traffic cross our bridge.
    local rule=(FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT)
    if ! iptables -C "${rule[@]}" 2>/dev/null; then
        record iptables "${rule[*]}"
        iptables -I "${rule[@]}"
    fi
    local n
    for n in $(seq 1 "$NODES"); do
        if [ ! -e "/var/run/netns/$NS$n" ]; then
            record netns "$NS$n"
            ip netns add "$NS$n"
        fi
        if ! ip link show "${BRIDGE}h$n" >/dev/null 2>&1; then
            record veth "${BRIDGE}h$n"
            ip link add "${BRIDGE}h$n" type veth peer name eth0 netns "$NS$n"
            ip link set "${BRIDGE}h$n" master "$BRIDGE" up
            ip netns exec "$NS$n" ip addr add "$(node_ip "$n")/24" dev eth0
            ip netns exec "$NS$n" ip link set eth0 up
            ip netns exec "$NS$n" ip link set lo up
            ip netns exec "$NS$n" ip route add default via "$BRIDGE_IP"
        fi
    done
}

up_registry_route() {  # nodes reach the host's 127.0.0.1:PORT registry at BRIDGE_IP:PORT
    local port=$1
    local rule=(PREROUTING -i "$BRIDGE" -d "$BRIDGE_IP" -p tcp --dport "$port" -j DNAT --to-destination "127.0.0.1:$port")
    if ! iptables -t nat -C "${rule[@]}" 2>/dev/null; then
        record iptables-nat "${rule[*]}"
        iptables -t nat -I "${rule[@]}"
    fi
    sysctl -qw "net.ipv4.conf.$BRIDGE.route_localnet=1"
}

node_running() { dk "$1" info >/dev/null 2>&1; }

up_node() {
    local n=$1 root="$DIR/n$1"
    node_running "$n" && return 0
    record dir "$root"
    mkdir -p "$root"
    # Short exec root: containerd's unix sockets live under it (108-byte path limit).
    local exec_root="/run/pt-sw$n"
    record dir "$exec_root"
    # The node's containers under a cgroup parent of their own: `kill-node` and `down` find
    # every process of the node (dockerd, containerd, shims in its netns; containers here).
    record cgroup "$NS$n"
    # nsenter --net only: `ip netns exec` would also remount /sys and hide the cgroup mounts.
    in_ns "$n" setsid "$DOCKERD" \
        --data-root="$root/data" --exec-root="$exec_root" --pidfile="$root/docker.pid" \
        --host="unix://$(node_sock "$n")" \
        --containerd-namespace="pt-sw$n" --containerd-plugins-namespace="pt-sw$n-plugins" \
        --insecure-registry="$PREFIX.0/24" --storage-driver=overlay2 --cgroup-parent="/$NS$n" \
        >"$root/dockerd.log" 2>&1 </dev/null &
    record dockerd "$root/docker.pid"
    wait_for 60 node_running "$n" || { echo "cluster.sh: node $n did not start (see $root/dockerd.log)" >&2; exit 1; }
}

up_swarm() {
    local state
    state=$(dk 1 info --format '{{.Swarm.LocalNodeState}}')
    if [ "$state" != active ]; then
        # A 1 s heartbeat: a dead node is noticed (and its tasks rescheduled) in seconds.
        dk 1 swarm init --advertise-addr "$(node_ip 1)" --listen-addr "$(node_ip 1):2377" \
            --dispatcher-heartbeat 1s >/dev/null
    fi
    local token n
    token=$(dk 1 swarm join-token -q worker)
    for n in $(seq 2 "$NODES"); do
        state=$(dk "$n" info --format '{{.Swarm.LocalNodeState}}')
        if [ "$state" != active ]; then
            # The manager may not accept on 2377 yet right after init ("connection refused",
            # seen once in a row of runs): retry for a while; a refused join leaves no state.
            join() { dk "$n" swarm join --token "$token" --advertise-addr "$(node_ip "$n")" "$(node_ip 1):2377"; }
            wait_for 30 join || { echo "cluster.sh: node $n could not join" >&2; join >&2; exit 1; }
        fi
    done
    ready() { [ "$(dk 1 node ls --format '{{.Status}}' | grep -c Ready)" -ge "$NODES" ]; }
    wait_for 60 ready || { echo "cluster.sh: not every node is Ready" >&2; dk 1 node ls >&2; exit 1; }
}

cmd_up() {
    local port=${PAASTECH_REGISTRY_PORT:-5050}
    while [ $# -gt 0 ]; do
        case $1 in
            --registry-port) port=$2; shift 2 ;;
            *) echo "cluster.sh: unknown option $1" >&2; exit 2 ;;
        esac
    done
    [[ $port =~ ^[0-9]+$ ]] || { echo "cluster.sh: bad registry port $port" >&2; exit 2; }
    up_network
    up_registry_route "$port"
    local n
    for n in $(seq 1 "$NODES"); do up_node "$n"; done
    up_swarm
    cmd_env "$port"
}

cmd_env() {
    local port=${1:-${PAASTECH_REGISTRY_PORT:-5050}}
    echo "PAASTECH_RUNTIME=swarm"
    echo "PAASTECH_SWARM_DOCKER_URL=unix://$(node_sock 1)"
    echo "PAASTECH_SWARM_REGISTRY_ADDRESS=$BRIDGE_IP:$port"
    echo "PAASTECH_CLUSTER_NODE_ADDRESSES=$(for n in $(seq 1 "$NODES"); do printf '%s ' "$(node_ip "$n")"; done | xargs | tr ' ' ,)"
}

stop_dockerd() {  # SIGTERM, then SIGKILL; its containers (and their shims) go with it
    local pidfile=$1 pid
    [ -s "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    # Only a dockerd: a stale pid file may name a recycled pid.
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
}

cgroup_procs() {  # every process in the cgroups under /NAME (any v1 controller, or v2)
    cat /sys/fs/cgroup/*/"$1"/*/cgroup.procs /sys/fs/cgroup/"$1"/*/cgroup.procs 2>/dev/null | sort -u
}

kill_node_processes() {  # SIGKILL: the node's dockerd, containerd and shims, and its containers
    local ns=$1 pid
    for pid in $( (ip netns pids "$ns" 2>/dev/null; cgroup_procs "$ns") | sort -u); do
        [ "$pid" != $$ ] && kill -KILL "$pid" 2>/dev/null || true
    done
}

remove_cgroup() {
    local name=$1 dir
    kill_node_processes "$name"
    for dir in /sys/fs/cgroup/*/"$name" /sys/fs/cgroup/"$name"; do
        [ -d "$dir" ] || continue
        find "$dir" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
        rmdir "$dir" 2>/dev/null || true
    done
}

cmd_kill_node() {  # the node's machine dies: every process of it is killed at once
    local n=$1
    [[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le "$NODES" ] || { echo "cluster.sh: no node $n" >&2; exit 2; }
    kill_node_processes "$NS$n"
}

cmd_down() {
    [ -f "$STATE" ] || { echo "cluster.sh: nothing to remove"; return 0; }
    local kind value
    # Daemons first (in the order of the file is fine), then the rest in reverse order.
    while read -r kind value; do
        [ "$kind" = dockerd ] && stop_dockerd "$value"
    done <"$STATE"
    tac "$STATE" | while read -r kind value; do
        case $kind in
            cgroup) remove_cgroup "$value" ;;
            dir)
                # Mounts a killed daemon left (overlay, shm, netns files) keep the dir busy.
                grep -F " $value/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
                rm -rf --one-file-system "$value" 2>/dev/null || rm -rf "$value" || true ;;
            veth) ip link del "$value" 2>/dev/null || true ;;
            netns) kill_node_processes "$value"; ip netns del "$value" 2>/dev/null || true ;;
            bridge) ip link del "$value" 2>/dev/null || true ;;
            iptables) read -ra rule <<<"$value"; iptables -D "${rule[@]}" 2>/dev/null || true ;;
            iptables-nat) read -ra rule <<<"$value"; iptables -t nat -D "${rule[@]}" 2>/dev/null || true ;;
        esac
    done
    rm -f "$STATE"
    rmdir "$DIR" 2>/dev/null || true
    echo "cluster.sh: removed"
}

cmd_status() {
    if [ ! -f "$STATE" ]; then echo "cluster.sh: no cluster"; return 1; fi
    dk 1 node ls
}

case ${1:-} in
    up) shift; cmd_up "$@" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) shift; cmd_env "$@" ;;
    kill-node) shift; cmd_kill_node "${1:-}" ;;
    *) echo "usage: scripts/cluster.sh up [--registry-port PORT] | down | status | env | kill-node N" >&2; exit 2 ;;
esac
