#!/bin/bash
# Integration: images as cluster objects (issue 16). Two vmmd members without
# networks on a one-member etcd of the test's own. Checked:
#   - an import on m1 is defined in the cluster: m2 lists it with members [m1];
#     the same name imported or uploaded on m2 is refused (409 naming m1);
#   - a volume from it on m2: the image is copied from m1 first (sha256 equal
#     to the source's), m2 then holds it (members [m1, m2]) and says so with an
#     image.realised event; a second volume copies nothing;
#   - deleting it: refused where volumes use it; once they are gone, deleted
#     through m1 it goes from both members (m2's copy with it);
#   - a qcow2 import (qemu-img, where installed) is defined with its raw file's
#     digest, so its copy checks out; deleted through the member that copied it,
#     the importer's file goes too;
#   - one name imported on both members at once: the first to complete defines
#     it, the other's import stays its own and is no holder of the cluster's;
#   - a holder whose file changed behind its back: m2's volume from it is 502
#     with the digests, and m2 keeps nothing (no image, no file, no volume);
#   - GET /v1/images/{name}/content stand-alone: the bytes of an upload (cmp),
#     404 for an unknown image.
#   - vmctl: `image list` has a MEMBERS column in a cluster (none stand-alone),
#     `image download` writes the bytes (and leaves no file for an unknown image).
# Usage: test_cluster_images.sh VMMD GUEST_DIR VMCTL
set -uo pipefail

VMMD=$1
GUESTS=$(cd "$2" && pwd)
VMCTL=$3
HERE=$(dirname "${BASH_SOURCE[0]}")
. "$HERE/daemon_fixture.sh"
. "$HERE/etcd_fixture.sh"
[[ -x /usr/bin/etcd ]] || { echo "SKIPPED: no etcd (apt-get install etcd-server)" >&2; exit 77; }

TTL=3 # heartbeats every second: holders are known within about two
CLUSTER=i$$
STATE3=$tmp/state3 SOCK3=$tmp/state3/vmmd.sock
daemon3_pid=
trap 'etcd_cleanup; [[ -n $daemon3_pid ]] && kill -9 $daemon3_pid 2>/dev/null; cleanup' EXIT
fail_detail() { echo "(status $status: $(head -c 300 "$tmp/body"))"; }

sock_of() { case $1 in m1) echo "$SOCK" ;; m2) echo "$SOCK2" ;; alone) echo "$SOCK3" ;; esac; }
on() { # on MEMBER METHOD PATH [JSON]
    local m=$1
    shift
    SOCK=$(sock_of "$m") api "$@"
}
member() { # member N [serve flags]
    local n=$1 port=$((PORT + $1 - 1))
    shift
    set -- --no-networks --import-dir "$IMPORT" --cluster-etcd "$ETCD_ENDPOINTS" \
        --cluster-name "$CLUSTER" --cluster-member "m$n" --cluster-lease-ttl $TTL \
        --listen "127.0.0.1:$port" --advertise "https://127.0.0.1:$port" "$@"
    if [[ $n == 1 ]]; then start_daemon "$@"; else start_daemon2 "$@"; fi
}
# members_of FROM IMAGE: the image's members as FROM lists them ("m1,m2"; "-" if not listed)
members_of() {
    on "$1" GET /v1/images
    jq -r --arg n "$2" '[.[] | select(.name == $n)] | if length == 0 then "-" else .[0].members | join(",") end' "$tmp/body"
}
state_of() { on "$1" GET "/v1/images/$2"; jbody .state; }
# realised MEMBER: the image.realised events in the member's own stream
realised() { curl -s -m 1 --unix-socket "$(sock_of "$1")" "http://vmmd/v1/events?since=0&local=1" | grep -A1 '^event: image.realised' | grep '^data:'; }

# A one-member etcd: the members' agreement is what is tested here, not etcd's.
etcd_start_one || { echo "FAIL etcd did not start"; exit 1; }

