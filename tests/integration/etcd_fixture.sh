# Sourced by the cluster tests (issue 16): a three-member etcd 3.4 cluster of
# their own (Debian's /usr/bin/etcd) on 127.0.0.1, to start, break and mend.
#
#   etcd_start_cluster        start members 1..3 and wait until all are healthy;
#                             sets ETCD_ENDPOINTS (the client URLs, comma-separated)
#   etcd_start_one            member 1 alone, a cluster of one (tests of what vmmd's
#                             members agree on, not of etcd's quorum); sets ETCD_ENDPOINTS
#   etcd_endpoint N           member N's client URL
#   etcd_ctl ARGS...          etcdctl (v3) against all members, 5 s command timeout
#   etcd_kill N               SIGKILL member N (its data dir stays)
#   etcd_stop N / etcd_cont N SIGSTOP / SIGCONT member N: alive but silent, a partition
#   etcd_restart N            start member N again on its data dir (state "existing") and
#                             wait until its client port answers (not for quorum)
#   etcd_wait_healthy [S]     until every running member is healthy (default 20 s)
#   etcd_cleanup              kill every member and remove the data; the caller registers
#                             it on EXIT (with daemon_fixture.sh: trap 'etcd_cleanup; cleanup' EXIT)
#
# Ports: six in a row (client and peer of each member), from a base derived from
# the shell's PID and moved on while `ss` shows any of them taken, so parallel
# test runs pick different ones. Heartbeat 100 ms, election 1 s: a lost leader
# is replaced within about a second, which the quorum tests wait on.

ETCD_BIN=${ETCD_BIN:-/usr/bin/etcd}
ETCDCTL_BIN=${ETCDCTL_BIN:-/usr/bin/etcdctl}
ETCD_DIR=
ETCD_ENDPOINTS=
ETCD_BASE_PORT=
ETCD_TOKEN=
ETCD_INITIAL_CLUSTER=
ETCD_PIDS=()

# etcd__ports_free BASE: none of BASE..BASE+5 is bound on this host (any state)
etcd__ports_free() {
    local p used
    used=$(ss -Htan 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }')
    for p in $(seq "$1" $(($1 + 5))); do
        grep -qx "$p" <<<"$used" && return 1
    done
    return 0
}

etcd__pick_ports() {
    local base=$((21000 + ($$ * 6) % 18000)) tries
    for tries in $(seq 100); do
        etcd__ports_free "$base" && break
        base=$((base + 6))
        ((base > 39000)) && base=21000
    done
    ETCD_BASE_PORT=$base
}

etcd__client_port() { echo $((ETCD_BASE_PORT + 2 * ($1 - 1))); }
etcd__peer_port() { echo $((ETCD_BASE_PORT + 2 * ($1 - 1) + 1)); }
etcd_endpoint() { echo "http://127.0.0.1:$(etcd__client_port "$1")"; }

etcd_ctl() { ETCDCTL_API=3 "$ETCDCTL_BIN" --endpoints "$ETCD_ENDPOINTS" --command-timeout 5s "$@"; }

# etcd__run N STATE: member N in the background, its pid in ETCD_PIDS[N]
etcd__run() {
    local n=$1 client peer
    client=$(etcd_endpoint "$n")
    peer="http://127.0.0.1:$(etcd__peer_port "$n")"
    "$ETCD_BIN" --name "m$n" --data-dir "$ETCD_DIR/m$n" \
        --listen-client-urls "$client" --advertise-client-urls "$client" \
        --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
        --initial-cluster "$ETCD_INITIAL_CLUSTER" --initial-cluster-state "$2" \
        --initial-cluster-token "$ETCD_TOKEN" \
        --heartbeat-interval 100 --election-timeout 1000 \
        --logger zap --log-outputs stderr >>"$ETCD_DIR/m$n.log" 2>&1 &
    ETCD_PIDS[n]=$!
}

