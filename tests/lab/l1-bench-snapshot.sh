#!/bin/busybox sh
# L1 init of the lab's snapshot and migration benchmark
# (bench/bench_lab_snapshot.sh puts it in the L1 initramfs as /init; see that
# script for what is measured and why). The same pv L2 (kernel, initrd,
# command line, vCPUs, memory; l2-init.sh's "migbusy" counter every ~10 ms)
# runs under two vmmd daemons (A and B, through the API) and under QEMU
# (-accel kvm -M pc -cpu host, virtio-rng-pci, QMP over socat). Each of $RUNS
# rounds gives each VMM's guest in turn (the other's stopped or gone) a live
# migration, a snapshot and a restore from it; vmmd's guest is booted afresh for
# each round, QEMU's once (see below). Results are
# "LAB-CHECK ok|fail NAME [detail]" and "LAB-RESULT bench ..." lines on ttyS0.
. /lab-lib.sh
ip link set lo up

# --- the guest's counter -------------------------------------------------------------
# counts: the numbers of the whole "LAB: mig n=N" lines on stdin, one a line; the last
# line is left out (the guest may be printing it: "n=27" of 274)
counts() { tr -d '\r' | sed '$d' | sed -n 's/^LAB: mig n=\([0-9]*\)$/\1/p'; }
last_count() { tail -c 2048 "$1" 2>/dev/null | counts | tail -n 1; }
# upt: L1's uptime in whole seconds, into UPT (a builtin read: no fork)
upt() { read UPT x < /proc/uptime; UPT=${UPT%.*}; }
# wait_count FILE N SECONDS: until FILE shows count N or more (a line every ~10 s meanwhile:
# the host takes 60 s of silence for a stalled L1)
wait_count() {
    upt; end=$((UPT + $3)) say=$((UPT + 10))
    while :; do
        c=$(last_count "$1")
        [ -n "$c" ] && [ "$c" -ge "$2" ] && return 0
        upt
        [ $UPT -ge $end ] && return 1
        [ $UPT -ge $say ] && { echo "LAB: waiting for count $2 in $1 (at ${c:-none}) t=$(up)"; say=$((UPT + 10)); }
        usleep 20000
    done
}
# goes_on FILE FROM NEED: the counts in FILE (joined as printed) go on by one, the first
# is FROM+1 or FROM+2 (FROM+1 may have been half printed when the guest stopped), and they
# reach NEED.
goes_on() {
    counts < "$1" | awk -v f="$2" -v need="$3" \
        'NR == 1 && ($1 < f + 1 || $1 > f + 2) {bad = 1} NR > 1 && $1 != p + 1 {bad = 1} {p = $1}
         END {exit bad || NR == 0 || p < need}'
}
# consecutive FILE NEED: the counts in FILE go on by one and reach NEED
consecutive() { counts < "$1" | awk -v need="$2" 'NR > 1 && $1 != p + 1 {bad = 1} {p = $1} END {exit bad || NR == 0 || p < need}'; }
gaps() { counts < "$1" | awk 'NR > 1 && $1 != p + 1 {printf " %d->%d", p, $1} {p = $1}' | head -c 200; }
CMD="$L2_CMDLINE lab.tests=migbusy lab.mods=virtio"

# --- vmmd: two daemons, the API over their sockets ------------------------------------
wait_state() { # wait_state DAEMON STATE SECONDS
    i=0
    while [ "$(vm_state $1)" != "$2" ] && [ $i -lt $(($3 * 5)) ]; do
        usleep 200000; i=$((i + 1))
        [ $((i % 50)) = 0 ] && echo "LAB: waiting for $VM on $1 to be $2 t=$(up)"
    done
    [ "$(vm_state $1)" = "$2" ]
}
vcon() { echo /run/vmmd-$1/run/$ID/console.log; }
vstuck() {
    echo "LAB: vmmd stuck on $1: $(vm_state $1)"
    tr -d '\r' < $(vcon $1) 2>/dev/null | grep -v '^LAB: mig n=' | grep -v '^LAB-VM' | tail -n 25 | sed "s/^/LAB: console: /"
    tail -n 20 /run/vmmd-$1/run/$ID/worker.log 2>/dev/null | sed "s/^/LAB: $1 worker: /"
    tail -n 10 /run/vmmd-$1/vmmd.log | sed "s/^/LAB: $1 vmmd.log: /"
}

