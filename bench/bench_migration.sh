#!/bin/bash
# Live migration (issue 15) between two real daemons on this host, against
# QEMU migrating the same guest in the same run.
#
# The counter test guest (pv, 1 vCPU, idle otherwise: it touches about 100 KiB
# of its RAM) with 256 MiB and with 2048 MiB is migrated back and forth between
# two `vmmd serve` (each its own state directory) RUNS times, max_downtime_ms
# 50. Per migration:
#   202:       POST /v1/vms/{id}/migrate until 202;
#   total:     POST until the VM is gone from the source (GET -> 404);
#   downtime, rounds, bytes: what the source reports in its vm.migrated event;
#   gap check: the source's console log (hard-linked before the migration, the
#              daemon removes it with the VM) followed by the target's console
#              must count on consecutively, every line "ok": a lost or
#              repeated number or a BAD is a failure (counted, printed).
# Peer: QEMU (-M pc, the guest's PVH entry, as tests/guests/check-qemu.sh),
# a destination started with -incoming tcp:127.0.0.1:PORT for each migration,
# driven over QMP (downtime-limit 50, max-bandwidth lifted: vmmd does not
# throttle); total-time and downtime from query-migrate, and the same console
# check on the two serial files. -accel kvm first; -accel tcg when QEMU cannot
# run the guest on this host's /dev/kvm (said in the output: the comparison is
# then vmmd on KVM against an emulator).
# Snapshot: vmmd's POST /v1/vms/{id}/snapshot paused_ms (the memory file is
# fsynced) vs QEMU stop + migrate to "exec:cat > FILE" + cont (no fsync);
# restore to running: POST /v1/vms/{id}/restore until 200 vs a new QEMU with
# -incoming "exec:cat FILE" from launch until QMP says running.
#
# Usage: bench/bench_migration.sh BUILD_DIR [RUNS]   (default 5; medians of RUNS)
#        BUILD_DIR: a Release build, e.g.
#        cmake -S . -B build-mb -DCMAKE_BUILD_TYPE=Release &&
#        make -C build-mb -j2 vmmd vmmd-daemon guest-counter
set -euo pipefail

