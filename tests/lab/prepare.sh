#!/usr/bin/env bash
# TCG lab, step 1: fetch and unpack what the lab needs into a cache directory.
#   Debian 12 cloud kernel (linux-image-cloud-amd64 -> linux-image-6.1.*-cloud-amd64;
#   downloaded with apt-get download and unpacked with dpkg-deb -x, never installed;
#   modules.dep made with kmod's depmod), busybox-static, and the tiny L2 initramfs
#   (busybox, l2-init.sh as /init, the virtio and IDE driver modules).
#   --kernel generic (or cloud,generic): also, or instead, Debian's generic
#   kernel (linux-image-amd64 -> linux-image-6.1.*-amd64), which has the
#   emulated NIC drivers (e1000) the cloud kernel lacks, in CACHE_DIR/generic
#   with the same layout and its own L2 initramfs (modules add an e1000 group).
#   --iperf3: iperf3 and its libraries (iperf3, libiperf0, libsctp1, libssl3,
#   apt-get download + dpkg-deb -x, not installed) in CACHE_DIR/iperf3/root,
#   and l2-iperf3.cpio.gz: iperf3 with every library it needs (libc too: the
#   L2 initramfs is otherwise static busybox), for run.sh to append to L2's
#   initramfs when L2 runs the network bench.
# Usage: prepare.sh [--kernel cloud|generic|cloud,generic] [--iperf3] [CACHE_DIR]
#   (default cache ${LAB_CACHE:-/var/tmp/vmmd-lab}, kernel cloud); idempotent.
# Produces in CACHE_DIR (cloud) or CACHE_DIR/generic: vmlinuz, kver, modules/
#   (the package's /lib/modules/<kver>), l2-initrd.cpio.gz, l2-modules.cpio.gz;
#   in CACHE_DIR: busybox, debs/, and with --iperf3 iperf3/root, l2-iperf3.cpio.gz.
set -euo pipefail

KERNELS=cloud IPERF3=0 CACHE=${LAB_CACHE:-/var/tmp/vmmd-lab}
while [[ $# -gt 0 ]]; do
    case $1 in
        --kernel) KERNELS=${2:?}; shift 2 ;;
        --iperf3) IPERF3=1; shift ;;
        -*) echo "prepare: unknown argument: $1" >&2; exit 2 ;;
        *) CACHE=$1; shift ;;
    esac
done
mkdir -p "$CACHE/debs"
CACHE=$(cd "$CACHE" && pwd)