# etcd__answers N: member N's client port serves /version (no quorum needed)
etcd__answers() { curl -s -m 1 "$(etcd_endpoint "$1")/version" 2>/dev/null | grep -q etcdserver; }

etcd__running() { [[ -n ${ETCD_PIDS[$1]:-} ]] && kill -0 "${ETCD_PIDS[$1]}" 2>/dev/null; }

etcd_wait_healthy() {
    local deadline=$((SECONDS + ${1:-20})) n eps
    while ((SECONDS < deadline)); do
        eps=
        for n in 1 2 3; do
            etcd__running "$n" && eps+=${eps:+,}$(etcd_endpoint "$n")
        done
        [[ -n $eps ]] && ETCDCTL_API=3 "$ETCDCTL_BIN" --endpoints "$eps" --command-timeout 2s \
            endpoint health >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "etcd: not healthy within ${1:-20} s; the members' logs are in $ETCD_DIR" >&2
    return 1
}

etcd_start_cluster() {
    local n
    [[ -x $ETCD_BIN ]] || { echo "etcd: no $ETCD_BIN (apt-get install etcd-server)" >&2; return 1; }
    ETCD_DIR=$(mktemp -d "${TMPDIR:-/tmp}/vmmd-etcd.XXXXXX") || return 1
    etcd__pick_ports
    ETCD_TOKEN="vmmd-test-$$-$RANDOM-$(date +%s%N)"
    ETCD_INITIAL_CLUSTER=
    ETCD_ENDPOINTS=
    for n in 1 2 3; do
        ETCD_INITIAL_CLUSTER+=${ETCD_INITIAL_CLUSTER:+,}m$n=http://127.0.0.1:$(etcd__peer_port "$n")
        ETCD_ENDPOINTS+=${ETCD_ENDPOINTS:+,}$(etcd_endpoint "$n")
    done
    for n in 1 2 3; do
        etcd__run "$n" new
    done
    etcd_wait_healthy 30 || { tail -n 5 "$ETCD_DIR"/m*.log >&2; return 1; }
}

etcd_start_one() {
    [[ -x $ETCD_BIN ]] || { echo "etcd: no $ETCD_BIN (apt-get install etcd-server)" >&2; return 1; }
    ETCD_DIR=$(mktemp -d "${TMPDIR:-/tmp}/vmmd-etcd.XXXXXX") || return 1
    etcd__pick_ports
    ETCD_TOKEN="vmmd-test-$$-$RANDOM-$(date +%s%N)"
    ETCD_INITIAL_CLUSTER=m1=http://127.0.0.1:$(etcd__peer_port 1)
    ETCD_ENDPOINTS=$(etcd_endpoint 1)
    etcd__run 1 new
    etcd_wait_healthy 30 || { tail -n 5 "$ETCD_DIR"/m1.log >&2; return 1; }
}

etcd_kill() {
    [[ -n ${ETCD_PIDS[$1]:-} ]] || return 0
    kill -9 "${ETCD_PIDS[$1]}" 2>/dev/null
    wait "${ETCD_PIDS[$1]}" 2>/dev/null
    ETCD_PIDS[$1]=
}

etcd_stop() { kill -STOP "${ETCD_PIDS[$1]}"; }
etcd_cont() { kill -CONT "${ETCD_PIDS[$1]}"; }

etcd_restart() {
    local _
    etcd_kill "$1"
    etcd__run "$1" existing
    for _ in $(seq 100); do
        etcd__answers "$1" && return 0
        sleep 0.1
    done
    echo "etcd: member $1 did not come back; see $ETCD_DIR/m$1.log" >&2
    return 1
}

etcd_cleanup() {
    local n
    for n in 1 2 3; do
        etcd_kill "$n"
    done
    [[ -n $ETCD_DIR ]] && rm -rf "$ETCD_DIR"
    ETCD_DIR=
    return 0
}
