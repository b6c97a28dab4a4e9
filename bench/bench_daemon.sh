#!/bin/bash
# Daemon benchmarks (issue: the daemon; TLS: issue 12):
#  1. wrk on GET /v1/vms with 100 VMs defined, over TCP loopback with the token,
#     plain (--insecure-http) and TLS: requests/s and p50/p99 latency;
#  1b. bench_api, one client for all three ways in: GET /v1/vms requests/s over
#     the Unix socket, plain TCP and TLS, runs interleaved, medians of 5;
#  2. full lifecycles per second (create, start the idle guest, wait for
#     running, stop, delete), 1 client and 8 clients;
#  3. daemon memory with 100 VMs defined, and a running VM's worker.
# Usage: bench/bench_daemon.sh BUILD_DIR   (runs are medians of 3 where it says so)
set -euo pipefail

BUILD=$(cd "${1:-build}" && pwd)
VMMD=$BUILD/vmmd/vmmd
GUESTS=$BUILD/tests/guests
tmp=$(mktemp -d)
STATE=$tmp/state
SOCK=$STATE/vmmd.sock
PORT=$((20000 + RANDOM % 20000))
# The same daemon twice: TLS on PORT (the default), plain HTTP on PORT2 (--insecure-http).
STATE2=$tmp/state2
PORT2=$((PORT + 1))
trap 'kill $(cat $tmp/pid $tmp/pid2 2>/dev/null) 2>/dev/null; pkill -9 -f -- "--control $STATE/run/" 2>/dev/null; rm -rf $tmp' EXIT

# start_bench_daemon STATE PIDFILE serve-flags...: up, with 100 VMs defined
start_bench_daemon() {
    local state=$1 pidfile=$2
    shift 2
    "$VMMD" serve --state-dir "$state" --image-dir "$GUESTS" --max-vcpus 256 --log-level warn \
        --log-file "$state.log" --no-networks "$@" &
    echo $! >"$pidfile"
    for _ in $(seq 100); do curl -s --unix-socket "$state/vmmd.sock" http://x/v1/host >/dev/null && break; sleep 0.05; done
    for i in $(seq -w 1 100); do
        curl -s -o /dev/null --unix-socket "$state/vmmd.sock" -X POST -H 'Content-Type: application/json' \
            --data-binary "{\"name\":\"vm-$i\",\"kernel\":\"$GUESTS/guest-idle.elf\",\"memory_mib\":64}" http://x/v1/vms
    done
}
start_bench_daemon "$STATE" "$tmp/pid" --listen "127.0.0.1:$PORT"
start_bench_daemon "$STATE2" "$tmp/pid2" --listen "127.0.0.1:$PORT2" --insecure-http
pid=$(cat "$tmp/pid")
echo "daemon memory with 100 VMs defined: RSS $(awk '/VmRSS/{print $2}' /proc/$pid/status) kB, PSS $(awk '/^Pss:/{print $2}' /proc/$pid/smaps_rollup) kB"

token=$(cat "$STATE/token")
token2=$(cat "$STATE2/token")
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
# wrk does not check certificates: the TLS figure is the channel's cost.
for run in 1 2 3; do
    for scheme in http https; do
        if [[ $scheme == https ]]; then url=https://127.0.0.1:$PORT tok=$token; else url=http://127.0.0.1:$PORT2 tok=$token2; fi
        wrk -t2 -c16 -d5s --latency -H "Authorization: Bearer $tok" "$url/v1/vms" >"$tmp/wrk.$run.$scheme"
        if grep -q "Non-2xx" "$tmp/wrk.$run.$scheme"; then echo "wrk run $run had errors:"; cat "$tmp/wrk.$run.$scheme"; exit 1; fi
        rps=$(awk '/Requests\/sec/{print $2}' "$tmp/wrk.$run.$scheme")
        p50=$(awk '$1=="50%"{print $2}' "$tmp/wrk.$run.$scheme")
        p99=$(awk '$1=="99%"{print $2}' "$tmp/wrk.$run.$scheme")
        xfer=$(awk "/Transfer\/sec/{print \$2}" "$tmp/wrk.$run.$scheme")
        echo "wrk GET /v1/vms (100 VMs, $scheme + token, 2 threads, 16 connections, 5 s) run $run: $rps req/s ($xfer/s), p50 $p50, p99 $p99"
    done
done

# One client for the three ways in, interleaved run by run (this machine's speed drifts).
for run in 1 2 3 4 5; do
    "$BUILD/bench/bench_api" "unix:$SOCK" /v1/vms "$token" 16 3 | tee -a "$tmp/api.unix"
    "$BUILD/bench/bench_api" "tcp:127.0.0.1:$PORT2" /v1/vms "$token2" 16 3 | tee -a "$tmp/api.tcp"
    "$BUILD/bench/bench_api" "tls:127.0.0.1:$PORT" /v1/vms "$token" 16 3 | tee -a "$tmp/api.tls"
done
u=$(awk '{print $2}' "$tmp/api.unix" | median)
p=$(awk '{print $2}' "$tmp/api.tcp" | median)
t=$(awk '{print $2}' "$tmp/api.tls" | median)
echo "GET /v1/vms, 100 VMs, bench_api with 16 keep-alive connections, median of 5 runs of 3 s:"
echo "  Unix socket $u req/s, plain TCP $p req/s, TLS $t req/s; TLS/plain $(awk -v a="$t" -v b="$p" 'BEGIN {printf "%.2f", a / b}'), TLS/Unix $(awk -v a="$t" -v b="$u" 'BEGIN {printf "%.2f", a / b}')"
kill "$(cat "$tmp/pid2")"

curl -s -o /dev/null --unix-socket "$SOCK" -X POST http://x/v1/vms/vm-001/start
wpid=$(curl -s --unix-socket "$SOCK" http://x/v1/vms/vm-001 | jq -r .worker_pid)
echo "a running VM's worker (idle guest, 64 MiB): RSS $(awk '/VmRSS/{print $2}' /proc/$wpid/status) kB, PSS $(awk '/^Pss:/{print $2}' /proc/$wpid/smaps_rollup) kB"
curl -s -o /dev/null --unix-socket "$SOCK" -X POST http://x/v1/vms/vm-001/stop

for clients in 1 8; do
    "$BUILD/bench/bench_lifecycle" "$SOCK" "$GUESTS/guest-idle.elf" "$clients" 10
done
