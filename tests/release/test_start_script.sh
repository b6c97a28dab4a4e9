#!/bin/bash
# The README's first command, as a user runs it: scripts/start.sh builds the
# configuration it builds (the default build type, here with VMMD_WERROR on
# so a new warning turns CI red) and starts the daemon with its embedded
# defaults, state in a temporary directory. Then GET /v1/host on its socket,
# create and start a bundled test guest through the API, read its console,
# stop it, and SIGTERM the daemon.
# Usage: test_start_script.sh SOURCE_DIR BUILD_DIR
set -uo pipefail

SRC=$1
BUILD=$2
. "$(dirname "${BASH_SOURCE[0]}")/../integration/daemon_fixture.sh"
fail_detail() { echo "(last: HTTP $status $(head -c 300 "$tmp/body" 2>/dev/null))"; }
status=

# The team's setting on top of exactly what start.sh configures (it keeps the cache).
cmake -S "$SRC" -B "$BUILD" -DVMMD_WERROR=ON >/dev/null || exit 1
# Its own network prefix, so the default network it makes cannot meet a real
# one's bridge or firewall table on this host (the fixture removes them).
VMMD_BUILD_DIR=$BUILD VMMD_STATE_DIR=$STATE "$SRC/scripts/start.sh" --log-level debug \
    --network-prefix "$NETPFX" >"$tmp/start.log" 2>&1 &
daemon_pid=$! # start.sh execs the daemon: the fixture's cleanup ends it and its workers
up=1
for _ in $(seq 1200); do # the build comes first: up to 10 minutes
    curl -s --unix-socket "$SOCK" http://vmmd/v1/host >/dev/null 2>&1 && { up=0; break; }
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.5
done
if [[ $up -ne 0 ]]; then
    echo "FAIL scripts/start.sh did not serve the API; its output:"
    tail -n 60 "$tmp/start.log"
    exit 1
fi
check "scripts/start.sh built $(grep -m1 '^CMAKE_BUILD_TYPE:' "$BUILD/CMakeCache.txt") and serves the API" 0

api GET /v1/host
check "GET /v1/host on the socket start.sh announced" \
    $([[ $status == 200 && $(jbody .version) != null ]] && grep -q "API on $SOCK" "$tmp/start.log"; echo $?)
check "the bundled test guests are in the image directory" \
    $([[ -f $STATE/images/guest-echo.elf ]] && jbody '.image_dirs[0]' | grep -qx "$STATE/images"; echo $?)
if [[ $(id -u) -eq 0 ]] && command -v nft >/dev/null && command -v dnsmasq >/dev/null; then
    api GET /v1/networks/default
    check "the embedded defaults made the NAT network 'default'" \
        $([[ $status == 200 && $(jbody .state) == active && $(jbody .nat) == true ]]; echo $?)
    NIC=',"nics":[{"network":"default"}]'
else
    echo "SKIPPED: not root or no nft/dnsmasq: no managed networks here" >&2
    NIC=
fi
api POST /v1/vms "{\"name\":\"demo\",\"kernel\":\"$STATE/images/guest-echo.elf\",\"memory_mib\":32$NIC}"
check "create the README's demo VM${NIC:+ on the default network}" $([[ $status == 201 ]]; echo $?)

if [[ -c /dev/kvm && -w /dev/kvm ]]; then
    api POST /v1/vms/demo/start
    check "start it" $([[ $status == 200 ]]; echo $?)
    wait_console demo "echo: ready"
    check "its console shows the guest running" $?
    [[ -n $NIC ]] && check "its NIC joined the default network's bridge" \
        $(ls "/sys/class/net/$NETPFX-default/brif/" 2>/dev/null | grep -q .; echo $?)
    api POST /v1/vms/demo/stop
    wait_state demo stopped
    check "stop it" $?
else
    echo "SKIPPED: /dev/kvm is not available here; the guest was not started" >&2
fi

kill -TERM "$daemon_pid"
wait "$daemon_pid"
check "SIGTERM ends the daemon with status 0" $?
daemon_pid=
finish
