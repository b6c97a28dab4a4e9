#!/bin/bash
# Integration: the event stream's slow-reader policy. A reader that stops
# reading (its curl is SIGSTOPped) while a burst of events is committed is
# disconnected once it is more than --events-max-lag events behind, without
# slowing the daemon down; a reader that keeps up is not. The dropped one
# resumes with Last-Event-ID and, with what it had, holds every event
# exactly once, in order. Needs no /dev/kvm: the events come from PATCHes.
# Usage: test_events.sh VMMD GUEST_DIR
set -uo pipefail

VMMD=$1
GUESTS=$(cd "$2" && pwd)
. "$(dirname "${BASH_SOURCE[0]}")/daemon_fixture.sh"
fail_detail() { echo "($(tail -3 "$tmp/vmmd.log" 2>/dev/null | tr '\n' ' '))"; }

BURST=1500
MAX_LAG=50
start_daemon --events-max-lag "$MAX_LAG" || exit 1
metric() { curl -s --unix-socket "$SOCK" http://x/metrics | awk -v m="$1" '$1==m{print $2}'; }
# The ids of the complete events in an SSE capture (an event ends with a blank line).
complete_ids() {
    awk 'BEGIN{RS="\n\n"} {rec[NR]=$0} END{
        last = NR
        if (!complete) last = NR - 1
        for (i = 1; i <= last; i++) if (match(rec[i], /(^|\n)id: [0-9]+/)) {
            s = substr(rec[i], RSTART, RLENGTH); sub(/.*id: /, "", s); print s }
    }' complete="$(tail -c 2 "$1" | od -An -c | grep -q '\\n  *\\n' && echo 1)" "$1"
}

curl -s --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
    --data-binary "{\"name\":\"ev\",\"kernel\":\"$GUESTS/guest-idle.elf\",\"memory_mib\":32}" \
    http://x/v1/vms >/dev/null
# Where the stream is now, without opening one (a stream whose curl has gone stays
# counted until its next write: the next event or keepalive).
start_id=$(curl -s -D - -o /dev/null --unix-socket "$SOCK" http://x/v1/vms |
           tr -d '\r' | awk -F': ' 'tolower($1)=="vmmd-last-event-id"{print $2}')

# A reader that stops reading, and one that keeps up (curl itself in the background,
# not a function's subshell, so that SIGSTOP stops the reader).
curl -s -N --unix-socket "$SOCK" "http://x/v1/events?since=$start_id" >"$tmp/slow" &
slow=$!
curl -s -N --unix-socket "$SOCK" --max-time 60 "http://x/v1/events?since=$start_id" >"$tmp/fast" &
fast=$!
for _ in $(seq 100); do [[ -s $tmp/slow && -s $tmp/fast ]] && break; sleep 0.05; done
kill -STOP "$slow"
check "two readers connected" $([[ $(metric vmmd_event_stream_clients) == 2 ]]; echo $?)

# The burst: one curl, one kept-alive connection, $BURST PATCHes, each commits an event.
urls=()
for _ in $(seq "$BURST"); do urls+=(http://x/v1/vms/ev); done
t0=$(date +%s%N)
curl -s --unix-socket "$SOCK" -X PATCH -H 'Content-Type: application/json' \
    --data-binary '{"autostart":false}' -o /dev/null "${urls[@]}" >/dev/null
ms=$((($(date +%s%N) - t0) / 1000000))
end_id=$((start_id + BURST))
check "$BURST events committed in $ms ms with a stalled reader (the daemon is not slowed down)" \
    $([[ $ms -lt 30000 && $(metric vmmd_events_emitted_total) -ge $BURST ]]; echo $?)
check "the stalled reader was dropped, the one keeping up was not" \
    $([[ $(metric vmmd_event_stream_clients_dropped_total) == 1 ]] && kill -0 "$fast" 2>/dev/null; echo $?)
grep -q "dropping a client" "$tmp/vmmd.log"
check "the log says why" $?
check "the dropped client no longer counts as connected, the other does" \
    $([[ $(metric vmmd_event_stream_clients) == 1 ]]; echo $?)

# The dropped reader wakes up: it reads what the kernel still held, then the end of the stream.
kill -CONT "$slow"
for _ in $(seq 100); do kill -0 "$slow" 2>/dev/null || break; sleep 0.05; done
check "the dropped reader sees its stream end" $(! kill -0 "$slow" 2>/dev/null; echo $?)
complete_ids "$tmp/slow" >"$tmp/slow.ids"
got=$(wc -l <"$tmp/slow.ids")
last=$(tail -1 "$tmp/slow.ids")
check "it was cut off behind ($got of $BURST events arrived, last id ${last:-none})" \
    $([[ $got -lt $BURST && -n $last ]]; echo $?)

# It reconnects as an EventSource does: Last-Event-ID, plus the URL it began with.
curl -s -N --unix-socket "$SOCK" --max-time 2 -H "Last-Event-ID: $last" \
    "http://x/v1/events?since=$start_id" >"$tmp/resume"
complete_ids "$tmp/resume" >"$tmp/resume.ids"
check "Last-Event-ID wins over the URL's since= (resumes at $((last + 1)))" \
    $([[ $(head -1 "$tmp/resume.ids") == $((last + 1)) ]]; echo $?)
cat "$tmp/slow.ids" "$tmp/resume.ids" >"$tmp/all.ids"
check "with the resume it has every event exactly once, in order" \
    $(cmp -s "$tmp/all.ids" <(seq $((start_id + 1)) "$end_id"); echo $?)
# The fast reader has waited since the burst: within SSE_KEEPALIVE_MS (15 s) a comment comes.
for _ in $(seq 200); do grep -q "^: keepalive" "$tmp/fast" && break; sleep 0.1; done
check "a waiting stream gets a keepalive comment" $(grep -q "^: keepalive" "$tmp/fast"; echo $?)
kill "$fast" 2>/dev/null
wait "$fast" 2>/dev/null
complete_ids "$tmp/fast" >"$tmp/fast.ids"
check "the reader that kept up got all $BURST events in order" \
    $(cmp -s "$tmp/fast.ids" <(seq $((start_id + 1)) "$end_id"); echo $?)

finish
