#!/bin/bash
# The main job: installs and builds (scripts/setup.sh), then starts the vmmd
# daemon in the foreground with its embedded defaults: state (SQLite
# database, API socket, token, worker files) under ./var, VM images under
# ./var/images, where the bundled test guests are copied so there is
# something to boot. Ctrl-C stops the daemon; running VMs keep running.
# Usage: scripts/start.sh [vmmd serve flags...]
# VMMD_BUILD_DIR and VMMD_STATE_DIR move the build (./build) and the state
# (./var); CI uses them to run this very script in a temporary directory.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${VMMD_BUILD_DIR:-$ROOT/build}
STATE=${VMMD_STATE_DIR:-$ROOT/var}
"$ROOT/scripts/setup.sh" "$BUILD"
mkdir -p "$STATE/images"
cp -n "$BUILD"/tests/guests/guest-*.elf "$STATE/images/" 2>/dev/null || true
cd "$ROOT"
SOCK=$STATE/vmmd.sock
[[ $SOCK == "$ROOT"/* ]] && SOCK=${SOCK#"$ROOT"/}
cat <<MSG
vmmd: API on $SOCK. Try:
  curl -s --unix-socket $SOCK http://vmmd/v1/host
  curl -s --unix-socket $SOCK -X POST -d '{"name":"demo","kernel":"$STATE/images/guest-echo.elf","memory_mib":32}' http://vmmd/v1/vms
  curl -s --unix-socket $SOCK -X POST http://vmmd/v1/vms/demo/start
  curl -s --unix-socket $SOCK http://vmmd/v1/vms/demo/console
MSG
exec "$BUILD/vmmd/vmmd" serve --state-dir "$STATE" "$@"
