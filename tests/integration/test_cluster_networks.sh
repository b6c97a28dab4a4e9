#!/bin/bash
# Integration: managed networks as cluster objects (issue 16, phase 3). A
# one-member etcd of the test's own and two vmmd members on this host, both
# with managed networks, each with its own --network-prefix (bridges and nft
# tables apart). Checked:
#   - a network defined through m1 is in etcd only: listed by m2 within a
#     poll, "defined" and realised nowhere; the same name again: 409;
#   - a VM with a NIC on it created on m2 realises it there (m2's bridge, a
#     network.realised event, "members": ["m2"] through m1) and not on m1;
#   - delete while a VM of any member uses it: 409 naming the VM and member;
#   - a PATCH through m1 reaches m2's realisation (its bridge's MTU);
#   - deleted through m1 once the VM is gone: m2's realisation goes too, and
#     also when m2 was down at the time (at its restart);
#   - m1's first-start default network becomes the cluster's "default";
#   - a VM handed over (evacuation) realises its network where it starts;
#   - a definition put into etcd by hand that is not valid is refused (409), not realised;
#   - etcd gone: POST /v1/networks 503 (the cluster is read-only);
#   - vmctl network list shows a MEMBERS column in a cluster.
# Two members realising the same cidr on ONE host would clash (one subnet on two
# bridges: the second member refuses it, its route overlaps), so each network here
# is realised on one member at a time. On separate hosts every member may realise it.
# Usage: test_cluster_networks.sh VMMD GUEST_DIR [VMCTL]
set -uo pipefail

VMMD=$1
GUESTS=$(cd "$2" && pwd)
VMCTL=${3:-}
HERE=$(dirname "${BASH_SOURCE[0]}")
. "$HERE/daemon_fixture.sh"
. "$HERE/etcd_fixture.sh"
[[ -x /usr/bin/etcd ]] || { echo "SKIPPED: no etcd (apt-get install etcd-server)" >&2; exit 77; }
require_networks test_cluster_networks.sh

TTL=6 # heartbeats (which say where networks are realised) every TTL/3
CLUSTER=n$$
trap 'etcd_cleanup; cleanup' EXIT
fail_detail() { echo "(status $status: $(head -c 300 "$tmp/body"))"; }

on() { # on MEMBER METHOD PATH [JSON]
    local m=$1
    shift
    case $m in m1) api "$@" ;; m2) api2 "$@" ;; esac
}
# field MEMBER NETWORK FILTER: jq FILTER on the network as MEMBER shows it ("" when absent)
field() {
    on "$1" GET "/v1/networks/$2"
    [[ $status == 200 ]] && jbody "$3"
}
listed() { on "$1" GET /v1/networks; [[ $(jq --arg n "$2" '[.[] | select(.name == $n)] | length' "$tmp/body") == 1 ]]; }
bridge_mtu() { cat "/sys/class/net/$1/mtu" 2>/dev/null; }

# A one-member etcd: the members' agreement is what is tested here, not etcd's.
etcd_start_one || { echo "FAIL etcd did not start"; exit 1; }

member() { # member N [serve flags]
    local n=$1 port=$((PORT + $1 - 1))
    shift
    set -- --cluster-etcd "$ETCD_ENDPOINTS" --cluster-name "$CLUSTER" --cluster-member "m$n" \
        --cluster-lease-ttl $TTL --listen "127.0.0.1:$port" --advertise "https://127.0.0.1:$port" "$@"
    if [[ $n == 1 ]]; then start_daemon "$@"; else start_daemon2 "$@"; fi
}
member 1 --default-network auto || exit 1
on m1 POST /v1/cluster/join-tokens '{"ttl_s":600}'
member 2 --cluster-join-token "$(jbody .token)" || exit 1
B1=$NETPFX-cn1 B2=$NETPFX2-cn1

