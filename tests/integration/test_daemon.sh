#!/bin/bash
# Integration: a real vmmd daemon over its Unix socket and over TCP with a
# token, real workers running the test guests on /dev/kvm. Covers the
# lifecycle, every validation error, the event stream, kill -9 of the daemon
# (VMs keep running and are reattached) and of a worker (crashed + event),
# concurrent starts, and 100 VMs defined with 20 running.
# Usage: test_daemon.sh VMMD GUEST_DIR WS_CLIENT
set -uo pipefail

VMMD=$1
GUESTS=$(cd "$2" && pwd)
WS_CLIENT=$3
. "$(dirname "${BASH_SOURCE[0]}")/daemon_fixture.sh"
require_kvm "the daemon integration tests"
fail_detail() { echo "(last: HTTP $status $(head -c 400 "$tmp/body" 2>/dev/null))"; }

# The daemon as most checks want it: TCP too, and room for the 20+ VMs below.
start_test_daemon() { start_daemon --listen "127.0.0.1:$PORT" --max-vcpus 64; }

start_test_daemon || exit 1

api GET /v1/host
check "host: version, KVM flavour and image dirs" \
    $([[ $status == 200 ]] && [[ -n $(jbody .kvm.flavour) ]] && jbody '.image_dirs[0]' | grep -q guests; echo $?)

