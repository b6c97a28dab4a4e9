#!/bin/bash
# The worker sandbox (issue 12) against real workers: each runs as its VM's
# own uid with no capabilities, no new privileges and a seccomp filter, in
# its own namespaces with an empty root; from its view the database, the
# token and another VM's disk do not exist, and as its uid they cannot be
# opened; a forbidden system call ends it as "crashed" with the call's name;
# its cgroup carries the definition's limits and follows a PATCH; and the
# operator's switches (--no-sandbox, --require-sandbox) do what they say.
# Usage: test_sandbox.sh VMMD GUEST_DIR
set -uo pipefail

VMMD=$1
GUESTS=$2
source "$(dirname "$0")/daemon_fixture.sh"
require_kvm "the sandbox test"
if [[ $(id -u) -ne 0 ]]; then
    echo "SKIPPED: the worker sandbox needs a daemon running as root" >&2
    exit 77
fi

status_field() { awk -v k="$2:" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }' "/proc/$1/status"; }
control() { # VM_ID LINE: one command on the worker's control socket, its reply on stdout
    printf '%s\n' "$2" | socat -t 2 - "UNIX-CONNECT:$STATE/run/$1/control.sock" 2>/dev/null
}
cgroup_file() { # VM_ID FILE (v1 or v2 name): the value in the VM's cgroup, from the host report
    local dir
    for dir in /sys/fs/cgroup/*/vmmd.slice/"$1" /sys/fs/cgroup/vmmd.slice/"$1"; do
        [[ -f $dir/$2 ]] && { cat "$dir/$2"; return 0; }
    done
    return 1
}

start_daemon || exit 1

# --- what the host report says -------------------------------------------------
api GET /v1/host
check "host: the sandbox is on, with five namespaces and seccomp" \
    $([[ $(jbody .sandbox.enabled) == true && $(jbody '.sandbox.namespaces | length') == 5 &&
         $(jbody .sandbox.seccomp) == true && $(jbody .sandbox.own_uid_per_vm) == true ]]; echo $?)
cgroup_version=$(jbody .sandbox.cgroup.version)
check "host: which cgroup version serves the limits, and why ($cgroup_version)" \
    $([[ $cgroup_version =~ ^(v1|v2|none)$ && -n $(jbody .sandbox.cgroup.detail) ]]; echo $?)
uid_lo=$(jbody '.sandbox.uid_range[0]') uid_hi=$(jbody '.sandbox.uid_range[1]')

# --- two running VMs, each its own uid ------------------------------------------
head -c 1048576 /dev/urandom >"$tmp/secret.img"
chmod 600 "$tmp/secret.img"
api POST /v1/vms "$(vm_json one echo '"cpu_quota_pct":50,"cpu_weight":200')"
one=$(jbody .id)
api POST /v1/vms "$(vm_json two echo)"
two=$(jbody .id)
api POST /v1/vms/one/start
api POST /v1/vms/two/start
wait_state one running && wait_state two running
api GET /v1/vms/one/stats
pid1=$(jbody .sandbox.pid) uid1=$(jbody .sandbox.uid) mon1=$(jbody .sandbox.monitor_pid)
api GET /v1/vms/two/stats
pid2=$(jbody .sandbox.pid) uid2=$(jbody .sandbox.uid)
if ! [[ $pid1 =~ ^[0-9]+$ && $pid2 =~ ^[0-9]+$ && $mon1 =~ ^[0-9]+$ ]]; then
    check "two sandboxed workers to examine (pids '$pid1' '$pid2')" 1
    finish
    exit 1
fi
check "both workers are sandboxed, uids in the range and different ($uid1, $uid2)" \
    $([[ $(jbody .sandbox.sandboxed) == true && $uid1 -ge $uid_lo && $uid1 -le $uid_hi &&
         $uid2 -ge $uid_lo && $uid2 -le $uid_hi && $uid1 != "$uid2" ]]; echo $?)
check "/proc/<worker>/status: Seccomp 2, NoNewPrivs 1, no capabilities, uid and gid $uid1" \
    $([[ $(status_field "$pid1" Seccomp) == 2 && $(status_field "$pid1" NoNewPrivs) == 1 &&
         $(status_field "$pid1" CapEff) == 0000000000000000 &&
         $(status_field "$pid1" CapBnd) == 0000000000000000 &&
         $(status_field "$pid1" Uid | tr -s '\t ' ' ') == "$uid1 $uid1 $uid1 $uid1" &&
         $(status_field "$pid1" Gid | tr -s '\t ' ' ') == "$uid1 $uid1 $uid1 $uid1" ]]; echo $?)
same_ns=0
for ns in pid mnt net ipc uts; do
    [[ $(readlink "/proc/$pid1/ns/$ns") == $(readlink "/proc/self/ns/$ns") ]] && same_ns=1
    [[ $ns != pid && $(readlink "/proc/$pid1/ns/$ns") == $(readlink "/proc/$pid2/ns/$ns") ]] &&
        same_ns=1
done
check "its pid, mount, net, ipc and uts namespaces are its own (pid 1 inside)" \
    $([[ $same_ns -eq 0 && $(status_field "$pid1" NSpid | awk '{print $NF}') == 1 ]]; echo $?)
check "the monitor outside holds nothing: no socket, no /dev/kvm, no disk" \
    $([[ $(ls "/proc/$mon1/fd" | wc -l) -le 4 ]] &&
      ! ls -l "/proc/$mon1/fd" | grep -qE "socket:|kvm|\.img|\.elf"; echo $?)
check "its root is empty: the database, the token, another VM's disk are not there" \
    $([[ -z $(ls -A "/proc/$pid1/root/") && ! -e /proc/$pid1/root$STATE/vmmd.db &&
         ! -e /proc/$pid1/root$STATE/token && ! -e /proc/$pid1/root$tmp/secret.img &&
         ! -e /proc/$pid1/root/etc/passwd ]]; echo $?)
# Entering all its namespaces and its root as its uid: even a shell cannot be found.
nsenter -t "$pid1" -m -u -i -n -p -r -w -S "$uid1" -G "$uid1" /bin/sh -c true 2>"$tmp/nsenter.err"
check "in its namespaces and root, as its uid, nothing can be run or opened" \
    $([[ $? -ne 0 ]] && grep -q "No such file" "$tmp/nsenter.err"; echo $?)
denied=0
for f in "$STATE/vmmd.db" "$STATE/token" "$tmp/secret.img"; do
    setpriv --reuid "$uid1" --regid "$uid1" --clear-groups cat "$f" >/dev/null 2>&1 && denied=1
done
check "as its uid in the host's view, the database, the token and a disk stay closed" $denied
check "its cgroup: memory limit is guest RAM plus the worker's overhead" \
    $([[ $cgroup_version == none ]] ||
      { m=$(cgroup_file "$one" memory.limit_in_bytes || cgroup_file "$one" memory.max);
        [[ $m -gt $((32 << 20)) && $m -le $((32 << 20 + 256 << 20)) ]]; }; echo $?)
check "its cgroup: a pids cap, CPU quota 50 % and weight 200 from the definition" \
    $([[ $cgroup_version == none ]] ||
      { [[ $(cgroup_file "$one" pids.max) =~ ^[0-9]+$ ]] &&
        { [[ $(cgroup_file "$one" cpu.cfs_quota_us) == 50000 && $(cgroup_file "$one" cpu.shares) == 2048 ]] ||
          [[ $(cgroup_file "$one" cpu.max) == "50000 100000" && $(cgroup_file "$one" cpu.weight) == 200 ]]; }; }; echo $?)
api PATCH /v1/vms/one '{"cpu_quota_pct":250,"cpu_weight":50}'
check "PATCH of CPU limits while running: 200 and applied at once" \
    $([[ $status == 200 && $(jbody .cpu_quota_pct) == 250 ]] &&
      { [[ $cgroup_version == none ]] || [[ $(cgroup_file "$one" cpu.cfs_quota_us) == 250000 ||
                                           $(cgroup_file "$one" cpu.max) == "250000 100000" ]]; }; echo $?)
api PATCH /v1/vms/one '{"cpu_weight":0}'
check "a CPU weight out of range: 422 naming the field" \
    $([[ $status == 422 && $(jbody .detail) == cpu_weight* ]]; echo $?)
api PATCH /v1/vms/one '{"memory_mib":64}'
check "other fields still need a stopped VM: 409" $([[ $status == 409 ]]; echo $?)

# --- the control protocol inside the sandbox (what the fuzzer found odd) ---------
reply=$(printf '{"cmd":"status"}\0junk\n' | socat -t 1 - "UNIX-CONNECT:$STATE/run/$two/control.sock" 2>/dev/null)
check "a control line with a NUL byte: refused at once, not left pending" \
    $(grep -q "must not contain NUL" <<<"$reply"; echo $?)
# (stdin stays open a while: the worker takes a client's EOF as its leaving)
reply=$( (printf '{"cmd":"attach"}\nsame-packet\n'; sleep 1) |
    socat -t 1 - "UNIX-CONNECT:$STATE/run/$two/control.sock" 2>/dev/null)
check "input in the same packet as attach reaches the guest" \
    $(grep -q "same-packet" <<<"$reply"; echo $?)

# --- a forbidden call ends the worker, and only that worker ---------------------
reply=$(control "$one" '{"cmd":"selftest-forbidden-syscall"}')
wait_state one crashed 5
check "a forbidden system call: the VM is crashed, the reason names it" \
    $([[ $(jbody .state_reason) == "seccomp: syscall openat" && -z $reply ]]; echo $?)
grep -q "seccomp: syscall openat" "$STATE/run/$one/worker.log"
check "the worker's log says so too" $?
curl -s -N --max-time 2 --unix-socket "$SOCK" "http://vmmd/v1/events?since=0" >"$tmp/events"
check "the event stream carries the crash with its reason" \
    $(grep -q '"reason":"seccomp: syscall openat"' "$tmp/events"; echo $?)
api GET /v1/vms/two
check "the other VM keeps running" $([[ $(jbody .state) == running ]]; echo $?)
sleep 0.3
check "the crashed VM's cgroup is gone" \
    $([[ $cgroup_version == none ]] || ! cgroup_file "$one" cgroup.procs >/dev/null; echo $?)

# --- a daemon restart finds the sandboxed worker again --------------------------
kill -9 "$daemon_pid"
wait "$daemon_pid" 2>/dev/null
start_daemon || exit 1
wait_state two running
api GET /v1/vms/two/stats
check "after kill -9 of the daemon: reattached, same uid, still sandboxed" \
    $([[ $(jbody .sandbox.uid) == "$uid2" && $(jbody .sandbox.sandboxed) == true &&
         $(jbody .sandbox.pid) == "$pid2" ]]; echo $?)
api POST /v1/vms/two/stop
wait_state two stopped
# The daemon records "stopped" when the worker's socket closes, just before the worker tears
# its VM down and exits: a moment later it must be gone.
for _ in $(seq 100); do [[ -e /proc/$pid2 ]] || break; sleep 0.05; done
check "a stopped sandboxed VM: its worker and monitor are gone" \
    $([[ ! -e /proc/$pid2 ]]; echo $?)
kill "$daemon_pid"
wait "$daemon_pid" 2>/dev/null

# --- the operator's switches ----------------------------------------------------
start_daemon --no-sandbox || exit 1
api GET /v1/host
check "--no-sandbox: the host report says it is off and why" \
    $([[ $(jbody .sandbox.enabled) == false && $(jbody .sandbox.detail) == *no-sandbox* ]]; echo $?)
grep -q "SANDBOX OFF" "$tmp/vmmd.log"
check "--no-sandbox is logged loudly" $?
api POST /v1/vms/two/start
wait_state two running
api GET /v1/vms/two/stats
check "--no-sandbox: the worker runs unfiltered in the host's namespaces" \
    $([[ $(jbody .sandbox.sandboxed) == false && $(jbody .sandbox.uid) == 0 &&
         $(status_field "$(jbody .sandbox.pid)" Seccomp) == 0 ]]; echo $?)
api POST /v1/vms/two/stop
wait_state two stopped
kill "$daemon_pid"
wait "$daemon_pid" 2>/dev/null

"$VMMD" serve --state-dir "$STATE" --no-sandbox --require-sandbox 2>"$tmp/both.err"
check "--no-sandbox with --require-sandbox: a usage error" \
    $([[ $? -eq 2 ]] && grep -q contradict "$tmp/both.err"; echo $?)

# A daemon that is not root cannot sandbox: with --require-sandbox no VM starts.
nobody_state=$tmp/nobody
mkdir -p "$nobody_state"
chown nobody "$nobody_state" "$tmp"
setpriv --reuid nobody --regid nogroup --clear-groups "$VMMD" serve --state-dir "$nobody_state" \
    --image-dir "$GUESTS" --require-sandbox >"$tmp/nobody.log" 2>&1 &
nobody_pid=$!
for _ in $(seq 100); do [[ -S $nobody_state/vmmd.sock ]] && break; sleep 0.05; done
SOCK=$nobody_state/vmmd.sock
api GET /v1/host
check "not root: the host report says the sandbox is unavailable, and why" \
    $([[ $(jbody .sandbox.enabled) == false && $(jbody .sandbox.required) == true &&
         $(jbody .sandbox.detail) == *root* ]]; echo $?)
api POST /v1/vms "$(vm_json three echo)"
api POST /v1/vms/three/start
check "--require-sandbox without one: the start is refused (409) and says why" \
    $([[ $status == 409 && $(jbody .detail) == *require-sandbox* ]]; echo $?)
kill "$nobody_pid"
wait "$nobody_pid" 2>/dev/null

finish
