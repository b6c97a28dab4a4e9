#!/bin/bash
# Storage pools, images and volumes against a real daemon (issue 14): uploads
# and imports by path, raw and qcow2 (made here with qemu-img), the digest,
# progress events, what is refused (a corrupt qcow2, a backing file, a path
# outside the import directories, a full pool before and during an upload)
# with nothing left behind; volumes cloned and empty, grown, attached to a VM
# by name and read by the virtio-blk test guest; every 409.
# Usage: test_storage.sh VMMD GUESTS
set -u
VMMD=$1 GUESTS=$2
. "$(dirname "$0")/daemon_fixture.sh"

if ! command -v qemu-img >/dev/null; then
    echo "SKIPPED: qemu-img is not installed (scripts/setup.sh installs qemu-utils); the storage checks did not run" >&2
    exit 77
fi

IMPORT=$tmp/import SMALL=$tmp/small
mkdir -p "$IMPORT" "$SMALL"
# A 4 MiB filesystem of its own: a pool that fills up.
small_fs=0
if [[ $(id -u) -eq 0 ]] && mount -t tmpfs -o size=4m vmmd-test-small "$SMALL" 2>/dev/null; then
    small_fs=1
fi
cleanup_small() { [[ $small_fs -eq 1 ]] && umount -l "$SMALL" 2>/dev/null; cleanup; }
trap cleanup_small EXIT

start_daemon --import-dir "$IMPORT" --storage-pool "small=$SMALL" || exit 1
IMAGES_POOL=$STATE/images VOLUMES_POOL=$STATE/volumes

# upload NAME FILE [query] -> $status, body in $tmp/body
upload() {
    status=$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST --unix-socket "$SOCK" \
        -H 'Content-Type: application/octet-stream' --data-binary "@$2" \
        "http://vmmd/v1/images?name=$1${3:+&$3}")
}
# wait_image NAME STATE [seconds]
wait_image() {
    for _ in $(seq $((${3:-20} * 20))); do
        api GET "/v1/images/$1"
        [[ $(jbody .state) == "$2" ]] && return 0
        sleep 0.05
    done
    return 1
}
events() { curl -s -m 1 --unix-socket "$SOCK" "http://vmmd/v1/events?since=0" 2>/dev/null; }
# nothing_left NAME POOLDIR: no row, no file, no hidden part file
nothing_left() {
    api GET "/v1/images/$1"
    [[ $status == 404 ]] && ! ls -A "$2" | grep -q -- "$1"
}

# --- pools --------------------------------------------------------------------------
api GET /v1/storage
check "storage: the default pools and the extra one, with sizes" \
    $([[ $status == 200 && $(jbody '[.pools[].name] | join(",")') == images,volumes,small \
        && $(jbody '.pools[0].size_bytes') -gt 0 && $(jbody '.pools[0].free_bytes') -gt 0 \
        && $(jbody '.import_dirs | index(["'"$IMPORT"'"])') != null ]]; echo $?)

# --- a raw upload: streamed, digested, sparse ----------------------------------------
yes vmmd-virtio-blk-pattern | head -c 4096 >"$tmp/disk.raw"
truncate -s 2M "$tmp/disk.raw"
upload base "$tmp/disk.raw"
check "upload raw: 201, ready, the sha256 of what was sent" \
    $([[ $status == 201 && $(jbody .state) == ready && $(jbody .format) == raw \
        && $(jbody .sha256) == $(sha256sum "$tmp/disk.raw" | cut -d' ' -f1) \
        && $(jbody .size_bytes) == 2097152 ]]; echo $?)
check "upload raw: the pool's file is whole and sparse" \
    $(cmp -s "$tmp/disk.raw" "$IMAGES_POOL/base.img" \
        && [[ $(stat -c %b "$IMAGES_POOL/base.img") -lt 100 ]]; echo $?)
