#!/usr/bin/env bash
# TCG lab benchmark: L2 boot-to-init time, vmmd against QEMU, both modes.
# For each of vmmd pv, qemu-pv (-M microvm), vmmd full, qemu-full (-M pc) it
# runs run.sh BENCH_RUNS times (default 3) with --vcpus (default 2) and prints
# the median of l2_init_s (host wall clock from L1 launching the VMM to L2's
# init printing its first line) and of L2's own /proc/uptime at init, then the
# ratios vmmd/qemu per mode (below 1 = vmmd boots faster).
# Usage: bench_boot.sh [--vmmd PATH] [--vcpus N] [--timeout S] [--cache DIR]
# Output lines start with "BENCH "; failed runs count as failures, not times.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
VMMD=${VMMD:-$REPO/build/vmmd/vmmd}
VCPUS=2 TIMEOUT=${LAB_TIMEOUT:-240}
CACHE=${LAB_CACHE:-/var/tmp/vmmd-lab}
lab_bench_options "$0" "$@"
HAVE_VMMD=1
if [[ ! -x $VMMD ]]; then
    echo "bench_boot.sh: WARNING: vmmd binary not found at $VMMD (--vmmd PATH); measuring QEMU only" >&2
    HAVE_VMMD=0
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/vmmd-lab-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

field() { grep -a -o " $1=[^ ]*" | head -n1 | cut -d= -f2; }

declare -A MED
ANY_FAIL=0
for cfg in "vmmd pv" "qemu-pv pv" "vmmd full" "qemu-full full"; do
    read -r vmm mode <<< "$cfg"
    key="$vmm/$mode"
    if [[ $vmm == vmmd && $HAVE_VMMD == 0 ]]; then
        MED[$key]=NA
        echo "BENCH boot_to_init vmm=$vmm mode=$mode vcpus=$VCPUS runs=0 skipped=no_binary"
        continue
    fi
    args=(--vmm "$vmm" --mode "$mode" --vcpus "$VCPUS" --timeout "$TIMEOUT" --cache "$CACHE")
    [[ $vmm == vmmd ]] && args+=(--vmmd "$VMMD")
    : > "$TMP/t" ; : > "$TMP/u"
    fails=0
    for ((i = 1; i <= RUNS; i++)); do
        log=$TMP/$vmm-$mode-$i.log
        rc=0
        "$HERE/run.sh" "${args[@]}" > "$log" 2> "$log.err" || rc=$?
        res=$(grep -a '^LAB-RESULT' "$log" | tail -n1 || true)
        t=$(field l2_init_s <<< "$res"); u=$(field l2_uptime_s <<< "$res")
        if [[ $rc == 0 && -n $t && $t != NA ]]; then
            echo "$t" >> "$TMP/t"
            [[ -n $u && $u != NA ]] && echo "$u" >> "$TMP/u"
            echo "bench: $vmm $mode run $i: l2_init_s=$t l2_uptime_s=$u" >&2
        else
            fails=$((fails + 1)); ANY_FAIL=1
            cp "$log" "${TMPDIR:-/tmp}/vmmd-lab-bench-fail-$vmm-$mode-$i.log" 2>/dev/null || true
            echo "bench: $vmm $mode run $i FAILED (rc=$rc): ${res:-no LAB-RESULT}; log kept in ${TMPDIR:-/tmp}/vmmd-lab-bench-fail-$vmm-$mode-$i.log" >&2
        fi
    done
    MED[$key]=$(lab_median < "$TMP/t")
    echo "BENCH boot_to_init vmm=$vmm mode=$mode vcpus=$VCPUS runs=$RUNS failed=$fails" \
         "median_l2_init_s=${MED[$key]} median_l2_uptime_s=$(lab_median < "$TMP/u")" \
         "all_l2_init_s=$(paste -sd, "$TMP/t")"
done

ratio() { if [[ $1 == NA || $2 == NA ]]; then echo NA; else awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; fi; }
echo "BENCH ratio mode=pv vcpus=$VCPUS vmmd/qemu-microvm=$(ratio "${MED[vmmd/pv]}" "${MED[qemu-pv/pv]}")"
echo "BENCH ratio mode=full vcpus=$VCPUS vmmd/qemu-pc=$(ratio "${MED[vmmd/full]}" "${MED[qemu-full/full]}")"
exit $ANY_FAIL
