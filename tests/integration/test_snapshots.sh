#!/bin/bash
# Integration: snapshots, restore and clones through a real vmmd (issue 15),
# with the counter guest, whose state lives only in RAM and registers.
# A snapshot taken with resume:false leaves the guest paused at counter N;
# after it runs on, a restore must continue at exactly N+1 (nothing lost,
# nothing repeated, the RAM table still "ok"), in pv and full mode, with
# 2 vCPUs. A clone (a new VM from the snapshot) also starts at N+1 while the
# original keeps running. The refusals: a corrupt state file, a truncated
# memory file, a VM whose definition changed, a clone of a VM with a
# writable disk, a stopped VM, bad names and bodies; each leaves the running
# VM as it was. Then the files, events and metrics, the delete, and a VM
# delete that takes its snapshots with it.
# Usage: test_snapshots.sh VMMD GUEST_DIR
set -uo pipefail

VMMD=$1
GUESTS=$(cd "$2" && pwd)
. "$(dirname "${BASH_SOURCE[0]}")/daemon_fixture.sh"
require_kvm "test_snapshots.sh"

# counters_in FILE: the counter values the guest printed, one per line
counters_in() { sed -n 's/^counter: \([0-9]*\) ok$/\1/p' "$1"; }
# last_counter VM: the last value on its console
last_counter() {
    api GET "/v1/vms/$1/console?tail=4096"
    counters_in "$tmp/body" | tail -n 1
}
# wait_counter VM N: until the console shows a value >= N (10 s)
wait_counter() {
    for _ in $(seq 200); do
        local c
        c=$(last_counter "$1")
        [[ -n $c && $c -ge $2 ]] && return 0
        sleep 0.05
    done
    return 1
}
# resumed_at VM: where the restored worker's console starts (a new worker starts a new
# console log) and whether every value from there on follows the one before it
resumed_at() {
    api GET "/v1/vms/$1/console?tail=65536"
    grep -q "BAD" "$tmp/body" && { echo "BAD"; return; }
    counters_in "$tmp/body" | awk 'NR == 1 { at = $1 } NR > 1 && $1 != prev + 1 { broken = 1 }
        { prev = $1 } END { print at, (broken ? "gap" : "consecutive") }'
}

fail_detail() { echo "(status $status: $(head -c 300 "$tmp/body"))"; }
start_daemon || exit 1
state_dir() { echo "$STATE/snapshots/$1/$2"; }

for mode in pv full; do
    vm=cnt-$mode
    api POST /v1/vms "{\"name\":\"$vm\",\"mode\":\"$mode\",\"vcpus\":2,\"memory_mib\":64,\"kernel\":\"$GUESTS/guest-counter.elf\"}"
    id=$(jbody .id)
    api POST "/v1/vms/$vm/start"
    check "$mode: counter VM started" $([[ $status == 200 ]] && wait_counter $vm 3; echo $?)

    api POST "/v1/vms/$vm/snapshot" '{"name":"s1","resume":false}'
    check "$mode: snapshot s1 -> 201 with its sizes" $([[ $status == 201 && $(jbody .name) == s1 && $(jbody .vm) == "$vm" &&
        $(jbody .memory_bytes) == 67108864 && $(jbody .vcpus) == 2 && $(jbody .mode) == "$mode" &&
        $(jbody .state_bytes) -gt 1000 && $(jbody .memory_allocated_bytes) -lt 67108864 ]]; echo $?)
    api GET "/v1/vms/$vm"
    check "$mode: resume:false left it paused" $([[ $(jbody .state) == paused ]]; echo $?)
    n=$(last_counter $vm)
    sleep 0.3
    check "$mode: paused guest printed nothing more (at $n)" $([[ -n $n && $(last_counter $vm) == "$n" ]]; echo $?)
    check "$mode: state and memory files, the memory file sparse" $(f=$(state_dir "$id" s1)
        [[ -s $f/state && $(stat -c %s "$f/memory") == 67108864 && $(du -k "$f/memory" | cut -f1) -lt 65536 ]]; echo $?)

    api POST "/v1/vms/$vm/resume"
    wait_counter $vm $((n + 5))
    api POST "/v1/vms/$vm/restore" '{"snapshot":"s1"}'
    check "$mode: restore s1 -> 200 running" $([[ $status == 200 && $(jbody .state) == running ]]; echo $?)
    wait_counter $vm $((n + 3))
    r=$(resumed_at $vm)
    check "$mode: restored guest went on at $((n + 1)), consecutively ($r)" $([[ $r == "$((n + 1)) consecutive" ]]; echo $?)
    api GET "/v1/vms/$vm/stats"
    check "$mode: stats of the restored VM" $([[ $status == 200 && $(jbody .memory_bytes) == 67108864 ]]; echo $?)

    api POST /v1/vms "{\"name\":\"clone-$mode\",\"from_snapshot\":\"$vm/s1\"}"
    check "$mode: clone -> 201 running" $([[ $status == 201 && $(jbody .state) == running && $(jbody .mode) == "$mode" ]]; echo $?)
    wait_counter clone-$mode $((n + 2))
    api GET "/v1/vms/clone-$mode/console?tail=4096"
    first=$(counters_in "$tmp/body" | head -n 1)
    check "$mode: the clone starts at $((n + 1)) (got $first)" $([[ $first == $((n + 1)) ]]; echo $?)
    check "$mode: the original runs on" $(c=$(last_counter $vm); wait_counter $vm $((c + 1)); echo $?)
