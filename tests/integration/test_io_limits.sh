#!/bin/bash
# Integration: per-disk I/O limits through a real daemon (issue 14). The virtio-blk guest in
# bench mode reads its disk over and over in 1 MiB requests; the host samples the disk's
# read_bytes in the stats over a window after the burst is spent, so the measured rate is the
# device's, not the guest's. Then a live PATCH of the limit on the running VM (the rate follows,
# throttled time grows), a PATCH changing more than limits (409), the limits in the VM JSON and
# /metrics, and bad limits refused (400, 422 naming the field).
# vmctl: --disk with limits, `vmctl limits` on the running VM, limits in `show` and `stats`.
# Usage: test_io_limits.sh VMMD GUEST_DIR VMCTL
set -uo pipefail

VMMD=$1
GUESTS=$(cd "$2" && pwd)
VMCTL=$3
vmctl() { "$VMCTL" --socket "$SOCK" "$@"; }
. "$(dirname "${BASH_SOURCE[0]}")/daemon_fixture.sh"
require_kvm "the I/O limits test"
fail_detail() { echo "(last: HTTP $status $(head -c 400 "$tmp/body" 2>/dev/null))"; }

IMAGES=$tmp/images
mkdir -p "$IMAGES"
yes vmmd-virtio-blk-pattern | head -c 4096 >"$IMAGES/lim.img"
truncate -s 16M "$IMAGES/lim.img"
truncate -s 1M "$IMAGES/other.img"
start_daemon --image-dir "$IMAGES" || exit 1

MIB=1048576
RATE1=$((16 * MIB))
RATE2=$((32 * MIB))
disk() { echo "{\"path\":\"$IMAGES/lim.img\",\"limits\":{\"bytes_per_s\":$1}}"; }
# A stats answer can be late on a loaded machine (409 "no stats"): asked again, up to 3 times.
# A stats answer can be late on a loaded machine (an unlimited guest keeps the worker busy):
# up to 2 s of tries, and an empty answer, never a 0 that would pass for a count.
read_bytes() {
    local try v
    for try in $(seq 20); do
        api GET /v1/vms/lim/stats
        v=$(jbody '.disks[0].read_bytes')
        [[ $v =~ ^[0-9]+$ ]] && { echo "$v"; return; }
        sleep 0.1
    done
}
# measure SECONDS: bytes per second read over that window (host clock), or "unreadable"
measure() {
    local b0 b1 t0 t1
    t0=$(date +%s%N); b0=$(read_bytes)
    sleep "$1"
    t1=$(date +%s%N); b1=$(read_bytes)
    if [[ -z $b0 || -z $b1 ]]; then echo unreadable; return; fi
    # Per millisecond first: bytes * 10^9 overflows 64 bits past about 9 GB read (unlimited).
    echo $(((b1 - b0) * 1000 / ((t1 - t0) / 1000000)))
}
within10() { # measured configured
    local d=$(($1 - $2))
    ((d < 0)) && d=$((-d))
    ((d * 10 <= $2))
}

# --- definition: normalised, shown, bad values refused ------------------------------------
api POST /v1/vms "$(vm_json lim virtio-blk "\"cmdline\":\"bench passes=100000\",\"disks\":[$(disk $RATE1)]")"
check "a VM with disk limits: created" $([[ $status == 201 ]]; echo $?)
check "the VM JSON shows the disk's limits" \
    $([[ $(jbody '.disks[0].limits.bytes_per_s') == "$RATE1" ]]; echo $?)
api POST /v1/vms "$(vm_json bad1 idle "\"disks\":[{\"path\":\"$IMAGES/other.img\",\"limits\":{\"bps\":1}}]")"
check "an unknown key in limits: 400 naming it" \
    $([[ $status == 400 ]] && jbody .detail | grep -q '^disks\[0\].limits.bps: unknown field'; echo $?)
api POST /v1/vms "$(vm_json bad2 idle "\"nics\":[{\"tap\":\"vmmdlim0\",\"limits\":{\"ops_per_s\":-5}}]")"
check "a negative limit: 422 naming the field" \
    $([[ $status == 422 ]] && jbody .detail | grep -q '^nics\[0\].limits.ops_per_s: '; echo $?)
api POST /v1/vms "$(vm_json bad3 idle "\"disks\":[{\"path\":\"$IMAGES/other.img\",\"limits\":{\"bytes_per_s\":1099511627777}}]")"
check "bytes_per_s above 2^40: 422" $([[ $status == 422 ]]; echo $?)

# --- the limit holds -----------------------------------------------------------------------
api POST /v1/vms/lim/start
check "the limited VM starts" $([[ $status == 200 ]] && wait_state lim running; echo $?)
wait_console lim "found at" 10 >/dev/null
sleep 1.5 # the first second's burst
rate=$(measure 2)
echo "measured $rate B/s with bytes_per_s=$RATE1"
check "read rate within 10 % of bytes_per_s ($rate vs $RATE1)" $(within10 "$rate" $RATE1; echo $?)
api GET /v1/vms/lim/stats
t1=$(jbody '.disks[0].throttled_ns')
check "stats: the disk was throttled (throttled_ns $t1, events $(jbody '.disks[0].throttled_events'))" \
    $([[ $t1 -gt 0 && $(jbody '.disks[0].throttled_events') -gt 0 ]]; echo $?)

