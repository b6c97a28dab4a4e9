#!/bin/bash
# Integration: `vmctl snapshot create|list|show|delete`, `vmctl restore` and
# `vmctl clone` against a real vmmd on /dev/kvm (issue 15), with the counter
# guest, whose state lives only in RAM and registers: it prints
# `counter: N ok` forever. The usage errors (exit 2) before anything is sent;
# a snapshot of the running guest (named, and by default snap-<seconds>) in
# both formats, listed and shown; the guest still running and counting; one
# taken with --no-resume leaving it paused; a restore, after which the guest
# runs on and counts, its table intact (`ok`); a clone started from the
# snapshot that counts on its own; the refusals: an unknown snapshot (exit 1
# naming it) to show, delete, restore and clone, a malformed or taken name,
# a stopped VM, a restore into a definition that no longer matches (409
# saying what); the deletes; the snapshot events in vmctl events, the
# metrics, and completion of snapshot names. Deleting the VM deletes its
# snapshots.
# Usage: test_vmctl_snapshots.sh VMCTL VMMD GUEST_DIR
set -uo pipefail

VMCTL=$1
VMMD=$2
GUESTS=$(cd "$3" && pwd)
. "$(dirname "${BASH_SOURCE[0]}")/daemon_fixture.sh"
. "$(dirname "${BASH_SOURCE[0]}")/vmctl_fixture.sh"

# last_count VM [seconds]: the N of the last `counter: N ok` line on the VM's console (empty
# when none came in time); the BAD lines of that console tail are counted in $tmp/bad.VM.
last_count() {
    wait_console "$1" 'counter: [0-9]* ok' "${2:-10}" || { echo ""; return; }
    grep -c 'counter: [0-9]* BAD' "$tmp/body" >"$tmp/bad.$1"
    grep -ao 'counter: [0-9]* ok' "$tmp/body" | tail -1 | awk '{ print $2 }'
}
# count_grows VM: the VM's counter moves on within 5 s (its last value in $count; the
# caller's own only outside $(...))
count_grows() {
    local first now
    first=$(last_count "$1")
    [[ -n $first ]] || return 1
    for _ in $(seq 50); do
        sleep 0.1
        now=$(last_count "$1" 1)
        [[ -n $now && $now -gt $first ]] && { count=$now; return 0; }
    done
    return 1
}
# no_bad VM: no `counter: N BAD` line on the console tail last_count read
no_bad() { [[ $(cat "$tmp/bad.$1" 2>/dev/null) == 0 ]]; }

# --- usage errors, before the daemon ---------------------------------------------
v snapshot
check "snapshot without a subcommand -> exit 2 listing them" $([[ $rc == 2 ]] && grep -q "create VM \[NAME\]" "$tmp/err"; echo $?)
v snapshot frobnicate web
check "unknown snapshot subcommand -> exit 2" $([[ $rc == 2 ]]; echo $?)
all_help=0
for c in "snapshot create" "snapshot list" "snapshot show" "snapshot delete" restore clone; do
    # shellcheck disable=SC2086
    "$VMCTL" $c --help >"$tmp/out" 2>&1 && grep -q "Usage: vmctl $c" "$tmp/out" || { all_help=1; echo "  no help for $c"; }
done
rc=0
check "--help for every snapshot command" $all_help
v snapshot create
check "snapshot create without a VM -> exit 2" $([[ $rc == 2 ]]; echo $?)
v snapshot show web
check "snapshot show without a NAME -> exit 2" $([[ $rc == 2 ]]; echo $?)
v restore web
check "restore without a SNAPSHOT -> exit 2" $([[ $rc == 2 ]]; echo $?)
v clone web c1
check "clone without VM/SNAPSHOT -> exit 2 saying so" $([[ $rc == 2 ]] && grep -q "VM/SNAPSHOT" "$tmp/err"; echo $?)
v clone web/ c1
check "clone with an empty snapshot name -> exit 2" $([[ $rc == 2 ]]; echo $?)
v clone web/s1/x c1
check "clone with two slashes -> exit 2" $([[ $rc == 2 ]]; echo $?)
v clone web/s1 c1 --disk volume=
check "clone --disk volume= without a name -> exit 2" $([[ $rc == 2 ]]; echo $?)
v snapshot list web
check "daemon down -> exit 3" $([[ $rc == 3 ]]; echo $?)

