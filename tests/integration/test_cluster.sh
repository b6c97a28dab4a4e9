#!/bin/bash
# Integration: a cluster of three vmmd members on a three-member etcd of the
# test's own (issue 16), on this host: separate state directories, sockets,
# TLS ports. Checked:
#   - joining: the first member bootstraps; the next need a join token, which
#     works once; a member restarted later rejoins without one;
#   - one API: VMs created through any member (pinned with "member", or placed
#     by free memory, with a vm.placed event), listed by every member with
#     their member; start, console, stop of a VM sent to members that do not
#     have it (forwarded over TLS with the cluster's secret); a name taken on
#     another member refused with 409;
#   - kill -9 of a member: offline for the others within the lease TTL, its
#     VMs "unknown" (never "running" from a stale record), requests for them
#     503, their workers run on; its "ha": "restart" VM fences itself (its
#     worker stops without its daemon) and runs on another member; restarted,
#     the member rejoins, its VM without ha is running again and its copy of
#     the ha one is dropped: every VM runs in exactly one worker;
#   - a member cut off from etcd (its only etcd endpoint SIGSTOPped) stops its
#     ha VM itself before the others start it; back, it drops its copy;
#   - etcd: one of three members killed changes nothing; two killed make the
#     cluster read-only (writes 503 with a detail, reads answered from the last
#     state) and it recovers by itself when they return;
#   - evacuating a member: its running VM moves by live migration (counting
#     on, one worker), its stopped one is handed over (same id), both names
#     with them; the member ends empty;
#   - placement by what a VM needs: to the member with its volume; 409 saying
#     what each member lacks; an ha VM on its member's own volume is not
#     restarted elsewhere (vm.ha_stranded), and blocks that member's evacuation;
#   - events and metrics through any member cover the cluster: another member's
#     event once in every stream, with its origin; membership events not copied;
#     ?local=1 for one member's own; metrics labelled with their member;
#   - removing a member: refused while it is online, done once it is offline
#     (its records go); bad bodies and unknown members.
# Usage: test_cluster.sh VMMD GUEST_DIR
set -uo pipefail

VMMD=$1
GUESTS=$(cd "$2" && pwd)
HERE=$(dirname "${BASH_SOURCE[0]}")
. "$HERE/daemon_fixture.sh"
. "$HERE/etcd_fixture.sh"
require_kvm "test_cluster.sh"
[[ -x /usr/bin/etcd ]] || { echo "SKIPPED: no etcd (apt-get install etcd-server)" >&2; exit 77; }

TTL=6 # etcd on two loaded cores answers in 300 ms at times: requests wait TTL/6
CLUSTER=t$$
STATE3=$tmp/state3 SOCK3=$tmp/state3/vmmd.sock
daemon3_pid=
P1=$((PORT)) P2=$((PORT + 1)) P3=$((PORT + 2))
trap 'etcd_cleanup; [[ -n $daemon3_pid ]] && kill -9 $daemon3_pid 2>/dev/null;
      pkill -9 -f -- "--control $STATE3/run/" 2>/dev/null; cleanup' EXIT
fail_detail() { echo "(status $status: $(head -c 300 "$tmp/body"))"; }