# Images with data and holes (the copy keeps holes), each made of its own random bytes.
IMPORT=$tmp/import
mkdir -p "$IMPORT"
make_image() { # make_image FILE: 3 MiB, data at 0 and 2 MiB, a hole between
    head -c 1048576 /dev/urandom >"$1"
    truncate -s 2M "$1"
    head -c 1048576 /dev/urandom >>"$1"
}
make_image "$IMPORT/base.raw"
make_image "$IMPORT/bad.raw"
SRC_SHA=$(sha256sum "$IMPORT/base.raw" | cut -d' ' -f1)

member 1 || exit 1
on m1 POST /v1/cluster/join-tokens '{"ttl_s":600}'
member 2 --cluster-join-token "$(jbody .token)" || exit 1
wait_for 5 is 2 sh -c "curl -s --unix-socket $SOCK2 http://vmmd/v1/cluster | jq '[.members[] | select(.state == \"online\")] | length'"
check "two members online" $?

# --- defined once -------------------------------------------------------------------------
on m1 POST /v1/images "{\"name\":\"base\",\"path\":\"$IMPORT/base.raw\"}"
check "import on m1: 202" $([[ $status == 202 ]]; echo $?)
wait_for 10 is ready state_of m1 base
check "m1's import is ready" $?
wait_for 6 is m1 members_of m2 base
check "m2 lists it with members [m1]" $?
on m2 GET /v1/images/base
check "m2's view: ready, the definition's sha256 and size, imported by m1" \
    $([[ $status == 200 && $(jbody .state) == ready && $(jbody .sha256) == "$SRC_SHA" &&
         $(jbody .size_bytes) == 3145728 && $(jbody .member) == m1 && $(jbody .pool) == null ]]; echo $?)
on m2 GET /v1/images/base/content
check "its content from m2, which has no copy: 404 naming m1" \
    $([[ $status == 404 && $(jbody .detail) == "member m2 holds no copy of image 'base'; members that do: m1" ]]; echo $?)
on m2 POST /v1/images "{\"name\":\"base\",\"path\":\"$IMPORT/bad.raw\"}"
check "the same name imported on m2: 409 naming m1" \
    $([[ $status == 409 && $(jbody .detail) == "image 'base' exists in the cluster (member m1)" ]]; echo $?)
status=$(curl -s -o "$tmp/body" -w '%{http_code}' --unix-socket "$SOCK2" -H 'Content-Type: application/octet-stream' \
    --data-binary @"$IMPORT/bad.raw" "http://vmmd/v1/images?name=base")
check "the same name uploaded to m2: 409" $([[ $status == 409 ]]; echo $?)
check "m2 kept nothing of either" $([[ ! -e $STATE2/images/base.img && -z $(ls -A "$STATE2/images") ]]; echo $?)

# --- realised on demand -------------------------------------------------------------------
on m2 POST /v1/volumes '{"name":"v1","image":"base"}'
check "a volume from it on m2: 201" $([[ $status == 201 && $(jbody .image) == base ]]; echo $?)
check "m2's copy is the source's bytes (sha256)" \
    $([[ $(sha256sum "$STATE2/images/base.img" | cut -d' ' -f1) == "$SRC_SHA" ]]; echo $?)
check "the copy keeps the hole (sparse)" \
    $(( $(stat -c %b "$STATE2/images/base.img") * 512 < 3 * 1048576 ? 0 : 1 ))
on m2 GET /v1/images/base
check "m2 records it ready, copied from m1" \
    $([[ $(jbody .state) == ready && $(jbody .source) == cluster:m1 && $(jbody .sha256) == "$SRC_SHA" ]]; echo $?)
wait_for 6 is m1,m2 members_of m1 base
check "members [m1, m2] as m1 sees it" $?
NO_COLOR=1 "$VMCTL" --socket "$SOCK" image list >"$tmp/list"
check "vmctl image list in a cluster: a MEMBERS column" \
    $(head -1 "$tmp/list" | grep -q 'VOLUMES *MEMBERS$' && grep -q '^base .*m1, m2$' "$tmp/list"; echo $?)
check "members [m1, m2] as m2 sees it" $(is m1,m2 members_of m2 base; echo $?)
realised m2 >"$tmp/realised"
check "an image.realised event on m2: from m1, its bytes" \
    $([[ $(wc -l <"$tmp/realised") == 1 ]] && grep -q '"image":"base","member":"m2","from":"m1","bytes":3145728,"ms":' "$tmp/realised"; echo $?)
