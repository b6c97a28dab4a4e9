#!/bin/bash
# Integration: `vmctl network ...` against a real vmmd with managed networks
# (issue 13). Every network verb in both output formats, the refusals and
# their exit codes (1 with the API's detail, 2 for usage), a VM with a NIC
# on a network with a static ip (vmctl create --nic network=,ip=) and one
# with a dynamic address, vmctl show printing each NIC's network and ip, a
# port forward's life, a delete refused while a VM uses the network, the
# network events in vmctl events, and bash completion of network names. On
# the host: the bridge, its address and the dnsmasq exist while the network
# does and are gone after its delete. Needs root, nft and dnsmasq (a loud skip otherwise);
# no /dev/kvm (no VM is started).
# Usage: test_vmctl_networks.sh VMCTL VMMD GUEST_DIR
set -uo pipefail

VMCTL=$1
VMMD=$2
GUESTS=$(cd "$3" && pwd)
. "$(dirname "${BASH_SOURCE[0]}")/daemon_fixture.sh"
. "$(dirname "${BASH_SOURCE[0]}")/vmctl_fixture.sh"

require_networks "the vmctl network tests"

# --- usage errors, before the daemon --------------------------------------------
v network
check "network without a subcommand -> exit 2 listing them" $([[ $rc == 2 ]] && grep -q "forward add" "$tmp/err"; echo $?)
v network frobnicate
check "unknown network subcommand -> exit 2" $([[ $rc == 2 ]]; echo $?)
v network --help
check "network --help lists the subcommands, exit 0" $([[ $rc == 0 ]] && grep -q "^Usage: vmctl network" "$tmp/out" && grep -q leases "$tmp/out"; echo $?)
all_help=0
for c in list show create set delete leases "forward add" "forward list" "forward delete"; do
    # shellcheck disable=SC2086
    "$VMCTL" network $c --help >"$tmp/out" 2>&1 && grep -q "Usage: vmctl network $c" "$tmp/out" || { all_help=1; echo "  no help for network $c"; }
done
rc=0
check "--help for every network subcommand" $all_help
v network show
check "network show without NAME -> exit 2" $([[ $rc == 2 ]]; echo $?)
v network create lab --mtu lots
check "network create --mtu not a number -> exit 2" $([[ $rc == 2 ]]; echo $?)
v network forward add lab 0 web
check "forward add with port 0 -> exit 2" $([[ $rc == 2 ]]; echo $?)
v network forward add lab 8080 web:http
check "forward add VM:PORT not a port -> exit 2" $([[ $rc == 2 ]]; echo $?)
v network forward add lab 8080 web --protocol sctp
check "forward add --protocol sctp -> exit 2" $([[ $rc == 2 ]]; echo $?)
v network set lab nat=maybe
check "network set nat=maybe -> exit 2" $([[ $rc == 2 ]]; echo $?)
v create x --kernel "$GUESTS/guest-idle.elf" --nic tap=t0,network=lab
check "create --nic with two kinds -> exit 2" $([[ $rc == 2 ]] && grep -q "exactly one" "$tmp/err"; echo $?)
v create x --kernel "$GUESTS/guest-idle.elf" --nic bridge=br0,ip=10.0.0.2
check "create --nic ip= without network= -> exit 2" $([[ $rc == 2 ]]; echo $?)
v network list
check "daemon down -> exit 3" $([[ $rc == 3 ]]; echo $?)

# The fixture's daemon has no default network and a prefix of its own ($NETPFX), whose
# bridges, table and dnsmasqs its cleanup removes whatever fails.
start_daemon || exit 1

# --- create, list, show ------------------------------------------------------------
v network list -o json
check "no networks at first (--default-network none)" $([[ $rc == 0 && $(jq length "$tmp/out") == 0 ]]; echo $?)
# A /24 the host has no route for, found the way the daemon does (ip route).
cidr=
for i in $(seq 200 250); do
    ip route show to match "10.$i.7.1" | grep -q "^10\." && continue
    ip route show | grep -q "^10\.$i\." && continue
    cidr=10.$i.7.0/24 && break