sock_of() { case $1 in m1) echo "$SOCK" ;; m2) echo "$SOCK2" ;; m3) echo "$SOCK3" ;; esac; }
# on MEMBER METHOD PATH [JSON]: api against that member
on() {
    local m=$1
    shift
    SOCK=$(sock_of "$m") api "$@"
}
# member N [serve flags]: start member mN (m1 and m2 through the fixture's two daemons)
member() {
    local n=$1 port
    shift
    port=$((PORT + n - 1))
    # m3 reaches etcd through member 3 only: stopping that one cuts m3 off alone.
    local eps=$ETCD_ENDPOINTS
    [[ $n == 3 ]] && eps=$(etcd_endpoint 3)
    set -- --cluster-etcd "$eps" --cluster-name "$CLUSTER" --cluster-member "m$n" \
        --cluster-lease-ttl $TTL --listen "127.0.0.1:$port" --advertise "https://127.0.0.1:$port" "$@"
    case $n in
    1) start_daemon "$@" ;;
    2) start_daemon2 "$@" ;;
    3) serve "$STATE3" "$SOCK3" "v$(printf '%04d' $((RANDOM % 10000)))" vmmd3 "$@" && daemon3_pid=$serve_pid ;;
    esac
}
token() {
    on m1 POST /v1/cluster/join-tokens '{"ttl_s":600}'
    jbody .token
}
# member_state FROM NAME: online/offline as FROM sees it
member_state() {
    on "$1" GET /v1/cluster
    jq -r --arg n "$2" '.members[] | select(.name == $n) | .state' "$tmp/body"
}
# vm_field FROM VM FIELD: the VM's FIELD in FROM's list
vm_field() {
    on "$1" GET /v1/vms
    jq -r --arg n "$2" ".[] | select(.name == \$n) | .$3" "$tmp/body"
}
# workers_of ID: the VM's workers on this host under any member's state directory, each
# counted once (count_workers' rule: the host-level process of the pair)
workers_of() {
    local n=0
    for s in "$STATE" "$STATE2" "$STATE3"; do
        n=$((n + $(STATE=$s count_workers "$1")))
    done
    echo "$n"
}
# on failure: the members' logs' last lines about forwarding
dump_logs() { for f in "$tmp"/vmmd*.log; do echo "== $f"; grep -i -e forward -e placed -e error "$f" | tail -n 5; done; }

etcd_start_cluster || { echo "FAIL etcd did not start"; exit 1; }
check "three etcd members healthy" 0

# --- joining --------------------------------------------------------------------
member 1 || exit 1
on m1 GET /v1/cluster
check "the first member bootstraps the cluster" \
    $([[ $status == 200 && $(jbody .enabled) == true && $(jbody '.members | length') == 1 ]]; echo $?)
if "$VMMD" serve --state-dir "$STATE2" --image-dir "$GUESTS" --no-networks \
    --cluster-etcd "$ETCD_ENDPOINTS" --cluster-name "$CLUSTER" --cluster-member m2 \
    >"$tmp/notoken.out" 2>&1; then rc=0; else rc=$?; fi
check "a member without a join token is refused (exit $rc)" \
    $([[ $rc != 0 ]] && grep -q "needs --cluster-join-token" "$tmp/notoken.out"; echo $?)
T=$(token)
member 2 --cluster-join-token "$T" || exit 1
if "$VMMD" serve --state-dir "$STATE3" --image-dir "$GUESTS" --no-networks \
    --cluster-etcd "$ETCD_ENDPOINTS" --cluster-name "$CLUSTER" --cluster-member m3 \
    --cluster-join-token "$T" >"$tmp/reused.out" 2>&1; then rc=0; else rc=$?; fi
check "a join token works once" $([[ $rc != 0 ]] && grep -q "not valid" "$tmp/reused.out"; echo $?)
member 3 --cluster-join-token "$(token)" || exit 1
for m in m1 m2 m3; do
    wait_for 5 is 3 sh -c "curl -s --unix-socket $(sock_of $m) http://vmmd/v1/cluster | jq '[.members[] | select(.state == \"online\")] | length'"
    on $m GET /v1/cluster
    check "$m sees three members online" \
        $([[ $(jq '[.members[] | select(.state == "online")] | length' "$tmp/body") == 3 ]]; echo $?)
done
on m1 POST /v1/cluster/join-tokens '{"ttl_s":5}'
check "join token ttl out of range: 400" $([[ $status == 400 ]]; echo $?)
on m1 POST /v1/cluster/join-tokens '{"ttl":600}'
check "join token unknown field: 400 naming it" $([[ $status == 400 && $(jbody .detail) == ttl:* ]]; echo $?)

# --- one API on every member ----------------------------------------------------------
counter() { echo "{\"name\":\"$1\",\"mode\":\"pv\",\"vcpus\":1,\"memory_mib\":64,\"kernel\":\"$GUESTS/guest-counter.elf\"${2:-}}"; }
on m1 POST /v1/vms "$(counter c2 ',"member":"m2"')"
c2=$(jbody .id)
check "create through m1 pinned to m2: 201 with member m2" \
    $([[ $status == 201 && $(jbody .member) == m2 ]]; echo $?)
