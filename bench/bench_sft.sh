#!/usr/bin/env bash
# bench_sft.sh: SFT throughput and memory, full fine-tuning vs LoRA, for a
# ~10M (llama-10m) and a ~100M (llama-110m) model with a byte vocabulary,
# next to pre-training and a PyTorch peer at the same B x T, measured in the
# same run. Prints one JSON object on stdout and writes bench/results/sft.json.
#
#   bash bench/bench_sft.sh                       # both models, 2 threads
#   STEPS=4 PRESETS=llama-10m THREADS=1 bash bench/bench_sft.sh
#   env: BUILD=build STEPS=6 THREADS=2 SEQ=128 BATCH=4 ROUNDS=2 TORCH=1
#        MODES="full lora" (add full_bf16 lora_bf16: the same with --precision bf16,
#        alternating with the fp32 runs) OUT=bench/results/sft.json
#
# Per model (its base made by `cllm pretrain` for 1 step; weights only matter
# for shape), ROUNDS rounds alternate, so a busy neighbour hits all alike:
#   pretrain  `cllm pretrain` B x T, STEPS steps
#   full      `cllm sft --pack` full fine-tuning on synthetic chat rows
#   lora      the same with rank-16 LoRA on q,k,v,o,up,down,gate
#   pytorch   bench/torch_sft.py: the same Llama shape, packed rows with a
#             block-diagonal causal mask, masked cross-entropy, AdamW
# Throughput is steady state: B*T / median step time over the steps after
# the first (the first pays oneDNN JIT and page faults), from each side's
# own step timer; startup (loading, tokenizing, packing) and checkpoint /
# final-save seconds of the SFT runs are reported beside it, never inside it.
# Each side is reported at its best round; ratios: sft/pretrain (should be
# ~1: same engine, plus segment masks), lora/full, cllm/pytorch.
# Memory: trainable parameters, gradient + AdamW bytes (from cllm), peak RSS
# (/usr/bin/time) of each run.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
steps=${STEPS:-6}
threads=${THREADS:-2}
seq=${SEQ:-128}
batch=${BATCH:-4}
rounds=${ROUNDS:-2}
torch=${TORCH:-1}
presets=${PRESETS:-"llama-10m llama-110m"}
modes=${MODES:-"full lora"}
result=${OUT:-bench/results/sft.json}
export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-20000} # what cllm sets for itself; applied to PyTorch's libgomp too
make -s -j2 BUILD="$build" "$build/cllm" >&2
bin=$build/cllm
work=$(mktemp -d /tmp/cllm-bench-sft.XXXXXX)
trap 'rm -rf "$work"' EXIT
for i in $(seq 1 50); do echo "a small text for the base model to read once. "; done > "$work/text.txt"
for i in $(seq 1 200); do
    echo "{\"messages\": [{\"role\": \"user\", \"content\": \"What is $i plus $i?\"}, {\"role\": \"assistant\", \"content\": \"$i plus $i is $((2 * i)).\"}]}"
done > "$work/chat.jsonl"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
rows="$work/rows.jsonl"
: > "$rows"
# one JSON line per run into $rows: {"model","kind","round","load",...fields}
emit() { /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(json.loads(sys.argv[2])); print(json.dumps(d))' "$1" "$2" >> "$rows"; }
for preset in $presets; do
    "$bin" pretrain --data "$work/text.txt" --preset "$preset" --steps 1 --batch 1 --seq 64 --context "$seq" \
        --eval-every 0 --warmup 0 --threads "$threads" --out "$work/pre-$preset" --no-progress >/dev/null 2>&1
    base=$work/pre-$preset/model.gguf
    shape=$("$bin" info -m "$base" --json)
    for ((r = 0; r < rounds; r++)); do
        tag="{\"model\": \"$preset\", \"round\": $r, \"load\": $(cut -d' ' -f1 /proc/loadavg)"
        # pre-training at the same B x T: steady step time from its train.csv (tokens_per_s per step)
        rm -rf "$work/pt"
        /usr/bin/time -f "%M" -o "$work/rss" "$bin" pretrain --data "$work/text.txt" --preset "$preset" \
            --steps "$steps" --batch "$batch" --seq "$seq" --context "$seq" --eval-every 0 --warmup 0 \
            --threads "$threads" --out "$work/pt" --no-progress >/dev/null 2>&1
        emit "$tag, \"kind\": \"pretrain\"}" "$(/usr/bin/python3 -c '
import csv, json, statistics, sys
tps = [float(r["tokens_per_s"]) for r in csv.DictReader(open(sys.argv[1]))]
steady = tps[1:] or tps
print(json.dumps({"tokens_per_s": round(statistics.median(steady), 1), "peak_rss_bytes": int(open(sys.argv[2]).read()) * 1024}))
' "$work/pt/train.csv" "$work/rss")"
        for mode in $modes; do
            extra=""
            case $mode in lora*) extra="--lora-rank 16 --lora-targets q,k,v,o,up,down,gate --lr 1e-3" ;; esac
            case $mode in *_bf16) extra="$extra --precision bf16" ;; esac
            rm -rf "$work/sft"
            # shellcheck disable=SC2086
            /usr/bin/time -f "%M" -o "$work/rss" "$bin" sft --json --model "$base" --data "$work/chat.jsonl" \
                --out "$work/sft" --steps "$steps" --batch "$batch" --seq "$seq" --pack \
                --threads "$threads" --quiet $extra > "$work/out.json"
            emit "$tag, \"kind\": \"$mode\"}" "$(/usr/bin/python3 -c '