log() { echo "prepare: $*" >&2; }
die() { echo "prepare: ERROR: $*" >&2; exit 1; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
L2='' IR=''
trap 'rm -rf "$L2" "$IR"' EXIT

for t in apt-get apt-cache dpkg-deb cpio gzip depmod modprobe; do
    command -v "$t" >/dev/null || die "missing tool: $t"
done

# apt-get download as root drops privileges to _apt, which cannot write
# into root-owned dirs; not needed for a plain download.
APT_OPTS=(-q -o APT::Sandbox::User=root)

# A fresh machine may have no package lists yet: fetch them once, as root.
refresh_lists() {
    [[ $(id -u) -eq 0 ]] || return 1
    log "updating the package lists"
    apt-get -q update >&2
}

# Download package $1 into $CACHE/debs unless some version of it is already there.
fetch_deb() {
    local pkg=$1 f
    f=$(ls "$CACHE"/debs/"${pkg}"_*.deb 2>/dev/null | head -n1 || true)
    if [[ -z $f ]]; then
        log "downloading $pkg"
        (cd "$CACHE/debs" && apt-get "${APT_OPTS[@]}" download "$pkg" >&2) \
            || { refresh_lists && (cd "$CACHE/debs" && apt-get "${APT_OPTS[@]}" download "$pkg" >&2); } \
            || die "apt-get download $pkg failed (try apt-get update)"
        f=$(ls "$CACHE"/debs/"${pkg}"_*.deb | head -n1)
    fi
    echo "$f"
}

# --- busybox-static ----------------------------------------------------------
if [[ ! -x $CACHE/busybox ]]; then
    BDEB=$(fetch_deb busybox-static)
    rm -rf "$CACHE/bb.tmp"
    mkdir -p "$CACHE/bb.tmp"
    dpkg-deb -x "$BDEB" "$CACHE/bb.tmp"
    cp "$CACHE/bb.tmp/bin/busybox" "$CACHE/busybox.new"
    rm -rf "$CACHE/bb.tmp"
    chmod 755 "$CACHE/busybox.new"
    mv "$CACHE/busybox.new" "$CACHE/busybox"
    log "busybox unpacked"
fi
file_out=$("$CACHE/busybox" 2>&1 | head -n1 || true)
[[ $file_out == BusyBox* ]] || die "busybox does not run: $file_out"

# --- kernel: follow the metapackage to the real image package ---------------
# prepare_kernel FLAVOUR: the kernel, its modules.dep and its L2 initramfs in
# its directory (lab_kernel_dir).
prepare_kernel() {
    local flavour=$1 meta pat KD KPKG KDEB KVER
    KD=$(lab_kernel_dir "$CACHE" "$flavour") || die "bad --kernel"
    mkdir -p "$KD"
    case $flavour in
        cloud) meta=linux-image-cloud-amd64 pat='linux-image-[0-9].*-cloud-amd64' ;;
        generic) meta=linux-image-amd64 pat='linux-image-[0-9][^ ]*[0-9]-amd64' ;;
    esac
    if [[ -s $KD/kver && -f $KD/vmlinuz && -d $KD/modules/kernel ]]; then
        KVER=$(cat "$KD/kver")
        log "kernel $KVER already prepared"
    else
        resolve_kernel() {
            apt-cache depends "$meta" 2>/dev/null \
                | awk -v p="^$pat\$" '$1 == "Depends:" && $2 ~ p {print $2; exit}'
        }
        KPKG=$(resolve_kernel)
        [[ -n $KPKG ]] || { refresh_lists && KPKG=$(resolve_kernel); }
        [[ -n $KPKG ]] || die "cannot resolve $meta (run apt-get update?)"
        KDEB=$(fetch_deb "$KPKG")
        rm -rf "$KD/kernel.tmp"
        mkdir -p "$KD/kernel.tmp"
        dpkg-deb -x "$KDEB" "$KD/kernel.tmp"
        KVER=${KPKG#linux-image-}
        [[ -f $KD/kernel.tmp/boot/vmlinuz-$KVER ]] || die "no vmlinuz-$KVER in $KDEB"
        [[ -d $KD/kernel.tmp/lib/modules/$KVER ]] || die "no modules for $KVER in $KDEB"
        rm -rf "$KD/kernel"
        mv "$KD/kernel.tmp" "$KD/kernel"
        cp "$KD/kernel/boot/vmlinuz-$KVER" "$KD/vmlinuz"
        cp "$KD/kernel/boot/config-$KVER" "$KD/config"
        ln -sfn "kernel/lib/modules/$KVER" "$KD/modules"
        echo "$KVER" > "$KD/kver"
        log "kernel $KVER unpacked"
    fi
    # --- module dependencies: the package ships no modules.dep ------------------
    if [[ ! -s $KD/modules/modules.dep ]]; then
        depmod -b "$KD/kernel" "$KVER" || die "depmod failed for $KVER"
        log "modules.dep made with depmod"
    fi

    # --- L2 initramfs: busybox and /init (l2-init.sh); the driver modules apart ---
    # Rebuilt every time (well under a second), so edits to the init take effect;
    # written under a name of this process's own, then renamed: labs run from two
    # worktrees may share the cache.
    # l2-modules.cpio.gz is a second archive that run.sh appends (the kernel
    # unpacks concatenated archives) only when L2 runs device checks, so plain
    # boots stay as small as before: /lib/modules/virtio holds virtio-pci with
    # blk, console, rng and net (pv mode), /lib/modules/ide ata_piix and the SCSI
    # disk driver (full mode).
    L2=$(mktemp -d "$CACHE/l2root.XXXXXX")
    mkdir -p "$L2"/{base/bin,base/sbin,base/proc,base/sys,base/dev,base/tmp,mods}
    cp "$CACHE/busybox" "$L2/base/bin/busybox"
    for a in sh mount umount cat grep dmesg poweroff reboot sleep usleep echo wc cut head tail tr \
             insmod mkdir dd od sync stty ip ping adjtimex awk tee date; do
        ln -s busybox "$L2/base/bin/$a"
    done
    cp "$HERE/l2-init.sh" "$L2/base/init"
    chmod 755 "$L2/base/init"
    # The cloud kernel has ext4 built in, the generic one as a module: the disk checks mount it.
    local fs=''
    [[ $flavour == cloud ]] || fs=ext4
    lab_install_modules "$KD" "$L2/mods/lib/modules/virtio" \
        virtio_pci virtio_blk virtio_console virtio-rng virtio_net $fs || die "L2 virtio modules"
    lab_install_modules "$KD" "$L2/mods/lib/modules/ide" ata_piix sd_mod $fs || die "L2 IDE modules"
    # The emulated NIC of full mode (not in the cloud kernel).
    [[ $flavour == cloud ]] || lab_install_modules "$KD" "$L2/mods/lib/modules/e1000" e1000 \
        || die "L2 e1000 module"
    for a in base:l2-initrd mods:l2-modules; do
        (cd "$L2/${a%%:*}" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) \
            | gzip -9 > "$KD/${a#*:}.cpio.gz.new.$$"
        mv "$KD/${a#*:}.cpio.gz.new.$$" "$KD/${a#*:}.cpio.gz"
    done
    rm -rf "$L2"
    log "$flavour kernel ready in $KD: vmlinuz ($KVER), modules/, l2-initrd.cpio.gz ($(stat -c %s "$KD/l2-initrd.cpio.gz") bytes)," \
        "l2-modules.cpio.gz ($(stat -c %s "$KD/l2-modules.cpio.gz") bytes)"
}

