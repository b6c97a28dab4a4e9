#!/bin/bash
# Integration: every test guest through a real `vmmd run` on /dev/kvm, in both
# modes, checking console output and exit status; plus the setup errors a user
# can make. Usage: test_run_guests.sh VMMD GUEST_DIR
set -uo pipefail

VMMD=$1
GUESTS=$2
if [[ ! -c /dev/kvm || ! -w /dev/kvm ]]; then
    echo "SKIPPED: /dev/kvm is not available here; guest integration tests did not run" >&2
    exit 77
fi

pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() { # name, condition result (0 ok)
    if [[ $2 -eq 0 ]]; then
        echo "PASS $1"; pass=$((pass + 1))
    else
        echo "FAIL $1"; fail=$((fail + 1))
        echo "---- stdout"; cat "$tmp/out" 2>/dev/null | head -20
        echo "---- stderr"; cat "$tmp/err" 2>/dev/null | head -20
    fi
}

# run_guest NAME [vmmd run flags...]: stdout -> $tmp/out, stderr -> $tmp/err, status -> $rc
run_guest() {
    local g=$1
    shift
    timeout 60 "$VMMD" run --kernel "$GUESTS/guest-$g.elf" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
    rc=$?
}

has() { grep -qF -- "$1" "$tmp/out"; }

for mode in pv full; do
    run_guest hello --mode "$mode"
    check "hello/$mode prints and powers off" $([[ $rc -eq 0 ]] && has "Hello from a vmmd test guest"; echo $?)

    run_guest cpuid --mode "$mode"
    if [[ $mode == pv ]]; then
        check "cpuid/pv sees the hypervisor bit and KVMKVMKVM" \
            $([[ $rc -eq 0 ]] && has "hypervisor_bit=1" && has "hv_signature=KVMKVMKVM"; echo $?)
        check "cpuid/pv sees kvm-clock features" \
            $(grep -q "kvm_features=0x[1-9a-f]" "$tmp/out"; echo $?)
    else
        check "cpuid/full sees bare metal" \
            $([[ $rc -eq 0 ]] && has "hypervisor_bit=0" && has "hv_signature=none" && has "kvm_features=0x0"; echo $?)
    fi

    for n in 1 2 4; do
        run_guest smp --mode "$mode" --vcpus $n
        check "smp/$mode: $n vCPUs report in" $([[ $rc -eq 0 ]] && has "smp: all $n cpus up"; echo $?)
    done
done

printf 'hello\rworld\r\004' | timeout 30 "$VMMD" run --kernel "$GUESTS/guest-echo.elf" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "echo: UART input reaches the guest and comes back" \
    $([[ $rc -eq 0 ]] && has "echo: ready" && has "hello" && has "world" && has "echo: bye"; echo $?)

# More input than the UART's receive buffer holds: nothing may be lost or reordered.
head -c 15000 /dev/urandom | base64 -w 76 >"$tmp/in"
(cat "$tmp/in"; printf '\004') | timeout 60 "$VMMD" run --kernel "$GUESTS/guest-echo.elf" >"$tmp/out" 2>"$tmp/err"
rc=$?
grep -v '^echo: ' "$tmp/out" >"$tmp/echoed"
check "echo: 20 KB of piped input comes back intact" $([[ $rc -eq 0 ]] && cmp -s "$tmp/in" "$tmp/echoed"; echo $?)

run_guest fault
check "fault: a triple fault ends vmmd run with status 1 and one line" \
    $([[ $rc -eq 1 ]] && grep -q "triple fault" "$tmp/err" && [[ $(wc -l <"$tmp/err") -eq 1 ]]; echo $?)

run_guest io-storm --cmdline count=5000 --stats
check "io-storm: 5000 port writes, counted as I/O exits" \
    $([[ $rc -eq 0 ]] && has "io-storm: done" && grep -Eq "exits io=5[0-2][0-9]{2} " "$tmp/err"; echo $?)

run_guest garbage --stats
check "garbage: junk on every port is ignored and counted" \
    $([[ $rc -eq 0 ]] && has "garbage: survived" && grep -Eq "writes_ignored=[0-9]{5}" "$tmp/err"; echo $?)

run_guest reboot --on-reboot exit
check "reboot with --on-reboot=exit: status 3" $([[ $rc -eq 3 ]] && has "pulsing the reset line"; echo $?)