import csv, json, statistics, sys
d = json.load(open(sys.argv[1]))
tps = [float(r["tokens_per_s"]) for r in csv.DictReader(open(sys.argv[2]))]
steady = tps[1:] or tps
print(json.dumps({"tokens_per_s": round(statistics.median(steady), 1),
  "tokens_per_s_all_steps": d["step_tokens_per_s"], "assistant_tokens_per_s_all_steps": d["assistant_tokens_per_s"],
  "startup_seconds": d["startup_seconds"], "save_seconds": d["save_seconds"],
  "trainable_params": d["trainable_params"], "total_params": d["total_params"], "grad_bytes": d["grad_bytes"],
  "optimizer_bytes": d["optimizer_bytes"], "peak_rss_bytes": int(open(sys.argv[3]).read()) * 1024}))
' "$work/out.json" "$work/sft/train.csv" "$work/rss")"
        done
        if [ "$torch" = 1 ]; then
            args=$(/usr/bin/python3 -c '
import json, sys
c = json.loads(sys.argv[1])["config"]
print(c["n_layer"], c["n_head"], c["n_kv_head"], c["n_embd"], c["ffn_hidden"], c["vocab_size"])' "$shape")
            read -r L NH NKV C H V <<< "$args"
            emit "$tag, \"kind\": \"pytorch\"}" "$(/usr/bin/python3 bench/torch_sft.py --layers "$L" --heads "$NH" \
                --kv-heads "$NKV" --embd "$C" --ffn "$H" --vocab "$V" --batch "$batch" --seq "$seq" \
                --steps "$steps" --threads "$threads")"
        fi
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
json=$(/usr/bin/python3 - "$rows" "$threads" "$seq" "$batch" "$steps" "$rounds" "$load_before" "$load_after" <<'EOF'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
out = {"bench": "sft", "threads": int(sys.argv[2]), "seq": int(sys.argv[3]), "batch": int(sys.argv[4]),
       "steps": int(sys.argv[5]), "rounds": int(sys.argv[6]), "load_before": sys.argv[7], "load_after": sys.argv[8],
       "throughput": "B*T / median step time over steps 2..N, best round", "models": []}
for model in dict.fromkeys(r["model"] for r in runs):
    best, every = {}, {}
    for r in runs:
        if r["model"] != model:
            continue
        every.setdefault(r["kind"], []).append({"tokens_per_s": r["tokens_per_s"], "load": r["load"]})
        if r["kind"] not in best or r["tokens_per_s"] > best[r["kind"]]["tokens_per_s"]:
            best[r["kind"]] = r
    row = {"model": model}
    for kind, r in best.items():
        row[kind] = {k: v for k, v in r.items() if k not in ("model", "kind", "round")}
        row[kind]["rounds"] = every[kind]
    ratio = lambda a, b: round(best[a]["tokens_per_s"] / best[b]["tokens_per_s"], 3) if a in best and b in best else None
    row["sft_full_over_pretrain"] = ratio("full", "pretrain")
    row["lora_over_full"] = ratio("lora", "full")
    row["cllm_sft_full_over_pytorch"] = ratio("full", "pytorch")
    row["full_bf16_over_full"] = ratio("full_bf16", "full")
    row["lora_bf16_over_lora"] = ratio("lora_bf16", "lora")
    out["models"].append(row)
print(json.dumps(out))
EOF
)
mkdir -p bench/results
echo "$json" | /usr/bin/python3 -m json.tool > "$result"
echo "$json"
