#!/bin/bash
# Integration: live migration between two real daemons on this host (issue 15),
# each with its own state directory, with the counter guest (its state lives
# only in RAM and registers). A VM migrated while it counts goes on at the
# next number on the target, nothing lost or repeated, in pv and full mode
# with 2 vCPUs; the source's record goes and the target's says running; the
# events on both sides. Then the failures, each leaving the source running:
# an unreachable target (502), a target that is killed mid-way (the target's
# worker dies while the source sends), a VM that is not running (409), bad
# bodies. And the target's side of the wire: a stream with the wrong ticket or
# garbage is refused by the target's worker, the target daemon keeps serving
# and keeps no record of the VM.
# Usage: test_migration.sh VMMD GUEST_DIR
set -uo pipefail

VMMD=$1
GUESTS=$(cd "$2" && pwd)
. "$(dirname "${BASH_SOURCE[0]}")/daemon_fixture.sh"
require_kvm "test_migration.sh"

fail_detail() { echo "(status $status: $(head -c 300 "$tmp/body"))"; }

counters() { sed -n 's/^counter: \([0-9]*\) ok$/\1/p'; }
# console_of API VM: the console tail into $tmp/console
console_of() {
    $1 GET "/v1/vms/$2/console?tail=65536"
    cp "$tmp/body" "$tmp/console"
}
# wait_gone VM: until the first daemon no longer has it (10 s)
wait_gone() {
    for _ in $(seq 200); do
        api GET "/v1/vms/$1"
        [[ $status == 404 ]] && return 0
        sleep 0.05
    done
    return 1
}
# wait_count API VM N: until its console shows a value >= N (10 s)
wait_count() {
    for _ in $(seq 200); do
        console_of "$1" "$2"
        local c
        c=$(counters <"$tmp/console" | tail -n 1)
        [[ -n $c && $c -ge $3 ]] && return 0
        sleep 0.05
    done
    return 1
}
events_of() { curl -s -m 1 --unix-socket "$1" "http://vmmd/v1/events?since=0" 2>/dev/null; }

start_daemon || exit 1
start_daemon2 || exit 1

for mode in pv full; do
    vm=mig-$mode
    api POST /v1/vms "{\"name\":\"$vm\",\"mode\":\"$mode\",\"vcpus\":2,\"memory_mib\":128,\"kernel\":\"$GUESTS/guest-counter.elf\"}"
    id=$(jbody .id)
    api POST "/v1/vms/$vm/start"
    wait_count api $vm 3
    api POST "/v1/vms/$vm/migrate" "{\"target\":\"unix:$SOCK2\",\"max_downtime_ms\":50}"
    check "$mode: migrate -> 202 with the migration" $([[ $status == 202 && $(jbody .target) == "unix:$SOCK2" && $(jbody .vm) == "$vm" ]]; echo $?)
    check "$mode: the source's record goes once the target runs it" $(wait_gone $vm; echo $?)
    console_of api2 $vm
    api2 GET "/v1/vms/$vm"
    check "$mode: on the target: running, same id" $([[ $(jbody .state) == running && $(jbody .id) == "$id" ]]; echo $?)
    wait_count api2 $vm 1
    # The target's console starts with the first number the target ran; the source's last
    # line before it is in the source's log, which went with its run directory: the
    # target's numbers must be consecutive from the first, and that first must follow
    # what the source had printed (we saw at least 3 there).
    first=$(counters <"$tmp/console" | head -n 1)
    gaps=$(counters <"$tmp/console" | awk 'NR > 1 && $1 != prev + 1 { n++ } { prev = $1 } END { print n + 0 }')
    check "$mode: the guest went on at $first (> 3), consecutively, its RAM intact" $([[ -n $first && $first -gt 3 && $gaps == 0 ]] &&
        ! grep -q BAD "$tmp/console"; echo $?)
    check "$mode: events: migration_started, migrated (source); migrated_in (target)" $(ev=$(events_of "$SOCK")
        ev2=$(events_of "$SOCK2")
        grep -q "event: vm.migration_started" <<<"$ev" && grep -q "event: vm.migrated$" <<<"$ev" &&
        grep -q "event: vm.migrated_in" <<<"$ev2"; echo $?)
    check "$mode: no worker left for it on the source" $([[ $(count_workers "$id") == 0 ]]; echo $?)
done

# The downtime the source reported, for the record.
ev=$(events_of "$SOCK")
grep -o '"downtime_ms":[0-9.]*' <<<"$ev" | sed 's/^/migration /'

