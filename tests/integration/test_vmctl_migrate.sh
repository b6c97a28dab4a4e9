#!/bin/bash
# Integration: `vmctl migrate` and `vmctl migration` (live migration, issue
# 15) between TWO real vmmd daemons on this host (two state directories,
# the target reached as unix:<its socket>), with the counter guest, whose
# state lives only in RAM and registers: it prints `counter: N ok` forever,
# so a lost or stale page or register shows as a gap, a repeat or `BAD`.
# The usage errors (exit 2) before anything is sent; the refusals: a target
# that is not there (exit 1 with the 502's detail), a stopped VM (409), bad
# and unknown fields (422, 400), a name taken on the target (502 passing on
# the target's refusal), each leaving the VM running where it was; then a
# migration there (the result line, progress lines of the right shape, the
# VM gone here and running there, its console counting on from exactly the
# next number), back again with --output json (the final Migration object),
# and once more with --no-wait and `vmctl migration`; the events on both
# sides, vmctl events, the metrics and completion.
# Usage: test_vmctl_migrate.sh VMCTL VMMD GUEST_DIR
set -uo pipefail

VMCTL=$1
VMMD=$2
GUESTS=$(cd "$3" && pwd)
. "$(dirname "${BASH_SOURCE[0]}")/daemon_fixture.sh"
. "$(dirname "${BASH_SOURCE[0]}")/vmctl_fixture.sh"

# The second daemon (the migration target) is the fixture's start_daemon2; cleanup ends it.
trap '[[ -n ${tail_pid:-} ]] && kill "$tail_pid" 2>/dev/null; cleanup' EXIT

# The fixture's helpers talk to $SOCK; on the target: SOCK=$SOCK2 api ..., v --socket "$SOCK2".

# counters_in FILE: the values of the `counter: N ok` lines, one a line
counters_in() { tr -d '\r' <"$1" | sed -n 's/^counter: \([0-9]*\) ok$/\1/p'; }
# consecutive: stdin's numbers each the one before + 1 (and at least two of them)
consecutive() { awk 'NR > 1 && $1 != prev + 1 { bad = 1 } { prev = $1 } END { exit bad || NR < 2 }'; }
# last_count VM [socket]: the last value on the VM's console, empty when none came in 10 s
last_count() {
    SOCK=${2:-$SOCK} wait_console "$1" 'counter: [0-9]* ok' 10 || { echo ""; return; }
    counters_in "$tmp/body" | tail -n 1
}
# counts_on VM [socket]: its counter moves on within 5 s
counts_on() {
    local first now
    first=$(last_count "$1" "${2:-}")
    [[ -n $first ]] || return 1
    for _ in $(seq 50); do
        sleep 0.1
        now=$(last_count "$1" "${2:-}")
        [[ -n $now && $now -gt $first ]] && return 0
    done
    return 1
}
# no_bad VM [socket]: no `BAD` line on its console tail
no_bad() { SOCK=${2:-$SOCK} api GET "/v1/vms/$1/console?tail=65536"; ! grep -q 'counter: [0-9]* BAD' "$tmp/body"; }
# events SOCKET FILE: every event kept, as "TYPE DATA" lines
events() {
    curl -s -N --max-time 2 --unix-socket "$1" "http://vmmd/v1/events?since=0" |
        tr -d '\r' | awk '/^event: / { t = $2 } /^data: / { print t, substr($0, 7) }' >"$2"
}
# event_data FILE TYPE VM: the data of the last such event of VM
event_data() { awk -v t="$2" '$1 == t { $1 = ""; print }' "$1" | jq -c --arg vm "$3" 'select(.vm == $vm)' | tail -n 1; }
# console_file VM_ID [state dir]: where the VM's worker writes its console
console_file() { echo "${2:-$STATE}/run/$1/console.log"; }

# --- usage errors, before the daemon ---------------------------------------------------
v migrate
check "migrate without arguments -> exit 2" $([[ $rc == 2 ]]; echo $?)
v migrate web
check "migrate without a TARGET -> exit 2" $([[ $rc == 2 ]]; echo $?)
v migrate web /tmp/b.sock
check "migrate to a TARGET without a scheme -> exit 2 saying what it wants" \
    $([[ $rc == 2 ]] && grep -q "unix:/PATH, http://HOST:PORT or https://HOST:PORT" "$tmp/err"; echo $?)
