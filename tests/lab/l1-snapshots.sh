#!/bin/busybox sh
# L1 init of the lab's snapshot test (test_lab_snapshots.sh puts it in the L1
# initramfs as /init; see that script for what is checked and why). The vmmd
# daemon runs inside L1 and boots, one after the other, a pv and a full-mode
# L2 (2 vCPUs each, an ext4 image in L1 as its disk) whose init runs l2-init.sh's
# "snapbusy" loop; L1 snapshots, restores and fscks them through the API.
# Results are "LAB-CHECK ok|fail NAME [detail]" and "LAB-RESULT ..." lines on ttyS0.
. /lab-lib.sh

STATE=/run/vmmd SOCK=/run/vmmd/vmmd.sock
mkdir -p $STATE
/vmmd serve --state-dir $STATE --image-dir /l2 --no-networks \
    --log-file /run/vmmd.log --log-level debug &
i=0
while [ ! -S $SOCK ] && [ $i -lt 300 ]; do usleep 100000; i=$((i + 1)); done
[ -S $SOCK ] || { cat /run/vmmd.log; fail "the daemon did not come up"; }
echo "LAB: L1 daemon up t=$(up)"
# api METHOD PATH [BODY]: the answer's body in /tmp/body, its status in /tmp/status
api() {
    curl -s -o /tmp/body -w '%{http_code}' --unix-socket $SOCK -X "$1" ${3:+-H 'Content-Type: application/json' -d "$3"} \
        "http://vmmd$2" > /tmp/status
}
status() { cat /tmp/status; }
# jget KEY: KEY's scalar value in /tmp/body (the first one; flat enough for these answers)
jget() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p" /tmp/body | head -n 1; }
body() { head -c 300 /tmp/body; }

# console VM FILE: the VM's console (its current worker's) in FILE, without CRs
console() { api GET "/v1/vms/$1/console?tail=262144"; tr -d '\r' < /tmp/body > "$2"; }
# ticks FILE: "N UPTIME WALL" of each complete tick line
ticks() { sed -n 's/^LAB: tick n=\([0-9]*\) up=\([0-9.]*\) wall=\([0-9]*\)$/\1 \2 \3/p' "$1"; }
last_tick() { console $1 /tmp/c-$1; ticks /tmp/c-$1 | tail -n 1; }
# wait_tick VM N SECONDS: until the VM's console shows tick N or later (a line
# every 10 s meanwhile: the host takes 60 s of silence for a stalled L1)
wait_tick() {
    i=0
    while [ $i -lt $(($3 * 2)) ]; do
        set -- "$1" "$2" "$3" $(last_tick $1)
        [ -n "$4" ] && [ "$4" -ge "$2" ] && return 0
        sleep 0.5; i=$((i + 1))
        [ $((i % 20)) = 0 ] && echo "LAB: waiting for $1's tick $2 (at ${4:-none}) t=$(up)"
    done
    return 1
}
# consecutive FILE: every tick in FILE follows the one before it
consecutive() { ticks "$1" | awk 'NR > 1 && $1 != p + 1 {bad = 1} {p = $1} END {exit bad || NR == 0}'; }
vm_state() { api GET /v1/vms/$1; jget state; }
wait_state() { # wait_state VM STATE SECONDS
    i=0
    while [ "$(vm_state $1)" != "$2" ] && [ $i -lt $(($3 * 2)) ]; do
        sleep 0.5; i=$((i + 1))
        [ $((i % 20)) = 0 ] && echo "LAB: waiting for $1 to be $2 t=$(up)"
    done
    [ "$(vm_state $1)" = "$2" ]
}
# What a VM that did not get on was doing: its state, its console's end, its worker's log.
stuck() {
    echo "LAB: $1 stuck: $(api GET /v1/vms/$1; grep -o '"state":"[a-z]*","state_reason":[^,]*' /tmp/body)"
    console $1 /tmp/stuck
    tail -n 15 /tmp/stuck | sed "s/^/LAB: $1 console: /"
    tail -n 20 $STATE/run/$2/worker.log 2>/dev/null | sed "s/^/LAB: $1 worker: /"
}
# type_line VM TEXT ID: TEXT and a newline on the VM's serial console (the
# worker's attach mode); the worker's reply line in /tmp/attach-reply
type_line() {
    printf '{"cmd":"attach","tail":0}\n%s\n' "$2" | socat -t 2 - UNIX-CONNECT:$STATE/run/$3/control.sock 2>&1 \
        | head -n 1 | head -c 200 > /tmp/attach-reply
}