# --- failures: the source keeps running ----------------------------------------------
api POST /v1/vms "{\"name\":\"stay\",\"memory_mib\":64,\"kernel\":\"$GUESTS/guest-counter.elf\"}"
api POST /v1/vms/stay/start
wait_count api stay 2
worker=$(api GET /v1/vms/stay; jbody .worker_pid)
api POST /v1/vms/stay/migrate '{"target":"unix:/nonexistent/vmmd.sock"}'
check "unreachable target -> 502 naming it" $([[ $status == 502 ]] && body | grep -q "nonexistent"; echo $?)
api POST /v1/vms/stay/migrate '{"target":"ftp://x"}'
check "a target that is not a vmmd URL -> 422 naming target" $([[ $status == 422 && $(jbody .detail) == target:* ]]; echo $?)
api POST /v1/vms/stay/migrate '{"target":"unix:/x","max_downtime_ms":0}'
check "max_downtime_ms 0 -> 422" $([[ $status == 422 && $(jbody .detail) == max_downtime_ms:* ]]; echo $?)
api POST /v1/vms/stay/migrate '{"target":"unix:/x","bogus":1}'
check "unknown field -> 400" $([[ $status == 400 ]]; echo $?)
api GET /v1/vms/stay/migration
check "the failed migration is on record" $([[ $status == 200 && $(jbody .state) == failed && $(jbody .error) != null ]]; echo $?)

# A target killed mid-way: a big VM takes long enough to send that the target's worker can
# be killed while it receives.
api POST /v1/vms "{\"name\":\"big\",\"memory_mib\":2048,\"kernel\":\"$GUESTS/guest-counter.elf\"}"
api POST /v1/vms/big/start
wait_count api big 2
bigworker=$(api GET /v1/vms/big; jbody .worker_pid)
api POST /v1/vms/big/migrate "{\"target\":\"unix:$SOCK2\"}"
mstatus=$status
for _ in $(seq 100); do pkill -9 -f -- "--control $STATE2/run/.*--incoming-fd" && break; sleep 0.01; done
for _ in $(seq 200); do
    api GET /v1/vms/big/migration
    [[ $(jbody .state) == failed || $(jbody .state) == done ]] && break
    sleep 0.05
done
check "target killed mid-way: the migration failed, saying why" $([[ $mstatus == 202 && $(jbody .state) == failed && $(jbody .error) != null ]]; echo $?)
api GET /v1/vms/big
check "... and the source runs on in the same worker" $([[ $(jbody .state) == running && $(jbody .worker_pid) == "$bigworker" ]] &&
    console_of api big && c=$(counters <"$tmp/console" | tail -n 1) && wait_count api big $((c + 1)); echo $?)
for _ in $(seq 100); do api2 GET /v1/vms/big; [[ $status == 404 ]] && break; sleep 0.05; done
check "... and the target keeps no record of it" $([[ $status == 404 ]]; echo $?)
api POST /v1/vms/big/migrate "{\"target\":\"unix:$SOCK2\"}"
check "after the failure it migrates again" $([[ $status == 202 ]] && wait_gone big && api2 GET /v1/vms/big &&
    [[ $(jbody .state) == running ]]; echo $?)
api2 DELETE "/v1/vms/big?force=true"

api POST /v1/vms/stay/stop
api POST /v1/vms/stay/migrate "{\"target\":\"unix:$SOCK2\"}"
check "a stopped VM -> 409" $([[ $status == 409 ]]; echo $?)
api GET /v1/vms/stay
check "the failures left the VM where it was" $([[ $(jbody .state) == stopped ]]; echo $?)

# --- the target's side of the wire ---------------------------------------------------
offer="{\"vm\":{\"name\":\"lured\",\"mode\":\"pv\",\"vcpus\":1,\"memory_mib\":32,\"kernel\":\"$GUESTS/guest-counter.elf\"},\"timeout_s\":5}"
for kind in ticket garbage; do
    api2 POST /v1/migrations "$offer"
    port=$(jbody .port)
    check "$kind: the target offers a port and a ticket" $([[ $status == 201 && $port -gt 0 && ${#port} -le 5 && $(jbody .ticket | wc -c) == 65 ]]; echo $?)
    if [[ $kind == ticket ]]; then
        # A well-formed HELLO with a ticket of zeros.
        printf 'VMMDMIG1\x01\0\0\0\x01\0\0\0\0\0\0\x02\0\0\0\0' >"$tmp/hello"
        head -c 32 /dev/zero >>"$tmp/hello"
        { printf '\x01\0\0\0\0\0\0\0\x38\0\0\0\0\0\0\0'; cat "$tmp/hello"; } >"$tmp/stream"
    else
        head -c 65536 /dev/urandom >"$tmp/stream"
    fi
    timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port; cat '$tmp/stream' >&3; cat <&3 >'$tmp/answer'" 2>/dev/null
    for _ in $(seq 100); do api2 GET /v1/vms/lured; [[ $status == 404 ]] && break; sleep 0.05; done
    check "$kind: refused by the target's worker, which keeps no VM" $([[ $status == 404 ]]; echo $?)
    api2 GET /v1/host
    check "$kind: the target daemon keeps serving" $([[ $status == 200 ]]; echo $?)
    [[ $kind == ticket ]] &&
        check "a wrong ticket is answered as such" $(grep -qa "wrong migration ticket" "$tmp/answer"; echo $?)
done

api GET /metrics
check "metrics: migrations done and failed" $(body | grep -q '^vmmd_migrations_total{result="done"} 3' &&
    body | grep -q '^vmmd_migrations_total{result="failed"} [1-9]'; echo $?)

finish
