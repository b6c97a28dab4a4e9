#!/bin/bash
# A vmmd cluster (issue 16) on this host: three members on a three-member etcd
# of the bench's own (tests/integration/etcd_fixture.sh), each member a `vmmd
# serve` with its own state directory and TLS port (the daemon start of
# tests/integration/daemon_fixture.sh, as test_cluster.sh does), VMS VM
# definitions (default 300, not running: the counter guest) spread evenly over
# the members, each created on its own member. Then:
#   1. GET /v1/vms (every member's VMs) through each member, over TLS with
#      its token: wrk -t2 -c16 -d5s --latency, requests/s and p99 per member
#      (a curl loop when wrk is missing: requests/s of one client); for
#      reference (not a peer: the same daemon) a stand-alone vmmd with the same
#      VMS definitions, the same way, run by run after the members;
#   2. create-to-running through a member that does not own the VM: POST
#      /v1/vms to m1 with "member": "m2", POST .../start to m1, GET to m1 until
#      its state is running (forwarded to m2 each time); SAMPLES of them,
#      median and p99;
#   3. another member's event in this member's stream: a VM created on m2
#      until its first event (vm.placed) arrives in m1's event stream (open
#      before, lines stamped as they come), SAMPLES of them, median;
#   4. GET /metrics through m1 (every member's series, merged) against m1's own
#      (?local=1): median time of SAMPLES;
#   5. HA (last: it kills a member): a VM with "ha": "restart" pinned to m3 and running; kill -9 of m3's
#      daemon; the time until m1 lists the VM running on another member. The
#      lease TTL (--ttl, default 4 s) is most of it. A daemon without ha
#      support refuses the create with 400: "n/a (daemon has no ha support)";
#      one that takes the field but does not restart the VM within TTL + 30 s:
#      "n/a (not restarted elsewhere)". m3 is started again for the next run.
# Each figure is the median of RUNS runs (--runs, default 3); the runs' values
# follow. No peer: there is no other cluster manager on this machine to run the
# same steps against, so there are no ratios.
#
# Usage: bench/bench_cluster.sh [--runs N] [--vms N] [--samples N] [--ttl S] BUILD_DIR
#        BUILD_DIR: a build with vmmd and the test guests, e.g.
#        cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release &&
#        cmake --build build-rel -j2 --target vmmd guest-counter
set -euo pipefail

RUNS=3 NVMS=300 SAMPLES=20 TTL=4
while [[ $# -gt 1 ]]; do
    case $1 in
    --runs) RUNS=$2 ;;
    --vms) NVMS=$2 ;;
    --samples) SAMPLES=$2 ;;
    --ttl) TTL=$2 ;;
    *) echo "bench_cluster: unknown option $1" >&2; exit 2 ;;
    esac
    shift 2
done
for n in "$RUNS" "$NVMS" "$SAMPLES" "$TTL"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "bench_cluster: counts must be positive numbers" >&2; exit 2; }
done
BUILD=$(cd "${1:-build}" && pwd)
VMMD=$BUILD/vmmd/vmmd
GUESTS=$BUILD/tests/guests
GUEST=$GUESTS/guest-counter.elf
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FIXTURES=$HERE/../tests/integration
[[ -x $VMMD ]] || { echo "bench_cluster: $VMMD missing (build vmmd)" >&2; exit 1; }
[[ -f $GUEST ]] || { echo "bench_cluster: $GUEST missing (build guest-counter)" >&2; exit 1; }
[[ -c /dev/kvm && -w /dev/kvm ]] || { echo "bench_cluster: /dev/kvm is not usable here" >&2; exit 1; }
for tool in curl jq /usr/bin/etcd; do
    command -v "$tool" >/dev/null || { echo "bench_cluster: $tool missing (scripts/setup.sh)" >&2; exit 1; }
done

. "$FIXTURES/daemon_fixture.sh" # tmp, STATE/SOCK, STATE2/SOCK2, PORT, serve, api, jbody
. "$FIXTURES/etcd_fixture.sh"   # etcd_start_cluster, ETCD_ENDPOINTS, etcd_cleanup