# The default policy restarts the guest; it reboots again and again until we stop it.
timeout --preserve-status -s TERM 3 "$VMMD" run --kernel "$GUESTS/guest-reboot.elf" </dev/null >"$tmp/out" 2>"$tmp/err"
rc=$?
boots=$(grep -c "pulsing the reset line" "$tmp/out")
check "reboot with the default policy restarts the guest ($boots boots), SIGTERM ends it with 143" \
    $([[ $rc -eq 143 && $boots -ge 2 ]]; echo $?)

# Setup errors: one clear line on stderr, non-zero status, no guest started.
timeout 10 "$VMMD" run --kernel /nonexistent/bzImage </dev/null >"$tmp/out" 2>"$tmp/err"
rc=$?
check "missing kernel: status 1, one line naming the file" \
    $([[ $rc -eq 1 ]] && grep -q "/nonexistent/bzImage: No such file" "$tmp/err" && [[ $(wc -l <"$tmp/err") -eq 1 ]]; echo $?)

timeout 10 "$VMMD" run --kernel /etc/hostname </dev/null >"$tmp/out" 2>"$tmp/err"
rc=$?
check "not a kernel: status 1, one line" \
    $([[ $rc -eq 1 ]] && grep -q "not a kernel" "$tmp/err" && [[ $(wc -l <"$tmp/err") -eq 1 ]]; echo $?)

head -c $((20 * 1024 * 1024)) /dev/zero >"$tmp/big.initrd"
run_guest hello --memory 16 --initrd "$tmp/big.initrd"
check "too little memory for the initrd: status 1, says so" \
    $([[ $rc -eq 1 ]] && grep -q "too little memory" "$tmp/err"; echo $?)

for bad in "--vcpus 0" "--vcpus 65" "--memory 8" "--mode hvm" "--bogus"; do
    run_guest hello $bad
    check "usage error '$bad': status 2" $([[ $rc -eq 2 ]] && [[ $(wc -l <"$tmp/err") -eq 1 ]]; echo $?)
done

# --firmware instead of --kernel: what a user gets wrong, each one line.
FW=/usr/share/seabios/bios-256k.bin
truncate -s 1M "$tmp/blank.img"
for bad in "--firmware $FW" "--firmware $FW --disk $tmp/blank.img --kernel /etc/hostname" \
           "--firmware $FW --disk $tmp/blank.img --cmdline quiet" "--disk $tmp/blank.img"; do
    timeout 10 "$VMMD" run $bad </dev/null >"$tmp/out" 2>"$tmp/err"
    rc=$?
    check "usage error '${bad//$tmp\//}': status 2, one line" $([[ $rc -eq 2 ]] && [[ $(wc -l <"$tmp/err") -eq 1 ]]; echo $?)
done
timeout 10 "$VMMD" run --firmware /etc/hostname --disk "$tmp/blank.img" </dev/null >"$tmp/out" 2>"$tmp/err"
rc=$?
check "not a firmware image: status 1, one line" \
    $([[ $rc -eq 1 ]] && grep -q "not a firmware image" "$tmp/err" && [[ $(wc -l <"$tmp/err") -eq 1 ]]; echo $?)
if [[ -f $FW ]]; then
    # Real firmware code on a PVM host runs through KVM's emulator: SeaBIOS takes a few seconds.
    timeout 30 "$VMMD" run --firmware "$FW" --disk "$tmp/blank.img" --memory 64 </dev/null >"$tmp/out" 2>"$tmp/err" &
    fwpid=$!
    for _ in $(seq 300); do grep -q "Boot failed: not a bootable disk" "$tmp/out" && break; sleep 0.1; done
    check "SeaBIOS starts, prints on COM1 and finds the disk blank" \
        $(grep -q "SeaBIOS (version" "$tmp/out" && grep -q "Boot failed: not a bootable disk" "$tmp/out"; echo $?)
    kill "$fwpid" 2>/dev/null
    wait "$fwpid" 2>/dev/null
fi

# The full-mode IDE disk (PIIX3, ata_piix's view): the ide guest reads a 4 MiB image by PIO
# and DMA, writes it, and sees a read-only image refuse writes. Sector s of the image is
# "VMMDSECT", s as a little-endian 64-bit number, then bytes (s + i) & 0xff (perl is essential
# on Debian, so no extra tool).
ide_image() {
    perl -e 'for $s (0..$ARGV[0]-1) { print "VMMDSECT", pack("Q<", $s), pack("C*", map { ($s + $_) & 255 } 16..511) }' \
        8192 >"$tmp/ide.img"
}
ide_image
cp "$tmp/ide.img" "$tmp/ide.orig"
run_guest ide --mode full --disk "$tmp/ide.img"
check "ide/full: IDENTIFY, PIO and DMA reads, writes read back, IDNF past the end" \
    $([[ $rc -eq 0 ]] && has "capacity 8192 sectors" && has "DMA read ok" && has "write and read back ok" \
      && has "ide: all ok"; echo $?)
