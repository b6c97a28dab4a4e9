#!/usr/bin/env bash
# TCG lab, step 2: boot L2 Linux guests under a VMM running inside an L1 guest.
# L1 = Debian cloud kernel under QEMU TCG (-cpu max, emulated AMD-V) with an
# initramfs (l1-init.sh) that loads irqbypass/kvm/kvm-amd and gets /dev/kvm; L1
# then runs each L2 VMM of --vmm in turn (our `vmmd run`, or QEMU for
# comparison) on the same kernel + a busybox initramfs (see prepare.sh). All
# console output (L1 and L2) goes to stdout, then one line per L2 launch:
#   LAB-RESULT vmm=.. mode=.. vcpus=.. boot=kernel|disk l2_init_s=.. status=.. [more key=value]
# l2_init_s is host wall clock from the arrival of L1's "LAB: L1 launching L2"
# line to the arrival of L2's "LAB: L2 init reached" line (does not depend on
# any guest clock being right under TCG/nested virt); with --boot disk that is
# firmware, bootloader and kernel together.
#
# Usage: run.sh --vmm LAUNCH[,LAUNCH...] [--mode full|pv] [--vcpus N]
#               [--vmmd PATH] [--timeout S] [--memory MIB] [--cache DIR]
#               [--l2-append "ARGS"] [--l2-verbose] [--keep] [--log FILE]
#               [--disk IMG] [--disk-in-ram] [--net] [--l2-tests LIST]
#               [--token WORD] [--runs N] [--l2-kernel cloud|generic]
#               [--l1-kernel cloud|generic] [--iperf-time S] [--boot kernel|disk]
#               [--firmware FILE]
#   LAUNCH is vmmd, qemu-pv, qemu-vhost or qemu-full, optionally :MODE
#   (vmmd:full); a launch without a mode takes --mode (vmmd: default pv).
#   qemu-vhost is qemu-pv with its virtio-net on the kernel's vhost-net
#   (vhost=on); qemu-pv's is QEMU's own userspace virtio-net; qemu-full's
#   NIC is an e1000. QEMU's NICs have romfile= (the lab has no option ROMs).
#   --disk IMG: QEMU gives L1 the raw image IMG as a virtio disk (/dev/vda),
#     which L1 hands to the L2 VMM (vmmd --disk, QEMU virtio-blk-pci in pv,
#     IDE in full), so what L2 writes lands in IMG.
#   --disk-in-ram: L1 copies the disk into a file in its RAM, reads it --runs
#     times itself (LAB: native_dd) and gives the copy to L2 (IMG unchanged).
#   --boot disk: L2 starts in SeaBIOS (vmmd --firmware, QEMU's own) and boots
#     from --disk IMG (make_boot_disk.sh's image) instead of being given the
#     kernel; the kernel command line is then the one on the disk.
#   --firmware FILE: what vmmd starts in with --boot disk (default
#     /usr/share/seabios/bios-256k.bin; e.g. /usr/share/ovmf/OVMF.fd for UEFI);
#     QEMU gets it as -bios when it is not the default.
#   --net: L1 makes tap0 (10.0.2.1/24) for the L2 VMM (vmmd --nic tap=tap0).
#   --l2-tests LIST: checks L2 runs (l2-init.sh: disk,hvc,rng,net,diskbench);
#     L2 loads the virtio modules in pv mode, the IDE ones in full mode.
#   --token WORD: what L2 writes to the disk and hvc0 (default: random).
#   --runs N: repetitions of the timed disk reads and of the iperf3 runs (default 3).
#   --l2-kernel, --l1-kernel: Debian's cloud kernel (default) or its generic
#     one (prepare.sh --kernel generic), which has emulated NIC drivers (e1000;
#     L2's full-mode module group "e1000") that the cloud kernel lacks.
#   --l2-tests iperf: the network bench (implies --net): L1 runs an iperf3
#     server on tap0, L2 runs iperf3 --iperf-time seconds (default 4) sending
#     then receiving, --runs times each; run.sh prints one line per measurement:
#     LAB-IPERF launch=N vmm=.. mode=.. dir=send|recv run=R mbps=..
#     (dir is L2's view; mbps is the receiver's figure, "fail" if none). L2's
#     initramfs gets iperf3 and its libraries only for this test.
# Env: LAB_CACHE, LAB_L1_MEM (2048), LAB_L1_APPEND (L1 cmdline),
#   LAB_L1_QEMU_OPTS (extra L1 QEMU args, e.g. "-d int -D FILE"),
#   LAB_L1_TRACE=1 (with --l2-tests diskbench: L1 traces KVM's exits during L2's
#     second timed read and prints them summed by reason, port and address),
#   LAB_MICROVM_OPTS (default ",rtc=on"),
#   LAB_L1_SMP (default 1) and LAB_TCG_THREAD (single|multi). L1 has ONE vCPU
#   by default: on a 2-core host it boots L2 (2 vCPUs) as fast as 2 L1 vCPUs,
#   and QEMU 7.2's nested SVM emulation misbehaves with 2 L1 vCPUs:
#   - thread=multi: ~4 of 55 full-mode 2-vCPU runs died: L1 triple-faulted, or
#     L2 took a #PF fetching L1's kvm_amd code right after an I/O exit (TCG
#     -d int trace) and the VMM saw a guest triple fault. pv was fine.
#   - thread=single: 2-vCPU L2s hang at SMP bring-up with their clock frozen
#     (pv 3 of 3, full 1 of ~20; with vmmd and with QEMU alike).
#   With LAB_L1_SMP>=2 the default thread mode is multi for pv, single for full.
# --log FILE: also write the console output there (default CACHE/logs/last-VMM-MODE.log).
# Exit: 0 = L2 reached init and the VMM exited 0; 124 = timeout (QEMU killed);
#       1 = anything else; 2 = usage error; 77 = qemu-system-x86_64 missing.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"

