# Sourced by the benches that time the virtio-blk test guest through `vmmd run`
# (bench_virtio_blk.sh, bench_io_limits.sh): BUILD and NAME set by the caller.
# Checks vmmd, the guest and /dev/kvm; makes $tmp (removed at exit); defines
# VMMD, GUEST, now_ns, median and run_ns.
VMMD=$BUILD/vmmd/vmmd
GUEST=$BUILD/tests/guests/guest-virtio-blk.elf
for f in "$VMMD" "$GUEST"; do
    [[ -x $f || -f $f ]] || { echo "$NAME: $f missing (build vmmd and test-guests)" >&2; exit 1; }
done
[[ -w /dev/kvm ]] || { echo "$NAME: /dev/kvm is not usable here" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/$NAME.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

now_ns() { date +%s%N; }
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# run_ns DISK_ARG CMDLINE: wall ns of one `vmmd run` of the guest (its console in $tmp/out);
# a failed run ends the bench.
run_ns() {
    local t0 t1
    t0=$(now_ns)
    if ! timeout 300 "$VMMD" run --kernel "$GUEST" --disk "$1" --cmdline "$2" </dev/null >"$tmp/out" 2>"$tmp/err"; then
        echo "$NAME: the guest failed:" >&2
        cat "$tmp/out" "$tmp/err" >&2
        exit 1
    fi
    t1=$(now_ns)
    echo $((t1 - t0))
}
