#!/bin/bash
# The quick start: installs and builds (scripts/setup.sh), then runs the
# bundled demo guest in the foreground with `vmmd run`.
# Usage: scripts/demo.sh [hello|echo|smp|cpuid] [vmmd run flags...]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GUEST=${1:-hello}
shift || true
"$ROOT/scripts/setup.sh" "$ROOT/build"
echo "demo: vmmd run --kernel build/tests/guests/guest-$GUEST.elf $* (Ctrl-] quits)"
exec "$ROOT/build/vmmd/vmmd" run --kernel "$ROOT/build/tests/guests/guest-$GUEST.elf" "$@"
