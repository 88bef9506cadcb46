#!/usr/bin/env bash
# bench_sft.sh: SFT throughput and memory, full fine-tuning vs LoRA, for a
# ~10M (llama-10m) and a ~100M (llama-110m) model with a byte vocabulary.
# Each base is made by `cllm pretrain` for 1 step (weights only matter for
# shape); each run is `cllm sft` for STEPS steps on synthetic chat data.
# Reports, per model and mode: tokens/s (row positions) and assistant
# tokens/s from cllm's summary, peak RSS (/usr/bin/time), trainable
# parameters, gradient + AdamW bytes. Prints one JSON object on stdout.
# Usage: bench/bench_sft.sh [BUILD_DIR]   (env: STEPS=5 THREADS=2 SEQ=128 BATCH=4)
set -eu
build=${1:-build}
bin=$build/cllm
steps=${STEPS:-5}
threads=${THREADS:-2}
seq=${SEQ:-128}
batch=${BATCH:-4}
work=$(mktemp -d /tmp/cllm-bench-sft.XXXXXX)
trap 'rm -rf "$work"' EXIT
for i in $(seq 1 50); do echo "a small text for the base model to read once. "; done > "$work/text.txt"
for i in $(seq 1 200); do
    echo "{\"messages\": [{\"role\": \"user\", \"content\": \"What is $i plus $i?\"}, {\"role\": \"assistant\", \"content\": \"$i plus $i is $((2 * i)).\"}]}"
done > "$work/chat.jsonl"
load=$(cut -d' ' -f1 /proc/loadavg)
results=""
for preset in llama-10m llama-110m; do
    "$bin" pretrain --data "$work/text.txt" --preset "$preset" --steps 1 --batch 1 --seq 64 --context "$seq" \
        --eval-every 0 --warmup 0 --threads "$threads" --out "$work/pre-$preset" --no-progress >/dev/null 2>&1
    base=$work/pre-$preset/model.gguf
    for mode in full lora; do
        extra=""
        [ "$mode" = lora ] && extra="--lora-rank 16 --lora-targets q,k,v,o,up,down,gate --lr 1e-3"
        # shellcheck disable=SC2086
        /usr/bin/time -f "%M" -o "$work/rss" "$bin" sft --model "$base" --data "$work/chat.jsonl" \
            --out "$work/$preset-$mode" --steps "$steps" --batch "$batch" --seq "$seq" --pack \
            --threads "$threads" --quiet $extra > "$work/out.json"
        rss_kb=$(cat "$work/rss")
        row=$(/usr/bin/python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
print(json.dumps({"model": sys.argv[2], "mode": sys.argv[3], "tokens_per_s": d["tokens_per_s"],
  "assistant_tokens_per_s": d["assistant_tokens_per_s"], "trainable_params": d["trainable_params"],
  "total_params": d["total_params"], "grad_bytes": d["grad_bytes"], "optimizer_bytes": d["optimizer_bytes"],
  "peak_rss_bytes": int(sys.argv[4]) * 1024, "steps": d["steps"]}))' "$work/out.json" "$preset" "$mode" "$rss_kb")
        results="${results:+$results,}$row"
        rm -rf "$work/$preset-$mode"
    done
done
echo "{\"bench\": \"sft\", \"threads\": $threads, \"seq\": $seq, \"batch\": $batch, \"steps\": $steps, \"loadavg_before\": $load, \"runs\": [$results]}"
