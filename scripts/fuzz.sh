#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD/fuzz/ for SECONDS each and reports its
# figures; `make fuzz` builds the targets (clang, ASan + UBSan) and calls this.
#
#   bash scripts/fuzz.sh BUILD SECONDS
#
# Each target starts from its seeds in tests/fuzz/corpus/<target>/ plus the
# inputs earlier runs found (BUILD/corpus/<target>/, kept between runs, so a
# longer `make fuzz` goes deeper each time). A crash, sanitizer report, leak,
# out-of-memory (over 2 GiB RSS or one 1 GiB allocation) or a 10 s input is a
# finding: the input is saved as BUILD/findings/<target>-crash-... and the
# target fails. Add a fixed finding to the seeds so it stays covered.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: fuzz.sh BUILD SECONDS}
seconds=${2:?usage: fuzz.sh BUILD SECONDS}
passed=0 failed=0
mkdir -p "$build/findings"
for bin in "$build"/fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    t=$(basename "$bin")
    work="$build/corpus/$t"
    mkdir -p "$work"
    log="$build/findings/$t.log"
    "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$build/findings/$t-" \
        "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    units=$(find "$work" -type f | wc -l)
    if [ $rc -eq 0 ]; then
        passed=$((passed + 1))
        echo "ok   $t: ${runs:-?} inputs in ${seconds} s, coverage ${cov:-?} edges, corpus $units, no findings"
    else
        failed=$((failed + 1))
        echo "FAIL $t (exit $rc): ${runs:-?} inputs, coverage ${cov:-?}; log $log:"
        grep -m 20 -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | sed 's/^/     /'
    fi
done
if [ $((passed + failed)) -eq 0 ]; then
    echo "fuzz: no targets in $build/fuzz (build them with make fuzz)" >&2
    failed=1
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
