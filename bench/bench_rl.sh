#!/usr/bin/env bash
# RL rollout benchmark: PPO and GRPO rollout (sampling) tokens/s for a ~10M
# model (preset llama-10m, byte vocabulary; PRESETS="llama-10m llama-110m" for
# more), one JSON object on stdout (also bench/results/rl.json).
# Rollouts are batched across KV slots (one cllm_model_decode_batch step per
# token over the unfinished sequences); the numbers are tokens sampled per
# second of sampling time, as reported by the runs. Random-ish weights (one
# pre-training step) so replies run to --max-new. Load average recorded:
# the two cores are shared, rerun when busy.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${CLLM_BUILD:-build}
make -s BUILD="$build" "$build/cllm" >&2
bin=$build/cllm
tmp=$(mktemp -d /tmp/cllm-bench-rl-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
presets=${PRESETS:-"llama-10m"}
max_new=${MAX_NEW:-32}
threads=${THREADS:-2}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for i in $(seq 1 200); do printf '### User:\nsay %d\n\n### Assistant:\nok %d\n\n' "$i" "$i"; done > "$tmp/text.txt"
for i in $(seq 1 32); do echo "{\"prompt\":\"say $i\",\"chosen\":\"ok $i\",\"rejected\":\"no\"}"; done > "$tmp/pairs.jsonl"
for i in $(seq 1 32); do echo "{\"prompt\":\"say $i\",\"answer\":\"ok $i\"}"; done > "$tmp/prompts.jsonl"
rows=""
for preset in $presets; do
    "$bin" pretrain --data "$tmp/text.txt" --preset "$preset" --context 128 --seq 64 --batch 2 --steps 1 \
        --eval-every 0 --threads "$threads" --out "$tmp/$preset" --no-progress >/dev/null 2>&1
    m=$tmp/$preset/model.gguf
    params=$("$bin" info -m "$m" 2>/dev/null | awk '/^parameters/ {print $2; exit}')
    "$bin" reward -m "$m" --data "$tmp/pairs.jsonl" -o "$tmp/rm.gguf" --steps 1 --batch 2 --val-frac 0 \
        --threads "$threads" >/dev/null 2>&1
    g=$("$bin" grpo -m "$m" --data "$tmp/prompts.jsonl" -o "$tmp/g.gguf" --verify regex --pattern ok --steps 2 \
        --batch 4 --group 4 --max-new "$max_new" --epochs 1 --threads "$threads" 2>/dev/null)
    p=$("$bin" ppo -m "$m" --reward-model "$tmp/rm.gguf" --data "$tmp/prompts.jsonl" -o "$tmp/p.gguf" --steps 2 \
        --batch 16 --max-new "$max_new" --epochs 1 --threads "$threads" 2>/dev/null)
    row=$(/usr/bin/python3 -c '
import json, sys
g, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({"preset": sys.argv[3], "params": int(sys.argv[4] or 0), "sequences_per_batch": 16, "max_new": int(sys.argv[5]),
                  "grpo_rollout_tokens": g["rollout_tokens"], "grpo_rollout_tokens_per_s": round(g["rollout_tokens_per_s"], 1),
                  "ppo_rollout_tokens": p["rollout_tokens"], "ppo_rollout_tokens_per_s": round(p["rollout_tokens_per_s"], 1)}))
' "$g" "$p" "$preset" "$params" "$max_new")
    rows="${rows:+$rows,}$row"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
json="{\"bench\":\"rl_rollouts\",\"threads\":$threads,\"load_before\":\"$load_before\",\"load_after\":\"$load_after\",\"rows\":[$rows]}"
mkdir -p bench/results
echo "$json" | /usr/bin/python3 -m json.tool > bench/results/rl.json
echo "$json"