require_kvm "the vmctl snapshot tests"
start_daemon || exit 1

# --- the guest ------------------------------------------------------------------------
# A shorter delay than the default: a line every few ms, where the default may take a second.
v create web --kernel "$GUESTS/guest-counter.elf" --mode pv --memory 64 --cmdline delay=2000
rc1=$rc
v start web
check "the counter guest starts and counts" \
    $([[ $rc1 == 0 && $rc == 0 ]] && wait_state web running 10 && count_grows web; echo $?)
v snapshot list web -o json
check "snapshot list of a VM without snapshots -> []" $([[ $rc == 0 && $(jout length) == 0 ]]; echo $?)
v snapshot list web
check "snapshot list without snapshots: the header only" \
    $([[ $rc == 0 && $(wc -l <"$tmp/out") == 1 ]] && grep -q "^NAME  *CREATED  *STATE  *MEMORY  *ON DISK  *PAUSED" "$tmp/out"; echo $?)

# --- snapshot create ---------------------------------------------------------------------
at_snap=$(last_count web)
v snapshot create web s1 -o json
check "snapshot create -o json: s1 of web, taken running, 64 MiB of memory" \
    $([[ $rc == 0 && $(jout .name) == s1 && $(jout .vm) == web && $(jout .vm_state) == running &&
        $(jout .mode) == pv && $(jout .memory_mib) == 64 && $(jout .memory_bytes) == 67108864 ]]; echo $?)
check "snapshot create -o json: the sizes of its files and the pause" \
    $([[ $(jout '.state_bytes > 0 and .memory_allocated_bytes > 0 and .memory_allocated_bytes <= .memory_bytes and .paused_ms >= 0') == true &&
        $(jout '.vm_id') == $("$VMCTL" show web -o json | jq -r .id) && -n $(jout .created_at) ]]; echo $?)
echo "NOTE: s1 took $(jout .paused_ms) ms of pause, $(jout .memory_allocated_bytes) bytes of memory on disk"
check "after the snapshot the VM runs and counts on" \
    $(wait_state web running 5 && count_grows web && [[ $count -gt ${at_snap:-0} ]] && no_bad web; echo $?)
v snapshot create web -o json
default_name=$(jout .name)
check "snapshot create without a NAME: snap-<unix seconds>" $([[ $rc == 0 && $default_name =~ ^snap-[0-9]+$ ]]; echo $?)
v snapshot create web s1
check "snapshot create of a name taken -> exit 1 (409) naming it" $([[ $rc == 1 ]] && grep -q s1 "$tmp/err"; echo $?)
v snapshot create web Bad_Name
check "snapshot create with a malformed name -> exit 1 (422) with a message" \
    $([[ $rc == 1 && -s $tmp/err ]] && grep -qi "name" "$tmp/err"; echo $?)
v snapshot create no-such-vm s1
check "snapshot create of an unknown VM -> exit 1 naming it" $([[ $rc == 1 ]] && grep -q no-such-vm "$tmp/err"; echo $?)
v create cold --kernel "$GUESTS/guest-counter.elf" --mode pv --memory 64
v snapshot create cold s1
check "snapshot create of a stopped VM -> exit 1 (409)" $([[ $rc == 1 && -s $tmp/err ]]; echo $?)
v snapshot create web held --no-resume -o json
check "snapshot create --no-resume: taken, the VM left paused" \
    $([[ $rc == 0 && $(jout .name) == held ]] && wait_state web paused 5; echo $?)
v resume web
check "the VM resumes after --no-resume and counts on" $([[ $rc == 0 ]] && wait_state web running 5 && count_grows web; echo $?)

# --- list, show ---------------------------------------------------------------------------
v snapshot list web -o json
check "snapshot list -o json: the three, oldest first" \
    $([[ $rc == 0 && $(jout 'map(.name) | join(",")') == "s1,$default_name,held" ]]; echo $?)
