#!/bin/bash
# Installs what vmmd needs to build and test on Debian 12 (only what is
# missing; apt-get needs root) and builds it. Usage: scripts/setup.sh [BUILD_DIR] [cmake args...]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
shift || true

# Build: compiler, CMake, cmocka. Tests and benchmarks: QEMU (TCG lab and the
# peer in benchmarks), busybox-static, cpio, kmod and e2fsprogs for the lab's
# initramfs and disk images. The dashboard: Chromium for its browser test,
# promtool (package prometheus) for the metrics test. Release checks: clang
# (the tree must build with it too), dpkg-dev and file (cpack -G DEB). The
# fuzz harnesses: libFuzzer's runtime, which Debian's clang does not pull in.
# TLS on TCP: GnuTLS's headers (the daemon makes its self-signed certificate
# with them); openssl makes the test PKI of the front-door test. Managed
# networks: nftables and dnsmasq-base (the daemon runs them), iperf3 for the
# network benchmark. Storage: qemu-img (qemu-utils) converts qcow2 imports;
# xfsprogs makes the XFS the clone benchmark reflinks on. Disk boot: seabios
# (the firmware VMs start in), and grub-pc-bin, xorriso and mtools for the
# lab's bootable test image. Clusters: etcd-server and etcd-client (the
# cluster test starts its own three-member etcd).
PACKAGES=(gcc clang libclang-rt-14-dev dpkg-dev file make cmake pkg-config libcmocka-dev qemu-system-x86 busybox-static cpio kmod
          e2fsprogs gzip xz-utils libmicrohttpd-dev libgnutls28-dev openssl libjansson-dev libuv1-dev libsqlite3-dev
          libseccomp-dev socat sqlite3 curl jq wrk libcurl4-openssl-dev procps util-linux iproute2 chromium prometheus
          nftables dnsmasq-base iperf3
          qemu-utils xfsprogs seabios grub-pc-bin xorriso mtools etcd-server etcd-client)
# Node.js and npm vendor the dashboard's terminal widget and run the browser
# test (playwright-core wants Node.js 20). A machine that has them from
# elsewhere (NodeSource's nodejs bundles npm) keeps them: Debian's npm
# package would conflict with that nodejs.
command -v node >/dev/null || PACKAGES+=(nodejs)
command -v npm >/dev/null || PACKAGES+=(npm)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    if [[ $(id -u) -ne 0 ]]; then
        echo "setup: need root to apt-get install: ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cmake -S "$ROOT" -B "$BUILD" "$@" >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