check "ide/full: the guest's writes reached the image, nothing else changed" \
    $([[ $(cmp -l "$tmp/ide.img" "$tmp/ide.orig" | awk '{print int(($1 - 1) / 512)}' | sort -u | tr '\n' ' ') == "100 101 " ]]; echo $?)

ide_image
run_guest ide --mode full --disk "$tmp/ide.img,ro" --cmdline readonly
check "ide/full with ,ro: writes fail with ABRT, the image is unchanged" \
    $([[ $rc -eq 0 ]] && has "writes refused, data unchanged" && has "ide: all ok" && cmp -s "$tmp/ide.img" "$tmp/ide.orig"; echo $?)

# I/O limits on the IDE disk: PIO and DMA transfers past the limit are deferred (BSY, or the
# DMA engine busy), never failed; the guest passes every check, only later. It polls a few
# thousand times for each command (tens of ms here), so each wait must stay shorter: 5 ms.
ide_image
t0=$(date +%s%N)
run_guest ide --mode full --disk "$tmp/ide.img,ops_per_s=200,burst_ops=1" --stats
t1=$(date +%s%N)
check "ide/full with I/O limits: all checks pass, throttled ($(((t1 - t0) / 1000000)) ms, $(grep -o 'throttled_events=[0-9]*' "$tmp/err"))" \
    $([[ $rc -eq 0 ]] && has "ide: all ok" && grep -q "throttled_events=[1-9]" "$tmp/err"; echo $?)

run_guest ide --mode full --disk "$tmp/ide.img,ro"
check "ide/full: a guest expecting to write a read-only disk fails with status 1" \
    $([[ $rc -eq 1 ]] && has "FAIL PIO write"; echo $?)

run_guest ide --mode full --disk "$tmp/missing.img"
check "missing disk image: status 1, one line naming the file, no guest output" \
    $([[ $rc -eq 1 ]] && grep -q "$tmp/missing.img.*No such file" "$tmp/err" && [[ $(wc -l <"$tmp/err") -eq 1 ]] \
      && [[ ! -s "$tmp/out" ]]; echo $?)

run_guest hello --nic tap=lo
check "a tap that cannot be attached (lo is no tap): status 1, one line, no guest output" \
    $([[ $rc -eq 1 ]] && grep -q "cannot attach to tap lo" "$tmp/err" && [[ $(wc -l <"$tmp/err") -eq 1 ]] \
      && [[ ! -s "$tmp/out" ]]; echo $?)
run_guest hello --nic tap=t0,mac=01:00:5e:00:00:01
check "a multicast MAC: usage error (status 2), one line" \
    $([[ $rc -eq 2 ]] && grep -q "not a unicast MAC" "$tmp/err" && [[ $(wc -l <"$tmp/err") -eq 1 ]]; echo $?)
run_guest hello --mode full --nic tap=lo
check "a NIC in full mode (an e1000) on lo: status 1, one line, no guest output" \
    $([[ $rc -eq 1 ]] && grep -q "cannot attach to tap lo" "$tmp/err" && [[ $(wc -l <"$tmp/err") -eq 1 ]] \
      && [[ ! -s "$tmp/out" ]]; echo $?)
# The full mode's e1000 on a tap with 10.99.0.1/24: the guest sends an ARP request through a
# transmit descriptor, the host's kernel sees it (the tap's rx counter) and answers, and the
# guest finds the reply in a receive descriptor.
if [[ -c /dev/net/tun ]] && ip tuntap add vmmde1000t0 mode tap 2>/dev/null; then
    ip addr add 10.99.0.1/24 dev vmmde1000t0 && ip link set vmmde1000t0 up
    run_guest e1000 --mode full --nic tap=vmmde1000t0
    check "e1000/full: link, EEPROM, an ARP request out through the tap and the reply in" \
        $([[ $rc -eq 0 ]] && has "e1000: all ok" && ! grep -qE "Sanitizer|runtime error" "$tmp/err"; echo $?)
    check "e1000/full: the host received the guest's frame on the tap" \
        $([[ $(cat /sys/class/net/vmmde1000t0/statistics/rx_packets) -ge 1 ]]; echo $?)
    # The same through I/O limits of 10 packets a second each way: delayed, nothing lost (the
    # guest polls for its frames for seconds).
    run_guest e1000 --mode full --nic tap=vmmde1000t0,ops_per_s=10,burst_ops=1,bytes_per_s=2000 --stats
    check "e1000/full with I/O limits: the ARP exchange still completes ($(grep -o 'throttled_events=[0-9]*' "$tmp/err"))" \
        $([[ $rc -eq 0 ]] && has "e1000: all ok"; echo $?)
    ip tuntap del vmmde1000t0 mode tap