v migrate web unix:b.sock
check "migrate to a relative unix: path -> exit 2" $([[ $rc == 2 ]] && grep -q absolute "$tmp/err"; echo $?)
v migrate web https://b:99999
check "migrate to a bad port -> exit 2" $([[ $rc == 2 ]]; echo $?)
v migrate web unix:/b.sock --max-downtime 0
check "--max-downtime 0 -> exit 2" $([[ $rc == 2 ]] && grep -q "max-downtime" "$tmp/err"; echo $?)
v migrate web unix:/b.sock --timeout 3601
check "--timeout 3601 -> exit 2" $([[ $rc == 2 ]]; echo $?)
echo secret >"$tmp/token"
v migrate web https://b:8443 --token x --token-file "$tmp/token"
check "--token and --token-file -> exit 2" $([[ $rc == 2 ]]; echo $?)
v migrate web unix:/b.sock --insecure
check "--insecure for a unix: target -> exit 2" $([[ $rc == 2 ]]; echo $?)
v migrate web https://b:8443 --token-file "$tmp/nonexistent"
check "an unreadable --token-file -> exit 2 naming it" $([[ $rc == 2 ]] && grep -q "$tmp/nonexistent" "$tmp/err"; echo $?)
all_help=0
for c in migrate migration; do
    "$VMCTL" $c --help >"$tmp/out" 2>&1 && grep -q "Usage: vmctl $c" "$tmp/out" || { all_help=1; echo "  no help for $c"; }
done
rc=0
check "--help for migrate and migration" $all_help
v migration web
check "daemon down -> exit 3" $([[ $rc == 3 ]]; echo $?)

require_kvm "the vmctl migrate tests"
start_daemon || exit 1
start_daemon2 || exit 1

# --- the guest --------------------------------------------------------------------------
# A short delay: a line every few ms, and pages written all the time.
v create web --kernel "$GUESTS/guest-counter.elf" --mode pv --memory 64 --cmdline delay=2000
rc1=$rc
v start web
check "the counter guest starts and counts on the first daemon" \
    $([[ $rc1 == 0 && $rc == 0 ]] && wait_state web running 10 && counts_on web; echo $?)
api GET /v1/vms/web
web_id=$(jbody .id)

# --- refusals: the VM stays where it is -------------------------------------------------
api POST /v1/vms/web/migrate "{\"target\":\"unix:$tmp/nonexistent.sock\"}"
detail=$(jbody .detail)
check "the API: a socket that is not there -> 502 with a detail" $([[ $status == 502 && -n $detail ]]; echo $?)
v migrate web "unix:$tmp/nonexistent.sock"
check "vmctl migrate to it -> exit 1 with that detail" \
    $([[ $rc == 1 && -n $detail && $(cat "$tmp/err") == "vmctl: $detail" ]]; echo $?)
check "after the refusals web still runs here and counts" \
    $(wait_state web running 1 && counts_on web; echo $?)
api POST /v1/vms/web/migrate "{\"target\":\"unix:$SOCK2\",\"max_downtime_ms\":0}"
check "max_downtime_ms 0 -> 422 naming the field" $([[ $status == 422 ]] && jbody .detail | grep -q max_downtime_ms; echo $?)
api POST /v1/vms/web/migrate "{\"target\":\"unix:$SOCK2\",\"timeout_s\":3601}"
check "timeout_s 3601 -> 422 naming the field" $([[ $status == 422 ]] && jbody .detail | grep -q timeout_s; echo $?)
api POST /v1/vms/web/migrate "{\"target\":\"unix:$SOCK2\",\"bogus\":1}"
check "an unknown field -> 400" $([[ $status == 400 ]]; echo $?)

v create cold --kernel "$GUESTS/guest-counter.elf" --mode pv --memory 64
v migrate cold "unix:$SOCK2"
check "migrate a stopped VM -> exit 1" $([[ $rc == 1 && -s $tmp/err ]]; echo $?)
api POST /v1/vms/cold/migrate "{\"target\":\"unix:$SOCK2\"}"
check "the API: 409 for a stopped VM" $([[ $status == 409 ]]; echo $?)
v migrate nosuchvm "unix:$SOCK2"
check "migrate an unknown VM -> exit 1" $([[ $rc == 1 ]]; echo $?)

# The name is taken on the target: it refuses (409 there), the source answers 502 with that.
v create dup --kernel "$GUESTS/guest-counter.elf" --mode pv --memory 64 --cmdline delay=2000
v start dup
v --socket "$SOCK2" create dup --kernel "$GUESTS/guest-counter.elf" --mode pv --memory 64
api POST /v1/vms/dup/migrate "{\"target\":\"unix:$SOCK2\"}"
check "the API: the name taken on the target -> 502 naming the VM" \
    $([[ $status == 502 ]] && jbody .detail | grep -q dup; echo $?)
v migrate dup "unix:$SOCK2"
check "vmctl migrate to a daemon where the name is taken -> exit 1 with its detail" \
    $([[ $rc == 1 ]] && grep -q dup "$tmp/err" && ! grep -q "no such route" "$tmp/err"; echo $?)
