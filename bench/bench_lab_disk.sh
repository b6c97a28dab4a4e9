#!/usr/bin/env bash
# Disk read throughput in the TCG lab: native > pv > full, vmmd against QEMU.
# One L1 boot (tests/lab/run.sh) does it all, on one ext4 image made here with
# `mkfs.ext4 -d` (default 32 MiB) that L1 copies into its RAM:
#   native     L1 reads the image file itself (dd bs=1M);
#   vmmd pv    L2 reads the whole disk as /dev/vda (virtio-blk, virtio-pci, MSI-X);
#   vmmd full  L2 reads it as /dev/sda (ata_piix: PIIX IDE with bus-master DMA);
#   QEMU pv    the same L2 under QEMU -M pc -cpu host with virtio-blk-pci;
#   QEMU full  the same L2 under QEMU -M pc -cpu host,-hypervisor,kvm=off, IDE.
# L2 has 1 vCPU (--vcpus) and 256 MiB. Every read is `dd if=DEV of=/dev/null
# bs=1M` with caches dropped first, --runs (default 3) per launch; the figure
# is the best read of all rounds (see --rounds), in MB/s (10^6 bytes/s; the
# reader's own clock around dd, read with adjtimex for microseconds); all=
# lists every read in order (each launch's first read also faults L2's page
# cache into memory). VM exits
# per MiB come from L1's KVM counters (debugfs), read when L2 marks the start
# and end of each read, minus a window of the same shape without the read;
# the median over the runs is printed (npt_faults: KVM's pf_fixed).
# host_clock_mbs times the same reads by the arrival of L2's marks on the host
# (minus the idle window), a check that trusts no guest clock.
# Usage: bench_lab_disk.sh [--vmmd PATH] [--size MIB] [--runs N] [--rounds N] [--vcpus N]
#                          [--timeout S] [--cache DIR] [--keep-log FILE] [--from-log FILE]
#                          [--launches LIST]
#   --from-log FILE: no run; the figures of a log kept with --keep-log.
#   --launches LIST: run.sh's --vmm list (default vmmd:pv,qemu-pv,vmmd:full,qemu-full);
#     a VMM and mode given twice counts as one, its best run.
#   --rounds N: the list N times over (default 2): other work on the host
#     comes in bursts of tens of seconds that can cost one launch half its
#     speed; interleaved rounds give each VMM another chance at a quiet spell.
#     The figure is the best of rounds x runs reads.
# Output lines start with "BENCH "; exit 0 when every launch ran, 1 otherwise
# (the targets are reported, not enforced), 77 when QEMU is missing.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
VMMD=${VMMD:-$REPO/build/vmmd/vmmd}
SIZE=32 RUNS=3 ROUNDS=2 VCPUS=1 TIMEOUT=1200 KEEP_LOG='' FROM_LOG=''
# Each mode's pair back to back, so both VMMs see the same load on the host.
LAUNCHES=vmmd:pv,qemu-pv,vmmd:full,qemu-full
CACHE=${LAB_CACHE:-/var/tmp/vmmd-lab}

while [[ $# -gt 0 ]]; do
    case $1 in
        --vmmd) VMMD=${2:?}; shift 2 ;;
        --size) SIZE=${2:?}; shift 2 ;;
        --runs) RUNS=${2:?}; shift 2 ;;
        --rounds) ROUNDS=${2:?}; shift 2 ;;
        --vcpus) VCPUS=${2:?}; shift 2 ;;
        --timeout) TIMEOUT=${2:?}; shift 2 ;;
        --cache) CACHE=${2:?}; shift 2 ;;
        --keep-log) KEEP_LOG=${2:?}; shift 2 ;;
        --from-log) FROM_LOG=${2:?}; shift 2 ;;
        --launches) LAUNCHES=${2:?}; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench_lab_disk.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
