#!/bin/bash
# The whole tree (daemon, worker, CLI, tests, test guests) compiled with
# clang, warnings as errors: a warning only clang sees turns CI red. The
# binaries are not run; gcc's sanitizer build is the one the suite runs.
# Usage: test_clang_build.sh SOURCE_DIR BUILD_DIR
set -uo pipefail

SRC=$1
BUILD=$2
if ! command -v clang >/dev/null; then
    echo "SKIPPED: clang is not installed (scripts/setup.sh installs it)" >&2
    exit 77
fi
cmake -S "$SRC" -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DVMMD_WERROR=ON >/dev/null || exit 1
if cmake --build "$BUILD" -j"$(nproc)" >"$BUILD.log" 2>&1; then
    echo "PASS clang $(clang -dumpversion) builds the tree with -Werror"
else
    grep -E 'error|warning' "$BUILD.log" | head -n 40
    echo "FAIL clang build (full log: $BUILD.log)"
    exit 1
fi
