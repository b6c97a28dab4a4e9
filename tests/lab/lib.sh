# Helpers shared by the TCG lab scripts (sourced by prepare.sh and run.sh).
# Modules come from the unpacked kernel package in the cache; their load order
# is what kmod's modprobe computes from the modules.dep that prepare.sh makes.
# A kernel directory (KDIR below) is the cache itself for Debian's cloud
# kernel and CACHE/generic for the generic one (linux-image-amd64, which has
# the emulated NIC drivers such as e1000 that the cloud kernel lacks).
PATH=$PATH:/usr/sbin:/sbin   # depmod and modprobe, for users whose PATH lacks them
LAB_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# lab_kernel_dir CACHE cloud|generic: where that kernel's files are.
lab_kernel_dir() {
    case $2 in
        cloud) echo "$1" ;;
        generic) echo "$1/generic" ;;
        *) echo "lab: kernel must be cloud or generic, not '$2'" >&2; return 1 ;;
    esac
}

# lab_module_paths KDIR MODULE...: the .ko files MODULE... need, dependencies
# first, each once (modules built into the kernel print nothing).
lab_module_paths() {
    local cache=$1 m
    shift
    for m in "$@"; do
        modprobe --show-depends -d "$cache/kernel" -S "$(cat "$cache/kver")" "$m" \
            || { echo "lab: modprobe cannot resolve module $m" >&2; return 1; }
    done | awk '$1 == "insmod" && !seen[$2]++ {print $2}'
}

# lab_install_modules KDIR DESTDIR MODULE...: uncompressed copies of the
# modules (busybox insmod reads plain .ko only) in DESTDIR, and DESTDIR/order
# with their names in load order (appended, so calls add up).
lab_install_modules() {
    local cache=$1 dest=$2 src name paths
    shift 2
    mkdir -p "$dest"
    paths=$(lab_module_paths "$cache" "$@") || return 1
    for src in $paths; do
        name=$(basename "$src"); name=${name%%.ko*}
        [[ -e $dest/$name.ko ]] && continue
        case $src in
            *.ko) cp "$src" "$dest/$name.ko" ;;
            *.xz) xz -dc "$src" > "$dest/$name.ko" ;;
            *.zst) zstd -dqc "$src" > "$dest/$name.ko" ;;
            *.gz) gzip -dc "$src" > "$dest/$name.ko" ;;
            *) echo "lab: unknown module format: $src" >&2; return 1 ;;
        esac
        echo "$name" >> "$dest/order"
    done
}