# --- create and validation ---------------------------------------------------
api POST /v1/vms "$(vm_json demo echo)"
id=$(jbody .id)
check "create: 201 with the VM, state stopped" $([[ $status == 201 && $(jbody .state) == stopped && -n $id ]]; echo $?)
loc=$(curl -s -D - -o /dev/null --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
      --data-binary "$(vm_json located hello)" http://vmmd/v1/vms | tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
check "create: Location header points at the VM" $([[ $loc == /v1/vms/* ]] && curl -sf --unix-socket "$SOCK" "http://vmmd$loc" >/dev/null; echo $?)

expect_error() { # name status method path body [detail substring]
    api "$3" "$4" "${5:-}"
    local ok=1
    if [[ $status == "$2" ]] && [[ $(jbody .status) == "$2" ]] && [[ -n $(jbody .title) ]]; then
        ok=0
        [[ -n ${6:-} ]] && ! jbody .detail | grep -qF -- "$6" && ok=1
    fi
    check "$1 -> $2" $ok
}
before=$(curl -s --unix-socket "$SOCK" http://vmmd/v1/vms | jq length)
expect_error "malformed JSON" 400 POST /v1/vms '{"name": "x",'
expect_error "not an object" 400 POST /v1/vms '[1,2]'
expect_error "unknown field, named" 400 POST /v1/vms "$(vm_json u1 hello '"colour":"red"')" colour
expect_error "vcpus out of range, named" 422 POST /v1/vms "$(vm_json u2 hello '"vcpus":0')" vcpus
expect_error "vcpus wrong type, named" 422 POST /v1/vms "$(vm_json u3 hello '"vcpus":"two"')" vcpus
expect_error "memory out of range, named" 422 POST /v1/vms "{\"name\":\"u4\",\"kernel\":\"$GUESTS/guest-hello.elf\",\"memory_mib\":8}" memory_mib
expect_error "name pattern, named" 422 POST /v1/vms "$(vm_json Bad_Name hello)" name
expect_error "mode, named" 422 POST /v1/vms "$(vm_json u5 hello '"mode":"hvm"')" mode
expect_error "kernel outside the image dirs" 403 POST /v1/vms '{"name":"u6","kernel":"/etc/passwd"}' kernel
expect_error "missing kernel file" 422 POST /v1/vms "{\"name\":\"u7\",\"kernel\":\"$GUESTS/nope.elf\"}" kernel
expect_error "duplicate name" 409 POST /v1/vms "$(vm_json demo hello)" demo
expect_error "unknown VM" 404 GET /v1/vms/no-such-vm
expect_error "action in the wrong state names it" 409 POST /v1/vms/demo/pause '' stopped
head -c $((1024 * 1024 + 10)) /dev/zero | tr '\0' ' ' >"$tmp/big.json"
status=$(curl -s -o "$tmp/body" -w '%{http_code}' --unix-socket "$SOCK" -X POST \
    -H 'Content-Type: application/json' --data-binary @"$tmp/big.json" http://vmmd/v1/vms)
check "body over 1 MiB -> 413" $([[ $status == 413 ]]; echo $?)
expect_error "unknown route" 404 GET /v1/nothing
expect_error "wrong method" 405 PUT /v1/vms
expect_error "bad state filter" 400 GET "/v1/vms?state=exploded"
after=$(curl -s --unix-socket "$SOCK" http://vmmd/v1/vms | jq length)
check "errors changed nothing ($before VMs before, $after after)" $([[ $before == "$after" ]]; echo $?)

# --- lifecycle ------------------------------------------------------------------
api POST /v1/vms/demo/start
check "start: 200, running" $([[ $status == 200 && $(jbody .state) == running ]]; echo $?)
check "console shows the guest's output" $(wait_console demo "echo: ready"; echo $?)
"$WS_CLIENT" "$SOCK" /v1/vms/demo/console $'typed over a websocket\r' 1500 >"$tmp/ws" 2>"$tmp/ws.err"
check "WebSocket console: keystrokes reach the guest, its echo comes back" \
    $(grep -q "typed over a websocket" "$tmp/ws"; echo $?)
check "WebSocket console without ?tail: live output only" $(! grep -q "echo: ready" "$tmp/ws"; echo $?)
"$WS_CLIENT" "$SOCK" "/v1/vms/demo/console?tail=65536" $'second line\r' 1500 >"$tmp/ws" 2>"$tmp/ws.err"
check "WebSocket console with ?tail: the history once, then the live echo" \
    $([[ $(grep -c "echo: ready" "$tmp/ws") == 1 ]] && [[ $(grep -c "typed over a websocket" "$tmp/ws") == 1 ]] \
      && grep -q "second line" "$tmp/ws"; echo $?)
status=$(curl -s -o "$tmp/body" -w '%{http_code}' --unix-socket "$SOCK" -H "Connection: Upgrade" \
    -H "Upgrade: websocket" -H "Sec-WebSocket-Version: 13" -H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" \
    "http://vmmd/v1/vms/demo/console?tail=65537")
check "WebSocket console: ?tail past the worker's ring -> 400" \
    $([[ $status == 400 ]] && jbody .detail | grep -q "tail: must be 0 to 65536"; echo $?)
api POST /v1/vms/demo/start
check "second start -> 409" $([[ $status == 409 ]]; echo $?)
api POST /v1/vms/demo/pause
check "pause -> paused" $([[ $status == 200 && $(jbody .state) == paused ]]; echo $?)
api GET /v1/vms/demo/stats
e1=$(jbody .exits.io); sleep 0.3; api GET /v1/vms/demo/stats; e2=$(jbody .exits.io)
check "paused guest makes no exits ($e1 -> $e2)" $([[ -n $e1 && $e1 == "$e2" ]]; echo $?)
api POST /v1/vms/demo/resume
check "resume -> running" $([[ $status == 200 && $(jbody .state) == running ]]; echo $?)
api GET /v1/vms/demo/stats
check "stats: uptime, exits by reason, memory" \
    $([[ $status == 200 ]] && [[ $(jbody '.exits.io') -gt 0 ]] && [[ $(jbody .memory_bytes) == $((32 << 20)) ]]; echo $?)
api POST /v1/vms/demo/shutdown '{"timeout_s":1}'
check "shutdown: 202, stopping" $([[ $status == 202 && $(jbody .state) == stopping ]]; echo $?)
wait_state demo stopped 10
check "shutdown falls back to a hard stop after timeout_s" $?
api POST /v1/vms/demo/start
check "start again" $([[ $status == 200 && $(jbody .state) == running ]]; echo $?)
api POST /v1/vms/demo/reboot
check "reboot: still running" $([[ $status == 200 && $(jbody .state) == running ]]; echo $?)
api DELETE /v1/vms/demo
check "delete while running -> 409" $([[ $status == 409 ]]; echo $?)
api POST /v1/vms/demo/stop
check "stop -> stopped" $([[ $status == 200 && $(jbody .state) == stopped ]]; echo $?)
api PATCH /v1/vms/demo '{"vcpus":2,"cmdline":"x=1"}'
check "patch a stopped VM" $([[ $status == 200 && $(jbody .vcpus) == 2 && $(jbody .cmdline) == x=1 ]]; echo $?)
api DELETE /v1/vms/demo
check "delete -> 204" $([[ $status == 204 ]]; echo $?)
api GET /v1/vms/demo
check "deleted VM is gone" $([[ $status == 404 ]]; echo $?)

# --- guests ending on their own ---------------------------------------------------
api POST /v1/vms "$(vm_json hello hello)"
api POST /v1/vms/hello/start
wait_state hello stopped 10
check "guest power-off -> stopped with the reason" $([[ $? == 0 && $(jbody .state_reason) == *"powered off"* ]]; echo $?)
api POST /v1/vms "$(vm_json fault fault)"
api POST /v1/vms/fault/start
wait_state fault crashed 10
check "triple fault -> crashed with the reason" $([[ $? == 0 && $(jbody .state_reason) == *"triple fault"* ]]; echo $?)

# --- events -------------------------------------------------------------------------
curl -s -N --max-time 1 --unix-socket "$SOCK" "http://vmmd/v1/events?since=0" >"$tmp/events"
check "events replay from since=0: created, state changes, deleted" \
    $(grep -q "event: vm.created" "$tmp/events" && grep -q "event: vm.state_changed" "$tmp/events" && grep -q "event: vm.deleted" "$tmp/events"; echo $?)
last=$(grep '^id:' "$tmp/events" | tail -1 | awk '{print $2}')
curl -s -N --max-time 3 --unix-socket "$SOCK" -H "Last-Event-ID: $last" http://vmmd/v1/events >"$tmp/live" &
sse_pid=$!
sleep 0.5
api POST /v1/vms "$(vm_json live hello)"
wait $sse_pid
check "events go live after the replay (Last-Event-ID)" $(grep -q '"name":"live"' "$tmp/live" && ! grep -q "^id: $last$" "$tmp/live"; echo $?)

# --- concurrency --------------------------------------------------------------------
api POST /v1/vms "$(vm_json race idle)"
race_pids=()
for i in 1 2 3; do
    curl -s -o /dev/null -w '%{http_code}\n' --unix-socket "$SOCK" -X POST http://vmmd/v1/vms/race/start >>"$tmp/race" &
    race_pids+=($!)
done
wait "${race_pids[@]}"
check "three concurrent starts: one 200, the others 409 ($(sort "$tmp/race" | tr '\n' ' '))" \
    $([[ $(grep -c 200 "$tmp/race") == 1 && $(grep -c 409 "$tmp/race") == 2 ]]; echo $?)
check "one worker for the VM" $([[ $(count_workers) == 1 ]]; echo $?)

# --- TCP with a token -------------------------------------------------------------
token=$(cat "$STATE/token")
tls=(--cacert "$STATE/tls-cert.pem")
code=$(curl -s "${tls[@]}" -o "$tmp/body" -w '%{http_code}' "https://127.0.0.1:$PORT/v1/vms")
check "TCP without a token -> 401, nothing leaks" $([[ $code == 401 ]] && ! grep -q race "$tmp/body"; echo $?)
code=$(curl -s "${tls[@]}" -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer wrong$token" "https://127.0.0.1:$PORT/v1/vms")
check "TCP with a wrong token -> 401" $([[ $code == 401 ]] && ! grep -q race "$tmp/body"; echo $?)
code=$(curl -s "${tls[@]}" -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $token" "https://127.0.0.1:$PORT/v1/vms")
check "TCP with the token -> 200" $([[ $code == 200 ]] && grep -q race "$tmp/body"; echo $?)
check "token file is mode 0600" $([[ $(stat -c %a "$STATE/token") == 600 ]]; echo $?)
check "API socket is mode 0660" $([[ $(stat -c %a "$SOCK") == 660 ]]; echo $?)

# --- kill -9 of the daemon, restart, reattach ------------------------------------
api GET /v1/vms/race
wpid=$(jbody .worker_pid)
kill -9 "$daemon_pid"; wait "$daemon_pid" 2>/dev/null; daemon_pid=
check "the worker survives kill -9 of the daemon" $(kill -0 "$wpid" 2>/dev/null; echo $?)
start_test_daemon
api GET /v1/vms/race
check "after restart: still running, same worker" $([[ $(jbody .state) == running && $(jbody .worker_pid) == "$wpid" ]]; echo $?)
api GET "/v1/vms/race/console?tail=20"
check "after restart: console works" $(grep -q "idle: up" "$tmp/body"; echo $?)
api GET /v1/vms/race/stats
check "after restart: stats work" $([[ $status == 200 && $(jbody .uptime_s) != 0 ]]; echo $?)

# --- kill -9 of a worker -----------------------------------------------------------
kill -9 "$wpid"
wait_state race crashed 10
check "killed worker -> crashed with a reason" $([[ $? == 0 && -n $(jbody .state_reason) ]]; echo $?)
curl -s -N --max-time 1 --unix-socket "$SOCK" "http://vmmd/v1/events?since=0" >"$tmp/events"
check "... and an event says so" $(grep -q '"name":"race","state":"crashed"' "$tmp/events"; echo $?)

# --- worker died while the daemon was down -------------------------------------------
api POST /v1/vms/race/start
api GET /v1/vms/race
wpid=$(jbody .worker_pid)
kill -9 "$daemon_pid"; wait "$daemon_pid" 2>/dev/null; daemon_pid=
kill -9 "$wpid"; sleep 0.2
start_test_daemon
wait_state race crashed 5
check "a worker that died while the daemon was down is marked crashed" $?

# --- 100 defined, 20 running ---------------------------------------------------------
for i in $(seq -w 1 100); do
    api POST /v1/vms "$(vm_json "many-$i" idle)"
done
for i in $(seq -w 1 100 | head -20); do
    api POST "/v1/vms/many-$i/start"
done
api GET "/v1/vms?state=running"
running=$(jq length "$tmp/body")
api GET /v1/vms
total=$(jq length "$tmp/body")
check "100 more defined ($total in all), 20 running, filter by state ($running)" \
    $([[ $running == 20 && $total -ge 100 ]]; echo $?)
api GET /v1/host
check "host allocation counts the running VMs" $([[ $(jbody .allocation.vms_running) == 20 ]]; echo $?)
api POST /v1/vms "$(vm_json greedy idle '"vcpus":64')"
api POST /v1/vms/greedy/start
check "admission control: 20 running + 64 vCPUs > 64 -> 409 with the numbers" \
    $([[ $status == 409 ]] && jbody .detail | grep -q "needs 64, running VMs hold 20 of 64"; echo $?)
api POST /v1/vms "$(vm_json auto idle '"autostart":true')"

# --- SIGTERM: the daemon exits 0, the VMs keep running --------------------------------
kill -TERM "$daemon_pid"; wait "$daemon_pid"; rc=$?; daemon_pid=
check "SIGTERM: exit 0" $([[ $rc == 0 ]]; echo $?)
check "SIGTERM: the 20 VMs keep running" $([[ $(count_workers) == 20 ]]; echo $?)
start_test_daemon
wait_state auto running 5
check "autostart: the VM marked autostart started with the daemon" $?
api GET "/v1/vms?state=running"
check "restart after SIGTERM: 20 running, reattached, plus the autostarted one" $([[ $(jq length "$tmp/body") == 21 ]]; echo $?)
kill -TERM "$daemon_pid"; wait "$daemon_pid"; daemon_pid=

# --- a config file sets what flags would, and --help comes from the same table -------
printf '# test\nlog-level = warn\nimage-dir = %s\nimage-dir = %s\n' "$GUESTS" "$tmp" >"$tmp/vmmd.conf"
"$VMMD" serve --config-file "$tmp/vmmd.conf" --state-dir "$STATE" --max-vcpus 64 \
    --network-prefix "$NETPFX" --default-network none 2>>"$tmp/vmmd.err" &
daemon_pid=$!
for _ in $(seq 100); do curl -s --unix-socket "$SOCK" http://x/v1/host >/dev/null 2>&1 && break; sleep 0.05; done
api GET /v1/host
check "config file: two image dirs from the file" $([[ $(jbody '.image_dirs | length') == 2 ]]; echo $?)
kill -TERM "$daemon_pid"; wait "$daemon_pid"; daemon_pid=
"$VMMD" serve --help >"$tmp/help" # whole, before grep -q stops reading (no SIGPIPE to fail on)
check "--help lists the config options" $(grep -q -- "--memory-overcommit" "$tmp/help"; echo $?)
printf 'bogus-option = 1\n' >"$tmp/bad.conf"
"$VMMD" serve --config-file "$tmp/bad.conf" --state-dir "$STATE" >/dev/null 2>"$tmp/err"
check "config file: an unknown option is a usage error naming the line" $([[ $? == 2 ]] && grep -q "bad.conf:1" "$tmp/err"; echo $?)

# --- a database newer than this binary ------------------------------------------------
sqlite3 "$STATE/vmmd.db" "PRAGMA user_version = 999;"
sum=$(sha256sum "$STATE/vmmd.db")
"$VMMD" serve --state-dir "$STATE" --image-dir "$GUESTS" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "newer database: refuses to start with a clear message" $([[ $rc != 0 ]] && grep -qi "version" "$tmp/err"; echo $?)
check "newer database: untouched" $([[ $(sha256sum "$STATE/vmmd.db") == "$sum" ]]; echo $?)

finish
