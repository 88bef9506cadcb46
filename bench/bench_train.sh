#!/usr/bin/env bash
# Training throughput: cllm vs PyTorch (Debian python3-torch, CPU, fp32) on
# the same model shape, batch and thread count, measured in the same run.
# Prints one JSON object per shape with both measurements and their ratio.
#
#   bash bench/bench_train.sh            # GPT-2 124M at B=4,T=64 and llama-10m, 2 threads
#   STEPS=5 THREADS=1 bash bench/bench_train.sh
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
steps=${STEPS:-10}
threads=${THREADS:-2}
make -s -j2 BUILD="$build" "$build/bench/bench_train" >/dev/null
load_before=$(cut -d' ' -f1 /proc/loadavg)
run_shape() { # layers heads embd vocab ctx batch seq: a GPT-2-style shape for both sides
    local cllm torch
    cllm=$("$build/bench/bench_train" --preset gpt2 --set n_layer="$1" --set n_head="$2" --set n_kv_head="$2" \
           --set n_embd="$3" --set ffn_hidden=$((4 * $3)) --set vocab_size="$4" --set context_length="$5" \
           --batch "$6" --seq "$7" --steps "$steps" --threads "$threads")
    torch=$(/usr/bin/python3 bench/torch_train.py --layers "$1" --heads "$2" --embd "$3" --vocab "$4" \
            --ctx "$5" --batch "$6" --seq "$7" --steps "$steps" --threads "$threads")
    /usr/bin/python3 - "$cllm" "$torch" "$load_before" <<'PY'
import json, sys
c, t, load = json.loads(sys.argv[1]), json.loads(sys.argv[2]), float(sys.argv[3])
print(json.dumps({
    "shape": "L%d-C%d-V%d" % (c["layers"], c["embd"], c["vocab"]), "batch": c["batch"], "seq": c["seq"], "threads": c["threads"],
    "cllm": c, "pytorch": t,
    "tokens_per_s_ratio_cllm_over_pytorch": round(c["tokens_per_s"] / t["tokens_per_s"], 3),
    "peak_rss_ratio_cllm_over_pytorch": round(c["peak_rss_mb"] / t["peak_rss_mb"], 3),
    "load_average_before": load,
}, indent=1))
PY
}
run_shape 12 12 768 50257 1024 4 64   # GPT-2 124M, the issue's shape
run_shape 6 6 384 8192 256 8 128      # a ~10M GPT-2-style model