# vmmd_boot R: a new VM $VM on daemon a, started, counting (its id in ID)
vmmd_boot() {
    api a POST /v1/vms "{\"name\":\"$VM\",\"mode\":\"pv\",\"vcpus\":$VCPUS,\"memory_mib\":$L2_MEM,\"kernel\":\"/l2/vmlinuz\",\"initrd\":\"/l2/initrd\",\"cmdline\":\"$CMD\"}"
    check vmmd_r$1_create "status=$(status) $(body)" [ "$(status)" = 201 ]
    [ "$(status)" = 201 ] || return 1
    ID=$(jget id)
    api a POST /v1/vms/$VM/start
    wait_count $(vcon a) 150 $L2_WAIT || { bad "vmmd_r$1_boot (no count 150 in ${L2_WAIT}s)"; vstuck a; return 1; }
    [ $1 = 1 ] && tr -d '\r' < $(vcon a) | grep "^LAB: " | grep -v "^LAB: mig n=" | sed "s/^/LAB-VM vmmd /"
    return 0
}

# vmmd_migrate TAG FROM TO: live migration of the VM between the daemons (the source's
# console read through a descriptor opened before: the source removes the VM's run
# directory once it moved); the figures in total, down, rounds, mbytes, mig_wall_ms;
# ok_mig=1 when the counter went on.
vmmd_migrate() {
    tag=$1 from=$2 to=$3 ok_mig=0 total='' down='' rounds='' mbytes=''
    exec 4< $(vcon $from)
    m0=$(now_ms)
    api $from POST /v1/vms/$VM/migrate "{\"target\":\"unix:/run/vmmd-$to/vmmd.sock\",\"max_downtime_ms\":$MIG_DOWNTIME_MS}"
    check ${tag}_migrate_accepted "status=$(status) $(body)" [ "$(status)" = 202 ]
    [ "$(status)" = 202 ] || { exec 4<&-; return 1; }
    i=0
    while [ "$(vm_state $from)" != http404 ] && [ $i -lt 600 ]; do
        usleep 200000; i=$((i + 1))
        [ $((i % 50)) = 0 ] && echo "LAB: vmmd migrating $from -> $to t=$(up)"
    done
    m1=$(now_ms) mig_wall_ms=$((m1 - m0))
    gone=$(vm_state $from)
    check ${tag}_gone_from_source "state on $from: $gone" [ "$gone" = http404 ]
    [ "$gone" = http404 ] || { exec 4<&-; vstuck $from; return 1; }
    cat <&4 > /tmp/v-mig
    exec 4<&-
    src_last=$(last_count /tmp/v-mig)
    wait_count $(vcon $to) $((${src_last:-0} + 100)) 60 || vstuck $to
    cat $(vcon $to) >> /tmp/v-mig
    check ${tag}_migrated_counter_goes_on "last on $from $src_last, then to $(last_count /tmp/v-mig)$(gaps /tmp/v-mig)" \
        consecutive /tmp/v-mig $((src_last + 100))
    ev=$(events $from vm.migrated | tail -n 1)
    down=$(echo "$ev" | sed -n 's/.*"downtime_ms":\([0-9.]*\).*/\1/p')
    total=$(echo "$ev" | sed -n 's/.*"total_ms":\([0-9.]*\).*/\1/p')
    rounds=$(echo "$ev" | sed -n 's/.*"rounds":\([0-9]*\).*/\1/p')
    mbytes=$(echo "$ev" | sed -n 's/.*"bytes_sent":\([0-9]*\).*/\1/p')
    check ${tag}_migrated_event "$(echo "$ev" | head -c 300)" [ -n "$down" ]
    consecutive /tmp/v-mig $((src_last + 100)) && [ -n "$down" ] && ok_mig=1
    return 0
}

