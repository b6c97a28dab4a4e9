#!/bin/bash
# Integration: VMs with disks and NICs through a real daemon. The definition
# rules (mode full: at most four IDE disks, NICs are e1000s), the worker getting its devices
# (per-device counters in the stats), a disk whose image vanished, and a NIC
# on a tap the worker creates and one on a bridge ("network"). "boot": "disk":
# its definition rules, and a disk-booted VM starting in SeaBIOS (the daemon's
# --firmware, handed to the worker as a descriptor) with its output on the console.
# Usage: test_daemon_devices.sh VMMD GUEST_DIR
set -uo pipefail

VMMD=$1
GUESTS=$(cd "$2" && pwd)
. "$(dirname "${BASH_SOURCE[0]}")/daemon_fixture.sh"
require_kvm "the daemon device tests"
fail_detail() { echo "(last: HTTP $status $(head -c 400 "$tmp/body" 2>/dev/null))"; }

IMAGES=$tmp/images
mkdir -p "$IMAGES"
truncate -s 4M "$IMAGES/a.img" "$IMAGES/b.img" "$IMAGES/c.img" "$IMAGES/d.img" "$IMAGES/e.img"
disk() { echo "{\"path\":\"$IMAGES/$1.img\"${2:+,\"readonly\":$2}}"; }
start_daemon --image-dir "$IMAGES" || exit 1

# --- definition rules across fields ---------------------------------------------
api POST /v1/vms "$(vm_json fullnic idle "\"mode\":\"full\",\"nics\":[{\"tap\":\"vmmdt0\"}]")"
check "mode full with a NIC: created (an emulated e1000)" $([[ $status == 201 ]]; echo $?)
api DELETE /v1/vms/fullnic
api POST /v1/vms "$(vm_json fullfive idle "\"mode\":\"full\",\"disks\":[$(disk a),$(disk b),$(disk c),$(disk d),$(disk e)]")"
check "mode full with five disks: 422 (two IDE channels)" \
    $([[ $status == 422 ]] && jbody .detail | grep -q "^disks: mode full has at most 4"; echo $?)
api POST /v1/vms "$(vm_json pvnic idle "\"nics\":[{\"tap\":\"vmmdt0\"}]")"
check "mode pv with a NIC: created" $([[ $status == 201 ]]; echo $?)
api PATCH /v1/vms/pvnic '{"mode":"full","disks":[]}'
api PATCH /v1/vms/pvnic "{\"disks\":[$(disk a),$(disk b),$(disk c),$(disk d),$(disk e)]}"
check "patch to five disks in mode full: 422, nothing changed" \
    $([[ $status == 422 ]] && api GET /v1/vms/pvnic && [[ $(jbody '.disks | length') == 0 ]]; echo $?)
api PATCH /v1/vms/pvnic '{"mode":"pv"}'

# --- a pv VM with two disks runs with its devices ---------------------------------
api POST /v1/vms "$(vm_json disky idle "\"disks\":[$(disk a),$(disk b true)]")"
check "pv VM with two disks: created" $([[ $status == 201 ]]; echo $?)
api POST /v1/vms/disky/start
check "pv VM with two disks: starts and runs" $([[ $status == 200 ]] && wait_state disky running; echo $?)
api GET /v1/vms/disky/stats
check "stats: one counter set per disk" \
    $([[ $status == 200 && $(jbody '.disks | length') == 2 && $(jbody '.disks[1].read_bytes') == 0 ]]; echo $?)
api POST /v1/vms/disky/stop
wait_state disky stopped

# --- a guest driving its virtio-blk disk: the counters move, stats and metrics ----
yes vmmd-virtio-blk-pattern | head -c 4096 >"$IMAGES/vblk.img"
truncate -s 2M "$IMAGES/vblk.img"
api POST /v1/vms "$(vm_json vblk virtio-blk "\"cmdline\":\"stay\",\"disks\":[{\"path\":\"$IMAGES/vblk.img\"}]")"
api POST /v1/vms/vblk/start
check "virtio-blk guest under the daemon: its checks pass" \
    $(wait_console vblk "all checks passed" 10; echo $?)
api GET /v1/vms/vblk/stats
check "stats: the guest's reads and writes are counted on disk0" \
    $([[ $(jbody '.disks[0].read_bytes') -gt 0 && $(jbody '.disks[0].write_bytes') -gt 0 \
        && $(jbody '.disks[0].errors') -gt 0 ]]; echo $?)
curl -s --unix-socket "$SOCK" http://vmmd/metrics >"$tmp/metrics"
check "metrics: disk0's read bytes of the running VM are above 0" \
    $(awk '/^vmmd_vm_disk_read_bytes_total\{.*name="vblk".*device="disk0"/ { found = $NF > 0 } END { exit !found }' "$tmp/metrics"; echo $?)
api POST /v1/vms/vblk/stop
wait_state vblk stopped

# --- a full VM with an IDE disk ---------------------------------------------------
api POST /v1/vms "$(vm_json idedisk idle "\"mode\":\"full\",\"disks\":[$(disk c)]")"
api POST /v1/vms/idedisk/start
check "full VM with an IDE disk: runs" $([[ $status == 200 ]] && wait_state idedisk running; echo $?)
api POST /v1/vms/idedisk/stop
wait_state idedisk stopped

# --- an image that disappeared after the VM was defined -----------------------------
api POST /v1/vms "$(vm_json lost idle "\"disks\":[$(disk d)]")"
rm -f "$IMAGES/d.img"
api POST /v1/vms/lost/start
started=$status
detail=$(jbody .detail)
sleep 0.5
api GET /v1/vms/lost
check "missing image: the start fails (422), the VM is not running" \
    $([[ $started == 422 && $(jbody .state) == stopped ]]; echo $?)
