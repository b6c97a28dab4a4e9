#!/bin/sh
# L2 init of the vmmd TCG lab (busybox sh; prepare.sh puts it in the L2
# initramfs as /init). Reports how the guest sees its machine as "LAB: key=value"
# lines on the console, runs the device checks the kernel command line asks for,
# and powers off.
#   lab.mods=virtio|ide[,e1000]  module groups to load (from /lib/modules/<group>/order;
#                            a group missing from the initramfs is skipped)
#   lab.tests=a,b,...        disk (mount the disk, read the seeded file, write
#                            /lab-<lab.tag>.txt containing lab.token), hvc (write to
#                            and read a line from /dev/hvc0), rng (read /dev/hwrng),
#                            net (ping 10.0.2.1 from 10.0.2.2 on eth0),
#                            diskbench (read the whole disk lab.runs times),
#                            bootdisk (the disk it booted from: its ISO volume label
#                            and MBR signature, and whether the firmware gave ACPI),
#                            iperf (iperf3 to L1's server at 10.0.2.1 for lab.iperf_s
#                            seconds, L2 sending then receiving, lab.runs times each;
#                            "LAB: iperf dir=send|recv run=R mbps=M" with the
#                            receiver's figure)
#                            dhcp (a lease from the vmmd daemon's dnsmasq on eth0 with
#                            busybox udhcpc, then what lab.role says: web serves
#                            "hello-from-<hostname>" with httpd and waits to be stopped;
#                            client resolves web.<domain>, pings it by name and pings
#                            lab.outside; iso pings lab.outside, which must fail)
#                            snapbusy (the snapshot lab: mount the disk's ext4 on /mnt and
#                            loop until "lab-poweroff" is typed on the console: every
#                            ~100 ms "LAB: tick n=N up=UPTIME wall=UNIX_SECONDS", every
#                            10th tick "N UPTIME" appended to /mnt/ticks.log and synced;
#                            then unmount, "LAB: snapbusy umount=ok|failed", power off)
#                            migbusy (the migration lab: eth0 as lab.ip (CIDR), then
#                            "LAB: mig n=N" on the console every ~10 ms, forever;
#                            lab.sleep=usleep waits with busybox usleep, which forks)
#   lab.disk=vda|sda|auto (auto: whichever appears first)  lab.token=WORD  lab.tag=WORD  lab.runs=N  lab.role=..  lab.outside=IP
#   lab.ip=A.B.C.D/LEN
# Timed steps print "LAB: mark NAME" so the L1 side can snapshot KVM's counters.
export PATH=/bin:/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
read up idle < /proc/uptime
echo "LAB: L2 init reached uptime=$up"
echo "LAB: cpus=$(grep -c '^processor' /proc/cpuinfo)"
cs=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null)
echo "LAB: clocksource=${cs:-none}"
echo "LAB: clocksources=$(cat /sys/devices/system/clocksource/clocksource0/available_clocksource 2>/dev/null)"
dmesg | grep -i -E "tsc|clocksource" | head -n 12 | while read -r l; do echo "LAB: dmesg $l"; done
if grep '^flags' /proc/cpuinfo | grep -qw hypervisor; then hv=yes; else hv=no; fi
echo "LAB: hypervisor_flag=$hv"
if dmesg | grep -q 'Booting paravirtualized kernel on KVM'; then pv=yes; else pv=no; fi
echo "LAB: pvboot=$pv"

# arg NAME: the value of lab.NAME= on the kernel command line (empty if absent).
arg() {
    for w in $(cat /proc/cmdline); do
        case $w in lab.$1=*) echo "${w#*=}"; return ;; esac
    done
}
has_test() { case ",$TESTS," in *",$1,"*) return 0 ;; esac; return 1; }
# wait_for PATH SECONDS: poll until PATH exists.
wait_for() {
    i=0
    while [ ! -e "$1" ] && [ $i -lt $(($2 * 10)) ]; do usleep 100000; i=$((i + 1)); done
    [ -e "$1" ]
}
# now_us: the wall clock in microseconds (busybox date has no %N).
now_us() {
    adjtimex | while read -r k v rest; do
        case $k in time.tv_sec:) s=$v ;; time.tv_usec:) echo $((s * 1000000 + v)) ;; esac
    done
}
TESTS=$(arg tests) MODS=$(arg mods) DISK=$(arg disk) TOKEN=$(arg token) TAG=$(arg tag) RUNS=$(arg runs)
IPERF_S=$(arg iperf_s)

