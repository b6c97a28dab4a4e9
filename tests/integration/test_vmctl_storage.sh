#!/bin/bash
# Integration: `vmctl storage`, `vmctl image ...` and `vmctl volume ...`
# against a real vmmd (issue 14). The usage errors (exit 2) before anything
# is sent; the pools; a raw image uploaded (streamed, its progress a line per
# 10 % when stderr is not a terminal, redrawn in place on one) with the
# sha256 of the file, a path import from an image directory, the refusals
# of both (403 outside the import directories, 422 missing, 409 name taken:
# exit 1 with the API's detail); a qcow2 upload and a qcow2 --path import
# (from --import-dir) converted in the background and followed to ready, and
# a corrupt one that fails (when qemu-img is here); volumes empty and
# cloned, grown, a shrink refused; a VM made with --disk volume=NAME, shown
# by vmctl show and on the volume; the 409s of an image with volumes, of a
# volume a VM uses and of a read-write volume asked for by a second VM; a
# read-only volume shared by two VMs; the deletes; --output json throughout;
# the storage events in vmctl events; completion of image and volume names;
# and, where a small tmpfs can be mounted, an upload larger than its pool
# refused with 507 and nothing left behind. No /dev/kvm (no VM is started).
# Usage: test_vmctl_storage.sh VMCTL VMMD GUEST_DIR
set -uo pipefail

VMCTL=$1
VMMD=$2
GUESTS=$(cd "$3" && pwd)
. "$(dirname "${BASH_SOURCE[0]}")/daemon_fixture.sh"
. "$(dirname "${BASH_SOURCE[0]}")/vmctl_fixture.sh"
# same_file A B: the daemon may print paths canonical (symlinks resolved)
same_file() { [[ -n $1 && $(readlink -f "$1") == "$(readlink -f "$2")" ]]; }
# import_dir_listed DIR: DIR is among the import_dirs of the `storage -o json` in $tmp/out
import_dir_listed() {
    local d
    while read -r d; do
        same_file "$d" "$1" && return 0
    done < <(jout '.import_dirs[]')
    return 1
}

# --- usage errors, before the daemon --------------------------------------------
v image
check "image without a subcommand -> exit 2 listing them" $([[ $rc == 2 ]] && grep -q "import NAME FILE" "$tmp/err"; echo $?)
v volume
check "volume without a subcommand -> exit 2 listing them" $([[ $rc == 2 ]] && grep -q "resize NAME SIZE_MIB" "$tmp/err"; echo $?)
v image frobnicate
check "unknown image subcommand -> exit 2" $([[ $rc == 2 ]]; echo $?)
all_help=0
for c in "image list" "image show" "image import" "image delete" "volume list" "volume show" \
    "volume create" "volume resize" "volume delete" storage; do
    # shellcheck disable=SC2086
    "$VMCTL" $c --help >"$tmp/out" 2>&1 && grep -q "Usage: vmctl $c" "$tmp/out" || { all_help=1; echo "  no help for $c"; }
done
rc=0
check "--help for every storage subcommand" $all_help
v image import deb
check "image import without FILE or --path -> exit 2" $([[ $rc == 2 ]]; echo $?)
v image import deb "$GUESTS/guest-idle.elf" --path "$GUESTS/guest-idle.elf"
check "image import with FILE and --path -> exit 2" $([[ $rc == 2 ]]; echo $?)
v image import deb "$GUESTS/guest-idle.elf" --format vmdk
check "image import --format vmdk -> exit 2" $([[ $rc == 2 ]]; echo $?)
v image import deb "$tmp/no-such-file"
check "image import of a missing file -> exit 2, nothing sent" $([[ $rc == 2 ]] && grep -q "no-such-file" "$tmp/err"; echo $?)
v volume create vol
check "volume create without --size or --image -> exit 2" $([[ $rc == 2 ]]; echo $?)
v volume create vol --size 0
check "volume create --size 0 -> exit 2" $([[ $rc == 2 ]]; echo $?)
v volume create vol --size 16777217
check "volume create --size past 16777216 -> exit 2" $([[ $rc == 2 ]]; echo $?)
v volume resize vol big
check "volume resize to a non-number -> exit 2" $([[ $rc == 2 ]]; echo $?)
v create x --kernel "$GUESTS/guest-idle.elf" --disk volume=
check "create --disk volume= without a name -> exit 2" $([[ $rc == 2 ]]; echo $?)
v storage
check "daemon down -> exit 3" $([[ $rc == 3 ]]; echo $?)

