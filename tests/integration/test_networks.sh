#!/bin/bash
# Managed networks against a real daemon, a real bridge, nftables and dnsmasq
# (issue 13). The guests are network namespaces plugged into the networks'
# bridges with veth pairs, each with a VM's MAC address, running busybox's
# udhcpc, nslookup, ping, httpd and nc: real DHCP leases, DNS names, NAT,
# isolation and port forwards, without booting anything. A second namespace
# behind its own veth stands in for the outside world. Then the restart
# rules: kill -9 of the daemon, a dead dnsmasq, a deleted bridge and table.
# Usage: test_networks.sh VMMD GUESTS
# No pipefail: a check is the status of the grep at the end of its pipe, and a
# grep -q that stops reading early must not fail it by its writer's SIGPIPE.
set -u
VMMD=$1 GUESTS=$2
. "$(dirname "$0")/daemon_fixture.sh"

for t in nft dnsmasq busybox ip; do
    if ! command -v "$t" >/dev/null && ! [[ -x /usr/sbin/$t ]]; then
        echo "SKIPPED: $t is not installed (scripts/setup.sh installs it); the network checks did not run" >&2
        exit 77
    fi
done
if [[ $(id -u) -ne 0 ]] || ! ip netns add "${NETPFX}probe" 2>/dev/null; then
    echo "SKIPPED: cannot create network namespaces here (needs root); the network checks did not run" >&2
    exit 77
fi
ip netns del "${NETPFX}probe"

NS=() # the namespaces this test made
cleanup_ns() {
    local n
    for n in "${NS[@]}"; do
        ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null
        ip netns del "$n" 2>/dev/null
    done
    ip link del "${NETPFX}o" 2>/dev/null
}
trap 'cleanup_ns; cleanup' EXIT

# guest NAME BRIDGE MAC: a namespace on BRIDGE whose interface has MAC.
guest() {
    local ns=$NETPFX$1 host=${NETPFX}h$1
    NS+=("$ns")
    ip netns add "$ns"
    ip link add "$host" type veth peer name eth0 netns "$ns"
    ip link set "$host" master "$2" up
    ip netns exec "$ns" ip link set eth0 address "$3"
    ip netns exec "$ns" ip link set eth0 up
    ip netns exec "$ns" ip link set lo up
}
in_ns() { local n=$NETPFX$1; shift; ip netns exec "$n" "$@"; }

# udhcpc calls this with the lease in its environment: the address, the route, the file.
cat > "$tmp/udhcpc.sh" <<'EOF'
#!/bin/sh
case $1 in
bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    for r in $router; do ip route add default via "$r"; break; done
    echo "$ip $hostname $router" > "/tmp/lease-$interface-$(cat /proc/sys/kernel/hostname)"
    ;;
esac
EOF
chmod +x "$tmp/udhcpc.sh"
# dhcp NAME: a lease for the namespace; prints "ip hostname router".
dhcp() {
    in_ns "$1" busybox udhcpc -i eth0 -n -q -t 8 -T 1 -A 1 -s "$tmp/udhcpc.sh" >/dev/null 2>&1 || return 1
    in_ns "$1" ip -4 -o addr show dev eth0 | awk '{print $4}'
}

event_seen() { # type: in the event log since the start (the stream never ends: -m)
    curl -s -m 1 --unix-socket "$SOCK" "http://vmmd/v1/events?since=0" > "$tmp/events" 2>/dev/null
    grep -q "^event: $1$" "$tmp/events"
}

start_daemon --default-network auto || exit 1

# --- the default network on the first start ---------------------------------------
api GET /v1/networks
check "first start: a default NAT network" \
    $([[ $status == 200 && $(jbody '.[0].name') == default && $(jbody '.[0].nat') == true &&
         $(jbody '.[0].state') == active ]]; echo $?)
DEF_BR=$(jbody '.[0].bridge') DEF_GW=$(jbody '.[0].gateway') DEF_CIDR=$(jbody '.[0].cidr')
check "its bridge holds the gateway address" \
    $(ip -4 -o addr show dev "$DEF_BR" | grep -q " $DEF_GW/"; echo $?)