if [ -n "$MODS" ]; then
    loaded=0
    for g in $(echo "$MODS" | tr , ' '); do
        for m in $(cat /lib/modules/$g/order 2>/dev/null); do
            if insmod /lib/modules/$g/$m.ko; then loaded=$((loaded + 1)); else echo "LAB: insmod $m failed"; fi
        done
    done
    echo "LAB: modules=$MODS loaded=$loaded"
fi

if [ "$DISK" = auto ]; then
    i=0 DISK=''
    while [ -z "$DISK" ] && [ $i -lt 200 ]; do
        for d in vda sda; do [ -e /dev/$d ] && DISK=$d; done
        [ -n "$DISK" ] || usleep 100000
        i=$((i + 1))
    done
fi
DEV=/dev/${DISK:-vda} DEV_OK=0
if has_test disk || has_test diskbench || has_test bootdisk || has_test snapbusy; then
    if wait_for $DEV 20; then
        DEV_OK=1
        echo "LAB: disk_dev=${DEV#/dev/} sectors=$(cat /sys/block/${DEV#/dev/}/size)"
    else
        echo "LAB: disk_dev=missing"; dmesg | grep -i -e virtio -e ata -e scsi -e pci | tail -n 30
    fi
fi

if has_test disk && [ $DEV_OK = 1 ]; then
    mkdir -p /mnt
    if mount -t ext4 $DEV /mnt; then
        echo "LAB: disk_seed=$(cat /mnt/lab/seed.txt 2>/dev/null)"
        for f in /mnt/lab-*.txt; do [ -f "$f" ] && echo "LAB: disk_found ${f#/mnt/}=$(cat "$f")"; done
        if echo "$TOKEN" > /mnt/lab-$TAG.txt && sync && umount /mnt; then
            echo "LAB: disk_write=ok"
        else
            echo "LAB: disk_write=failed"
        fi
    else
        echo "LAB: disk_mount=failed"; dmesg | tail -n 15
    fi
fi

if has_test bootdisk && [ $DEV_OK = 1 ]; then
    # ISO 9660's volume identifier (sector 16, byte 40) and the MBR's 55 aa.
    echo "LAB: bootdisk_label=$(dd if=$DEV bs=1 skip=32808 count=8 2>/dev/null)"
    echo "LAB: bootdisk_mbr=$(dd if=$DEV bs=1 skip=510 count=2 2>/dev/null | od -An -tx1 | tr -d ' ')"
    if [ -e /sys/firmware/acpi/tables/DSDT ]; then acpi=yes; else acpi=no; fi
    echo "LAB: acpi=$acpi"
    # What the firmware's SMBIOS tables tell the guest about the machine.
    d=/sys/class/dmi/id
    echo "LAB: dmi bios_vendor=$(cat $d/bios_vendor 2>/dev/null | tr ' ' _) sys_vendor=$(cat $d/sys_vendor 2>/dev/null | tr ' ' _) product=$(cat $d/product_name 2>/dev/null | tr ' ' _)"
fi

if has_test hvc; then
    if wait_for /dev/hvc0 10; then
        # Hold hvc0 open before asking for input, so nothing typed is lost.
        exec 3<> /dev/hvc0
        stty -F /dev/hvc0 -echo 2>/dev/null
        echo "LAB: hvc0_out=$TOKEN" >&3
        echo "LAB: hvc0 waiting for input"
        line=''
        read -t 30 line <&3
        echo "LAB: hvc0_in=$(echo "$line" | tr -d '\r')"
        exec 3>&-
    else
        echo "LAB: hvc0_in=no_device"
    fi
fi

