# Sourced by the integration tests that run a real vmmd daemon. The caller
# sets VMMD and GUESTS; this gives it a private state directory ($tmp,
# $STATE, $SOCK, $PORT), start_daemon [extra serve flags], check NAME STATUS
# with PASS/FAIL counting, api/jbody/wait_state/vm_json for requests, wait_for/is to wait on
# any command, require_kvm/require_networks for loud skips, finish (the closing "N passed, N failed" line and
# the status), and a cleanup that also ends the workers the test started
# (they outlive the daemon by design). A script may define fail_detail to
# add context to its FAIL lines.

tmp=$(mktemp -d)
STATE=$tmp/state
SOCK=$STATE/vmmd.sock
PORT=$((20000 + RANDOM % 20000))
# Managed networks leave bridges, a firewall table and dnsmasq on the host by
# design; each test's get names of their own (start_daemon) and go at cleanup.
NETPFX=t$(printf '%04d' $((RANDOM % 10000)))
pass=0 fail=0 daemon_pid=

# A second daemon (a live migration's target), started by start_daemon2: its own state
# directory, socket and network prefix.
STATE2=$tmp/state2
SOCK2=$STATE2/vmmd.sock
NETPFX2=u$(printf '%04d' $((RANDOM % 10000)))
daemon2_pid=

# cleanup_networks [STATE PREFIX]: what a daemon's networks left on the host
cleanup_networks() {
    local b state=${1:-$STATE} pfx=${2:-$NETPFX}
    pkill -9 -f -- "dnsmasq --conf-file=$state/networks/" 2>/dev/null
    for b in /sys/class/net/"$pfx"-*; do
        [[ -e $b ]] && ip link del "${b##*/}" 2>/dev/null
    done
    command -v nft >/dev/null && nft delete table inet "$pfx" 2>/dev/null
    return 0
}

cleanup() {
    local pid
    for pid in "$daemon_pid" "$daemon2_pid"; do
        [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null
    done
    pkill -9 -f -- "--control $STATE/run/" 2>/dev/null
    pkill -9 -f -- "--control $STATE2/run/" 2>/dev/null
    cleanup_networks
    [[ -n $daemon2_pid ]] && cleanup_networks "$STATE2" "$NETPFX2"
    rm -rf "$tmp"
}
trap cleanup EXIT

fail_detail() { :; }

check() { # name, status (0 = pass)
    if [[ $2 -eq 0 ]]; then
        echo "PASS $1"; pass=$((pass + 1))
    else
        echo "FAIL $1 $(fail_detail)"; fail=$((fail + 1))
    fi
}

finish() {
    echo "$pass passed, $fail failed"
    [[ $fail -eq 0 ]]
}

# Loud skip (ctest's SKIP_RETURN_CODE 77) where the machine has no usable KVM.
require_kvm() {
    if [[ ! -c /dev/kvm || ! -w /dev/kvm ]]; then
        echo "SKIPPED: /dev/kvm is not available here; $1 did not run" >&2
        exit 77
    fi
}

# require_networks SCRIPT: a loud skip where managed networks cannot run (root, nft, dnsmasq).
require_networks() {
    local missing=
    [[ $(id -u) == 0 ]] || missing+=" root"
    command -v nft >/dev/null || missing+=" nft"
    command -v dnsmasq >/dev/null || missing+=" dnsmasq"
    if [[ -n $missing ]]; then
        echo "SKIPPED: managed networks need$missing; $1 did not run" >&2
        exit 77
    fi
}

# wait_for SECONDS COMMAND...: until COMMAND succeeds (its status, once more at the end)
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    while ((SECONDS < deadline)); do
        "$@" && return 0
        sleep 0.2
    done
    "$@"
}
is() { [[ $("${@:2}") == "$1" ]]; } # is VALUE COMMAND...: COMMAND prints VALUE

# --- talking to the daemon over its Unix socket ---------------------------------
# api METHOD PATH [JSON] -> $status, body in $tmp/body
api() {
    local args=(-s -o "$tmp/body" -w '%{http_code}' -X "$1" --unix-socket "$SOCK")
    [[ $# -ge 3 ]] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
    status=$(curl "${args[@]}" "http://vmmd$2")
}
# api2: as api, against the second daemon
api2() { SOCK=$SOCK2 api "$@"; }
body() { cat "$tmp/body"; }
jbody() { jq -r "$1" "$tmp/body" 2>/dev/null; }

# wait_state NAME STATE [seconds]
wait_state() {
    for _ in $(seq $((${3:-10} * 20))); do
        api GET "/v1/vms/$1"
        [[ $(jbody .state) == "$2" ]] && return 0
        sleep 0.05
    done
    return 1
}

# wait_console NAME TEXT [seconds]: until the VM's console tail shows TEXT (left in $tmp/body)
wait_console() {
    for _ in $(seq $((${3:-5} * 20))); do
        api GET "/v1/vms/$1/console?tail=4096"
        grep -q "$2" "$tmp/body" && return 0
        sleep 0.05
    done
    return 1
}

vm_json() { # name guest [extra json fields]
    echo "{\"name\":\"$1\",\"kernel\":\"$GUESTS/guest-$2.elf\",\"memory_mib\":32${3:+,$3}}"
}

# A sandboxed worker is two processes with the same command line: its monitor in the
# host's PID namespace and, inside a namespace of its own, the process that runs the VM.
# worker_of VM_ID: the one that runs the VM (the newest)
worker_of() { pgrep -n -f -- "--control $STATE/run/$1/"; }
# count_workers [VM_ID]: running workers, each counted once (by its host-level process)
count_workers() {
    local p n=0
    for p in $(pgrep -f -- "--control $STATE/run/${1:+$1/}"); do
        [[ $(awk '/^NSpid:/ { print NF - 1 }' "/proc/$p/status" 2>/dev/null) == 1 ]] && n=$((n + 1))
    done
    echo "$n"
}

# alive PID: a process that has not exited. An exited dnsmasq (it daemonizes:
# PID 1 is its parent) stays a zombie where nothing reaps orphans, as in a
# container whose init does not, and kill -0 still finds a zombie.
alive() { [[ -e /proc/$1 ]] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

# serve STATE SOCK PREFIX NAME [serve flags]: a daemon in the background ($serve_pid), up
serve() {
    local state=$1 sock=$2 pfx=$3 name=$4
    shift 4
    "$VMMD" serve --state-dir "$state" --image-dir "$GUESTS" --log-file "$tmp/$name.log" \
        --log-level debug --network-prefix "$pfx" --default-network none "$@" \
        2>>"$tmp/$name.err" &
    serve_pid=$!
    for _ in $(seq 200); do
        curl -s --unix-socket "$sock" http://vmmd/v1/host >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "$name did not come up:"; cat "$tmp/$name.err" "$tmp/$name.log"
    return 1
}

# start_daemon [serve flags]: no default network unless the flags ask for one.
start_daemon() {
    serve "$STATE" "$SOCK" "$NETPFX" vmmd "$@"
    local rc=$?
    daemon_pid=$serve_pid
    return $rc
}

# start_daemon2 [serve flags]: the second daemon; api2 talks to it.
start_daemon2() {
    serve "$STATE2" "$SOCK2" "$NETPFX2" vmmd2 "$@"
    local rc=$?
    daemon2_pid=$serve_pid
    return $rc
}