check "the bridge's name is the prefix and the network" $([[ $DEF_BR == "$NETPFX-default" ]]; echo $?)
check "its CIDR overlaps no route the host had" \
    $(! ip -4 route | grep -v " dev $DEF_BR " | grep -q "^${DEF_CIDR%.*/*}"; echo $?)
check "dnsmasq runs on its own configuration, bound to the bridge" \
    $(pid=$(jbody '.[0].dnsmasq_pid'); grep -q "dnsmasq" "/proc/$pid/cmdline" &&
      grep -qx "interface=$DEF_BR" "$STATE/networks/default/dnsmasq.conf" &&
      grep -qx "except-interface=lo" "$STATE/networks/default/dnsmasq.conf"; echo $?)
nft list table inet "$NETPFX" > "$tmp/nft" 2>&1
check "the firewall table masquerades the network" \
    $(grep -q "ip saddr $DEF_CIDR ip daddr != $DEF_CIDR masquerade" "$tmp/nft"; echo $?)

# --- bad requests change nothing --------------------------------------------------
api POST /v1/networks '{"name":"bad","cidr":"10.99.0.1/24"}'
check "cidr with host bits: 422 naming cidr" $([[ $status == 422 && $(jbody .detail) == cidr:* ]]; echo $?)
api POST /v1/networks '{"name":"bad","cidr":"10.99.0.0/8"}'
check "a /8: 422" $([[ $status == 422 ]]; echo $?)
api POST /v1/networks '{"name":"bad","cidr":"10.99.0.0/24","vlan":7}'
check "an unknown field: 400 naming it" $([[ $status == 400 && $(jbody .detail) == vlan:* ]]; echo $?)
api POST /v1/networks '{"name":"bad",'
check "malformed JSON: 400" $([[ $status == 400 ]]; echo $?)
api POST /v1/networks "{\"name\":\"bad\",\"cidr\":\"${DEF_CIDR%/*}/25\"}"
check "overlapping another network: 409 naming it" \
    $([[ $status == 409 && $(jbody .detail) == *"network 'default'"* ]]; echo $?)
route=$(ip -4 route | awk '$1 ~ /\/[0-9]+$/ && $0 !~ /'"$NETPFX"'-/ {print $1, $3; exit}')
if [[ -n $route ]]; then
    api POST /v1/networks "{\"name\":\"bad\",\"cidr\":\"${route% *}\"}"
    check "overlapping a host route: 409 naming the route" \
        $([[ $status == 409 && $(jbody .detail) == *"host's route ${route% *} on ${route#* }"* ]]; echo $?)
fi
api POST /v1/networks '{"name":"default","cidr":"10.99.0.0/24"}'
check "a taken name: 409" $([[ $status == 409 ]]; echo $?)
api GET /v1/networks
check "nothing was made by the refused requests" \
    $([[ $(jbody 'length') == 1 ]] && ! ip link show "$NETPFX-bad" >/dev/null 2>&1; echo $?)

# --- an isolated network ----------------------------------------------------------
api POST /v1/networks '{"name":"iso","cidr":"10.99.7.0/28","nat":false,"dns_domain":"iso.lab"}'
check "an isolated network: 201 with its Location" $([[ $status == 201 && $(jbody .nat) == false ]]; echo $?)
ISO_BR=$(jbody .bridge) ISO_GW=$(jbody .gateway)
nft list table inet "$NETPFX" > "$tmp/nft" 2>&1
check "no masquerade for it, and its traffic out is dropped" \
    $(! grep -q "10.99.7.0/28 ip daddr != 10.99.7.0/28 masquerade" "$tmp/nft" &&
      grep -q "iifname \"$ISO_BR\" drop" "$tmp/nft" && ! grep -q "iifname \"$ISO_BR\" ip saddr" "$tmp/nft"; echo $?)
check "no forwarding between two vmmd networks" \
    $(grep -Eq "iifname \"$DEF_BR\" oifname (\{ )?\"$ISO_BR\"( \})? drop" "$tmp/nft"; echo $?)
check "isolated: dnsmasq offers no router and asks nobody upstream" \
    $(grep -qx "dhcp-option=option:router" "$STATE/networks/iso/dnsmasq.conf" &&
      grep -qx "no-resolv" "$STATE/networks/iso/dnsmasq.conf"; echo $?)