# --- iperf3 for the network bench: unpacked, never installed ----------------
if [[ $IPERF3 == 1 ]]; then
    IP=$CACHE/iperf3
    if [[ ! -x $IP/root/usr/bin/iperf3 ]]; then
        rm -rf "$IP/root.tmp"
        mkdir -p "$IP/root.tmp"
        for p in iperf3 libiperf0 libsctp1 libssl3; do
            dpkg-deb -x "$(fetch_deb $p)" "$IP/root.tmp"
        done
        rm -rf "$IP/root"
        mv "$IP/root.tmp" "$IP/root"
        log "iperf3 unpacked"
    fi
    if [[ ! -s $CACHE/l2-iperf3.cpio.gz || $IP/root/usr/bin/iperf3 -nt $CACHE/l2-iperf3.cpio.gz ]]; then
        IR=$(mktemp -d "$CACHE/iperfroot.XXXXXX")
        lab_copy_with_libs "$IR" "$IP/root/usr/bin/iperf3" /usr/bin/iperf3 "$IP/root"
        [[ -e $IR/lib64/ld-linux-x86-64.so.2 ]] || die "iperf3: no dynamic loader found by ldd"
        (cd "$IR" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) \
            | gzip -9 > "$CACHE/l2-iperf3.cpio.gz.new.$$"
        mv "$CACHE/l2-iperf3.cpio.gz.new.$$" "$CACHE/l2-iperf3.cpio.gz"
        rm -rf "$IR"
    fi
    LD_LIBRARY_PATH=$IP/root/usr/lib/x86_64-linux-gnu:$IP/root/lib/x86_64-linux-gnu "$IP/root/usr/bin/iperf3" -v \
        | head -n1 >&2 || die "the unpacked iperf3 does not run"
    log "iperf3 ready: $CACHE/l2-iperf3.cpio.gz ($(stat -c %s "$CACHE/l2-iperf3.cpio.gz") bytes)"
fi

for k in ${KERNELS//,/ }; do prepare_kernel "$k"; done