on m2 POST /v1/volumes '{"name":"v2","image":"base"}'
check "a second volume on m2: 201, nothing copied again" \
    $([[ $status == 201 && $(realised m2 | wc -l) == 1 && $(grep -c "copying" "$tmp/vmmd2.log") == 1 ]]; echo $?)

# --- deleted once ---------------------------------------------------------------------------
on m2 DELETE /v1/images/base
check "delete through m2 while its volumes use it: 409" \
    $([[ $status == 409 && $(jbody .detail) == *"used by volumes: v1, v2"* ]]; echo $?)
on m2 DELETE /v1/volumes/v1 && on m2 DELETE /v1/volumes/v2
on m1 DELETE /v1/images/base
check "delete through m1: 204" $([[ $status == 204 ]]; echo $?)
check "gone from m1" $([[ $(members_of m1 base) == - && ! -e $STATE/images/base.img ]]; echo $?)
wait_for 3 is - members_of m2 base
check "gone from m2, its copy with it" $([[ $? == 0 && ! -e $STATE2/images/base.img ]]; echo $?)

# --- a qcow2 import: the definition's digest is of the raw bytes members copy -----------------------
if command -v qemu-img >/dev/null; then
    qemu-img convert -f raw -O qcow2 "$IMPORT/base.raw" "$IMPORT/q.qcow2"
    on m1 POST /v1/images "{\"name\":\"q\",\"path\":\"$IMPORT/q.qcow2\"}"
    wait_for 20 is ready state_of m1 q
    wait_for 6 is m1 members_of m2 q
    on m2 GET /v1/images/q
    check "a qcow2 import: defined with the sha256 of its raw file" \
        $([[ $(jbody .sha256) == "$SRC_SHA" && $(jbody .size_bytes) == 3145728 ]]; echo $?)
    on m2 POST /v1/volumes '{"name":"vq","image":"q"}'
    check "a volume from it on m2: 201, the copy's bytes the raw's" \
        $([[ $status == 201 && $(sha256sum "$STATE2/images/q.img" | cut -d' ' -f1) == "$SRC_SHA" ]]; echo $?)
    on m2 DELETE /v1/volumes/vq && on m2 DELETE /v1/images/q
    check "deleted through the member that copied it: 204" $([[ $status == 204 ]]; echo $?)
    wait_for 3 is - members_of m1 q
    check "m1's own import goes with the definition" $([[ $? == 0 && ! -e $STATE/images/q.img ]]; echo $?)
else
    echo "SKIPPED (qcow2 part): qemu-img is not installed" >&2
fi

# --- one name imported on both members at once: the first to define it wins --------------------
# m2 has not seen m1's definition yet (its next poll is up to a second away): both imports run.
on m1 POST /v1/images "{\"name\":\"twice\",\"path\":\"$IMPORT/base.raw\"}"
on m2 POST /v1/images "{\"name\":\"twice\",\"path\":\"$IMPORT/bad.raw\"}"
if [[ $status == 202 ]]; then
    wait_for 10 is ready state_of m2 twice
    wait_for 10 is ready state_of m1 twice
    # Almost always m1's import (it started first) defines it: w is the winner, l the other.
    definer() { on m1 GET /v1/images/twice; [[ $(jbody .member) == m? ]]; }
    wait_for 5 definer
    w=$(jbody .member) l=m2
    [[ $w == m2 ]] && l=m1
    # l sees w's definition a poll later, and its heartbeat may have named its own import
    # before: one more of each
    defined_for_l() { on "$l" GET /v1/images/twice; [[ $(jbody .member) == "$w" ]]; }
    wait_for 5 defined_for_l
    sleep 1.2 # l's next heartbeat, then w's poll
    wait_for 5 is "$w" members_of "$w" twice
    on "$l" GET /v1/images/twice
    check "both imported: $w's defines it; $l's own import holds no copy of it (members [$w])" \
        $([[ $w == m? && $(jbody .member) == "$w" && $(jbody '.members | join(",")') == "$w" &&
             $(jbody .source) == "$IMPORT/$([[ $l == m1 ]] && echo base || echo bad).raw" &&
             $(members_of "$w" twice) == "$w" ]]; echo $?)
    # The cluster's "twice" deleted through its definer: l's own import (other bytes) stays
    on "$w" DELETE /v1/images/twice
    sleep 2.2 # l's polls
    on "$l" GET /v1/images/twice
    check "deleting $w's twice leaves $l's own import of that name" \
        $([[ $status == 200 && $(jbody .state) == ready && $(jbody .source) == "$IMPORT/"* ]]; echo $?)
    on "$l" DELETE /v1/images/twice
