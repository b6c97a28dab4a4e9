#!/bin/bash
# Integration: bounded VM definitions (issue 11, item 7). A create past
# --max-vms (flag or config-file line) is 409 with the numbers and GET
# /v1/host shows the cap and the count; GET /v1/vms?limit=N&after=NAME pages
# cover every VM exactly once, with the state filter, Vmmd-Total-Count and
# an RFC 8288 Link to the next page, and bad paging values are 400 naming the
# parameter; with the default cap full of VMs with 4 KiB command lines,
# GET /v1/host stays fast while another client lists them over and over
# (with a PATCH between lists, so that every list is rendered anew).
# vmctl list fetches pages of 500 and puts them together.
# Usage: test_daemon_limits.sh VMMD GUEST_DIR VMCTL
set -uo pipefail

VMMD=$1
GUESTS=$(cd "$2" && pwd)
VMCTL=$3
. "$(dirname "${BASH_SOURCE[0]}")/daemon_fixture.sh"
require_kvm "the definition limit tests"
fail_detail() { echo "(last: HTTP $status $(head -c 300 "$tmp/body" 2>/dev/null))"; }

stop_daemon() { kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null; daemon_pid=; }
create() { api POST /v1/vms "$(vm_json "$1" idle "${2:-}")"; }
# get PATH: GET with the headers in $tmp/headers (lower-case names, no CRs)
get() {
    status=$(curl -s -D "$tmp/headers" -o "$tmp/body" -w '%{http_code}' --unix-socket "$SOCK" \
        "http://vmmd$1")
    tr -d '\r' <"$tmp/headers" | awk -F': ' '{ $1 = tolower($1); print }' OFS=': ' \
        >"$tmp/headers.lc"
}
header() { awk -F': ' -v h="$1" '$1 == h { print $2 }' "$tmp/headers.lc"; }
# The path in a Link: <PATH>; rel="next" header, or nothing.
next_link() { header link | sed -n 's/^<\(.*\)>; rel="next"$/\1/p'; }

# --- 1. the cap: a flag, a config-file line, 409 with the numbers ------------------------------
start_daemon --max-vms 5 || exit 1
for i in 1 2 3 4 5; do create "cap-$i"; done
check "five VMs fit under --max-vms 5" $([[ $status == 201 ]]; echo $?)
create cap-6
check "the sixth is 409 with the cap and the count" \
    $([[ $status == 409 && $(jbody .detail) == "this host holds at most 5 VM definitions (--max-vms); it has 5" ]]; echo $?)
api GET /v1/host
check "GET /v1/host shows the cap and the count" \
    $([[ $(jbody .capacity.max_vms) == 5 && $(jbody .allocation.vms_defined) == 5 ]]; echo $?)
api DELETE /v1/vms/cap-5
create cap-6
check "after a delete there is room again" $([[ $status == 201 ]]; echo $?)
stop_daemon

printf 'max-vms = 3\n' >"$tmp/vmmd.conf"
start_daemon --config-file "$tmp/vmmd.conf" || exit 1
create cap-7
check "max-vms in the config file: 409 naming 3 of 5" \
    $([[ $status == 409 && $(jbody .detail) == *"at most 3 VM definitions"*"it has 5" ]]; echo $?)
api GET /v1/host
check "the config file's cap shows in /v1/host" $([[ $(jbody .capacity.max_vms) == 3 ]]; echo $?)
stop_daemon
"$VMMD" serve --state-dir "$STATE" --max-vms 0 2>"$tmp/err0"
rc=$?
check "--max-vms 0 is a usage error" $([[ $rc == 2 ]] && grep -q max-vms "$tmp/err0"; echo $?)
rm -rf "$STATE"

# --- 2. pages: every VM once, the state filter, the total, Link, 400s --------------------------
start_daemon || exit 1
names=()
for i in $(seq 1 23); do
    names+=("$(printf 'pg-%02d' $((i * 7 % 23)))")
    create "${names[-1]}"
done
for n in pg-03 pg-11 pg-17; do api POST "/v1/vms/$n/start"; done
for n in pg-03 pg-11 pg-17; do wait_state "$n" running; done
expected=$(printf '%s\n' "${names[@]}" | sort)

# walk PATH: follows Link next from PATH; names in $tmp/walk, pages in $pages, totals seen in $totals
walk() {
    local path=$1
    pages=0 totals=
    : >"$tmp/walk"
    while [[ -n $path && $pages -lt 50 ]]; do
        get "$path"
        [[ $status == 200 ]] || { echo "walk: HTTP $status on $path"; return 1; }
        jq -r '.[].name' "$tmp/body" >>"$tmp/walk"
        totals+="$(header vmmd-total-count) "
        pages=$((pages + 1))
        path=$(next_link)
    done
}
walk "/v1/vms?limit=4"
check "limit=4: 6 pages hold every VM exactly once, in name order" \
    $([[ $pages == 6 && $(cat "$tmp/walk") == "$expected" ]]; echo $?)
check "every page says Vmmd-Total-Count: 23" \
    $([[ $totals == "23 23 23 23 23 23 " ]]; echo $?)
get "/v1/vms?limit=23"
check "a page that holds the rest has no Link" $([[ $status == 200 && -z $(next_link) ]]; echo $?)
get "/v1/vms?limit=4&after=pg-08"
check "after=pg-08: the page starts at pg-09 and links on from pg-12" \
    $([[ $(jq -r '[.[].name] | join(",")' "$tmp/body") == pg-09,pg-10,pg-11,pg-12 &&
        $(next_link) == "/v1/vms?limit=4&after=pg-12" ]]; echo $?)
