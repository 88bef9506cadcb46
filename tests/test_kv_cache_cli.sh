#!/usr/bin/env bash
# test_kv_cache_cli.sh: --cache-type f32|f16|q8_0 on generate, chat, serve
# and perplexity, and `cllm info`'s KV rows, on a byte-level model (head size
# 32, so q8_0 blocks fit) trained here for a few seconds: the q8_0 and f16
# caches give the same greedy text, perplexity within 1% (f16: 0.1%) of the
# f32 cache with a tiny KL, and bad values exit 2.
set -u
bin=${CLLM_BUILD:-build}/cllm
work=$(mktemp -d /tmp/cllm-test-kvcache.XXXXXX)
srv=""
trap '[ -n "$srv" ] && kill "$srv" 2>/dev/null; rm -rf "$work"' EXIT
. "$(dirname "$0")/lib.sh"
for i in $(seq 1 400); do echo "the cat sat on the mat. the dog ran to the log."; done > "$work/text.txt"
"$bin" pretrain --data "$work/text.txt" --preset nanogpt-shakespeare --steps 150 --batch 8 --seq 32 --context 64 \
    --lr 1e-2 --eval-every 0 --threads 1 --out "$work/run" --no-progress >"$work/train.log" 2>&1
check "pretrain exits 0" test $? -eq 0
model=$work/run/model.gguf
f=$("$bin" generate -m "$model" -p "the cat" -n 40 --temperature 0 --threads 1 2>/dev/null)
q=$("$bin" generate -m "$model" -p "the cat" -n 40 --temperature 0 --threads 1 --cache-type q8_0 2>/dev/null)
check "generate --cache-type q8_0 exits 0 and continues the prompt" bash -c "[[ '$q' == 'the cat sat on the mat'* ]]"
check "greedy text with the q8_0 cache equals the f32 cache's" test "$f" = "$q"
h=$("$bin" generate -m "$model" -p "the cat" -n 40 --temperature 0 --threads 1 --cache-type f16 2>/dev/null)
check "greedy text with the f16 cache equals the f32 cache's" test -n "$h" -a "$f" = "$h"
c=$("$bin" chat -m "$model" --prompt "the cat" -n 8 --temperature 0 --threads 1 --cache-type q8_0 --template plain 2>/dev/null)
check "chat --cache-type q8_0 answers" test $? -eq 0 -a -n "$c"
# serve with a q8_0 cache: two concurrent greedy completions (one batched
# pass per step), then a prompt that extends the first (served from that
# slot's cached prefix: /metrics counts reused tokens) must each give what
# generate gives with the same cache.
"$bin" serve -m "$model" --threads 1 --port 0 --parallel 2 --cache-type q8_0 2>"$work/serve.log" &
srv=$!
for _ in $(seq 1 100); do grep -q "listening on" "$work/serve.log" && break; sleep 0.1; done
port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$work/serve.log" | sed 's/.*://')
check "serve --cache-type q8_0 starts" test -n "$port"
g1=$("$bin" generate -m "$model" -p "the cat" -n 12 --temperature 0 --no-echo --threads 1 --cache-type q8_0 2>/dev/null)
g2=$("$bin" generate -m "$model" -p "the dog ran" -n 12 --temperature 0 --no-echo --threads 1 --cache-type q8_0 2>/dev/null)
g3=$("$bin" generate -m "$model" -p "the cat sat on the" -n 12 --temperature 0 --no-echo --threads 1 --cache-type q8_0 \
    2>/dev/null)
s_out=$(PORT="${port:-1}" /usr/bin/python3 -c '
import http.client, json, os, threading
def ask(prompt, out, i):
    c = http.client.HTTPConnection("127.0.0.1", int(os.environ["PORT"]), timeout=60)
    c.request("POST", "/v1/completions", json.dumps({"prompt": prompt, "max_tokens": 12, "temperature": 0}))
    out[i] = json.loads(c.getresponse().read())["choices"][0]["text"]
out = [None] * 3
ts = [threading.Thread(target=ask, args=(p, out, i)) for i, p in enumerate(["the cat", "the dog ran"])]
for t in ts: t.start()
for t in ts: t.join()
ask("the cat sat on the", out, 2)
c = http.client.HTTPConnection("127.0.0.1", int(os.environ["PORT"]), timeout=60)
c.request("GET", "/metrics")
m = dict(l.rsplit(" ", 1) for l in c.getresponse().read().decode().splitlines() if not l.startswith("#"))
print(json.dumps({"texts": out, "reused": int(m["cllm_prompt_tokens_reused_total"])}))' 2>/dev/null)
check "served q8_0-cache completions (batched, then prefix reuse) equal generate's" /usr/bin/python3 -c '
import json, sys
r = json.loads(sys.argv[1]); got = r["texts"]; want = sys.argv[2:]
assert r["reused"] > 0, r  # the third prompt was served from a cached prefix
assert len(want) == 3 and all(want) and [g.rstrip("\n") for g in got] == want, (got, want)' "${s_out:-null}" "$g1" "$g2" "$g3"
kill "$srv" 2>/dev/null
wait "$srv" 2>/dev/null
srv=""
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
"$bin" perplexity -m "$model" --kl-base "$model" --cache-type f16 --ctx 32 --threads 1 --json "$work/small.txt" \
    >"$work/ph.json" 2>/dev/null
check "f16-cache perplexity within 0.1% of f32's, KL mean < 1e-5 nats" /usr/bin/python3 -c '
import json, sys
f = json.load(open(sys.argv[1])); h = json.load(open(sys.argv[2]))
assert abs(h["ppl"] / f["ppl"] - 1) < 1e-3 and 0 <= h["kl_mean"] < 1e-5, (h, f["ppl"])' "$work/pf.json" "$work/ph.json"
"$bin" generate -m "$model" -p x --cache-type q4_0 >/dev/null 2>"$work/err"
check "--cache-type q4_0 is a usage error (exit 2) naming the choices" bash -c "test $? -eq 2 && grep -q 'f32, f16 or q8_0' '$work/err'"
"$bin" perplexity -m "$model" --cache-type bf16 "$work/small.txt" >/dev/null 2>&1
check "perplexity --cache-type bf16 exits 2" test $? -eq 2
info=$("$bin" info --preset gpt2 --json)
check "info --json: q8_0 K+V = f32 K+V * 34/128" /usr/bin/python3 -c '
import json, sys
i = json.loads(sys.argv[1])["inference"]
assert i["kv_f32_bytes"] == 2 * 12 * 1024 * 768 * 4 and i["kv_q8_0_bytes"] * 128 == i["kv_f32_bytes"] * 34, i
assert i["kv_f16_bytes"] * 2 == i["kv_f32_bytes"], i' "$info"
"$bin" info --preset gpt2 | grep -q "q8_0 (34 B per 32 values)"
check "info text shows the q8_0 KV row" test $? -eq 0
finish