done

# Room for the VMs to come (the daemon admits as many vCPUs as --max-vcpus).
api DELETE "/v1/vms/clone-full?force=true"

# --- refusals: each leaves the running VM as it was --------------------------------
vm=cnt-pv
id=$(api GET /v1/vms/$vm; jbody .id)
worker=$(api GET /v1/vms/$vm; jbody .worker_pid)
api POST /v1/vms/$vm/snapshot '{"name":"s2"}'
check "snapshot s2 of a running VM, which keeps running" $([[ $status == 201 && $(jbody .vm_state) == running ]] &&
    api GET /v1/vms/$vm && [[ $(jbody .state) == running ]]; echo $?)
cp "$(state_dir "$id" s2)/state" "$tmp/s2.state"
printf '\x55' | dd of="$(state_dir "$id" s2)/state" bs=1 seek=400 conv=notrunc status=none
api POST /v1/vms/$vm/restore '{"snapshot":"s2"}'
check "restore of a corrupted state file -> 422 naming the checksum" $([[ $status == 422 ]] && body | grep -q checksum; echo $?)
cp "$tmp/s2.state" "$(state_dir "$id" s2)/state"
truncate -s 1M "$(state_dir "$id" s2)/memory"
api POST /v1/vms/$vm/restore '{"snapshot":"s2"}'
check "restore with a truncated memory file -> 422 (truncated)" $([[ $status == 422 ]] && body | grep -q truncated; echo $?)
api GET /v1/vms/$vm
check "after the refusals the VM runs on in the same worker" $([[ $(jbody .state) == running && $(jbody .worker_pid) == "$worker" ]]; echo $?)
api POST /v1/vms/$vm/restore '{"snapshot":"nope"}'
check "restore of an unknown snapshot -> 404 naming it" $([[ $status == 404 ]] && body | grep -q "snapshot: .*nope"; echo $?)
api POST /v1/vms/$vm/restore '{"snap":"s1"}'
check "restore with an unknown field -> 400" $([[ $status == 400 ]]; echo $?)
api POST /v1/vms/$vm/snapshot '{"name":"Bad Name"}'
check "snapshot with a bad name -> 422 naming the field" $([[ $status == 422 && $(jbody .detail) == name:* ]]; echo $?)
api POST /v1/vms/$vm/snapshot '{"name":"s1"}'
check "a second s1 -> 409" $([[ $status == 409 ]]; echo $?)
api POST /v1/vms/$vm/snapshot '{"resume":"yes"}'
check "resume not a boolean -> 422" $([[ $status == 422 ]]; echo $?)
api POST /v1/vms/$vm/snapshot '{'
check "malformed body -> 400" $([[ $status == 400 ]]; echo $?)

