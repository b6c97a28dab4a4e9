#!/bin/busybox sh
# L1 init of the lab's live-migration test (test_lab_migration.sh puts it in
# the L1 initramfs as /init; see that script for what is checked and why).
# Two vmmd daemons run inside L1 (A and B, each its own state directory, the
# same image directory); a pv L2 with 2 vCPUs and a NIC on L1's bridge br-lab
# runs l2-init.sh's "migbusy" counter; L1 pings it while it moves A -> B and
# back B -> A. Results are "LAB-CHECK ok|fail NAME [detail]" and
# "LAB-RESULT ..." lines on ttyS0.
. /lab-lib.sh
ip link set lo up

# The bridge both daemons' workers put the VM's tap on, with L1's address on it.
brctl addbr br-lab || fail "brctl addbr"
brctl setfd br-lab 0
ip addr add $L1_IP/24 dev br-lab
ip link set br-lab up

daemon a
daemon b
echo "LAB: L1 daemons up t=$(up)"
# The counter lines' numbers, one a line ("N" for each whole "LAB: mig n=N"); the last
# line is left out: the guest may be printing it ("n=124" of 1240, seen once).
counts() { tr -d '\r' | sed '$d' | sed -n 's/^LAB: mig n=\([0-9]*\)$/\1/p'; }
console_file() { echo /run/vmmd-$1/run/$ID/console.log; }
# wait_count DAEMON N SECONDS: until the VM's console there shows count N or more
wait_count() {
    i=0
    while [ $i -lt $(($3 * 4)) ]; do
        c=$(tail -c 4096 $(console_file $1) 2>/dev/null | counts | tail -n 1)
        [ -n "$c" ] && [ "$c" -ge $2 ] && return 0
        usleep 250000; i=$((i + 1))
        [ $((i % 40)) = 0 ] && echo "LAB: waiting for count $2 on $1 (at ${c:-none}) t=$(up)"
    done
    return 1
}
# What a VM that did not get on was doing: its state, its console's end, its worker's log.
stuck() {
    echo "LAB: stuck on $1: $(vm_state $1)"
    tail -n 15 $(console_file $1) 2>/dev/null | tr -d '\r' | sed "s/^/LAB: console: /"
    tail -n 30 /run/vmmd-$1/run/$ID/worker.log 2>/dev/null | sed "s/^/LAB: $1 worker: /"
}

VM=mig
cmd="$L2_CMDLINE lab.tests=migbusy lab.mods=virtio lab.ip=$L2_IP/24 lab.sleep=$L2_SLEEP"
api a POST /v1/vms "{\"name\":\"$VM\",\"mode\":\"pv\",\"vcpus\":2,\"memory_mib\":$L2_MEM,\"kernel\":\"/l2/vmlinuz\",\"initrd\":\"/l2/initrd\",\"cmdline\":\"$cmd\",\"nics\":[{\"bridge\":\"br-lab\"}]}"
check create "status=$(status) $(body)" [ "$(status)" = 201 ]
[ "$(status)" = 201 ] || finish
ID=$(jget id)
t0=$(now_ms)
api a POST /v1/vms/$VM/start
check start "status=$(status)" [ "$(status)" = 200 ]
wait_count a 100 $L2_WAIT || { bad "busy_loop_running (no count 100 in ${L2_WAIT}s)"; stuck a; finish; }
t1=$(now_ms)
tr -d '\r' < $(console_file a) | grep "^LAB: " | grep -v "^LAB: mig n=" | sed "s/^/LAB-VM $VM /"
MAC=$(tr -d '\r' < $(console_file a) | sed -n 's/^LAB: migbusy .*mac=//p')
ping -c 3 -W 5 $L2_IP > /tmp/ping0 2>&1
check l2_answers_ping_on_a "$(grep -o '[0-9]* packets received' /tmp/ping0) mac=$MAC" grep -q ' [1-9] packets received' /tmp/ping0
echo "LAB-RESULT migration boot_to_count100_s=$(ms_to_s $t0 $t1)"

