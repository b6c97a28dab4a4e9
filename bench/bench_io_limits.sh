#!/bin/bash
# Per-disk I/O limits (issue 14): achieved against configured throughput.
#
# The virtio-blk test guest's bench mode reads its disk in 1 MiB requests, 4 in
# flight, through `vmmd run --disk IMG,bytes_per_s=R,...`, at each rate, and one
# more case limits operations instead (ops_per_s=50: 50 requests of 1 MiB a
# second). Two ways, each figure the median of RUNS:
#
#  steady:  the default burst (one second's worth); the worker runs with a
#           control socket and the disk's read_bytes in its stats are sampled
#           SECONDS apart once the burst is spent (what the integration test
#           checks);
#  whole:   a burst of one request, the wall time of a whole run of about
#           SECONDS of data minus a run on a 1 MiB unlimited disk (boot and
#           exit). Every wake-up's latency is lost here: a bucket that holds
#           one request cannot save up what accrues while the I/O thread wakes,
#           so this is the worst case of a tiny burst.
#
# Usage: bench/bench_io_limits.sh [BUILD_DIR] [RUNS] [SECONDS] [RATES_MIB...]
#        (defaults: build 5 2 16 64 256)
set -euo pipefail

BUILD=$(cd "${1:-build}" && pwd)
RUNS=${2:-5}
SECS=${3:-2}
shift 3 2>/dev/null || shift $#
RATES=("$@")
((${#RATES[@]})) || RATES=(16 64 256)
NAME=bench_io_limits
. "$(dirname "${BASH_SOURCE[0]}")/vblk_bench_lib.sh"
img=$tmp/disk.img
tiny=$tmp/tiny.img
IMG_MIB=16
head -c $((IMG_MIB << 20)) /dev/urandom >"$img"
truncate -s 1M "$tiny"
cat "$img" "$tiny" >/dev/null # warm the page cache

# read_bytes of disk0 from a worker's control socket.
read_bytes() {
    echo '{"cmd":"stats"}' | socat -t 2 - "UNIX-CONNECT:$1" | sed -n 's/.*"disks":\[{"read_bytes":\([0-9]*\).*/\1/p'
}

# steady_rate DISK_ARG: MiB/s over SECS, sampled after the first second's burst.
steady_rate() {
    local sock=$tmp/ctl.sock pid b0 b1 t0 t1
    "$VMMD" run --kernel "$GUEST" --disk "$1" --cmdline "bench passes=1000000" --control "$sock" \
        --console-log "$tmp/console" </dev/null >/dev/null 2>"$tmp/err" &
    pid=$!
    for ((w = 0; w < 100; w++)); do [[ -S $sock ]] && break; sleep 0.02; done
    sleep 1.5
    t0=$(now_ns); b0=$(read_bytes "$sock")
    sleep "$SECS"
    t1=$(now_ns); b1=$(read_bytes "$sock")
    echo '{"cmd":"stop"}' | socat -t 2 - "UNIX-CONNECT:$sock" >/dev/null
    wait "$pid" || true
    awk -v b=$((b1 - b0)) -v ns=$((t1 - t0)) 'BEGIN {printf "%.3f\n", b / 1048576 / ns * 1e9}'
}

# Cases: "label|disk options (steady)|disk options (whole)|passes|configured figure|unit".
cases=()
for r in "${RATES[@]}"; do
    passes=$(((r * SECS + IMG_MIB - 1) / IMG_MIB))
    cases+=("bytes_per_s=${r}MiB|bytes_per_s=$((r << 20))|bytes_per_s=$((r << 20)),burst_bytes=1048576|$passes|$r|MiB/s")
done
cases+=("ops_per_s=50|ops_per_s=50|ops_per_s=50,burst_ops=1|$(((50 * SECS + IMG_MIB - 1) / IMG_MIB))|50|req/s")

for ((i = 0; i < RUNS; i++)); do
    run_ns "$tiny" "bench passes=1" >>"$tmp/base"
    for c in "${!cases[@]}"; do
        IFS='|' read -r _ steady whole passes _ _ <<<"${cases[c]}"
        steady_rate "$img,$steady" >>"$tmp/steady.$c"
        run_ns "$img,$whole" "bench passes=$passes" >>"$tmp/case.$c"
    done
done

base=$(median <"$tmp/base")
echo "virtio-blk reads through I/O limits: 1 MiB requests x4 in flight; medians of $RUNS runs"
echo "steady: default burst, read_bytes sampled ${SECS} s apart; whole: burst of one request, a"
echo "whole run of ~${SECS} s of data minus boot and exit ($((base / 1000000)) ms for a 1 MiB disk)"
printf '  %-22s %-12s %-18s %-18s\n' limit configured steady whole
pct() { awk -v g="$1" -v w="$2" 'BEGIN {printf "%+.1f %%", 100 * (g - w) / w}'; }
for c in "${!cases[@]}"; do
    IFS='|' read -r label _ _ passes want unit <<<"${cases[c]}"
    steady=$(median <"$tmp/steady.$c")
    ns=$(($(median <"$tmp/case.$c") - base))
    # MiB (= requests: each is 1 MiB) per second. The first request is the burst (free); the
    # rest came at the limited rate.
    whole=$(awk -v m="$((IMG_MIB * passes - 1))" -v ns="$ns" 'BEGIN {printf "%.2f", m / ns * 1e9}')
    printf '  %-22s %4s %-7s %7.2f (%7s) %7.2f (%7s)\n' "$label" "$want" "$unit" "$steady" \
        "$(pct "$steady" "$want")" "$whole" "$(pct "$whole" "$want")"
done
echo "  target: within 10 % of the configured rate"