# lab_copy_with_libs ROOT BIN DEST [UNPACKED]: copy executable BIN to ROOT/DEST
# with the shared libraries ldd finds for it (and the dynamic loader). A
# library under UNPACKED (a directory where .deb packages were unpacked with
# dpkg-deb -x, searched first) lands at its path inside the package; the
# others at their host path.
lab_copy_with_libs() {
    local root=$1 bin=$2 dest=$3 unpacked=${4:-} lib to libpath=''
    mkdir -p "$root/$(dirname "$dest")"
    cp -L "$bin" "$root/$dest"
    [[ -n $unpacked ]] && libpath=$unpacked/lib/x86_64-linux-gnu:$unpacked/usr/lib/x86_64-linux-gnu
    while read -r lib; do
        to=$lib
        [[ -n $unpacked && $lib == "$unpacked"/* ]] && to=${lib#"$unpacked"}
        [[ -e $root/$to ]] && continue
        mkdir -p "$root/$(dirname "$to")"
        cp -L "$lib" "$root/$to"
    done < <(LD_LIBRARY_PATH=$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} ldd "$bin" 2>/dev/null \
             | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i}')
}

# lab_copy_qemu ROOT QEMU: qemu-system-x86_64 (the executable QEMU) with its
# libraries at ROOT/usr/bin, and the firmware it loads. QEMU looks in
# <bindir>/../share/qemu, ../share/seabios, ../lib/ipxe/qemu. microvm needs
# bios-microvm.bin (-> qboot.rom); pc needs bios-256k.bin, linuxboot_dma.bin,
# kvmvapic.bin; -nodefaults -vga none avoids vgabios/NIC roms (efi-virtio.rom:
# virtio-net-pci's option ROM; the lab's NICs have romfile= anyway).
lab_copy_qemu() {
    local root=$1 f
    lab_copy_with_libs "$root" "$2" /usr/bin/qemu-system-x86_64
    for f in /usr/share/qemu/{bios-microvm.bin,qboot.rom,bios-256k.bin,bios.bin,linuxboot.bin,linuxboot_dma.bin,kvmvapic.bin,multiboot.bin,multiboot_dma.bin,pvh.bin,efi-virtio.rom} \
             /usr/share/seabios/{bios-256k.bin,bios.bin,bios-microvm.bin} /usr/lib/ipxe/qemu/efi-virtio.rom; do
        [[ -e $f && ! -e $root$f ]] || continue
        mkdir -p "$root$(dirname "$f")"
        cp -L "$f" "$root$f"
    done
}

# lab_l1_root R K VMMD: the start of a daemon-in-L1 test's root in R: busybox, K's
# kernel and L2 initrd (with its driver modules) in /l2, vmmd and vmmd-daemon (beside
# VMMD) with their libraries, root in /etc/passwd and /etc/group. Needs CACHE.
lab_l1_root() {
    local root=$1 k=$2 vmmd=$3
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,l2,lib64}
    cp "$CACHE/busybox" "$root/bin/busybox"
    cp "$k/vmlinuz" "$root/l2/vmlinuz"
    cat "$k/l2-initrd.cpio.gz" "$k/l2-modules.cpio.gz" > "$root/l2/initrd"
    lab_copy_with_libs "$root" "$vmmd" /vmmd
    lab_copy_with_libs "$root" "$(dirname "$vmmd")/vmmd-daemon" /vmmd-daemon
    printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
    printf 'root:x:0:\n' > "$root/etc/group"
}

# lab_pack_l1 R INIT OUT: INIT as R's /init (with l1-lib.sh, which it sources, as
# /lab-lib.sh), R packed into the initramfs OUT (uncompressed: decompressing under
# TCG is slow).
lab_pack_l1() {
    cp "$LAB_LIB_DIR/l1-lib.sh" "$1/lab-lib.sh"
    cp "$2" "$1/init"
    chmod 755 "$1/init"
    (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$3"
}

# lab_median: the median of the numbers on stdin, one a line (NA when none).
lab_median() {
    sort -n | awk '{v[NR] = $1} END {if (NR == 0) print "NA"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

# lab_bench_options SCRIPT ARGS...: what the lab benchmarks take, into VMMD,
# VCPUS, TIMEOUT and CACHE (set their defaults first), and --runs N (or
# BENCH_RUNS) into RUNS (default 3); --help prints SCRIPT's header. Exits on a usage error, and
# with 77 (skip) when qemu-system-x86_64 is missing.
lab_bench_options() {
    local script=$1 name
    name=$(basename "$1")
    shift
    RUNS=${BENCH_RUNS:-3}
    while [[ $# -gt 0 ]]; do
        case $1 in
            --vmmd) VMMD=${2:?}; shift 2 ;;
            --vcpus) VCPUS=${2:?}; shift 2 ;;
            --timeout) TIMEOUT=${2:?}; shift 2 ;;
            --cache) CACHE=${2:?}; shift 2 ;;
            --runs) RUNS=${2:?}; shift 2 ;;
            -h|--help) sed -n '2,/^set -euo/p' "$script" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
            *) echo "$name: unknown argument: $1" >&2; exit 2 ;;
        esac
    done
    [[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "$name: --runs (BENCH_RUNS) must be a positive integer" >&2; exit 2; }
    if ! command -v qemu-system-x86_64 >/dev/null; then
        echo "$name: SKIP: qemu-system-x86_64 not found (apt-get install qemu-system-x86)" >&2
        exit 77
    fi
}

# --- running an L1 made by a daemon-in-L1 test (lab.snapshots, lab.migration) --------
# lab_run_l1 NAME: boots L1 from $WORK/l1-initrd.cpio and $K's kernel, its console to stdout
# and $LOG; it is done when it prints "LAB: L1 NAME done". QRC is QEMU's status, 125 when L1
# fell silent for $STALL seconds (it prints at least every ~10 s while it works) and was
# killed. An L1 that did not finish (nested SVM under QEMU TCG misbehaves now and then, see
# run.sh, or a machine loaded by others made it crawl) without a failed check is run once
# more (NOTE lines). Needs WORK, K, LOG, TIMEOUT, QEMU, STALL.
lab_run_l1() {
    local name=$1
    lab__boot_l1 "$name"
    if [[ $QRC == 125 ]] || ! grep -q "LAB: L1 $name done" "$LOG"; then
        echo "NOTE: L1 did not finish (QEMU status $QRC, last line: $(tail -n 1 "$LOG" | head -c 200)); L1's kernel log:"
        tail -n 20 "$WORK/l1-kernel.log" 2>/dev/null
        if ! grep -q "^LAB-CHECK fail" "$LOG"; then
            cp "$LOG" "$LOG.first"
            echo "NOTE: running L1 again (the first run's log: $LOG.first)"
            lab__boot_l1 "$name"
        fi
    fi
}

lab__boot_l1() {
    local name=$1 pid last=-1 size quiet=0
    # The output file exists before tail follows it (tail -f gives up on a missing file).
    : > "$LOG"
    : > "$WORK/l1-out"
    timeout -k 5 "$TIMEOUT" "$QEMU" -accel tcg,thread=multi -cpu max -smp 1 -m "${LAB_L1_MEM:-2048}" \
        -M pc -nodefaults -no-user-config -display none -vga none -serial stdio \
        -serial "file:$WORK/l1-kernel.log" -no-reboot -d guest_errors -D "$WORK/l1-qemu.log" \
        -kernel "$K/vmlinuz" -initrd "$WORK/l1-initrd.cpio" \
        -append "console=ttyS1 panic=-1 quiet mitigations=off" < /dev/null >> "$WORK/l1-out" 2>&1 &
    pid=$!
    tail -n +1 -f --pid=$pid "$WORK/l1-out" | stdbuf -oL tr -d '\r' | tee "$LOG" &
    while kill -0 $pid 2>/dev/null; do
        sleep 5
        size=$(stat -c %s "$WORK/l1-out")
        if [[ $size == "$last" ]]; then quiet=$((quiet + 5)); else quiet=0 last=$size; fi
        if [[ $quiet -ge $STALL ]]; then
            echo "lab: L1 ($name) silent for ${STALL}s: stalled, killed" >&2
            kill $pid 2>/dev/null
            wait $pid
            QRC=125
            wait
            return
        fi
    done
    QRC=0
    wait $pid || QRC=$?
    wait
}

# lab_verdict NAME: a PASS or FAIL line per LAB-CHECK of $LOG, a failure if L1 did not
# finish, the count; the status says whether all passed.
lab_verdict() {
    local name=$1 passed=0 failed=0 verdict check detail
    while read -r _ verdict check detail; do
        if [[ $verdict == ok ]]; then
            echo "PASS $check${detail:+ ($detail)}"; passed=$((passed + 1))
        else
            echo "FAIL $check${detail:+ ($detail)}"; failed=$((failed + 1))
        fi
    done < <(grep '^LAB-CHECK ' "$LOG")
    if ! grep -q "LAB: L1 $name done" "$LOG"; then
        echo "FAIL the L1 run did not finish (QEMU status $QRC); L1's kernel log:"
        tail -n 30 "$WORK/l1-kernel.log" 2>/dev/null
        failed=$((failed + 1))
    fi
    echo "$passed passed, $failed failed"
    [[ $failed == 0 && $passed -gt 0 ]]
}