# --- VMs with NICs on networks ----------------------------------------------------
NET=${DEF_CIDR%.*/*}  # the first three octets of a /24
api POST /v1/vms "$(vm_json web idle "\"nics\":[{\"network\":\"default\",\"ip\":\"$NET.10\",\"mac\":\"52:54:00:aa:00:10\"}]")"
check "a VM with a static ip: 201" $([[ $status == 201 ]]; echo $?)
api POST /v1/vms "$(vm_json db idle "\"nics\":[{\"network\":\"default\",\"mac\":\"52:54:00:aa:00:11\"}]")"
check "a VM with a dynamic lease: 201" $([[ $status == 201 ]]; echo $?)
api POST /v1/vms "$(vm_json cell idle "\"nics\":[{\"network\":\"iso\",\"ip\":\"10.99.7.5\",\"mac\":\"52:54:00:aa:00:12\"}]")"
api POST /v1/vms "$(vm_json dup idle "\"nics\":[{\"network\":\"default\",\"ip\":\"$NET.10\"}]")"
check "the same ip again: 409 naming the VM that has it" \
    $([[ $status == 409 && $(jbody .detail) == *"taken by VM 'web'"* ]]; echo $?)
api POST /v1/vms "$(vm_json dup idle "\"nics\":[{\"network\":\"default\",\"ip\":\"10.98.0.10\"}]")"
check "an ip outside the network: 422" $([[ $status == 422 && $(jbody .detail) == nics\[0\].ip:* ]]; echo $?)
api POST /v1/vms "$(vm_json dup idle "\"nics\":[{\"network\":\"default\",\"ip\":\"$DEF_GW\"}]")"
check "the gateway's ip: 422" $([[ $status == 422 ]]; echo $?)
api POST /v1/vms "$(vm_json dup idle "\"nics\":[{\"network\":\"nowhere\"}]")"
check "an unknown network: 422 naming it" $([[ $status == 422 && $(jbody .detail) == *"no network named 'nowhere'"* ]]; echo $?)
check "dnsmasq knows the static lease and the name" \
    $(grep -qx "dhcp-host=52:54:00:aa:00:10,$NET.10,web" "$STATE/networks/default/dnsmasq.conf" &&
      grep -qx "dhcp-host=52:54:00:aa:00:11,db" "$STATE/networks/default/dnsmasq.conf"; echo $?)
api DELETE /v1/networks/default
check "deleting a network VMs use: 409 naming them" \
    $([[ $status == 409 && $(jbody .detail) == *web* && $(jbody .detail) == *db* ]]; echo $?)

# --- real DHCP, DNS, ping, NAT, isolation through namespaces -----------------------
guest web "$DEF_BR" 52:54:00:aa:00:10
guest db "$DEF_BR" 52:54:00:aa:00:11
guest cell "$ISO_BR" 52:54:00:aa:00:12
got=$(dhcp web)
check "web gets its static address by DHCP" $([[ $got == "$NET.10/24" ]]; echo $?)
got=$(dhcp db)
check "db gets a dynamic lease in the range" $([[ $got == "$NET".*/24 && $got != "$NET.10/24" ]]; echo $?)
DB_IP=${got%/*}
api GET /v1/networks/default/leases
check "leases: both, matched to their VMs" \
    $([[ $status == 200 && $(jbody "[.[] | select(.vm == \"web\" and .ip == \"$NET.10\" and .static)] | length") == 1 &&
         $(jbody "[.[] | select(.vm == \"db\" and .ip == \"$DB_IP\")] | length") == 1 ]]; echo $?)
check "web resolves db by name" \
    $(in_ns web busybox nslookup db.vmmd "$DEF_GW" 2>/dev/null | grep -q "$DB_IP"; echo $?)
check "db resolves web by name" \
    $(in_ns db busybox nslookup web.vmmd "$DEF_GW" 2>/dev/null | grep -q "$NET.10"; echo $?)
check "web pings db" $(in_ns web busybox ping -c 1 -W 2 "$DB_IP" >/dev/null 2>&1; echo $?)

# The outside: a namespace behind a veth of the host's, with no route back to any network.
NS+=("${NETPFX}out")
ip netns add "${NETPFX}out"
ip link add "${NETPFX}o" type veth peer name eth0 netns "${NETPFX}out"
ip addr add 198.51.100.1/24 dev "${NETPFX}o"
ip link set "${NETPFX}o" up
in_ns out ip addr add 198.51.100.2/24 dev eth0
in_ns out ip link set eth0 up
check "NAT: web reaches the outside (masqueraded: outside has no route back)" \
    $(in_ns web busybox ping -c 1 -W 2 198.51.100.2 >/dev/null 2>&1; echo $?)
got=$(dhcp cell)
check "the isolated VM gets its lease, and no router" \
    $([[ $got == 10.99.7.5/28 ]] && ! in_ns cell ip route | grep -q default; echo $?)
in_ns cell ip route add default via "$ISO_GW"
check "isolated: it cannot reach outside even with a route" \
    $(! in_ns cell busybox ping -c 1 -W 2 198.51.100.2 >/dev/null 2>&1; echo $?)
check "isolated: nor the other network" $(! in_ns cell busybox ping -c 1 -W 2 "$NET.10" >/dev/null 2>&1; echo $?)

# --- port forwards ------------------------------------------------------------------
mkdir -p "$tmp/www" && echo "hello from web" > "$tmp/www/index.html"
in_ns web busybox httpd -p 80 -h "$tmp/www"
api POST /v1/networks/default/forwards '{"host_port":18080,"vm":"web","vm_port":80}'
check "a forward: 201 with the VM's address" \
    $([[ $status == 201 && $(jbody .vm_ip) == "$NET.10" && $(jbody .protocol) == tcp ]]; echo $?)
FWD=$(jbody .id)
check "the host reaches web's httpd through the forward" \
    $(curl -s -m 5 "http://198.51.100.1:18080/" | grep -q "hello from web"; echo $?)
check "the outside reaches it too (prerouting)" \
    $(in_ns out curl -s -m 5 "http://198.51.100.1:18080/" | grep -q "hello from web"; echo $?)
api POST /v1/networks/default/forwards '{"host_port":18080,"vm":"web","host_address":"198.51.100.1"}'
check "the same host port again: 409" $([[ $status == 409 ]]; echo $?)
api POST /v1/networks/default/forwards '{"host_port":18081,"vm":"db"}'
check "a forward to a VM without a static ip: 409" $([[ $status == 409 ]]; echo $?)
api POST /v1/networks/default/forwards '{"host_port":0,"vm":"web"}'
check "port 0: 422" $([[ $status == 422 ]]; echo $?)
api GET /v1/networks/default/forwards
check "forwards: listed" $([[ $(jbody 'length') == 1 ]]; echo $?)
check "events: created, forward added" \
    $(event_seen network.created && event_seen network.forward_added; echo $?)
curl -s --unix-socket "$SOCK" http://vmmd/metrics > "$tmp/metrics"
check "/metrics: leases and forwards per network" \
    $(grep -q '^vmmd_network_leases{network="default"} 2$' "$tmp/metrics" &&
      grep -q '^vmmd_network_forwards{network="default"} 1$' "$tmp/metrics" &&
      grep -q '^vmmd_network_up{network="iso",' "$tmp/metrics"; echo $?)

# --- a VM's NIC joins the bridge (needs KVM) ---------------------------------------
if [[ -c /dev/kvm && -w /dev/kvm ]]; then
    api POST /v1/vms/web/start
    check "a VM on a network starts; its tap joins the bridge" \
        $(wait_state web running && ls "/sys/class/net/$DEF_BR/brif/" | grep -q "^vmmd"; echo $?)
    api POST /v1/vms/web/stop
    wait_state web stopped
else
    echo "SKIPPED (loudly): no /dev/kvm; a VM joining its network's bridge was not checked"
fi

# --- restarts: kill -9, a dnsmasq that died, a bridge and a table that went -------
DEF_PID=$(cat "$STATE/networks/default/dnsmasq.pid")
kill -9 "$daemon_pid"; wait "$daemon_pid" 2>/dev/null
kill -9 "$(cat "$STATE/networks/iso/dnsmasq.pid")"
ip link del "$ISO_BR"
nft delete table inet "$NETPFX"
start_daemon || exit 1
api GET /v1/networks/default
check "after kill -9: default's dnsmasq was adopted, not restarted" \
    $([[ $(jbody .dnsmasq_pid) == "$DEF_PID" && $(jbody .state) == active ]]; echo $?)
api GET /v1/networks/iso
check "iso's dead dnsmasq was started again" \
    $([[ $(jbody .state) == active && $(jbody .dnsmasq_pid) != null && $(jbody .dnsmasq_pid) != "$DEF_PID" ]]; echo $?)
check "and an event says so" $(event_seen network.dnsmasq_restarted; echo $?)
check "the deleted bridge is back with its address" \
    $(ip -4 -o addr show dev "$ISO_BR" 2>/dev/null | grep -q " $ISO_GW/"; echo $?)
check "the firewall table is rebuilt with the forward" \
    $(nft list table inet "$NETPFX" 2>/dev/null | grep -q "dport 18080 dnat ip to $NET.10:80"; echo $?)
check "the forward works again" $(curl -s -m 5 "http://198.51.100.1:18080/" | grep -q "hello from web"; echo $?)
check "no default network made again" $(api GET /v1/networks; [[ $(jbody 'length') == 2 ]]; echo $?)

pid=$(cat "$STATE/networks/default/dnsmasq.pid")
kill -9 "$pid"
for _ in $(seq 50); do
    api GET /v1/networks/default
    [[ $(jbody .dnsmasq_restarts) == 1 ]] && break
    sleep 0.1
done
check "a dnsmasq killed while the daemon runs is restarted" \
    $([[ $(jbody .dnsmasq_restarts) == 1 && $(jbody .dnsmasq_pid) != "$pid" && $(jbody .state) == active ]]; echo $?)
got=$(dhcp db)
check "and serves: db renews its lease" $([[ $got == "$DB_IP/24" ]]; echo $?)

# --- changes and deletion -----------------------------------------------------------
api PATCH /v1/networks/iso '{"mtu":1400,"nat":true}'
check "PATCH: mtu and nat applied at once" \
    $([[ $status == 200 && $(cat "/sys/class/net/$ISO_BR/mtu") == 1400 ]] &&
      nft list table inet "$NETPFX" | grep -q "10.99.7.0/28 ip daddr != 10.99.7.0/28 masquerade"; echo $?)
api PATCH /v1/networks/iso '{"cidr":"10.99.8.0/28"}'
check "PATCH cidr: 422" $([[ $status == 422 ]]; echo $?)
api DELETE "/v1/networks/default/forwards/$FWD"
check "a forward deleted: 204, its rule gone" \
    $([[ $status == 204 ]] && ! nft list table inet "$NETPFX" | grep -q "dport 18080"; echo $?)
api DELETE /v1/vms/cell
iso_pid=$(cat "$STATE/networks/iso/dnsmasq.pid")
api DELETE /v1/networks/iso
check "deleting an unused network: 204; bridge, dnsmasq, files and rules gone" \
    $([[ $status == 204 ]] && ! ip link show "$ISO_BR" >/dev/null 2>&1 && ! alive "$iso_pid" &&
      [[ ! -e $STATE/networks/iso ]] && ! nft list table inet "$NETPFX" | grep -q "$ISO_BR"; echo $?)
check "the other network's guests are undisturbed" $(in_ns web busybox ping -c 1 -W 2 "$DB_IP" >/dev/null 2>&1; echo $?)

# --- --no-networks: the operator runs the host's networking ------------------------
kill -TERM "$daemon_pid"; wait "$daemon_pid"
check "SIGTERM ends a daemon that has networks" $?
start_daemon --no-networks || exit 1
api POST /v1/networks '{"name":"other","cidr":"10.99.9.0/24"}'
check "--no-networks: creating a network is 503 saying why" \
    $([[ $status == 503 && $(jbody .detail) == *"--no-networks"* ]] && ! ip link show "$NETPFX-other" >/dev/null 2>&1; echo $?)
api GET /v1/networks/default
check "--no-networks: a stored network shows as not managed" \
    $([[ $(jbody .state) == error && $(jbody .error) == *"--no-networks"* ]]; echo $?)
finish
