#!/bin/bash
# The whole test suite: installs and builds with AddressSanitizer and
# UndefinedBehaviorSanitizer (build-asan/, warnings are errors), then runs
# every test with ctest: cmocka unit tests, integration tests on /dev/kvm
# (skipped loudly without it), the TCG lab that boots Debian's kernel in both
# modes, and the release checks (scripts/start.sh as the README runs it, the
# install tree and the .deb, the clang build).
# Usage: scripts/test.sh [ctest args...], e.g. scripts/test.sh -L unit
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-asan
"$ROOT/scripts/setup.sh" "$BUILD" -DVMMD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DVMMD_WERROR=ON
cd "$BUILD"
status=0
ctest --output-on-failure "$@" | tee ctest-output.log || status=$?
# How long real Linux took to boot in the lab, from its own output; then
# ctest's verdict again, so it stays the last line of the run.
grep -h "LAB-RESULT" Testing/Temporary/LastTest.log 2>/dev/null || true
grep -h "tests passed" ctest-output.log | tail -n 1 || true
exit $status
