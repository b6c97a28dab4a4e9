#!/usr/bin/env bash
# TCG lab, step 1: fetch and unpack what the lab needs into a cache directory.
#   Debian 12 cloud kernel (linux-image-cloud-amd64 -> linux-image-6.1.*-cloud-amd64;
#   downloaded with apt-get download and unpacked with dpkg-deb -x, never installed),
#   busybox-static, and the tiny L2 initramfs (busybox + /init that prints LAB: lines).
# Usage: prepare.sh [CACHE_DIR]   (default ${LAB_CACHE:-/var/tmp/vmmd-lab}); idempotent.
# Produces in CACHE_DIR: vmlinuz, kver, modules/ (the package's /lib/modules/<kver>),
#   busybox, l2-initrd.cpio.gz.
set -euo pipefail

CACHE=${1:-${LAB_CACHE:-/var/tmp/vmmd-lab}}
mkdir -p "$CACHE/debs"
CACHE=$(cd "$CACHE" && pwd)

log() { echo "prepare: $*" >&2; }
die() { echo "prepare: ERROR: $*" >&2; exit 1; }

for t in apt-get apt-cache dpkg-deb cpio gzip; do
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

# --- L2 initramfs: busybox + /init, nothing else -------------------------------
# Rebuilt every time (well under a second), so edits to the init take effect.
L2=$(mktemp -d "$CACHE/l2root.XXXXXX")
trap 'rm -rf "$L2"' EXIT
mkdir -p "$L2"/{bin,sbin,proc,sys,dev,tmp}
cp "$CACHE/busybox" "$L2/bin/busybox"
for a in sh mount cat grep dmesg poweroff reboot sleep echo wc cut head tr; do
    ln -s busybox "$L2/bin/$a"
done
cat > "$L2/init" <<'EOF'
#!/bin/sh
# L2 init of the vmmd TCG lab: report how the guest sees its machine, power off.
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
read up idle < /proc/uptime
echo "LAB: L2 init reached uptime=$up"
echo "LAB: cpus=$(grep -c '^processor' /proc/cpuinfo)"
cs=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null)
echo "LAB: clocksource=${cs:-none}"
if grep '^flags' /proc/cpuinfo | grep -qw hypervisor; then hv=yes; else hv=no; fi
echo "LAB: hypervisor_flag=$hv"
if dmesg | grep -q 'Booting paravirtualized kernel on KVM'; then pv=yes; else pv=no; fi
echo "LAB: pvboot=$pv"
echo "LAB: L2 poweroff"
poweroff -f
# poweroff -f does not return when it works; try harder, then idle.
sleep 1
reboot -f
while :; do sleep 60; done
EOF
chmod 755 "$L2/init"
(cd "$L2" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) \
    | gzip -9 > "$CACHE/l2-initrd.cpio.gz.new"
mv "$CACHE/l2-initrd.cpio.gz.new" "$CACHE/l2-initrd.cpio.gz"

log "ready in $CACHE: vmlinuz ($KVER), modules/, busybox, l2-initrd.cpio.gz ($(stat -c %s "$CACHE/l2-initrd.cpio.gz") bytes)"
