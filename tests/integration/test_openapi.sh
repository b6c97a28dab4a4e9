#!/bin/bash
# The OpenAPI document is the contract: every route the daemon serves must be
# in api/openapi.json and every operation in the document must exist. Then
# each operation is called on a real daemon and must answer with one of the
# status codes the document lists for it.
# Usage: test_openapi.sh VMMD GUEST_DIR OPENAPI_JSON
set -uo pipefail

VMMD=$1
GUESTS=$(cd "$2" && pwd)
DOC=$3
. "$(dirname "${BASH_SOURCE[0]}")/daemon_fixture.sh"

jq -r '.paths | to_entries[] | .key as $p | .value | keys[] | select(. != "parameters")
       | "\(ascii_upcase) \($p)"' "$DOC" | sort >"$tmp/doc"
"$VMMD" routes | sort >"$tmp/code"
missing=$(comm -13 "$tmp/doc" "$tmp/code")
extra=$(comm -23 "$tmp/doc" "$tmp/code")
check "every served route is documented${missing:+ (missing: $missing)}" $([[ -z $missing ]]; echo $?)
check "every documented operation is served${extra:+ (not served: $extra)}" $([[ -z $extra ]]; echo $?)

if [[ ! -c /dev/kvm || ! -w /dev/kvm ]]; then
    echo "SKIPPED: /dev/kvm is not available; documented operations were not called" >&2
    finish
    exit
fi

start_daemon || exit 1
id=$(curl -s --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
    --data-binary "{\"name\":\"doc\",\"kernel\":\"$GUESTS/guest-idle.elf\",\"memory_mib\":32}" \
    http://x/v1/vms | jq -r .id)

# Bodies for the operations that take one.
body_for() {
    case "$1 $2" in
    "POST /v1/vms") echo "{\"name\":\"doc2\",\"kernel\":\"$GUESTS/guest-idle.elf\"}" ;;
    "PATCH /v1/vms/{id}") echo '{"autostart":true}' ;;
    "POST /v1/vms/{id}/shutdown") echo '{"timeout_s":1}' ;;
    "POST /v1/networks") echo '{"name":"docnet"}' ;;
    "PATCH /v1/networks/{name}") echo '{"mtu":1400}' ;;
    "POST /v1/networks/{name}/forwards") echo '{"host_port":18080,"vm":"doc","vm_port":80}' ;;
    # A raw import from an image directory (one of the import directories), an empty volume.
    "POST /v1/images") echo "{\"name\":\"docimg\",\"path\":\"$GUESTS/guest-idle.elf\",\"format\":\"raw\"}" ;;
    "POST /v1/volumes") echo '{"name":"docvol","size_mib":16}' ;;
    "PATCH /v1/volumes/{name}") echo '{"size_mib":32}' ;;
    "POST /v1/vms/{id}/snapshot") echo '{"name":"docsnap"}' ;;
    "POST /v1/vms/{id}/restore") echo '{"snapshot":"docsnap"}' ;;
    # A target that cannot be reached: 502 with the reason (tests/integration/test_vmctl_migrate.sh
    # migrates for real, between two daemons).
    "POST /v1/vms/{id}/migrate") echo '{"target":"unix:/nonexistent/vmmd.sock","timeout_s":5}' ;;
    # The target's side of a migration, called as a source daemon would: doc's name is taken
    # here (409), or the definition does not fit (422).
    "POST /v1/migrations") echo "{\"vm\":{\"name\":\"doc\",\"kernel\":\"$GUESTS/guest-idle.elf\",\"memory_mib\":32},\"timeout_s\":5}" ;;
    # A stand-alone daemon: 404 "not in a cluster" (the cluster test calls it in a cluster).
    "POST /v1/cluster/join-tokens") echo '{"ttl_s":600}' ;;
    *) echo "" ;;
    esac
}

# In an order that makes each action meaningful: start before pause, delete last.
order="GET /v1/host
GET /v1/vms
POST /v1/vms
GET /v1/vms/{id}
PATCH /v1/vms/{id}
POST /v1/vms/{id}/start
POST /v1/vms/{id}/snapshot
GET /v1/vms/{id}/snapshots
GET /v1/vms/{id}/snapshots/{name}
POST /v1/vms/{id}/restore
DELETE /v1/vms/{id}/snapshots/{name}
POST /v1/vms/{id}/migrate
GET /v1/vms/{id}/migration
POST /v1/migrations
GET /v1/cluster
POST /v1/cluster/join-tokens
DELETE /v1/cluster/members/{name}
POST /v1/cluster/members/{name}/evacuate
POST /v1/vms/{id}/pause
POST /v1/vms/{id}/resume
POST /v1/vms/{id}/reboot
GET /v1/vms/{id}/stats
GET /v1/vms/{id}/console
POST /v1/vms/{id}/shutdown
POST /v1/vms/{id}/stop
GET /v1/networks
POST /v1/networks
GET /v1/networks/{name}
PATCH /v1/networks/{name}
GET /v1/networks/{name}/leases
GET /v1/networks/{name}/forwards
POST /v1/networks/{name}/forwards
DELETE /v1/networks/{name}/forwards/{id}
DELETE /v1/networks/{name}
DELETE /v1/vms/{id}
GET /v1/storage
GET /v1/images
POST /v1/images
GET /v1/images/{name}
GET /v1/images/{name}/content
GET /v1/volumes
POST /v1/volumes
GET /v1/volumes/{name}
PATCH /v1/volumes/{name}
DELETE /v1/volumes/{name}
DELETE /v1/images/{name}
GET /v1/events
GET /metrics
GET /v1/openapi.json
GET /
GET /assets/{file}"
check "the call order covers every documented operation" \
    $([[ $(sort <<<"$order") == "$(cat "$tmp/doc")" ]]; echo $?)

fwd=1 # a forward's id, from its create (which may be refused: doc has no NIC on docnet)
while read -r method path; do
    case $path in
    /v1/images/*) url=${path//\{name\}/docimg} ;;
    /v1/volumes/*) url=${path//\{name\}/docvol} ;;
    /v1/vms/*/snapshots/*) url=${path//\{name\}/docsnap} ;;
    *) url=${path//\{name\}/docnet} ;;
    esac
    [[ $path == */forwards/\{id\} ]] && url=${url//\{id\}/$fwd}
    url=${url//\{id\}/$id}
    url=${url//\{file\}/app.js}
    body=$(body_for "$method" "$path")
    # 2 s ends the event stream; a network's create or delete (bridge, nft, dnsmasq) gets longer.
    args=(-s -o "$tmp/body" -w '%{http_code}' -X "$method" --unix-socket "$SOCK"
          --max-time "$([[ $path == /v1/events ]] && echo 2 || echo 15)")
    [[ -n $body ]] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
    [[ $path == /v1/events ]] && args+=(-N)
    code=$(curl "${args[@]}" "http://x$url")
    [[ $path == /v1/events && $code == 000 ]] && code=200 # a stream ends by timeout
    documented=$(jq -r --arg p "$path" --arg m "${method,,}" '.paths[$p][$m].responses | keys | join(" ")' "$DOC")
    check "$method $path -> $code (documented: $documented)" $([[ " $documented " == *" $code "* ]]; echo $?)
    [[ "$method $path $code" == "POST /v1/networks/{name}/forwards 201" ]] && fwd=$(jq -r .id "$tmp/body")
done <<<"$order"

finish