else
    echo "SKIP e1000/full over a tap: cannot create taps here (needs root and /dev/net/tun)"
fi

# virtio-blk in pv mode (the guest's own virtio-pci driver, lib/virtio.c). The image's first
# 4 KiB hold a pattern the guest checks; a read-write run writes sectors 16-23 and nothing else.
# The suite's build is ASan/UBSan: a report on stderr fails the check.
clean_stderr() { ! grep -qE "AddressSanitizer|LeakSanitizer|runtime error" "$tmp/err"; }
vblk_image() { # SIZE_MIB
    yes vmmd-virtio-blk-pattern | head -c 4096 >"$tmp/vblk.img"
    truncate -s "${1}M" "$tmp/vblk.img"
    cp "$tmp/vblk.img" "$tmp/vblk.orig"
}
vblk_image 2
run_guest virtio-blk --disk "$tmp/vblk.img" --cmdline "sectors=4096 serial=vblk.img"
check "virtio-blk/pv: capacity, GET_ID, the host's data, writes read back, IOERR past the end" \
    $([[ $rc -eq 0 ]] && has "capacity=4096" && has "serial=vblk.img" && has "write, read back, flush ok" \
      && has "requests past the end fail" && has "all checks passed" && clean_stderr; echo $?)
check "virtio-blk/pv: the guest's writes reached sectors 16-23 of the image, nothing else changed" \
    $([[ $(cmp -l "$tmp/vblk.img" "$tmp/vblk.orig" | awk '{print int(($1 - 1) / 512)}' | sort -nu | tr '\n' ' ') \
        == "16 17 18 19 20 21 22 23 " ]] \
      && [[ $(dd if="$tmp/vblk.img" bs=512 skip=16 count=1 2>/dev/null | head -c 17) == "guest-wrote-this|" ]]; echo $?)

vblk_image 2
run_guest virtio-blk --disk "$tmp/vblk.img,ro" --cmdline "ro sectors=4096"
check "virtio-blk/pv with ,ro: RO offered, writes fail with IOERR, the image is unchanged" \
    $([[ $rc -eq 0 ]] && has "read-only disk refused the write" && has "all checks passed" && clean_stderr \
      && cmp -s "$tmp/vblk.img" "$tmp/vblk.orig"; echo $?)

run_guest virtio-blk --disk "$tmp/vblk.img,ro"
check "virtio-blk/pv: a guest expecting to write a read-only disk fails with status 1" \
    $([[ $rc -eq 1 ]] && has "FAIL write from two buffers" && clean_stderr; echo $?)

vblk_image 4
for wait in irq poll; do
    opt=""; [[ $wait == poll ]] && opt=poll
    run_guest virtio-blk --disk "$tmp/vblk.img" --cmdline "bench passes=2 $opt" --stats
    check "virtio-blk/pv bench ($wait): 8 x 1 MiB indirect requests, 4 in flight" \
        $([[ $rc -eq 0 ]] && has "bench bytes=8388608 requests=8" \
          && grep -q "disk0 read_bytes=8388608 write_bytes=0 read_ops=8 " "$tmp/err" && clean_stderr; echo $?)
done

# Malformed rings: each must set DEVICE_NEEDS_RESET, the device must recover after a reset, and
# vmmd must end with the guest's status, not a crash or a sanitizer report.
vblk_image 1
run_guest virtio-hostile --disk "$tmp/vblk.img" --stats
check "virtio-hostile/pv: 10 malformed requests each need a reset, reads work after each" \
    $([[ $rc -eq 0 ]] && [[ $(grep -c ": needs reset$" "$tmp/out") -eq 10 ]] \
      && has "all cases refused, device recovered each time" && clean_stderr \
      && grep -q "^vmmd: exits " "$tmp/err" && cmp -s "$tmp/vblk.img" "$tmp/vblk.orig"; echo $?)

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