# A pool on a 2 MiB tmpfs, where one can be mounted, for the 507 of a full pool.
tiny=$tmp/tiny
mkdir -p "$tiny"
have_tiny=0
if mount -t tmpfs -o size=2m vmmd-test-tiny "$tiny" 2>/dev/null; then
    have_tiny=1
    trap 'umount "$tiny" 2>/dev/null; cleanup' EXIT
fi
pool_flags=()
((have_tiny)) && pool_flags=(--storage-pool "tiny=$tiny")
# An import directory of its own, for a qcow2 converted from --path.
mkdir -p "$tmp/imports"
start_daemon --import-dir "$tmp/imports" "${pool_flags[@]}" || exit 1

# --- pools -------------------------------------------------------------------------
v storage -o json
check "storage -o json: the pools images and volumes under the state directory" \
    $([[ $rc == 0 ]] && same_file "$(jout '.pools[] | select(.name == "images") | .path')" "$STATE/images" &&
      same_file "$(jout '.pools[] | select(.name == "volumes") | .path')" "$STATE/volumes"; echo $?)
check "storage -o json: sizes, and the image directory among the import directories" \
    $([[ $(jout '.pools[] | select(.name == "images") | .size_bytes > 0 and .free_bytes >= 0') == true ]] &&
      import_dir_listed "$GUESTS"; echo $?)
check "storage -o json: --import-dir among the import directories" \
    $(import_dir_listed "$tmp/imports"; echo $?)
v storage
check "storage: a table of the pools, then the import directories" \
    $([[ $rc == 0 ]] && grep -q "^POOL  *PATH  *SIZE  *FREE  *USED  *IMAGES  *VOLUMES  *REFLINK" "$tmp/out" &&
      grep -q "^images " "$tmp/out" && grep -q "^import dirs: *[^ -]" "$tmp/out"; echo $?)

# --- images: upload ------------------------------------------------------------------
dd if=/dev/urandom of="$tmp/disk.raw" bs=1M count=3 status=none
sha=$(sha256sum "$tmp/disk.raw" | cut -d' ' -f1)
v image import deb "$tmp/disk.raw" --format raw
check "image import (upload, raw) -> exit 0, ready" $([[ $rc == 0 ]] && grep -q "^state: *ready" "$tmp/out"; echo $?)
check "image import: off a terminal, a progress line per 10 % on stderr" \
    $([[ $(grep -c "^uploading deb \[.*%" "$tmp/err") -ge 5 ]] && grep -q "100%" "$tmp/err" && ! grep -q $'\r' "$tmp/err"; echo $?)
v image show deb -o json
check "image show -o json: raw, 3 MiB, the file's sha256, from an upload" \
    $([[ $rc == 0 && $(jout .state) == ready && $(jout .format) == raw && $(jout .size_bytes) == 3145728 &&
        $(jout .source_bytes) == 3145728 && $(jout .sha256) == "$sha" && $(jout .source) == upload &&
        $(jout .pool) == images ]]; echo $?)
# On a terminal (script(1) gives it one): the bar is redrawn in place, and -o json prints the image.
script -qec "$VMCTL image import deb-tty $tmp/disk.raw -o json" /dev/null >"$tmp/tty" 2>&1
rc=$?
check "image import on a terminal: one bar redrawn in place, then the image as JSON" \
    $([[ $rc == 0 ]] && grep -q $'\r''uploading deb-tty \[' "$tmp/tty" && grep -q '100%' "$tmp/tty" &&
      grep -q '"name": *"deb-tty"' "$tmp/tty"; echo $?)
"$VMCTL" image delete deb-tty >/dev/null 2>&1
v image list
check "image list: a row with state, format and the start of the sha256" \
    $([[ $rc == 0 ]] && grep -q "^NAME  *STATE  *FORMAT" "$tmp/out" && grep -q "^deb  *ready  *raw .*${sha:0:12}" "$tmp/out"; echo $?)
