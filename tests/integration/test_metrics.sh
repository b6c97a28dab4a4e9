#!/bin/bash
# Integration: GET /metrics is valid Prometheus text (promtool check metrics,
# lint included, must say nothing) and its counters move when a guest runs:
# exits and console bytes of the VM, HTTP requests and their latency
# histogram, events. A VM with a disk in its definition shows its device
# series. Loud skip (77) without /dev/kvm; promtool comes from Debian's
# prometheus package (scripts/setup.sh installs it).
# Usage: test_metrics.sh VMMD GUEST_DIR WS_CLIENT
set -uo pipefail

VMMD=$1
GUESTS=$(cd "$2" && pwd)
WS_CLIENT=$3
. "$(dirname "${BASH_SOURCE[0]}")/daemon_fixture.sh"
require_kvm "the metrics test"
if ! command -v promtool >/dev/null; then
    echo "FAIL: promtool is missing (scripts/setup.sh installs Debian's prometheus package)" >&2
    exit 1
fi

mkdir -p "$tmp/images"
truncate -s 1M "$tmp/images/disk0.img"
start_daemon --image-dir "$tmp/images" || exit 1
api() { curl -s --unix-socket "$SOCK" -H 'Content-Type: application/json' "$@"; }
scrape() { curl -s --unix-socket "$SOCK" http://x/metrics >"$tmp/$1"; }
# value FILE METRIC{LABELS}: the sample's value (labels as printed, a prefix is enough)
value() { grep -v '^#' "$tmp/$1" | grep -F -- "$2" | head -1 | awk '{print $NF}'; }
promcheck() { # name file
    promtool check metrics <"$tmp/$2" >"$tmp/$2.lint" 2>&1
    local rc=$?
    check "$1: promtool check metrics passes, lint says nothing" $([[ $rc == 0 && ! -s $tmp/$2.lint ]]; echo $?)
    [[ -s $tmp/$2.lint ]] && head -20 "$tmp/$2.lint"
}

api -X POST --data-binary "{\"name\":\"met\",\"kernel\":\"$GUESTS/guest-echo.elf\",\"memory_mib\":32}" \
    http://x/v1/vms >/dev/null
api -X POST --data-binary "{\"name\":\"met-disk\",\"kernel\":\"$GUESTS/guest-idle.elf\",\"memory_mib\":32,\"disks\":[{\"path\":\"$tmp/images/disk0.img\"}]}" \
    http://x/v1/vms >"$tmp/disk-vm"
id=$(api http://x/v1/vms/met | jq -r .id)
labels="id=\"$id\",name=\"met\",mode=\"pv\""

scrape m0
promcheck "stopped VMs" m0
check "per VM: state, vCPUs, memory with id, name and mode" \
    $([[ $(value m0 "vmmd_vm_state{$labels,state=\"stopped\"}") == 1 &&
         $(value m0 "vmmd_vm_vcpus{$labels}") == 1 &&
         $(value m0 "vmmd_vm_memory_bytes{$labels}") == 33554432 &&
         $(value m0 "vmmd_vm_uptime_seconds{$labels}") == 0.000 ]]; echo $?)
check "a defined disk has its series (0 while the VM has no worker)" \
    $([[ $(value m0 'vmmd_vm_disk_read_bytes_total{id=') == 0 ]] &&
      grep -q 'vmmd_vm_disk_writes_total{.*name="met-disk".*device="disk0"} 0' "$tmp/m0"; echo $?)
check "daemon: workers, database size, events, build info" \
    $([[ $(value m0 "vmmd_workers_running ") == 0 && $(value m0 "vmmd_database_size_bytes ") -gt 0 &&
         $(value m0 "vmmd_events_emitted_total ") -ge 3 && $(value m0 'vmmd_build_info{') == 1 ]]; echo $?)

api -X POST http://x/v1/vms/met/start >/dev/null
sleep 0.5
scrape m1
"$WS_CLIENT" "$SOCK" /v1/vms/met/console $'counting console bytes\r' 800 >"$tmp/ws" 2>&1
sleep 0.5
scrape m2
promcheck "a running VM" m2
check "running: state, workers running, uptime grows" \
    $([[ $(value m2 "vmmd_vm_state{$labels,state=\"running\"}") == 1 &&
         $(value m2 "vmmd_workers_running ") == 1 ]] &&
      awk -v a="$(value m1 "vmmd_vm_uptime_seconds{$labels}")" -v b="$(value m2 "vmmd_vm_uptime_seconds{$labels}")" \
          'BEGIN{exit !(a > 0 && b > a)}'; echo $?)
e1=$(value m1 "vmmd_vm_exits_total{$labels,reason=\"io\"}")
e2=$(value m2 "vmmd_vm_exits_total{$labels,reason=\"io\"}")
check "exits by reason count up while the guest runs ($e1 -> $e2)" $([[ -n $e1 && $e2 -gt $e1 ]]; echo $?)
c1=$(value m1 "vmmd_vm_console_bytes_total{$labels}")
c2=$(value m2 "vmmd_vm_console_bytes_total{$labels}")
check "console bytes count what the guest printed and echoed ($c1 -> $c2)" \
    $([[ $c1 -ge 12 && $c2 -ge $((c1 + 22)) ]]; echo $?)
r0=$(value m0 'vmmd_http_requests_total{method="GET",route="/metrics",status="200"}')
r2=$(value m2 'vmmd_http_requests_total{method="GET",route="/metrics",status="200"}')
h2=$(value m2 'vmmd_http_request_duration_seconds_count{method="GET",route="/metrics"}')
check "HTTP requests by route and status count the scrapes (${r0:-none} -> $r2)" \
    $([[ -z $r0 && $r2 == 2 && $h2 == 2 ]]; echo $?)
check "the start is counted with its status, and in the latency histogram's +Inf bucket" \
    $([[ $(value m2 'vmmd_http_requests_total{method="POST",route="/v1/vms/{id}/start",status="200"}') == 1 &&
         $(value m2 'vmmd_http_request_duration_seconds_bucket{method="POST",route="/v1/vms/{id}/start",le="+Inf"}') == 1 ]]; echo $?)
check "events emitted count the start ($(value m0 'vmmd_events_emitted_total ') -> $(value m2 'vmmd_events_emitted_total '))" \
    $([[ $(value m2 "vmmd_events_emitted_total ") -gt $(value m0 "vmmd_events_emitted_total ") ]]; echo $?)
check "every running worker answered the scrape" $([[ $(value m2 "vmmd_scrape_workers_unanswered ") == 0 ]]; echo $?)

# A stopped worker still answers quickly: paused VMs report their stats too.
api -X POST http://x/v1/vms/met/pause >/dev/null
scrape m3
e3=$(value m3 "vmmd_vm_exits_total{$labels,reason=\"io\"}")
sleep 0.3
scrape m4
check "paused: exits stand still ($e3 = $(value m4 "vmmd_vm_exits_total{$labels,reason=\"io\"}"))" \
    $([[ -n $e3 && $(value m4 "vmmd_vm_exits_total{$labels,reason=\"io\"}") == "$e3" ]]; echo $?)
api -X POST http://x/v1/vms/met/stop >/dev/null
scrape m5
promcheck "after the stop" m5
check "stopped: no worker series left, uptime 0" \
    $(! grep -q "vmmd_vm_exits_total{$labels" "$tmp/m5" &&
      [[ $(value m5 "vmmd_vm_uptime_seconds{$labels}") == 0.000 ]]; echo $?)

finish
