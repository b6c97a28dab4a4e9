#!/bin/bash
# Integration: what an attacker of the daemon found (issue 11), each as a
# regression test against a real daemon and real workers: a VM file swapped
# for a symlink after create, a kernel replaced by a FIFO, descriptors
# inherited from whatever started the daemon, a state directory on a full
# filesystem (no worker may run that the store does not know, and a restart
# finds the workers the store lost), stop during starting, and VM names in
# the form of another VM's id.
# Usage: test_daemon_hardening.sh VMMD GUEST_DIR
set -uo pipefail

VMMD=$1
GUESTS=$(cd "$2" && pwd)
. "$(dirname "${BASH_SOURCE[0]}")/daemon_fixture.sh"
require_kvm "the daemon hardening tests"
fail_detail() { echo "(last: HTTP $status $(head -c 300 "$tmp/body" 2>/dev/null))"; }

IMAGES=$tmp/images
mkdir -p "$IMAGES/sub"
cp "$GUESTS/guest-idle.elf" "$IMAGES/idle.elf"
cp "$GUESTS/guest-idle.elf" "$IMAGES/sub/idle.elf"
truncate -s 1M "$IMAGES/d1.img"
echo "not a secret" >"$tmp/outside"
# A descriptor the daemon inherits and must not pass on.
exec 9<"$tmp/outside"
start_daemon --image-dir "$IMAGES" || exit 1
exec 9<&-

workers_of() { count_workers "$1"; }
vm_id() { api GET "/v1/vms/$1"; jbody .id; }
files_of() { ls -l /proc/"$1"/fd/ 2>/dev/null | awk '{print $NF}'; }

# --- 1. a path checked at create is never trusted at start --------------------------
api POST /v1/vms "{\"name\":\"swap\",\"kernel\":\"$IMAGES/idle.elf\",\"memory_mib\":32,\"disks\":[{\"path\":\"$IMAGES/d1.img\"}]}"
check "create a VM with a disk in the image directory" $([[ $status == 201 ]]; echo $?)
rm "$IMAGES/d1.img"
ln -s "$tmp/outside" "$IMAGES/d1.img"
api POST /v1/vms/swap/start
check "disk swapped for a symlink after create: start refused with 403 naming the field" \
    $([[ $status == 403 ]] && jbody .detail | grep -q '^disks\[0\].path: .*symlink'; echo $?)
check "and no worker ran" $([[ $(workers_of "$(vm_id swap)") == 0 && $(jbody .state) == stopped ]]; echo $?)
rm "$IMAGES/d1.img"
truncate -s 1M "$IMAGES/d1.img"
rm "$IMAGES/idle.elf"
ln -s "$GUESTS/guest-idle.elf" "$IMAGES/idle.elf"
api POST /v1/vms/swap/start
check "kernel swapped for a symlink (even to a real kernel): 403" \
    $([[ $status == 403 ]] && jbody .detail | grep -q '^kernel: '; echo $?)
rm "$IMAGES/idle.elf"
cp "$GUESTS/guest-idle.elf" "$IMAGES/idle.elf"
# A directory on the way swapped for a symlink leaving the image directory.
api POST /v1/vms "{\"name\":\"subdir\",\"kernel\":\"$IMAGES/sub/idle.elf\",\"memory_mib\":32}"
mv "$IMAGES/sub" "$tmp/sub-moved"
ln -s "$tmp/sub-moved" "$IMAGES/sub"
api POST /v1/vms/subdir/start
check "a directory of the path swapped for a symlink: 403" $([[ $status == 403 ]]; echo $?)
rm "$IMAGES/sub"
mv "$tmp/sub-moved" "$IMAGES/sub"

