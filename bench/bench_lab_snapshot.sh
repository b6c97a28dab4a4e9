#!/usr/bin/env bash
# TCG lab benchmark (issue 15): vmmd's snapshot, restore and live migration
# against QEMU's (stop + migrate to a file, -incoming, migrate) on the same
# real-Linux guest in the same lab run. One L1 (Debian's cloud kernel under
# QEMU TCG, as in tests/lab/run.sh; 1 L1 vCPU) runs two vmmd daemons (A and
# B, their API over unix sockets) and QEMU 7.2 (-accel kvm -M pc -cpu host,
# virtio-rng-pci; QMP on a unix socket through socat). Both boot the same L2:
# Debian's cloud kernel, the lab's L2 initrd with its virtio modules, the same
# command line, pv, --vcpus (default 2) and --memory MiB (default 256), no
# disk and no NIC, running l2-init.sh's "migbusy" counter ("LAB: mig n=N" on
# the serial console every ~10 ms). Each of --runs rounds (default 3) gives
# vmmd's guest (booted afresh) and then QEMU's (booted once, before the first
# round, and stopped while vmmd has its turn) the three steps below, in order:
#   migrate   vmmd: POST /v1/vms/{id}/migrate from daemon A to B
#             (max_downtime_ms = --max-downtime-ms, default 2000: with 50 the
#             lab's migrations never converge, see test_lab_migration.sh);
#             total_ms and downtime_ms of the source's vm.migrated event (the
#             total includes starting the target's worker). QEMU: a destination
#             with -incoming tcp:127.0.0.1:PORT started first, downtime-limit =
#             the same, max-bandwidth lifted (vmmd does not throttle), migrate,
#             query-migrate until completed: its total-time (which does not
#             include launching the destination) and downtime. The source's
#             console then the target's must count on by one, 100 past the switch.
#   snapshot  vmmd: POST /v1/vms/{id}/snapshot {"resume":false}: API round
#             trip (snap_total_ms), its paused_ms, state_bytes +
#             memory_allocated_bytes (snap_bytes). QEMU: stop, migrate to
#             "exec:cat > FILE", query-migrate until completed: stop to
#             completed (snap_total_ms = snap_paused_ms: the guest is stopped
#             throughout), the file's size. Both write to L1's RAM (tmpfs), so
#             vmmd's fsync costs nothing here.
#   restore   the guest stopped (vmmd: POST stop; QEMU: quit), then vmmd: POST
#             /v1/vms/{id}/restore; QEMU: a new process with -incoming
#             "exec:cat FILE", query-status until loaded, cont (the stream says
#             the source was stopped). restore_api_ms: until the API answered /
#             QEMU runs; restore_tick_ms: until the guest's next counter line
#             (L1 polls the console file every ~20 ms). The counter must go on
#             from the snapshot's (N+1, or N+2 when N+1 was half printed), by
#             one, 100 counts on, without a reboot.
# The last round also migrates the restored VM back to A: reported as
# "LAB-RESULT bench-extra", not counted.
# A round whose guest did not go on is a failure (LAB-CHECK fail), not a
# figure (a vmmd older than commit 3d71b39 fails every migration here: the
# guest oopses on the target, as in test_lab_migration.sh). Prints each
# round's "BENCH run ..." line, then per figure the median for vmmd and QEMU
# and the ratio QEMU/vmmd (above 1: vmmd is faster/smaller).
# Usage: bench_lab_snapshot.sh [--vmmd PATH] [--runs N] [--vcpus N] [--memory MIB]
#                              [--max-downtime-ms MS] [--timeout S] [--cache DIR]
#                              [--keep-log FILE] [--from-log FILE]
#   --keep-log FILE: a copy of L1's console output; --from-log FILE: no run,
#   the figures of such a log (--runs says how many rounds it should have).
# An L1 that falls silent for 60 s (LAB_STALL_S) is killed; an L1 that did not
# finish without a failed check is run once more (lib.sh's lab_run_l1).
# Exit: 0 every round of both measured, 1 a failure, 77 (skip) when
# qemu-system-x86_64, socat or curl is missing.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
LAB=$REPO/tests/lab
. "$LAB/lib.sh"
VMMD=${VMMD:-$REPO/build/vmmd/vmmd}
VCPUS=2 TIMEOUT=${LAB_TIMEOUT:-1800} L2_MEM=256 DOWNTIME=2000 KEEP_LOG='' FROM_LOG=''
CACHE=${LAB_CACHE:-/var/tmp/vmmd-lab}
# report: the rounds of $LOG, then per figure the medians and QEMU/vmmd; FAIL=1 when a
# round is missing or failed, or L1 did not finish.
report() {
    grep -a '^LAB-CHECK fail' "$LOG" | sed 's/^/BENCH /' || true
    grep -a '^LAB-RESULT bench ' "$LOG" | sed 's/^LAB-RESULT bench /BENCH run: /' || true

    # figure VMM KEY: KEY's values of VMM's rounds whose guest went on, one a line
    figure() {
        grep -a "^LAB-RESULT bench vmm=$1 .* restore_ok=1 mig_ok=1" "$LOG" | grep -o " $2=[0-9.]*" | cut -d= -f2 |
            awk '{if ($1 == int($1)) print $1; else printf "%.1f\n", $1}' || true
    }
    ratio() { if [[ $1 =~ ^[0-9.]+$ && $2 =~ ^[0-9.]+$ && $2 != 0 ]]; then awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; else echo NA; fi; }
    FAIL=0
    for vmm in vmmd qemu; do
        n=$(figure $vmm snap_total_ms | wc -l)
        echo "BENCH $vmm: $n of $RUNS rounds measured (snapshot, restore and migration with the counter going on)"
        [[ $n == "$RUNS" ]] || FAIL=1
    done
    grep -aq "LAB: L1 bench-snapshot done" "$LOG" || { FAIL=1; echo "BENCH L1 did not finish (QEMU status $QRC)"; }
    grep -aq '^LAB-CHECK fail' "$LOG" && FAIL=1
    printf 'BENCH %-18s %12s %12s %12s  %s\n' figure vmmd qemu qemu/vmmd "all (vmmd / qemu)"
    for key in snap_total_ms snap_paused_ms snap_bytes restore_api_ms restore_tick_ms mig_total_ms mig_downtime_ms mig_wall_ms mig_bytes; do
        v=$(figure vmmd $key | lab_median) q=$(figure qemu $key | lab_median)
        printf 'BENCH %-18s %12s %12s %12s  %s / %s\n' "$key" "$v" "$q" "$(ratio "$q" "$v")" \
            "$(figure vmmd $key | paste -sd, -)" "$(figure qemu $key | paste -sd, -)"
    done
}
ARGS=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --memory) L2_MEM=${2:?}; shift 2 ;;
        --max-downtime-ms) DOWNTIME=${2:?}; shift 2 ;;
        --keep-log) KEEP_LOG=${2:?}; shift 2 ;;
        --from-log) FROM_LOG=${2:?}; shift 2 ;;
        *) ARGS+=("$1"); shift ;;
    esac
