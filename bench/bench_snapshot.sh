#!/bin/bash
# Snapshots, restore and clones (issue 15) through a real daemon, with the
# counter test guest, for a VM of 256 MiB and one of 2048 MiB (1 vCPU, pv):
#
#  snapshot: POST /v1/vms/{id}/snapshot round trip, and the paused_ms the API
#            reports (how long the vCPUs were stopped);
#  files:    state and memory file sizes, apparent and allocated;
#  restore:  POST /v1/vms/{id}/restore until 200 (the old worker stopped, a
#            new one running from the snapshot), and until the restored guest
#            prints its next counter line (its console, polled through the API);
#            engine side, without the daemon: `vmmd run --restore-state/-memory`
#            from exec to hv_vm_start (process start + VM creation + the
#            restore), beside a fresh boot of the same VM measured the same way;
#  clone:    POST /v1/vms {"from_snapshot"} until 201, and until the clone's
#            first counter line.
#
# What the memory holds: the counter guest touches about 100 KiB, the rest of
# its RAM is never written, so the memory file is almost all holes and these
# figures are those of mostly-zero memory (the guest cannot dirty its RAM on
# request). The peers on the host's disk say what a RAM dump costs there:
# `cp --sparse=always` of the memory file (+ sync), and dd writing as many
# bytes as the VM has RAM (conv=fdatasync, as the snapshot fsyncs): the cost
# of a snapshot whose memory were all dirty is at least the latter.
# Restore must not grow with memory size (the RAM is mapped copy-on-write):
# the two sizes are printed side by side with their ratio.
#
# The counter guest runs with delay=100 so that it prints a line every few
# tens of milliseconds; the line period is measured and printed, since "until
# the next counter line" includes up to one period of the guest's own work.
#
# Usage: bench/bench_snapshot.sh BUILD_DIR [RUNS]   (default 5; medians of RUNS)
#        BUILD_DIR: a Release build with vmmd and guest-counter, e.g.
#        cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release &&
#        make -C build-rel vmmd vmmd-daemon guest-counter
set -euo pipefail