LOG='' VMM='' MODE='' VCPUS=2 TIMEOUT=240 L2_MEM=256 L2_APPEND='' L2_QUIET=quiet KEEP=0
DISK_IMG='' DISK_MODE='' BOOT=kernel FIRMWARE=/usr/share/seabios/bios-256k.bin NET=0 L2_TESTS='' TOKEN='' RUNS=3 L2_KERNEL=cloud L1_KERNEL=cloud IPERF_TIME=4
VMMD=${VMMD:-$REPO/build/vmmd/vmmd}
CACHE=${LAB_CACHE:-/var/tmp/vmmd-lab}
L1_MEM=${LAB_L1_MEM:-2048}
L1_SMP=${LAB_L1_SMP:-1}   # see "Env" above for why 1

usage() { sed -n '/^# Usage:/,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "run.sh: ERROR: $*" >&2; exit 1; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --vmm) VMM=${2:?}; shift 2 ;;
        --mode) MODE=${2:?}; shift 2 ;;
        --vcpus) VCPUS=${2:?}; shift 2 ;;
        --vmmd) VMMD=${2:?}; shift 2 ;;
        --timeout) TIMEOUT=${2:?}; shift 2 ;;
        --memory) L2_MEM=${2:?}; shift 2 ;;
        --cache) CACHE=${2:?}; shift 2 ;;
        --l2-append) L2_APPEND=${2:?}; shift 2 ;;
        --l2-verbose) L2_QUIET=; shift ;;
        --keep) KEEP=1; shift ;;
        --log) LOG=${2:?}; shift 2 ;;
        --disk) DISK_IMG=${2:?}; DISK_MODE=${DISK_MODE:-dev}; shift 2 ;;
        --disk-in-ram) DISK_MODE=ram; shift ;;
        --net) NET=1; shift ;;
        --boot) BOOT=${2:?}; shift 2 ;;
        --firmware) FIRMWARE=${2:?}; shift 2 ;;
        --l2-tests) L2_TESTS=${2:?}; shift 2 ;;
        --token) TOKEN=${2:?}; shift 2 ;;
        --runs) RUNS=${2:?}; shift 2 ;;
        --l2-kernel) L2_KERNEL=${2:?}; shift 2 ;;
        --l1-kernel) L1_KERNEL=${2:?}; shift 2 ;;
        --iperf-time) IPERF_TIME=${2:?}; shift 2 ;;
        -h|--help) usage ;;
        *) echo "run.sh: unknown argument: $1" >&2; usage ;;
    esac
done

# LAUNCHES: "vmm:mode ..." in the order L1 runs them.
LAUNCHES='' NEED_VMMD=0 NEED_QEMU=0
[[ -n $VMM ]] || { echo "run.sh: --vmm is required" >&2; usage; }
for l in ${VMM//,/ }; do
    v=${l%%:*} m=${MODE}
    [[ $l == *:* ]] && m=${l#*:}
    case $v in
        vmmd) m=${m:-pv}; NEED_VMMD=1 ;;
        qemu-pv|qemu-vhost) [[ -z $m || $m == pv ]] || die "$v is pv only"; m=pv; NEED_QEMU=1 ;;
        qemu-full) [[ -z $m || $m == full ]] || die "qemu-full is full only"; m=full; NEED_QEMU=1 ;;
        *) echo "run.sh: a launch must be vmmd, qemu-pv, qemu-vhost or qemu-full, not '$v'" >&2; usage ;;
    esac
    [[ $m == pv || $m == full ]] || die "mode must be pv or full, not '$m'"
    LAUNCHES+="${LAUNCHES:+ }$v:$m"