# --- the default network -------------------------------------------------------------
wait_for $((TTL / 3 + 2)) is m1 field m2 default '.members | join(",")'
check "m1's first-start default network is the cluster's: m2 lists it, realised on m1" \
    $([[ $(field m2 default '.members | join(",")') == m1 && $(field m2 default .state) == defined &&
        -e /sys/class/net/$NETPFX-default ]]; echo $?)

# --- defined once ------------------------------------------------------------------
on m1 POST /v1/networks '{"name":"cn1","mtu":1500}'
cidr=$(jbody .cidr)
check "define cn1 through m1: 201, $cidr, defined, realised nowhere" \
    $([[ $status == 201 && $cidr == */24 && $(jbody .state) == defined && $(jbody '.members | length') == 0 ]]; echo $?)
check "defining is not realising: no bridge on m1" $([[ ! -e /sys/class/net/$B1 ]]; echo $?)
t0=$SECONDS
wait_for 2 listed m2 cn1
check "m2 lists cn1 within 2 s ($((SECONDS - t0)) s), same cidr" \
    $(listed m2 cn1 && [[ $(field m2 cn1 .cidr) == "$cidr" ]]; echo $?)
on m2 POST /v1/networks '{"name":"cn1"}'
check "the same name through m2: 409" $([[ $status == 409 && $(jbody .detail) == *"network 'cn1' exists"* ]]; echo $?)
on m2 POST /v1/networks "{\"name\":\"cn2\",\"cidr\":\"$cidr\"}"
check "another network on cn1's cidr: 409 naming cn1" $([[ $status == 409 && $(jbody .detail) == *cn1* ]]; echo $?)
# Two members define a network at the same moment, each picking a free /24: they may pick
# the same one, and then only one may win (the other's etcd transaction sees the change).
race() { # MEMBER NAME: POST, writing "<status> <detail>" to $tmp/race.NAME
    local sock=$SOCK
    [[ $1 == m2 ]] && sock=$SOCK2
    curl -s -o "$tmp/race.$2.body" -w '%{http_code}' -X POST --unix-socket "$sock" \
        -H 'Content-Type: application/json' --data-binary "{\"name\":\"$2\"}" \
        http://vmmd/v1/networks >"$tmp/race.$2"
}
race m1 ra &
pa=$!
race m2 rb &
wait $pa $!
ra=$(cat "$tmp/race.ra") rb=$(cat "$tmp/race.rb")
cidr_a=$(jq -r .cidr "$tmp/race.ra.body") cidr_b=$(jq -r .cidr "$tmp/race.rb.body")
check "two defined at once (m1 $ra, m2 $rb): never two on one cidr" \
    $([[ ($ra == 201 && $rb == 201 && $cidr_a != "$cidr_b") ||
        ($ra == 201 && $rb == 409 && $(jq -r .detail "$tmp/race.rb.body") == *"changed meanwhile"*) ||
        ($ra == 409 && $rb == 201 && $(jq -r .detail "$tmp/race.ra.body") == *"changed meanwhile"*) ]]; echo $?)
[[ $ra$rb == 201201 ]] || echo "(the refused one: $(cat "$tmp/race.ra.body" "$tmp/race.rb.body" | jq -rs 'map(.detail // empty) | join(" ")'))"
for n in ra rb; do on m1 DELETE "/v1/networks/$n"; done

# --- realised where a VM needs it -----------------------------------------------------
on m2 POST /v1/vms "$(vm_json web idle '"member":"m2","nics":[{"network":"cn1"}]')"
check "a VM on cn1 created on m2: 201" $([[ $status == 201 ]]; echo $?)
check "m2 realised cn1: its bridge $B2 exists" $([[ -e /sys/class/net/$B2 ]]; echo $?)
check "m1 did not: no $B1" $([[ ! -e /sys/class/net/$B1 ]]; echo $?)
curl -s -m 1 --unix-socket "$SOCK2" "http://vmmd/v1/events?since=0&local=1" >"$tmp/stream"
check "a network.realised event on m2" \
    $(grep -A1 '^event: network.realised' "$tmp/stream" | grep -q '"network":"cn1","member":"m2"'; echo $?)
