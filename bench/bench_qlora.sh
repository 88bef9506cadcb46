#!/usr/bin/env bash
# bench_qlora.sh: peak RSS and step time of `cllm sft --lora-rank 8` on the
# same model stored as f32 (LoRA on an f32 copy), q8_0, q4_K and q4_k_m
# (QLoRA: matrices kept in their types), next to what `cllm info
# --lora-rank 8` predicts for each file. Prints one JSON object and writes
# bench/results/qlora.json.
#
#   bash bench/bench_qlora.sh
#   env: BUILD=build STEPS=5 THREADS=2 SEQ=64 BATCH=2 OUT=bench/results/qlora.json
#        SHAPE="--n-layer 8 --n-embd 512 --n-head 8 --n-kv-head 4 --ffn-hidden 1536"
#
# The base: `cllm pretrain` for one step on a byte vocabulary (25.3M
# parameters with the default SHAPE: weights matter only for their size),
# quantized by `cllm quantize`. Peak RSS is /usr/bin/time -v's maximum
# resident set size of the whole command (loading, tokenizing, STEPS steps,
# saving): the file's mapped pages count once touched.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
bin=$build/cllm
steps=${STEPS:-5}
threads=${THREADS:-2}
seq=${SEQ:-64}
batch=${BATCH:-2}
out=${OUT:-bench/results/qlora.json}
shape=${SHAPE:---n-layer 8 --n-embd 512 --n-head 8 --n-kv-head 4 --ffn-hidden 1536}
[ -x /usr/bin/time ] || { echo "bench_qlora.sh: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
work=$(mktemp -d /tmp/cllm-bench-qlora.XXXXXX)
trap 'rm -rf "$work"' EXIT
for i in $(seq 1 300); do echo "the cat sat on the mat. the dog ran to the log."; done >"$work/text.txt"
for i in $(seq 1 60); do
    echo '{"messages": [{"role": "user", "content": "where is the cat?"}, {"role": "assistant", "content": "on the mat."}]}'
    echo '{"prompt": "the dog ran to", "completion": " the log."}'
done >"$work/train.jsonl"
# shellcheck disable=SC2086
"$bin" pretrain --data "$work/text.txt" --preset llama-10m $shape --steps 1 --batch 1 --seq 64 --context 256 \
    --eval-every 0 --threads "$threads" --out "$work/pre" --no-progress >/dev/null 2>&1
cp "$work/pre/model.gguf" "$work/f32.gguf"
for t in q8_0 q4_K q4_k_m; do "$bin" quantize "$work/f32.gguf" "$work/$t.gguf" "$t" >/dev/null 2>&1; done
rows=()
for t in f32 q8_0 q4_K q4_k_m; do
    rm -rf "$work/run"
    /usr/bin/time -v "$bin" sft --model "$work/$t.gguf" --data "$work/train.jsonl" --out "$work/run" --steps "$steps" \
        --batch "$batch" --seq "$seq" --lora-rank 8 --threads "$threads" --quiet --json >"$work/sum.json" 2>"$work/time.txt"
    "$bin" info --json --no-speed -m "$work/$t.gguf" --lora-rank 8 -b "$batch" -t "$seq" >"$work/info.json"
    rows+=("$(/usr/bin/python3 - "$t" "$work" <<'EOF'
import json, os, re, sys
t, w = sys.argv[1], sys.argv[2]
tx = open(os.path.join(w, "time.txt")).read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", tx).group(1)) * 1024
s = json.load(open(os.path.join(w, "sum.json")))
f = json.load(open(os.path.join(w, "info.json")))["fine_tuning"]
print(json.dumps({"base": t, "file_bytes": os.path.getsize(os.path.join(w, t + ".gguf")), "peak_rss_bytes": rss,
                  "info_full_bytes": f["full_bytes"], "info_lora_f32_bytes": f["lora_f32_bytes"],
                  "info_qlora_bytes": f["qlora_bytes"], "ms_per_step_median": s.get("ms_per_step_median"),
                  "loss_first": s["loss_first"], "loss_last": s["loss_last"]}))
EOF
)")
done
json=$(printf '%s\n' "${rows[@]}" | /usr/bin/python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
print(json.dumps({"bench": "qlora", "steps": int(sys.argv[1]), "batch": int(sys.argv[2]), "seq": int(sys.argv[3]),
                  "threads": int(sys.argv[4]), "lora": "rank 8, targets q,v", "runs": rows}, indent=1))' \
    "$steps" "$batch" "$seq" "$threads")
echo "$json"
mkdir -p "$(dirname "$out")"
echo "$json" >"$out"
