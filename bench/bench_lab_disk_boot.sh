#!/usr/bin/env bash
# TCG lab benchmark: launch -> L2 init through firmware, vmmd against QEMU -M pc
# booting the same disk (tests/lab/make_boot_disk.sh: a GRUB hybrid ISO with
# the lab's L2 kernel), in both modes: full (IDE disk; QEMU -cpu
# host,-hypervisor,kvm=off) and pv (virtio-blk). Each of BENCH_RUNS lab runs
# (default 3) boots all four in one L1, in the order vmmd full, qemu-full,
# vmmd pv, qemu-pv, 1 vCPU each (--vcpus N to change), so vmmd and QEMU meet
# the same L1. l2_init_s is host wall clock from L1 launching the VMM to L2's
# init printing its first line: firmware, bootloader, kernel and all.
# Prints per VMM and mode the median and all values, then vmmd/qemu per mode
# (below 1: vmmd reaches init sooner).
# Usage: bench_lab_disk_boot.sh [--vmmd PATH] [--vcpus N] [--timeout S] [--cache DIR]
# Output lines start with "BENCH "; a failed launch counts as a failure, not a time.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
LAB=$REPO/tests/lab
. "$LAB/lib.sh"
VMMD=${VMMD:-$REPO/build/vmmd/vmmd}
VCPUS=1 TIMEOUT=${LAB_TIMEOUT:-600}
CACHE=${LAB_CACHE:-/var/tmp/vmmd-lab}
lab_bench_options "$0" "$@"
[[ -x $VMMD ]] || { echo "bench_lab_disk_boot.sh: vmmd binary not found at $VMMD (--vmmd PATH)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/vmmd-lab-bench-diskboot.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
"$LAB/prepare.sh" --kernel cloud "$CACHE" >&2
ISO=$("$LAB/make_boot_disk.sh" "$CACHE" cloud)
LAUNCHES=(vmmd:full qemu-full:full vmmd:pv qemu-pv:pv)
field() { grep -a -o " $1=[^ ]*" | head -n1 | cut -d= -f2; }

ANY_FAIL=0
for ((i = 1; i <= RUNS; i++)); do
    cp "$ISO" "$TMP/boot.iso"
    log=$TMP/run-$i.log rc=0
    "$LAB/run.sh" --vmm "$(IFS=,; echo "${LAUNCHES[*]}")" --vmmd "$VMMD" --boot disk \
        --disk "$TMP/boot.iso" --vcpus "$VCPUS" --timeout "$TIMEOUT" --cache "$CACHE" \
        > "$log" 2> "$log.err" || rc=$?
    n=0
    while IFS= read -r res; do
        l=${LAUNCHES[$n]} n=$((n + 1))
        t=$(field l2_init_s <<< "$res")
        if [[ $(field result <<< "$res") == ok && -n $t && $t != NA ]]; then
            echo "$t" >> "$TMP/${l%%:*}-${l#*:}"
            echo "bench: run $i ${l%%:*} ${l#*:}: l2_init_s=$t" >&2
        else
            ANY_FAIL=1
            echo "bench: run $i ${l%%:*} ${l#*:} FAILED: $res" >&2
        fi
    done < <(grep -a '^LAB-RESULT' "$log")
    if [[ $n != "${#LAUNCHES[@]}" || $rc != 0 ]]; then
        ANY_FAIL=1
        cp "$log" "${TMPDIR:-/tmp}/vmmd-lab-bench-diskboot-fail-$i.log" 2>/dev/null || true
        echo "bench: run $i: run.sh exit $rc, $n results; log kept in ${TMPDIR:-/tmp}/vmmd-lab-bench-diskboot-fail-$i.log" >&2
    fi
done

declare -A MED
for l in "${LAUNCHES[@]}"; do
    f=$TMP/${l%%:*}-${l#*:}
    touch "$f"
    MED[$l]=$(lab_median < "$f")
    echo "BENCH disk_boot_to_init vmm=${l%%:*} mode=${l#*:} vcpus=$VCPUS runs=$RUNS ok=$(wc -l < "$f")" \
         "median_l2_init_s=${MED[$l]} all_l2_init_s=$(paste -sd, "$f")"
done
ratio() { if [[ $1 == NA || $2 == NA ]]; then echo NA; else awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; fi; }
echo "BENCH ratio disk_boot mode=full vcpus=$VCPUS vmmd/qemu-pc=$(ratio "${MED[vmmd:full]}" "${MED[qemu-full:full]}")"
echo "BENCH ratio disk_boot mode=pv vcpus=$VCPUS vmmd/qemu-pc=$(ratio "${MED[vmmd:pv]}" "${MED[qemu-pv:pv]}")"
exit $ANY_FAIL
