#!/usr/bin/env bash
# TCG lab: a disk a PC firmware boots, with a real bootloader on it (disk boot
# checks and bench). A hybrid ISO from grub-mkrescue (packages grub-pc-bin,
# xorriso, mtools): an MBR that SeaBIOS boots as a hard disk, GRUB on its
# serial terminal (COM1, so its output is on the VM console), and the lab's L2
# kernel and initramfs (with the virtio and IDE module groups) that GRUB loads
# with console=ttyS0 and "lab.tests=bootdisk": L2 finds its boot disk by the
# ISO's volume label (VMMDBOOT) and powers off.
# The initramfs is the cache's L2 one plus the modules, with this tree's
# l2-init.sh on top (labs of other worktrees may rebuild the cache's).
# FIRMWARE bios (default): GRUB for PC BIOS only; uefi: for UEFI as well
# (grub-efi-amd64-bin; an EFI system partition in the ISO).
# Usage: make_boot_disk.sh CACHE [cloud|generic] [bios|uefi]; prints the image's
# path, CACHE/boot-disk-FLAVOUR[-uefi]-HASH.iso (HASH: of its inputs; kept, reused).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
CACHE=${1:?usage: make_boot_disk.sh CACHE [cloud|generic]}
FLAVOUR=${2:-cloud}
FIRMWARE=${3:-bios}
PLATFORMS=(-d /usr/lib/grub/i386-pc) SUFFIX=''
case $FIRMWARE in
    bios) ;;
    uefi) PLATFORMS=() SUFFIX=-uefi   # every platform installed: BIOS and x86_64-efi
          [[ -d /usr/lib/grub/x86_64-efi ]] || { echo "make_boot_disk.sh: no /usr/lib/grub/x86_64-efi (apt-get install grub-efi-amd64-bin)" >&2; exit 1; } ;;
    *) echo "make_boot_disk.sh: firmware is bios or uefi, not '$FIRMWARE'" >&2; exit 2 ;;
esac
KD=$(lab_kernel_dir "$CACHE" "$FLAVOUR")

for t in grub-mkrescue xorriso mformat; do
    command -v $t >/dev/null || { echo "make_boot_disk.sh: missing $t (apt-get install grub-pc-bin xorriso mtools)" >&2; exit 1; }
done
[[ -d /usr/lib/grub/i386-pc ]] || { echo "make_boot_disk.sh: no /usr/lib/grub/i386-pc (apt-get install grub-pc-bin)" >&2; exit 1; }
for f in "$KD/vmlinuz" "$KD/l2-initrd.cpio.gz" "$KD/l2-modules.cpio.gz"; do
    [[ -f $f ]] || { echo "make_boot_disk.sh: $f missing (run prepare.sh first)" >&2; exit 1; }
done

T=$(mktemp -d "${TMPDIR:-/tmp}/vmmd-bootdisk.XXXXXX")
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/iso/boot/grub" "$T/init"
cp "$HERE/l2-init.sh" "$T/init/init"
chmod 755 "$T/init/init"
(cd "$T/init" && echo init | cpio -o -H newc -R 0:0 --quiet) > "$T/init.cpio"
cat "$KD/l2-initrd.cpio.gz" "$KD/l2-modules.cpio.gz" "$T/init.cpio" > "$T/iso/boot/initrd"
# One image for both modes: L2 loads both module groups and takes whichever disk appears.
cat > "$T/iso/boot/grub/grub.cfg" <<'CFG'
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=0
menuentry "vmmd lab L2" {
    echo "LAB: grub loading linux"
    linux /boot/vmlinuz console=ttyS0 panic=-1 reboot=t quiet lab.tests=bootdisk lab.mods=virtio,ide lab.disk=auto
    initrd /boot/initrd
}
CFG
# The key is what the image is made of, not the bytes of the archives: prepare.sh
# rebuilds the initramfs at every lab run with new timestamps inside.
HASH=$(cat "$KD/vmlinuz" "$CACHE/busybox" "$HERE/l2-init.sh" "$HERE/prepare.sh" "$0" \
           "$T/iso/boot/grub/grub.cfg" | sha256sum | cut -c1-12)
OUT=$CACHE/boot-disk-$FLAVOUR$SUFFIX-$HASH.iso
if [[ -f $OUT ]]; then
    echo "$OUT"
    exit 0
fi
cp "$KD/vmlinuz" "$T/iso/boot/vmlinuz"
grub-mkrescue "${PLATFORMS[@]}" -o "$T/boot.iso" "$T/iso" -- -volid VMMDBOOT >"$T/log" 2>&1 \
    || { cat "$T/log" >&2; echo "make_boot_disk.sh: grub-mkrescue failed" >&2; exit 1; }
mv "$T/boot.iso" "$OUT.new.$$"
mv "$OUT.new.$$" "$OUT"
echo "$OUT"