check "missing image: the answer names the field and the file" \
    $([[ $detail == "disks[0].path: $IMAGES/d.img does not exist" ]]; echo $?)
api GET /v1/vms/disky
check "the other VMs are unaffected" $([[ $status == 200 && $(jbody .state) == stopped ]]; echo $?)

# --- a NIC on a tap the worker creates (needs /dev/net/tun and CAP_NET_ADMIN) ---------
if [[ -c /dev/net/tun ]] && ip tuntap add vmmdprobe0 mode tap 2>/dev/null; then
    ip tuntap del vmmdprobe0 mode tap
    api POST /v1/vms/pvnic/start
    check "pv VM with a tap NIC: runs" $([[ $status == 200 ]] && wait_state pvnic running; echo $?)
    check "the tap exists while the VM runs" $(ip link show vmmdt0 >/dev/null 2>&1; echo $?)
    api GET /v1/vms/pvnic/stats
    check "stats: one counter set for the NIC" $([[ $(jbody '.nics | length') == 1 ]]; echo $?)
    api POST /v1/vms/pvnic/stop
    wait_state pvnic stopped
    api POST /v1/vms "$(vm_json fullnic idle "\"mode\":\"full\",\"nics\":[{\"tap\":\"vmmdt1\"}]")"
    api POST /v1/vms/fullnic/start
    check "full VM with a tap NIC (e1000): runs" $([[ $status == 200 ]] && wait_state fullnic running; echo $?)
    api GET /v1/vms/fullnic/stats
    check "stats: one counter set for the e1000" $([[ $(jbody '.nics | length') == 1 ]]; echo $?)
    api POST /v1/vms/fullnic/stop
    wait_state fullnic stopped
    ip link del vmmdtestbr0 2>/dev/null # left over by an interrupted run
    if ip link add vmmdtestbr0 type bridge 2>/dev/null; then
        api POST /v1/vms "$(vm_json bridged idle "\"nics\":[{\"bridge\":\"vmmdtestbr0\"}]")"
        api POST /v1/vms/bridged/start
        check "a NIC on an operator's bridge: runs" $([[ $status == 200 ]] && wait_state bridged running; echo $?)
        check "its tap joined the bridge and is up" \
            $(ip -o link show master vmmdtestbr0 | grep -q "vmmd[0-9].*UP"; echo $?)
        api POST /v1/vms/bridged/stop
        wait_state bridged stopped
        check "the tap is gone once the VM stopped" $(! ip -o link show master vmmdtestbr0 | grep -q vmmd; echo $?)
        ip link del vmmdtestbr0
    else
        echo "SKIPPED (loudly): cannot create a bridge here; the network NIC checks did not run"
    fi
else
    echo "SKIPPED (loudly): no /dev/net/tun or no CAP_NET_ADMIN; the tap NIC checks did not run"
fi

# --- "boot": "disk": the VM starts in firmware (SeaBIOS) and boots its first disk ----
FW=/usr/share/seabios/bios-256k.bin
api POST /v1/vms "{\"name\":\"bootk\",\"boot\":\"disk\",\"kernel\":\"$GUESTS/guest-idle.elf\",\"disks\":[$(disk a)]}"
check "boot disk with a kernel: 422 naming kernel" \
    $([[ $status == 422 ]] && jbody .detail | grep -q '^kernel: must be absent'; echo $?)
api POST /v1/vms '{"name":"bootnodisk","boot":"disk"}'
check "boot disk without a disk: 422 naming disks" \
    $([[ $status == 422 ]] && jbody .detail | grep -q '^disks: '; echo $?)
if [[ -f $FW ]]; then
    api POST /v1/vms "{\"name\":\"fwboot\",\"boot\":\"disk\",\"mode\":\"full\",\"memory_mib\":64,\"disks\":[$(disk a)]}"
    check "boot disk in full mode: created, shown with boot disk and no kernel" \
        $([[ $status == 201 && $(jbody .boot) == disk && $(jbody .kernel) == null ]]; echo $?)
    api POST /v1/vms/fwboot/start
    check "disk-booted VM: starts and runs" $([[ $status == 200 ]] && wait_state fwboot running; echo $?)
    api GET /v1/vms/fwboot
    id=$(jbody .id)
    check "its worker got the firmware as a descriptor" \
        $(tr '\0' ' ' < /proc/$(worker_of "$id")/cmdline | grep -q -- "--firmware $FW --firmware-fd [0-9]"; echo $?)
    # A blank disk: the firmware says so on the console (real firmware code runs slowly on PVM).
    check "SeaBIOS's output and its boot attempt on the console" \
        $(wait_console fwboot "Booting from Hard Disk" 60 && grep -q "SeaBIOS (version" "$tmp/body"; echo $?)
    api PATCH /v1/vms/fwboot '{"boot":"kernel"}'
    check "patch to boot kernel without a kernel: 422 (or 409 while running)" \
        $([[ $status == 409 || ( $status == 422 && $(jbody .detail) == kernel:* ) ]]; echo $?)
    api POST /v1/vms/fwboot/stop
    wait_state fwboot stopped
    api PATCH /v1/vms/fwboot '{"boot":"kernel"}'
    check "stopped, patch to boot kernel without a kernel: 422 naming kernel" \
        $([[ $status == 422 ]] && jbody .detail | grep -q '^kernel: is required'; echo $?)
    api PATCH /v1/vms/fwboot "{\"boot\":\"kernel\",\"kernel\":\"$GUESTS/guest-idle.elf\"}"
    check "patch back to boot kernel with a kernel: 200" $([[ $status == 200 && $(jbody .boot) == kernel ]]; echo $?)
else
    echo "SKIPPED (loudly): no $FW (apt-get install seabios); the disk boot checks did not run"
fi

finish
