#!/usr/bin/env bash
# test_chat_page.sh: the chat page (web/index.html) at a 64-token context in
# headless Debian Chromium (tests/js/chat_page_context.mjs): the model's name
# and what it was trained to do show; old turns are trimmed like `cllm chat`
# does; a context overflow leaves an error note, is not resent, and later
# messages succeed; no empty reply bubble. Screenshots are kept in
# $CLLM_TEST_LOGS/chat_page (default BUILD/test-logs/chat_page) and their
# paths printed. Missing node, playwright-core, chromium or the CJK font
# (fonts-noto-cjk) is a failure naming what to install (scripts/install-deps.sh).
set -u
build=${CLLM_BUILD:-build}
bin=$build/cllm
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
lib_workdir cllm-test-chat-page
command -v node >/dev/null || fail_all "node is not installed (scripts/install-deps.sh installs it)"
[ -d "$here/js/node_modules/playwright-core" ] ||
    fail_all "tests/js/node_modules lacks playwright-core: the page checks cannot run (run scripts/install-deps.sh)"
chrome=$(command -v chromium || true)
[ -n "$chrome" ] || fail_all "chromium is not installed: the chat page checks cannot run (apt-get install chromium; scripts/install-deps.sh)"
fc-list 2>/dev/null | grep -q "Noto Sans CJK" ||
    fail_all "no CJK font: Korean on the chat page needs fonts-noto-cjk (apt-get install fonts-noto-cjk; scripts/install-deps.sh)"
shots=${CLLM_TEST_LOGS:-$build/test-logs}/chat_page
rm -rf "$shots" && mkdir -p "$shots" || fail_all "cannot create $shots"
shots=$(cd "$shots" && pwd)
for i in $(seq 1 200); do echo "the cat sat on the mat. the dog ran to the log."; done > "$work/text.txt"
"$bin" pretrain --data "$work/text.txt" --preset tiny-gpt2 --steps 60 --batch 8 --seq 32 --context 64 --lr 1e-2 \
    --eval-every 0 --threads 1 --out "$work/tinychat" --no-progress >"$work/train.log" 2>&1 || fail_all "pretrain"
serve_start "$work/serve.log" -m "$work/tinychat/model.gguf" --threads 1 --port 0 --parallel 1 ||
    fail_all "server did not start"
(cd "$here/js" && timeout 240 node chat_page_context.mjs "http://127.0.0.1:$serve_port" "$chrome" cllm-pretrain \
    "next-token prediction; pretrain on text.txt" "$shots") | tee "$work/page.out"
add_results "$work/page.out"
finish