v image list -o json
check "image list -o json: the API's array" $([[ $rc == 0 && $(jout 'map(.name) | join(",")') == deb ]]; echo $?)
v image import deb "$tmp/disk.raw"
check "image import of a name taken -> exit 1, the API's words" $([[ $rc == 1 && -s $tmp/err ]] && grep -q deb "$tmp/err"; echo $?)
v image show nope
check "image show of an unknown image -> exit 1" $([[ $rc == 1 ]]; echo $?)

# --- images: by path ---------------------------------------------------------------------
v image import elf --path "$GUESTS/guest-idle.elf" --format raw -o json
check "image import --path from an image directory -> exit 0, ready, its source the path" \
    $([[ $rc == 0 && $(jout .state) == ready && $(jout .size_bytes) -ge $(stat -c %s "$GUESTS/guest-idle.elf") ]] &&
      same_file "$(jout .source)" "$GUESTS/guest-idle.elf"; echo $?)
v image import pw --path /etc/passwd
check "image import --path outside the import directories -> exit 1 (403)" $([[ $rc == 1 && -s $tmp/err ]]; echo $?)
v image import gone --path "$GUESTS/no-such-image.raw"
check "image import --path of a missing file -> exit 1 (422)" $([[ $rc == 1 && -s $tmp/err ]]; echo $?)
api GET /v1/images/pw
check "nothing is left of the refused imports" $([[ $status == 404 ]]; echo $?)

# --- images: qcow2 ----------------------------------------------------------------------
if command -v qemu-img >/dev/null; then
    qemu-img convert -f raw -O qcow2 "$tmp/disk.raw" "$tmp/disk.qcow2"
    v image import deb-q "$tmp/disk.qcow2"
    check "image import of a qcow2 (format auto): converted, followed to ready" \
        $([[ $rc == 0 ]] && grep -q "^state: *ready" "$tmp/out" && grep -q "^format: *qcow2" "$tmp/out"; echo $?)
    v image show deb-q -o json
    check "the converted image: qcow2, the raw size, the sha256 of the qcow2 file" \
        $([[ $(jout .format) == qcow2 && $(jout .size_bytes) == 3145728 &&
            $(jout .sha256) == "$(sha256sum "$tmp/disk.qcow2" | cut -d' ' -f1)" ]]; echo $?)
    cp "$tmp/disk.qcow2" "$tmp/imports/"
    v image import deb-p --path "$tmp/imports/disk.qcow2" -o json
    check "image import --path of a qcow2: converted by the daemon, followed to ready" \
        $([[ $rc == 0 && $(jout .state) == ready && $(jout .format) == qcow2 && $(jout .size_bytes) == 3145728 ]]; echo $?)
    "$VMCTL" image delete deb-p >/dev/null 2>&1
    # A qcow2 header over garbage: qemu-img cannot read it.
    { printf 'QFI\xfb\0\0\0\3'; head -c 65536 /dev/urandom; } >"$tmp/bad.qcow2"
    v image import bad "$tmp/bad.qcow2" --format qcow2
    check "a corrupt qcow2 -> exit 1 with the reason" $([[ $rc == 1 && -s $tmp/err ]]; echo $?)
    api GET /v1/images/bad
    [[ $status == 200 ]] && "$VMCTL" image delete bad >/dev/null 2>&1
else
    echo "NOTE: no qemu-img here (package qemu-utils): the qcow2 imports were not tried"
fi

# --- volumes ------------------------------------------------------------------------------
v volume create scratch --size 8 -o json
check "volume create --size: an empty volume" \
    $([[ $rc == 0 && $(jout .clone) == empty && $(jout .image) == null && $(jout .size_mib) == 8 &&
        $(jout .pool) == volumes ]]; echo $?)
v volume create root --image deb
check "volume create --image: a clone, printed" $([[ $rc == 0 ]] && grep -q "^origin: *clone of deb" "$tmp/out"; echo $?)
v volume show root -o json
check "the clone: reflink or sparse-copy, the image's size" \
    $([[ $(jout .image) == deb && ($(jout .clone) == reflink || $(jout .clone) == sparse-copy) &&
        $(jout .size_mib) == 3 ]]; echo $?)