on m3 POST /v1/vms "$(counter placed)"
placed_on=$(jbody .member)
check "create without member: placed on $placed_on" $([[ $status == 201 && $placed_on == m? ]]; echo $?)
[[ $placed_on == m? ]] || dump_logs
events=$(curl -s -m 1 --unix-socket "$SOCK3" "http://vmmd/v1/events?since=0")
check "the placement is an event with its reason" \
    $(grep -q '"member":"'"$placed_on"'","reason":"the online member with the most free memory' <<<"$events"; echo $?)
on m3 POST /v1/vms "$(counter c2 ',"member":"m3"')"
check "a name used on another member: 409 naming it" \
    $([[ $status == 409 && $(jbody .detail) == *"taken by a VM on member m2"* ]]; echo $?)
for m in m1 m2 m3; do
    wait_for 3 is m2 vm_field $m c2 member
    check "$m lists c2 on m2" $([[ $(vm_field $m c2 member) == m2 && $(vm_field $m placed member) == "$placed_on" ]]; echo $?)
done
on m3 POST /v1/vms/c2/start
check "start c2 through m3 (forwarded)" $([[ $status == 200 ]]; echo $?)
SOCK=$SOCK3 wait_console c2 "counter: 3 ok" 10
check "c2's console through m3 shows it counting" $?
on m1 GET /v1/vms/c2/stats
check "c2's stats through m1" $([[ $status == 200 ]]; echo $?)
check "c2 runs in one worker" $([[ $(workers_of "$c2") == 1 ]]; echo $?)

# --- the cluster's events and metrics through any member -------------------------------------
# stream_of MEMBER [QUERY]: the member's events from the start, as SSE
stream_of() { curl -s -m 1 --unix-socket "$(sock_of "$1")" "http://vmmd/v1/events?since=0${2:-}"; }
# running_events MEMBER: c2's "running" state changes in the member's stream, with their origin
running_events() { stream_of "$1" | grep '^data: ' | grep "\"id\":\"$c2\"" | grep '"state":"running"' | grep -o '"origin":"[a-z0-9]*"' | sort | uniq -c | tr -s ' '; }
wait_for 3 is ' 1 "origin":"m2"' running_events m3
check "m2's event (c2 running) in m1's and m3's streams, once, with origin m2" \
    $([[ $(running_events m1) == ' 1 "origin":"m2"' && $(running_events m3) == ' 1 "origin":"m2"' ]]; echo $?)
stream_of m1 >"$tmp/stream"
check "m1's own events carry origin m1 (its vm.placed)" \
    $(grep -A1 '^event: vm.placed' "$tmp/stream" | grep -c '"origin":"m1","name":"c2","member":"m2"' >/dev/null; echo $?)
check "a local stream has this member's events only" \
    $(stream_of m1 '&local=1' >"$tmp/local"; grep -q '"origin":"m1"' "$tmp/local" && ! grep -q '"origin":"m[23]"' "$tmp/local"; echo $?)
check "a membership event is not copied: each member sees it itself" \
    $([[ $(grep -A1 '^event: cluster.member_joined' "$tmp/stream" | grep -c '"member":"m3"') == 1 ]]; echo $?)
on m1 GET /metrics
check "m1's metrics cover the cluster: c2's state from m2, labelled with its member" \
    $([[ $status == 200 ]] && grep -q '^vmmd_vm_state{member="m2",id="'"$c2"'",name="c2",mode="pv",state="running"} 1' "$tmp/body" &&
      grep -q '^vmmd_cluster_scrape_ok{member="m3"} 1' "$tmp/body" && [[ $(grep -c '^# TYPE vmmd_vm_state ' "$tmp/body") == 1 ]]; echo $?)
on m1 GET '/metrics?local=1'
check "?local=1: only m1's series" $(! grep -q 'member="m2"' "$tmp/body" && grep -q '^vmmd_cluster_events_copied_total [1-9]' "$tmp/body"; echo $?)
on m1 GET '/v1/events?local=2'
check "local=2: 400" $([[ $status == 400 ]]; echo $?)