# --- 5. a FIFO never hangs a start ---------------------------------------------------------
api POST /v1/vms "{\"name\":\"fifo\",\"kernel\":\"$IMAGES/sub/idle.elf\",\"memory_mib\":32}"
rm "$IMAGES/sub/idle.elf"
mkfifo "$IMAGES/sub/idle.elf"
t0=$(date +%s%N)
status=$(curl -s -m 10 -o "$tmp/body" -w '%{http_code}' -X POST --unix-socket "$SOCK" \
         http://vmmd/v1/vms/fifo/start) # before the fix this start never answered
ms=$((($(date +%s%N) - t0) / 1000000))
check "kernel replaced by a FIFO: 422 'not a regular file' in ${ms} ms" \
    $([[ $status == 422 && $ms -lt 2000 ]] && jbody .detail | grep -q 'not a regular file'; echo $?)
api GET /v1/vms/fifo
check "and the VM is stopped, not starting" $([[ $(jbody .state) == stopped ]]; echo $?)
rm "$IMAGES/sub/idle.elf"
cp "$GUESTS/guest-idle.elf" "$IMAGES/sub/idle.elf"

# --- 6. workers get only what they are handed ---------------------------------------------
api POST /v1/vms/swap/start
check "the VM starts once its files are plain again" $([[ $status == 200 ]]; echo $?)
pid=$(worker_of "$(vm_id swap)")
check "its worker holds its disk by descriptor" $(files_of "$pid" | grep -qx "$IMAGES/d1.img"; echo $?)
check "and not the descriptor the daemon inherited" $(! files_of "$pid" | grep -qx "$tmp/outside"; echo $?)
check "the worker cannot gain privileges (NoNewPrivs: 1)" \
    $(grep -qE '^NoNewPrivs:\s+1$' "/proc/$pid/status"; echo $?)
check "it leaves no core dump and holds at most 1024 descriptors" \
    $(grep -qE '^Max core file size +0 +0 ' "/proc/$pid/limits" &&
      grep -qE '^Max open files +1024 +1024 ' "/proc/$pid/limits"; echo $?)

# --- 8. a stop asked for during starting ends as stopped -----------------------------------
api GET /metrics
lost_before=$(grep -m1 '^vmmd_workers_lost_total' "$tmp/body" | awk '{print $2}')
for _ in $(seq 10); do
    racers=()
    curl -s -m 20 -o /dev/null --unix-socket "$SOCK" -X POST http://vmmd/v1/vms/fifo/start &
    racers+=($!)
    curl -s -m 20 -o /dev/null --unix-socket "$SOCK" -X POST http://vmmd/v1/vms/fifo/stop &
    racers+=($!)
    curl -s -m 20 -o /dev/null --unix-socket "$SOCK" -X PATCH -d '{"autostart":false}' \
        http://vmmd/v1/vms/fifo &
    racers+=($!)
    wait "${racers[@]}" # not the daemon, also a child of this shell
done
api POST /v1/vms/fifo/stop
wait_state fifo stopped 10
check "20 racing starts and stops end stopped" $([[ $(jbody .state) == stopped ]]; echo $?)
api GET /metrics
lost_after=$(grep -m1 '^vmmd_workers_lost_total' "$tmp/body" | awk '{print $2}')
check "and none of them was recorded as crashed" $([[ $lost_before == "$lost_after" ]]; echo $?)

# --- 9. a name in the form of an id ------------------------------------------------------------
swap_id=$(vm_id swap)
api POST /v1/vms "{\"name\":\"$swap_id\",\"kernel\":\"$IMAGES/idle.elf\",\"memory_mib\":32}"
check "a name that is another VM's id: 422" \
    $([[ $status == 422 ]] && jbody .detail | grep -q 'form of a VM id'; echo $?)

# --- files of a run directory, which its worker can write ------------------------------
# A worker that leaves a FIFO where its exit file goes, then dies: the daemon must not wait.
api POST /v1/vms/swap/start
swap_dir=$STATE/run/$swap_id
pid=$(pgrep -f -- "--control $swap_dir/" | head -n 1)
rm -f "$swap_dir/exit.json"
mkfifo "$swap_dir/exit.json"
kill -9 "$pid"
wait_state swap crashed 5
check "a FIFO as the exit file: the VM is marked crashed, the daemon does not hang" $?
rm -f "$swap_dir/exit.json"
# Its log and console log turned into symlinks to a host file: neither written nor served.
echo "host secret" >"$tmp/victim"
rm -f "$swap_dir/worker.log" "$swap_dir/console.log"
ln -s "$tmp/victim" "$swap_dir/worker.log"
api POST /v1/vms/swap/start
api POST /v1/vms/swap/stop
wait_state swap stopped 10
check "worker.log as a symlink: the host file is not appended to" \
    $([[ $(cat "$tmp/victim") == "host secret" ]]; echo $?)
rm -f "$swap_dir/console.log"
ln -s "$tmp/victim" "$swap_dir/console.log"
api GET "/v1/vms/swap/console?tail=4096"
check "console.log as a symlink: its target is not served" $(! grep -q "host secret" "$tmp/body"; echo $?)
rm -f "$swap_dir/worker.log" "$swap_dir/console.log"
api POST /v1/vms/swap/start # running again for the lost-worker checks below

# A disk path with a comma could smuggle options into the worker's --disk flag.
truncate -s 1M "$IMAGES/x,ro"
api POST /v1/vms "{\"name\":\"comma\",\"kernel\":\"$IMAGES/idle.elf\",\"memory_mib\":32,\"disks\":[{\"path\":\"$IMAGES/x,ro\"}]}"
check "a disk path with ',' is refused (422 naming the field)" \
    $([[ $status == 422 ]] && jbody .detail | grep -q "^disks\[0\].path: .*','"; echo $?)

# --- 2. the store loses a worker: a restart finds it, a start does not double it ---------------
kill -9 "$daemon_pid"
wait "$daemon_pid" 2>/dev/null
sqlite3 "$STATE/vmmd.db" "UPDATE vms SET state = 'stopped', worker_pid = 0 WHERE name = 'swap'"
start_daemon --image-dir "$IMAGES" || exit 1
wait_state swap running 5
check "restart: a live worker the store lists as stopped is found by its socket" $?
api POST /v1/vms/swap/start
check "and a start answers 409 instead of running a second worker" $([[ $status == 409 ]]; echo $?)
check "one worker for the VM" $([[ $(workers_of "$swap_id") == 1 ]]; echo $?)
api POST /v1/vms/swap/stop
wait_state swap stopped 10
check "the adopted worker stops on request" $?
# A state directory on a full filesystem (a 2 MiB tmpfs): no worker may run unrecorded.
FULL=$tmp/full
mkdir -p "$FULL"
if mount -t tmpfs -o size=2m tmpfs "$FULL" 2>/dev/null; then
    kill -TERM "$daemon_pid"; wait "$daemon_pid" 2>/dev/null
    STATE_SAVED=$STATE
    STATE=$FULL/state SOCK=$FULL/state/vmmd.sock
    start_daemon --image-dir "$IMAGES" || exit 1
    api POST /v1/vms "{\"name\":\"f0\",\"kernel\":\"$IMAGES/idle.elf\",\"memory_mib\":32}"
    f0=$(jbody .id)
    dd if=/dev/zero of="$FULL/filler" bs=64k 2>/dev/null
    api POST /v1/vms/f0/start
    check "full state filesystem: the start is refused (HTTP $status: $(jbody .detail))" \
        $([[ $status == 507 || $status == 500 ]]; echo $?)
    sleep 0.5
    check "and no worker runs for it" $([[ $(workers_of "$f0") == 0 ]]; echo $?)
    rm -f "$FULL/filler"
    api POST /v1/vms/f0/start
    check "with room again it starts" $([[ $status == 200 ]]; echo $?)
    api POST /v1/vms/f0/stop
    wait_state f0 stopped 10
    kill -TERM "$daemon_pid"; wait "$daemon_pid" 2>/dev/null
    daemon_pid=
    pkill -9 -f -- "--control $STATE/run/" 2>/dev/null
    sleep 0.2
    umount "$FULL"
    STATE=$STATE_SAVED SOCK=$STATE_SAVED/vmmd.sock
else
    echo "SKIPPED: cannot mount a tmpfs here (needs root); the full-filesystem check did not run" >&2
fi

finish