done
[[ $VCPUS =~ ^[1-9][0-9]*$ ]] || die "--vcpus must be a positive integer"
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a positive integer"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
[[ $IPERF_TIME =~ ^[1-9][0-9]*$ ]] || die "--iperf-time must be a positive integer"
for k in "$L1_KERNEL" "$L2_KERNEL"; do
    [[ $k == cloud || $k == generic ]] || die "a kernel is cloud or generic, not '$k'"
done
IPERF=0
[[ ,$L2_TESTS, == *,iperf,* ]] && IPERF=1 NET=1
[[ $L2_TESTS =~ ^[a-z,]*$ ]] || die "--l2-tests is a comma-separated list of names"
[[ -z $DISK_MODE || -n $DISK_IMG ]] || die "--disk-in-ram needs --disk IMG"
[[ $BOOT == kernel || $BOOT == disk ]] || die "--boot is kernel or disk, not '$BOOT'"
[[ $BOOT == kernel || -n $DISK_IMG ]] || die "--boot disk needs --disk IMG"
[[ $BOOT == kernel || -f $FIRMWARE ]] || die "--boot disk needs $FIRMWARE (apt-get install seabios, or ovmf)"
[[ -z $DISK_IMG || -f $DISK_IMG ]] || die "--disk $DISK_IMG: no such file"
TOKEN=${TOKEN:-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')}
[[ $TOKEN =~ ^[A-Za-z0-9_.-]+$ ]] || die "--token must be one word of [A-Za-z0-9_.-]"

QEMU=$(command -v qemu-system-x86_64 || true)
if [[ -z $QEMU ]]; then
    echo "run.sh: SKIP: qemu-system-x86_64 not found (apt-get install qemu-system-x86)" >&2
    exit 77
fi
for t in cpio ldd timeout; do command -v "$t" >/dev/null || die "missing tool: $t"; done

KERNELS=$L1_KERNEL
[[ $L2_KERNEL == "$L1_KERNEL" ]] || KERNELS+=,$L2_KERNEL
"$HERE/prepare.sh" --kernel "$KERNELS" $([[ $IPERF == 1 ]] && echo --iperf3) "$CACHE" >&2
CACHE=$(cd "$CACHE" && pwd)
K1=$(lab_kernel_dir "$CACHE" "$L1_KERNEL") K2=$(lab_kernel_dir "$CACHE" "$L2_KERNEL")
KVER=$(cat "$K1/kver") KVER2=$(cat "$K2/kver")

if [[ $NEED_VMMD == 1 ]]; then
    [[ -x $VMMD ]] || die "vmmd binary not found or not executable: $VMMD (use --vmmd PATH)"
    VMMD=$(readlink -f "$VMMD")
fi

# ---------------------------------------------------------------------------
# Build the L1 initramfs (uncompressed cpio: decompressing under TCG is slow).
mkdir -p "$CACHE/runs"
WORK=$(mktemp -d "$CACHE/runs/run.XXXXXX")
cleanup() {
    if [[ $KEEP == 1 ]]; then echo "run.sh: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
R=$WORK/root
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,var/tmp,etc,l2,lib64}
cp "$CACHE/busybox" "$R/bin/busybox"
cp "$K2/vmlinuz" "$R/l2/vmlinuz"
# The driver modules only when L2 runs checks (plain boots stay comparable),
# iperf3 only for the network bench.
cat "$K2/l2-initrd.cpio.gz" ${L2_TESTS:+"$K2/l2-modules.cpio.gz"} \
    $([[ $IPERF == 1 ]] && echo "$CACHE/l2-iperf3.cpio.gz") > "$R/l2/initrd"

# L1's modules, in load order (l1-init.sh loads /lib/modules/l1/order).
L1_MODS=(kvm-amd)
[[ -n $DISK_IMG ]] && L1_MODS+=(virtio_pci virtio_blk)
[[ $NET == 1 ]] && L1_MODS+=(tun)
[[ $NET == 1 && " $LAUNCHES" == *" qemu-vhost:"* ]] && L1_MODS+=(vhost_net)
lab_install_modules "$K1" "$R/lib/modules/l1" "${L1_MODS[@]}" || die "cannot install L1 modules"

# Executables with their shared libraries (and the dynamic loader) at the
# same absolute paths inside the initramfs.
copy_with_libs() { lab_copy_with_libs "$R" "$1" "$2"; }

VMM_DESC=''
if [[ $NEED_VMMD == 1 ]]; then
    copy_with_libs "$VMMD" /vmmd
    VMM_DESC=$VMMD
fi
if [[ $BOOT == disk ]]; then
    mkdir -p "$R${FIRMWARE%/*}" && cp "$FIRMWARE" "$R$FIRMWARE"
fi
if [[ $NEED_QEMU == 1 ]]; then
    lab_copy_qemu "$R" "$QEMU"
    VMM_DESC+="${VMM_DESC:+, }$QEMU ($("$QEMU" --version | head -n1))"
fi
[[ $IPERF == 1 ]] && lab_copy_with_libs "$R" "$CACHE/iperf3/root/usr/bin/iperf3" /usr/bin/iperf3 "$CACHE/iperf3/root"

L2_CMDLINE="console=ttyS0 panic=-1 reboot=t${L2_QUIET:+ $L2_QUIET}${L2_APPEND:+ $L2_APPEND}"
cat > "$R/lab.conf" <<EOF
LAUNCHES='$LAUNCHES'
VCPUS='$VCPUS'
L2_MEM='$L2_MEM'
L2_CMDLINE='$L2_CMDLINE'
MICROVM_OPTS='${LAB_MICROVM_OPTS-,rtc=on}'
DISK='$DISK_MODE'
BOOT='$BOOT'
FIRMWARE='$FIRMWARE'
NET='$NET'
L2_TESTS='$L2_TESTS'
TOKEN='$TOKEN'
RUNS='$RUNS'
IPERF_TIME='$IPERF_TIME'
TRACE='${LAB_L1_TRACE:-0}'
EOF
cp "$HERE/l1-init.sh" "$R/init"
chmod 755 "$R/init"

(cd "$R" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$WORK/l1-initrd.cpio"
echo "run.sh: launches=$LAUNCHES ($VMM_DESC) vcpus=$VCPUS; L1 initrd $(( $(stat -c %s "$WORK/l1-initrd.cpio") / 1048576 )) MiB; kernel $KVER, L2 $KVER2" >&2

# ---------------------------------------------------------------------------
# Boot L1 under TCG; timestamp interesting lines on arrival.
# L1 kernel messages go to a second UART (a file), so they cannot split L2's
# lines on ttyS0; run.sh prints that log after the run.
L1_KLOG=$WORK/l1-kernel.log
L1_CMDLINE="console=ttyS1 panic=-1 quiet mitigations=off ${LAB_L1_APPEND:-}"
mkdir -p "$CACHE/logs"
LOG=${LOG:-$CACHE/logs/last-$(tr ' :' '_-' <<< "$LAUNCHES").log}
: > "$LOG"
QDBG=$WORK/l1-qemu-debug.log   # QEMU's own log: L1 resets, triple faults
STAMPS=$WORK/stamps
: > "$STAMPS"
now() { echo "$EPOCHREALTIME"; }
if [[ -n ${LAB_TCG_THREAD:-} ]]; then TCG_THREAD=$LAB_TCG_THREAD
elif [[ $L1_SMP == 1 || " $LAUNCHES" != *:full* ]]; then TCG_THREAD=multi
else TCG_THREAD=single; fi
T0=$(now)

set +e
n=0   # the launch a console line belongs to: stamps are "KEY.N TIME"
timeout -k 5 "$TIMEOUT" "$QEMU" -accel "tcg,thread=$TCG_THREAD" -cpu max -smp "$L1_SMP" -m "$L1_MEM" \
    -M pc -nodefaults -no-user-config -display none -vga none -serial stdio -serial "file:$L1_KLOG" -no-reboot \
    -kernel "$K1/vmlinuz" -initrd "$WORK/l1-initrd.cpio" -append "$L1_CMDLINE" \
    ${DISK_IMG:+-drive "file=$DISK_IMG,format=raw,if=virtio"} \
    -d cpu_reset,guest_errors -D "$QDBG" ${LAB_L1_QEMU_OPTS:-} < /dev/null 2>&1 |
while IFS= read -r line || [[ -n $line ]]; do
    t=$EPOCHREALTIME
    while [[ $line == *$'\r' ]]; do line=${line%$'\r'}; done
    printf '%s\n' "$line"
    printf '%s\n' "$line" >> "$LOG"
    case $line in
        *"LAB: L1 init reached"*) echo "l1_init $t" >> "$STAMPS" ;;
        *"LAB: L1 launching L2"*) n=$((n + 1)); echo "launch.$n $t" >> "$STAMPS" ;;
        *"LAB: L2 init reached uptime="*)
            echo "l2_init.$n $t" >> "$STAMPS"
            echo "l2_uptime.$n ${line##*uptime=}" >> "$STAMPS" ;;
        *"LAB: mark "*) m=${line##*LAB: mark }; echo "mark.$n.${m// /_} $t" >> "$STAMPS" ;;
        *"LAB: vmm exit status="*) echo "status.$n ${line##*status=}" >> "$STAMPS" ;;
        *"LAB: L2 done"*) echo "l2_done.$n $t" >> "$STAMPS" ;;
        *"LAB: iperf dir="*) echo "iperf.$n ${line##*LAB: iperf }" >> "$STAMPS" ;;
    esac
