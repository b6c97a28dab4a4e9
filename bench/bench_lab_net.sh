#!/usr/bin/env bash
# Network throughput in the TCG lab: vmmd's NICs against QEMU's, both modes.
# One L1 boot (tests/lab/run.sh --l2-tests iperf) runs every launch in turn;
# L2 is Debian's *generic* 6.1 kernel (the cloud kernel has no e1000 driver)
# with iperf3 in its initramfs, L1 runs an iperf3 server on its tap0
# (10.0.2.1/24) that the L2 VMM's NIC is attached to:
#   vmmd pv      virtio-net (virtio-pci, MSI-X)
#   vmmd full    e1000, when this vmmd has one (found by the device's name in
#                the binary; otherwise the row says n/a and no launch is made)
#   qemu vhost   QEMU 7.2 -M pc, virtio-net-pci with vhost=on (kernel datapath)
#   qemu pv      the same with vhost=off (QEMU's userspace virtio-net)
#   qemu full    QEMU -M pc -cpu host,-hypervisor,kvm=off with an e1000
# Each launch: iperf3 -c for --time seconds (default 4), L2 sending then L2
# receiving (-R), --runs times (default 3); the figure is the receiver's
# Mbit/s, and the table shows each launch's median per direction. Ratios:
# vmmd/QEMU-vhost (the target is >= 1 each way) and pv/full for each VMM.
# Usage: bench_lab_net.sh [--vmmd PATH] [--runs N] [--time S] [--vcpus N]
#                         [--timeout S] [--cache DIR] [--launches LIST]
#                         [--keep-log FILE] [--from-log FILE]
#   --launches LIST: run.sh's --vmm list (default
#     vmmd:pv,vmmd:full,qemu-vhost,qemu-pv,qemu-full; vmmd:full is dropped
#     when vmmd has no e1000).
#   --from-log FILE: no run; the figures of a log kept with --keep-log.
# Output lines start with "BENCH "; exit 0 when every launch ran, 1
# otherwise, 77 when QEMU is missing.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
VMMD=${VMMD:-$REPO/build/vmmd/vmmd}
RUNS=3 TIME=4 VCPUS=1 TIMEOUT=1800 KEEP_LOG='' FROM_LOG=''
LAUNCHES=vmmd:pv,vmmd:full,qemu-vhost,qemu-pv,qemu-full
CACHE=${LAB_CACHE:-/var/tmp/vmmd-lab}

while [[ $# -gt 0 ]]; do
    case $1 in
        --vmmd) VMMD=${2:?}; shift 2 ;;
        --runs) RUNS=${2:?}; shift 2 ;;
        --time) TIME=${2:?}; shift 2 ;;
        --vcpus) VCPUS=${2:?}; shift 2 ;;
        --timeout) TIMEOUT=${2:?}; shift 2 ;;
        --cache) CACHE=${2:?}; shift 2 ;;
        --launches) LAUNCHES=${2:?}; shift 2 ;;
        --keep-log) KEEP_LOG=${2:?}; shift 2 ;;
        --from-log) FROM_LOG=${2:?}; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench_lab_net.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "bench_lab_net.sh: --runs must be a positive integer" >&2; exit 2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/vmmd-lab-net.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
LOG=$TMP/run.log

# vmmd's full-mode NIC: an e1000 device model announces itself by name.
HAVE_E1000=0
[[ -x $VMMD ]] && grep -aqi 'e1000' "$VMMD" && HAVE_E1000=1

RC=0
if [[ -n $FROM_LOG ]]; then
    cp "$FROM_LOG" "$LOG"