check "m2 shows its realisation: active on $B2" \
    $([[ $(field m2 cn1 .state) == active && $(field m2 cn1 .bridge) == "$B2" ]]; echo $?)
t0=$SECONDS
wait_for $((TTL / 3 + 2)) is m2 field m1 cn1 '.members | join(",")'
check "m1 sees members [m2] (a heartbeat later: $((SECONDS - t0)) s), cn1 defined there" \
    $([[ $(field m1 cn1 '.members | join(",")') == m2 && $(field m1 cn1 .state) == defined ]]; echo $?)
if [[ -n $VMCTL ]]; then
    VMMD_SOCKET=$SOCK NO_COLOR=1 "$VMCTL" network list >"$tmp/out" 2>&1
    check "vmctl network list: a MEMBERS column with m2" \
        $(head -n 1 "$tmp/out" | grep -q MEMBERS && grep -q '^cn1 .* m2 *$' "$tmp/out"; echo $?)
fi

# --- delete while used, change --------------------------------------------------------
on m1 DELETE /v1/networks/cn1
check "delete through m1 while m2's VM uses it: 409 naming VM and member" \
    $([[ $status == 409 && $(jbody .detail) == *"web (member m2)"* ]]; echo $?)
on m1 GET /v1/networks/cn1/leases
check "its leases through m1, which did not realise it: 404 naming m2" \
    $([[ $status == 404 && $(jbody .detail) == *"not realised on member m1"*"(m2)" ]]; echo $?)
on m1 PATCH /v1/networks/cn1 '{"mtu":1400}'
check "PATCH through m1: 200, mtu 1400" $([[ $status == 200 && $(jbody .mtu) == 1400 ]]; echo $?)
t0=$SECONDS
wait_for 3 is 1400 bridge_mtu "$B2"
check "the change reaches m2's realisation ($B2 mtu $(bridge_mtu "$B2") after $((SECONDS - t0)) s)" \
    $([[ $(bridge_mtu "$B2") == 1400 && $(field m2 cn1 .mtu) == 1400 ]]; echo $?)

# --- deleted once nothing uses it --------------------------------------------------------
on m2 DELETE /v1/vms/web
# m1 knows the VM went once m2 published it and m1 polled (about a second).
delete_cn1() { on m1 DELETE /v1/networks/cn1; [[ $status == 204 ]]; }
wait_for 3 delete_cn1
check "delete through m1 once the VM is gone: 204" $([[ $status == 204 ]]; echo $?)
t0=$SECONDS
wait_for 3 test ! -e "/sys/class/net/$B2"
check "m2's realisation goes ($((SECONDS - t0)) s)" $([[ ! -e /sys/class/net/$B2 ]]; echo $?)
wait_for 2 eval '! listed m2 cn1'
check "listed by neither member" $(! listed m1 cn1 && ! listed m2 cn1; echo $?)
on m1 GET /v1/networks/cn1
check "GET cn1: 404" $([[ $status == 404 ]]; echo $?)
curl -s -m 1 --unix-socket "$SOCK" "http://vmmd/v1/events?since=0&local=1" >"$tmp/stream"
check "m1 (which took the requests) recorded network.created, .updated, .deleted of cn1" \
    $(for e in created updated deleted; do
        grep -A1 "^event: network.$e" "$tmp/stream" | grep -q '"name":"cn1"' || exit 1
      done; echo $?)