[[ $ROUNDS =~ ^[1-9]$ ]] || { echo "bench_lab_disk.sh: --rounds is 1 to 9" >&2; exit 2; }
[[ $SIZE =~ ^[1-9][0-9]*$ && $SIZE -ge 8 ]] || { echo "bench_lab_disk.sh: --size is MiB, at least 8" >&2; exit 2; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/vmmd-lab-disk.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
LOG=$TMP/run.log
rc=0

if [[ -n $FROM_LOG ]]; then
    cp "$FROM_LOG" "$LOG"
    SIZE=$(awk '/LAB: disk_dev=/ {sub(/.*sectors=/, ""); print int($1 / 2048); exit}' "$LOG")
    RUNS=$(grep -ac 'LAB: native_dd run=' "$LOG" || true)
else
    if ! command -v qemu-system-x86_64 >/dev/null; then
        echo "bench_lab_disk.sh: SKIP: qemu-system-x86_64 not found (apt-get install qemu-system-x86)" >&2
        exit 77
    fi
    [[ -x $VMMD ]] || { echo "bench_lab_disk.sh: vmmd binary not found: $VMMD (--vmmd PATH)" >&2; exit 2; }
    PATH=$PATH:/usr/sbin:/sbin
    command -v mkfs.ext4 >/dev/null || { echo "bench_lab_disk.sh: mkfs.ext4 missing (e2fsprogs)" >&2; exit 2; }

    # The image: an ext4 file system mostly filled by one file of random bytes.
    mkdir -p "$TMP/seed/lab"
    echo "bench" > "$TMP/seed/lab/seed.txt"
    head -c $(((SIZE - SIZE / 4) * 1048576)) /dev/urandom > "$TMP/seed/lab/data.bin"
    truncate -s "${SIZE}M" "$TMP/disk.img"
    mkfs.ext4 -q -F -d "$TMP/seed" "$TMP/disk.img"

    ALL=$LAUNCHES
    for ((i = 1; i < ROUNDS; i++)); do ALL+=",$LAUNCHES"; done
    echo "bench: one L1 boot, launches $ALL, ${SIZE} MiB image, $RUNS runs each (several minutes)" >&2
    "$REPO/tests/lab/run.sh" --vmm "$ALL" --vmmd "$VMMD" --vcpus "$VCPUS" --timeout "$TIMEOUT" \
        --cache "$CACHE" --disk "$TMP/disk.img" --disk-in-ram --l2-tests diskbench --runs "$RUNS" \
        > "$LOG" 2> "$LOG.err" || rc=$?
    [[ -z $KEEP_LOG ]] || cp "$LOG" "$KEEP_LOG"
    if [[ $rc != 0 ]]; then
        cp "$LOG" "${TMPDIR:-/tmp}/vmmd-lab-disk-fail.log" 2>/dev/null || true
        echo "bench: run.sh exit $rc; log kept in ${TMPDIR:-/tmp}/vmmd-lab-disk-fail.log" >&2
        tail -n 5 "$LOG.err" >&2
    fi
fi
grep -a '^LAB-RESULT' "$LOG" >&2 || true

# One line per VMM and mode, in launch order, from the console log: sections
# start at "LAB: L1 launching L2 ... vmm=V mode=M", the native reads come
# before them, and run.sh's LAB-MARK lines (host arrival times) come last.
#   fig KEY best=MB/s all=MB/s,... host_best=MB/s idle_host_s=S C=median-per-MiB...
# A counter's per-MiB figure for one read is (read window - idle window) / MiB.
awk -v mib="$SIZE" '
function dd_mbs(line,   f, nf, i, b, us) {   # "... bytes=N us=T" -> MB/s
    nf = split(line, f, " "); b = 0; us = 0
    for (i = 1; i <= nf; i++) if (f[i] ~ /^bytes=/) b = substr(f[i], 7); else if (f[i] ~ /^us=/) us = substr(f[i], 4)
    return us > 0 ? b / us : 0
}
function median(key, x,   m, u, w, t, a) {
    m = cnt[key, x]
    for (u = 1; u <= m; u++) a[u] = val[key, x, u]
    for (u = 2; u <= m; u++) for (w = u; w > 1 && a[w - 1] > a[w]; w--) { t = a[w]; a[w] = a[w - 1]; a[w - 1] = t }
    return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
# window(KEY, NAME, COUNTER, VALUE): NAME is idle_begin, dd2_end...; a dd end adds a run.
function window(key, name, x, v,   p) {
    split(name, p, "_")
    if (p[2] == "begin") { beg[x] = v; return }
    if (p[1] == "idle") { idle[x] = v - beg[x]; return }
    val[key, x, ++cnt[key, x]] = (v - beg[x] - idle[x]) / mib
    ctr[x] = 1
}
/LAB: native_dd run=/ { v = dd_mbs($0); if (v > best["native"]) best["native"] = v; all["native"] = all["native"] sprintf(",%.1f", v) }
/LAB: L1 launching L2/ {
    for (i = 1; i <= NF; i++) { if ($i ~ /^vmm=/) vmm = substr($i, 5); if ($i ~ /^mode=/) mode = substr($i, 6) }
    key = vmm "/" mode; launch[++nl] = key
    if (!(key in seen)) { seen[key] = 1; order[++n] = key }
}
/LAB: bench_dd run=/ { v = dd_mbs($0); if (v > best[key]) best[key] = v; all[key] = all[key] sprintf(",%.1f", v) }
/LAB: L1 kvm / {   # LAB: L1 kvm NAME t=.. exits=.. io_exits=..
    for (i = 1; i <= NF; i++) if ($i == "kvm") break
    for (j = i + 2; j <= NF; j++) { split($j, kv, "="); window(key, $(i + 1), kv[1], kv[2]) }
}
/^LAB-MARK / {   # LAB-MARK launch=N name=dd1_begin host_t=T
    split($2, ln, "="); split($3, nm, "="); split($4, ht, "=")
    window(launch[ln[2]], nm[2], "host_s", ht[2])
    if (nm[2] == "idle_end") idle_host[launch[ln[2]]] = idle["host_s"]
}
END {
    printf "fig native best=%.1f all=%s\n", best["native"], substr(all["native"], 2)
    for (k = 1; k <= n; k++) {
        key = order[k]; hb = 0
        for (r = 1; r <= cnt[key, "host_s"]; r++)
            if (val[key, "host_s", r] > 0 && 1.048576 / val[key, "host_s", r] > hb) hb = 1.048576 / val[key, "host_s", r]
        line = sprintf("fig %s best=%.1f all=%s host_best=%.1f idle_host_s=%.2f", key, best[key], substr(all[key], 2), hb, idle_host[key])
        for (x in ctr) {
            # levels rather than events, and the host clock done above
            if (x == "host_s" || x == "t" || x ~ /^(pages_|nx_lpage|mmu_|max_mmu|halt_.*(ns|hist)$)/ || !cnt[key, x]) continue
            line = line sprintf(" %s=%.1f", x, median(key, x))
        }
        print line
    }
}' "$LOG" > "$TMP/figures"

# fig KEY FIELD: a figure of the awk above (empty when absent).
fig() { awk -v k="$1" -v f="$2" '$1 == "fig" && $2 == k { for (i = 3; i <= NF; i++) if (index($i, f "=") == 1) { print substr($i, length(f) + 2); exit } }' "$TMP/figures"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "NA" }'; }
fmt() { awk -v v="$1" 'BEGIN { if (v == "") print "NA"; else printf "%.0f", (v > -0.5 && v < 0.5) ? 0 : v }'; }

NATIVE=$(fig native best)
echo "BENCH disk_read native mbs=$NATIVE all=$(fig native all) (L1 reads the ${SIZE} MiB image file in its RAM)"
declare -A MBS=([vmmd/pv]='' [vmmd/full]='' [qemu-pv/pv]='' [qemu-full/full]='')
for key in $(awk '$1 == "fig" && $2 != "native" {print $2}' "$TMP/figures"); do
    MBS[$key]=$(fig "$key" best)
    echo "BENCH disk_read vmm=${key%/*} mode=${key#*/} mbs=${MBS[$key]} all=$(fig "$key" all)" \
         "vs_native=$(ratio "${MBS[$key]}" "$NATIVE") exits_per_mib=$(fmt "$(fig "$key" exits)")" \
         "io=$(fmt "$(fig "$key" io_exits)") mmio=$(fmt "$(fig "$key" mmio_exits)")" \
         "irq_injections=$(fmt "$(fig "$key" irq_injections)") npt_faults=$(fmt "$(fig "$key" pf_fixed)")" \
         "host_clock_mbs=$(fig "$key" host_best) idle_window_host_s=$(fig "$key" idle_host_s)"
done
# Every KVM counter that moved by at least 0.5 per MiB (medians), for finding what dominates.
awk '$1 == "fig" && $2 != "native" {
    line = "BENCH kvm_per_mib vmm=" $2
    for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] !~ /^(best|all|host_best|idle_host_s)$/ && kv[2] >= 0.5) line = line sprintf(" %s=%.0f", kv[1], kv[2]) }
    print line }' "$TMP/figures"
