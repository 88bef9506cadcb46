#!/usr/bin/env bash
# bench_grammar.sh: the cost of constrained decoding (docs/GRAMMAR.md):
# decode tokens/s of `cllm generate` with and without --json-schema on the
# same model, greedy, same prompt. One JSON object on stdout and in $OUT
# (default bench/results/grammar.json).
#
#   bash bench/bench_grammar.sh            # ROUNDS=3 THREADS=2 N=128
#
# First the grammar alone (bench/bench_grammar.c): per step of a 31-token
# JSON sample under the schema below, with GPT-2's vocabulary, the time of the
# full vocabulary mask (the slow path) and of checking one token (the fast
# path the sampler tries first), best of 5.
# Models:
#   - gpt2vocab-tiny: the tiny-gpt2 shape (2 layers, 32 wide) with GPT-2's
#     50257-token vocabulary (from the npm tiktoken package), 2 training steps:
#     a forward pass of almost nothing, so the grammar's share is as large as
#     it gets (its untrained output is never JSON: every step needs the mask);
#   - gpt2-124m: GPT-2 small's shape, same vocabulary, 1 training step;
#   - demo: $DEMO_MODEL (default /tmp/demo-bf16/final.gguf, `make demo`'s
#     trained chat model), asked through its chat template; skipped if absent.
# Each round runs plain then constrained; each side reports its best round.
# tokens/s = completion_tokens / generate_seconds of `cllm generate --json`
# (decode only; the plain run ignores end-of-text so it makes N tokens, the
# constrained one ends when the JSON is complete); extra_ms_per_token is the
# difference of the two per-token times. The load average is recorded
# before and after (2 shared cores: rerun when busy).
# Not here: llama.cpp side by side (its grammar runs need llama-cli or
# llama-server, which /tmp/llama-src does not build; only llama-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${CLLM_BUILD:-build}
rounds=${ROUNDS:-3}
threads=${THREADS:-2}
n=${N:-128}
out=${OUT:-bench/results/grammar.json}
demo=${DEMO_MODEL:-/tmp/demo-bf16/final.gguf}
bin=$build/cllm
make -s -j2 BUILD="$build" "$build/cllm" "$build/bench/bench_grammar" >&2
work=$(mktemp -d /tmp/cllm-bench-grammar.XXXXXX)
trap 'rm -rf "$work"' EXIT
load() { cut -d' ' -f1 /proc/loadavg; }
load_before=$(load)

node tests/js/ranks.js gpt2 "$work/gpt2.tiktoken" >/dev/null
"$bin" tokenizer convert --tokenizer "$work/gpt2.tiktoken" --pattern gpt2 -o "$work/gpt2.tok" >/dev/null
head -c 200000 /work/shared/data/tinyshakespeare.txt >"$work/text.txt" 2>/dev/null ||
    for i in $(seq 1 2000); do echo "the cat sat on the mat. the dog ran to the log."; done >"$work/text.txt"
"$bin" tokenize --tokenizer "$work/gpt2.tok" -o "$work/text.tok" "$work/text.txt" >/dev/null 2>&1
"$bin" pretrain --data "$work/text.tok" --tokenizer "$work/gpt2.tok" --preset tiny-gpt2 --context 512 --steps 2 \
    --batch 2 --seq 32 --eval-every 0 --threads "$threads" --out "$work/tiny" --no-progress >/dev/null 2>&1
"$bin" pretrain --data "$work/text.tok" --tokenizer "$work/gpt2.tok" --preset gpt2 --context 512 --steps 1 \
    --batch 1 --seq 32 --eval-every 0 --threads "$threads" --out "$work/gpt2" --no-progress >/dev/null 2>&1

cat >"$work/schema.json" <<'JSON'
{"type": "object",
 "properties": {"name": {"type": "string", "maxLength": 24}, "age": {"type": "integer"},
                "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 4},
                "ok": {"type": "boolean"}},
 "required": ["name", "age", "tags", "ok"]}
JSON

# run MODEL PROMPT EXTRA...: prints "tokens seconds finish"
run() {
    local model=$1 prompt=$2
    shift 2
    "$bin" generate -m "$model" -p "$prompt" -n "$n" --temperature 0 --json --threads "$threads" "$@" 2>/dev/null |
        /usr/bin/python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["completion_tokens"], d["generate_seconds"], d["finish_reason"], json.dumps(d["text"]))'
}

bench_model() { # NAME MODEL PROMPT EXTRA...
    local name=$1 model=$2 prompt=$3
    shift 3
    local best_p=0 best_g=0 r line tp tg valid=true
    for ((r = 0; r < rounds; r++)); do
        line=$(run "$model" "$prompt" --ignore-eos "$@")
        tp=$(awk '{printf "%.2f", $1 / $2}' <<<"$line")
        line=$(run "$model" "$prompt" --json-schema "$work/schema.json" "$@")
        tg=$(awk '{printf "%.2f", $1 / $2}' <<<"$line")
        gtext=$(cut -d' ' -f4- <<<"$line")
        gtokens=$(cut -d' ' -f1 <<<"$line")
        /usr/bin/python3 -c 'import json, sys; json.loads(json.loads(sys.argv[1]))' "$gtext" 2>/dev/null || valid=false
        best_p=$(awk -v a="$best_p" -v b="$tp" 'BEGIN { print (b > a ? b : a) }')
        best_g=$(awk -v a="$best_g" -v b="$tg" 'BEGIN { print (b > a ? b : a) }')
    done
    printf '{"model": "%s", "plain_tokens_per_s": %s, "json_schema_tokens_per_s": %s, "ratio": %s, "extra_ms_per_token": %s, "json_tokens": %s, "json_output_valid": %s}\n' \
        "$name" "$best_p" "$best_g" "$(awk -v a="$best_p" -v b="$best_g" 'BEGIN { printf "%.3f", b / a }')" \
        "$(awk -v a="$best_p" -v b="$best_g" 'BEGIN { printf "%.3f", 1000 / b - 1000 / a }')" "$gtokens" "$valid" >>"$work/rows.jsonl"
}
printf '{"name": "Juliet Capulet", "age": 13, "tags": ["verona", "balcony"], "ok": true}' >"$work/sample.json"
"$build/bench/bench_grammar" "$work/gpt2.tok" "$work/schema.json" "$work/sample.json" 5 >"$work/mask.json"
bench_model gpt2vocab-tiny "$work/tiny/model.gguf" "ROMEO:"
bench_model gpt2-124m "$work/gpt2/model.gguf" "ROMEO:"
[ -f "$demo" ] && bench_model demo "$demo" "Describe a person as JSON with name, age, tags and ok." --chat

mkdir -p "$(dirname "$out")"
/usr/bin/python3 - "$work/rows.jsonl" "$out" "$threads" "$rounds" "$n" "$load_before" "$(load)" "$work/mask.json" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
import datetime
d = {"bench": "grammar", "date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"), "cpu": cpu,
     "threads": int(sys.argv[3]), "rounds": int(sys.argv[4]), "max_tokens": int(sys.argv[5]),
     "load_before": float(sys.argv[6]), "load_after": float(sys.argv[7]),
     "grammar_alone_gpt2_vocab": json.load(open(sys.argv[8])), "rows": rows}
text = json.dumps(d, indent=1)
open(sys.argv[2], "w").write(text + "\n")
print(text)
PY