BUILD=$(cd "${1:-build}" && pwd)
RUNS=${2:-5}
VMMD=$BUILD/vmmd/vmmd
GUESTS=$BUILD/tests/guests
GUEST=$GUESTS/guest-counter.elf
QEMU=${QEMU:-qemu-system-x86_64}
SIZES=(256 2048)
DOWNTIME=50
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "bench_migration: RUNS must be a positive number" >&2; exit 1; }
[[ -x $VMMD ]] || { echo "bench_migration: $VMMD missing (build vmmd)" >&2; exit 1; }
[[ -f $GUEST ]] || { echo "bench_migration: $GUEST missing (build guest-counter)" >&2; exit 1; }
[[ -c /dev/kvm && -w /dev/kvm ]] || { echo "bench_migration: /dev/kvm is not usable here" >&2; exit 1; }
for tool in curl jq python3 "$QEMU"; do
    command -v "$tool" >/dev/null || { echo "bench_migration: $tool missing" >&2; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/bench-migration.XXXXXX")
declare -A SOCKS=([a]=$tmp/a/vmmd.sock [b]=$tmp/b/vmmd.sock)
declare -A DAEMONS=()
QEMUS=() # pids of every QEMU started, ended at cleanup if still there

# Workers outlive their daemon by design: the VMs are deleted through the API first, then
# any worker of this run's state directories still there is ended by its id.
cleanup() {
    trap - EXIT INT TERM
    set +e
    local d vm pid pids=()
    for pid in "${QEMUS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    for d in "${!DAEMONS[@]}"; do
        for vm in $(curl -s -m 5 --unix-socket "${SOCKS[$d]}" http://x/v1/vms 2>/dev/null | jq -r '.[].name' 2>/dev/null); do
            pid=$(curl -s -m 5 --unix-socket "${SOCKS[$d]}" "http://x/v1/vms/$vm" | jq -r '.worker_pid // empty' 2>/dev/null)
            [[ -n $pid && $pid != 0 ]] && pids+=("$pid")
            curl -s -m 10 -o /dev/null -X DELETE --unix-socket "${SOCKS[$d]}" "http://x/v1/vms/$vm?force=true"
        done
    done
    for d in "${!DAEMONS[@]}"; do
        kill "${DAEMONS[$d]}" 2>/dev/null && wait "${DAEMONS[$d]}" 2>/dev/null
    done
    for pid in "${pids[@]}"; do
        grep -qs -- "$tmp/" "/proc/$pid/cmdline" && kill -9 "$pid" 2>/dev/null
    done
    # A worker started on a target while the bench was interrupted is in no list yet.
    for pid in $(pgrep -f -- "--control $tmp/" 2>/dev/null); do
        grep -qs -- "$tmp/" "/proc/$pid/cmdline" && kill -9 "$pid" 2>/dev/null
    done
    for pid in "${QEMUS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now_ns() { date +%s%N; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ms() { awk -v ns="$1" 'BEGIN { printf "%.1f", ns / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

# api DAEMON METHOD PATH [JSON] -> $status, body in $tmp/body
api() {
    local args=(-s -o "$tmp/body" -w '%{http_code}' -X "$2" --unix-socket "${SOCKS[$1]}")
    [[ $# -ge 4 ]] && args+=(-H 'Content-Type: application/json' --data-binary "$4")
    status=$(curl "${args[@]}" "http://vmmd$3")
}
jbody() { jq -r "$1" "$tmp/body"; }
need() { # STATUS WHAT: stop the bench on an unexpected answer
    [[ $status == "$1" ]] && return 0
    echo "bench_migration: $2 -> $status: $(head -c 400 "$tmp/body")" >&2
    exit 1
}
counters() { sed -n 's/^counter: \([0-9]*\) ok$/\1/p'; }
# count_gaps FILE: how many times the counter does not go on at the next number, plus the
# lines that are not "ok" (a BAD, or a line broken by a lost byte)
count_gaps() {
    awk '/^counter: [0-9]+ ok$/ { n = $2 + 0; if (seen && n != prev + 1) bad++; prev = n; seen = 1; next }
         /^counter: start$/ { next }
         /^counter:/ { bad++ }
         END { print bad + 0 }' "$1"
}
# where_gaps FILE: the places where it does not (for the output)
where_gaps() {
    awk '/^counter: [0-9]+ ok$/ { n = $2 + 0; if (seen && n != prev + 1) printf "%d->%d ", prev, n; prev = n; seen = 1; next }
         /^counter: start$/ { next }
         /^counter:/ { printf "[%s] ", $0 }' "$1"
}
# stay_of DAEMON: the console log of the VM ($id) there from where its current stay began
stay_of() { tail -c +$((FROM[$1] + 1)) "$tmp/$1/run/$id/console.log" 2>/dev/null || true; }
console_of() { # DAEMON VM -> its console on stdout
    curl -s --unix-socket "${SOCKS[$1]}" "http://vmmd/v1/vms/$2/console?tail=1048576"
}
# wait_lines DAEMON VM N: until the VM's console there shows N counter lines (20 s)
wait_lines() {
    local end=$(($(now_ns) + 20000000000))
    while [[ $(console_of "$1" "$2" | counters | wc -l) -lt $3 ]]; do
        [[ $(now_ns) -lt $end ]] || return 1
        sleep 0.02
    done
}
# wait_file_lines FILE N: until FILE holds N counter lines (60 s: QEMU may emulate)
wait_file_lines() {
    local end=$(($(now_ns) + 60000000000))
    while [[ $(counters <"$1" | wc -l) -lt $2 ]]; do
        [[ $(now_ns) -lt $end ]] || return 1
        sleep 0.05
    done
}
# last_migrated DAEMON VM: the data of the vm.migrated events for VM there, a line each
last_migrated() {
    curl -s -m 1 --unix-socket "${SOCKS[$1]}" "http://vmmd/v1/events?since=0" 2>/dev/null |
        awk '/^event: / { ev = $2; next } /^data: / && ev == "vm.migrated" { sub(/^data: /, ""); print } { ev = (/^$/ ? "" : ev) }' |
        jq -c --arg vm "$2" 'select(.vm == $vm)' || true
}

start_daemon() { # a|b
    local d=$1
    "$VMMD" serve --state-dir "$tmp/$d" --image-dir "$GUESTS" --log-file "$tmp/vmmd-$d.log" --log-level warn \
        --no-networks 2>>"$tmp/vmmd-$d.err" &
    DAEMONS[$d]=$!
    for _ in $(seq 200); do
        curl -s --unix-socket "${SOCKS[$d]}" http://vmmd/v1/host >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "bench_migration: daemon $d did not come up:" >&2
    cat "$tmp/vmmd-$d.err" >&2
    exit 1
}

# --- QEMU over QMP ----------------------------------------------------------------
# qmp migrate SRC_SOCK DST_SOCK URI DOWNTIME_MS: migrate (the destination's QMP is waited for
#     first: its -incoming listens by then); prints "wall_ms total_ms downtime_ms bytes status"
# qmp snapshot SOCK URI: stop, migrate to URI, until completed, cont; prints
#     "stopped_ms total_ms bytes status" (stopped_ms: stop sent until cont answered)
# qmp restore SOCK T0_NS: until QEMU (launched at T0_NS, CLOCK_REALTIME) has loaded the
#     incoming state and runs (cont if it stays paused); prints "ms status"
QMP_PY='
import json, socket, sys, time

class QMP:
    def __init__(self, path, deadline=60):
        end = time.monotonic() + deadline
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.monotonic() > end:
                    sys.exit("qmp: cannot connect to " + path)
                time.sleep(0.002)
        self.f = self.s.makefile("rwb")
        json.loads(self.f.readline())          # the greeting
        self.cmd("qmp_capabilities")
    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.f.write(json.dumps(msg).encode() + b"\n")
        self.f.flush()
        while True:
            line = self.f.readline()
            if not line:
                sys.exit("qmp: QEMU went away during " + name)
            r = json.loads(line)
            if "return" in r:
                return r["return"]
            if "error" in r:
                sys.exit("qmp: %s: %s" % (name, r["error"].get("desc")))

def until_done(q):
    while True:
        m = q.cmd("query-migrate")
        st = m.get("status")
        if st in ("completed", "failed", "cancelled"):
            return m
        time.sleep(0.002)

def params(q, downtime):
    q.cmd("migrate-set-parameters", **{"downtime-limit": downtime, "max-bandwidth": 1 << 40})

mode = sys.argv[1]
if mode == "migrate":
    dst = QMP(sys.argv[3])
    src = QMP(sys.argv[2])
    params(src, int(sys.argv[5]))
    t0 = time.monotonic_ns()
    src.cmd("migrate", uri=sys.argv[4])
    m = until_done(src)
    wall = (time.monotonic_ns() - t0) / 1e6
    print("%.3f %s %s %s %s" % (wall, m.get("total-time", -1), m.get("downtime", -1),
                                m.get("ram", {}).get("total-transferred", m.get("ram", {}).get("transferred", -1)), m["status"]))
elif mode == "snapshot":
    q = QMP(sys.argv[2])
    params(q, 300)
    t0 = time.monotonic_ns()
    q.cmd("stop")
    q.cmd("migrate", uri=sys.argv[3])
    m = until_done(q)
    q.cmd("cont")
    wall = (time.monotonic_ns() - t0) / 1e6
    print("%.3f %s %s %s" % (wall, m.get("total-time", -1),
                             m.get("ram", {}).get("total-transferred", m.get("ram", {}).get("transferred", -1)), m["status"]))
elif mode == "restore":
    t0 = int(sys.argv[3])
    q = QMP(sys.argv[2])
    conted = False
    end = time.monotonic() + 120
    while True:
        st = q.cmd("query-status")["status"]
        if st == "running":
            break
        if st in ("paused", "postmigrate", "prelaunch") and not conted:
            q.cmd("cont")
            conted = True
        if st in ("internal-error", "shutdown", "guest-panicked") or time.monotonic() > end:
            print("-1 " + st)
            sys.exit(0)
        time.sleep(0.001)
    print("%.3f running" % ((time.time_ns() - t0) / 1e6))
'
qmp() { python3 -c "$QMP_PY" "$@"; }

ACCEL=
# qemu_start NAME MEM [ARGS...]: a QEMU with QMP at $tmp/NAME.qmp, console in $tmp/NAME.serial
qemu_start() {
    local name=$1 mem=$2
    shift 2
    rm -f "$tmp/$name.qmp"
    : >"$tmp/$name.serial"
    "$QEMU" -accel "$ACCEL" -M pc -m "$mem" -nodefaults -no-user-config -nographic -display none \
        -fw_cfg name=etc/sercon-port,string=0 -kernel "$GUEST" \
        -serial "file:$tmp/$name.serial" -qmp "unix:$tmp/$name.qmp,server,nowait" "$@" \
        </dev/null >>"$tmp/qemu.out" 2>&1 &
    QEMUS+=($!)
    QPID=$!
}
qemu_quit() { # PID: quit (or kill) it and forget it
    local pid=$1 i
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for i in "${!QEMUS[@]}"; do [[ ${QEMUS[$i]} == "$pid" ]] && unset 'QEMUS[i]'; done
    QEMUS=("${QEMUS[@]}")
}
free_port() { # a TCP port nothing listens on
    local p
    while :; do
        p=$((20000 + RANDOM % 30000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}

# Which accelerator QEMU runs the guest with here: kvm if it prints its counter on /dev/kvm.
for accel in kvm tcg; do
    ACCEL=$accel
    qemu_start probe 64
    ok=0
    wait_file_lines "$tmp/probe.serial" 2 && kill -0 "$QPID" 2>/dev/null && ok=1
    qemu_quit "$QPID"
    ((ok)) && break
    ACCEL=
done
[[ -n $ACCEL ]] || { echo "bench_migration: QEMU runs the guest neither on kvm nor tcg:" >&2; cat "$tmp/qemu.out" >&2; exit 1; }
QEMU_NOTE=$ACCEL
[[ $ACCEL == tcg ]] && QEMU_NOTE="tcg (QEMU could not run the guest on this host's /dev/kvm: vmmd on KVM vs an emulator)"
[[ $ACCEL == kvm ]] && grep -qs kvm_pvm /proc/modules && QEMU_NOTE="kvm (this host's /dev/kvm is PVM, for QEMU as for vmmd)"

start_daemon a
start_daemon b

echo "bench_migration: $VMMD, counter guest, pv, 1 vCPU, idle; max downtime $DOWNTIME ms; $RUNS migrations back and forth per size; medians (min..max)"
echo "host: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); QEMU peer: $($QEMU --version | head -n 1), -M pc, -accel $QEMU_NOTE"

# stat_of FILE KEY: "median (min..max)" of KEY's values
stat_of() {
    awk -v k="$2" '$1 == k {print $2}' "$1" | sort -g | awk '
        {v[NR] = $1} END { if (!NR) { print "n/a"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%s (%s..%s)", m, v[1], v[NR] }'
}
runs_of() { awk -v k="$2" '$1 == k { printf "%s ", $2 }' "$1"; }
med_of() { awk -v k="$2" '$1 == k {print $2}' "$1" | median; }
# fmt_ms FILE KEY_NS: "median (min..max)" in ms of ns values
fmt_ms() {
    awk -v k="$2" '$1 == k {printf "%.1f\n", $2 / 1e6}' "$1" | sort -g | awk '
        {v[NR] = $1} END { if (!NR) { print "n/a"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.1f (%s..%s)", m, v[1], v[NR] }'
}

declare -A SUMMARY
for size in "${SIZES[@]}"; do
    m=$tmp/m-$size
    : >"$m"
    echo
    echo "== $size MiB"

    # --- vmmd: back and forth -------------------------------------------------------
    vm=mig-$size
    api a POST /v1/vms "{\"name\":\"$vm\",\"mode\":\"pv\",\"vcpus\":1,\"memory_mib\":$size,\"kernel\":\"$GUEST\"}"
    need 201 "create $vm"
    id=$(jbody .id)
    api a POST "/v1/vms/$vm/start"
    need 200 "start $vm"
    wait_lines a "$vm" 3 || { echo "bench_migration: $vm does not count" >&2; exit 1; }
    src=a dst=b vfail=0 vgaps=0
    declare -A NOUT=([a]=0 [b]=0)
    # A daemon's console log of the VM is appended to each time the VM comes back: FROM[d]
    # is the offset where the current stay's output starts there.
    declare -A FROM=([a]=0 [b]=0)
    for run in $(seq "$RUNS"); do
        ln "$tmp/$src/run/$id/console.log" "$tmp/src.console"
        FROM[$dst]=$(stat -c %s "$tmp/$dst/run/$id/console.log" 2>/dev/null || echo 0)
        t0=$(now_ns)
        api "$src" POST "/v1/vms/$vm/migrate" "{\"target\":\"unix:${SOCKS[$dst]}\",\"max_downtime_ms\":$DOWNTIME}"
        t1=$(now_ns)
        need 202 "migrate $vm $src -> $dst"
        gone=0
        for i in $(seq 6000); do # 60 s at most
            api "$src" GET "/v1/vms/$vm"
            [[ $status == 404 ]] && { gone=1; break; }
            if ((i % 50 == 0)); then
                api "$src" GET "/v1/vms/$vm/migration"
                [[ $(jbody .state) == failed ]] && break
            fi
            sleep 0.005
        done
        t2=$(now_ns)
        if ((!gone)); then
            api "$src" GET "/v1/vms/$vm/migration"
            echo "  run $run: vmmd $src -> $dst FAILED: $(head -c 300 "$tmp/body")"
            vfail=$((vfail + 1))
            rm -f "$tmp/src.console"
            continue
        fi
        echo "v_accept_ns $((t1 - t0))" >>"$m"
        echo "v_total_ns $((t2 - t0))" >>"$m"
        # the event of this migration: the one after the $src's earlier ones for this VM
        for _ in 1 2 3 4 5; do
            ev=$(last_migrated "$src" "$vm")
            [[ $(wc -l <<<"$ev") -gt ${NOUT[$src]} && -n $ev ]] && break
        done
        NOUT[$src]=$(wc -l <<<"$ev")
        ev=$(tail -n 1 <<<"$ev")
        [[ -n $ev ]] || { echo "  run $run: no vm.migrated event on $src"; ev='{}'; }
        jq -r '"v_downtime_ms \(.downtime_ms)", "v_reported_total_ms \(.total_ms)", "v_rounds \(.rounds)",
            "v_bytes \(.bytes_sent)"' <<<"$ev" | grep -v ' null$' >>"$m" || true
        api "$dst" GET "/v1/vms/$vm"
        [[ $status == 200 && $(jbody .state) == running ]] ||
            { echo "  run $run: vmmd on $dst after the migration: $status $(head -c 200 "$tmp/body")"; vfail=$((vfail + 1)); }
        srclast=$(tail -c +$((FROM[$src] + 1)) "$tmp/src.console" | counters | tail -n 1)
        end=$(($(now_ns) + 20000000000))
        while [[ $(stay_of "$dst" | counters | wc -l) -lt 3 && $(now_ns) -lt $end ]]; do sleep 0.02; done
        if [[ $(stay_of "$dst" | counters | wc -l) -ge 3 ]]; then
            { tail -c +$((FROM[$src] + 1)) "$tmp/src.console"; stay_of "$dst"; } >"$tmp/joined"
            g=$(count_gaps "$tmp/joined")
            if ((g)); then
                vgaps=$((vgaps + 1))
                echo "  run $run: vmmd $src -> $dst: the console does not go on consecutively: $(where_gaps "$tmp/joined")"
            fi
        else
            vgaps=$((vgaps + 1))
            echo "  run $run: vmmd $src -> $dst: no counter on the target (source's last: ${srclast:-none})"
        fi
        rm -f "$tmp/src.console"
        t=$src src=$dst dst=$t
    done
    # --- vmmd: snapshot and restore on the daemon that holds it now ---------------------
    for run in $(seq "$RUNS"); do
        api "$src" POST "/v1/vms/$vm/snapshot" "{\"name\":\"r$run\"}"
        need 201 "snapshot $vm"
        echo "v_snap_paused_ms $(jbody .paused_ms)" >>"$m"
        t0=$(now_ns)
        api "$src" POST "/v1/vms/$vm/restore" "{\"snapshot\":\"r$run\"}"
        t1=$(now_ns)
        need 200 "restore $vm"
        echo "v_restore_ns $((t1 - t0))" >>"$m"
        api "$src" DELETE "/v1/vms/$vm/snapshots/r$run"
        need 204 "delete snapshot $vm/r$run"
    done
    api "$src" DELETE "/v1/vms/$vm?force=true"
    need 204 "delete $vm"

    # --- QEMU: the same guest, a new destination for each migration ------------------
    qfail=0 qgaps=0 n=0
    qemu_start q$n "$size"
    qsrc=$QPID
    wait_file_lines "$tmp/q$n.serial" 3 || { echo "bench_migration: QEMU's guest does not count" >&2; exit 1; }
    for run in $(seq "$RUNS"); do
        port=$(free_port)
        t0=$(now_ns)
        qemu_start q$((n + 1)) "$size" -incoming "tcp:127.0.0.1:$port"
        qdst=$QPID
        read -r wall total down bytes st < <(qmp migrate "$tmp/q$n.qmp" "$tmp/q$((n + 1)).qmp" \
            "tcp:127.0.0.1:$port" "$DOWNTIME" || echo "-1 -1 -1 -1 error")
        t2=$(now_ns)
        if [[ $st != completed ]]; then
            echo "  run $run: QEMU migration $st: $(tail -n 3 "$tmp/qemu.out" | tr '\n' ' ')"
            qfail=$((qfail + 1))
            qemu_quit "$qdst"
            continue
        fi
        printf 'q_wall_ms %s\nq_total_ms %s\nq_launch_total_ns %s\nq_downtime_ms %s\nq_bytes %s\n' \
            "$wall" "$total" $((t2 - t0)) "$down" "$bytes" >>"$m"
        qemu_quit "$qsrc"
        n=$((n + 1)) qsrc=$qdst
        lines=$(($(counters <"$tmp/q$n.serial" | wc -l) + 3))
        if wait_file_lines "$tmp/q$n.serial" 3 && kill -0 "$qsrc" 2>/dev/null; then
            cat "$tmp/q$((n - 1)).serial" "$tmp/q$n.serial" >"$tmp/joined"
            g=$(count_gaps "$tmp/joined")
            if ((g)); then
                qgaps=$((qgaps + 1))
                echo "  run $run: QEMU: the console does not go on consecutively: $(where_gaps "$tmp/joined")"
            fi
        else
            qgaps=$((qgaps + 1))
            echo "  run $run: QEMU: no counter on the destination (wanted $lines lines)"
        fi
        rm -f "$tmp/q$((n - 1)).serial"
    done
    # --- QEMU: "savevm without a disk" and restore from it ---------------------------
    for run in $(seq "$RUNS"); do
        rm -f "$tmp/qsnap"
        read -r wall total bytes st < <(qmp snapshot "$tmp/q$n.qmp" "exec:cat > $tmp/qsnap" || echo "-1 -1 -1 error")
        [[ $st == completed ]] || { echo "  run $run: QEMU snapshot $st"; qfail=$((qfail + 1)); continue; }
        printf 'q_snap_stopped_ms %s\nq_snap_total_ms %s\nq_snap_file %s\n' \
            "$wall" "$total" "$(stat -c %s "$tmp/qsnap")" >>"$m"
        t0=$(now_ns)
        qemu_start qr "$size" -incoming "exec:cat $tmp/qsnap"
        read -r rms st < <(qmp restore "$tmp/qr.qmp" "$t0" || echo "-1 error")
        if [[ $st == running ]]; then
            echo "q_restore_ms $rms" >>"$m"
        else
            echo "  run $run: QEMU restore: $st"
            qfail=$((qfail + 1))
        fi
        qemu_quit "$QPID"
    done
    qemu_quit "$qsrc"
    rm -f "$tmp"/q*.serial "$tmp/qsnap"

    echo "vmmd migration ($RUNS runs, $vfail failed, $vgaps with a console gap):"
    echo "  202 latency        $(fmt_ms "$m" v_accept_ns) ms"
    echo "  total (202->gone)  $(fmt_ms "$m" v_total_ns) ms from POST (the source's own total_ms: $(stat_of "$m" v_reported_total_ms))"
    echo "  downtime           $(stat_of "$m" v_downtime_ms) ms"
    echo "  bytes sent         $(mib "$(med_of "$m" v_bytes)") ($(stat_of "$m" v_bytes) bytes)"
    echo "  rounds             $(stat_of "$m" v_rounds)"
    echo "QEMU -accel $ACCEL migration ($RUNS runs, $qfail failed, $qgaps with a console gap):"
    echo "  total-time         $(stat_of "$m" q_total_ms) ms (QMP); migrate command to completed polled $(stat_of "$m" q_wall_ms) ms;" \
        "with the destination's launch $(fmt_ms "$m" q_launch_total_ns) ms"
    echo "  downtime           $(stat_of "$m" q_downtime_ms) ms"
    echo "  bytes transferred  $(mib "$(med_of "$m" q_bytes)") ($(stat_of "$m" q_bytes) bytes)"
    vt=$(ms "$(med_of "$m" v_total_ns)") vd=$(med_of "$m" v_downtime_ms)
    qt=$(med_of "$m" q_total_ms) ql=$(ms "$(med_of "$m" q_launch_total_ns)") qd=$(med_of "$m" q_downtime_ms)
    echo "ratio vmmd/QEMU:     total $(ratio "$vt" "$qt") (vs QEMU with its destination's launch $(ratio "$vt" "$ql")), downtime $(ratio "$vd" "$qd")"
    echo "snapshot:            vmmd paused $(stat_of "$m" v_snap_paused_ms) ms;" \
        "QEMU stop+migrate to file+cont $(stat_of "$m" q_snap_stopped_ms) ms (total-time $(stat_of "$m" q_snap_total_ms) ms," \
        "file $(mib "$(med_of "$m" q_snap_file)")); ratio $(ratio "$(med_of "$m" v_snap_paused_ms)" "$(med_of "$m" q_snap_stopped_ms)")"
    echo "  per run:           vmmd paused $(runs_of "$m" v_snap_paused_ms)ms; vmmd downtime $(runs_of "$m" v_downtime_ms)ms"
    echo "restore to running:  vmmd until 200 $(fmt_ms "$m" v_restore_ns) ms;" \
        "QEMU launch -incoming exec until running $(stat_of "$m" q_restore_ms) ms;" \
        "ratio $(ratio "$(ms "$(med_of "$m" v_restore_ns)")" "$(med_of "$m" q_restore_ms)")"
    SUMMARY[$size]="vmmd total $vt ms, downtime $vd ms | QEMU total $qt ms, downtime $qd ms | failures vmmd $vfail, QEMU $qfail; gaps vmmd $vgaps, QEMU $qgaps"
done

echo
echo "== summary (medians; QEMU -accel $ACCEL)"
for size in "${SIZES[@]}"; do
    printf '  %5s MiB: %s\n' "$size" "${SUMMARY[$size]}"
done
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