walk "/v1/vms?state=running&limit=2"
check "state=running&limit=2: two pages, the three running VMs, total 3" \
    $([[ $pages == 2 && $(cat "$tmp/walk" | tr '\n' ' ') == "pg-03 pg-11 pg-17 " &&
        $totals == "3 3 " ]]; echo $?)
get "/v1/vms?state=running&limit=2"
check "the Link keeps the state filter" \
    $([[ $(next_link) == "/v1/vms?limit=2&after=pg-11&state=running" ]]; echo $?)
get "/v1/vms"
check "without limit: the whole list, as before, with the total" \
    $([[ $(jq length "$tmp/body") == 23 && $(header vmmd-total-count) == 23 &&
        -z $(next_link) && -n $(header vmmd-last-event-id) ]]; echo $?)
get "/v1/vms?state=stopped"
check "state=stopped without limit: 20" $([[ $(jq length "$tmp/body") == 20 ]]; echo $?)
for bad in "limit=0" "limit=1001" "limit=abc" "limit=-1" "limit=%2B5" "limit=5&after=Not_A_Name" \
    "after=pg-01" "limit=2&state=sleeping"; do
    get "/v1/vms?$bad"
    param=${bad##*&}
    param=${param%%=*}
    check "?$bad is 400 naming $param" \
        $([[ $status == 400 && $(jbody .detail) == "$param:"* ]]; echo $?)
done
for n in pg-03 pg-11 pg-17; do api POST "/v1/vms/$n/stop"; done
stop_daemon
rm -rf "$STATE"

# --- 3. the default cap full of 4 KiB command lines: /v1/host stays fast -----------------------
start_daemon || exit 1
N=4096 creators=()
cmdline=$(head -c 4095 /dev/zero | tr '\0' x)
# Four curls, each creating a quarter of the VMs over one connection (the config has one
# transfer per VM).
for part in 0 1 2 3; do
    for ((i = part; i < N; i += 4)); do
        printf 'url = "http://vmmd/v1/vms"\nunix-socket = "%s"\nheader = "Content-Type: application/json"\n' "$SOCK"
        printf 'output = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n'
        printf 'data-binary = "{\\"name\\":\\"vm-%05d\\",\\"kernel\\":\\"%s/guest-idle.elf\\",\\"memory_mib\\":32,\\"cmdline\\":\\"%s\\"}"\n' "$i" "$GUESTS" "$cmdline"
        ((i + 4 < N)) && printf 'next\n'
    done >"$tmp/create$part.cfg"
    curl -s -K "$tmp/create$part.cfg" >"$tmp/create$part.out" &
    creators+=($!)
done
wait "${creators[@]}"
api GET /v1/host
check "$N VMs with 4 KiB command lines created" $([[ $(jbody .allocation.vms_defined) == "$N" ]]; echo $?)
create one-too-many
check "the default cap is 4096" \
    $([[ $status == 409 && $(jbody .detail) == *"at most 4096"*"it has 4096" ]]; echo $?)

"$VMCTL" --socket "$SOCK" list -o json >"$tmp/vmctl.json"
check "vmctl list: $N VMs in name order, from pages of 500" \
    $([[ $(jq length "$tmp/vmctl.json") == "$N" &&
        $(jq -r '.[0].name, .[-1].name' "$tmp/vmctl.json" | tr '\n' ' ') == "vm-00000 vm-04095 " &&
        $(jq -r '[.[].name] | unique | length' "$tmp/vmctl.json") == "$N" ]]; echo $?)
"$VMCTL" --socket "$SOCK" list --state stopped --limit 600 >"$tmp/vmctl.txt"
check "vmctl list --state stopped --limit 600: a header and 600 rows, across two pages" \
    $([[ $(wc -l <"$tmp/vmctl.txt") == 601 && $(tail -1 "$tmp/vmctl.txt") == vm-00599* ]]; echo $?)

# A lister that makes every list a fresh render: a PATCH (a committed change) before each.
(
    while :; do
        curl -s -o /dev/null --unix-socket "$SOCK" -X PATCH -H 'Content-Type: application/json' \
            --data-binary '{"autostart":false}' http://vmmd/v1/vms/vm-00001
        curl -s -o /dev/null --unix-socket "$SOCK" -w '%{size_download} %{time_total}\n' \
            http://vmmd/v1/vms >>"$tmp/lists"
    done
) &
lister=$!
sleep 1
for _ in $(seq 40); do
    curl -s -o /dev/null --unix-socket "$SOCK" -w '%{http_code} %{time_total}\n' http://vmmd/v1/host
    sleep 0.05
done >"$tmp/host"
kill "$lister"
wait "$lister" 2>/dev/null
max=$(awk '{ if ($2 > m) m = $2 } END { print m + 0 }' "$tmp/host")
p50=$(awk '{ print $2 }' "$tmp/host" | sort -n | awk '{ a[NR] = $1 } END { print a[int(NR / 2) + 1] }')
lists=$(wc -l <"$tmp/lists")
list_s=$(awk '{ s += $2 } END { if (NR) printf "%.2f", s / NR }' "$tmp/lists")
list_mb=$(awk '{ printf "%.1f", $1 / 1e6; exit }' "$tmp/lists")
echo "GET /v1/host while $lists lists of $N VMs ($list_mb MB, ${list_s} s each) ran: p50 ${p50} s, max ${max} s"
check "every GET /v1/host answered 200" $(! grep -qv '^200 ' "$tmp/host"; echo $?)
check "GET /v1/host under 0.5 s (p100) while the lister runs" \
    $(awk -v m="$max" 'BEGIN { exit !(m < 0.5) }'; echo $?)
check "the lister got whole lists" $([[ $lists -ge 1 ]] && awk -v n="$list_mb" 'BEGIN { exit !(n > 16) }'; echo $?)

finish
