#!/usr/bin/env bash
# RL rollout benchmark: PPO and GRPO rollout (sampling) tokens/s for a ~10M
# (llama-10m) and a ~100M (llama-110m) model with a byte vocabulary, next to
# `cllm generate` decode tokens/s on the same model in the same run. One JSON
# object on stdout (also bench/results/rl.json).
#
#   bash bench/bench_rl.sh                          # both models, 2 threads
#   PRESETS=llama-10m THREADS=1 bash bench/bench_rl.sh
#   env: BUILD=build PRESETS="llama-10m llama-110m" MAX_NEW=32 THREADS=2 ROUNDS=2
#
# Rollouts: 16 sequences per batch (PPO: 16 prompts; GRPO: 4 prompts x a
# group of 4), all decoded together by cllm_model_decode_batch (one batched
# step per token over the unfinished sequences, each in its own KV slot);
# each distinct prompt is prefilled once and GRPO's repeats get a copy of its
# KV cache. The numbers are tokens sampled per second of sampling time
# (prefill + decode, as the runs report it), best of ROUNDS; generate is one
# sequence (--ignore-eos, MAX_NEW tokens, the same sampler settings), its
# decode tokens/s (prompt excluded), best of ROUNDS. Ratios rollout/generate
# show what batching buys. Random-ish weights (one pre-training step) so
# replies run to MAX_NEW. Load averages are recorded: the cores are shared.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-${CLLM_BUILD:-build}}
make -s -j2 BUILD="$build" "$build/cllm" >&2
bin=$build/cllm
tmp=$(mktemp -d /tmp/cllm-bench-rl-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
presets=${PRESETS:-"llama-10m llama-110m"}
max_new=${MAX_NEW:-32}
threads=${THREADS:-2}
rounds=${ROUNDS:-2}
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
    "$bin" reward -m "$m" --data "$tmp/pairs.jsonl" -o "$tmp/$preset-rm" --steps 1 --batch 2 --val-frac 0 \
        --threads "$threads" >/dev/null 2>&1
    runs="[]"
    for ((r = 0; r < rounds; r++)); do
        load=$(cut -d' ' -f1 /proc/loadavg)
        gen=$("$bin" generate -m "$m" -p "say 5" --chat -n "$max_new" --ignore-eos --json --temperature 1 --top-k 0 \
            --top-p 1 --min-p 0 --seed "$r" --threads "$threads" 2>/dev/null)
        g=$("$bin" grpo -m "$m" --data "$tmp/prompts.jsonl" -o "$tmp/$preset-g$r" --json --verify regex --pattern ok --steps 1 \
            --batch 4 --group 4 --max-new "$max_new" --epochs 1 --threads "$threads" 2>/dev/null)
        p=$("$bin" ppo -m "$m" --reward-model "$tmp/$preset-rm/model.gguf" --data "$tmp/prompts.jsonl" -o "$tmp/$preset-p$r" --json --steps 1 \
            --batch 16 --max-new "$max_new" --epochs 1 --threads "$threads" 2>/dev/null)
        runs=$(/usr/bin/python3 -c '
import json, sys
runs = json.loads(sys.argv[1])
gen, g, p = json.loads(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
runs.append({"load": float(sys.argv[5]), "generate_tokens_per_s": round(gen["completion_tokens"] / gen["generate_seconds"], 1),
             "grpo_rollout_tokens_per_s": round(g["rollout_tokens_per_s"], 1), "grpo_rollout_tokens": g["rollout_tokens"],
             "ppo_rollout_tokens_per_s": round(p["rollout_tokens_per_s"], 1), "ppo_rollout_tokens": p["rollout_tokens"]})
print(json.dumps(runs))' "$runs" "$gen" "$g" "$p" "$load")
    done
    row=$(/usr/bin/python3 -c '
import json, sys
runs = json.loads(sys.argv[1])
best = lambda k: max(r[k] for r in runs)
gen, grpo, ppo = best("generate_tokens_per_s"), best("grpo_rollout_tokens_per_s"), best("ppo_rollout_tokens_per_s")
print(json.dumps({"preset": sys.argv[2], "params": int(sys.argv[3] or 0), "sequences_per_batch": 16, "max_new": int(sys.argv[4]),
                  "generate_tokens_per_s": gen, "grpo_rollout_tokens_per_s": grpo, "ppo_rollout_tokens_per_s": ppo,
                  "grpo_over_generate": round(grpo / gen, 2), "ppo_over_generate": round(ppo / gen, 2), "rounds": runs}))
' "$runs" "$preset" "$params" "$max_new")
    rows="${rows:+$rows,}$row"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
json="{\"bench\":\"rl_rollouts\",\"threads\":$threads,\"rounds\":$rounds,\"load_before\":\"$load_before\",\"load_after\":\"$load_after\",\"rows\":[$rows]}"
mkdir -p bench/results
echo "$json" | /usr/bin/python3 -m json.tool > bench/results/rl.json
echo "$json"