# --- placement by what a VM needs ------------------------------------------------------------
on m3 POST /v1/volumes '{"name":"v3","size_mib":1}'
check "a volume v3 on m3" $([[ $status == 201 ]]; echo $?)
# m3's heartbeat (every TTL/3) tells the others it has v3
with_v3() { on m1 POST /v1/vms "$(counter d3 ',"disks":[{"volume":"v3"}]')"; [[ $status == 201 ]]; }
wait_for $((TTL / 3 + 2)) with_v3
check "a VM on v3 created through m1 is placed on m3, where the volume is" \
    $([[ $status == 201 && $(jbody .member) == m3 ]]; echo $?)
on m2 POST /v1/vms "$(counter nv ',"disks":[{"volume":"nowhere"}]')"
check "a volume no member has: 409 saying what each lacks" \
    $([[ $status == 409 && $(jbody .detail) == *"m1 has no volume 'nowhere'"*"m3 has no volume 'nowhere'"* ]]; echo $?)
on m2 POST /v1/vms "$(counter nn ',"nics":[{"network":"lan"}]')"
check "a NIC on a network no member has: 409" \
    $([[ $status == 409 && $(jbody .detail) == *"m2 has no network 'lan'"* ]]; echo $?)

# --- a member killed ----------------------------------------------------------------
on m1 POST /v1/vms "$(counter h1 ',"member":"m2","ha":"restart"')"
h1=$(jbody .id)
on m1 POST /v1/vms/h1/start
check "an ha VM h1 runs on m2" $([[ $status == 200 && $(workers_of "$h1") == 1 ]]; echo $?)
on m2 POST /v1/volumes '{"name":"v2","size_mib":1}'
on m2 POST /v1/vms "$(counter hv ',"member":"m2","ha":"restart","disks":[{"volume":"v2"}]')"
on m2 POST /v1/vms/hv/start
check "an ha VM hv on m2's volume v2 runs" $([[ $status == 200 ]]; echo $?)
wait_for 5 is running vm_field m3 hv state
wait_for 5 is running vm_field m3 h1 state # its record is out (the others act on it)
kill -9 "$daemon2_pid"
t0=$SECONDS
wait_for $((TTL + 4)) is offline member_state m1 m2
check "m2 killed: offline for m1 after $((SECONDS - t0)) s (TTL $TTL s)" \
    $([[ $(member_state m1 m2) == offline ]]; echo $?)
wait_for 2 is unknown vm_field m3 c2 state
check "its VM without ha shows unknown, not running" $([[ $(vm_field m3 c2 state) == unknown ]]; echo $?)
on m1 POST /v1/vms/c2/stop
check "a request for it: 503" $([[ $status == 503 ]]; echo $?)
check "c2's worker runs on, once" $([[ $(workers_of "$c2") == 1 ]]; echo $?)
wait_for 10 is running vm_field m1 h1 state
h1_on=$(vm_field m1 h1 member)
check "h1 (ha restart) runs on $h1_on $((SECONDS - t0)) s after the kill" \
    $([[ $(vm_field m1 h1 state) == running && $h1_on != m2 ]]; echo $?)
check "h1 runs once: m2's worker fenced itself" $([[ $(workers_of "$h1") == 1 ]]; echo $?)
events=$(curl -s -m 1 --unix-socket "$(sock_of "$h1_on")" "http://vmmd/v1/events?since=0")
check "a vm.ha_restarted event from m2" $(grep -q '"from":"m2"' <<<"$events"; echo $?)
stream_of m1 >"$tmp/stream"
check "hv (on m2's own volume) is not restarted elsewhere: unknown, one vm.ha_stranded" \
    $([[ $(vm_field m1 hv state) == unknown && $(vm_field m1 hv member) == m2 &&
        $(grep -A1 '^event: vm.ha_stranded' "$tmp/stream" | grep -c '"name":"hv"') == 1 ]] &&
      grep -q "is volume 'v2', in its member's own storage" "$tmp/stream"; echo $?)
member 2 || exit 1
wait_for 5 is online member_state m1 m2
check "m2 restarted rejoins without a token" $([[ $(member_state m1 m2) == online ]]; echo $?)
wait_for 3 is running vm_field m1 c2 state
check "c2 is running again on m2, in one worker" \
    $([[ $(vm_field m1 c2 state) == running && $(workers_of "$c2") == 1 ]]; echo $?)
