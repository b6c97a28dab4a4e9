#!/usr/bin/env bash
# TCG lab, step 1: fetch and unpack what the lab needs into a cache directory.
#   Debian 12 cloud kernel (linux-image-cloud-amd64 -> linux-image-6.1.*-cloud-amd64;
#   downloaded with apt-get download and unpacked with dpkg-deb -x, never installed;
#   modules.dep made with kmod's depmod), busybox-static, and the tiny L2 initramfs
#   (busybox, l2-init.sh as /init, the virtio and IDE driver modules).
# Usage: prepare.sh [CACHE_DIR]   (default ${LAB_CACHE:-/var/tmp/vmmd-lab}); idempotent.
# Produces in CACHE_DIR: vmlinuz, kver, modules/ (the package's /lib/modules/<kver>),
#   busybox, l2-initrd.cpio.gz, l2-modules.cpio.gz.
set -euo pipefail

CACHE=${1:-${LAB_CACHE:-/var/tmp/vmmd-lab}}
mkdir -p "$CACHE/debs"
CACHE=$(cd "$CACHE" && pwd)

log() { echo "prepare: $*" >&2; }
die() { echo "prepare: ERROR: $*" >&2; exit 1; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"

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

# --- kernel: follow the metapackage to the real image package ---------------
if [[ -s $CACHE/kver && -f $CACHE/vmlinuz && -d $CACHE/modules/kernel ]]; then
    KVER=$(cat "$CACHE/kver")
    log "kernel $KVER already prepared"
else
    resolve_kernel() {
        apt-cache depends linux-image-cloud-amd64 2>/dev/null \
            | awk '/Depends: linux-image-[0-9].*-cloud-amd64/ {print $2; exit}'
    }
    KPKG=$(resolve_kernel)
    [[ -n $KPKG ]] || { refresh_lists && KPKG=$(resolve_kernel); }
    [[ -n $KPKG ]] || die "cannot resolve linux-image-cloud-amd64 (run apt-get update?)"
    KDEB=$(fetch_deb "$KPKG")
    rm -rf "$CACHE/kernel.tmp"
    mkdir -p "$CACHE/kernel.tmp"
    dpkg-deb -x "$KDEB" "$CACHE/kernel.tmp"
    KVER=${KPKG#linux-image-}
    [[ -f $CACHE/kernel.tmp/boot/vmlinuz-$KVER ]] || die "no vmlinuz-$KVER in $KDEB"
    [[ -d $CACHE/kernel.tmp/lib/modules/$KVER ]] || die "no modules for $KVER in $KDEB"
    rm -rf "$CACHE/kernel"
    mv "$CACHE/kernel.tmp" "$CACHE/kernel"
    cp "$CACHE/kernel/boot/vmlinuz-$KVER" "$CACHE/vmlinuz"
    cp "$CACHE/kernel/boot/config-$KVER" "$CACHE/config"
    ln -sfn "kernel/lib/modules/$KVER" "$CACHE/modules"
    echo "$KVER" > "$CACHE/kver"
    log "kernel $KVER unpacked"
fi

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

# --- module dependencies: the package ships no modules.dep ------------------
if [[ ! -s $CACHE/modules/modules.dep ]]; then
    depmod -b "$CACHE/kernel" "$KVER" || die "depmod failed for $KVER"
    log "modules.dep made with depmod"
fi

# --- L2 initramfs: busybox and /init (l2-init.sh); the driver modules apart ---
# Rebuilt every time (well under a second), so edits to the init take effect.
# l2-modules.cpio.gz is a second archive that run.sh appends (the kernel
# unpacks concatenated archives) only when L2 runs device checks, so plain
# boots stay as small as before: /lib/modules/virtio holds virtio-pci with
# blk, console, rng and net (pv mode), /lib/modules/ide ata_piix and the SCSI
# disk driver (full mode).
L2=$(mktemp -d "$CACHE/l2root.XXXXXX")
trap 'rm -rf "$L2"' EXIT
mkdir -p "$L2"/{base/bin,base/sbin,base/proc,base/sys,base/dev,base/tmp,mods}
cp "$CACHE/busybox" "$L2/base/bin/busybox"
for a in sh mount umount cat grep dmesg poweroff reboot sleep usleep echo wc cut head tail tr \
         insmod mkdir dd od sync stty ip ping adjtimex; do
    ln -s busybox "$L2/base/bin/$a"
done
cp "$HERE/l2-init.sh" "$L2/base/init"
chmod 755 "$L2/base/init"
lab_install_modules "$CACHE" "$L2/mods/lib/modules/virtio" \
    virtio_pci virtio_blk virtio_console virtio-rng virtio_net || die "L2 virtio modules"
lab_install_modules "$CACHE" "$L2/mods/lib/modules/ide" ata_piix sd_mod || die "L2 IDE modules"
for a in base:l2-initrd mods:l2-modules; do
    (cd "$L2/${a%%:*}" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) \
        | gzip -9 > "$CACHE/${a#*:}.cpio.gz.new"
    mv "$CACHE/${a#*:}.cpio.gz.new" "$CACHE/${a#*:}.cpio.gz"
done

log "ready in $CACHE: vmlinuz ($KVER), modules/, busybox, l2-initrd.cpio.gz ($(stat -c %s "$CACHE/l2-initrd.cpio.gz") bytes)," \
    "l2-modules.cpio.gz ($(stat -c %s "$CACHE/l2-modules.cpio.gz") bytes)"
