#!/bin/busybox sh
# L1 init of the lab's managed-network test (test_lab_networks.sh puts it in
# the L1 initramfs as /init): the vmmd daemon runs inside L1 as on a host,
# with its default NAT network, and L2 guests on it get their addresses from
# its dnsmasq. An "outside" network namespace behind a veth (203.0.113.2,
# with no route back to the guests' networks) stands in for the internet.
# Results are "LAB-CHECK ok|fail NAME [detail]" lines on ttyS0; each L2's
# "LAB:" console lines are copied as "LAB-VM <name> <line>".
. /lab-lib.sh
ip() { /usr/sbin/ip "$@"; } # iproute2's: busybox's has no network namespaces
ip link set lo up

# The outside world: 203.0.113.2 in its own namespace, reachable from L1 only.
mkdir -p /run/netns
ip netns add outside || fail "ip netns add"
ip link add vout type veth peer name eth0 netns outside || fail "veth"
ip addr add 203.0.113.1/24 dev vout
ip link set vout up
ip netns exec outside ip addr add 203.0.113.2/24 dev eth0
ip netns exec outside ip link set eth0 up
ip netns exec outside ip link set lo up

# The daemon, as a host runs it: its default network on a CIDR L1 does not use.
STATE=/run/vmmd SOCK=/run/vmmd/vmmd.sock
mkdir -p $STATE
/vmmd serve --state-dir $STATE --image-dir /l2 --default-network 10.71.0.0/24 \
    --log-file /run/vmmd.log --log-level debug &
i=0
while [ ! -S $SOCK ] && [ $i -lt 300 ]; do usleep 100000; i=$((i + 1)); done
[ -S $SOCK ] || { cat /run/vmmd.log; fail "the daemon did not come up"; }
echo "LAB: L1 daemon up t=$(up)"
# api METHOD PATH [BODY]: the answer's body on stdout, its status in /tmp/status
api() {
    curl -s -o /tmp/body -w '%{http_code}' --unix-socket $SOCK -X "$1" ${3:+-H 'Content-Type: application/json' -d "$3"} \
        "http://vmmd$2" > /tmp/status
    cat /tmp/body
}
status() { cat /tmp/status; }

api GET /v1/networks/default > /dev/null
check default_network "status=$(status) $(cat /tmp/body | head -c 200)" [ "$(status)" = 200 ]
api POST /v1/networks '{"name":"iso","cidr":"10.72.0.0/28","nat":false}' > /dev/null
check isolated_network "status=$(status)" [ "$(status)" = 201 ]

# vm NAME MODE MODS ROLE NICS: a VM that boots the lab's L2 with the dhcp check.
vm() {
    cmd="$L2_CMDLINE lab.tests=dhcp lab.mods=$3 lab.role=$4 lab.outside=203.0.113.2"
    api POST /v1/vms "{\"name\":\"$1\",\"mode\":\"$2\",\"vcpus\":1,\"memory_mib\":$L2_MEM,\"kernel\":\"/l2/vmlinuz\",\"initrd\":\"/l2/initrd\",\"cmdline\":\"$cmd\",\"nics\":$5}" > /dev/null
    check "create_$1" "status=$(status) $(head -c 200 /tmp/body)" [ "$(status)" = 201 ]
}
vm web pv virtio web '[{"network":"default","ip":"10.71.0.10"}]'
vm client pv virtio client '[{"network":"default"}]'
vm fullvm full e1000 client '[{"network":"default"}]'
vm cell pv virtio iso '[{"network":"iso"}]'

console() { cat $STATE/run/$(cat /tmp/id-$1)/console.log 2>/dev/null; }
for v in web client fullvm cell; do
    api GET /v1/vms/$v | sed 's/.*"id":"\([^"]*\)".*/\1/' > /tmp/id-$v
done
# wait_console VM TEXT SECONDS
wait_console() {
    i=0
    while ! console $1 | grep -q "$2" && [ $i -lt $(($3 * 2)) ]; do sleep 0.5; i=$((i + 1)); done
    console $1 | grep -q "$2"
}
api POST /v1/vms/web/start > /dev/null
check start_web "status=$(status) $(head -c 200 /tmp/body)" [ "$(status)" = 200 ]
wait_console web "LAB: web serving" $L2_WAIT
check web_serving "t=$(up)" wait_console web "LAB: web serving" 1
# What a VM that did not finish was doing: its state, its console's end, its worker's log.
stuck() {
    echo "LAB: $1 did not finish: $(api GET /v1/vms/$1 | grep -o '"state":"[a-z]*","state_reason":[^,]*')"
    console $1 | tr -d '\r' | tail -n 15 | sed "s/^/LAB: $1 console: /"
    tail -n 10 $STATE/run/$(cat /tmp/id-$1)/worker.log 2>/dev/null | sed "s/^/LAB: $1 worker: /"
}
# One at a time beside web: nested SVM under TCG is where L2 boots can stall,
# and two L2s at once are enough to show guests talking to each other.
for v in client fullvm cell; do
    api POST /v1/vms/$v/start > /dev/null
    check start_$v "status=$(status) $(head -c 200 /tmp/body)" [ "$(status)" = 200 ]
    [ "$(status)" = 200 ] && { wait_console $v "LAB: L2 poweroff" $L2_WAIT || stuck $v; }
