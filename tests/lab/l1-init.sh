#!/bin/busybox sh
# L1 init of the vmmd TCG lab (run.sh puts it in the L1 initramfs as /init,
# with /lab.conf beside it): get /dev/kvm, set up what the L2 checks need
# (the disk QEMU gives L1 as /dev/vda, a tap device), run each L2 VMM of
# $LAUNCHES once, power off.
#   DISK=dev  the L2 VMM gets /dev/vda itself, so L2's writes reach the host's image;
#   DISK=ram  L1 copies /dev/vda into RAM, times its own reads of that file
#             ("LAB: native_dd"), and the L2 VMM gets the copy.
# With L2 checks, the VMM's console goes through a reader here that types a
# line on the console when L2 asks for it (hvc check) and prints KVM's exit
# counters (debugfs) each time L2 prints "LAB: mark NAME". With the iperf
# check (network bench) an iperf3 server listens on tap0's address for L2.
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
mount -t debugfs debugfs /sys/kernel/debug
. /lab.conf
up() { cut -d' ' -f1 /proc/uptime; }
finish() { sync; poweroff -f; sleep 5; echo o > /proc/sysrq-trigger; }
fail() { echo "LAB: ERROR $*"; dmesg | tail -n 20; finish; }
# now_us: the wall clock in microseconds (busybox date has no %N).
now_us() {
    adjtimex | while read -r k v rest; do
        case $k in time.tv_sec:) s=$v ;; time.tv_usec:) echo $((s * 1000000 + v)) ;; esac
    done
}
echo "LAB: L1 init reached t=$(up)"
for m in $(cat /lib/modules/l1/order); do
    insmod /lib/modules/l1/$m.ko || fail "insmod $m failed"
done
[ -c /dev/kvm ] || fail "no /dev/kvm"
echo "LAB: L1 /dev/kvm ok t=$(up) npt=$(cat /sys/module/kvm_amd/parameters/npt 2>/dev/null)"

DISK_PATH=''
if [ -n "$DISK" ]; then
    i=0
    while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do usleep 100000; i=$((i + 1)); done
    [ -b /dev/vda ] || fail "no /dev/vda in L1"
    DISK_PATH=/dev/vda
    if [ "$DISK" = ram ]; then
        dd if=/dev/vda of=/tmp/disk.img bs=1M 2>/dev/null || fail "copying /dev/vda"
        DISK_PATH=/tmp/disk.img
        r=1
        while [ $r -le "$RUNS" ]; do
            echo 3 > /proc/sys/vm/drop_caches
            t0=$(now_us)
            dd if=$DISK_PATH of=/dev/null bs=1M 2>/dev/null
            t1=$(now_us)
            echo "LAB: native_dd run=$r bytes=$(stat -c %s $DISK_PATH) us=$((t1 - t0))"
            r=$((r + 1))
        done
    fi
    echo "LAB: L1 disk $DISK_PATH ($(($(cat /sys/block/vda/size) / 2048)) MiB) t=$(up)"
fi
if [ "$NET" = 1 ]; then
    tunctl -t tap0 > /dev/null && ip addr add 10.0.2.1/24 dev tap0 && ip link set tap0 up \
        || fail "tap0 setup"
    case ",$L2_TESTS," in
        *,iperf,*) iperf3 -s -B 10.0.2.1 -D > /dev/null || fail "iperf3 server" ;;
    esac
fi

CR=$(printf '\r')
# kvm_counters NAME: every counter of KVM's debugfs directory (all VMs), one line.
kvm_counters() {
    printf 'LAB: L1 kvm %s t=%s' "$1" "$(up)"
    (cd /sys/kernel/debug/kvm && grep -s '' * 2>/dev/null) | while IFS=: read -r k v; do printf ' %s=%s' "$k" "$v"; done
    echo
}
# With TRACE=1 (LAB_L1_TRACE), KVM's exit, port I/O and MMIO tracepoints run
# through L2's second timed read, summed up as "LAB: L1 trace" lines: what the
# exits of one read are.
T=/sys/kernel/tracing
trace_window() { # trace_window begin|end
    if [ $1 = begin ]; then
        mount -t tracefs tracefs $T 2>/dev/null
        echo 8192 > $T/buffer_size_kb; echo > $T/trace
        for e in kvm_exit kvm_pio kvm_mmio kvm_userspace_exit; do echo 1 > $T/events/kvm/$e/enable; done
        echo 1 > $T/tracing_on
        return
    fi
    echo 0 > $T/tracing_on
    awk 'function after(w,   i) { for (i = 1; i < NF; i++) if ($i == w) return $(i + 1); return "?" }
         { ev = ""; for (i = 1; i <= NF; i++) if ($i ~ /^kvm_[a-z_]*:$/) { ev = $i; at = i; break } }
         ev == "kvm_exit:" { n["exit_reason " after("reason")]++ }
         ev == "kvm_pio:" { n["pio " $(at + 1) " " $(at + 3)]++ }
         ev == "kvm_mmio:" { n["mmio " $(at + 2) " " after("gpa")]++ }
         ev == "kvm_userspace_exit:" { n["userspace_exit " after("reason")]++ }
         END { for (k in n) print "LAB: L1 trace " k " " n[k] }' $T/trace | sort
    echo "LAB: L1 trace lost=$(grep -o 'entries-in-buffer/entries-written: [0-9/]*' $T/trace)"
}
console_reader() {
    while IFS= read -r line; do
        line=${line%"$CR"}
        echo "$line"
        case $line in
            *"LAB: hvc0 waiting for input"*) echo "hvc-in-$TOKEN" > /tmp/console-in ;;
            *"LAB: mark "*)
                kvm_counters "$(echo ${line##*LAB: mark } | tr ' ' _)"
                case "$TRACE$line" in
                    1*"mark dd2 begin") trace_window begin ;;
                    1*"mark dd2 end") trace_window end ;;
                esac ;;
        esac
    done
}