# m2's events while m1 could not follow it (its restart) come once m2 is back, none twice.
# (Its first start came before it joined: a relay starts at a new member's present.)
m2_starts() { stream_of m1 >"$tmp/stream"; grep -A1 '^event: daemon.started' "$tmp/stream" | grep -c '"origin":"m2"'; }
wait_for 3 is 1 m2_starts
check "m1's stream has m2's daemon.started of its restart (after the gap), and no event twice" \
    $([[ $(m2_starts) == 1 && $(grep -A1 '^event: vm.created' "$tmp/stream" | grep -c "\"origin\":\"m2\",\"id\":\"$c2\"") == 1 ]]; echo $?)
wait_for 3 is 1 sh -c "curl -s --unix-socket $SOCK2 http://vmmd/v1/vms | jq '[.[] | select(.name == \"h1\")] | length'"
on m2 GET /v1/vms
check "m2 dropped its copy of h1: listed once, on $h1_on, one worker" \
    $([[ $(jq -r '[.[] | select(.name == "h1")] | map(.member) | join(",")' "$tmp/body") == "$h1_on" && $(workers_of "$h1") == 1 ]]; echo $?)
on m1 POST /v1/cluster/members/m2/evacuate
check "evacuating m2 while a VM is on its own volume: 409 naming it, nothing moved" \
    $([[ $status == 409 && $(jbody .detail) == *"VM hv cannot move"*"no volume 'v2'"* ]]; echo $?)
on m2 DELETE /v1/vms/hv
on m2 DELETE /v1/volumes/v2

# --- a member cut off from etcd ------------------------------------------------------
on m1 POST /v1/vms "$(counter h3 ',"member":"m3","ha":"restart"')"
h3=$(jbody .id)
on m1 POST /v1/vms/h3/start
# Published (a record the others can act on) before the cut.
wait_for 5 is running vm_field m1 h3 state
etcd_stop 3
t0=$SECONDS
SOCK=$SOCK3 wait_state h3 stopped $TTL
check "m3 cut off from etcd fences its ha VM within $((SECONDS - t0)) s" $?
moved_on() { [[ $(vm_field m1 "$1" member) != "$2" && $(vm_field m1 "$1" state) == running ]]; }
wait_for $((TTL + 10)) moved_on h3 m3
check "h3 runs elsewhere ($(vm_field m1 h3 member)), once" \
    $([[ $(vm_field m1 h3 state) == running && $(vm_field m1 h3 member) != m3 && $(workers_of "$h3") == 1 ]]; echo $?)
etcd_cont 3
wait_for 10 is online member_state m1 m3
wait_for 5 is 0 sh -c "curl -s --unix-socket $SOCK3 http://vmmd/v1/vms | jq '[.[] | select(.name == \"h3\" and .member == \"m3\")] | length'"
check "back, m3 drops its copy: h3 once, in one worker" \
    $([[ $(member_state m1 m3) == online && $(vm_field m3 h3 member) != m3 && $(workers_of "$h3") == 1 ]]; echo $?)

# --- etcd losing members ------------------------------------------------------------------
writable() { on "$1" GET /v1/cluster; [[ $(jbody .writable) == true ]]; }
for m in m1 m2 m3; do wait_for 15 writable $m; wait_for 10 is online member_state m2 $m; done
etcd_kill 1
etcd_wait_healthy 10 # a leader among the two left (an election takes a second or two)
on m2 POST /v1/vms "$(counter e1 ',"member":"m1"')"
check "one etcd member down: creates still work" $([[ $status == 201 ]]; echo $?)
etcd_kill 2
wait_for 10 is false sh -c "curl -s --unix-socket $SOCK http://vmmd/v1/cluster | jq .writable"
on m1 POST /v1/vms "$(counter e2 ',"member":"m1"')"
check "two etcd members down: writes 503 read-only" \
    $([[ $status == 503 && $(jbody .detail) == "the cluster is read-only"* ]]; echo $?)
on m1 GET /v1/vms
check "reads answered from the last state" \
    $([[ $status == 200 && $(jq '[.[] | select(.name == "c2")] | length' "$tmp/body") == 1 ]]; echo $?)
