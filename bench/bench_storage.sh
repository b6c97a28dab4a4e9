#!/bin/bash
# Storage: image import and volume clone speed (issue 14), against the host's
# own tools on the same file in the same run.
#
#  import: an image of SIZE_MIB with DATA_MIB of random data (the rest holes)
#          - raw, uploaded over the API socket (curl -T, streamed) vs `cp`
#            of the file;
#          - raw, imported by path (sha256 + sparse copy) vs `cp --sparse=always`
#            alone and vs `cp --sparse=always` + `sha256sum` (what an operator
#            does to copy and verify an image);
#          - qcow2, imported by path (sha256 while qemu-img converts) vs
#            `qemu-img convert -O raw` alone;
#          MB/s of the image's virtual size, page cache warm, medians of RUNS.
#          vmmd fsyncs what it wrote before it answers: every peer's copy is
#          followed by `sync FILE` too.
#  clone:  volume from that image (POST /v1/volumes until 201): a sparse copy on
#          the state directory's filesystem, and a reflink on an XFS loop
#          filesystem made for the run (skipped without mkfs.xfs or root);
#          vs `cp --sparse=always` and `cp --reflink=always` of the same file.
#
# Usage: bench/bench_storage.sh [BUILD_DIR] [RUNS] [SIZE_MIB] [DATA_MIB]
#        (defaults: build 5 1024 256; a Release build times the daemon, not ASan)
set -euo pipefail

BUILD=$(cd "${1:-build}" && pwd)
RUNS=${2:-5}
SIZE_MIB=${3:-1024}
DATA_MIB=${4:-256}
VMMD=$BUILD/vmmd/vmmd
[[ -x $VMMD ]] || { echo "bench_storage: $VMMD missing (build vmmd)" >&2; exit 1; }
command -v qemu-img >/dev/null || { echo "bench_storage: qemu-img missing (qemu-utils)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/bench-storage.XXXXXX")
xfs=$tmp/xfs
daemon=
cleanup() {
    [[ -n $daemon ]] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
    mountpoint -q "$xfs" && umount "$xfs"
    rm -rf "$tmp"
}
trap cleanup EXIT

now_ns() { date +%s%N; }
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
mbps() { awk -v mib="$SIZE_MIB" -v ns="$1" 'BEGIN { printf "%.0f", mib * 1048576 / 1e6 / (ns / 1e9) }'; }
ms() { awk -v ns="$1" 'BEGIN { printf "%.1f", ns / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# The image: DATA_MIB of random data spread in 8 extents, holes between.
mkdir -p "$tmp/import"
img=$tmp/import/disk.raw
truncate -s "${SIZE_MIB}M" "$img"
step=$((SIZE_MIB / 8)) chunk=$((DATA_MIB / 8))
for i in $(seq 0 7); do
    dd if=/dev/urandom of="$img" bs=1M count=$chunk seek=$((i * step)) conv=notrunc status=none
done
qemu-img convert -q -f raw -O qcow2 "$img" "$tmp/import/disk.qcow2"
cat "$img" "$tmp/import/disk.qcow2" >/dev/null

pools=()
if [[ $(id -u) -eq 0 ]] && command -v mkfs.xfs >/dev/null; then
    truncate -s $((SIZE_MIB * 3 + 512))M "$tmp/xfs.img"
    mkfs.xfs -q -m reflink=1 "$tmp/xfs.img" && mkdir -p "$xfs" && mount -o loop "$tmp/xfs.img" "$xfs" &&
        pools=(--storage-pool "xfs=$xfs")
fi
STATE=$tmp/state SOCK=$tmp/state/vmmd.sock
"$VMMD" serve --state-dir "$STATE" --no-networks --import-dir "$tmp/import" "${pools[@]}" \
    --log-file "$tmp/vmmd.log" 2>>"$tmp/vmmd.err" &
daemon=$!
for _ in $(seq 200); do curl -s --unix-socket "$SOCK" http://v/v1/host >/dev/null && break; sleep 0.05; done

api() { # METHOD PATH [JSON] -> status on stdout
    curl -s -o "$tmp/body" -w '%{http_code}' -X "$1" --unix-socket "$SOCK" \
        ${3:+-H 'Content-Type: application/json' --data-binary "$3"} "http://v$2"
}
wait_ready() {
    while :; do
        api GET "/v1/images/$1" >/dev/null
        case $(jq -r .state "$tmp/body") in
        ready) return 0 ;;
        failed) echo "bench_storage: import $1 failed: $(jq -r .error "$tmp/body")" >&2; exit 1 ;;
        esac
        sleep 0.01
    done
}
# time_ns COMMAND...: how long it ran
time_ns() { local t0; t0=$(now_ns); "$@" >/dev/null; echo $(($(now_ns) - t0)); }
upload() { curl -s -o /dev/null -X POST --unix-socket "$SOCK" -H 'Content-Type: application/octet-stream' \
    -H 'Expect:' -T "$img" "http://v/v1/images?name=$1"; }
