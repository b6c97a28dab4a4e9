#!/usr/bin/env bash
# TCG lab test of live migration (issue 15) with real Linux: two vmmd daemons
# run inside L1 (Debian's cloud kernel under QEMU TCG, as in run.sh), A and B,
# each with its own state directory and the same image directory (the disks'
# shared storage). L1 has a bridge br-lab (10.0.3.1/24); an L2 in pv mode
# with 2 vCPUs (Debian's cloud kernel, as lab.snapshots boots) has a NIC on it
# ("nics":[{"bridge":"br-lab"}]: each daemon's worker makes its own tap on the
# bridge; the MAC, made from the VM's id, stays) and 10.0.3.2/24 from its
# kernel command line, and runs l2-init.sh's "migbusy" loop: "LAB: mig n=N"
# on the serial console every ~10 ms (a read -t 0.01 on a FIFO: busybox's usleep
# forks, and a fork a tick dirtied pages faster than the lab moves them). l1-migration.sh,
# through the API, migrates it A -> B and then B -> A, each time:
#   - L1 pings L2 every 50 ms (busybox ping -i 0.05) from a second before the
#     migration to 2 s after it;
#   - POST /v1/vms/mig/migrate {"target":"unix:<B's socket>","max_downtime_ms":2000}
#     answers 202 (2000, LAB_MIG_DOWNTIME_MS: with 50 it never converged in
#     the lab: nested, vmmd does not trust the dirty log for rewrites and
#     sends every page dirtied during the migration again at the end, ~4800-
#     5150 pages at the lab's 15-38 MB/s; the downtime it then takes is
#     reported); GET .../migration is polled until the VM is gone from the
#     source (404); it must then run on the target, same id;
#   - the source's vm.migrated event has downtime_ms (LAB-RESULT: downtime,
#     total time, rounds, bytes) and the target has a vm.migrated_in event;
#     the migration states seen were ...,done (or the VM was gone first and
#     vm.migrated says it finished);
#   - the counter: the source's console (read through a descriptor opened
#     before the migration: the source daemon deletes the VM's run directory
#     once it moved) followed by the target's goes on by one, nothing lost or
#     repeated (a line half printed at the switch joins its other half), at
#     least 10 counts on past the switch, no second boot;
#   - ping: the replies lost across the switch are reported (LAB-RESULT
#     ping_lost_between, with their seq numbers), not checked; at least 5
#     replies after the VM left the source are required (its network works on
#     the target).
# A separate L1 boot costs about 4 s to L1's init (and ~15 s of L2 boot): the
# test stays apart from lab.snapshots so each reads on its own.
# An L1 that falls silent for 60 s (LAB_STALL_S; it prints at least every
# ~10 s of its own time) is killed, and a run whose L1 did not finish without
# a failed check is tried once more (NOTE lines).
# Usage: test_lab_migration.sh [--vmmd PATH] [--timeout S] [--cache DIR] [--keep]
# Exit: 0 all passed, 1 a failure, 77 when QEMU or curl is missing.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
VMMD=${VMMD:-$REPO/build/vmmd/vmmd}
TIMEOUT=${LAB_TIMEOUT:-420}
CACHE=${LAB_CACHE:-/var/tmp/vmmd-lab}
KEEP=0 L2_MEM=160 L2_WAIT=120

while [[ $# -gt 0 ]]; do
    case $1 in
        --vmmd) VMMD=${2:?}; shift 2 ;;
        --timeout) TIMEOUT=${2:?}; shift 2 ;;
        --cache) CACHE=${2:?}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "test_lab_migration.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
skip() {
    echo "************************************************************" >&2
    echo "test_lab_migration.sh: SKIP: $*" >&2
    echo "************************************************************" >&2
    exit 77
}
QEMU=$(command -v qemu-system-x86_64) || skip "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
PATH=$PATH:/usr/sbin:/sbin
command -v curl >/dev/null || skip "curl not found (scripts/setup.sh installs it): L1 needs a copy"
[[ -x $VMMD && -x $(dirname "$VMMD")/vmmd-daemon ]] || { echo "no vmmd at $VMMD (--vmmd PATH)" >&2; exit 1; }
VMMD=$(readlink -f "$VMMD")

"$HERE/prepare.sh" --kernel cloud "$CACHE" >&2
CACHE=$(cd "$CACHE" && pwd)
K=$(lab_kernel_dir "$CACHE" cloud)

mkdir -p "$CACHE/runs" "$CACHE/logs"
WORK=$(mktemp -d "$CACHE/runs/mig.XXXXXX")
cleanup() { if [[ $KEEP == 1 ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi; }
trap cleanup EXIT
R=$WORK/root
lab_l1_root "$R" "$K" "$VMMD"
lab_install_modules "$K" "$R/lib/modules/l1" kvm-amd tun bridge || { echo "cannot install L1 modules" >&2; exit 1; }
lab_copy_with_libs "$R" "$(command -v curl)" /usr/sbin/curl
cat > "$R/lab.conf" <<EOF
L2_MEM='$L2_MEM'
L2_WAIT='$L2_WAIT'
L2_CMDLINE='console=ttyS0 panic=-1 reboot=t quiet'
L1_IP=10.0.3.1
L2_IP=10.0.3.2
MIG_DOWNTIME_MS='${LAB_MIG_DOWNTIME_MS:-2000}'
L2_SLEEP='${LAB_MIG_SLEEP:-read}'
EOF
lab_pack_l1 "$R" "$HERE/l1-migration.sh" "$WORK/l1-initrd.cpio"
echo "test_lab_migration.sh: L1 initrd $(( $(stat -c %s "$WORK/l1-initrd.cpio") / 1048576 )) MiB," \
     "kernel $(cat "$K/kver"), vmmd $VMMD" >&2

LOG=$CACHE/logs/last-migration.log
STALL=${LAB_STALL_S:-60}
T0=$EPOCHREALTIME
set +e
lab_run_l1 migration
set -e
echo "LAB-RESULT migration total_s=$(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}') qemu_rc=$QRC"

lab_verdict migration