# --- a member that was down when the definition went ---------------------------------
on m1 POST /v1/networks '{"name":"cn2"}'
wait_for 2 listed m2 cn2
on m2 POST /v1/vms "$(vm_json db idle '"member":"m2","nics":[{"network":"cn2"}]')"
on m2 DELETE /v1/vms/db
check "cn2 realised on m2 by a VM, the VM deleted" $([[ $status == 204 && -e /sys/class/net/$NETPFX2-cn2 ]]; echo $?)
# m2's record of the VM's deletion is out (m1 lists it no more) before m2 goes.
vm_listed() { on m1 GET /v1/vms; [[ $(jq --arg n "$1" '[.[] | select(.name == $n)] | length' "$tmp/body") != 0 ]]; }
wait_for 3 eval '! vm_listed db'
kill -9 "$daemon2_pid"
delete_cn2() { on m1 DELETE /v1/networks/cn2; [[ $status == 204 ]]; }
wait_for 3 delete_cn2
check "cn2 deleted through m1 while m2 is down: 204" $([[ $status == 204 ]]; echo $?)
member 2 || exit 1
t0=$SECONDS
wait_for 3 test ! -e "/sys/class/net/$NETPFX2-cn2"
check "m2 restarted removes its realisation of cn2 ($((SECONDS - t0)) s after it answered)" \
    $([[ ! -e /sys/class/net/$NETPFX2-cn2 ]] && ! listed m2 cn2; echo $?)

# --- realised at a start: a VM handed over by an evacuation -----------------------------
# cn4 is realised on m1 by its VM h; m1 is evacuated, h (stopped) is handed over to m2, and
# m2 realises cn4 when h starts. m1's realisation stays (its definition does): its bridge's
# address is flushed first, as on one host m2 would refuse a subnet routed to m1's bridge.
on m1 POST /v1/networks '{"name":"cn4"}'
on m1 POST /v1/vms "$(vm_json h idle '"member":"m1","nics":[{"network":"cn4"}]')"
check "a VM h on cn4 created on m1 realises it there" $([[ $status == 201 && -e /sys/class/net/$NETPFX-cn4 ]]; echo $?)
ip addr flush dev "$NETPFX-cn4"
# (placement knows cn4 from m1's next poll: until then no member "has" it)
evacuate_m1() { on m1 POST /v1/cluster/members/m1/evacuate; [[ $status == 202 ]]; }
wait_for 3 evacuate_m1
vm_on_m2() { on m2 GET /v1/vms/h; [[ $(jbody .member) == m2 && $(jbody .state) == stopped ]]; }
wait_for 5 vm_on_m2
check "evacuating m1 hands h over to m2, which has no cn4 yet" \
    $(vm_on_m2 && [[ ! -e /sys/class/net/$NETPFX2-cn4 ]]; echo $?)
on m2 POST /v1/vms/h/start
check "h starts on m2, which realises cn4 for it first" \
    $([[ $status == 200 && -e /sys/class/net/$NETPFX2-cn4 && $(field m2 cn4 .state) == active ]]; echo $?)
on m2 POST /v1/vms/h/stop

# --- a definition in etcd that is not valid (written behind the members' backs) ---------
etcd_ctl put "/vmmd/$CLUSTER/networks/bad" '{"name":"bad","cidr":"10.1.2.3/99","mtu":1}' >/dev/null
wait_for 2 listed m2 bad
on m2 POST /v1/vms "$(vm_json onbad idle '"member":"m2","nics":[{"network":"bad"}]')"
check "a VM on it: 409, the definition is not valid, nothing realised" \
    $([[ $status == 409 && $(jbody .detail) == *"definition of network 'bad' is not valid"* &&
        ! -e /sys/class/net/$NETPFX2-bad ]]; echo $?)

# --- etcd gone: read-only ------------------------------------------------------------------
etcd_kill 1
writable() { on m1 GET /v1/cluster; jbody .writable; }
wait_for 10 is false writable
on m1 POST /v1/networks '{"name":"cn3"}'
check "etcd gone: POST /v1/networks 503 read-only" \
    $([[ $status == 503 && $(jbody .detail) == "the cluster is read-only"* ]]; echo $?)
finish