BUILD=$(cd "${1:-build}" && pwd)
RUNS=${2:-5}
VMMD=$BUILD/vmmd/vmmd
GUESTS=$BUILD/tests/guests
GUEST=$GUESTS/guest-counter.elf
SIZES=(256 2048)
[[ -x $VMMD ]] || { echo "bench_snapshot: $VMMD missing (build vmmd)" >&2; exit 1; }
[[ -f $GUEST ]] || { echo "bench_snapshot: $GUEST missing (build guest-counter)" >&2; exit 1; }
[[ -c /dev/kvm && -w /dev/kvm ]] || { echo "bench_snapshot: /dev/kvm is not usable here" >&2; exit 1; }
for tool in curl jq python3; do
    command -v $tool >/dev/null || { echo "bench_snapshot: $tool missing" >&2; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/bench-snapshot.XXXXXX")
STATE=$tmp/state
SOCK=$STATE/vmmd.sock
daemon=
# Workers outlive the daemon by design: the VMs are deleted through the API first, then any
# worker of this run's state directory still there is ended by its id.
cleanup() {
    local vm pid pids=()
    if [[ -n $daemon ]]; then
        for vm in $(curl -s --unix-socket "$SOCK" http://x/v1/vms 2>/dev/null | jq -r '.[].name' 2>/dev/null); do
            pid=$(curl -s --unix-socket "$SOCK" "http://x/v1/vms/$vm" | jq -r '.worker_pid // empty')
            [[ -n $pid && $pid != 0 ]] && pids+=("$pid")
            curl -s -o /dev/null -X DELETE --unix-socket "$SOCK" "http://x/v1/vms/$vm?force=true"
        done
        kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
    fi
    for pid in "${pids[@]}"; do
        grep -qs -- "$STATE/run/" "/proc/$pid/cmdline" && kill -9 "$pid" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

now_ns() { date +%s%N; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ms() { awk -v ns="$1" 'BEGIN { printf "%.1f", ns / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
kib() { awk -v b="$1" 'BEGIN { printf "%.0f KiB", b / 1024 }'; }

# api METHOD PATH [JSON] -> $status, body in $tmp/body
api() {
    local args=(-s -o "$tmp/body" -w '%{http_code}' -X "$1" --unix-socket "$SOCK")
    [[ $# -ge 3 ]] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
    status=$(curl "${args[@]}" "http://vmmd$2")
}
jbody() { jq -r "$1" "$tmp/body"; }
need() { # STATUS WHAT: stop the bench on an unexpected answer
    [[ $status == "$1" ]] && return 0
    echo "bench_snapshot: $2 -> $status: $(head -c 400 "$tmp/body")" >&2
    exit 1
}
# counter_lines VM: how many counter lines its console (the current worker's) holds
counter_lines() {
    curl -s --unix-socket "$SOCK" "http://vmmd/v1/vms/$1/console?tail=65536" | grep -c '^counter: [0-9]' || true
}
# wait_line VM T0: ns from T0 until the VM's console shows a counter line (10 s at most)
wait_line() {
    local end=$(($(now_ns) + 10000000000))
    while [[ $(counter_lines "$1") == 0 ]]; do
        [[ $(now_ns) -lt $end ]] || { echo "bench_snapshot: no counter line from $1" >&2; exit 1; }
    done
    echo $(($(now_ns) - $2))
}

# vmmd run ARGS... --timing, with its stdout read until the first counter line, then stopped:
# prints ms from exec to hv_vm_start (CLOCK_MONOTONIC, from --timing) and to that line.
ENGINE_PY='
import re, signal, subprocess, sys, time
t0 = time.monotonic_ns()
p = subprocess.Popen(sys.argv[1:] + ["--timing"], stdin=subprocess.DEVNULL,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
line_ns = None
for line in p.stdout:
    if re.match(rb"counter: [0-9]", line):
        line_ns = time.monotonic_ns()
        break
p.send_signal(signal.SIGTERM)
_, err = p.communicate(timeout=20)
m = re.search(rb"vmmd-timing: start_ns=([0-9]+)", err)
if not m or line_ns is None:
    sys.exit("vmmd run failed: " + err.decode(errors="replace")[-400:])
print("%.3f %.3f" % ((int(m.group(1)) - t0) / 1e6, (line_ns - t0) / 1e6))
'
engine() { python3 -c "$ENGINE_PY" "$VMMD" run --kernel "$GUEST" --cmdline delay=100 "$@"; }

"$VMMD" serve --state-dir "$STATE" --image-dir "$GUESTS" --log-file "$tmp/vmmd.log" --log-level warn \
    --no-networks 2>>"$tmp/vmmd.err" &
daemon=$!
for _ in $(seq 200); do
    curl -s --unix-socket "$SOCK" http://vmmd/v1/host >/dev/null 2>&1 && break
    sleep 0.05
done
curl -s --unix-socket "$SOCK" http://vmmd/v1/host >/dev/null || { echo "daemon did not come up:"; cat "$tmp/vmmd.err"; exit 1; }

echo "bench_snapshot: $VMMD, counter guest (delay=100), 1 vCPU, pv; medians of $RUNS runs"
echo "host: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); files in $tmp ($(df -hT "$tmp" | awk 'NR == 2 {print $2 " on " $1}'))"
declare -A R # R[size.metric] = median
for size in "${SIZES[@]}"; do
    vm=cnt-$size
    api POST /v1/vms "{\"name\":\"$vm\",\"memory_mib\":$size,\"kernel\":\"$GUEST\",\"cmdline\":\"delay=100\"}"
    need 201 "create $vm"
    id=$(jbody .id)
    api POST "/v1/vms/$vm/start"
    need 200 "start $vm"
    wait_line "$vm" 0 >/dev/null
    a=$(counter_lines "$vm")
    sleep 2
    period=$(awk -v n=$(($(counter_lines "$vm") - a)) 'BEGIN { printf "%.1f", n ? 2000 / n : 0 }')
    echo
    echo "== $size MiB: the guest prints a counter line every ${period} ms"
    : >"$tmp/m"
    for run in $(seq "$RUNS"); do
        snap=r$run
        # snapshot (the VM runs on)
        t0=$(now_ns)
        api POST "/v1/vms/$vm/snapshot" "{\"name\":\"$snap\"}"
        t1=$(now_ns)
        need 201 "snapshot $vm/$snap"
        dir=$STATE/snapshots/$id/$snap
        echo "snap_ns $((t1 - t0))" >>"$tmp/m"
        echo "paused_ms $(jbody .paused_ms)" >>"$tmp/m"
        echo "state_bytes $(stat -c %s "$dir/state")" >>"$tmp/m"
        echo "state_alloc $(($(stat -c %b "$dir/state") * $(stat -c %B "$dir/state")))" >>"$tmp/m"
        echo "mem_bytes $(stat -c %s "$dir/memory")" >>"$tmp/m"
        echo "mem_alloc $(($(stat -c %b "$dir/memory") * $(stat -c %B "$dir/memory")))" >>"$tmp/m"
        echo "api_mem_alloc $(jbody .memory_allocated_bytes)" >>"$tmp/m"

        # restore: until 200, and until the restored guest's next counter line
        t0=$(now_ns)
        api POST "/v1/vms/$vm/restore" "{\"snapshot\":\"$snap\"}"
        t1=$(now_ns)
        need 200 "restore $vm/$snap"
        echo "restore_ns $((t1 - t0))" >>"$tmp/m"
        echo "restore_line_ns $(wait_line "$vm" "$t0")" >>"$tmp/m"

        # clone: until 201, and until its first counter line
        t0=$(now_ns)
        api POST /v1/vms "{\"name\":\"clone-$size\",\"from_snapshot\":\"$vm/$snap\"}"
        t1=$(now_ns)
        need 201 "clone of $vm/$snap"
        echo "clone_ns $((t1 - t0))" >>"$tmp/m"
        echo "clone_line_ns $(wait_line "clone-$size" "$t0")" >>"$tmp/m"
        api DELETE "/v1/vms/clone-$size?force=true"
        need 204 "delete clone-$size"

        # the engine alone: exec to hv_vm_start, restored and freshly booted
        read -r s l < <(engine --memory "$size" --restore-state "$dir/state" --restore-memory "$dir/memory")
        [[ -n ${l:-} ]] || { echo "bench_snapshot: vmmd run from $vm/$snap failed" >&2; exit 1; }
        echo "eng_restore_ms $s" >>"$tmp/m"
        echo "eng_restore_line_ms $l" >>"$tmp/m"
        read -r s l < <(engine --memory "$size")
        [[ -n ${l:-} ]] || { echo "bench_snapshot: vmmd run of $vm's guest failed" >&2; exit 1; }
        echo "eng_boot_ms $s" >>"$tmp/m"
        echo "eng_boot_line_ms $l" >>"$tmp/m"

        # the host's disk as peer: a sparse copy of the memory file, and a full RAM's bytes (last,
        # and synced, so that their writeback does not slow the daemon's fsyncs above)
        t0=$(now_ns)
        cp --sparse=always "$dir/memory" "$tmp/peer.mem" && sync "$tmp/peer.mem"
        echo "cp_ns $(($(now_ns) - t0))" >>"$tmp/m"
        rm -f "$tmp/peer.mem"
        t0=$(now_ns)
        dd if=/dev/zero of="$tmp/peer.dd" bs=1M count="$size" conv=fdatasync status=none
        echo "dd_ns $(($(now_ns) - t0))" >>"$tmp/m"
        rm -f "$tmp/peer.dd"
        sync

        api DELETE "/v1/vms/$vm/snapshots/$snap"
        need 204 "delete snapshot $vm/$snap"
    done
    for k in $(awk '{print $1}' "$tmp/m" | sort -u); do
        R[$size.$k]=$(awk -v k="$k" '$1 == k {print $2}' "$tmp/m" | median)
    done
    api DELETE "/v1/vms/$vm?force=true"
    need 204 "delete $vm"

    g() { echo "${R[$size.$1]}"; }
    echo "snapshot:  $(ms "$(g snap_ns)") ms round trip, vCPUs paused $(g paused_ms) ms"
    echo "files:     state $(g state_bytes) bytes ($(kib "$(g state_alloc)") allocated);" \
        "memory $(mib "$(g mem_bytes)") apparent, $(kib "$(g mem_alloc)") allocated" \
        "(the API says $(kib "$(g api_mem_alloc)"))"
    echo "restore:   $(ms "$(g restore_ns)") ms until 200, $(ms "$(g restore_line_ns)") ms until the next counter line"
    echo "clone:     $(ms "$(g clone_ns)") ms until 201, $(ms "$(g clone_line_ns)") ms until its first counter line"
    echo "engine:    exec to hv_vm_start restored $(g eng_restore_ms) ms, freshly booted $(g eng_boot_ms) ms" \
        "(difference $(awk -v a="$(g eng_restore_ms)" -v b="$(g eng_boot_ms)" 'BEGIN { printf "%+.1f", a - b }') ms; both include exec and process start);" \
        "to the first counter line $(g eng_restore_line_ms) ms restored, $(g eng_boot_line_ms) ms booted"
    echo "peers:     cp --sparse=always of the memory file + sync $(ms "$(g cp_ns)") ms;" \
        "dd of $size MiB (conv=fdatasync) $(ms "$(g dd_ns)") ms"
    echo "ratios:    snapshot round trip / sparse cp $(ratio "$(g snap_ns)" "$(g cp_ns)")," \
        "snapshot round trip / full dd $(ratio "$(g snap_ns)" "$(g dd_ns)")"
done

echo
echo "== restore does not grow with memory: ${SIZES[0]} MiB vs ${SIZES[1]} MiB (ratio ${SIZES[1]}/${SIZES[0]})"
a=${SIZES[0]} b=${SIZES[1]}
row() { # LABEL METRIC SCALE(ns|ms)
    local x=${R[$a.$2]} y=${R[$b.$2]}
    [[ $3 == ns ]] && x=$(ms "$x") y=$(ms "$y")
    printf '  %-42s %9s ms %9s ms   %s\n' "$1" "$x" "$y" "$(ratio "$y" "$x")"
}
printf '  %-42s %12s %12s   %s\n' "" "${a} MiB" "${b} MiB" "ratio"
row "restore, API until 200" restore_ns ns
row "restore, API until the next counter line" restore_line_ns ns
row "restore, engine exec to hv_vm_start" eng_restore_ms ms
row "fresh boot, engine exec to hv_vm_start" eng_boot_ms ms
row "clone, API until 201" clone_ns ns
row "snapshot, API round trip" snap_ns ns
row "snapshot, vCPUs paused" paused_ms ms