# migrate FROM TO: the VM moves while L1 pings it; FROM's console is kept
# through a descriptor held from before (FROM's daemon deletes the VM's run
# directory once it moved), and joined with TO's console after the switch.
migrate() {
    from=$1 to=$2 tag=$1$2
    exec 4< $(console_file $from)
    ping -i 0.05 $L2_IP > /tmp/ping-$tag 2>&1 &
    pingpid=$!
    sleep 1
    m0=$(now_ms)
    api $from POST /v1/vms/$VM/migrate "{\"target\":\"unix:/run/vmmd-$to/vmmd.sock\",\"max_downtime_ms\":$MIG_DOWNTIME_MS}"
    check ${tag}_migrate_accepted "status=$(status) $(body)" [ "$(status)" = 202 ]
    if [ "$(status)" != 202 ]; then kill -INT $pingpid; wait $pingpid; exec 4<&-; return 1; fi
    # Until the VM is gone from FROM, what its migration says (the last state seen).
    i=0 seen='' last=''
    while [ $i -lt 240 ]; do
        api $from GET /v1/vms/$VM/migration
        if [ "$(status)" = 200 ]; then
            s=$(jget state)
            [ "$s" != "$last" ] && seen="$seen${seen:+,}$s" last=$s
            [ "$s" = failed ] && break
        fi
        api $from GET /v1/vms/$VM
        [ "$(status)" = 404 ] && break
        # Not faster: each look is two curls, and L1 has one (TCG) CPU for
        # both workers, L2 and this.
        usleep 500000; i=$((i + 1))
        [ $((i % 20)) = 0 ] && echo "LAB: migrating $tag: $seen t=$(up)"
    done
    m1=$(now_ms)
    at_switch=$(grep -c 'seq=' /tmp/ping-$tag)
    gone=$(vm_state $from)
    check ${tag}_gone_from_source "state on $from: $gone, migration states seen: $seen, in $(ms_to_s $m0 $m1)s" [ "$gone" = http404 ]
    if [ "$gone" != http404 ]; then
        kill -INT $pingpid; wait $pingpid; exec 4<&-
        api $from GET /v1/vms/$VM/migration
        echo "LAB: $tag migration: $(head -c 600 /tmp/body)"
        stuck $from
        tail -n 30 /run/vmmd-$from/vmmd.log | sed "s/^/LAB: $from vmmd.log: /"
        tail -n 30 /run/vmmd-$to/vmmd.log | sed "s/^/LAB: $to vmmd.log: /"
        return 1
    fi
    on_to=$(vm_state $to)
    api $to GET /v1/vms/$VM
    check ${tag}_running_on_target "state on $to: $on_to, id $(jget id)" [ "$on_to" = running -a "$(jget id)" = "$ID" ]
    sleep 2
    kill -INT $pingpid
    wait $pingpid
    cat <&4 > /tmp/con-$tag-src
    exec 4<&-
    cp $(console_file $to) /tmp/con-$tag-dst 2>/dev/null

    # The source's migration, as its events tell it (its record went with the VM).
    events $from vm.migrated | tail -n 1 > /tmp/ev-$tag
    events $to vm.migrated_in | tail -n 1 > /tmp/evin-$tag
    down=$(sed -n 's/.*"downtime_ms":\([0-9.]*\).*/\1/p' /tmp/ev-$tag)
    total=$(sed -n 's/.*"total_ms":\([0-9.]*\).*/\1/p' /tmp/ev-$tag)
    rounds=$(sed -n 's/.*"rounds":\([0-9]*\).*/\1/p' /tmp/ev-$tag)
    bytes=$(sed -n 's/.*"bytes_sent":\([0-9]*\).*/\1/p' /tmp/ev-$tag)
    check ${tag}_migrated_event "$(head -c 300 /tmp/ev-$tag)" [ -n "$down" ]
    check ${tag}_migrated_in_event "$(head -c 200 /tmp/evin-$tag)" [ -s /tmp/evin-$tag ]
    case $seen in *done*) st=done ;; *failed*) st=failed ;; *) st=gone ;; esac
    check ${tag}_state_done "states seen: $seen; vm.migrated: ${down:+yes}" [ "$st" = done -o \( "$st" = gone -a -n "$down" \) ]

    # The counter across the switch: FROM's console then TO's, joined as they are
    # (a line half printed at the switch joins its other half), goes on by one.
    cat /tmp/con-$tag-src /tmp/con-$tag-dst | counts > /tmp/n-$tag
    src_last=$(counts < /tmp/con-$tag-src | tail -n 1)
    dst_first=$(counts < /tmp/con-$tag-dst | head -n 1)
    dst_last=$(counts < /tmp/con-$tag-dst | tail -n 1)
    split=no
    [ -n "$(tail -c 1 /tmp/con-$tag-src)" ] && split="'$(tail -n 1 /tmp/con-$tag-src | tr -d '\r')'"
    awk 'NR > 1 && $1 != p + 1 {printf "LAB: count gap %d -> %d\n", p, $1} {p = $1}' /tmp/n-$tag | head -n 5
    check ${tag}_counter_continues "last whole on $from ${src_last:-none}, first whole on $to ${dst_first:-none}, to ${dst_last:-none}; $from's tail unterminated: $split" \
        awk -v need=$((src_last + 20)) 'NR > 1 && $1 != p + 1 {bad = 1} {p = $1} END {exit bad || NR == 0 || p < need}' /tmp/n-$tag
    inits=$(cat /tmp/con-$tag-src /tmp/con-$tag-dst | grep -c 'LAB: L2 init reached')
    check ${tag}_no_reboot "init lines $inits" [ "$inits" -le 1 ]
    # What else the guest printed after the switch (its kernel, say), and the target worker's log.
    tr -d '\r' < /tmp/con-$tag-dst | grep -v '^LAB: mig n=' | head -n 60 | sed "s/^/LAB: $to console: /"
    grep -v '^LAB: mig n=' /tmp/con-$tag-dst | grep -q . &&
        tail -n 40 /run/vmmd-$to/run/$ID/worker.log 2>/dev/null | sed "s/^/LAB: $to worker: /"

    # Ping: how many were lost around the switch, and replies after it (B's network works).
    sed -n 's/.*seq=\([0-9]*\) .*/\1/p' /tmp/ping-$tag > /tmp/seq-$tag
    sent=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' /tmp/ping-$tag)
    got=$(wc -l < /tmp/seq-$tag)
    after=$(awk -v n=$at_switch 'NR > n' /tmp/seq-$tag | wc -l)
    lost=$(awk '{if (NR > 1 && $1 > p + 1) {n += $1 - p - 1; r = r sprintf(" %d-%d", p + 1, $1 - 1)} p = $1}
                END {printf "%d%s", n, r ? " (seq" r ")" : ""}' /tmp/seq-$tag)
    echo "LAB-RESULT migration dir=$tag downtime_ms=${down:-none} total_ms=${total:-none} rounds=${rounds:-none}" \
         "bytes_sent=${bytes:-none} api_to_gone_s=$(ms_to_s $m0 $m1) ping_sent=${sent:-none} ping_received=$got" \
         "ping_lost_between=$lost ping_replies_after_switch=$after"
    check ${tag}_network_after_switch "$after replies after the VM left $from (sent ${sent:-?}, received $got, lost $lost)" [ "$after" -ge 5 ]
    grep -i -e error -e warn -e migrat /run/vmmd-$from/vmmd.log | tail -n 8 | sed "s/^/LAB: $from vmmd.log: /"
}

migrate a b && migrate b a
api a POST /v1/vms/$VM/stop
api b POST /v1/vms/$VM/stop
grep -e error -e warn /run/vmmd-a/vmmd.log /run/vmmd-b/vmmd.log | tail -n 20
echo "LAB: L1 migration done t=$(up)"
finish