else
    if ! command -v qemu-system-x86_64 >/dev/null; then
        echo "bench_lab_net.sh: SKIP: qemu-system-x86_64 not found (apt-get install qemu-system-x86)" >&2
        exit 77
    fi
    L=''
    for l in ${LAUNCHES//,/ }; do
        if [[ $l == vmmd* && ! -x $VMMD ]]; then
            echo "bench_lab_net.sh: no vmmd binary at $VMMD (--vmmd PATH); skipping $l" >&2; continue
        fi
        if [[ $l == vmmd:full && $HAVE_E1000 == 0 ]]; then
            echo "bench_lab_net.sh: $VMMD has no e1000: vmmd full is n/a" >&2; continue
        fi
        L+=${L:+,}$l
    done
    [[ -n $L ]] || { echo "bench_lab_net.sh: nothing to launch" >&2; exit 1; }
    echo "bench: run.sh --vmm $L --l2-kernel generic --l2-tests iperf --runs $RUNS --iperf-time $TIME --vcpus $VCPUS" >&2
    "$REPO/tests/lab/run.sh" --vmm "$L" --vmmd "$VMMD" --vcpus "$VCPUS" --timeout "$TIMEOUT" \
        --cache "$CACHE" --l2-kernel generic --l2-tests iperf --runs "$RUNS" --iperf-time "$TIME" \
        > "$LOG" 2> "$TMP/run.err" || RC=$?
    [[ -z $KEEP_LOG ]] || cp "$LOG" "$KEEP_LOG"
    if [[ $RC != 0 ]]; then
        cp "$LOG" "${TMPDIR:-/tmp}/vmmd-lab-net-fail.log" 2>/dev/null || true
        echo "bench_lab_net.sh: run.sh exit $RC; log kept in ${TMPDIR:-/tmp}/vmmd-lab-net-fail.log" >&2
        tail -n 5 "$TMP/run.err" >&2
    fi
fi
grep -a '^LAB-RESULT' "$LOG" | sed 's/^/BENCH run: /' || true

median() { sort -n | awk '{v[NR] = $1} END {if (NR == 0) print "NA"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# figures VMM MODE DIR: that launch's Mbit/s, one a line (failed runs left out).
figures() {
    grep -a "^LAB-IPERF .* vmm=$1 mode=$2 dir=$3 " "$LOG" | grep -o 'mbps=[0-9.]*$' | cut -d= -f2 || true
}
declare -A MED
ANY_FAIL=$RC
echo "BENCH net Mbit/s, medians of $RUNS x ${TIME}s iperf3 runs (receiver's figure), L2 on Debian's generic kernel, vcpus=$VCPUS"
printf 'BENCH %-12s %-6s %10s %10s  %s\n' launch mode l2_send l2_recv "all (send / recv)"
for row in "vmmd pv" "vmmd full" "qemu-vhost pv" "qemu-pv pv" "qemu-full full"; do
    read -r vmm mode <<< "$row"
    all=''
    for dir in send recv; do
        figures "$vmm" "$mode" "$dir" > "$TMP/f"
        MED[$vmm/$mode/$dir]=$(median < "$TMP/f")
        all+="${all:+ / }$(paste -sd, "$TMP/f")"
        if grep -aq "^LAB-RESULT vmm=$vmm mode=$mode " "$LOG" && [[ ! -s $TMP/f || $(wc -l < "$TMP/f") -lt $RUNS ]]; then
            ANY_FAIL=1
        fi
    done
    s=${MED[$vmm/$mode/send]} r=${MED[$vmm/$mode/recv]}
    if [[ $vmm/$mode == vmmd/full && $HAVE_E1000 == 0 && $s == NA ]]; then s=n/a r=n/a all='(vmmd has no e1000 yet)'; fi
    printf 'BENCH %-12s %-6s %10s %10s  %s\n' "$vmm" "$mode" "$s" "$r" "$all"
done
ratio() {
    if [[ $1 =~ ^[0-9.]+$ && $2 =~ ^[0-9.]+$ ]]; then awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; else echo n/a; fi
}
for dir in send recv; do
    echo "BENCH ratio dir=$dir vmmd-pv/qemu-vhost=$(ratio "${MED[vmmd/pv/$dir]}" "${MED[qemu-vhost/pv/$dir]}")" \
         "vmmd-pv/qemu-pv=$(ratio "${MED[vmmd/pv/$dir]}" "${MED[qemu-pv/pv/$dir]}")" \
         "vmmd-full/qemu-full=$(ratio "${MED[vmmd/full/$dir]}" "${MED[qemu-full/full/$dir]}")" \
         "pv/full vmmd=$(ratio "${MED[vmmd/pv/$dir]}" "${MED[vmmd/full/$dir]}")" \
         "qemu(vhost)=$(ratio "${MED[qemu-vhost/pv/$dir]}" "${MED[qemu-full/full/$dir]}")"
done
exit $ANY_FAIL
