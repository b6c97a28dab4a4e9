#!/bin/bash
# The main job: installs and builds (scripts/setup.sh), then starts the vmmd
# daemon in the foreground with its embedded defaults: state (SQLite
# database, API socket, token, worker files) under ./var, VM images under
# ./var/images, where the bundled test guests are copied so there is
# something to boot. Ctrl-C stops the daemon; running VMs keep running.
# Usage: scripts/start.sh [vmmd serve flags...]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/scripts/setup.sh" "$ROOT/build"
mkdir -p "$ROOT/var/images"
cp -n "$ROOT"/build/tests/guests/guest-*.elf "$ROOT/var/images/" 2>/dev/null || true
cd "$ROOT"
cat <<MSG
vmmd: API on ./var/vmmd.sock. Try:
  curl -s --unix-socket var/vmmd.sock http://vmmd/v1/host
  curl -s --unix-socket var/vmmd.sock -X POST -d '{"name":"demo","kernel":"$ROOT/var/images/guest-echo.elf","memory_mib":32}' http://vmmd/v1/vms
  curl -s --unix-socket var/vmmd.sock -X POST http://vmmd/v1/vms/demo/start
  curl -s --unix-socket var/vmmd.sock http://vmmd/v1/vms/demo/console
MSG
exec "$ROOT/build/vmmd/vmmd" serve "$@"