etcd_restart 1 && etcd_restart 2
t0=$SECONDS
wait_for 20 is true sh -c "curl -s --unix-socket $SOCK http://vmmd/v1/cluster | jq .writable"
on m1 POST /v1/vms "$(counter e2 ',"member":"m1"')"
check "quorum back: writable again after $((SECONDS - t0)) s" $([[ $status == 201 ]]; echo $?)

# --- evacuating a member ------------------------------------------------------------------
for m in m1 m2 m3; do wait_for 15 writable $m; done
on m1 POST /v1/vms "$(counter s2 ',"member":"m2"')"
s2=$(jbody .id)
on m3 POST /v1/cluster/members/m2/evacuate '{"wait":true}'
check "evacuate with a field: 400" $([[ $status == 400 ]]; echo $?)
on m3 POST /v1/cluster/members/m2/evacuate
check "evacuate m2 through m3: 202 with the plan" \
    $([[ $status == 202 && $(jq -r '[.vms[] | select(.name == "c2") | .action] | join(",")' "$tmp/body") == migrate &&
        $(jq -r '[.vms[] | select(.name == "s2") | .action] | join(",")' "$tmp/body") == move ]]; echo $?)
on m2 POST /v1/cluster/members/m2/evacuate
check "a second evacuation: 409 while the first moves, else nothing left to move" \
    $([[ $status == 409 || ($status == 202 && $(jbody '.vms | length') == 0) ]]; echo $?)
vms_on_m2() { on m2 GET /v1/vms; jq '[.[] | select(.member == "m2")] | length' "$tmp/body"; }
wait_for 30 is 0 vms_on_m2
check "m2 ends empty" $([[ $(vms_on_m2) == 0 ]]; echo $?)
wait_for 3 moved_on c2 m2
check "c2 runs on $(vm_field m1 c2 member) after the live migration, in one worker" \
    $(moved_on c2 m2 && [[ $(workers_of "$c2") == 1 ]]; echo $?)
SOCK=$(sock_of "$(vm_field m1 c2 member)") wait_console c2 "counter: [0-9]* ok" 5
check "c2's console counts on at its new member ($(grep -o 'counter: [0-9]*' "$tmp/body" | tail -n 1))" $?
check "s2 (stopped) was handed over to $(vm_field m1 s2 member), same id" \
    $([[ $(vm_field m1 s2 member) != m2 && $(vm_field m1 s2 id) == "$s2" && $(vm_field m1 s2 state) == stopped ]]; echo $?)
events=$(curl -s -m 1 --unix-socket "$SOCK2" "http://vmmd/v1/events?since=0")
check "cluster.evacuation_done on m2: 2 moved" $(grep -q '"member":"m2","moved":2,"failed":0' <<<"$events"; echo $?)
on "$(vm_field m1 s2 member)" POST /v1/vms "$(counter s2 ',"member":"m2"')"
check "the names moved with them (s2 taken: 409)" $([[ $status == 409 ]]; echo $?)

# --- removing members -------------------------------------------------------------------
on m1 DELETE /v1/cluster/members/m2
check "an online member cannot be removed: 409" $([[ $status == 409 ]]; echo $?)
on m1 DELETE /v1/cluster/members/nope
check "an unknown member: 404" $([[ $status == 404 ]]; echo $?)
on m3 POST /v1/vms "$(counter on3 ',"member":"m3"')"
kill -9 "$daemon3_pid"
daemon3_pid=
wait_for $((TTL + 4)) is offline member_state m1 m3
on m1 DELETE /v1/cluster/members/m3
check "an offline member is removed: 204" $([[ $status == 204 ]]; echo $?)
members_seen() { on "$1" GET /v1/cluster; jbody '.members | length'; }
wait_for 3 is 2 members_seen m2
check "the others no longer list it (within a poll), nor its VMs" \
    $([[ $(members_seen m2) == 2 && -z $(vm_field m2 on3 name) ]]; echo $?)
on m1 GET '/metrics?local=1'
check "metrics: members by state, writable" \
    $(grep -q '^vmmd_cluster_members{state="online"} 2' "$tmp/body" && grep -q '^vmmd_cluster_writable 1' "$tmp/body"; echo $?)
on m1 POST /v1/vms/c2/stop
finish