done
lab_bench_options "$0" "${ARGS[@]}"
if [[ -n $FROM_LOG ]]; then
    LOG=$FROM_LOG QRC=0
    report
    exit $FAIL
fi
skip() {
    echo "************************************************************" >&2
    echo "bench_lab_snapshot.sh: SKIP: $*" >&2
    echo "************************************************************" >&2
    exit 77
}
for t in socat curl; do
    command -v $t >/dev/null || skip "$t not found (scripts/setup.sh installs it): L1 needs a copy"
done
[[ $L2_MEM =~ ^[1-9][0-9]*$ && $DOWNTIME =~ ^[1-9][0-9]*$ ]] || { echo "bench_lab_snapshot.sh: --memory and --max-downtime-ms are positive integers" >&2; exit 2; }
[[ -x $VMMD && -x $(dirname "$VMMD")/vmmd-daemon ]] || { echo "bench_lab_snapshot.sh: no vmmd at $VMMD (--vmmd PATH)" >&2; exit 1; }
VMMD=$(readlink -f "$VMMD")
QEMU=$(command -v qemu-system-x86_64)

"$LAB/prepare.sh" --kernel cloud "$CACHE" >&2
CACHE=$(cd "$CACHE" && pwd)
K=$(lab_kernel_dir "$CACHE" cloud)
mkdir -p "$CACHE/runs" "$CACHE/logs"
WORK=$(mktemp -d "$CACHE/runs/bsnap.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
R=$WORK/root
lab_l1_root "$R" "$K" "$VMMD"
lab_install_modules "$K" "$R/lib/modules/l1" kvm-amd || { echo "cannot install L1 modules" >&2; exit 1; }
for t in curl socat; do lab_copy_with_libs "$R" "$(command -v $t)" "/usr/sbin/$t"; done
lab_copy_qemu "$R" "$QEMU"
cat > "$R/lab.conf" <<EOF
L2_MEM='$L2_MEM'
VCPUS='$VCPUS'
RUNS='$RUNS'
L2_WAIT=120
L2_CMDLINE='console=ttyS0 panic=-1 reboot=t quiet'
MIG_DOWNTIME_MS='$DOWNTIME'
EOF
lab_pack_l1 "$R" "$LAB/l1-bench-snapshot.sh" "$WORK/l1-initrd.cpio"
echo "bench_lab_snapshot.sh: L1 initrd $(( $(stat -c %s "$WORK/l1-initrd.cpio") / 1048576 )) MiB," \
     "kernel $(cat "$K/kver"), vmmd $VMMD, $("$QEMU" --version | head -n 1)," \
     "L2 pv vcpus=$VCPUS memory=${L2_MEM}MiB, $RUNS rounds, max downtime ${DOWNTIME} ms" >&2

LOG=$CACHE/logs/last-bench-snapshot.log
STALL=${LAB_STALL_S:-60}
set +e
lab_run_l1 bench-snapshot >&2
set -e
[[ -z $KEEP_LOG ]] || cp "$LOG" "$KEEP_LOG"
report
exit $FAIL