# scenario MODE MODULES DISK [CMDLINE]: one L2 through boot, a live snapshot, a
# paused one with its disk copied, a run on, a restore (disk put back first),
# power off from the console, fsck.
scenario() {
    mode=$1 vm=snap-$1 img=/l2/disk-$1.img
    /usr/sbin/mke2fs -q -t ext4 -F $img 16M || { bad "${mode}_mkfs"; return; }
    cmd="$L2_CMDLINE lab.tests=snapbusy lab.mods=$2 lab.disk=$3 $4"
    api POST /v1/vms "{\"name\":\"$vm\",\"mode\":\"$mode\",\"vcpus\":2,\"memory_mib\":$L2_MEM,\"kernel\":\"/l2/vmlinuz\",\"initrd\":\"/l2/initrd\",\"cmdline\":\"$cmd\",\"disks\":[{\"path\":\"$img\"}]}"
    check ${mode}_create "status=$(status) $(body)" [ "$(status)" = 201 ]
    [ "$(status)" = 201 ] || return
    id=$(jget id)
    t0=$(now_ms)
    api POST /v1/vms/$vm/start
    check ${mode}_start "status=$(status)" [ "$(status)" = 200 ]
    if ! wait_tick $vm 15 $L2_WAIT; then bad "${mode}_busy_loop_running (no tick 15 in ${L2_WAIT}s)"; stuck $vm $id; return; fi
    t1=$(now_ms)
    grep "^LAB: " /tmp/c-$vm | grep -v "^LAB: tick" | sed "s/^/LAB-VM $vm /"
    set -- $(ticks /tmp/c-$vm | tail -n 1)
    echo "LAB-RESULT snapshots mode=$mode boot_to_tick15_s=$(ms_to_s $t0 $t1) wall_minus_l1_at_boot_s=$(($3 - $(date +%s)))"
    ok "${mode}_busy_loop_running (tick $1 up=$2 wall=$3)"

    # A live snapshot (resume:true): the guest must run on, not reboot, no tick lost.
    api POST /v1/vms/$vm/snapshot '{"name":"live","resume":true}'
    live_ms=$(jget paused_ms)
    check ${mode}_snapshot_live "status=$(status) vm_state=$(jget vm_state) paused_ms=$live_ms alloc=$(jget memory_allocated_bytes)" \
        [ "$(status)" = 201 -a "$(jget vm_state)" = running ]
    set -- $(last_tick $vm)
    wait_tick $vm $(($1 + 10)) 60
    console $vm /tmp/c-live
    l=$(ticks /tmp/c-live | tail -n 1 | cut -d' ' -f1) inits=$(grep -c 'LAB: L2 init reached' /tmp/c-live)
    check ${mode}_live_snapshot_runs_on "tick $1 at the snapshot -> ${l:-none}, init lines $inits, state=$(vm_state $vm)" \
        [ "${l:-0}" -ge $(($1 + 10)) -a "$inits" = 1 ]
    check ${mode}_live_snapshot_ticks_consecutive "" consecutive /tmp/c-live

    # The snapshot to restore, taken paused (resume:false) so that the disk can be
    # copied as it is at that instant: a snapshot holds RAM and device state, not
    # the disks, and RAM whose page cache and journal disagree with the disk would
    # corrupt the file system. Then the guest runs on, ahead of both.
    t_s1=$(date +%s)
    api POST /v1/vms/$vm/snapshot '{"name":"s1","resume":false}'
    st=$(status) s1_ms=$(jget paused_ms) s1_alloc=$(jget memory_allocated_bytes)
    state=$(vm_state $vm)
    check ${mode}_snapshot_s1 "status=$st paused_ms=$s1_ms state=$state" [ "$st" = 201 -a "$state" = paused ]
    console $vm /tmp/c-s1
    set -- $(ticks /tmp/c-s1 | tail -n 1)
    N=$1 upN=$2 wallN=$3
    cp $img /tmp/disk-$mode.s1
    t_snap=$(date +%s)
    api POST /v1/vms/$vm/resume
    check ${mode}_resume "status=$(status) at tick $N up=$upN wall=$wallN" [ "$(status)" = 200 ]
    wait_tick $vm $((N + 30)) 60
    set -- $(last_tick $vm)
    M=$1
    check ${mode}_ran_on_after_s1 "tick $N -> ${M:-none}" [ "${M:-0}" -gt $((N + 20)) ]

    # Back to s1: stop (the disk is free), the disk as it was, restore (which starts it).
    api POST /v1/vms/$vm/stop
    wait_state $vm stopped 60 || { bad "${mode}_stopped (state=$(vm_state $vm))"; return; }
    cp /tmp/disk-$mode.s1 $img
    t_restore=$(date +%s) r0=$(now_ms)
    api POST /v1/vms/$vm/restore '{"snapshot":"s1"}'
    r1=$(now_ms)
    check ${mode}_restore "status=$(status) state=$(jget state) in $(ms_to_s $r0 $r1)s" [ "$(status)" = 200 -a "$(jget state)" = running ]
    if ! wait_tick $vm $((N + 3)) 60; then bad "${mode}_restored_ticks (none after 60 s)"; stuck $vm $id; return; fi
    r2=$(now_ms)
    wait_tick $vm $((N + 20)) 60
    console $vm /tmp/c-r
    set -- $(ticks /tmp/c-r | head -n 1)
    n1=$1 up1=$2 wall1=$3
    # The clocks of the first tick may have been read before the snapshot (the
    # shell was between reading them and printing): the second one's were read after.
    set -- $(ticks /tmp/c-r | sed -n 2p)
    up2=$2 wall2=$3
    echo "LAB: $mode restored console starts: $(head -c 120 /tmp/c-r | head -n 2 | tr '\n' '|')"
    check ${mode}_restore_no_reboot "no init line; uptime $upN at s1 -> $up1 after" \
        sh -c "! grep -q 'L2 init reached' /tmp/c-r && awk -v a=$upN -v b=${up1:-0} 'BEGIN {exit !(b >= a)}'"
    # The first tick after the restore is N+1 (N+2 when N+1 was half written at the snapshot).
    check ${mode}_restore_counter_continues "tick $N at s1 ($M before the restore) -> first ${n1:-none} after" \
        [ "${n1:-0}" -ge $((N + 1)) -a "${n1:-0}" -le $((N + 2)) ]
    check ${mode}_restored_ticks_consecutive "" consecutive /tmp/c-r
    up_jump=$(awk -v a=$upN -v b=${up2:-0} 'BEGIN {printf "%.2f", b - a}')
    lag=$((t_restore - ${wall2:-0})) seen=$((r2 / 1000))
    echo "LAB-RESULT snapshots mode=$mode live_paused_ms=$live_ms s1_paused_ms=$s1_ms s1_memory_allocated=$s1_alloc" \
         "restore_api_s=$(ms_to_s $r0 $r1) restore_to_tick_s=$(ms_to_s $r0 $r2) gap_s=$((t_restore - t_snap))" \
         "uptime_jump_s=$up_jump wall_minus_l1_at_s1_s=$((wallN - t_s1)) wall_behind_l1_at_restore_s=$lag"
    # pv's kvm-clock (KVM_CLOCK_REALTIME) and full mode's TSC are moved on by the time the
    # snapshot lay. The second tick read its clocks between the restore call (t_restore)
    # and the console read that showed it (seen): its wall clock must lie there, give or take 2 s.
    check ${mode}_restore_wall_clock "second tick's wall ${wall2:-none}, L1 between $t_restore and $seen" \
        [ ${wall2:-0} -ge $((t_restore - 2)) -a ${wall2:-0} -le $((seen + 2)) ]

    # Ticks onto the disk after the restore, then power off from the console.
    wait_tick $vm $((n1 + 25)) 60
    type_line $vm lab-poweroff $id
    tries="reply1=$(cat /tmp/attach-reply)"
    if ! wait_state $vm stopped 30; then
        # Was the line echoed (the guest's tty got it)? Then once more.
        console $vm /tmp/c-end
        tries="$tries echoed=$(grep -c lab-poweroff /tmp/c-end) ticks_to=$(ticks /tmp/c-end | tail -n 1 | cut -d' ' -f1)"
        tail -n 4 /tmp/c-end | sed "s/^/LAB: $mode console: /"
        type_line $vm lab-poweroff $id
        tries="$tries reply2=$(cat /tmp/attach-reply)"
        wait_state $vm stopped 30
    fi
    console $vm /tmp/c-end
    state=$(vm_state $vm)
    check ${mode}_poweroff_from_console "$(grep -o 'LAB: snapbusy umount=[a-z]* n=[0-9]*' /tmp/c-end) state=$state $tries" \
        grep -q 'LAB: snapbusy umount=ok' /tmp/c-end
    if [ "$state" != stopped ]; then
        stuck $vm $id
        api POST /v1/vms/$vm/stop
        wait_state $vm stopped 30
    fi
    last=$(ticks /tmp/c-end | tail -n 1 | cut -d' ' -f1)
    /usr/sbin/e2fsck -fn $img > /tmp/fsck.out 2>&1
    rc=$?
    sed "s/^/LAB: $mode e2fsck: /" /tmp/fsck.out | tail -n 12
    check ${mode}_fsck_clean "e2fsck -fn rc=$rc" [ $rc = 0 ]
    # The disk's log: 10, 20, ... up to the last tick, none of the discarded run's twice.
    /usr/sbin/debugfs -R "cat /ticks.log" $img 2>/dev/null > /tmp/ticks-$mode
    check ${mode}_disk_log "$(wc -l < /tmp/ticks-$mode) lines, last $(tail -n 1 /tmp/ticks-$mode | cut -d' ' -f1), last tick $last" \
        awk -v last=${last:-0} '$1 != (NR * 10) {bad = 1} END {exit bad || NR != int(last / 10)}' /tmp/ticks-$mode
    grep -i -e error -e warn -e snapshot -e restor -e paus $STATE/run/$id/worker.log 2>/dev/null | tail -n 20 | sed "s/^/LAB: $mode worker: /"
    api DELETE /v1/vms/$vm
}

scenario pv virtio vda
# Full mode's Linux keeps time with the TSC, as on hardware, but under TCG it cannot
# calibrate it against the PIT or PM timer (too noisy: "Marking TSC unstable due to could
# not calculate TSC khz", then acpi_pm, which no hypervisor can move on). So it is told
# the frequency L1's KVM gives it (L1's own) and that the TSC is reliable.
khz=$(dmesg | sed -n 's/.*tsc: \(Detected\|Refined TSC clocksource calibration:\) \([0-9]*\)\.\([0-9]*\) MHz.*/\2\3/p' | tail -n 1)
echo "LAB: L1 TSC ${khz:-unknown} kHz"
scenario full ide sda "tsc_early_khz=$khz tsc=reliable"
grep -e error -e warn /run/vmmd.log | tail -n 20
echo "LAB: L1 snapshots done t=$(up)"
finish
