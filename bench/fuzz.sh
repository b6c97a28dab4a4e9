#!/bin/bash
# Builds the libFuzzer harnesses of tests/fuzz in a clang tree of their own
# (VMMD_FUZZ=ON: every library with coverage instrumentation, ASan and
# UBSan) and runs each for SECONDS (default 60) from its committed seed
# corpus, then prints what libFuzzer's final stats say: executions per
# second, coverage (cov: edges, ft: features) and the corpus it grew.
# Any crash, leak, sanitizer report or hang fails the run (exit 1) and names
# the input that did it. The `fuzz` ctest runs this briefly (5 s each).
#
# Usage: bench/fuzz.sh [SECONDS] [TARGET...]   (targets: VMMD_FUZZ_TARGETS in tests/fuzz/CMakeLists.txt)
# The tree is $VMMD_FUZZ_BUILD (default build-fuzz/); grown corpora, logs and
# crashing inputs go under it, never into the committed tests/fuzz/corpus.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${VMMD_FUZZ_BUILD:-$ROOT/build-fuzz}
SECONDS_EACH=${1:-60}
shift || true
if [[ ! $SECONDS_EACH =~ ^[0-9]+$ ]] || ((SECONDS_EACH < 1)); then
    echo "usage: bench/fuzz.sh [SECONDS] [TARGET...]" >&2
    exit 2
fi
TARGETS=("$@")
if ! command -v clang >/dev/null; then
    echo "SKIPPED: clang is not installed (scripts/setup.sh installs it and libFuzzer)" >&2
    exit 77
fi

mkdir -p "$BUILD"
if ! cmake -S "$ROOT" -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DVMMD_FUZZ=ON -DVMMD_TESTS=OFF -DVMMD_WERROR=ON >"$BUILD/configure.log" 2>&1; then
    tail -n 20 "$BUILD/configure.log"
    echo "FAIL configuring the fuzz tree (log: $BUILD/configure.log)"
    exit 1
fi
if ! cmake --build "$BUILD" --target fuzz -j"$(nproc)" >"$BUILD/build.log" 2>&1; then
    grep -E 'error|warning' "$BUILD/build.log" | head -n 40
    echo "FAIL building the harnesses (log: $BUILD/build.log)"
    exit 1
fi

# Every target tests/fuzz/CMakeLists.txt builds (one source may make several, as
# fuzz_virtio_pci.c makes one per virtio device).
if ((${#TARGETS[@]} == 0)); then
    for f in "$BUILD"/tests/fuzz/fuzz_*; do
        [[ -f $f && -x $f ]] || continue
        TARGETS+=("${f##*/fuzz_}")
    done
fi

status=0
printf '%-15s %8s %10s %8s %8s %8s  %s\n' target seconds runs exec/s cov ft corpus
for t in "${TARGETS[@]}"; do
    bin=$BUILD/tests/fuzz/fuzz_$t
    seeds=$ROOT/tests/fuzz/corpus/$t
    work=$BUILD/fuzz-corpus/$t
    log=$BUILD/fuzz-logs/$t.log
    if [[ ! -x $bin || ! -d $seeds ]]; then
        echo "FAIL $t: no harness $bin or no seed corpus $seeds"
        status=1
        continue
    fi
    # A fresh working corpus each run, so figures compare across runs; libFuzzer
    # adds what it finds to the first directory only, so the seeds stay as committed.
    rm -rf "$work"
    mkdir -p "$work" "$BUILD/fuzz-logs" "$BUILD/fuzz-artifacts"
    "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$BUILD/fuzz-artifacts/$t-" "$work" "$seeds" >"$log" 2>&1
    rc=$?
    done_line=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1)
    runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log")
    eps=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+)/\1/p' "$log")
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$done_line")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$done_line")
    corp=$(sed -nE 's/.* corp: ([^ ]+).*/\1/p' <<<"$done_line")
    printf '%-15s %8s %10s %8s %8s %8s  %s\n' "$t" "$SECONDS_EACH" "${runs:--}" "${eps:--}" \
        "${cov:--}" "${ft:--}" "${corp:--}"
    if ((rc != 0)); then
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|artifact_prefix|Test unit written)' "$log" | head -n 10
        echo "FAIL $t: libFuzzer exited $rc (log: $log)"
        status=1
    fi
done
((status == 0)) && echo "PASS ${#TARGETS[@]} fuzz targets, ${SECONDS_EACH} s each, no crash"
exit $status
