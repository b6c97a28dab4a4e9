#!/usr/bin/env bash
# TCG lab test of managed networks (issue 13): the vmmd daemon runs inside L1
# (Debian's cloud kernel under QEMU TCG, as in run.sh) with dnsmasq, nft and
# its default NAT network, and boots four L2 guests (Debian's generic kernel:
# it has e1000) through its API:
#   web     pv, static ip 10.71.0.10: leases it by DHCP, serves httpd
#   client  pv, dynamic lease: resolves web.vmmd, pings it by name, pings the
#           "outside" (a namespace in L1 with no route back: only NAT answers)
#   fullvm  full mode: the same through vmmd's emulated e1000 and Linux's
#           stock e1000 driver
#   cell    pv on an isolated network: a lease without a router, and the
#           outside stays unreachable
# then L1 reaches web's httpd through a port forward, from L1 and from the
# outside namespace. l1-networks.sh does the work; this script builds L1's
# initramfs, boots it and turns its LAB-CHECK lines into PASS/FAIL.
# Usage: test_lab_networks.sh [--vmmd PATH] [--timeout S] [--cache DIR] [--keep]
# Exit: 0 all passed, 1 a failure, 77 when QEMU, dnsmasq, nft or curl is missing.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
VMMD=${VMMD:-$REPO/build/vmmd/vmmd}
TIMEOUT=${LAB_TIMEOUT:-420} # a run takes 2 to 4 minutes; a second one must fit ctest's 900 s
CACHE=${LAB_CACHE:-/var/tmp/vmmd-lab}
KEEP=0 L2_MEM=160 L2_WAIT=150

while [[ $# -gt 0 ]]; do
    case $1 in
        --vmmd) VMMD=${2:?}; shift 2 ;;
        --timeout) TIMEOUT=${2:?}; shift 2 ;;
        --cache) CACHE=${2:?}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "test_lab_networks.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
skip() {
    echo "************************************************************" >&2
    echo "test_lab_networks.sh: SKIP: $*" >&2
    echo "************************************************************" >&2
    exit 77
}
QEMU=$(command -v qemu-system-x86_64) || skip "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
PATH=$PATH:/usr/sbin:/sbin
for t in dnsmasq nft curl ip; do
    command -v $t >/dev/null || skip "$t not found (scripts/setup.sh installs it): L1 needs a copy"
done
[[ -x $VMMD && -x $(dirname "$VMMD")/vmmd-daemon ]] || { echo "no vmmd at $VMMD (--vmmd PATH)" >&2; exit 1; }
VMMD=$(readlink -f "$VMMD")

"$HERE/prepare.sh" --kernel cloud,generic "$CACHE" >&2
CACHE=$(cd "$CACHE" && pwd)
K1=$(lab_kernel_dir "$CACHE" cloud) K2=$(lab_kernel_dir "$CACHE" generic)

mkdir -p "$CACHE/runs" "$CACHE/logs"
WORK=$(mktemp -d "$CACHE/runs/net.XXXXXX")
cleanup() { if [[ $KEEP == 1 ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi; }
trap cleanup EXIT
R=$WORK/root
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,l2,lib64}
cp "$CACHE/busybox" "$R/bin/busybox"
cp "$K2/vmlinuz" "$R/l2/vmlinuz"
cat "$K2/l2-initrd.cpio.gz" "$K2/l2-modules.cpio.gz" > "$R/l2/initrd"
# Storage (issue 14): the daemon imports a bootable disk image, clones a volume
# of it and boots a VM from that volume through SeaBIOS and GRUB.
if BOOT_ISO=$("$HERE/make_boot_disk.sh" "$CACHE" cloud); then
    cp "$BOOT_ISO" "$R/l2/boot.iso"
    # The firmware the daemon starts such a VM in, where Debian's seabios puts it (its default).
    mkdir -p "$R/usr/share/seabios"
    cp /usr/share/seabios/bios-256k.bin "$R/usr/share/seabios/"
else
    echo "test_lab_networks.sh: no bootable image (grub-pc-bin, xorriso, mtools?): the disk-boot checks are skipped" >&2
fi
# L1: KVM, taps, bridges, nftables with NAT and fib, veth for the outside.
lab_install_modules "$K1" "$R/lib/modules/l1" kvm-amd tun bridge veth nf_tables nft_chain_nat \
    nft_nat nft_masq nft_ct nft_fib_inet nft_fib_ipv4 || { echo "cannot install L1 modules" >&2; exit 1; }
lab_copy_with_libs "$R" "$VMMD" /vmmd
lab_copy_with_libs "$R" "$(dirname "$VMMD")/vmmd-daemon" /vmmd-daemon
# ip is iproute2's (busybox's has no network namespaces).
for t in dnsmasq nft curl ip; do
    lab_copy_with_libs "$R" "$(command -v $t)" "/usr/sbin/$t"
done
# dnsmasq drops to nobody; nft and curl look names up.
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$R/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$R/etc/group"
printf 'hosts: files dns\n' > "$R/etc/nsswitch.conf"
cat > "$R/lab.conf" <<EOF
L2_MEM='$L2_MEM'
L2_WAIT='$L2_WAIT'
L2_CMDLINE='console=ttyS0 panic=-1 reboot=t quiet'
EOF
lab_pack_l1 "$R" "$HERE/l1-networks.sh" "$WORK/l1-initrd.cpio"
echo "test_lab_networks.sh: L1 initrd $(( $(stat -c %s "$WORK/l1-initrd.cpio") / 1048576 )) MiB," \
     "L1 kernel $(cat "$K1/kver"), L2 kernel $(cat "$K2/kver"), vmmd $VMMD" >&2

LOG=$CACHE/logs/last-networks.log
# A frozen L1 (QEMU TCG's nested SVM, now and then) is killed after STALL silent seconds and
# the run made once more (lab_run_l1); the disk boot's SeaBIOS is slow, hence 150.
STALL=${LAB_STALL_S:-150} K=$K1
set +e
lab_run_l1 networks
set -e
lab_verdict networks
