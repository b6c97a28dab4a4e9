#!/bin/bash
# Integration: event retention (issue 12). With --events-max-count the table
# never holds more than N events however fast they come; with
# --events-max-age old events go on their own; ids go on across a prune and
# a restart; and a stream that resumes from before the oldest event kept
# gets an events.reset event naming the gap, then what is kept, never a
# silent gap. vmctl events prints the reset. Needs no /dev/kvm: the events
# come from PATCHes.
# Usage: test_events_retention.sh VMMD GUEST_DIR VMCTL
set -uo pipefail

VMMD=$1
GUESTS=$(cd "$2" && pwd)
VMCTL=$3
. "$(dirname "${BASH_SOURCE[0]}")/daemon_fixture.sh"
fail_detail() { echo "($(tail -3 "$tmp/vmmd.log" 2>/dev/null | tr '\n' ' '))"; }

db() { sqlite3 "$STATE/vmmd.db" "$1"; }
# stream [since|-] [Last-Event-ID]: one second of the stream, as "id type" lines.
stream() {
    local args=(-s -N --max-time 1 --unix-socket "$SOCK")
    [[ -n ${2:-} ]] && args+=(-H "Last-Event-ID: $2")
    curl "${args[@]}" "http://x/v1/events${1:+?since=$1}" >"$tmp/sse"
    awk '/^id: /{id=$2} /^event: /{print id, $2}' "$tmp/sse"
}
patches() { # N: N PATCHes on one connection, each commits one event
    local urls=()
    for _ in $(seq "$1"); do urls+=(http://x/v1/vms/ret); done
    curl -s --unix-socket "$SOCK" -X PATCH -H 'Content-Type: application/json' \
        --data-binary '{"autostart":false}' "${urls[@]}" >/dev/null
}

CAP=20
# A high --events-max-lag: the reader overtaken by retention below must not be dropped first.
start_daemon --events-max-count "$CAP" --events-max-lag 100000 || exit 1
api POST /v1/vms "$(vm_json ret idle)"
check "a VM to change" $([[ $status == 201 ]]; echo $?)
patches 200
api GET /v1/host
last=$(db "SELECT seq FROM sqlite_sequence WHERE name = 'events'")
for _ in $(seq 40); do [[ $(db "SELECT count(*) FROM events") -le $CAP ]] && break; sleep 0.05; done
count=$(db "SELECT count(*) FROM events")
oldest=$(db "SELECT min(id) FROM events")
check "count cap: $last events committed, $count kept (--events-max-count $CAP)" \
    $([[ $last -ge 202 && $count == "$CAP" ]]; echo $?)
check "the newest are kept, one run of ids ($oldest..$last)" \
    $([[ $oldest == $((last - CAP + 1)) && $(db "SELECT max(id) FROM events") == "$last" ]]; echo $?)
grep -q "events: pruned" "$tmp/vmmd.log"
check "the log says it pruned" $?

# A resume from before the oldest kept: the reset first, with the id before the oldest...
stream 5 >"$tmp/ids"
check "since older than kept: events.reset first, id $((oldest - 1))" \
    $([[ $(head -1 "$tmp/ids") == "$((oldest - 1)) events.reset" ]]; echo $?)
data=$(awk '/^event: events.reset/{getline; sub(/^data: /, ""); print; exit}' "$tmp/sse")
check "its data names the gap (since 5, oldest $oldest)" \
    $([[ $(jq -r '"\(.since) \(.oldest)"' <<<"$data") == "5 $oldest" && -n $(jq -r .detail <<<"$data") ]]; echo $?)
# ...then every kept event, in order.
check "then the $CAP kept events in order" \
    $(cmp -s <(tail -n +2 "$tmp/ids" | cut -d' ' -f1) <(seq "$oldest" "$last"); echo $?)
stream "" 1 >"$tmp/ids"
check "Last-Event-ID older than kept: the same reset" \
    $([[ $(head -1 "$tmp/ids") == "$((oldest - 1)) events.reset" ]]; echo $?)
stream 0 >"$tmp/ids"
check "since=0 once events were pruned: the reset, then all kept" \
    $([[ $(head -1 "$tmp/ids" | cut -d' ' -f2) == events.reset && $(wc -l <"$tmp/ids") == $((CAP + 1)) ]]; echo $?)
stream $((oldest - 1)) >"$tmp/ids"
check "since just before the oldest kept: no gap, no reset" \
    $([[ $(head -1 "$tmp/ids") == "$oldest vm.updated" ]] && ! grep -q reset "$tmp/ids"; echo $?)
stream $((last - 3)) >"$tmp/ids"
check "a recent since: the 3 after it" $([[ $(wc -l <"$tmp/ids") == 3 ]]; echo $?)

VMMD_SOCKET=$SOCK "$VMCTL" events >"$tmp/vmctl.out" 2>&1
check "vmctl events prints the reset, then the kept events" \
    $(sed -n 2p "$tmp/vmctl.out" | grep -q "events.reset.*no longer kept" &&
      [[ $(grep -c vm.updated "$tmp/vmctl.out") == "$CAP" ]]; echo $?)

# A reader that stalls (SIGSTOP) while what it would replay next is pruned: once it
# reads again, past what the kernel and its buffer held, a reset mid-stream.
curl -s -N --max-time 30 --unix-socket "$SOCK" "http://x/v1/events?since=$oldest" >"$tmp/slow" &
slow=$!
for _ in $(seq 100); do [[ -s $tmp/slow ]] && break; sleep 0.05; done
kill -STOP "$slow"
patches 2500
kill -CONT "$slow"
for _ in $(seq 100); do
    [[ $(awk '/^event: /{print $2}' "$tmp/slow" | tail -n +2 | grep -c events.reset) -ge 1 ]] && break
    sleep 0.1
done
kill "$slow" 2>/dev/null; wait "$slow" 2>/dev/null
awk '/^id: /{id=$2} /^event: /{print id, $2}' "$tmp/slow" >"$tmp/slow.ids"
reset_line=$(grep -n events.reset "$tmp/slow.ids" | head -1 | cut -d: -f1)
check "a reader overtaken by retention gets a reset mid-stream (line ${reset_line:-none})" \
    $([[ -n $reset_line && $reset_line -gt 1 ]]; echo $?)
# Ids before the reset, then after it: each run in order with no hole but the one it names.
check "and no silent gap: before and after the reset, consecutive ids" \
    $(awk -v r="${reset_line:-0}" 'NR != r && NR != r + 1 && NR > 1 && $1 != prev + 1 {bad = 1}
          {prev = $1} END {exit bad}' "$tmp/slow.ids"; echo $?)

# Age: restart with a 2 s age and no count cap to speak of.
kill -TERM "$daemon_pid"; wait "$daemon_pid" 2>/dev/null
start_daemon --events-max-age 2 || exit 1
patches 5
before=$(db "SELECT seq FROM sqlite_sequence WHERE name = 'events'")
check "ids go on across a prune and a restart (last $before > $last)" \
    $([[ $before -gt $last ]]; echo $?)
sleep 1
patches 1
for _ in $(seq 60); do [[ $(db "SELECT count(*) FROM events") == 1 ]] && break; sleep 0.1; done
check "age cap: events older than 2 s are gone, the newest one stays" \
    $([[ $(db "SELECT count(*) FROM events") == 1 && $(db "SELECT max(id) FROM events") == $((before + 1)) ]]; echo $?)
for _ in $(seq 60); do [[ $(db "SELECT count(*) FROM events") == 0 ]] && break; sleep 0.1; done
check "and then that one too" $([[ $(db "SELECT count(*) FROM events") == 0 ]]; echo $?)
stream "$before" >"$tmp/ids"
check "an empty table: a since before it gets the reset (oldest $((before + 2)))" \
    $([[ $(cat "$tmp/ids") == "$((before + 1)) events.reset" ]]; echo $?)
stream $((before + 1)) >"$tmp/ids"
check "a since at the last id: no reset, nothing missed" $([[ ! -s $tmp/ids ]]; echo $?)
api GET /v1/vms/ret
check "pruning events touches no VM" $([[ $status == 200 ]]; echo $?)

finish