upload base "$tmp/disk.raw"
check "upload: a name taken → 409" $([[ $status == 409 ]]; echo $?)
upload "Bad_Name" "$tmp/disk.raw"
check "upload: a bad name → 422 naming it" $([[ $status == 422 && $(jbody .detail) == name:* ]]; echo $?)
status=$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST --unix-socket "$SOCK" \
    -H 'Content-Type: application/octet-stream' -H 'Transfer-Encoding: chunked' \
    --data-binary @"$tmp/disk.raw" "http://vmmd/v1/images?name=chunky")
check "upload: a chunked body (no Content-Length) → 400, nothing kept" \
    $([[ $status == 400 ]] && nothing_left chunky "$IMAGES_POOL"; echo $?)

# --- qcow2: uploaded and imported by path, converted by qemu-img ----------------------
qemu-img convert -q -f raw -O qcow2 "$tmp/disk.raw" "$IMPORT/disk.qcow2"
upload q-up "$IMPORT/disk.qcow2"
check "upload qcow2: 202 importing, recorded as qcow2" \
    $([[ $status == 202 && $(jbody .state) == importing && $(jbody .format) == qcow2 ]]; echo $?)
check "upload qcow2: converted to raw, same bytes as the source" \
    $(wait_image q-up ready && cmp -s "$tmp/disk.raw" "$IMAGES_POOL/q-up.img"; echo $?)
api POST /v1/images "{\"name\":\"q-path\",\"path\":\"$IMPORT/disk.qcow2\"}"
check "import qcow2 by path: 202" $([[ $status == 202 ]]; echo $?)
check "import qcow2 by path: ready, sha256 of the qcow2 file" \
    $(wait_image q-path ready && [[ $(jbody .sha256) == $(sha256sum "$IMPORT/disk.qcow2" | cut -d' ' -f1) \
        && $(jbody .source) == "$IMPORT/disk.qcow2" ]]; echo $?)
cp "$tmp/disk.raw" "$IMPORT/disk.raw"
api POST /v1/images "{\"name\":\"r-path\",\"path\":\"$IMPORT/disk.raw\",\"format\":\"raw\"}"
check "import raw by path: ready, same bytes" \
    $([[ $status == 202 ]] && wait_image r-path ready && cmp -s "$tmp/disk.raw" "$IMAGES_POOL/r-path.img"; echo $?)
events >"$tmp/events"
check "events: image.created, image.import_progress, image.ready" \
    $(grep -q '^event: image.created$' "$tmp/events" && grep -q '^event: image.import_progress$' "$tmp/events" \
        && grep -q '^event: image.ready$' "$tmp/events"; echo $?)

# --- refused imports leave nothing behind ---------------------------------------------
printf 'QFI\xfb\0\0\0\x03garbage-after-the-magic' >"$tmp/corrupt.qcow2"
upload corrupt "$tmp/corrupt.qcow2"
check "upload: a corrupt qcow2 → 422 naming qemu-img's reason, nothing kept" \
    $([[ $status == 422 && $(jbody .detail) == *qcow2* ]] && nothing_left corrupt "$IMAGES_POOL"; echo $?)
cp "$tmp/corrupt.qcow2" "$IMPORT/corrupt.qcow2"
api POST /v1/images "{\"name\":\"corrupt\",\"path\":\"$IMPORT/corrupt.qcow2\"}"
check "import by path: a corrupt qcow2 → 422, nothing kept" \
    $([[ $status == 422 ]] && nothing_left corrupt "$IMAGES_POOL"; echo $?)
qemu-img create -q -f qcow2 -b "$IMPORT/disk.qcow2" -F qcow2 "$IMPORT/overlay.qcow2"
api POST /v1/images "{\"name\":\"overlay\",\"path\":\"$IMPORT/overlay.qcow2\"}"
check "import: a qcow2 with a backing file → 422 (it would read another host file)" \
    $([[ $status == 422 && $(jbody .detail) == *backing* ]] && nothing_left overlay "$IMAGES_POOL"; echo $?)