check "... and dup runs on here, counting" $(wait_state dup running 2 && counts_on dup; echo $?)
SOCK=$SOCK2 api GET /v1/vms/dup
check "... and the target's own dup is untouched (stopped)" $([[ $status == 200 && $(jbody .state) == stopped ]]; echo $?)
v delete dup --force
v --socket "$SOCK2" delete dup
v delete cold

# --- a migration there ------------------------------------------------------------------
# The source's console, read through an open descriptor: the worker's log file goes with the
# VM, but tail -f reads it to the last byte the source printed.
tail -c +1 -f "$(console_file "$web_id")" >"$tmp/source-console" 2>/dev/null &
tail_pid=$!
sleep 0.3
v migrate web "unix:$SOCK2" --max-downtime 100
cp "$tmp/out" "$tmp/migrate.out"
cp "$tmp/err" "$tmp/migrate.err"
check "migrate web unix:<second> -> exit 0" $([[ $rc == 0 ]]; echo $?)
# The target's console from its start, read at once (while it is shorter than the window).
for _ in $(seq 100); do
    SOCK=$SOCK2 api GET "/v1/vms/web/console?tail=65536"
    grep -q 'counter: [0-9]* ok' "$tmp/body" && break
    sleep 0.05
done
cp "$tmp/body" "$tmp/target-console"
check "the result line: migrated web to the target, its downtime, total and rounds" \
    $(grep -Eq "^migrated web to unix:$SOCK2: downtime [0-9]+\.[0-9] ms, total [0-9]+\.[0-9] s, [0-9]+ rounds?$" "$tmp/migrate.out"; echo $?)
# Off a terminal a line per progress event (a short migration may have none).
check "progress lines on stderr have their shape (round N: P pages left, R MB/s)" \
    $(! grep -v -Eq "^round [0-9]+: [0-9]+ pages left(, [0-9]+ MB/s)?$" "$tmp/migrate.err"; echo $?)
api GET /v1/vms/web
check "web is gone from the first daemon (404)" $([[ $status == 404 ]]; echo $?)
v list
check "... and not in its list" $([[ $rc == 0 ]] && ! grep -q "^web " "$tmp/out"; echo $?)
SOCK=$SOCK2 api GET /v1/vms/web
check "web runs on the second daemon, as it was defined (pv, 64 MiB)" \
    $([[ $status == 200 && $(jbody .state) == running && $(jbody .mode) == pv && $(jbody .memory_mib) == 64 ]]; echo $?)
check "... and counts on there" $(counts_on web "$SOCK2"; echo $?)
sleep 1 # tail -f reads what the source's worker wrote last
kill "$tail_pid" 2>/dev/null
wait "$tail_pid" 2>/dev/null
tail_pid=
src_last=$(counters_in "$tmp/source-console" | tail -n 1)
dst_first=$(counters_in "$tmp/target-console" | head -n 1)
echo "  the source's last count: $src_last, the target's first: $dst_first"
# Compare around the switch on the two logs joined: a line the switch cut in two (its start on
# the source, its end on the target) joins up again.
cat "$tmp/source-console" "$tmp/target-console" >"$tmp/joined-console"
check "across the switch no count is lost or repeated (the source's last + 1 comes next)" \
    $([[ -n $src_last && -n $dst_first ]] &&
      counters_in "$tmp/joined-console" | awk -v s="$src_last" '$1 >= s - 50' | consecutive; echo $?)
check "... and none is BAD on either side" \
    $(! grep -q 'counter: [0-9]* BAD' "$tmp/source-console" "$tmp/target-console"; echo $?)

# --- the events -------------------------------------------------------------------------
events "$SOCK" "$tmp/events1"
events "$SOCK2" "$tmp/events2"
started=$(event_data "$tmp/events1" vm.migration_started web)
migrated=$(event_data "$tmp/events1" vm.migrated web)
check "source: vm.migration_started naming the target" \
    $([[ $(jq -r .target <<<"$started") == "unix:$SOCK2" ]]; echo $?)
check "source: vm.migrated with its downtime, total, rounds and bytes" \
    $([[ $(jq -r '.target == "'"unix:$SOCK2"'" and (.downtime_ms | type) == "number" and .total_ms >= .downtime_ms and .rounds >= 1 and .bytes_sent > 0' <<<"${migrated:-null}") == true ]]; echo $?)
check "source: vm.deleted follows vm.migrated" \
    $(awk '$1 == "vm.migrated" && /"web"/ { m = NR } $1 == "vm.deleted" && /"web"/ && m { d = NR } END { exit !(d > m) }' "$tmp/events1"; echo $?)
check "source: every vm.migration_progress has round, pages_left, bytes_sent, throughput_mbps" \
    $(awk '$1 == "vm.migration_progress" { $1 = ""; print }' "$tmp/events1" |
      jq -e -s 'all(.[]; (.round | type) == "number" and (.pages_left | type) == "number" and (.bytes_sent | type) == "number" and (.throughput_mbps | type) == "number")' >/dev/null; echo $?)
