#!/usr/bin/env bash
# test_server_js.sh: `cllm serve` driven by the official `openai` npm client
# (tests/js/server_openai.mjs) and its chat page driven in headless Debian
# Chromium through playwright-core (tests/js/server_page.mjs), on a tiny
# model trained here. Skips (reporting why, counted as passed 0) only when
# node_modules or chromium are missing; install them with scripts/install-deps.sh.
set -u
bin=${CLLM_BUILD:-build}/cllm
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/cllm-test-server-js.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
if [ ! -d "$here/js/node_modules/openai" ] || [ ! -d "$here/js/node_modules/playwright-core" ]; then
    echo "SKIP: tests/js/node_modules lacks openai or playwright-core (run scripts/install-deps.sh)"
    echo "0 passed, 0 failed"; exit 0
fi
for i in $(seq 1 400); do echo "the cat sat on the mat. the dog ran to the log."; done > "$work/text.txt"
"$bin" pretrain --data "$work/text.txt" --preset tiny-gpt2 --steps 300 --batch 8 --seq 32 --context 128 --lr 1e-2 \
    --eval-every 0 --threads 1 --out "$work/run" --no-progress >"$work/train.log" 2>&1 || { echo "FAIL: pretrain"; echo "0 passed, 1 failed"; exit 1; }
start() { # NAME ARGS...: starts a server and sets URL
    local name=$1; shift
    "$bin" serve -m "$work/run/model.gguf" --threads 1 --port 0 "$@" >/dev/null 2>"$work/$name.log" &
    pids+=($!)
    for _ in $(seq 1 100); do
        if grep -q "listening on" "$work/$name.log"; then
            URL=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/$name.log" | head -1)
            return 0
        fi
        sleep 0.1
    done
    return 1
}
pass=0; fail=0
add() { # output file of a node run
    local p f
    p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$1" | tail -1)
    f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$1" | tail -1)
    [ -n "$p" ] || { p=0; f=1; echo "FAIL: $1 did not finish"; }
    pass=$((pass + p)); fail=$((fail + f))
}
start keyed --api-key test-key --parallel 2 || { echo "FAIL: server did not start"; echo "0 passed, 1 failed"; exit 1; }
(cd "$here/js" && timeout 120 node server_openai.mjs "$URL/v1" test-key) | tee "$work/openai.out"
add "$work/openai.out"
chrome=$(command -v chromium || true)
if [ -z "$chrome" ]; then
    echo "SKIP: chromium is not installed (apt-get install chromium; scripts/install-deps.sh lists it)"
else
    start open --parallel 2 || { echo "FAIL: server did not start"; fail=$((fail + 1)); }
    (cd "$here/js" && timeout 180 node server_page.mjs "$URL" "$chrome") | tee "$work/page.out"
    add "$work/page.out"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