v snapshot list web
check "snapshot list: a table with name, created, state, memory, on disk, pause" \
    $([[ $rc == 0 ]] && grep -q "^NAME  *CREATED  *STATE  *MEMORY  *ON DISK  *PAUSED" "$tmp/out" &&
      grep -Eq "^s1  +[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}  +running  +64 MiB  +[0-9.]+ [KMG]?i?B  +[0-9.]+ m?s$" "$tmp/out" &&
      [[ $(grep -c . "$tmp/out") == 4 ]]; echo $?)
v snapshot show web s1
check "snapshot show: a key/value block" \
    $([[ $rc == 0 ]] && grep -q "^name: *s1$" "$tmp/out" && grep -q "^vm: *web$" "$tmp/out" &&
      grep -q "^vm state: *running$" "$tmp/out" && grep -q "^memory: *64 MiB$" "$tmp/out" &&
      grep -q "^paused: " "$tmp/out"; echo $?)
v snapshot show web s1 -o json
check "snapshot show -o json: the Snapshot" $([[ $rc == 0 && $(jout .name) == s1 && $(jout .nics) == 0 && $(jout '.disks | length') == 0 ]]; echo $?)
v snapshot show web nope
check "snapshot show of an unknown snapshot -> exit 1 naming it" $([[ $rc == 1 ]] && grep -q nope "$tmp/err"; echo $?)

# --- restore ------------------------------------------------------------------------------
before=$(last_count web)
v restore web s1 -o json
check "restore -o json: the VM, running" $([[ $rc == 0 && $(jout .name) == web && $(jout .state) == running ]]; echo $?)
check "after the restore the guest runs on and counts, its memory intact (ok)" \
    $(wait_state web running 5 && count_grows web && no_bad web; echo $?)
echo "NOTE: counter ${at_snap:-?} when s1 was taken, ${before:-?} before the restore, $(last_count web) after"
v restore web nope
check "restore of an unknown snapshot -> exit 1 naming it" $([[ $rc == 1 ]] && grep -q nope "$tmp/err"; echo $?)
v restore web "$default_name"
check "restore (table): the VM's block, running" $([[ $rc == 0 ]] && grep -q "^name: *web$" "$tmp/out" && grep -q "^state: *running" "$tmp/out"; echo $?)
# A definition that no longer matches: more memory.
"$VMCTL" stop web >/dev/null 2>&1
wait_state web stopped 10
v set web memory=128
rc1=$rc
v restore web s1
check "restore into a definition that no longer matches -> exit 1 (409) saying what" \
    $([[ $rc1 == 0 && $rc == 1 ]] && grep -qi memory "$tmp/err"; echo $?)
"$VMCTL" set web memory=64 >/dev/null 2>&1
v restore web s1
check "restore of a stopped VM whose definition matches again: running, counting" \
    $([[ $rc == 0 ]] && wait_state web running 5 && count_grows web && no_bad web; echo $?)

# --- clone --------------------------------------------------------------------------------
v clone web/s1 web2 -o json
check "clone -o json: a new VM, running from the snapshot" \
    $([[ $rc == 0 && $(jout .name) == web2 && $(jout .state) == running && $(jout .memory_mib) == 64 &&
        $(jout .mode) == pv ]]; echo $?)
check "the clone counts on its own, its memory intact" $(wait_state web2 running 5 && count_grows web2 && no_bad web2; echo $?)
check "the original still runs and counts" $(wait_state web running 5 && count_grows web; echo $?)
v clone web/nope web3
check "clone of an unknown snapshot -> exit 1 naming it" $([[ $rc == 1 ]] && grep -q nope "$tmp/err"; echo $?)
v clone web/s1 web2
check "clone to a name taken -> exit 1" $([[ $rc == 1 && -s $tmp/err ]]; echo $?)
api GET /v1/vms/web3
check "nothing is left of the refused clone" $([[ $status == 404 ]]; echo $?)
v clone web/held web4
check "clone (table): the new VM's block" $([[ $rc == 0 ]] && grep -q "^name: *web4$" "$tmp/out"; echo $?)
"$VMCTL" delete web4 --force >/dev/null 2>&1

