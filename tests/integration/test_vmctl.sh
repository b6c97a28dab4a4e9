#!/bin/bash
# Integration: vmctl against a real vmmd daemon on /dev/kvm with the test
# guests. Every command in both output formats, the error paths and their
# exit codes (1 refused, 2 usage, 3 daemon down, 4 timeout), logs --follow
# and events --follow seeing a state change, and the interactive console
# driven through a pseudo-terminal (util-linux `script`) with the echo guest.
# Usage: test_vmctl.sh VMCTL VMMD GUEST_DIR
set -uo pipefail

VMCTL=$1
VMMD=$2
GUESTS=$(cd "$3" && pwd)
. "$(dirname "${BASH_SOURCE[0]}")/daemon_fixture.sh"
require_kvm "the vmctl integration tests"
. "$(dirname "${BASH_SOURCE[0]}")/vmctl_fixture.sh"
out() { cat "$tmp/out"; }


# --- before the daemon: usage errors and "cannot reach" ----------------------
v list
check "daemon down -> exit 3 with a hint" $([[ $rc == 3 ]] && grep -q "cannot reach" "$tmp/err" && grep -q "vmmd serve" "$tmp/err"; echo $?)
v list --bogus
check "bad flag -> exit 2" $([[ $rc == 2 ]]; echo $?)
v frobnicate
check "unknown command -> exit 2" $([[ $rc == 2 ]]; echo $?)
v list --output yaml
check "bad --output -> exit 2" $([[ $rc == 2 ]]; echo $?)
v show
check "missing argument -> exit 2" $([[ $rc == 2 ]]; echo $?)
v create x
check "create without --kernel -> exit 2" $([[ $rc == 2 ]]; echo $?)
all_help=0
for c in host list create show set start stop shutdown reboot pause resume delete console logs events stats wait network cluster version; do
    "$VMCTL" "$c" --help >"$tmp/out" 2>&1 && grep -q "Usage: vmctl $c" "$tmp/out" || { all_help=1; echo "  no help for $c"; }
done
rc=0
check "--help for every command" $all_help
v --help
check "vmctl --help lists the commands" $([[ $rc == 0 ]] && grep -q console "$tmp/out"; echo $?)

start_daemon --listen "127.0.0.1:$PORT" || exit 1
# TCP is TLS with the self-signed certificate the daemon made in its state directory.
export VMMD_CACERT=$STATE/tls-cert.pem

# --- host, version -----------------------------------------------------------
v host
check "host (table)" $([[ $rc == 0 ]] && grep -q "^kvm:" "$tmp/out" && grep -q "$GUESTS" "$tmp/out"; echo $?)
v host --output json
check "host (json)" $([[ $rc == 0 && -n $(jout .kvm.flavour) ]]; echo $?)
v version
check "version (table)" $([[ $rc == 0 ]] && grep -q "^vmctl " "$tmp/out" && grep -q "^vmmd " "$tmp/out"; echo $?)
v version -o json
check "version (json)" $([[ $rc == 0 && -n $(jout .vmctl) && -n $(jout .vmmd) ]]; echo $?)

# --- TCP with a bearer token ----------------------------------------------------
v --url "https://127.0.0.1:$PORT" host
check "--url without a token -> exit 1 (401)" $([[ $rc == 1 ]] && grep -qi token "$tmp/err"; echo $?)
v host --url "https://127.0.0.1:$PORT" --token-file "$STATE/token" -o json
check "--url with --token-file" $([[ $rc == 0 && -n $(jout .version) ]]; echo $?)
VMMD_URL="https://127.0.0.1:$PORT" VMMD_TOKEN_FILE="$STATE/token" v list -o json
check "VMMD_URL and VMMD_TOKEN_FILE" $([[ $rc == 0 ]]; echo $?)

