#!/bin/bash
# Builds every build type with gcc and clang, warnings as errors, each in
# build-matrix/<compiler>-<type>, and prints one line per build: what the
# README promises ("every build type builds without warnings"). CI builds
# three of these (the sanitizer Debug, start.sh's RelWithDebInfo and clang);
# this is the whole matrix, for before a release. Usage: scripts/build_matrix.sh
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
status=0
for cc in gcc clang; do
    for type in Debug Release RelWithDebInfo MinSizeRel; do
        dir=$ROOT/build-matrix/$cc-$type
        cmake -S "$ROOT" -B "$dir" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE="$type" \
            -DVMMD_WERROR=ON >/dev/null 2>&1
        cmake --build "$dir" -j"$(nproc)" >"$dir.log" 2>&1
        rc=$?
        echo "$cc $type: exit $rc, $(grep -c 'warning:' "$dir.log") warnings"
        ((rc == 0)) || status=1
    done
done
exit $status
