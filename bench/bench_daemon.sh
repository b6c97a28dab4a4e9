#!/bin/bash
# Daemon benchmarks (issue: the daemon):
#  1. wrk on GET /v1/vms with 100 VMs defined, over TCP loopback with the token:
#     requests/s and p50/p99 latency;
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
trap 'kill $(cat $tmp/pid 2>/dev/null) 2>/dev/null; pkill -9 -f -- "--control $STATE/run/" 2>/dev/null; rm -rf $tmp' EXIT

"$VMMD" serve --state-dir "$STATE" --image-dir "$GUESTS" --listen "127.0.0.1:$PORT" \
    --max-vcpus 256 --log-level warn --log-file "$tmp/log" &
echo $! >"$tmp/pid"
for _ in $(seq 100); do curl -s --unix-socket "$SOCK" http://x/v1/host >/dev/null && break; sleep 0.05; done
for i in $(seq -w 1 100); do
    curl -s -o /dev/null --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
        --data-binary "{\"name\":\"vm-$i\",\"kernel\":\"$GUESTS/guest-idle.elf\",\"memory_mib\":64}" http://x/v1/vms
done
pid=$(cat "$tmp/pid")
echo "daemon memory with 100 VMs defined: RSS $(awk '/VmRSS/{print $2}' /proc/$pid/status) kB, PSS $(awk '/^Pss:/{print $2}' /proc/$pid/smaps_rollup) kB"

token=$(cat "$STATE/token")
for run in 1 2 3; do
    wrk -t2 -c16 -d5s --latency -H "Authorization: Bearer $token" "http://127.0.0.1:$PORT/v1/vms" >"$tmp/wrk.$run"
    if grep -q "Non-2xx" "$tmp/wrk.$run"; then echo "wrk run $run had errors:"; cat "$tmp/wrk.$run"; exit 1; fi
    rps=$(awk '/Requests\/sec/{print $2}' "$tmp/wrk.$run")
    p50=$(awk '$1=="50%"{print $2}' "$tmp/wrk.$run")
    p99=$(awk '$1=="99%"{print $2}' "$tmp/wrk.$run")
    xfer=$(awk "/Transfer\/sec/{print \$2}" "$tmp/wrk.$run")
    echo "wrk GET /v1/vms (100 VMs, TCP + token, 2 threads, 16 connections, 5 s) run $run: $rps req/s ($xfer/s), p50 $p50, p99 $p99"
done

curl -s -o /dev/null --unix-socket "$SOCK" -X POST http://x/v1/vms/vm-001/start
wpid=$(curl -s --unix-socket "$SOCK" http://x/v1/vms/vm-001 | jq -r .worker_pid)
echo "a running VM's worker (idle guest, 64 MiB): RSS $(awk '/VmRSS/{print $2}' /proc/$wpid/status) kB, PSS $(awk '/^Pss:/{print $2}' /proc/$wpid/smaps_rollup) kB"
curl -s -o /dev/null --unix-socket "$SOCK" -X POST http://x/v1/vms/vm-001/stop

for clients in 1 8; do
    "$BUILD/bench/bench_lifecycle" "$SOCK" "$GUESTS/guest-idle.elf" "$clients" 10
done