v volume create big --image deb --size 16 -o json
check "volume create --image --size: a clone grown" $([[ $rc == 0 && $(jout .size_mib) == 16 && $(jout .image) == deb ]]; echo $?)
v volume create small --image deb --size 1
check "a clone smaller than its image -> exit 1 (422)" $([[ $rc == 1 && -s $tmp/err ]]; echo $?)
v volume create orphan --image no-such-image
check "a clone of an unknown image -> exit 1" $([[ $rc == 1 && -s $tmp/err ]]; echo $?)
v volume create root --size 8
check "volume create of a name taken -> exit 1 (409)" $([[ $rc == 1 && -s $tmp/err ]]; echo $?)
v volume resize scratch 32 -o json
check "volume resize: grown" $([[ $rc == 0 && $(jout .size_mib) == 32 ]]; echo $?)
v volume resize scratch 16
check "volume resize smaller -> exit 1 (422), unchanged" \
    $([[ $rc == 1 && -s $tmp/err ]] && "$VMCTL" volume show scratch -o json | jq -e '.size_mib == 32' >/dev/null; echo $?)
v volume list
check "volume list: size, image and clone kind" \
    $([[ $rc == 0 ]] && grep -q "^NAME  *POOL  *SIZE" "$tmp/out" && grep -q "^root  *volumes  *3 MiB .* deb " "$tmp/out" &&
      grep -q "^scratch  *volumes  *32 MiB .* empty " "$tmp/out"; echo $?)
v image show deb -o json
check "the image lists the volumes cloned from it" $([[ $(jout '.volumes | sort | join(",")') == big,root ]]; echo $?)
v image delete deb
check "image delete while volumes are cloned from it -> exit 1 naming them" \
    $([[ $rc == 1 ]] && grep -q root "$tmp/err" && grep -q big "$tmp/err"; echo $?)

# --- VMs on volumes -------------------------------------------------------------------------
v create web --kernel "$GUESTS/guest-idle.elf" --memory 32 --disk volume=root -o json
check "create --disk volume=NAME" $([[ $rc == 0 && $(jout '.disks[0].volume') == root ]]; echo $?)
v show web
check "show prints the volume disk" $([[ $rc == 0 ]] && grep -q "^disks: *volume root" "$tmp/out"; echo $?)
v volume show root -o json
check "the volume lists the VM" $([[ $(jout '.vms[0].name') == web ]]; echo $?)
v volume list
check "volume list names the VM" $(grep -q "^root .* web$" "$tmp/out"; echo $?)
v create web2 --kernel "$GUESTS/guest-idle.elf" --memory 32 --disk volume=root
check "a second VM on a read-write volume -> exit 1 (409) naming the first" $([[ $rc == 1 ]] && grep -q web "$tmp/err"; echo $?)
v create web3 --kernel "$GUESTS/guest-idle.elf" --memory 32 --disk volume=no-such-volume
check "a disk on an unknown volume -> exit 1 (422) naming disks[0].volume" \
    $([[ $rc == 1 ]] && grep -q "disks\[0\].volume" "$tmp/err"; echo $?)
v volume delete root
check "volume delete while a VM uses it -> exit 1 naming the VM" $([[ $rc == 1 ]] && grep -q web "$tmp/err"; echo $?)
v volume create shared --image deb --readonly
rc1=$rc
v create ro1 --kernel "$GUESTS/guest-idle.elf" --memory 32 --disk volume=shared
rc2=$rc
v create ro2 --kernel "$GUESTS/guest-idle.elf" --memory 32 --disk volume=shared,ro
check "a read-only volume is shared by two VMs" \
    $([[ $rc1 == 0 && $rc2 == 0 && $rc == 0 ]] && "$VMCTL" volume show shared -o json | jq -e '.readonly and (.vms | length) == 2' >/dev/null; echo $?)