api POST /v1/images "{\"name\":\"etc\",\"path\":\"/etc/passwd\"}"
check "import: a path outside the import directories → 403" $([[ $status == 403 ]]; echo $?)
ln -s /etc/shadow "$IMPORT/shadow.raw"
api POST /v1/images "{\"name\":\"shadow\",\"path\":\"$IMPORT/shadow.raw\"}"
check "import: a symlink in an import directory to a file outside → 403" \
    $([[ $status == 403 ]] && nothing_left shadow "$IMAGES_POOL"; echo $?)
api POST /v1/images "{\"name\":\"gone\",\"path\":\"$IMPORT/nope.raw\"}"
check "import: a missing file → 422 naming path" $([[ $status == 422 && $(jbody .detail) == path:* ]]; echo $?)
api POST /v1/images "{\"name\":\"x\",\"path\":\"$IMPORT/disk.raw\",\"format\":\"vmdk\",\"extra\":1}"
check "import: an unknown field → 400" $([[ $status == 400 ]]; echo $?)
api POST /v1/images "{\"name\":\"x\",\"path\":\"$IMPORT/disk.raw\",\"pool\":\"nope\"}"
check "import: an unknown pool → 422 listing the pools" \
    $([[ $status == 422 && $(jbody .detail) == *images,\ volumes,\ small* ]]; echo $?)

if [[ $small_fs -eq 1 ]]; then
    head -c 6M /dev/urandom >"$tmp/big.raw"
    upload big "$tmp/big.raw" pool=small
    check "full pool: an upload larger than the room → 507 before a byte is stored" \
        $([[ $status == 507 ]] && nothing_left big "$SMALL"; echo $?)
    head -c 3M /dev/urandom >"$tmp/mid.raw"
    curl -s -o "$tmp/mid.body" -w '%{http_code}' -X POST --unix-socket "$SOCK" --limit-rate 1M \
        -H 'Content-Type: application/octet-stream' --data-binary @"$tmp/mid.raw" \
        "http://vmmd/v1/images?name=mid&pool=small" >"$tmp/mid.status" &
    up=$!
    sleep 0.7
    dd if=/dev/zero of="$SMALL/filler" bs=1M count=4 2>/dev/null # takes what is left
    wait $up
    check "full pool: room runs out during the upload → 507, nothing kept" \
        $([[ $(cat "$tmp/mid.status") == 507 ]] && nothing_left mid "$SMALL" && grep -q 'ran out of room' "$tmp/mid.body"; echo $?)
    rm -f "$SMALL/filler"
    head -c 1M /dev/urandom >"$tmp/fits.raw"
    upload fits "$tmp/fits.raw" pool=small
    check "full pool: once there is room again, an upload works" $([[ $status == 201 ]]; echo $?)
else
    echo "SKIPPED (part): cannot mount a small tmpfs here (needs root); the full-pool checks did not run" >&2
fi

# --- volumes -----------------------------------------------------------------------------
api POST /v1/volumes '{"name":"web-root","image":"base","size_mib":4}'
check "volume: clone of an image, grown to 4 MiB, says how it was copied" \
    $([[ $status == 201 && $(jbody .image) == base && $(jbody .size_mib) == 4 \
        && $(jbody .clone) =~ ^(reflink|sparse-copy)$ ]]; echo $?)
check "volume: its file holds the image's bytes, then holes up to its size" \
    $(cmp -s -n 2097152 "$tmp/disk.raw" "$VOLUMES_POOL/web-root.vol" \
        && [[ $(stat -c %s "$VOLUMES_POOL/web-root.vol") == 4194304 ]]; echo $?)
api POST /v1/volumes '{"name":"scratch","size_mib":64}'
check "volume: empty, sparse" \
    $([[ $status == 201 && $(jbody .clone) == empty && $(stat -c %b "$VOLUMES_POOL/scratch.vol") -lt 16 ]]; echo $?)