copy() { cp "$@" && sync "${@: -1}"; }
copy_verify() { cp --sparse=always "$1" "$2" && sync "$2" && sha256sum "$1"; }
convert() { qemu-img convert -f qcow2 -O raw "$1" "$2" && sync "$2"; }
import_path() { api POST /v1/images "{\"name\":\"$1\",\"path\":\"$2\"}" >/dev/null && wait_ready "$1"; }
drop() { api DELETE "/v1/images/$1" >/dev/null; }

declare -A t
for r in $(seq "$RUNS"); do
    t[cp]+="$(time_ns copy "$img" "$tmp/copy") "; rm -f "$tmp/copy"
    t[upload]+="$(time_ns upload up$r) "; drop up$r
    t[cp_sparse]+="$(time_ns copy --sparse=always "$img" "$tmp/copy") "; rm -f "$tmp/copy"
    t[cp_sha]+="$(time_ns copy_verify "$img" "$tmp/copy") "; rm -f "$tmp/copy"
    t[raw_path]+="$(time_ns import_path raw$r "$img") "; drop raw$r
    t[qemu_img]+="$(time_ns convert "$tmp/import/disk.qcow2" "$tmp/copy") "; rm -f "$tmp/copy"
    t[qcow2_path]+="$(time_ns import_path q$r "$tmp/import/disk.qcow2") "; drop q$r
done
med() { tr ' ' '\n' <<<"${t[$1]}" | grep . | median; }

echo "image: ${SIZE_MIB} MiB virtual, ${DATA_MIB} MiB of data; medians of $RUNS runs, MB/s of the virtual size"
printf '%-44s %8s MB/s   (%s: %s MB/s, ratio %s)\n' \
    "upload raw over the API socket" "$(mbps "$(med upload)")" "cp" "$(mbps "$(med cp)")" \
    "$(ratio "$(med cp)" "$(med upload)")" \
    "import raw by path (sha256 + sparse copy)" "$(mbps "$(med raw_path)")" "cp --sparse=always" \
    "$(mbps "$(med cp_sparse)")" "$(ratio "$(med cp_sparse)" "$(med raw_path)")" \
    "import raw by path (the same runs)" "$(mbps "$(med raw_path)")" \
    "cp --sparse=always + sha256sum" "$(mbps "$(med cp_sha)")" \
    "$(ratio "$(med cp_sha)" "$(med raw_path)")" \
    "import qcow2 by path (sha256 + qemu-img)" "$(mbps "$(med qcow2_path)")" "qemu-img convert" \
    "$(mbps "$(med qemu_img)")" "$(ratio "$(med qemu_img)" "$(med qcow2_path)")"

# Clones: one image per pool to clone from.
clone() { api POST /v1/volumes "{\"name\":\"$1\",\"image\":\"$2\",\"pool\":\"$3\"}" >"$tmp/clone.status"; }
clone_bench() { # POOL IMAGE CP_FLAG: the image and its clones in POOL
    local pool=$1 image=$2 flag=$3 dir
    api GET /v1/storage >/dev/null
    dir=$(jq -r ".pools[] | select(.name == \"$pool\") | .path" "$tmp/body")
    t[vol]="" t[cpc]=""
    for r in $(seq "$RUNS"); do
        t[vol]+="$(time_ns clone c$r "$image" "$pool") "
        [[ $(cat "$tmp/clone.status") == 201 ]] || { echo "clone failed: $(cat "$tmp/body")" >&2; exit 1; }
        kind=$(jq -r .clone "$tmp/body")
        api DELETE "/v1/volumes/c$r" >/dev/null
        t[cpc]+="$(time_ns copy "$flag" "$dir/$image.img" "$dir/cp-copy") "; rm -f "$dir/cp-copy"
    done
    printf '%-44s %8s ms     (cp %s: %s ms, ratio %s)\n' "clone a ${SIZE_MIB} MiB image ($kind, pool $pool)" \
        "$(ms "$(med vol)")" "$flag" "$(ms "$(med cpc)")" "$(ratio "$(med cpc)" "$(med vol)")"
}
api POST /v1/images "{\"name\":\"vbase\",\"path\":\"$img\",\"pool\":\"volumes\"}" >/dev/null
wait_ready vbase
clone_bench volumes vbase --sparse=always
if [[ ${#pools[@]} -gt 0 ]]; then
    api POST /v1/images "{\"name\":\"xbase\",\"path\":\"$img\",\"pool\":\"xfs\"}" >/dev/null
    wait_ready xbase
    clone_bench xfs xbase --reflink=always
else
    echo "clone on XFS (reflink): skipped (needs root and mkfs.xfs)"
fi
echo "(ratio > 1: vmmd faster than the host's tool)"