echo "BENCH ratio native/vmmd-pv=$(ratio "$NATIVE" "${MBS[vmmd/pv]}") vmmd-pv/vmmd-full=$(ratio "${MBS[vmmd/pv]}" "${MBS[vmmd/full]}")"
echo "BENCH ratio vmmd/qemu pv=$(ratio "${MBS[vmmd/pv]}" "${MBS[qemu-pv/pv]}") full=$(ratio "${MBS[vmmd/full]}" "${MBS[qemu-full/full]}")"
# verdict A OP B: met when A OP B holds (OP is > or >=).
verdict() { awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN { ok = op == ">" ? a + 0 > b + 0 : a + 0 >= b + 0; print (a + 0 > 0 && ok) ? "met" : "missed" }'; }
echo "BENCH targets native>pv:$(verdict "$NATIVE" '>' "${MBS[vmmd/pv]}") pv>full:$(verdict "${MBS[vmmd/pv]}" '>' "${MBS[vmmd/full]}")" \
     "pv>=qemu:$(verdict "${MBS[vmmd/pv]}" '>=' "${MBS[qemu-pv/pv]}") full>=qemu:$(verdict "${MBS[vmmd/full]}" '>=' "${MBS[qemu-full/full]}")"
# vmmd's own counters of each whole run (userspace exits, disk operations).
grep -a '^vmmd: ' "$LOG" | sed 's/^/BENCH vmmd-stats /' || true
exit $((rc != 0))