api POST /v1/volumes '{"name":"tiny","image":"base","size_mib":1}'
check "volume: smaller than its image → 422" $([[ $status == 422 && $(jbody .detail) == size_mib:* ]]; echo $?)
api POST /v1/volumes '{"name":"nosize"}'
check "volume: neither image nor size → 422" $([[ $status == 422 ]]; echo $?)
api POST /v1/volumes '{"name":"web-root","size_mib":1}'
check "volume: a name taken → 409" $([[ $status == 409 ]]; echo $?)
api POST /v1/volumes '{"name":"x","image":"nope"}'
check "volume: an unknown image → 422 naming image" $([[ $status == 422 && $(jbody .detail) == image:* ]]; echo $?)
api POST /v1/volumes '{"name":"shared","image":"base","readonly":true}'
check "volume: a read-only clone" $([[ $status == 201 && $(jbody .readonly) == true ]]; echo $?)
api PATCH /v1/volumes/scratch '{"size_mib":128}'
check "volume: grows while detached" \
    $([[ $status == 200 && $(jbody .size_mib) == 128 && $(stat -c %s "$VOLUMES_POOL/scratch.vol") == 134217728 ]]; echo $?)
api PATCH /v1/volumes/scratch '{"size_mib":8}'
check "volume: shrinking → 422" $([[ $status == 422 ]]; echo $?)
# Pool accounting: what the pool says it holds is what its files take on disk.
api GET /v1/storage
used=$(jbody '.pools[] | select(.name == "volumes") | .used_bytes')
nvol=$(jbody '.pools[] | select(.name == "volumes") | .volumes')
disk=$(du -B1 -c "$VOLUMES_POOL"/*.vol | awk 'END { print $1 }')
check "storage: the volumes pool counts 3 volumes and the bytes their files take ($used = $disk)" \
    $([[ $nvol == 3 && $used == "$disk" ]]; echo $?)

# --- VMs use volumes by name --------------------------------------------------------------
require_kvm "the volume-in-a-VM checks"
api POST /v1/vms "$(vm_json reader virtio-blk "\"cmdline\":\"stay\",\"disks\":[{\"volume\":\"web-root\"}]")"
check "VM: a disk by volume name → 201, shown as such" \
    $([[ $status == 201 && $(jbody '.disks[0].volume') == web-root ]]; echo $?)
api POST /v1/vms/reader/start
check "VM: the virtio-blk guest reads its volume (the image's pattern) and writes it" \
    $([[ $status == 200 ]] && wait_console reader "all checks passed" 10; echo $?)
api POST /v1/vms "$(vm_json thief idle "\"disks\":[{\"volume\":\"web-root\"}]")"
check "VM: a read-write volume another VM has → 409 naming it" \
    $([[ $status == 409 && $(jbody .detail) == *reader* ]]; echo $?)
api POST /v1/vms "$(vm_json ro1 idle "\"disks\":[{\"volume\":\"shared\"}]")"
ro1=$status
api POST /v1/vms "$(vm_json ro2 idle "\"disks\":[{\"volume\":\"shared\",\"readonly\":true}]")"
check "VM: a read-only volume on two VMs (attached read-only even where the disk does not say)" \
    $([[ $ro1 == 201 && $status == 201 ]]; echo $?)
# opened_read_only PID FILE: the process holds FILE, and only open for reading
opened_read_only() {
    local fd flags found=1
    for fd in /proc/$1/fd/*; do
        [[ $(readlink "$fd") == "$2" ]] || continue
        found=0
        flags=$(awk '/^flags:/ { print $2 }' "/proc/$1/fdinfo/${fd##*/}")
        (((8#$flags) % 4 == 0)) || return 1 # O_RDONLY is 0 in the access mode bits
    done
    return $found
}
api POST /v1/vms/ro1/start
wait_state ro1 running
api GET /v1/vms/ro1
check "VM: the read-only volume's file is handed over read-only" \
    $(opened_read_only "$(worker_of "$(jbody .id)")" "$VOLUMES_POOL/shared.vol"; echo $?)
api POST /v1/vms/ro1/stop
wait_state ro1 stopped
api POST /v1/vms "$(vm_json sneaky idle "\"disks\":[{\"path\":\"$VOLUMES_POOL/web-root.vol\"}]")"
check "VM: a pool's file by path → refused (403 outside the image dirs or 422)" \
    $([[ $status == 403 || $status == 422 ]]; echo $?)
api POST /v1/vms "$(vm_json ghost idle "\"disks\":[{\"volume\":\"nope\"}]")"
check "VM: an unknown volume → 422 naming disks[0].volume" \
    $([[ $status == 422 && $(jbody .detail) == disks\[0\].volume:* ]]; echo $?)