# --- a live change ---------------------------------------------------------------------------
api PATCH /v1/vms/lim "{\"disks\":[$(disk $RATE2)]}"
check "PATCH of the running VM's disk limits: 200, stored" \
    $([[ $status == 200 && $(jbody '.disks[0].limits.bytes_per_s') == "$RATE2" && $(jbody .state) == running ]]; echo $?)
sleep 1.2 # the new burst
rate=$(measure 2)
echo "measured $rate B/s with bytes_per_s=$RATE2 (after PATCH)"
check "after the PATCH the rate follows ($rate vs $RATE2)" $(within10 "$rate" $RATE2; echo $?)
api GET /v1/vms/lim/stats
check "throttled time keeps growing" $([[ $(jbody '.disks[0].throttled_ns') -gt $t1 ]]; echo $?)
curl -s --unix-socket "$SOCK" http://vmmd/metrics >"$tmp/metrics"
check "metrics: disk0's throttled seconds above 0" \
    $(awk '/^vmmd_vm_disk_throttled_seconds_total\{.*name="lim".*device="disk0"/ { found = $NF > 0 } END { exit !found }' "$tmp/metrics"; echo $?)

api PATCH /v1/vms/lim "{\"disks\":[{\"path\":\"$IMAGES/lim.img\",\"readonly\":true,\"limits\":{\"bytes_per_s\":$RATE1}}]}"
check "PATCH changing more than limits on a running VM: 409" $([[ $status == 409 ]]; echo $?)
api PATCH /v1/vms/lim "{\"disks\":[$(disk $RATE1),{\"path\":\"$IMAGES/other.img\"}]}"
check "PATCH adding a disk to a running VM: 409" $([[ $status == 409 ]]; echo $?)
api GET /v1/vms/lim
check "the refused PATCHes changed nothing" \
    $([[ $(jbody '.disks | length') == 1 && $(jbody '.disks[0].limits.bytes_per_s') == "$RATE2" ]]; echo $?)

# Unlimited again: no more waits are added.
api PATCH /v1/vms/lim "{\"disks\":[{\"path\":\"$IMAGES/lim.img\"}]}"
check "PATCH removing the limits: 200, none stored" \
    $([[ $status == 200 && $(jbody '.disks[0].limits') == null ]]; echo $?)
sleep 0.3
api GET /v1/vms/lim/stats
e1=$(jbody '.disks[0].throttled_events')
rate=$(measure 1)
api GET /v1/vms/lim/stats
e2=$(jbody '.disks[0].throttled_events')
echo "measured $rate B/s unlimited, throttled_events $e1 -> $e2"
check "unlimited: faster than the last limit ($rate B/s), no new waits ($e1 -> $e2)" \
    $([[ $rate -gt $((RATE2 * 2)) && $e2 == "$e1" ]]; echo $?)

api POST /v1/vms/lim/stop
wait_state lim stopped

# --- the IDE disk of a full-mode VM, in the worker's sandbox: deferred, never failed ------
# (5 ms a command: the ide guest polls a bounded number of times, tens of ms, per command.)
# Sector s: "VMMDSECT", s as a 64-bit little-endian number, then bytes (s + i) & 0xff.
perl -e 'for $s (0..8191) { print "VMMDSECT", pack("Q<", $s), pack("C*", map { ($s + $_) & 255 } 16..511) }' \
    >"$IMAGES/ide.img"
api POST /v1/vms "$(vm_json idelim ide "\"mode\":\"full\",\"disks\":[{\"path\":\"$IMAGES/ide.img\",\"limits\":{\"ops_per_s\":200,\"burst_ops\":1}}]")"
api POST /v1/vms/idelim/start
check "full mode: the ide guest passes its checks through disk limits" \
    $(wait_console idelim "ide: all ok" 20; echo $?)

# --- vmctl --------------------------------------------------------------------------------
vmctl create vlim --kernel "$GUESTS/guest-virtio-blk.elf" --memory 32 --cmdline "bench passes=100000" \
    --disk "$IMAGES/lim.img,bytes_per_s=$RATE1,burst_ops=64" >/dev/null
check "vmctl create --disk with limits: stored" \
    $(vmctl show vlim | grep -q "limits bytes_per_s=$RATE1 burst_ops=64"; echo $?)
vmctl create vbad --kernel "$GUESTS/guest-idle.elf" --disk "$IMAGES/other.img,bps=1" 2>/dev/null
check "vmctl create --disk with an unknown option: usage error (2)" $([[ $? == 2 ]]; echo $?)
vmctl start vlim >/dev/null
vmctl wait vlim --state running >/dev/null
out=$(vmctl limits vlim disk0 bytes_per_s=$RATE2 burst_ops=0)
check "vmctl limits on the running VM: applied ($out)" \
    $([[ $out == "vlim disk0: bytes_per_s=$RATE2" ]]; echo $?)
check "vmctl limits -o json: the Limits object" \
    $([[ $(vmctl limits vlim disk0 -o json | jq -r .bytes_per_s) == "$RATE2" ]]; echo $?)
sleep 1
check "vmctl stats: a THROTTLED column" $(vmctl stats vlim | grep -q "THROTTLED"; echo $?)
vmctl limits vlim net0 ops_per_s=1 >/dev/null 2>&1
check "vmctl limits on a device the VM lacks: refused (1)" $([[ $? == 1 ]]; echo $?)
vmctl stop vlim >/dev/null
finish
