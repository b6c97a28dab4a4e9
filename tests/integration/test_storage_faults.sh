#!/bin/bash
# Integration: the state store on a full filesystem (issue 12). The state
# directory is a small tmpfs that the test fills: creates, patches and
# deletes fail with 507 problem+json and change nothing (no row, no event);
# reads (the list, one VM, the host, metrics, the event stream) keep working;
# the daemon keeps running; and once there is room again every write works,
# with event ids that run on without a hole. The start of a VM on a full
# store (507, no worker) is test_daemon_hardening.sh's. Needs root for the
# tmpfs mount (a loud skip otherwise); no /dev/kvm.
# Usage: test_storage_faults.sh VMMD GUEST_DIR
set -uo pipefail

VMMD=$1
GUESTS=$(cd "$2" && pwd)
. "$(dirname "${BASH_SOURCE[0]}")/daemon_fixture.sh"
fail_detail() { echo "(HTTP $status: $(body | head -c 300))"; }

FULL=$tmp/full
mkdir -p "$FULL"
if ! mount -t tmpfs -o size=4m tmpfs "$FULL" 2>/dev/null; then
    echo "SKIPPED: cannot mount a tmpfs here (needs root); the full-store checks did not run" >&2
    exit 77
fi
cleanup_mount() {
    [[ -n $daemon_pid ]] && kill -9 "$daemon_pid" 2>/dev/null
    daemon_pid=
    umount "$FULL" 2>/dev/null
    cleanup
}
trap cleanup_mount EXIT
STATE=$FULL/state SOCK=$FULL/state/vmmd.sock
db() { sqlite3 "file:$STATE/vmmd.db?mode=ro" "$1"; }
content_type() { # METHOD PATH [JSON]: the response's Content-Type
    local args=(-s -o /dev/null -D - -X "$1" --unix-socket "$SOCK")
    [[ $# -ge 3 ]] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
    curl "${args[@]}" "http://vmmd$2" | tr -d '\r' | awk -F': ' 'tolower($1)=="content-type"{print $2}'
}

start_daemon || exit 1
api POST /v1/vms "$(vm_json keep idle)"
api POST /v1/vms "$(vm_json gone idle)"
check "two VMs before the disk fills" $([[ $status == 201 ]]; echo $?)
# A third one running, where there is KVM: a stop the store cannot record must not happen.
have_kvm=0
if [[ -c /dev/kvm && -w /dev/kvm ]]; then
    have_kvm=1
    api POST /v1/vms "$(vm_json run idle)"
    api POST /v1/vms/run/start
    wait_state run running
fi
events_before=$(db "SELECT count(*) FROM events")
last_before=$(db "SELECT max(id) FROM events")

# Fill the filesystem. A long command line makes each write need new pages.
dd if=/dev/zero of="$FULL/filler" bs=16k 2>/dev/null
long=$(printf 'x%.0s' $(seq 3000))
api POST /v1/vms "$(vm_json new idle "\"cmdline\":\"$long\"")"
check "full: a create is 507" $([[ $status == 507 ]]; echo $?)
check "as problem+json that says why" \
    $([[ $(jbody .status) == 507 && $(jbody .detail) == *"No space left"* ]]; echo $?)
check "content type application/problem+json" \
    $([[ $(content_type POST /v1/vms "$(vm_json new2 idle "\"cmdline\":\"$long\"")") == application/problem+json* ]]; echo $?)
api PATCH /v1/vms/keep "{\"cmdline\":\"$long\"}"
check "full: a patch is 507" $([[ $status == 507 ]]; echo $?)
api DELETE /v1/vms/gone
check "full: a delete is 507" $([[ $status == 507 ]]; echo $?)
if ((have_kvm)); then
    api POST /v1/vms/run/pause
    check "full: a pause is 507, and the worker is running again, as recorded" \
        $([[ $status == 507 ]] && sleep 0.3 && api GET /v1/vms/run && [[ $(jbody .state) == running ]] &&
          printf '{"cmd":"status"}\n' | socat -t 1 - "UNIX-CONNECT:$STATE/run/$(jbody .id)/control.sock" |
          grep -q '"state":"running"'; echo $?)
    api POST /v1/vms/run/stop
    check "full: a stop is 507, and the VM keeps running as recorded" \
        $([[ $status == 507 ]] && sleep 0.3 && api GET /v1/vms/run &&
          [[ $(jbody .state) == running && $(count_workers) == 1 ]]; echo $?)
fi

# Nothing of them was kept, half or whole.
api GET /v1/vms
check "reads keep working: the list has the VMs" \
    $([[ $status == 200 && $(jbody 'map(.name) | sort | join(",")') == gone,keep$( ((have_kvm)) && echo ,run) ]]; echo $?)
api GET /v1/vms/keep
check "the patched VM is unchanged" $([[ $status == 200 && $(jbody .cmdline) == null ]]; echo $?)
api GET /v1/vms/new
check "the create left no VM" $([[ $status == 404 ]]; echo $?)
api GET /v1/host
check "GET /v1/host answers" $([[ $status == 200 ]]; echo $?)
api GET /metrics
check "GET /metrics answers" $([[ $status == 200 ]]; echo $?)
check "no event for the failed writes ($events_before events, last $last_before)" \
    $([[ $(db "SELECT count(*) FROM events") == "$events_before" &&
         $(db "SELECT max(id) FROM events") == "$last_before" ]]; echo $?)
curl -s -N --max-time 1 --unix-socket "$SOCK" "http://x/v1/events?since=0" >"$tmp/sse"
check "the event stream replays what is kept" \
    $([[ $(grep -c '^event: vm.created' "$tmp/sse") == $((2 + have_kvm)) ]]; echo $?)
check "the database is intact" $([[ $(db "PRAGMA integrity_check") == ok ]]; echo $?)
check "the daemon still runs" $(kill -0 "$daemon_pid"; echo $?)

# Room again: every write works, and the events run on from where they were.
rm -f "$FULL/filler"
api POST /v1/vms "$(vm_json new idle "\"cmdline\":\"$long\"")"
check "room again: the create works" $([[ $status == 201 ]]; echo $?)
api PATCH /v1/vms/keep "{\"cmdline\":\"$long\"}"
check "the patch works" $([[ $status == 200 && $(jbody .cmdline) == "$long" ]]; echo $?)
api DELETE /v1/vms/gone
check "the delete works" $([[ $status == 204 ]]; echo $?)
check "three events, ids right after the last kept one" \
    $([[ $(db "SELECT group_concat(type) FROM events WHERE id > $last_before") == vm.created,vm.updated,vm.deleted &&
         $(db "SELECT max(id) FROM events") == $((last_before + 3)) ]]; echo $?)
if ((have_kvm)); then
    api POST /v1/vms/run/stop
    check "room again: the stop works" $([[ $status == 200 && $(jbody .state) == stopped ]]; echo $?)
fi

# Full again across a restart: the daemon comes up and serves reads.
kill -TERM "$daemon_pid"; wait "$daemon_pid" 2>/dev/null
dd if=/dev/zero of="$FULL/filler" bs=16k 2>/dev/null
start_daemon || { cat "$tmp/vmmd.err"; tail -5 "$tmp/vmmd.log"; }
check "a restart on a full store comes up" $?
api GET /v1/vms
check "and serves the list" $([[ $status == 200 && $(jbody length) == $((2 + have_kvm)) ]]; echo $?)
api POST /v1/vms "$(vm_json new3 idle "\"cmdline\":\"$long\"")"
check "and refuses a create with 507" $([[ $status == 507 ]]; echo $?)
rm -f "$FULL/filler"
api POST /v1/vms "$(vm_json new3 idle)"
check "until there is room" $([[ $status == 201 ]]; echo $?)

finish