api POST /v1/vms "$(vm_json both idle "\"disks\":[{\"volume\":\"scratch\",\"path\":\"$GUESTS/guest-idle.elf\"}]")"
check "VM: path and volume in one disk → 422" $([[ $status == 422 ]]; echo $?)
api PATCH /v1/volumes/web-root '{"size_mib":8}'
check "volume: grow while its VM runs → 409 naming the VM" \
    $([[ $status == 409 && $(jbody .detail) == *reader* ]]; echo $?)
api DELETE /v1/volumes/web-root
check "volume: delete while a VM uses it → 409 naming the VM" \
    $([[ $status == 409 && $(jbody .detail) == *reader* ]]; echo $?)
api DELETE /v1/images/base
check "image: delete with volumes cloned from it → 409 naming them" \
    $([[ $status == 409 && $(jbody .detail) == *web-root* && $(jbody .detail) == *shared* ]]; echo $?)
api GET /v1/volumes/web-root
check "volume: lists the VM that uses it" $([[ $(jbody '.vms[0].name') == reader ]]; echo $?)
curl -s --unix-socket "$SOCK" http://vmmd/metrics >"$tmp/metrics"
check "metrics: pool bytes, images by state, volumes" \
    $(grep -q '^vmmd_storage_pool_free_bytes{pool="volumes"} [1-9]' "$tmp/metrics" \
        && grep -q '^vmmd_images{state="ready"} [1-9]' "$tmp/metrics" \
        && grep -q '^vmmd_volumes{pool="volumes"} 3$' "$tmp/metrics" \
        && grep -q '^vmmd_image_import_bytes_total [1-9]' "$tmp/metrics"; echo $?)

api POST /v1/vms/reader/stop
wait_state reader stopped
api PATCH /v1/volumes/web-root '{"size_mib":8}'
check "volume: grows once its VM stopped" $([[ $status == 200 && $(jbody .size_mib) == 8 ]]; echo $?)
for vm in reader ro1 ro2; do api DELETE "/v1/vms/$vm"; done
api DELETE /v1/volumes/web-root
check "volume: deleted once no VM uses it, file gone" \
    $([[ $status == 204 && ! -e $VOLUMES_POOL/web-root.vol ]]; echo $?)
api DELETE /v1/volumes/shared
api DELETE /v1/images/base
check "image: deleted once its volumes are gone, file gone" \
    $([[ $status == 204 && ! -e $IMAGES_POOL/base.img ]]; echo $?)

# --- an import the daemon did not finish ---------------------------------------------
kill -9 "$daemon_pid"
wait "$daemon_pid" 2>/dev/null
sqlite3 "$STATE/vmmd.db" "UPDATE images SET state = 'importing' WHERE name = 'r-path'" 2>/dev/null ||
    echo "note: no sqlite3 CLI; the restart check uses what the daemon left"
touch "$IMAGES_POOL/.half.img.part"
start_daemon --import-dir "$IMPORT" --storage-pool "small=$SMALL" || exit 1
api GET /v1/images/r-path
check "restart: an import left unfinished is failed, its part files removed" \
    $([[ ! -e $IMAGES_POOL/.half.img.part ]] && { ! command -v sqlite3 >/dev/null || \
        [[ $(jbody .state) == failed && $(jbody .error) == *stopped* ]]; }; echo $?)
finish
