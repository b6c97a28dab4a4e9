#!/usr/bin/env bash
# TCG lab, step 2: boot one L2 Linux guest under a VMM running inside an L1 guest.
# L1 = Debian cloud kernel under QEMU TCG (-cpu max, emulated AMD-V) with an
# initramfs that loads irqbypass/kvm/kvm-amd and gets /dev/kvm; L1 then runs the
# L2 VMM (our `vmmd run`, or QEMU for comparison) on the same kernel + a busybox
# initramfs (see prepare.sh). All console output (L1 and L2) goes to stdout, then
#   LAB-RESULT vmm=.. mode=.. vcpus=.. l2_init_s=.. status=.. [more key=value]
# l2_init_s is host wall clock from the arrival of L1's "LAB: L1 launching L2"
# line to the arrival of L2's "LAB: L2 init reached" line (does not depend on
# any guest clock being right under TCG/nested virt).
#
# Usage: run.sh --vmm vmmd|qemu-pv|qemu-full [--mode full|pv] [--vcpus N]
#               [--vmmd PATH] [--timeout S] [--memory MIB] [--cache DIR]
#               [--l2-append "ARGS"] [--l2-verbose] [--keep] [--log FILE]
# Env: LAB_CACHE, LAB_L1_MEM (2048), LAB_L1_APPEND (L1 cmdline),
#   LAB_L1_QEMU_OPTS (extra L1 QEMU args, e.g. "-d int -D FILE"),
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

LOG='' VMM='' MODE='' VCPUS=2 TIMEOUT=240 L2_MEM=256 L2_APPEND='' L2_QUIET=quiet KEEP=0
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
        -h|--help) usage ;;
        *) echo "run.sh: unknown argument: $1" >&2; usage ;;
    esac
done

case $VMM in
    vmmd) MODE=${MODE:-pv} ;;
    qemu-pv) [[ -z $MODE || $MODE == pv ]] || die "--vmm qemu-pv is pv only"; MODE=pv ;;
    qemu-full) [[ -z $MODE || $MODE == full ]] || die "--vmm qemu-full is full only"; MODE=full ;;
    *) echo "run.sh: --vmm must be vmmd, qemu-pv or qemu-full" >&2; usage ;;
esac
[[ $MODE == pv || $MODE == full ]] || die "--mode must be pv or full"
[[ $VCPUS =~ ^[1-9][0-9]*$ ]] || die "--vcpus must be a positive integer"
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a positive integer"

QEMU=$(command -v qemu-system-x86_64 || true)
if [[ -z $QEMU ]]; then
    echo "run.sh: SKIP: qemu-system-x86_64 not found (apt-get install qemu-system-x86)" >&2
    exit 77
fi
for t in cpio ldd timeout; do command -v "$t" >/dev/null || die "missing tool: $t"; done

"$HERE/prepare.sh" "$CACHE" >&2
CACHE=$(cd "$CACHE" && pwd)
KVER=$(cat "$CACHE/kver")

if [[ $VMM == vmmd ]]; then
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
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,var/tmp,etc,l2,lib/modules/lab,lib64}
cp "$CACHE/busybox" "$R/bin/busybox"
cp "$CACHE/vmlinuz" "$R/l2/vmlinuz"
cp "$CACHE/l2-initrd.cpio.gz" "$R/l2/initrd"

# kvm modules, in load order; decompress .ko.xz/.ko.zst/.ko.gz for busybox insmod.
for m in kernel/virt/lib/irqbypass kernel/arch/x86/kvm/kvm kernel/arch/x86/kvm/kvm-amd; do
    src='' name=$(basename "$m")
    for ext in .ko .ko.xz .ko.zst .ko.gz; do
        [[ -f $CACHE/modules/$m$ext ]] && { src=$CACHE/modules/$m$ext; break; }
    done
    [[ -n $src ]] || die "module $m not found under $CACHE/modules"
    case $src in
        *.ko) cp "$src" "$R/lib/modules/lab/$name.ko" ;;
        *.xz) xz -dc "$src" > "$R/lib/modules/lab/$name.ko" ;;
        *.zst) zstd -dqc "$src" > "$R/lib/modules/lab/$name.ko" ;;
        *.gz) gzip -dc "$src" > "$R/lib/modules/lab/$name.ko" ;;
    esac
done