api POST /v1/vms/$vm/stop
api POST /v1/vms/$vm/snapshot '{"name":"s3"}'
check "snapshot of a stopped VM -> 409" $([[ $status == 409 ]]; echo $?)
api PATCH /v1/vms/$vm '{"memory_mib":96}'
api POST /v1/vms/$vm/restore '{"snapshot":"s1"}'
check "restore into a VM whose memory changed -> 409 saying so" $([[ $status == 409 ]] && body | grep -q "MiB"; echo $?)
api PATCH /v1/vms/$vm '{"memory_mib":64}'
api POST /v1/vms/$vm/restore '{"snapshot":"s1"}'
check "restore of a stopped VM starts it from the snapshot" $([[ $status == 200 && $(jbody .state) == running ]]; echo $?)

# A VM with a writable disk (a volume): a clone must get disks of its own, and a restore
# after the disk changed size is refused.
api POST /v1/volumes '{"name":"wd","size_mib":1}'
api POST /v1/vms "{\"name\":\"withdisk\",\"memory_mib\":32,\"kernel\":\"$GUESTS/guest-counter.elf\",\"disks\":[{\"volume\":\"wd\"}]}"
api POST /v1/vms/withdisk/start
wait_counter withdisk 2
api POST /v1/vms/withdisk/snapshot '{"name":"d1"}'
check "snapshot of a VM with a volume records it with its size" $([[ $status == 201 && $(jbody '.disks[0].volume') == wd &&
    $(jbody '.disks[0].size_bytes') == 1048576 ]]; echo $?)
api POST /v1/vms '{"name":"wd-clone","from_snapshot":"withdisk/d1"}'
check "clone without disks of its own -> 409 naming disks" $([[ $status == 409 && $(jbody .detail) == disks:* ]]; echo $?)
api POST /v1/vms/withdisk/stop
api PATCH /v1/volumes/wd '{"size_mib":2}'
api POST /v1/vms/withdisk/restore '{"snapshot":"d1"}'
check "restore after the volume grew -> 409 (resized)" $([[ $status == 409 ]] && body | grep -q resized; echo $?)

# --- listing, events, metrics, delete -----------------------------------------------
api GET /v1/vms/cnt-full/snapshots
check "list: one snapshot of cnt-full" $([[ $status == 200 && $(jbody length) == 1 && $(jbody '.[0].name') == s1 ]]; echo $?)
api GET /v1/vms/cnt-full/snapshots/s1
check "get: s1" $([[ $status == 200 && $(jbody .vm) == cnt-full ]]; echo $?)
api GET /v1/vms/cnt-full/snapshots/zz
check "get: unknown -> 404" $([[ $status == 404 ]]; echo $?)
events() { curl -s -m 1 --unix-socket "$SOCK" "http://vmmd/v1/events?since=0" 2>/dev/null; }
check "events: snapshot.created, vm.restored (a clone's naming where it came from)" $(ev=$(events)
    for t in snapshot.created vm.restored '"from_snapshot":"cnt-pv/s1"'; do
        grep -q "$t" <<<"$ev" || { echo 1; exit; }; done; echo 0)
api GET /metrics
check "metrics: snapshots, taken, restores, pause time" $(body | grep -q '^vmmd_snapshots [1-9]' &&
    body | grep -q '^vmmd_snapshots_taken_total [1-9]' && body | grep -q '^vmmd_restores_total [1-9]' &&
    body | grep -q '^vmmd_snapshot_pause_seconds_total 0\.[0-9]*[1-9]'; echo $?)
fid=$(api GET /v1/vms/cnt-full; jbody .id)
api DELETE /v1/vms/cnt-full/snapshots/s1
check "delete s1 -> 204, its files gone" $([[ $status == 204 && ! -e $(state_dir "$fid" s1) ]]; echo $?)
check "event: snapshot.deleted" $(events > "$tmp/body"; grep -q 'snapshot.deleted' "$tmp/body"; echo $?)
api DELETE "/v1/vms/$vm?force=true"
check "deleting a VM takes its snapshots (rows and files)" $([[ $status == 204 && ! -e $STATE/snapshots/$id ]]; echo $?)
api GET "/v1/vms/clone-pv"
check "the clone lives on after its source VM is gone" $([[ $(jbody .state) == running ]] && wait_counter clone-pv 1; echo $?)

finish