# --- create, list, show, set --------------------------------------------------
v create demo --kernel "$GUESTS/guest-echo.elf" --memory 32 --cmdline "console=ttyS0"
check "create (table)" $([[ $rc == 0 ]] && grep -q "^name: *demo" "$tmp/out" && grep -q "32 MiB" "$tmp/out"; echo $?)
v create idle --kernel "$GUESTS/guest-idle.elf" --memory 32 --vcpus 1 --mode full -o json
check "create (json)" $([[ $rc == 0 && $(jout .name) == idle && $(jout .mode) == full && $(jout .state) == stopped ]]; echo $?)
echo "{\"name\":\"fromfile\",\"kernel\":\"$GUESTS/guest-hello.elf\",\"memory_mib\":32}" >"$tmp/def.json"
v create --from-file "$tmp/def.json" -o json
check "create --from-file" $([[ $rc == 0 && $(jout .name) == fromfile ]]; echo $?)
v create disky --kernel "$GUESTS/guest-idle.elf" --memory 32 --disk "$GUESTS/guest-hello.elf,ro" --nic tap=vmmdctl0,mac=52:54:00:12:34:56 -o json
check "create --disk PATH,ro --nic tap=...,mac=..." $([[ $rc == 0 && $(jout '.disks[0].readonly') == true && $(jout '.nics[0].tap') == vmmdctl0 && $(jout '.nics[0].mac') == 52:54:00:12:34:56 ]]; echo $?)
v create demo --kernel "$GUESTS/guest-echo.elf" --memory 32
check "create duplicate -> exit 1 with the message" $([[ $rc == 1 ]] && grep -q demo "$tmp/err"; echo $?)
v create bad --kernel /etc/passwd
check "create outside the image dirs -> exit 1" $([[ $rc == 1 ]] && grep -q kernel "$tmp/err"; echo $?)
v list
check "list (table, aligned, header)" $([[ $rc == 0 ]] && head -1 "$tmp/out" | grep -q "^NAME *STATE *MODE *VCPUS *MEMORY *UPTIME" && grep -q "^demo *stopped *pv *1 *32 MiB" "$tmp/out"; echo $?)
v list -o json
check "list (json)" $([[ $rc == 0 && $(jq length "$tmp/out") == 4 ]]; echo $?)
v list --state running -o json
check "list --state running (none yet)" $([[ $rc == 0 && $(jq length "$tmp/out") == 0 ]]; echo $?)
v list --state exploded
check "list --state bad -> exit 2" $([[ $rc == 2 ]]; echo $?)
v show demo
check "show (table)" $([[ $rc == 0 ]] && grep -q "^kernel: .*guest-echo.elf" "$tmp/out"; echo $?)
v show demo --output json
check "show (json)" $([[ $rc == 0 && $(jout .cmdline) == console=ttyS0 ]]; echo $?)
v show no-such-vm
check "unknown VM -> exit 1 with the message" $([[ $rc == 1 ]] && grep -q "no-such-vm" "$tmp/err"; echo $?)
v set idle vcpus=2 autostart=true cmdline=quiet
check "set (table)" $([[ $rc == 0 ]] && grep -q "^vcpus: *2" "$tmp/out" && grep -q "^autostart: *yes" "$tmp/out"; echo $?)
v set idle memory=48 cmdline= -o json
check "set (json), clearing cmdline" $([[ $rc == 0 && $(jout .memory_mib) == 48 && $(jout .cmdline) == null ]]; echo $?)
v set idle vcpus=0
check "set out of range -> exit 1 naming the field" $([[ $rc == 1 ]] && grep -q vcpus "$tmp/err"; echo $?)
v set idle novalue
check "set without = -> exit 2" $([[ $rc == 2 ]]; echo $?)
v set idle vcpus=1 autostart=false
v create fwvm --boot disk --mode full --memory 32 --disk "$GUESTS/guest-hello.elf,ro" -o json
check "create --boot disk (no kernel)" $([[ $rc == 0 && $(jout .boot) == disk && $(jout .kernel) == null ]]; echo $?)
v create fwvm2 --boot disk
check "create --boot disk without a disk -> exit 1 naming disks" $([[ $rc == 1 ]] && grep -q "disks:" "$tmp/err"; echo $?)
v create fwvm2 --boot floppy --disk "$GUESTS/guest-hello.elf"
check "create --boot floppy -> exit 2" $([[ $rc == 2 ]]; echo $?)
v show fwvm
check "show: boot disk" $([[ $rc == 0 ]] && grep -q "^boot: *disk" "$tmp/out"; echo $?)
v set fwvm boot=kernel
check "set boot=kernel without a kernel -> exit 1 naming kernel" $([[ $rc == 1 ]] && grep -q "kernel:" "$tmp/err"; echo $?)
v set fwvm boot=kernel kernel="$GUESTS/guest-idle.elf" -o json
check "set boot=kernel kernel=K" $([[ $rc == 0 && $(jout .boot) == kernel ]]; echo $?)
v set fwvm boot=disk kernel= -o json
check "set boot=disk kernel= (back to disk boot)" $([[ $rc == 0 && $(jout .boot) == disk && $(jout .kernel) == null ]]; echo $?)
v delete fwvm
v create capped --kernel "$GUESTS/guest-idle.elf" --memory 32 --cpu-quota 50 --cpu-weight 300 -o json
check "create with CPU limits" $([[ $rc == 0 && $(jout .cpu_quota_pct) == 50 && $(jout .cpu_weight) == 300 ]]; echo $?)
v set capped cpu_quota_pct=0 cpu_weight=100 -o json
check "set CPU limits" $([[ $rc == 0 && $(jout .cpu_quota_pct) == 0 && $(jout .cpu_weight) == 100 ]]; echo $?)
v create capped2 --kernel "$GUESTS/guest-idle.elf" --cpu-weight lots
check "a CPU weight that is not a number -> exit 2" $([[ $rc == 2 ]]; echo $?)
v delete capped