done
pst=("${PIPESTATUS[@]}")
set -e
T_END=$(now)
QRC=${pst[0]}

if [[ -s $L1_KLOG ]]; then
    echo "---- L1 kernel console (ttyS1) ----"
    tr -d '\r' < "$L1_KLOG"
    echo "---- end of L1 kernel console ----"
    { echo "---- L1 kernel console (ttyS1) ----"; tr -d '\r' < "$L1_KLOG"; } >> "$LOG"
fi

get() { awk -v k="$1" '$1 == k {print $2; exit}' "$STAMPS"; }
diff_s() { # diff_s FROM TO -> seconds with 2 decimals, or NA
    if [[ -n $1 && -n $2 ]]; then awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; else echo NA; fi
}
# One LAB-RESULT per launch; L1's failure (timeout, death) is charged to the
# launch it interrupted and the ones after it.
EXIT=0 i=0
for l in $LAUNCHES; do
    i=$((i + 1))
    LAUNCH=$(get "launch.$i") L2INIT=$(get "l2_init.$i") STATUS=$(get "status.$i") L2DONE=$(get "l2_done.$i")
    STATUS=${STATUS//[^0-9]/}
    L2_UPTIME=$(get "l2_uptime.$i"); L2_UPTIME=${L2_UPTIME//[^0-9.]/}
    RESULT=ok
    if [[ -z $L2DONE && ( $QRC == 124 || $QRC == 137 ) ]]; then
        RESULT=timeout
    elif [[ -z $L2DONE ]]; then
        # L1 went away without its init finishing: a panic (see the L1 kernel
        # console) or a reset/triple fault of the emulated L1 machine.
        RESULT=l1_died
        if grep -q "Triple fault" "$QDBG" 2>/dev/null; then
            RESULT=l1_triple_fault
            echo "run.sh: L1 TRIPLE-FAULTED (QEMU TCG log: -d cpu_reset); the L1 machine reset and QEMU exited (-no-reboot)" >&2
        fi
        grep -v -e '^CPU Reset' -e '^[A-Z][A-Z0-9 ]*=' -e '^ *$' "$QDBG" 2>/dev/null | tail -n 20 >&2 || true
    elif [[ -z $L2INIT ]]; then
        RESULT=no_l2_init
    elif [[ $STATUS != 0 ]]; then
        RESULT=vmm_failed
    fi
    # Host arrival times of L2's marks, for timing that trusts no guest clock.
    awk -v k="iperf.$i" -v n="$i" -v l="$l" '$1 == k {sub(/:/, " mode=", l); $1 = ""; printf "LAB-IPERF launch=%s vmm=%s%s\n", n, l, $0}' "$STAMPS"
    awk -v p="mark.$i." -v n="$i" 'index($1, p) == 1 {printf "LAB-MARK launch=%s name=%s host_t=%s\n", n, substr($1, length(p) + 1), $2}' "$STAMPS"
    echo "LAB-RESULT vmm=${l%%:*} mode=${l#*:} vcpus=$VCPUS boot=$BOOT l2_init_s=$(diff_s "$LAUNCH" "$L2INIT") status=${STATUS:-none}" \
         "result=$RESULT l1_init_s=$(diff_s "$T0" "$(get l1_init)") l2_uptime_s=${L2_UPTIME:-NA}" \
         "l2_total_s=$(diff_s "$LAUNCH" "$L2DONE") total_s=$(diff_s "$T0" "$T_END") qemu_rc=$QRC l1_smp=$L1_SMP tcg=$TCG_THREAD"
    case $RESULT in
        ok) ;;
        timeout) echo "run.sh: TIMEOUT after ${TIMEOUT}s, QEMU killed" >&2; EXIT=124 ;;
        *) [[ $EXIT != 0 ]] || EXIT=1 ;;
    esac
done
exit $EXIT