done
base=${cidr%.0/24}
v network create lab --cidr "$cidr"
check "network create (table)" $([[ $rc == 0 ]] && grep -q "^name: *lab" "$tmp/out" && grep -q "^cidr: *$cidr" "$tmp/out" && grep -q "^bridge: *$NETPFX-lab" "$tmp/out" && grep -q "^gateway: *$base.1" "$tmp/out"; echo $?)
check "the bridge exists, up, with the gateway's address" \
    $(ip -o addr show dev "$NETPFX-lab" 2>/dev/null | grep -q "inet $base.1/24"; echo $?)
v network create iso --no-nat --no-dhcp --mtu 1400 --dns-domain test -o json
check "network create --no-nat --no-dhcp --mtu --dns-domain (json), the daemon picks the CIDR" \
    $([[ $rc == 0 && $(jout .nat) == false && $(jout .dhcp) == false && $(jout .mtu) == 1400 && $(jout .dns_domain) == test && $(jout .dhcp_range) == null && $(jout .cidr) =~ /24$ ]]; echo $?)
v network create lab --cidr "$cidr"
check "a taken name -> exit 1 with the API's detail" $([[ $rc == 1 ]] && grep -q lab "$tmp/err"; echo $?)
v network create lab2 --cidr "$cidr"
check "an overlapping CIDR -> exit 1 naming the network" $([[ $rc == 1 ]] && grep -q lab "$tmp/err"; echo $?)
v network create bad --cidr "$base.1/24"
check "host bits in the CIDR -> exit 1 naming cidr" $([[ $rc == 1 ]] && grep -q cidr "$tmp/err"; echo $?)
v network list
check "network list (table, header, both rows)" $([[ $rc == 0 ]] && head -1 "$tmp/out" | grep -q "^NAME *STATE *CIDR *BRIDGE *NAT *DHCP *LEASES" && grep -Eq "^iso +active .* no +no " "$tmp/out" && grep -Eq "^lab +active +$cidr +$NETPFX-lab +yes +yes +0 " "$tmp/out"; echo $?)
v network list -o json
check "network list (json, sorted by name)" $([[ $rc == 0 && $(jq -r '[.[].name] | join(",")' "$tmp/out") == iso,lab ]]; echo $?)
v network show lab -o json
pid=$(jout .dnsmasq_pid)
check "network show (json): active, with its dnsmasq" $([[ $rc == 0 && $(jout .state) == active && $pid =~ ^[0-9]+$ ]] && alive "$pid"; echo $?)
v network show lab
check "network show (table)" $([[ $rc == 0 ]] && grep -q "^dhcp: *$base.2 - $base.254" "$tmp/out" && grep -q "^dnsmasq: *pid $pid" "$tmp/out"; echo $?)
v network show nope
check "network show of an unknown network -> exit 1" $([[ $rc == 1 ]] && grep -q nope "$tmp/err"; echo $?)

# --- set --------------------------------------------------------------------------
v network set iso nat=true mtu=1500
check "network set (table)" $([[ $rc == 0 ]] && grep -q "^nat: *yes" "$tmp/out" && grep -q "^mtu: *1500" "$tmp/out"; echo $?)
v network set iso mtu=100 -o json
check "network set out of range -> exit 1 naming mtu" $([[ $rc == 1 ]] && grep -q mtu "$tmp/err"; echo $?)
v network set iso cidr=10.1.0.0/24
check "network set cidr -> exit 1 (cannot change)" $([[ $rc == 1 ]] && grep -q cidr "$tmp/err"; echo $?)