# vmmd_round R: a freshly booted VM migrated A -> B, then snapshotted, stopped and
# restored on B. Figures in "LAB-RESULT bench vmm=vmmd run=R ...". QEMU's guest is
# stopped meanwhile. The last round also migrates the restored VM back (LAB-RESULT
# bench-extra, not counted).
vmmd_round() {
    r=$1 ok_restore=0
    vmmd_boot $r || return 1
    vmmd_migrate vmmd_r$r a b || return 1
    AT=b con=$(vcon b)

    # Snapshot, left paused (resume:false) so that restoring it is checked exactly.
    s0=$(now_ms)
    api $AT POST /v1/vms/$VM/snapshot "{\"name\":\"b$r\",\"resume\":false}"
    s1=$(now_ms)
    paused=$(jget paused_ms) alloc=$(jget memory_allocated_bytes) sbytes=$(jget state_bytes)
    check vmmd_r${r}_snapshot "status=$(status) paused_ms=$paused alloc=$alloc" [ "$(status)" = 201 ]
    [ "$(status)" = 201 ] || { body; vstuck $AT; return 1; }
    N=$(last_count $con)
    # The guest stopped, then restored into a new worker: the counter goes on at N+1.
    api $AT POST /v1/vms/$VM/stop
    wait_state $AT stopped 60 || { bad "vmmd_r${r}_stopped (state $(vm_state $AT))"; return 1; }
    off=$(stat -c %s $con)
    r0=$(now_ms)
    api $AT POST /v1/vms/$VM/restore "{\"snapshot\":\"b$r\"}"
    r1=$(now_ms)
    check vmmd_r${r}_restore "status=$(status) state=$(jget state)" [ "$(status)" = 200 ]
    [ "$(status)" = 200 ] || { body; vstuck $AT; return 1; }
    wait_count $con $((N + 1)) 60 || { bad "vmmd_r${r}_restored_counts (none past $N)"; vstuck $AT; return 1; }
    r2=$(now_ms)
    wait_count $con $((N + 100)) 60
    tail -c +$((off + 1)) $con > /tmp/v-restored
    check vmmd_r${r}_restore_counter_goes_on "count $N at the snapshot -> $(counts < /tmp/v-restored | head -n 1)..$(last_count /tmp/v-restored)$(gaps /tmp/v-restored)" \
        goes_on /tmp/v-restored $N $((N + 100))
    check vmmd_r${r}_restore_no_reboot "" sh -c "! grep -q 'L2 init reached' /tmp/v-restored"
    goes_on /tmp/v-restored $N $((N + 100)) && ! grep -q 'L2 init reached' /tmp/v-restored && ok_restore=1
    echo "LAB-RESULT bench vmm=vmmd run=$r snap_total_ms=$((s1 - s0)) snap_paused_ms=$paused" \
         "snap_bytes=$((sbytes + alloc)) restore_api_ms=$((r1 - r0)) restore_tick_ms=$((r2 - r0))" \
         "mig_total_ms=$total mig_downtime_ms=$down mig_wall_ms=$mig_wall_ms mig_rounds=$rounds" \
         "mig_bytes=$mbytes restore_ok=$ok_restore mig_ok=$ok_mig"
}

# vmmd_restored_migration: the restored VM (on B) migrated back to A; not a check, a note
vmmd_restored_migration() {
    CHECK="LAB: not counted:"
    vmmd_migrate extra_restored b a
    CHECK=LAB-CHECK
    echo "LAB-RESULT bench-extra vmmd_migration_of_a_restored_vm=$([ "$ok_mig" = 1 ] && echo ok || echo failed)" \
         "downtime_ms=${down:-none} total_ms=${total:-none}"
}