else # m2's poll came between: refused up front as above
    check "both imported: m2 refused it (409), m1's import defines it" $([[ $status == 409 ]]; echo $?)
fi

# --- a holder whose file is not what the cluster defined -------------------------------------
on m1 POST /v1/images "{\"name\":\"bad\",\"path\":\"$IMPORT/bad.raw\"}"
wait_for 10 is ready state_of m1 bad
wait_for 6 is m1 members_of m2 bad
check "image bad on m1, listed by m2" $?
printf 'changed' | dd of="$STATE/images/bad.img" bs=1 seek=100 conv=notrunc status=none
on m2 POST /v1/volumes '{"name":"vb","image":"bad"}'
check "a volume on m2 from a changed copy: 502 with the digests" \
    $([[ $status == 502 && $(jbody .detail) == *"from member m1 has sha256"*"nothing was kept"* ]]; echo $?)
on m2 GET /v1/volumes/vb
check "m2 has no volume vb" $([[ $status == 404 ]]; echo $?)
check "m2 has no copy of bad (no image, no file, no .part)" \
    $([[ $(members_of m2 bad) == m1 && -z $(ls -A "$STATE2/images" | grep bad) ]]; echo $?)

# --- the content endpoint stand-alone ------------------------------------------------------------
kill -9 "$daemon_pid" "$daemon2_pid" 2>/dev/null
daemon_pid= daemon2_pid=
serve "$STATE3" "$SOCK3" "w$(printf '%04d' $((RANDOM % 10000)))" vmmd3 --no-networks || exit 1
daemon3_pid=$serve_pid
status=$(curl -s -o "$tmp/body" -w '%{http_code}' --unix-socket "$SOCK3" -H 'Content-Type: application/octet-stream' \
    --data-binary @"$IMPORT/base.raw" "http://vmmd/v1/images?name=up")
check "stand-alone upload: 201" $([[ $status == 201 ]]; echo $?)
curl -s -D "$tmp/headers" -o "$tmp/content" --unix-socket "$SOCK3" http://vmmd/v1/images/up/content
check "GET /content: the uploaded bytes (cmp), as application/octet-stream with its length" \
    $(cmp -s "$tmp/content" "$IMPORT/base.raw" && grep -qi '^content-type: application/octet-stream' "$tmp/headers" &&
      grep -qi '^content-length: 3145728' "$tmp/headers"; echo $?)
on alone GET /v1/images/nope/content
check "GET /content of an unknown image: 404" $([[ $status == 404 ]]; echo $?)
"$VMCTL" --socket "$SOCK3" image download up "$tmp/dl" >"$tmp/dl.out"
check "vmctl image download: the bytes (cmp)" \
    $(cmp -s "$tmp/dl" "$IMPORT/base.raw" && grep -q "downloaded image up to $tmp/dl (3145728 bytes)" "$tmp/dl.out"; echo $?)
"$VMCTL" --socket "$SOCK3" image download nope "$tmp/dl2" 2>"$tmp/dl2.err"
rc=$?
check "vmctl image download of an unknown image: exit $rc, no file" \
    $([[ $rc != 0 && ! -e $tmp/dl2 ]] && grep -q "no image named 'nope'" "$tmp/dl2.err"; echo $?)
NO_COLOR=1 "$VMCTL" --socket "$SOCK3" image list >"$tmp/list"
check "vmctl image list stand-alone: no MEMBERS column" $(head -1 "$tmp/list" | grep -q 'VOLUMES$'; echo $?)
on alone GET /v1/images/up
check "stand-alone images have no members" $([[ $(jbody .members) == null ]]; echo $?)

finish
