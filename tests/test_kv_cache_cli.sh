#!/usr/bin/env bash
# test_kv_cache_cli.sh: --cache-type f32|q8_0 on generate, chat and
# perplexity, and `cllm info`'s KV rows, on a byte-level model (head size
# 32, so q8_0 blocks fit) trained here for a few seconds: the q8_0 cache
# gives the same greedy text, perplexity within 1% of the f32 cache with a
# tiny KL, and bad values exit 2.
set -u
bin=${CLLM_BUILD:-build}/cllm
work=$(mktemp -d /tmp/cllm-test-kvcache.XXXXXX)
trap 'rm -rf "$work"' EXIT
pass=0
fail=0
check() { # name, condition-command...
    local name=$1; shift
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $name"; fi
}
for i in $(seq 1 400); do echo "the cat sat on the mat. the dog ran to the log."; done > "$work/text.txt"
"$bin" pretrain --data "$work/text.txt" --preset nanogpt-shakespeare --steps 150 --batch 8 --seq 32 --context 64 \
    --lr 1e-2 --eval-every 0 --threads 1 --out "$work/run" --no-progress >"$work/train.log" 2>&1
check "pretrain exits 0" test $? -eq 0
model=$work/run/model.gguf
f=$("$bin" generate -m "$model" -p "the cat" -n 40 --temperature 0 --threads 1 2>/dev/null)
q=$("$bin" generate -m "$model" -p "the cat" -n 40 --temperature 0 --threads 1 --cache-type q8_0 2>/dev/null)
check "generate --cache-type q8_0 exits 0 and continues the prompt" bash -c "[[ '$q' == 'the cat sat on the mat'* ]]"
check "greedy text with the q8_0 cache equals the f32 cache's" test "$f" = "$q"
c=$("$bin" chat -m "$model" --prompt "the cat" -n 8 --temperature 0 --threads 1 --cache-type q8_0 --template plain 2>/dev/null)
check "chat --cache-type q8_0 answers" test $? -eq 0 -a -n "$c"
head -c 3000 "$work/text.txt" > "$work/small.txt"  # --ctx 32: the length the model was trained at
"$bin" perplexity -m "$model" --ctx 32 --threads 1 --json "$work/small.txt" >"$work/pf.json" 2>/dev/null
"$bin" perplexity -m "$model" --kl-base "$model" --cache-type q8_0 --ctx 32 --threads 1 --json "$work/small.txt" \
    >"$work/pq.json" 2>/dev/null
check "perplexity --cache-type q8_0 exits 0" test $? -eq 0
check "q8_0-cache perplexity within 1% of f32's, KL mean < 1e-3 nats" /usr/bin/python3 -c '
import json, sys
f = json.load(open(sys.argv[1])); q = json.load(open(sys.argv[2]))
assert abs(q["ppl"] / f["ppl"] - 1) < 0.01, (q["ppl"], f["ppl"])
assert abs(q["base_ppl"] - f["ppl"]) < 1e-6 * f["ppl"], "the --kl-base model must keep the f32 cache"
assert 0 <= q["kl_mean"] < 1e-3, q
print("  ppl f32 %.4f q8_0 %.4f kl %.2g" % (f["ppl"], q["ppl"], q["kl_mean"]), file=sys.stderr)' "$work/pf.json" "$work/pq.json"
"$bin" generate -m "$model" -p x --cache-type q4_0 >/dev/null 2>"$work/err"
check "--cache-type q4_0 is a usage error (exit 2) naming the choices" bash -c "test $? -eq 2 && grep -q 'f32 or q8_0' '$work/err'"
"$bin" perplexity -m "$model" --cache-type f16 "$work/small.txt" >/dev/null 2>&1
check "perplexity --cache-type f16 exits 2" test $? -eq 2
info=$("$bin" info --preset gpt2 --json)
check "info --json: q8_0 K+V = f32 K+V * 34/128" /usr/bin/python3 -c '
import json, sys
i = json.loads(sys.argv[1])["inference"]
assert i["kv_f32_bytes"] == 2 * 12 * 1024 * 768 * 4 and i["kv_q8_0_bytes"] * 128 == i["kv_f32_bytes"] * 34, i' "$info"
"$bin" info --preset gpt2 | grep -q "q8_0 (34 B per 32 values)"
check "info text shows the q8_0 KV row" test $? -eq 0
echo "$pass passed, $fail failed"
test "$fail" -eq 0
