#!/bin/sh
# Runs every libFuzzer target in BINDIR for SECONDS each: usage `tests/fuzz/run.sh BINDIR SECONDS`.
# Each target fuzz_X starts from a temporary copy of tests/fuzz/corpus/fuzz_X (the committed seeds
# stay untouched) with tests/fuzz/fuzz_X.dict when it exists. Prints the executions of each run
# (libFuzzer's final stats) and exits non-zero if any target crashed, leaked, timed out or failed.
# Crash inputs are kept in the printed artifact directory.
set -u
if [ $# -ne 2 ]; then
    echo "usage: $0 BINDIR SECONDS" >&2
    exit 2
fi
bindir=$1
seconds=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ptyrelay-fuzz.XXXXXX")
found=0
failed=0

for bin in "$bindir"/fuzz_*; do
    [ -f "$bin" ] && [ -x "$bin" ] || continue
    found=$((found + 1))
    name=$(basename "$bin")
    corpus="$work/$name/corpus"
    artifacts="$work/$name/artifacts"
    log="$work/$name/log"
    mkdir -p "$corpus" "$artifacts"
    if [ -d "$here/corpus/$name" ]; then
        cp -R "$here/corpus/$name/." "$corpus/"
    fi
    set -- -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/"
    if [ -f "$here/$name.dict" ]; then
        set -- "$@" -dict="$here/$name.dict"
    fi
    "$bin" "$@" "$corpus" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ $rc -eq 0 ]; then
        echo "$name: ok, ${execs:-?} executions in ${seconds} s"
    else
        failed=$((failed + 1))
        echo "$name: FAILED (exit $rc) after ${execs:-?} executions; log $log, inputs in $artifacts" >&2
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|.*deadly signal)' "$log" | head -n 5 >&2
    fi
done

if [ $found -eq 0 ]; then
    rm -rf "$work"
    echo "$0: no fuzz_* executables in $bindir" >&2
    exit 2
fi
if [ $failed -ne 0 ]; then
    echo "$failed of $found fuzz targets failed" >&2
    exit 1
fi
rm -rf "$work"
echo "all $found fuzz targets ran clean"
