#!/usr/bin/env bash
# test_server_js.sh: `cllm serve` driven by the official `openai` npm client
# (tests/js/server_openai.mjs) and its chat page driven in headless Debian
# Chromium through playwright-core (tests/js/server_page.mjs), a page on
# another origin calling the API through CORS (tests/js/server_cors.mjs), on a tiny
# model trained here. Missing node, tests/js/node_modules (openai,
# playwright-core) or chromium is a failure naming what to install
# (scripts/install-deps.sh), never a silent "0 passed": a suite whose
# checks did not run must not look green.
set -u
bin=${CLLM_BUILD:-build}/cllm
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
lib_workdir cllm-test-server-js
command -v node >/dev/null || fail_all "node is not installed (scripts/install-deps.sh installs it)"
for m in openai playwright-core; do
    [ -d "$here/js/node_modules/$m" ] ||
        fail_all "tests/js/node_modules lacks $m: the OpenAI-client and browser checks cannot run (run scripts/install-deps.sh)"
done
chrome=$(command -v chromium || true)
[ -n "$chrome" ] || fail_all "chromium is not installed: the chat page checks cannot run (apt-get install chromium; scripts/install-deps.sh)"
for i in $(seq 1 400); do echo "the cat sat on the mat. the dog ran to the log."; done > "$work/text.txt"
"$bin" pretrain --data "$work/text.txt" --preset tiny-gpt2 --steps 300 --batch 8 --seq 32 --context 128 --lr 1e-2 \
    --eval-every 0 --threads 1 --out "$work/run" --no-progress >"$work/train.log" 2>&1 || fail_all "pretrain"
start() { # NAME ARGS...: starts a server and sets URL
    local name=$1; shift
    serve_start "$work/$name.log" -m "$work/run/model.gguf" --threads 1 --port 0 "$@" || return 1
    URL=http://127.0.0.1:$serve_port
}
start keyed --api-key test-key --parallel 2 || fail_all "server did not start"
(cd "$here/js" && timeout 120 node server_openai.mjs "$URL/v1" test-key) | tee "$work/openai.out"
add_results "$work/openai.out"
start open --parallel 2 || fail_all "server did not start"
(cd "$here/js" && timeout 180 node server_page.mjs "$URL" "$chrome") | tee "$work/page.out"
add_results "$work/page.out"
# A page on another origin (a second loopback port) calls the API through CORS.
start cors --api-key cors-key --cors "*" --parallel 1 || fail_all "server did not start"
(cd "$here/js" && timeout 120 node server_cors.mjs "$URL" "$chrome" cors-key) | tee "$work/cors.out"
add_results "$work/cors.out"
finish