# Copy an executable plus its shared libraries (and the dynamic loader) to the
# same absolute paths inside the initramfs.
copy_with_libs() {
    local bin=$1 dest=$2 lib
    mkdir -p "$R/$(dirname "$dest")"
    cp -L "$bin" "$R/$dest"
    while read -r lib; do
        [[ -e $R/$lib ]] && continue
        mkdir -p "$R/$(dirname "$lib")"
        cp -L "$lib" "$R/$lib"
    done < <(ldd "$bin" 2>/dev/null | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i}')
}

if [[ $VMM == vmmd ]]; then
    copy_with_libs "$VMMD" /vmmd
    VMM_DESC=$VMMD
else
    copy_with_libs "$QEMU" /usr/bin/qemu-system-x86_64
    # Firmware: qemu looks in <bindir>/../share/qemu, ../share/seabios, ../lib/ipxe/qemu.
    # microvm needs bios-microvm.bin (-> qboot.rom); pc needs bios-256k.bin,
    # linuxboot_dma.bin, kvmvapic.bin; -nodefaults -vga none avoids vgabios/NIC roms.
    for f in /usr/share/qemu/{bios-microvm.bin,qboot.rom,bios-256k.bin,bios.bin,linuxboot.bin,linuxboot_dma.bin,kvmvapic.bin,multiboot.bin,multiboot_dma.bin,pvh.bin} \
             /usr/share/seabios/{bios-256k.bin,bios.bin,bios-microvm.bin}; do
        [[ -e $f && ! -e $R$f ]] || continue
        mkdir -p "$R$(dirname "$f")"
        cp -L "$f" "$R$f"
    done
    VMM_DESC="$QEMU ($("$QEMU" --version | head -n1))"
fi

L2_CMDLINE="console=ttyS0 panic=-1 reboot=t${L2_QUIET:+ $L2_QUIET}${L2_APPEND:+ $L2_APPEND}"
cat > "$R/lab.conf" <<EOF
VMM='$VMM'
MODE='$MODE'
VCPUS='$VCPUS'
L2_MEM='$L2_MEM'
L2_CMDLINE='$L2_CMDLINE'
MICROVM_OPTS='${LAB_MICROVM_OPTS-,rtc=on}'
EOF

cat > "$R/init" <<'EOF'
#!/bin/busybox sh
# L1 init of the vmmd TCG lab: get /dev/kvm, run the L2 VMM once, power off.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/lib64:/lib:/usr/lib
export HOME=/root TMPDIR=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The L1 kernel's console is ttyS1 (a file on the host); our output and the
# L2 VMM's (= L2's serial console) go to ttyS0 (run.sh's stdout), unmixed.
exec > /dev/ttyS0 2>&1 < /dev/null
mkdir -p /dev/pts /dev/shm /root
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
. /lab.conf
up() { cut -d' ' -f1 /proc/uptime; }
finish() { sync; poweroff -f; sleep 5; echo o > /proc/sysrq-trigger; }
echo "LAB: L1 init reached t=$(up)"
for m in irqbypass kvm kvm-amd; do
    if ! insmod /lib/modules/lab/$m.ko; then
        echo "LAB: ERROR insmod $m failed"; dmesg | tail -n 20; finish
    fi
done
if [ ! -c /dev/kvm ]; then
    echo "LAB: ERROR no /dev/kvm"; dmesg | tail -n 20; finish
fi
echo "LAB: L1 /dev/kvm ok t=$(up) npt=$(cat /sys/module/kvm_amd/parameters/npt 2>/dev/null)"
echo "LAB: L1 launching L2 t=$(up) vmm=$VMM mode=$MODE vcpus=$VCPUS"
case $VMM in
vmmd)
    /vmmd run --kernel /l2/vmlinuz --initrd /l2/initrd --cmdline "$L2_CMDLINE" \
        --mode "$MODE" --vcpus "$VCPUS" --memory "$L2_MEM" --stats < /dev/null
    ;;
qemu-pv)
    qemu-system-x86_64 -accel kvm -M "microvm$MICROVM_OPTS" -cpu host -smp "$VCPUS" -m "$L2_MEM" \
        -nodefaults -no-user-config -display none -serial stdio -no-reboot \
        -kernel /l2/vmlinuz -initrd /l2/initrd -append "$L2_CMDLINE" < /dev/null
    ;;
qemu-full)
    qemu-system-x86_64 -accel kvm -M pc -cpu host,-hypervisor,kvm=off -smp "$VCPUS" -m "$L2_MEM" \
        -nodefaults -no-user-config -display none -vga none -serial stdio -no-reboot \
        -kernel /l2/vmlinuz -initrd /l2/initrd -append "$L2_CMDLINE" < /dev/null
    ;;
