#!/bin/bash
# virtio-blk throughput against the host's own read of the same file
# (issue 3, target: the device backend at >= 80 % of the host's throughput).
#
#  host:  dd if=IMG of=/dev/null bs=1M PASSES times, page cache warm;
#  guest: the virtio-blk test guest's bench mode reads the whole disk PASSES
#         times in 1 MiB requests, 4 in flight, through `vmmd run`, waiting
#         for completions by MSI-X interrupt and, separately, by polling. Its
#         boot and exit cost is taken out by subtracting a run on a 1 MiB
#         disk (one request). Host and guest runs alternate; all figures
#         are medians of RUNS. The guest's own TSC figure is printed too
#         when the host's TSC frequency is known.
#
# Usage: bench/bench_virtio_blk.sh [BUILD_DIR] [RUNS] [SIZE_MIB] [PASSES]
#        (defaults: build 5 256 8; use a Release build: this times the VMM)
set -euo pipefail

BUILD=$(cd "${1:-build}" && pwd)
RUNS=${2:-5}
SIZE_MIB=${3:-256}
PASSES=${4:-8}
NAME=bench_virtio_blk
. "$(dirname "${BASH_SOURCE[0]}")/vblk_bench_lib.sh"
img=$tmp/disk.img
tiny=$tmp/tiny.img
head -c $((SIZE_MIB << 20)) /dev/urandom >"$img"
truncate -s 1M "$tiny"
cat "$img" "$tiny" >/dev/null # warm the page cache

# The host: dd over the file PASSES times, as much data as one guest run reads.
host_ns() {
    local t0 t1
    t0=$(now_ns)
    for ((p = 0; p < PASSES; p++)); do dd if="$img" of=/dev/null bs=1M 2>/dev/null; done
    t1=$(now_ns)
    echo $((t1 - t0))
}

# guest_ns DISK CMDLINE: wall ns of one `vmmd run`; the guest's cycles go to $tmp/cycles.
guest_ns() {
    local ns
    ns=$(run_ns "$1" "$2")
    sed -n 's/.*cycles=\([0-9]*\).*/\1/p' "$tmp/out" >"$tmp/cycles"
    echo "$ns"
}

# Interleaved, so that other load on the machine hits host and guest alike. The
# guest waits for completions by halting until an MSI-X interrupt (as Linux
# does), or by polling the used ring (its vCPU then spins in KVM's emulator,
# using a CPU the I/O thread may need on a small host).
for ((i = 0; i < RUNS; i++)); do
    host_ns >>"$tmp/host"
    for wait in irq poll; do
        opt=""; [[ $wait == poll ]] && opt=poll
        guest_ns "$img" "bench passes=$PASSES $opt" >>"$tmp/big.$wait"
        cat "$tmp/cycles" >>"$tmp/cycles.$wait"
        guest_ns "$tiny" "bench passes=1 $opt" >>"$tmp/small.$wait"
    done
done

tsc_mhz=$( (dmesg 2>/dev/null || true) | sed -n 's/.*tsc: Detected \([0-9.]*\) MHz.*/\1/p' | head -1)
bytes=$(((SIZE_MIB << 20) * PASSES))
mbps() { awk -v b="$bytes" -v ns="$1" 'BEGIN {printf "%.1f", b / ns * 1e3}'; }
host=$(mbps "$(median <"$tmp/host")")
ratio() { awk -v g="$1" -v h="$host" 'BEGIN {printf "%.0f %%", 100 * g / h}'; }

echo "virtio-blk read throughput: ${SIZE_MIB} MiB image in the page cache read $PASSES times, medians of $RUNS runs"
echo "  host  dd bs=1M:                          $host MB/s"
for wait in irq poll; do
    big=$(median <"$tmp/big.$wait")
    small=$(median <"$tmp/small.$wait")
    guest=$(mbps $((big - small)))
    printf '  guest (%-4s) 1 MiB requests x4:        %s MB/s = %s of the host' "$wait" "$guest" "$(ratio "$guest")"
    echo " ($((big / 1000000)) ms minus $((small / 1000000)) ms for a 1 MiB disk)"
    if [[ -n $tsc_mhz ]]; then
        tsc=$(awk -v b="$bytes" -v c="$(median <"$tmp/cycles.$wait")" -v m="$tsc_mhz" 'BEGIN {printf "%.1f", b / (c / m)}')
        echo "               by the guest's TSC ($tsc_mhz MHz): $tsc MB/s = $(ratio "$tsc") (request loop only)"
    fi
done
echo "  target: the guest at >= 80 % of the host"