if has_test rng; then
    wait_for /dev/hwrng 10
    echo "LAB: rng_current=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)"
    hex=$(dd if=/dev/hwrng bs=16 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')
    echo "LAB: rng_hex=${hex:-none}"
fi

if has_test irq; then
    # How the virtio devices interrupt: PCI-MSIX normally, IO-APIC (INTx) with pci=nomsi.
    irq=$(grep -m1 virtio /proc/interrupts | grep -o -e 'PCI-MSI[-A-Za-z]*' -e 'IO-APIC' | head -n1)
    echo "LAB: virtio_irq=${irq:-none}"
fi

NET_UP=''
net_up() { # eth0 as 10.0.2.2/24, once
    [ -n "$NET_UP" ] && return 0
    wait_for /sys/class/net/eth0 10 || return 1
    ip link set lo up
    ip addr add 10.0.2.2/24 dev eth0
    ip link set eth0 up
    # The carrier: virtio-net has it at once, e1000 once its watchdog saw the PHY's link.
    i=0
    while [ "$(cat /sys/class/net/eth0/operstate)" != up ] && [ $i -lt 100 ]; do usleep 100000; i=$((i + 1)); done
    NET_UP=1
}
if has_test net; then
    if net_up; then
        got=$(ping -c 3 -W 5 10.0.2.1 | grep -o '[0-9]* packets received' | cut -d' ' -f1)
        echo "LAB: net_ping_received=${got:-0}"
        drv=$(busybox readlink /sys/class/net/eth0/device/driver)
        echo "LAB: net_driver=${drv##*/}"
        echo "LAB: net_link=$(cat /sys/class/net/eth0/operstate)"
    else
        echo "LAB: net_ping_received=no_device"
    fi
fi

# iperf3 (its libraries in the initramfs' standard paths) against L1's server;
# the figure is the receiver's summary line, in Mbit/s.
if has_test iperf; then
    export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
    if net_up; then
        # The link may take a moment: wait for L1 to answer before timing.
        ping -c 1 -W 10 10.0.2.1 > /dev/null 2>&1
        r=1
        while [ $r -le ${RUNS:-3} ]; do
            for dir in send recv; do
                flag=''
                [ $dir = recv ] && flag=-R
                mbps=$(iperf3 -c 10.0.2.1 $flag -t ${IPERF_S:-4} -f m 2>&1 | tee /tmp/iperf.out \
                       | awk '/receiver/ {for (i = 2; i <= NF; i++) if ($i == "Mbits/sec") print $(i - 1)}' | tail -n 1)
                [ -n "$mbps" ] || tail -n 3 /tmp/iperf.out
                echo "LAB: iperf dir=$dir run=$r mbps=${mbps:-fail}"
            done
            r=$((r + 1))
        done
    else
        echo "LAB: iperf dir=send run=1 mbps=no_device"
    fi
fi

# A lease from the network's DHCP server, and what the role does with it.
if has_test dhcp; then
    ROLE=$(arg role) OUTSIDE=$(arg outside)
    cat > /tmp/udhcpc.sh <<'EOF'
#!/bin/sh
[ "$1" = bound ] || [ "$1" = renew ] || exit 0
ip addr flush dev "$interface"
ip addr add "$ip/$mask" dev "$interface"
for r in $router; do ip route add default via "$r"; break; done
: > /etc/resolv.conf
for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
[ -n "$domain" ] && echo "search $domain" >> /etc/resolv.conf
[ -n "$hostname" ] && busybox hostname "$hostname"
echo "$ip ${hostname:--} ${domain:--} ${router:-none} ${serverid:-none}" > /tmp/lease
EOF
    chmod +x /tmp/udhcpc.sh
    mkdir -p /etc
    if wait_for /sys/class/net/eth0 20; then
        ip link set lo up
        ip link set eth0 up
        if busybox udhcpc -i eth0 -n -q -t 15 -T 2 -s /tmp/udhcpc.sh > /dev/null 2>&1; then
            read ip host domain router server < /tmp/lease
            echo "LAB: dhcp ip=$ip hostname=$host domain=$domain router=$router"
        else
            echo "LAB: dhcp ip=none"
        fi
    else
        echo "LAB: dhcp ip=no_device"
    fi
    # received COUNT TARGET: how many of COUNT pings were answered
    received() {
        n=$(ping -c "$1" -W 3 "$2" 2>/dev/null | grep -o '[0-9]* packets received' | cut -d' ' -f1)
        echo "${n:-0}"
    }
    case $ROLE in
    web)
        mkdir -p /tmp/www
        echo "hello-from-$(busybox hostname)" > /tmp/www/index.html
        busybox httpd -p 80 -h /tmp/www && echo "LAB: web serving"
        sleep 3600 ;;
    client)
        # The web VM may still be taking its lease: ask for a while.
        i=0 addr=''
        while [ -z "$addr" ] && [ $i -lt 30 ]; do
            addr=$(busybox nslookup "web.$domain" 2>/dev/null | awk '/^Address/ && $NF !~ /:/ {a = $NF} END {print a}')
            case $addr in *.*.*.*) ;; *) addr=''; sleep 2 ;; esac
            i=$((i + 1))
        done
        echo "LAB: dns web.$domain=${addr:-none}"
        echo "LAB: ping_web_by_name received=$(received 2 "web.$domain")"
        echo "LAB: ping_outside received=$(received 2 "$OUTSIDE")" ;;
    iso)
        # No router was offered; route through the gateway anyway: the firewall must stop it.
        ip route add default via "$server" 2>/dev/null
        echo "LAB: ping_outside received=$(received 2 "$OUTSIDE")" ;;
    esac