STATE3=$tmp/state3 SOCK3=$tmp/state3/vmmd.sock
# m0: the stand-alone reference of step 1 (on PORT - 1)
declare -A STATES=([m1]=$STATE [m2]=$STATE2 [m3]=$STATE3 [m0]=$tmp/state0) PIDS=()
CLUSTER=b$$

# The daemons by their ids, then this run's workers (they outlive their daemon by design),
# found under this run's directory and ended by their ids, then etcd.
bench_cleanup() {
    trap - EXIT INT TERM
    set +e
    local pid
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
    for pid in $(pgrep -f -- "--control $tmp/" 2>/dev/null); do
        grep -qs -- "$tmp/" "/proc/$pid/cmdline" && kill -9 "$pid" 2>/dev/null
    done
    etcd_cleanup
    rm -rf "$tmp"
}
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now_ns() { date +%s%N; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# p99: the value at rank ceil(0.99 n) (with 20 samples, the largest)
p99() { sort -g | awk '{v[NR] = $1} END {r = int(NR * 0.99); if (r < NR * 0.99) r++; print v[r]}'; }
ms() { awk -v ns="$1" 'BEGIN { printf "%.1f", ns / 1e6 }'; }
joined() { paste -sd/ | sed 's|/| / |g'; }
on() { # on MEMBER METHOD PATH [JSON]: the fixture's api against that member's socket
    local m=$1
    shift
    SOCK=${STATES[$m]}/vmmd.sock api "$@"
}
need() { # STATUS WHAT: stop the bench on an unexpected answer
    [[ $status == "$1" ]] && return 0
    echo "bench_cluster: $2 -> $status: $(head -c 400 "$tmp/body")" >&2
    exit 1
}
port_of() { echo $((PORT + ${1#m} - 1)); }

# member NAME [serve flags]: start it (the first bootstraps, the others need a join token)
member() {
    local m=$1 port
    shift
    port=$(port_of "$m")
    serve "${STATES[$m]}" "${STATES[$m]}/vmmd.sock" "b$((RANDOM % 1000))" "vmmd-$m" --log-level warn \
        --cluster-etcd "$ETCD_ENDPOINTS" --cluster-name "$CLUSTER" --cluster-member "$m" \
        --cluster-lease-ttl "$TTL" --listen "127.0.0.1:$port" --advertise "https://127.0.0.1:$port" "$@"
    PIDS[$m]=$serve_pid
    disown "$serve_pid" # its kill -9 (step 3, the cleanup) is no news for the output
}
join_token() {
    on m1 POST /v1/cluster/join-tokens '{"ttl_s":600}'
    need 201 "join token"
    jbody .token
}
online() { # FROM: how many members FROM sees online
    on "$1" GET /v1/cluster
    jq '[.members[] | select(.state == "online")] | length' "$tmp/body"
}
wait_online() { # N: until m1 sees N members online (30 s)
    for _ in $(seq 300); do
        [[ $(online m1) == "$1" ]] && return 0
        sleep 0.1
    done
    echo "bench_cluster: m1 does not see $1 members online" >&2
    exit 1
}
vm_json() { # NAME MEMBER [extra fields]
    echo "{\"name\":\"$1\",\"kernel\":\"$GUEST\",\"memory_mib\":32,\"member\":\"$2\"${3:+,$3}}"
}

etcd_start_cluster >/dev/null || { echo "bench_cluster: etcd did not start" >&2; exit 1; }
member m1
member m2 --cluster-join-token "$(join_token)"
member m3 --cluster-join-token "$(join_token)"
wait_online 3
echo "cluster: 3 vmmd members ($("$VMMD" --version 2>/dev/null | head -n 1 || echo vmmd)), lease TTL $TTL s, etcd 3 members ($(/usr/bin/etcd --version | head -n 1))"

# --- the definitions ------------------------------------------------------------------
start=$(now_ns)
for i in $(seq -w 1 "$NVMS"); do
    m=m$((10#$i % 3 + 1))
    on "$m" POST /v1/vms "$(vm_json "vm-$i" "$m")"
    need 201 "create vm-$i on $m"
done
echo "defined $NVMS VMs ($((NVMS / 3)) a member, each through its own member): $(ms $(($(now_ns) - start))) ms"
# Every member lists them all once the others' records have reached it through etcd.
for m in m1 m2 m3; do
    for _ in $(seq 200); do
        on "$m" GET /v1/vms
        [[ $(jq length "$tmp/body") == "$NVMS" ]] && break
        sleep 0.05
    done
    [[ $(jq length "$tmp/body") == "$NVMS" ]] || { echo "bench_cluster: $m lists $(jq length "$tmp/body") VMs, not $NVMS" >&2; exit 1; }
done

# --- 1. GET /v1/vms through each member -------------------------------------------------
# wrk does not check certificates: the self-signed TLS of each member is the channel.
if command -v wrk >/dev/null; then
    how="wrk -t2 -c16 -d5s, TLS + token"
else
    how="curl loop, one client, 5 s, TLS + token (wrk is missing: scripts/setup.sh installs it)"
fi
get_run() { # MEMBER RUN: "RPS P99_MS" of one run
    local m=$1 out=$tmp/get.$1.$2 token url n=0 end
    token=$(cat "${STATES[$m]}/token")
    url=https://127.0.0.1:$(port_of "$m")/v1/vms
    if command -v wrk >/dev/null; then
        wrk -t2 -c16 -d5s --latency -H "Authorization: Bearer $token" "$url" >"$out"
        grep -q "Non-2xx" "$out" && { echo "bench_cluster: wrk on $m had errors:" >&2; cat "$out" >&2; exit 1; }
        awk '/Requests\/sec/ { rps = $2 }
             $1 == "99%" { v = $2; f = 1; if (v ~ /us$/) f = 0.001; else if (v ~ /ms$/) f = 1; else if (v ~ /s$/) f = 1000;
                           sub(/[a-z]+$/, "", v); p = v * f }
             END { printf "%.0f %.2f\n", rps, p }' "$out"
    else
        end=$(($(now_ns) + 5000000000))
        while (($(now_ns) < end)); do
            curl -sk -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $token" "$url" >>"$out"
            n=$((n + 1))
        done
        echo "$(awk -v n="$n" 'BEGIN { printf "%.0f", n / 5 }') $(awk '{ print $1 * 1000 }' "$out" | p99)"
    fi
}
echo "1. GET /v1/vms ($NVMS VMs of 3 members, a $(stat -c %s "$tmp/body")-byte answer) through each member, $how; median of $RUNS runs:"
for m in m1 m2 m3; do
    : >"$tmp/get.$m"
done
serve "${STATES[m0]}" "${STATES[m0]}/vmmd.sock" "b$((RANDOM % 1000))" vmmd-m0 --log-level warn \
    --listen "127.0.0.1:$(port_of m0)"
PIDS[m0]=$serve_pid
disown "$serve_pid"
for i in $(seq -w 1 "$NVMS"); do
    on m0 POST /v1/vms "{\"name\":\"vm-$i\",\"kernel\":\"$GUEST\",\"memory_mib\":32}"
    need 201 "create vm-$i on the stand-alone daemon"
done
: >"$tmp/get.m0"
for run in $(seq "$RUNS"); do
    for m in m1 m2 m3 m0; do get_run "$m" "$run" >>"$tmp/get.$m"; done
done
kill -9 "${PIDS[m0]}"
for m in m1 m2 m3 m0; do
    [[ $m == m0 ]] && echo "   reference, a stand-alone vmmd with the same $NVMS definitions:"
    echo "   via $m: $(awk '{print $1}' "$tmp/get.$m" | median) requests/s (runs $(awk '{print $1}' "$tmp/get.$m" | joined)), p99 $(awk '{print $2}' "$tmp/get.$m" | median) ms (runs $(awk '{print $2}' "$tmp/get.$m" | joined))"
done
rps_m1=$(awk '{print $1}' "$tmp/get.m1" | median)
rps_m0=$(awk '{print $1}' "$tmp/get.m0" | median)
echo "   a member / the stand-alone daemon: $(awk -v a="$rps_m1" -v b="$rps_m0" 'BEGIN { printf "%.2f", a / b }') (m1's median requests/s over the stand-alone's)"

# --- 2. create-to-running through a member that does not own the VM -----------------------
# start_through_m1 ID: POST start to m1. m1 knows a VM another member made once that
# member's record of it has come back through etcd: until then the start is 404, and is
# sent again (that wait is part of the figures).
start_through_m1() {
    local until=$(($(now_ns) + 10000000000))
    until on m1 POST "/v1/vms/$1/start" && [[ $status != 404 ]]; do
        (($(now_ns) < until)) || break
        sleep 0.01
    done
    need 200 "start $1 through m1"
}
: >"$tmp/c2r"
for run in $(seq "$RUNS"); do
    : >"$tmp/c2r.$run"
    : >"$tmp/c2r.known.$run"
    for s in $(seq "$SAMPLES"); do
        name=lat-$run-$s
        start=$(now_ns)
        on m1 POST /v1/vms "$(vm_json "$name" m2)"
        need 201 "create $name through m1 on m2"
        id=$(jbody .id)
        start_through_m1 "$id"
        echo $(($(now_ns) - start)) >>"$tmp/c2r.known.$run"
        until on m1 GET "/v1/vms/$id" && [[ $(jbody .state) == running ]]; do
            (($(now_ns) - start < 30000000000)) || { echo "bench_cluster: $name not running in 30 s" >&2; exit 1; }
        done
        echo $(($(now_ns) - start)) >>"$tmp/c2r.$run"
        on m1 DELETE "/v1/vms/$id?force=true"
        need 204 "delete $name"
    done
    echo "$(median <"$tmp/c2r.$run") $(p99 <"$tmp/c2r.$run") $(median <"$tmp/c2r.known.$run")" >>"$tmp/c2r"
done
echo "2. create-to-running through m1 of a VM pinned to m2 (POST, POST start, GET until running, all to m1, by the VM's id), $SAMPLES a run:"
echo "   median $(ms "$(awk '{print $1}' "$tmp/c2r" | median)") ms (runs $(awk '{printf "%.1f\n", $1 / 1e6}' "$tmp/c2r" | joined)), p99 $(ms "$(awk '{print $2}' "$tmp/c2r" | median)") ms (runs $(awk '{printf "%.1f\n", $2 / 1e6}' "$tmp/c2r" | joined)); median of $RUNS runs"
echo "   of which create until m1 takes the start (not 404: it knows the VM): median $(ms "$(awk '{print $3}' "$tmp/c2r" | median)") ms (runs $(awk '{printf "%.1f\n", $3 / 1e6}' "$tmp/c2r" | joined))"

# --- 3. another member's event in this member's stream --------------------------------------
# m1's stream, each data line stamped with when it came (ns) as it arrives
curl -sN --unix-socket "$SOCK" "http://vmmd/v1/events" |
    while IFS= read -r line; do [[ $line == data:* ]] && echo "$(now_ns) $line"; done >"$tmp/stream" &
stream_pid=$!
sleep 0.5
: >"$tmp/relay"
for run in $(seq "$RUNS"); do
    : >"$tmp/relay.$run"
    for s in $(seq "$SAMPLES"); do
        name=ev-$run-$s
        start=$(now_ns)
        on m2 POST /v1/vms "$(vm_json "$name" m2)"
        need 201 "create $name on m2"
        until seen=$(grep -m1 "\"name\":\"$name\"" "$tmp/stream"); do
            (($(now_ns) - start < 10000000000)) || { echo "bench_cluster: $name's event not in m1's stream in 10 s" >&2; exit 1; }
            sleep 0.005
        done
        echo $((${seen%% *} - start)) >>"$tmp/relay.$run"
        on m2 DELETE "/v1/vms/$name"
    done
    median <"$tmp/relay.$run" >>"$tmp/relay"
done
kill "$stream_pid" 2>/dev/null || true
echo "3. a VM created on m2 until its first event (vm.placed) is in m1's event stream (copied from m2's), $SAMPLES a run:"
echo "   median $(ms "$(median <"$tmp/relay")") ms (runs $(awk '{printf "%.1f\n", $1 / 1e6}' "$tmp/relay" | joined))"

# --- 4. /metrics of the whole cluster through one member --------------------------------------
metrics_ms() { # QUERY: median ms of SAMPLES GET /metrics to m1
    for _ in $(seq "$SAMPLES"); do
        curl -s -o /dev/null -w '%{time_total}\n' --unix-socket "$SOCK" "http://vmmd/metrics$1"
    done | awk '{print $1 * 1000}' | median
}
: >"$tmp/scrape"
for run in $(seq "$RUNS"); do
    echo "$(metrics_ms '') $(metrics_ms '?local=1')" >>"$tmp/scrape"
done
curl -s --unix-socket "$SOCK" "http://vmmd/metrics" >"$tmp/metrics"
echo "4. GET /metrics through m1: the cluster's ($(grep '^vmmd_vm_state{' "$tmp/metrics" | grep -o 'id="[^"]*"' | sort -u | wc -l) VMs, $(stat -c %s "$tmp/metrics") bytes) median $(awk '{print $1}' "$tmp/scrape" | median) ms (runs $(awk '{print $1}' "$tmp/scrape" | joined)); m1's own (?local=1) $(awk '{print $2}' "$tmp/scrape" | median) ms; $SAMPLES a run"

# --- 5. kill -9 of a member to its ha VM running elsewhere ----------------------------------
ha_run() { # RUN: prints the ms, or n/a and why
    local name=ha-$1 start
    on m1 POST /v1/vms "$(vm_json "$name" m3 '"ha":"restart"')"
    if [[ $status == 400 ]]; then
        echo "n/a (daemon has no ha support)"
        return
    fi
    need 201 "create $name with ha restart on m3"
    start_through_m1 "$(jbody .id)"
    until on m1 GET "/v1/vms/$name" && [[ $(jbody .state) == running ]]; do sleep 0.05; done
    start=$(now_ns)
    kill -9 "${PIDS[m3]}"
    until on m1 GET "/v1/vms/$name" && [[ $(jbody .state) == running && $(jbody .member) != m3 ]]; do
        if (($(now_ns) - start > (TTL + 30) * 1000000000)); then
            echo "n/a (not restarted elsewhere within $((TTL + 30)) s: the daemon takes \"ha\" but has no take-over)"
            return
        fi
        sleep 0.02
    done
    ms $(($(now_ns) - start))
    echo
}
: >"$tmp/ha"
for run in $(seq "$RUNS"); do
    ha_run "$run" >"$tmp/ha.last"
    result=$(cat "$tmp/ha.last")
    echo "$result" >>"$tmp/ha"
    [[ $result == n/a* ]] && break
    # m3 back for the next run: it rejoins without a token; its stale workers end by their ids.
    for pid in $(pgrep -f -- "--control $STATE3/run/" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    member m3
    wait_online 3
done
if grep -q "^n/a" "$tmp/ha"; then
    echo "5. kill -9 of m3 to its ha:\"restart\" VM running on another member: $(grep "^n/a" "$tmp/ha" | head -n 1)"
else
    echo "5. kill -9 of m3 to its ha:\"restart\" VM running on another member (lease TTL $TTL s): median $(median <"$tmp/ha") ms (runs $(joined <"$tmp/ha"))"
fi
echo "no peer: there is no other cluster manager on this machine to run the same steps against, so no ratios"