# --- VMs on the network: static and dynamic, show -------------------------------------
v create web --kernel "$GUESTS/guest-idle.elf" --memory 32 --nic "network=lab,ip=$base.10,mac=52:54:00:12:34:56" -o json
check "create --nic network=,ip=,mac= (json)" $([[ $rc == 0 && $(jout '.nics[0].network') == lab && $(jout '.nics[0].ip') == "$base.10" ]]; echo $?)
v create db --kernel "$GUESTS/guest-idle.elf" --memory 32 --mode full --nic network=lab --nic bridge=vmmdnobr0
check "create a full-mode VM with a dynamic NIC and a bridge NIC" $([[ $rc == 0 ]] && grep -q "net0 network lab ip dhcp" "$tmp/out" && grep -q "net1 bridge vmmdnobr0" "$tmp/out"; echo $?)
v create web2 --kernel "$GUESTS/guest-idle.elf" --memory 32 --nic "network=lab,ip=$base.10"
check "another VM with the same static ip -> exit 1" $([[ $rc == 1 ]] && grep -q "$base.10" "$tmp/err"; echo $?)
v create web3 --kernel "$GUESTS/guest-idle.elf" --memory 32 --nic network=nope
check "a NIC on an unknown network -> exit 1 naming nics[0].network" $([[ $rc == 1 ]] && grep -q "nics\[0\].network" "$tmp/err"; echo $?)
v show web
check "show: the NIC's network, static ip and mac" $([[ $rc == 0 ]] && grep -q "^nics: *net0 network lab ip $base.10 mac 52:54:00:12:34:56" "$tmp/out"; echo $?)
# A lease as dnsmasq writes it (expiry, MAC, IP, hostname, client id) for db's NIC.
db_mac=$("$VMCTL" network show lab -o json | jq -r '.nics[] | select(.vm == "db") | .mac')
leases_file=$(find "$STATE/networks/lab" -name '*leases*' 2>/dev/null | head -1)
if [[ -n $leases_file && $db_mac =~ : ]]; then
    echo "$(($(date +%s) + 3600)) $db_mac $base.57 db *" >>"$leases_file"
    v show db
    check "show: a dynamic NIC's ip from its network's lease" $([[ $rc == 0 ]] && grep -q "net0 network lab ip $base.57 (lease)" "$tmp/out"; echo $?)
    v network leases lab
    check "network leases (table): the lease and its VM" $([[ $rc == 0 ]] && grep -Eq "^$db_mac +$base.57 +db +db +in " "$tmp/out"; echo $?)
    v network leases lab -o json
    check "network leases (json)" $([[ $rc == 0 && $(jout '.[0].vm') == db && $(jout '.[0].ip') == "$base.57" ]]; echo $?)
else
    echo "SKIPPED (loudly): no lease file under $STATE/networks/lab; the lease checks did not run"
    v network leases lab -o json
    check "network leases (json, none yet)" $([[ $rc == 0 && $(jq length "$tmp/out") == 0 ]]; echo $?)
fi
v network show lab -o json
check "network show lists the VM NICs on it" $([[ $(jout '[.nics[].vm] | sort | join(",")') == db,web && $(jout '.nics[] | select(.vm=="web") | .ip') == "$base.10" ]]; echo $?)

# --- port forwards --------------------------------------------------------------------
port=$((20000 + RANDOM % 20000))
v network forward add lab "$port" web:80
check "forward add (table)" $([[ $rc == 0 ]] && grep -q "^forward [0-9]* on lab: tcp \*:$port -> web $base.10:80" "$tmp/out"; echo $?)
fid=$(sed -n 's/^forward \([0-9]*\) .*/\1/p' "$tmp/out")
v network forward add lab "$((port + 1))" web --protocol udp --host-address 127.0.0.1 -o json
check "forward add --protocol udp --host-address (json; vm_port defaults to the host port)" \
    $([[ $rc == 0 && $(jout .protocol) == udp && $(jout .host_address) == 127.0.0.1 && $(jout .vm_port) == $((port + 1)) ]]; echo $?)