# --- events, metrics, completion ------------------------------------------------------------
v events
check "events: snapshot.created, vm.restored as VM/SNAPSHOT, the clone's naming its source" \
    $([[ $rc == 0 ]] && grep -q "snapshot.created  *web/s1" "$tmp/out" && grep -q "vm.restored  *web/s1" "$tmp/out" &&
      grep -q "vm.restored  *web2/s1 .*from web/s1" "$tmp/out"; echo $?)
api GET /metrics
metric() { awk -v m="$1" '$1 == m { print $2 }' "$tmp/body"; }
check "metrics: snapshots stored and taken, restores, their bytes and pause" \
    $([[ $status == 200 && $(metric vmmd_snapshots) == 3 && $(metric vmmd_snapshots_taken_total) -ge 3 &&
        $(metric vmmd_restores_total) -ge 3 ]] && awk -v b="$(metric vmmd_snapshot_bytes)" 'BEGIN { exit !(b > 0) }' &&
      awk -v s="$(metric vmmd_snapshot_pause_seconds_total)" 'BEGIN { exit !(s > 0) }'; echo $?)
completion=$(dirname "$0")/../../cli/vmctl.bash
mkdir -p "$tmp/bin" && ln -sf "$(readlink -f "$VMCTL")" "$tmp/bin/vmctl"
words=$(PATH="$tmp/bin:$PATH" bash -c '
    source "$1"
    COMP_WORDS=(vmctl snapshot ""); COMP_CWORD=2; _vmctl; echo "${COMPREPLY[*]}"
    COMP_WORDS=(vmctl snapshot show web ""); COMP_CWORD=4; _vmctl; echo "show: ${COMPREPLY[*]}"
    COMP_WORDS=(vmctl restore web s); COMP_CWORD=3; _vmctl; echo "restore: ${COMPREPLY[*]}"
    COMP_WORDS=(vmctl clone web/); COMP_CWORD=2; _vmctl; echo "clone: ${COMPREPLY[*]}"' _ "$completion" 2>&1)
rc=0
echo "$words" >"$tmp/out"
check "bash completion: snapshot subcommands, a VM's snapshots from the daemon" \
    $(grep -q "^create list show delete" "$tmp/out" && grep -q "^show: s1 $default_name held$" "$tmp/out" &&
      grep -q "^restore: s1 $default_name$" "$tmp/out" && grep -q "^clone: web/s1 web/$default_name web/held$" "$tmp/out"; echo $?)

# --- deletes --------------------------------------------------------------------------------
v snapshot delete web s1
check "snapshot delete -> exit 0, says so" $([[ $rc == 0 ]] && grep -qx "deleted snapshot s1 of web" "$tmp/out"; echo $?)
v snapshot list web -o json
check "the snapshot is no longer listed" $([[ $rc == 0 && $(jout 'map(.name) | join(",")') == "$default_name,held" ]]; echo $?)
v snapshot delete web s1
check "snapshot delete of an unknown snapshot -> exit 1 naming it" $([[ $rc == 1 ]] && grep -q s1 "$tmp/err"; echo $?)
v snapshot delete web held -o json
check "snapshot delete -o json prints nothing" $([[ $rc == 0 && ! -s $tmp/out ]]; echo $?)
check "the clone runs on without the snapshot it came from" $(wait_state web2 running 2 && count_grows web2; echo $?)
v events
check "events: snapshot.deleted" $(grep -q "snapshot.deleted  *web/s1" "$tmp/out"; echo $?)
v delete web --force
rc1=$rc
v snapshot list web
check "deleting the VM deletes its snapshots (the VM is gone: exit 1)" $([[ $rc1 == 0 && $rc == 1 ]]; echo $?)
api GET /metrics
check "metrics: no snapshot stored once the VM is gone" $([[ $(metric vmmd_snapshots) == 0 && $(metric vmmd_snapshot_bytes) == 0 ]]; echo $?)
"$VMCTL" delete web2 --force >/dev/null 2>&1
"$VMCTL" delete cold >/dev/null 2>&1

finish