# --- deletes ----------------------------------------------------------------------------------
for vm in web ro1 ro2; do "$VMCTL" delete "$vm" >/dev/null 2>&1; done
v volume show root -o json
check "with the VM deleted the volume lists no VM" $([[ $(jout '.vms | length') == 0 ]]; echo $?)
v volume delete root
check "volume delete -> exit 0, says so" $([[ $rc == 0 ]] && grep -qx "deleted volume root" "$tmp/out"; echo $?)
v volume delete big -o json
check "volume delete -o json prints nothing" $([[ $rc == 0 && ! -s $tmp/out ]]; echo $?)
v volume delete root
check "volume delete of an unknown volume -> exit 1" $([[ $rc == 1 ]]; echo $?)
"$VMCTL" volume delete shared >/dev/null 2>&1
"$VMCTL" volume delete scratch >/dev/null 2>&1
"$VMCTL" image delete elf >/dev/null 2>&1
"$VMCTL" image delete deb-q >/dev/null 2>&1
v image delete deb
check "image delete once its volumes are gone -> exit 0" $([[ $rc == 0 ]] && grep -qx "deleted image deb" "$tmp/out"; echo $?)
v image show deb
check "the image is gone" $([[ $rc == 1 ]]; echo $?)

# --- a full pool ------------------------------------------------------------------------------
if ((have_tiny)); then
    v image import huge "$tmp/disk.raw" --pool tiny
    check "an upload larger than its pool -> exit 1 (507)" $([[ $rc == 1 && -s $tmp/err ]]; echo $?)
    api GET /v1/images/huge
    check "a refused upload leaves nothing behind (no image, no file)" \
        $([[ $status == 404 && -z $(find "$tiny" -type f) ]]; echo $?)
    dd if=/dev/urandom of="$tmp/small.raw" bs=512K count=1 status=none
    v image import small "$tmp/small.raw" --pool tiny -o json
    check "an upload that fits the small pool -> ready there" $([[ $rc == 0 && $(jout .pool) == tiny ]]; echo $?)
    "$VMCTL" image delete small >/dev/null 2>&1
else
    echo "NOTE: no tmpfs could be mounted: the full-pool upload was not tried"
fi

# --- events and completion ---------------------------------------------------------------------
v events
check "events show the storage events" \
    $([[ $rc == 0 ]] && grep -q "image.created  *deb" "$tmp/out" && grep -q "image.ready  *deb" "$tmp/out" &&
      grep -q "volume.created  *root" "$tmp/out" && grep -q "volume.resized  *scratch" "$tmp/out" &&
      grep -q "volume.deleted  *root" "$tmp/out" && grep -q "image.deleted  *deb" "$tmp/out"; echo $?)
"$VMCTL" image import comp-img "$tmp/disk.raw" >/dev/null 2>&1
"$VMCTL" volume create comp-vol --size 8 >/dev/null 2>&1
completion=$(dirname "$0")/../../cli/vmctl.bash
mkdir -p "$tmp/bin" && ln -sf "$(readlink -f "$VMCTL")" "$tmp/bin/vmctl"
words=$(PATH="$tmp/bin:$PATH" bash -c '
    source "$1"
    COMP_WORDS=(vmctl image ""); COMP_CWORD=2; _vmctl; echo "${COMPREPLY[*]}"
    COMP_WORDS=(vmctl image show ""); COMP_CWORD=3; _vmctl; echo "${COMPREPLY[*]}"
    COMP_WORDS=(vmctl volume resize ""); COMP_CWORD=3; _vmctl; echo "${COMPREPLY[*]}"
    COMP_WORDS=(vmctl volume create x --image ""); COMP_CWORD=5; _vmctl; echo "${COMPREPLY[*]}"
    COMP_LINE="vmctl create x --disk volume=comp"; COMP_POINT=${#COMP_LINE}; _vmctl
    echo "disk: ${COMPREPLY[*]}"' _ "$completion" 2>&1)
rc=0
echo "$words" >"$tmp/out"
check "bash completion: image subcommands, image and volume names from the daemon" \
    $(grep -q "^list show import delete" "$tmp/out" && [[ $(grep -cx "comp-img" "$tmp/out") == 2 ]] &&
      grep -qx "comp-vol" "$tmp/out"; echo $?)
check "bash completion: --disk volume=NAME from the daemon" $(grep -qx "disk: comp-vol" "$tmp/out"; echo $?)

finish