fi

# The whole disk with 1 MiB reads, caches dropped before each; a window of
# the same shape without the read first, so the L1 side can subtract what the
# marks and sleeps themselves cost.
if has_test diskbench && [ $DEV_OK = 1 ]; then
    sync; echo 3 > /proc/sys/vm/drop_caches
    echo "LAB: mark idle begin"; sleep 1
    echo "LAB: mark idle end"; sleep 1
    r=1
    while [ $r -le ${RUNS:-3} ]; do
        echo 3 > /proc/sys/vm/drop_caches
        echo "LAB: mark dd$r begin"; sleep 1
        t0=$(now_us)
        dd if=$DEV of=/dev/null bs=1M 2>/dev/null
        t1=$(now_us)
        echo "LAB: mark dd$r end"
        echo "LAB: bench_dd run=$r bytes=$(($(cat /sys/block/${DEV#/dev/}/size) * 512)) us=$((t1 - t0))"
        sleep 1
        r=$((r + 1))
    done
fi

# The snapshot lab's busy guest: its counter and clocks on the console, its
# counter on the disk, until the console says stop. A reader in the background
# waits for that line: busybox's read -t drops what it read of a line when the
# time runs out in the middle of it, which a slow guest sees.
if has_test snapbusy && [ $DEV_OK = 1 ]; then
    mkdir -p /mnt
    if mount -t ext4 $DEV /mnt; then
        echo "LAB: snapbusy mounted $DEV"
        rm -f /tmp/lab-stop
        exec 3<&0
        ( while read -r cmd <&3; do case $cmd in *lab-poweroff*) : > /tmp/lab-stop; exit ;; esac; done ) &
        n=0
        while [ ! -e /tmp/lab-stop ]; do
            n=$((n + 1))
            read up idle < /proc/uptime
            echo "LAB: tick n=$n up=$up wall=$(date +%s)"
            if [ $((n % 10)) = 0 ]; then echo "$n $up" >> /mnt/ticks.log; sync; fi
            usleep 100000
        done
        if umount /mnt; then echo "LAB: snapbusy umount=ok n=$n"; else echo "LAB: snapbusy umount=failed n=$n"; fi
    else
        echo "LAB: disk_mount=failed"; dmesg | tail -n 15
    fi
fi

# The migration lab's busy guest: its address on eth0 (L1 pings it while it
# moves), then a counter on the console as fast as a 10 ms sleep lets it go.
if has_test migbusy; then
    IP=$(arg ip)
    if [ -n "$IP" ] && wait_for /sys/class/net/eth0 20; then
        ip link set lo up
        ip addr add "$IP" dev eth0
        ip link set eth0 up
        echo "LAB: migbusy eth0=$IP mac=$(cat /sys/class/net/eth0/address)"
    else
        echo "LAB: migbusy eth0=none"
    fi
    # The 10 ms wait is a read that times out on a FIFO nobody writes: busybox
    # runs usleep in a forked child, and a fork a tick dirtied ~250 pages (the
    # child's copies), ~11 MB/s under nested TCG, as fast as the lab's migration
    # sends (15 MB/s): it did not converge. lab.sleep=usleep keeps that loop.
    busybox mkfifo /tmp/mig-wait
    exec 5<> /tmp/mig-wait
    SLEEP=$(arg sleep) n=0
    while :; do
        n=$((n + 1))
        echo "LAB: mig n=$n"
        if [ "$SLEEP" = usleep ]; then usleep 10000; else read -t 0.01 w <&5; fi
    done
fi

echo "LAB: L2 poweroff"
poweroff -f
# poweroff -f does not return when it works; try harder, then idle.
sleep 1
reboot -f
while :; do sleep 60; done