# --- QEMU, driven over QMP through socat ------------------------------------------------
# qemu_start NAME [ARGS...]: a QEMU for the L2, QMP on /tmp/NAME.qmp, serial in /tmp/NAME.serial
qemu_start() {
    name=$1
    shift
    rm -f /tmp/$name.qmp /tmp/$name.serial
    qemu-system-x86_64 -accel kvm -M pc -cpu host -vga none -device virtio-rng-pci \
        -smp "$VCPUS" -m "$L2_MEM" -nodefaults -no-user-config -display none -no-reboot \
        -kernel /l2/vmlinuz -initrd /l2/initrd -append "$CMD" \
        -serial file:/tmp/$name.serial -qmp unix:/tmp/$name.qmp,server=on,wait=off "$@" \
        > /tmp/$name.err 2>&1 &
    echo $! > /tmp/$name.pid
}
# qmp_open NAME FD: a QMP session with that QEMU: socat between the FIFO /tmp/NAME.in
# (written through FD) and /tmp/NAME.out (QEMU's answers, a line each)
qmp_open() {
    i=0
    while [ ! -S /tmp/$1.qmp ] && [ $i -lt 600 ]; do
        kill -0 $(cat /tmp/$1.pid) 2>/dev/null || { echo "LAB: QEMU $1 exited: $(head -c 300 /tmp/$1.err)"; return 1; }
        usleep 5000; i=$((i + 1))
    done
    rm -f /tmp/$1.in /tmp/$1.out
    mkfifo /tmp/$1.in
    socat -t 5 UNIX-CONNECT:/tmp/$1.qmp - < /tmp/$1.in > /tmp/$1.out 2>&1 &
    eval "exec $2> /tmp/$1.in"
    qmp $1 $2 '{"execute":"qmp_capabilities"}'
}
# qmp NAME FD JSON: send a command, wait for its answer (in /tmp/qmp-reply); fails on an
# error answer or none within 20 s (a line at 10 s: the host takes 60 s of silence for a
# stalled L1)
qmp() {
    n=$(grep -c -e '"return"' -e '"error"' /tmp/$1.out)
    echo "$3" >&$2
    upt; end=$((UPT + 20)) say=$((UPT + 10))
    while [ "$(grep -c -e '"return"' -e '"error"' /tmp/$1.out)" -le $n ]; do
        usleep 2000
        upt
        [ $UPT -ge $end ] && { echo "LAB: QMP $1: no answer to $3"; : > /tmp/qmp-reply; return 1; }
        [ $UPT -ge $say ] && { echo "LAB: QMP $1: waiting for the answer to $3 t=$(up)"; say=$end; }
    done
    grep -e '"return"' -e '"error"' /tmp/$1.out | tail -n 1 | tr -d '\r' > /tmp/qmp-reply
    ! grep -q '"error"' /tmp/qmp-reply
}
qget() { sed -n "s/.*\"$1\": \"\{0,1\}\([^\",}]*\).*/\1/p" /tmp/qmp-reply | head -n 1; }
# qmp_until NAME FD JSON KEY VALUE...: the command again until KEY is one of the VALUEs
qmp_until() {
    q=$1 fd=$2 cmd=$3 key=$4
    shift 4
    i=0
    while qmp $q $fd "$cmd"; do
        v=$(qget $key)
        for w in "$@"; do [ "$v" = "$w" ] && return 0; done
        usleep 10000; i=$((i + 1))
        [ $((i % 500)) = 0 ] && echo "LAB: QEMU $q: $key=$v t=$(up)"
        [ $i -gt 30000 ] && return 1
    done
    return 1
}
qemu_quit() { # qemu_quit NAME FD: quit, killed when it has not gone 5 s later
    qmp $1 $2 '{"execute":"quit"}'
    eval "exec $2>&-"
    i=0
    while kill -0 $(cat /tmp/$1.pid) 2>/dev/null && [ $i -lt 50 ]; do usleep 100000; i=$((i + 1)); done
    kill -9 $(cat /tmp/$1.pid) 2>/dev/null
}
qstuck() {
    echo "LAB: QEMU $1 stuck: $(cat /tmp/qmp-reply 2>/dev/null | head -c 300)"
    tail -n 5 /tmp/$1.serial 2>/dev/null | tr -d '\r' | sed "s/^/LAB: console: /"
    head -c 600 /tmp/$1.err | sed "s/^/LAB: $1 stderr: /"
}