fid2=$(jout .id)
check "the forward is in the daemon's nftables table" $(nft list table inet "$NETPFX" 2>/dev/null | grep -q "$port"; echo $?)
v network forward add lab "$port" web:81
check "the same host port again -> exit 1" $([[ $rc == 1 && -s $tmp/err ]]; echo $?)
v network forward add lab "$((port + 2))" db:80
check "a VM without a static ip -> exit 1" $([[ $rc == 1 && -s $tmp/err ]]; echo $?)
v network forward list lab
check "forward list (table)" $([[ $rc == 0 ]] && head -1 "$tmp/out" | grep -q "^ID *PROTOCOL *HOST ADDRESS *HOST PORT *VM *VM IP *VM PORT" && grep -Eq "^$fid +tcp +\* +$port +web +$base.10 +80" "$tmp/out"; echo $?)
v network forward list lab -o json
check "forward list (json)" $([[ $rc == 0 && $(jq length "$tmp/out") == 2 ]]; echo $?)
v network forward delete lab "$fid2"
check "forward delete (table)" $([[ $rc == 0 ]] && grep -q "deleted forward $fid2 of lab" "$tmp/out"; echo $?)
v network forward delete lab "$fid2"
check "forward delete again -> exit 1" $([[ $rc == 1 ]]; echo $?)
v network forward delete lab notanumber
check "forward delete with a bad id -> exit 2" $([[ $rc == 2 ]]; echo $?)

# --- delete -------------------------------------------------------------------------
v network delete lab
check "delete while VMs use it -> exit 1 naming them" $([[ $rc == 1 ]] && grep -q web "$tmp/err" && grep -q db "$tmp/err"; echo $?)
v delete web
v delete db
v network delete lab -o json
check "delete (json: the API's empty body)" $([[ $rc == 0 && ! -s $tmp/out ]]; echo $?)
check "its bridge is gone" $(! ip link show "$NETPFX-lab" >/dev/null 2>&1; echo $?)
check "its dnsmasq is gone" $(! alive "$pid"; echo $?)
check "its forwards are out of the table" $(! nft list table inet "$NETPFX" 2>/dev/null | grep -q "$port"; echo $?)
v network delete iso
check "delete (table)" $([[ $rc == 0 ]] && grep -q "deleted network iso" "$tmp/out"; echo $?)
v network delete iso
check "delete an unknown network -> exit 1" $([[ $rc == 1 ]]; echo $?)

# --- events and completion -----------------------------------------------------------
v events
check "events show the network events" $([[ $rc == 0 ]] && grep -q "network.created *lab" "$tmp/out" && grep -q "network.forward_added" "$tmp/out" && grep -q "network.deleted *iso" "$tmp/out"; echo $?)
v network create comp --cidr "$base.0/24" -o json
completion=$(dirname "$0")/../../cli/vmctl.bash
mkdir -p "$tmp/bin" && ln -sf "$(readlink -f "$VMCTL")" "$tmp/bin/vmctl"
words=$(PATH="$tmp/bin:$PATH" bash -c '
    source "$1"
    COMP_WORDS=(vmctl network ""); COMP_CWORD=2; _vmctl; echo "${COMPREPLY[*]}"
    COMP_WORDS=(vmctl network show ""); COMP_CWORD=3; _vmctl; echo "${COMPREPLY[*]}"
    COMP_WORDS=(vmctl network forward ""); COMP_CWORD=3; _vmctl; echo "${COMPREPLY[*]}"
    # As readline gives it: the line, its word split at "=" (the reply is what follows it).
    COMP_LINE="vmctl create x --nic network=co"; COMP_POINT=${#COMP_LINE}; _vmctl
    echo "nic: ${COMPREPLY[*]}"' _ "$completion" 2>&1)
rc=0
echo "$words" >"$tmp/out"
check "bash completion: network subcommands and names from the daemon" \
    $(grep -q "^list show create" "$tmp/out" && grep -qx "comp" "$tmp/out" && grep -qx "add list delete" "$tmp/out"; echo $?)
check "bash completion: --nic network=NAME from the daemon" $(grep -qx "nic: comp" "$tmp/out"; echo $?)
v network delete comp

finish