check "target: vm.created, then running, then vm.migrated_in" \
    $(awk '/"web"/ && $1 == "vm.created" && !c { c = NR } /"web"/ && $1 == "vm.state_changed" && /"running"/ && c && !r { r = NR }
           $1 == "vm.migrated_in" && /"web"/ && r { i = NR } END { exit !(c && r && i > r) }' "$tmp/events2"; echo $?)
v events
check "vmctl events names the VM and the target of vm.migrated" \
    $([[ $rc == 0 ]] && grep -q "vm.migrated  *web .*to unix:$SOCK2" "$tmp/out"; echo $?)

# --- and back, with --output json -------------------------------------------------------
v --socket "$SOCK2" migrate web "unix:$SOCK" --output json
check "migrate back -o json -> exit 0, the final Migration: done, the VM and target" \
    $([[ $rc == 0 && $(jout .state) == done && $(jout .vm) == web && $(jout .target) == "unix:$SOCK" &&
        -n $(jout .vm_id) ]]; echo $?)
check "... its figures: rounds, all pages sent, bytes, a downtime, no error" \
    $([[ $(jout '.round >= 1 and .pages_left == 0 and .pages_total >= 16384 and .bytes_sent > 0 and (.downtime_ms | type) == "number" and .elapsed_ms >= 0 and .error == null') == true ]]; echo $?)
check "... one JSON object on stdout, nothing else" $([[ $(jq -s length "$tmp/out" 2>/dev/null) == 1 ]]; echo $?)
check "web runs on the first daemon again and counts, nothing BAD" \
    $(wait_state web running 5 && counts_on web && no_bad web; echo $?)
SOCK=$SOCK2 api GET /v1/vms/web
check "... and is gone from the second" $([[ $status == 404 ]]; echo $?)

# --- --no-wait and vmctl migration ------------------------------------------------------
v migrate web "unix:$SOCK2" --no-wait -o json
check "--no-wait -o json -> exit 0 with the Migration as it started" \
    $([[ $rc == 0 && $(jout .vm) == web && $(jout .target) == "unix:$SOCK2" ]] &&
      grep -Eq '^(connecting|precopy|stopping|done)$' <<<"$(jout .state)"; echo $?)
v migration web
# It may be over already, and then the VM has left (404).
check "vmctl migration web: its state, round and pages, or 404 when it has left" \
    $([[ $rc == 0 ]] && grep -Eq "^state: +(connecting|precopy|stopping|done)" "$tmp/out" && grep -q "^pages left:" "$tmp/out" ||
      [[ $rc == 1 ]] && ! grep -q "no such route" "$tmp/err"; echo $?)
check "after --no-wait web arrives on the second daemon and counts" \
    $(SOCK=$SOCK2 wait_state web running 30 && counts_on web "$SOCK2"; echo $?)
v migration web
check "vmctl migration of a VM that left -> exit 1" $([[ $rc == 1 ]] && ! grep -q "no such route" "$tmp/err"; echo $?)

# --- metrics, completion ----------------------------------------------------------------
api GET /metrics
metric() { awk -v m="$1" '$1 == m { print $2 }' "$tmp/body"; }
check "metrics: two migrations done, none running, their downtime" \
    $([[ $(metric 'vmmd_migrations_total{result="done"}') -ge 2 && $(metric vmmd_migrations_running) == 0 ]] &&
      awk -v s="$(metric vmmd_migration_downtime_seconds_total)" 'BEGIN { exit !(s > 0) }'; echo $?)
v create compl --kernel "$GUESTS/guest-counter.elf" --mode pv --memory 64
completion=$(dirname "$0")/../../cli/vmctl.bash
mkdir -p "$tmp/bin" && ln -sf "$(readlink -f "$VMCTL")" "$tmp/bin/vmctl"
words=$(PATH="$tmp/bin:$PATH" bash -c '
    source "$1"
    COMP_WORDS=(vmctl mig); COMP_CWORD=1; _vmctl; echo "${COMPREPLY[*]}"
    COMP_WORDS=(vmctl migrate ""); COMP_CWORD=2; _vmctl; echo "vm: ${COMPREPLY[*]}"
    COMP_WORDS=(vmctl migrate web unix:/x --); COMP_CWORD=4; _vmctl; echo "opts: ${COMPREPLY[*]}"' _ "$completion")
check "completion: migrate and migration, VM names, migrate's options" \
    $(grep -q "migrate migration" <<<"$words" && grep -q "^vm: .*compl" <<<"$words" &&
      grep -q "^opts: .*--max-downtime" <<<"$words" && grep -q "^opts: .*--token-file" <<<"$words"; echo $?)

finish