# qemu_round R: the same as vmmd_round with QEMU: a destination QEMU with -incoming tcp:
# and migrate; stop + migrate to "exec:cat > FILE"; a new QEMU with -incoming
# "exec:cat FILE" (cont once it has loaded: the stream says the source was stopped). QEMU $QN runs
# the guest (QMP on fd 7) and a new one does at the end.
qemu_round() {
    r=$1 cur=q$QN
    c=$(last_count /tmp/$cur.serial)
    wait_count /tmp/$cur.serial $((c + 50)) 60 || { bad "qemu_r${r}_running (no count past ${c:-none})"; qstuck $cur; return 1; }

    # Live migration to a new QEMU waiting on a TCP port of L1's loopback.
    src=$cur QN=$((QN + 1)) dst=q$QN port=$((4440 + QN))
    qemu_start $dst -incoming tcp:127.0.0.1:$port
    qmp_open $dst 8 && qmp_until $dst 8 '{"execute":"query-status"}' status inmigrate ||
        { bad "qemu_r${r}_destination $(qget status)"; qstuck $dst; return 1; }
    qmp $src 7 "{\"execute\":\"migrate-set-parameters\",\"arguments\":{\"downtime-limit\":$MIG_DOWNTIME_MS,\"max-bandwidth\":1099511627776}}"
    m0=$(now_ms)
    qmp $src 7 "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"tcp:127.0.0.1:$port\"}}" &&
        qmp_until $src 7 '{"execute":"query-migrate"}' status completed failed cancelled
    m1=$(now_ms)
    st=$(qget status) total=$(qget total-time) down=$(qget downtime) mbytes=$(qget transferred)
    check qemu_r${r}_migrated "status=$st total-time=$total downtime=$down" [ "$st" = completed ]
    [ "$st" = completed ] || { qstuck $src; qstuck $dst; return 1; }
    src_last=$(last_count /tmp/$src.serial)
    qemu_quit $src 7
    eval "exec 7>&8 8>&-"   # the destination's session is fd 7 from now on
    wait_count /tmp/$dst.serial $((src_last + 100)) 60
    cat /tmp/$src.serial /tmp/$dst.serial > /tmp/q-mig
    check qemu_r${r}_migrated_counter_goes_on "last on the source $src_last, then to $(last_count /tmp/q-mig)$(gaps /tmp/q-mig)" \
        consecutive /tmp/q-mig $((src_last + 100))
    ok_mig=0
    consecutive /tmp/q-mig $((src_last + 100)) && ok_mig=1
    rm -f /tmp/$src.serial
    cur=$dst

    rm -f /tmp/qsnap
    s0=$(now_ms)
    qmp $cur 7 '{"execute":"stop"}' &&
        qmp $cur 7 '{"execute":"migrate","arguments":{"uri":"exec:cat > /tmp/qsnap"}}' &&
        qmp_until $cur 7 '{"execute":"query-migrate"}' status completed failed cancelled
    s1=$(now_ms)
    st=$(qget status) qtotal=$(qget total-time)
    check qemu_r${r}_snapshot "status=$st total-time=$qtotal" [ "$st" = completed ]
    [ "$st" = completed ] || { qstuck $cur; return 1; }
    N=$(last_count /tmp/$cur.serial)
    qemu_quit $cur 7
    sync
    sbytes=$(stat -c %s /tmp/qsnap)

    QN=$((QN + 1)) cur=q$QN
    r0=$(now_ms)
    qemu_start $cur -incoming "exec:cat /tmp/qsnap"
    loaded=''
    qmp_open $cur 7 && qmp_until $cur 7 '{"execute":"query-status"}' status paused running postmigrate &&
        { loaded=$(qget status); [ "$loaded" = running ] || qmp $cur 7 '{"execute":"cont"}'; }
    rc=$?
    r1=$(now_ms)
    check qemu_r${r}_restore "loaded as ${loaded:-?}, then running" [ $rc = 0 ]
    [ $rc = 0 ] || { qstuck $cur; return 1; }
    wait_count /tmp/$cur.serial $((N + 1)) 60 || { bad "qemu_r${r}_restored_counts (none past $N)"; qstuck $cur; return 1; }
    r2=$(now_ms)
    wait_count /tmp/$cur.serial $((N + 100)) 60
    check qemu_r${r}_restore_counter_goes_on "count $N at the snapshot -> $(counts < /tmp/$cur.serial | head -n 1)..$(last_count /tmp/$cur.serial)$(gaps /tmp/$cur.serial)" \
        goes_on /tmp/$cur.serial $N $((N + 100))
    check qemu_r${r}_restore_no_reboot "" sh -c "! grep -q 'L2 init reached' /tmp/$cur.serial"
    ok_restore=0
    goes_on /tmp/$cur.serial $N $((N + 100)) && ! grep -q 'L2 init reached' /tmp/$cur.serial && ok_restore=1
    rm -f /tmp/qsnap /tmp/q$((QN - 1)).serial

    echo "LAB-RESULT bench vmm=qemu run=$r snap_total_ms=$((s1 - s0)) snap_paused_ms=$((s1 - s0))" \
         "snap_bytes=$sbytes restore_api_ms=$((r1 - r0)) restore_tick_ms=$((r2 - r0))" \
         "mig_total_ms=$total mig_downtime_ms=$down mig_wall_ms=$((m1 - m0)) mig_rounds=NA" \
         "mig_bytes=$mbytes restore_ok=$ok_restore mig_ok=$ok_mig snap_qemu_total_ms=$qtotal"
}