# QEMU starts in its own SeaBIOS unless the lab names other firmware.
QEMU_BIOS=''
[ "$BOOT" = disk ] && [ "$FIRMWARE" != /usr/share/seabios/bios-256k.bin ] && QEMU_BIOS="-bios $FIRMWARE"
# run_vmm VMM MODE CMDLINE: one L2, console on stdout; returns the VMM's status.
# BOOT=disk: L2 starts in firmware and boots its disk (CMDLINE is then unused).
run_vmm() {
    local cmdline=$3
    case $1 in
    vmmd)
        if [ "$BOOT" = disk ]; then
            set -- "$2" --firmware "$FIRMWARE"
        else
            set -- "$2" --kernel /l2/vmlinuz --initrd /l2/initrd --cmdline "$cmdline"
        fi
        local mode=$1
        shift
        # Sandboxed as the daemon's workers are: real Linux exercises the filters.
        /vmmd run "$@" \
            --mode "$mode" --vcpus "$VCPUS" --memory "$L2_MEM" --stats --sandbox-uid 4242 \
            ${DISK_PATH:+--disk $DISK_PATH} $([ "$NET" = 1 ] && echo --nic tap=tap0)
        ;;
    qemu-pv|qemu-vhost)
        # With devices, the fair peer is the PC machine with virtio-pci devices
        # (what vmmd offers), not microvm's virtio-mmio. qemu-vhost moves
        # virtio-net's datapath into the kernel (vhost-net).
        if [ -n "$DISK_PATH$L2_TESTS" ] || [ "$NET" = 1 ]; then
            set -- -M pc -cpu host -vga none -device virtio-rng-pci \
                ${DISK_PATH:+-drive file=$DISK_PATH,format=raw,if=none,id=d0 -device virtio-blk-pci,drive=d0}
            vhost=off
            [ "$1" = qemu-vhost ] && vhost=on
            [ "$NET" = 1 ] && set -- "$@" -netdev tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=$vhost \
                -device virtio-net-pci,netdev=n0,romfile=
        else
            set -- -M "microvm$MICROVM_OPTS" -cpu host
        fi
        if [ "$BOOT" = disk ]; then set -- "$@" -boot c $QEMU_BIOS
        else set -- "$@" -kernel /l2/vmlinuz -initrd /l2/initrd -append "$cmdline"; fi
        qemu-system-x86_64 -accel kvm "$@" -smp "$VCPUS" -m "$L2_MEM" \
            -nodefaults -no-user-config -display none -serial stdio -no-reboot
        ;;
    qemu-full)
        if [ "$BOOT" = disk ]; then set -- -boot c $QEMU_BIOS
        else set -- -kernel /l2/vmlinuz -initrd /l2/initrd -append "$cmdline"; fi
        qemu-system-x86_64 -accel kvm -M pc -cpu host,-hypervisor,kvm=off -smp "$VCPUS" -m "$L2_MEM" \
            -nodefaults -no-user-config -display none -vga none -serial stdio -no-reboot \
            ${DISK_PATH:+-drive file=$DISK_PATH,format=raw,if=ide} \
            $([ "$NET" = 1 ] && echo -netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device e1000,netdev=n0,romfile=) \
            "$@"
        ;;
    esac
}

for launch in $LAUNCHES; do
    vmm=${launch%%:*} mode=${launch#*:}
    cmdline=$L2_CMDLINE
    if [ -n "$L2_TESTS" ]; then
        # Full mode's NIC driver (e1000) is only in the generic kernel's modules.
        if [ "$mode" = pv ]; then set -- virtio vda; else set -- ide,e1000 sda; fi
        cmdline="$cmdline lab.tests=$L2_TESTS lab.mods=$1 lab.disk=$2 lab.tag=$mode"
        cmdline="$cmdline lab.token=$TOKEN lab.runs=$RUNS lab.iperf_s=$IPERF_TIME"
    fi
    echo "LAB: L1 launching L2 t=$(up) vmm=$vmm mode=$mode vcpus=$VCPUS"
    if [ -n "$L2_TESTS" ]; then
        rm -f /tmp/console-in; mkfifo /tmp/console-in
        exec 4<> /tmp/console-in   # a writer, so the VMM's stdin never sees EOF
        { run_vmm $vmm $mode "$cmdline" < /tmp/console-in; echo $? > /tmp/vmm-rc; } | console_reader
        exec 4>&-
        rc=$(cat /tmp/vmm-rc)
    else
        run_vmm $vmm $mode "$cmdline" < /dev/null
        rc=$?
    fi
    echo "LAB: vmm exit status=$rc"
    echo "LAB: L2 done t=$(up)"
done
finish
