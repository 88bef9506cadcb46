# tests/lib.sh: the check harness every tests/*.sh script (and
# tests/interop/llama_tools.sh) sources; not a test itself, never run alone.
#
#   . "$(dirname "$0")/lib.sh"          from tests/
#   . "$(dirname "$0")/../lib.sh"       from tests/interop/
#
#   check NAME COMMAND [ARG...]  runs COMMAND: a pass, or a failure printed as
#                                "FAIL: NAME". Returns 0 on a pass, 1 on a failure.
#   check NAME 'EXPRESSION'      with exactly one word after NAME, that word is
#                                evaluated (eval); `$?` inside it is the caller's
#                                last status, as if the expression stood at the call.
#   ok NAME / bad NAME           counts a pass ("ok      NAME") or a failure
#                                ("FAIL: NAME") that the script decided itself.
#   add_results FILE [PREFIX]    adds the counts of the last "PREFIXN passed, N
#                                failed" line in FILE (a python or node sub-run);
#                                no such line counts as one failure.
#   finish                       prints the closing "N passed, N failed" line and
#                                exits 1 when anything failed, else 0.
#   fail_all MESSAGE             setup failed and nothing else can run: counts one
#                                failure named MESSAGE, then finish.
#   lib_workdir PREFIX           work=$(mktemp -d /tmp/PREFIX.XXXXXX), pids=(), and an EXIT
#                                trap that stops every pid in `pids` and removes $work.
#   serve_start LOG ARG...       runs "$bin serve ARG..." in the background (stderr to LOG),
#                                adds it to `pids`, waits up to 10 s for "listening on" and
#                                sets serve_port; returns 1 when it did not start.
#
# tests/run_all.sh reads the closing line and the exit status; a script that
# ends without calling finish has no summary line and counts as failed there.
# Does not: choose what a script tests or clean up what it did not start.

pass=0
fail=0

ok() {
    pass=$((pass + 1))
    echo "ok      $1"
}

bad() {
    fail=$((fail + 1))
    echo "FAIL: $1"
}

# Restores a status so that an eval'd expression sees the caller's `$?`.
_lib_status() { return "$1"; }

check() {
    local caller_status=$? name=$1
    shift
    if [ $# -eq 1 ]; then
        _lib_status "$caller_status"
        eval "$1"
    else
        "$@"
    fi
    if [ $? -eq 0 ]; then
        pass=$((pass + 1))
        return 0
    fi
    bad "$name"
    return 1
}

add_results() {
    local file=$1 prefix=${2:-} line p f
    line=$(grep -E "^${prefix}[0-9]+ passed, [0-9]+ failed\$" "$file" 2>/dev/null | tail -n 1)
    if [ -z "$line" ]; then
        bad "$file did not finish (no '${prefix}N passed, N failed' line)"
        return 1
    fi
    line=${line#"$prefix"}
    p=${line%% passed*}
    f=${line##*, }
    f=${f%% failed*}
    pass=$((pass + p))
    fail=$((fail + f))
}

finish() {
    echo "$pass passed, $fail failed"
    if [ "$fail" -eq 0 ]; then exit 0; fi
    exit 1
}

fail_all() {
    bad "$1"
    finish
}

lib_workdir() {
    work=$(mktemp -d "/tmp/$1.XXXXXX")
    pids=()
    trap _lib_cleanup EXIT
}

_lib_cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$work"
}

serve_start() {
    local log=$1
    shift
    "$bin" serve "$@" >/dev/null 2>"$log" &
    pids+=($!)
    serve_port=
    for _ in $(seq 1 100); do
        serve_port=$(grep -o 'listening on http://[^ ]*:[0-9]*' "$log" | sed 's/.*://')
        [ -n "$serve_port" ] && return 0
        sleep 0.1
    done
    return 1
}