done
wait_console web "LAB: web serving" 1 || stuck web
for v in web client fullvm cell; do
    console $v | tr -d '\r' | grep "LAB: " | sed "s/^/LAB-VM $v /"
done

line() { console $1 | tr -d '\r' | grep "LAB: $2" | tail -n 1; }
has() { console $1 | tr -d '\r' | grep -q "^LAB: $2"; } # has VM PATTERN: a console line matches
on_console() { console $1 | tr -d '\r' | grep -qF "$2"; } # on_console VM TEXT: anywhere on it
check web_static_lease "$(line web dhcp)" has web "dhcp ip=10.71.0.10 hostname=web domain=vmmd router=10.71.0.1"
check client_dynamic_lease "$(line client dhcp)" has client "dhcp ip=10.71.0.[0-9]* hostname=client domain=vmmd router=10.71.0.1"
check client_resolves_web "$(line client dns)" has client "dns web.vmmd=10.71.0.10"
check client_pings_web_by_name "$(line client ping_web)" has client "ping_web_by_name received=[12]"
check client_reaches_outside_through_nat "$(line client ping_outside)" has client "ping_outside received=[12]"
check full_e1000_lease "$(line fullvm dhcp)" has fullvm "dhcp ip=10.71.0.[0-9]* hostname=fullvm"
check full_pings_web_by_name "$(line fullvm ping_web)" has fullvm "ping_web_by_name received=[12]"
check isolated_lease "$(line cell dhcp)" has cell "dhcp ip=10.72.0.[0-9]* hostname=cell domain=vmmd router=none"
check isolated_cannot_reach_outside "$(line cell ping_outside)" has cell "ping_outside received=0"

api GET /v1/networks/default/leases > /tmp/leases
leases() { grep -q '"ip":"10.71.0.10"' /tmp/leases && grep -q '"vm":"client"' /tmp/leases; }
check leases_listed "$(head -c 300 /tmp/leases)" leases

# A port forward to the web VM, from L1 itself and from the outside.
api POST /v1/networks/default/forwards '{"host_port":8080,"vm":"web","vm_port":80}' > /dev/null
check forward_created "status=$(status) $(head -c 200 /tmp/body)" [ "$(status)" = 201 ]
# fetch NAME [PREFIX...]: GET the forwarded port, up to 3 tries of 10 s (L2
# runs nested under TCG and a lone slow answer is not a failed forward); the
# detail keeps curl's status of every try, so a flaky forward still shows.
fetch() {
    name=$1 tries="" got=""
    shift
    for i in 1 2 3; do
        got=$("$@" curl -s -m 10 http://203.0.113.1:8080/)
        rc=$?
        [ "$got" = hello-from-web ] && break
        tries="$tries try$i=rc$rc"
    done
    check "$name" "$got$tries" [ "$got" = hello-from-web ]
    [ "$got" = hello-from-web ] || nft list table inet vmmd
}
fetch forward_from_l1
fetch forward_from_outside ip netns exec outside

api POST /v1/vms/web/stop > /dev/null
for v in client fullvm cell; do api POST /v1/vms/$v/stop > /dev/null; done

# Storage: a bootable image imported by path, a volume cloned from it, and a VM
# with no kernel that boots that volume through the firmware and GRUB.
if [ -f /l2/boot.iso ]; then
    api POST /v1/images '{"name":"bootdisk","path":"/l2/boot.iso"}' > /dev/null
    check image_import_started "status=$(status)" [ "$(status)" = 202 ]
    i=0
    while ! api GET /v1/images/bootdisk | grep -q '"state":"ready"' && [ $i -lt 120 ]; do
        sleep 0.5; i=$((i + 1))
    done
    check image_imported "$(head -c 300 /tmp/body)" grep -q '"sha256":"[0-9a-f]\{64\}"' /tmp/body
    api POST /v1/volumes '{"name":"boot-root","image":"bootdisk"}' > /dev/null
    check volume_cloned "status=$(status) $(head -c 200 /tmp/body)" [ "$(status)" = 201 ]
    api POST /v1/vms "{\"name\":\"diskboot\",\"mode\":\"pv\",\"boot\":\"disk\",\"vcpus\":1,\"memory_mib\":$L2_MEM,\"disks\":[{\"volume\":\"boot-root\"}]}" > /dev/null
    check create_diskboot "status=$(status) $(head -c 200 /tmp/body)" [ "$(status)" = 201 ]
    api GET /v1/vms/diskboot | sed 's/.*"id":"\([^"]*\)".*/\1/' > /tmp/id-diskboot
    api POST /v1/vms/diskboot/start > /dev/null
    check start_diskboot "status=$(status) $(head -c 200 /tmp/body)" [ "$(status)" = 200 ]
    wait_console diskboot "LAB: L2 poweroff" $L2_WAIT || stuck diskboot
    console diskboot | tr -d '\r' | grep "LAB: " | sed "s/^/LAB-VM diskboot /"
    check diskboot_firmware "$(console diskboot | tr -d '\r' | grep -m1 'SeaBIOS (version')" \
        on_console diskboot 'SeaBIOS (version'
    check diskboot_bootloader "" on_console diskboot "Booting \`vmmd lab L2'"
    check diskboot_reads_its_volume "$(line diskboot bootdisk_label)" has diskboot "bootdisk_label=VMMDBOOT"
fi
grep -e error -e warn /run/vmmd.log | tail -n 20
echo "LAB: L1 networks done t=$(up)"
finish
