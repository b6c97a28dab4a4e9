# What the daemon-in-L1 tests' inits share (busybox sh; lib.sh's lab_pack_l1 puts
# it in the L1 initramfs as /lab-lib.sh, and each init sources it first): the
# environment, the mounts, output to ttyS0 (the host's stdout), /lab.conf, the
# helpers below, and L1's KVM (its modules loaded in /lib/modules/l1/order).
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/lib64:/lib:/usr/lib
export HOME=/root TMPDIR=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec > /dev/ttyS0 2>&1 < /dev/null
mkdir -p /dev/pts /root /run /var/run
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
. /lab.conf
up() { cut -d' ' -f1 /proc/uptime; }
finish() { sync; poweroff -f; sleep 5; echo o > /proc/sysrq-trigger; }
fail() { echo "LAB: ERROR $*"; dmesg | tail -n 20; finish; }
CHECK=LAB-CHECK   # what check lines start with (a note that is not counted says otherwise)
ok() { echo "$CHECK ok $*"; }
bad() { echo "$CHECK fail $*"; }
check() { # check NAME DETAIL COMMAND...: ok when COMMAND succeeds
    name=$1 detail=$2
    shift 2
    if "$@"; then ok "$name $detail"; else bad "$name $detail"; fi
}
# now_ms: L1's wall clock in milliseconds (busybox date has no %N).
now_ms() {
    adjtimex | while read -r k v rest; do
        case $k in time.tv_sec:) s=$v ;; time.tv_usec:) echo $((s * 1000 + v / 1000)) ;; esac
    done
}
ms_to_s() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b - a) / 1000}'; }
echo "LAB: L1 init reached t=$(up)"
for m in $(cat /lib/modules/l1/order); do
    insmod /lib/modules/l1/$m.ko || fail "insmod $m failed"
done
[ -c /dev/kvm ] || fail "no /dev/kvm"

# --- several vmmd daemons in L1 (lab.migration, the snapshot bench) -------------------------
# daemon NAME: a vmmd daemon with state in /run/vmmd-NAME, the images in /l2 (shared).
daemon() {
    mkdir -p /run/vmmd-$1
    /vmmd serve --state-dir /run/vmmd-$1 --image-dir /l2 --no-networks \
        --log-file /run/vmmd-$1/vmmd.log --log-level debug &
    i=0
    while [ ! -S /run/vmmd-$1/vmmd.sock ] && [ $i -lt 300 ]; do usleep 100000; i=$((i + 1)); done
    [ -S /run/vmmd-$1/vmmd.sock ] || { cat /run/vmmd-$1/vmmd.log; fail "daemon $1 did not come up"; }
}
# api DAEMON METHOD PATH [BODY]: the answer's body in /tmp/body, its status in /tmp/status
api() {
    curl -s -o /tmp/body -w '%{http_code}' --unix-socket /run/vmmd-$1/vmmd.sock -X "$2" \
        ${4:+-H 'Content-Type: application/json' -d "$4"} "http://vmmd$3" > /tmp/status
}
status() { cat /tmp/status; }
# jget KEY: KEY's scalar value in /tmp/body (the first one; flat enough for these answers)
jget() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p" /tmp/body | head -n 1; }
body() { head -c 300 /tmp/body; }
# vm_state DAEMON: the state of the VM $VM there, or httpNNN
vm_state() { api $1 GET /v1/vms/$VM; [ "$(status)" = 200 ] && jget state || echo "http$(status)"; }
# events DAEMON TYPE: the data of that daemon's TYPE events, a line each
events() {
    curl -s -N --max-time 2 --unix-socket /run/vmmd-$1/vmmd.sock "http://vmmd/v1/events?since=0" \
        | tr -d '\r' | awk -v t="$2" '/^event: / {e = $2} /^data: / && e == t {print substr($0, 7)}'
}
