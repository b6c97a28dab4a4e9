#!/usr/bin/env bash
# Boots every test guest under QEMU (TCG, through the PVH entry) and checks
# its console output byte for byte and its exit status: the reference
# behaviour vmmd's own tests expect of the same ELF files on /dev/kvm.
# Usage: check-qemu.sh [BUILD_DIR]   (default: /tmp/guests-build)
# QEMU's isa-debug-exit turns debug_exit(v) into exit status (v << 1) | 1.
# SeaBIOS's serial console is switched off (etc/sercon-port=0) so that
# COM1 carries only what the guest writes.
set -uo pipefail

DIR=${1:-/tmp/guests-build}
QEMU=${QEMU:-qemu-system-x86_64}
TIMEOUT=${TIMEOUT:-60}
ERR=$(mktemp)
trap 'rm -f "$ERR"' EXIT
fails=0

fail() {
    echo "FAIL $1"
    printf '%s' "$out" | od -c | sed 's/^/    | /'
    sed 's/^/    stderr: /' "$ERR"
    fails=$((fails + 1))
}

# check NAME STATUS INPUT EXPECTED [QEMU_ARGS...]
# INPUT and EXPECTED are printf %b strings; EXPECTED "sorted:..." compares
# the lines in sorted order (for the smp guest, whose APs race).
check() {
    local name=$1 want_rc=$2 input=$3 want=$4 rc got
    shift 4
    out=$(printf '%b' "$input" | timeout "$TIMEOUT" "$QEMU" -accel tcg -M pc -m 256 \
        -nodefaults -no-user-config -nographic -no-reboot -serial stdio \
        -fw_cfg name=etc/sercon-port,string=0 \
        -device isa-debug-exit,iobase=0x501,iosize=1 \
        -kernel "$DIR/guest-$name.elf" "$@" 2>"$ERR"; echo "rc=$?")
    rc=${out##*rc=}
    out=${out%rc=*}
    if [[ $rc != "$want_rc" ]]; then
        fail "$name $*: exit status $rc, want $want_rc"
        return
    fi
    got=$out
    if [[ $want == sorted:* ]]; then
        want=$(printf '%b' "${want#sorted:}" | sort)
        got=$(printf '%s' "$out" | sort)
    else
        want=$(printf '%b' "$want"; echo x)
        want=${want%x}
    fi
    if [[ $got != "$want" ]]; then
        fail "$name $*: output differs; want:"$'\n'"$want"$'\n'"got:"
        return
    fi
    echo "ok   $name $*"
}

check hello 1 "" 'Hello from a vmmd test guest\n'

# '\r' is echoed as "\r\n"; Ctrl-D ends it and is not echoed.
check echo 1 'abc\rdef\nxyz\x04ignored' 'echo: ready\nabc\r\ndef\nxyz''echo: bye\n'

# QEMU's TCG advertises its own hypervisor leaves ("TCGTCGTCGTCG", no
# features), independent of the hypervisor bit.
for cpu in qemu64 max qemu64,-hypervisor; do
    bit=1; [[ $cpu == *-hypervisor ]] && bit=0
    vendor=AuthenticAMD
    check cpuid 1 "" "cpuid: vendor=$vendor\ncpuid: hypervisor_bit=$bit\ncpuid: hv_signature=TCGTCGTCGTCG\ncpuid: hv_max_leaf=0x40000001\ncpuid: kvm_features=0x0\n" -cpu $cpu
done
check cpuid 1 "" "cpuid: vendor=GenuineIntel\ncpuid: hypervisor_bit=1\ncpuid: hv_signature=TCGTCGTCGTCG\ncpuid: hv_max_leaf=0x40000001\ncpuid: kvm_features=0x0\n" -cpu max,vendor=GenuineIntel

for n in 1 2 4 8; do
    want="sorted:"
    for ((i = 0; i < n; i++)); do want+="smp: cpu $i up\n"; done
    want+="smp: all $n cpus up\n"
    check smp 1 "" "$want" -smp $n
done
# A 1-CPU machine whose MADT still lists 4 slots, 3 only hot-pluggable:
check smp 1 "" 'smp: cpu 0 up\nsmp: all 1 cpus up\n' -smp 1,maxcpus=4

# A triple fault resets the machine; -no-reboot makes QEMU exit 0 instead.
check fault 0 "" 'fault: triple faulting now\n'

check io-storm 1 "" 'io-storm: start count=1000\nio-storm: done\n' -append count=1000
check io-storm 1 "" 'io-storm: start count=100000\nio-storm: done\n'
check io-storm 1 "" 'io-storm: start count=16\nio-storm: done\n' -append "quiet count=5 x=1 count=0x10"
check io-storm 1 "" 'io-storm: start count=0\nio-storm: done\n' -append "count=0"
check io-storm 5 "" 'io-storm: bad count\n' -append "count=12z"
check io-storm 5 "" 'io-storm: bad count\n' -append "count=18446744073709551616"

if ((fails)); then
    echo "$fails failure(s)"
    exit 1
fi
echo "all guests ok"