# --- the rounds ---------------------------------------------------------------------------
daemon a
daemon b
echo "LAB: L1 daemons up t=$(up)"
VM=bench
# QEMU's guest boots once, first, and waits stopped while vmmd has its turn: in four
# of five L1 runs where QEMU booted a fresh L2 after a vmmd round, L1 froze during that
# boot (silent 60 s, killed).
QN=1
qemu_start q1
qmp_open q1 7 || { bad "qemu_boot (no QMP)"; qstuck q1; finish; }
wait_count /tmp/q1.serial 150 $L2_WAIT || { bad "qemu_boot (no count 150 in ${L2_WAIT}s)"; qstuck q1; finish; }
tr -d '\r' < /tmp/q1.serial | grep "^LAB: " | grep -v "^LAB: mig n=" | sed "s/^/LAB-VM qemu /"
qmp q1 7 '{"execute":"stop"}'

r=1
while [ $r -le $RUNS ]; do
    echo "LAB: round $r vmmd t=$(up)"
    vmmd_round $r || echo "LAB-RESULT bench vmm=vmmd run=$r failed=1"
    [ $r = $RUNS ] && [ "$(vm_state b)" = running ] && vmmd_restored_migration
    for d in a b; do
        [ "$(vm_state $d)" = http404 ] && continue
        api $d POST /v1/vms/$VM/stop
        wait_state $d stopped 30
        api $d DELETE /v1/vms/$VM
        rm -rf /run/vmmd-$d/snapshots/$ID
    done
    echo "LAB: round $r qemu t=$(up)"
    qmp q$QN 7 '{"execute":"cont"}'
    qemu_round $r || echo "LAB-RESULT bench vmm=qemu run=$r failed=1"
    qmp q$QN 7 '{"execute":"stop"}'
    r=$((r + 1))
done
grep -i -e error -e warn /run/vmmd-a/vmmd.log /run/vmmd-b/vmmd.log | tail -n 20
echo "LAB: L1 bench-snapshot done t=$(up)"
finish