esac
rc=$?
echo "LAB: vmm exit status=$rc"
echo "LAB: L2 done t=$(up)"
finish
EOF
chmod 755 "$R/init"

(cd "$R" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$WORK/l1-initrd.cpio"
echo "run.sh: vmm=$VMM ($VMM_DESC) mode=$MODE vcpus=$VCPUS; L1 initrd $(( $(stat -c %s "$WORK/l1-initrd.cpio") / 1048576 )) MiB; kernel $KVER" >&2

# ---------------------------------------------------------------------------
# Boot L1 under TCG; timestamp interesting lines on arrival.
# L1 kernel messages go to a second UART (a file), so they cannot split L2's
# lines on ttyS0; run.sh prints that log after the run.
L1_KLOG=$WORK/l1-kernel.log
L1_CMDLINE="console=ttyS1 panic=-1 quiet mitigations=off ${LAB_L1_APPEND:-}"
mkdir -p "$CACHE/logs"
LOG=${LOG:-$CACHE/logs/last-$VMM-$MODE.log}
: > "$LOG"
QDBG=$WORK/l1-qemu-debug.log   # QEMU's own log: L1 resets, triple faults
STAMPS=$WORK/stamps
: > "$STAMPS"
now() { echo "$EPOCHREALTIME"; }
if [[ -n ${LAB_TCG_THREAD:-} ]]; then TCG_THREAD=$LAB_TCG_THREAD
elif [[ $MODE == pv || $L1_SMP == 1 ]]; then TCG_THREAD=multi
else TCG_THREAD=single; fi
T0=$(now)

set +e
timeout -k 5 "$TIMEOUT" "$QEMU" -accel "tcg,thread=$TCG_THREAD" -cpu max -smp "$L1_SMP" -m "$L1_MEM" \
    -M pc -nodefaults -no-user-config -display none -vga none -serial stdio -serial "file:$L1_KLOG" -no-reboot \
    -kernel "$CACHE/vmlinuz" -initrd "$WORK/l1-initrd.cpio" -append "$L1_CMDLINE" \
    -d cpu_reset,guest_errors -D "$QDBG" ${LAB_L1_QEMU_OPTS:-} < /dev/null 2>&1 |
while IFS= read -r line || [[ -n $line ]]; do
    t=$EPOCHREALTIME
    while [[ $line == *$'\r' ]]; do line=${line%$'\r'}; done
    printf '%s\n' "$line"
    printf '%s\n' "$line" >> "$LOG"
    case $line in
        *"LAB: L1 init reached"*) echo "l1_init $t" >> "$STAMPS" ;;
        *"LAB: L1 launching L2"*) echo "launch $t" >> "$STAMPS" ;;
        *"LAB: L2 init reached uptime="*)
            echo "l2_init $t" >> "$STAMPS"
            echo "l2_uptime ${line##*uptime=}" >> "$STAMPS" ;;
        *"LAB: vmm exit status="*) echo "status ${line##*status=}" >> "$STAMPS" ;;
        *"LAB: L2 done"*) echo "l2_done $t" >> "$STAMPS" ;;
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
LAUNCH=$(get launch) L2INIT=$(get l2_init) STATUS=$(get status) L1INIT=$(get l1_init) L2DONE=$(get l2_done)
STATUS=${STATUS//[^0-9]/}
L2_INIT_S=$(diff_s "$LAUNCH" "$L2INIT")
L2_UPTIME=$(get l2_uptime); L2_UPTIME=${L2_UPTIME//[^0-9.]/}

RESULT=ok
if [[ $QRC == 124 || $QRC == 137 ]]; then
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

echo "LAB-RESULT vmm=$VMM mode=$MODE vcpus=$VCPUS l2_init_s=$L2_INIT_S status=${STATUS:-none}" \
     "result=$RESULT l1_init_s=$(diff_s "$T0" "$L1INIT") l2_uptime_s=${L2_UPTIME:-NA}" \
     "l2_total_s=$(diff_s "$LAUNCH" "$L2DONE") total_s=$(diff_s "$T0" "$T_END") qemu_rc=$QRC l1_smp=$L1_SMP tcg=$TCG_THREAD"

case $RESULT in
    ok) exit 0 ;;
    timeout) echo "run.sh: TIMEOUT after ${TIMEOUT}s, QEMU killed" >&2; exit 124 ;;
    *) exit 1 ;;
esac
