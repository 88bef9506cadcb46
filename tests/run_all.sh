#!/usr/bin/env bash
# Runs every compiled test in BUILD/tests and every tests/test_*.sh script.
# Each must end with the line "N passed, N failed" and exit 0 when none failed.
# A crash, a missing summary line or a non-zero exit counts as a failure.
# Prints the totals as the last line, in the same format.
set -u
build=${1:-build}
export CLLM_BUILD=$(cd "$build" && pwd)  # absolute: test scripts may cd elsewhere
total_pass=0
total_fail=0
failed_names=()
run_one() {
    local name=$1; shift
    local log
    log=$(mktemp)
    local start=$SECONDS
    "$@" >"$log" 2>&1
    local rc=$?
    local summary
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    local p=0 f=0
    if [ -n "$summary" ]; then
        p=$(echo "$summary" | sed -E 's/^([0-9]+) passed.*/\1/')
        f=$(echo "$summary" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    fi
    if [ $rc -ne 0 ] || [ -z "$summary" ]; then
        [ "$f" -eq 0 ] && f=1
        failed_names+=("$name")
        echo "---- $name FAILED (exit $rc) ----"
        tail -n 60 "$log"
    fi
    echo "$(printf '%-32s' "$name") ${summary:-no summary line} (exit $rc, $((SECONDS - start))s)"
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    rm -f "$log"
}
for bin in "$build"/tests/test_*; do
    [ -x "$bin" ] || continue
    run_one "$(basename "$bin")" "$bin"
done
for script in tests/test_*.sh; do
    [ -f "$script" ] || continue
    run_one "$(basename "$script")" bash "$script"
done
if [ ${#failed_names[@]} -gt 0 ]; then
    echo "failing: ${failed_names[*]}"
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