# --- ha and the cluster verbs on a stand-alone daemon (issue 16) -------------------
v create hav --kernel "$GUESTS/guest-idle.elf" --memory 32 --ha restart
check "create --ha restart: show says ha restart" $([[ $rc == 0 ]] && grep -q "^ha: *restart$" "$tmp/out"; echo $?)
v set hav --ha none -o json
check "set --ha none: ha null" $([[ $rc == 0 && $(jout .ha) == null ]]; echo $?)
v set hav ha=restart -o json
check "set ha=restart" $([[ $rc == 0 && $(jout .ha) == restart ]]; echo $?)
v set hav --ha always
check "--ha that is not restart or none -> exit 2" $([[ $rc == 2 ]]; echo $?)
v set hav
check "set with nothing to change -> exit 2" $([[ $rc == 2 ]]; echo $?)
v cluster evacuate m1
check "cluster evacuate on a stand-alone daemon -> exit 1" $([[ $rc == 1 ]]; echo $?)
v delete hav

# --- bash completion: VM names from the daemon ------------------------------------
completion=$(dirname "$0")/../../cli/vmctl.bash
mkdir -p "$tmp/bin" && ln -sf "$(readlink -f "$VMCTL")" "$tmp/bin/vmctl"
names=$(PATH="$tmp/bin:$PATH" bash -c '
    source "$1"
    COMP_WORDS=(vmctl start ""); COMP_CWORD=2; _vmctl; echo "${COMPREPLY[*]}"
    COMP_WORDS=(vmctl sh); COMP_CWORD=1; _vmctl; echo "${COMPREPLY[*]}"' _ "$completion" 2>&1)
rc=0
echo "$names" >"$tmp/out"
check "bash completion: commands and VM names from the daemon" $(grep -q "demo" "$tmp/out" && grep -q "idle" "$tmp/out" && grep -qx "show shutdown" "$tmp/out"; echo $?)

# --- events --follow and logs --follow in the background ----------------------
timeout 15 "$VMCTL" events --follow >"$tmp/events.out" 2>&1 &
ev_pid=$!
timeout 15 "$VMCTL" events --follow -o json >"$tmp/events.json" 2>&1 &
evj_pid=$!
timeout 15 "$VMCTL" logs demo --follow >"$tmp/logs.out" 2>&1 &
logs_pid=$!
sleep 0.5

# --- lifecycle -----------------------------------------------------------------
v start demo
check "start (table)" $([[ $rc == 0 ]] && grep -Eq "^demo: (starting|running)" "$tmp/out"; echo $?)
v wait demo --state running --timeout 10
check "wait --state running" $([[ $rc == 0 ]]; echo $?)
v start idle -o json
check "start (json)" $([[ $rc == 0 && $(jout .name) == idle ]]; echo $?)
v wait idle --state running --timeout 10 -o json
check "wait (json)" $([[ $rc == 0 && $(jout .state) == running ]]; echo $?)
v start demo
check "start a running VM -> exit 1 naming the state" $([[ $rc == 1 ]] && grep -q running "$tmp/err"; echo $?)
v wait demo --state paused --timeout 1
check "wait timeout -> exit 4" $([[ $rc == 4 ]]; echo $?)
v wait demo --state exploded
check "wait bad state -> exit 2" $([[ $rc == 2 ]]; echo $?)
v list --state running
check "list --state running (table)" $([[ $rc == 0 ]] && grep -q "^demo *running" "$tmp/out" && grep -Eq "^demo .* [0-9]+s " "$tmp/out"; echo $?)
v pause idle
check "pause (table)" $([[ $rc == 0 ]] && grep -q "^idle: paused" "$tmp/out"; echo $?)
v resume idle -o json
check "resume (json)" $([[ $rc == 0 && $(jout .state) == running ]]; echo $?)
v pause idle -o json
check "pause (json)" $([[ $rc == 0 && $(jout .state) == paused ]]; echo $?)
v resume idle
check "resume (table)" $([[ $rc == 0 ]] && grep -q "^idle: running" "$tmp/out"; echo $?)
v reboot idle
check "reboot (table)" $([[ $rc == 0 ]] && grep -q "^idle: " "$tmp/out"; echo $?)
v wait idle --state running --timeout 10
v reboot idle -o json
check "reboot (json)" $([[ $rc == 0 && $(jout .name) == idle ]]; echo $?)
v wait idle --state running --timeout 10
v stats demo
check "stats (table)" $([[ $rc == 0 ]] && grep -q "^uptime:" "$tmp/out" && grep -q "^EXIT REASON" "$tmp/out" && grep -q "^io " "$tmp/out"; echo $?)
v stats demo -o json
check "stats (json)" $([[ $rc == 0 && $(jout .exits.io) -gt 0 ]]; echo $?)
if [[ -c /dev/net/tun ]]; then
    v start disky
    v stats disky
    check "stats: a row for the disk and for the NIC" \
        $([[ $rc == 0 ]] && grep -q "^DISK " "$tmp/out" && grep -q "^disk0 " "$tmp/out" && grep -q "^net0 " "$tmp/out"; echo $?)
    v stop disky
else
    echo "SKIPPED (loudly): no /dev/net/tun; the disk/NIC stats check did not run"
fi
v stats fromfile
check "stats of a stopped VM" $([[ $rc == 0 ]] && grep -q "^state: *stopped" "$tmp/out"; echo $?)
v stats no-such-vm
check "stats of an unknown VM -> exit 1" $([[ $rc == 1 ]] && grep -q no-such-vm "$tmp/err"; echo $?)

# --- console through a pseudo-terminal -----------------------------------------
marker="ping-$RANDOM$RANDOM"
{ sleep 1; printf '%s\r' "$marker"; sleep 1.5; printf '\035'; sleep 1; } |
    timeout 20 script -qfec "$VMCTL console demo" /dev/null >"$tmp/console.out" 2>&1
con_rc=$?
rc=$con_rc
cp "$tmp/console.out" "$tmp/out"
check "console: attached" $(grep -q "Connected to demo" "$tmp/console.out"; echo $?)
check "console: typed line echoed by the guest" $(grep -q "$marker" "$tmp/console.out"; echo $?)
check "console: Ctrl-] detaches with exit 0" $([[ $con_rc == 0 ]] && grep -q "Detached" "$tmp/console.out"; echo $?)
marker2="tcp-$RANDOM$RANDOM"
{ sleep 1; printf '%s\r' "$marker2"; sleep 1.5; printf '\035'; sleep 1; } |
    timeout 20 script -qfec "$VMCTL --url https://127.0.0.1:$PORT --token-file $STATE/token console demo" \
        /dev/null >"$tmp/console2.out" 2>&1
rc=$?
cp "$tmp/console2.out" "$tmp/out"
check "console over TLS with the token: echoed, detached" $([[ $rc == 0 ]] && grep -q "$marker2" "$tmp/out" && grep -q Detached "$tmp/out"; echo $?)
v show demo -o json
check "console: the VM keeps running after detach" $([[ $(jout .state) == running ]]; echo $?)
v logs demo
check "logs (table): the guest saw the typed line" $([[ $rc == 0 ]] && grep -q "$marker" "$tmp/out" && grep -q "echo: ready" "$tmp/out"; echo $?)
v logs demo --tail 5 -o json
check "logs --tail 5" $([[ $rc == 0 && $(wc -c <"$tmp/out") -le 6 ]]; echo $?)
v console fromfile
check "console on a stopped VM -> exit 1" $([[ $rc == 1 ]] && grep -q stopped "$tmp/err"; echo $?)
v logs no-such-vm
check "logs of an unknown VM -> exit 1" $([[ $rc == 1 ]] && grep -q no-such-vm "$tmp/err"; echo $?)

# --- stop, shutdown, delete ---------------------------------------------------
v stop demo
check "stop (table)" $([[ $rc == 0 ]] && grep -Eq "^demo: (stopping|stopped)" "$tmp/out"; echo $?)
v wait demo --state stopped --timeout 10
check "wait --state stopped" $([[ $rc == 0 ]]; echo $?)
v start demo
v wait demo --state running --timeout 10
v stop demo -o json
check "stop (json)" $([[ $rc == 0 && $(jout .name) == demo ]]; echo $?)
v wait demo --state stopped --timeout 10
# The idle guest ignores Ctrl-Alt-Del: the daemon stops it hard after the timeout.
v shutdown idle --timeout 1
check "shutdown --timeout 1 (table)" $([[ $rc == 0 ]] && grep -q "^idle: stopped" "$tmp/out"; echo $?)
v start idle
v wait idle --state running --timeout 10
v shutdown idle --timeout 1 -o json
check "shutdown (json)" $([[ $rc == 0 && $(jout .state) == stopped ]]; echo $?)
v shutdown idle --timeout 1
check "shutdown a stopped VM -> exit 1" $([[ $rc == 1 ]]; echo $?)
v shutdown idle --timeout zero
check "shutdown bad --timeout -> exit 2" $([[ $rc == 2 ]]; echo $?)

sleep 1
wait "$ev_pid" "$evj_pid" "$logs_pid" 2>/dev/null
rc=0
cp "$tmp/events.out" "$tmp/out"
check "events --follow (table) saw demo start" $(grep -Eq "vm.state_changed +demo +starting -> running" "$tmp/events.out"; echo $?)
cp "$tmp/events.json" "$tmp/out"
check "events --follow (json) saw demo start, one Event a line" $(jq -e -s 'map(select(.name=="demo" and .state=="running" and .previous=="starting")) | length >= 1' "$tmp/events.json" >/dev/null; echo $?)
cp "$tmp/logs.out" "$tmp/out"
check "logs --follow saw the guest come up after start" $(grep -q "echo: ready" "$tmp/logs.out"; echo $?)

v events
check "events (table) replays and exits" $([[ $rc == 0 ]] && grep -q "vm.created *demo" "$tmp/out" && grep -q "daemon.started" "$tmp/out"; echo $?)
v events -o json
check "events (json) replays and exits" $([[ $rc == 0 ]] && jq -e -s 'map(select(.name=="idle")) | length > 2' "$tmp/out" >/dev/null; echo $?)

v delete idle
check "delete (table)" $([[ $rc == 0 ]] && grep -q "deleted idle" "$tmp/out"; echo $?)
v start demo
v wait demo --state running --timeout 10
v delete demo
check "delete a running VM -> exit 1" $([[ $rc == 1 ]] && [[ -s $tmp/err ]]; echo $?)
v delete demo --force -o json
check "delete --force (json: the API's empty body)" $([[ $rc == 0 && ! -s $tmp/out ]]; echo $?)
v show demo
check "deleted VM is gone -> exit 1" $([[ $rc == 1 ]]; echo $?)

# --- the daemon goes away --------------------------------------------------------
kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null; daemon_pid=
v show fromfile
check "daemon stopped -> exit 3" $([[ $rc == 3 ]] && grep -q "cannot reach" "$tmp/err"; echo $?)
v --socket "$tmp/nope.sock" host
check "--socket names another socket -> exit 3" $([[ $rc == 3 ]] && grep -q "nope.sock" "$tmp/err"; echo $?)

finish
