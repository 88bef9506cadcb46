#!/usr/bin/env bash
# bench_bf16.sh: mixed-precision training throughput, measured in one run:
# cllm fp32, cllm --precision bf16, PyTorch fp32 and PyTorch bf16
# (torch.autocast("cpu", dtype=torch.bfloat16)) on the same GPT-2-style
# shape, batch and thread count. Prints one JSON object per shape and writes
# them all to $OUT (default bench/results/train_bf16.json).
#
#   bash bench/bench_bf16.sh                 # GPT-2 124M at B=4,T=64 and a ~10M model, 2 threads
#   STEPS=5 ROUNDS=1 bash bench/bench_bf16.sh
#
# Each round runs the four peers in turn (cllm fp32, cllm bf16, torch fp32,
# torch bf16), so a busy neighbour hits all alike; each is reported at its
# best round with every round's tokens/s and the load average before each
# run. bench_train reports the GEMM peak at the precision it ran (fp32: the
# fp32 sgemm; bf16: oneDNN's bf16 matmul on pre-rounded operands) and the
# achieved GFLOP/s of the whole step against it. As in bench_train.sh the
# OpenMP wait policy is GOMP_SPINCOUNT=20000 for every peer, and the
# OpenBLAS overrides (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE) are removed for
# PyTorch (they slow it several-fold; the JSON records what was removed).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
steps=${STEPS:-10}
threads=${THREADS:-2}
rounds=${ROUNDS:-3}
out=${OUT:-bench/results/train_bf16.json}
export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-20000}
removed=$(env | grep -E '^OPENBLAS_(CORETYPE|L2_SIZE)=' | tr '\n' ' ' || true)
make -s -j2 BUILD="$build" "$build/bench/bench_train" >/dev/null
load() { cut -d' ' -f1 /proc/loadavg; }
rows=$(mktemp /tmp/cllm-bench-bf16.XXXXXX)
trap 'rm -f "$rows"' EXIT
run_shape() { # layers heads embd vocab ctx batch seq
    local r p
    for ((r = 0; r < rounds; r++)); do
        for p in fp32 bf16; do
            echo "{\"shape\": \"L$1-C$3\", \"side\": \"cllm_$p\", \"load\": $(load), \"run\": $("$build/bench/bench_train" --preset gpt2 \
                --set n_layer="$1" --set n_head="$2" --set n_kv_head="$2" --set n_embd="$3" \
                --set ffn_hidden=$((4 * $3)) --set vocab_size="$4" --set context_length="$5" \
                --batch "$6" --seq "$7" --steps "$steps" --threads "$threads" --precision "$p")}" >>"$rows"
        done
        for p in fp32 bf16; do
            echo "{\"shape\": \"L$1-C$3\", \"side\": \"pytorch_$p\", \"load\": $(load), \"run\": $(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
                /usr/bin/python3 bench/torch_train.py --layers "$1" --heads "$2" --embd "$3" --vocab "$4" \
                --ctx "$5" --batch "$6" --seq "$7" --steps "$steps" --threads "$threads" --precision "$p")}" >>"$rows"
        done
    done
}
run_shape 12 12 768 50257 1024 4 64 # GPT-2 124M, the issue's shape
run_shape 6 6 384 8192 256 8 128    # a ~10M GPT-2-style model
/usr/bin/python3 - "$rows" "$out" "$removed" <<'PY'
import json, os, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
results = []
for key in dict.fromkeys(r["shape"] for r in runs):
    rs = [r for r in runs if r["shape"] == key]
    best = {}
    for r in rs:
        s = r["side"]
        if s not in best or r["run"]["tokens_per_s"] > best[s]["run"]["tokens_per_s"]:
            best[s] = r
    tps = lambda s: best[s]["run"]["tokens_per_s"]
    c16 = best["cllm_bf16"]["run"]
    row = {
        "shape": key, "batch": c16["batch"], "seq": c16["seq"], "threads": c16["threads"], "params": c16["params"],
        "tokens_per_s": {s: tps(s) for s in best},
        "ratio_cllm_bf16_over_cllm_fp32": round(tps("cllm_bf16") / tps("cllm_fp32"), 3),
        "ratio_cllm_bf16_over_pytorch_bf16": round(tps("cllm_bf16") / tps("pytorch_bf16"), 3),
        "ratio_cllm_fp32_over_pytorch_fp32": round(tps("cllm_fp32") / tps("pytorch_fp32"), 3),
        "ratio_pytorch_bf16_over_pytorch_fp32": round(tps("pytorch_bf16") / tps("pytorch_fp32"), 3),
        "cllm_bf16_achieved_gflops": c16["achieved_gflops"], "bf16_gemm_peak_gflops": c16["gemm_peak_gflops"],
        "cllm_bf16_fraction_of_bf16_peak": c16["mfu"],
        "cllm_fp32_achieved_gflops": best["cllm_fp32"]["run"]["achieved_gflops"],
        "fp32_gemm_peak_gflops": best["cllm_fp32"]["run"]["gemm_peak_gflops"],
        "peak_rss_mb": {s: best[s]["run"]["peak_rss_mb"] for s in best},
        "step_ms_breakdown_cllm": {p: {k: best["cllm_" + p]["run"][k] for k in ("forward_ms", "backward_ms", "optimizer_ms")}
                                   for p in ("fp32", "bf16")},
        "bf16_kernel": c16["bf16_kernel"],
        "pytorch": {k: best["pytorch_bf16"]["run"].get(k) for k in ("torch_version", "blas", "mkldnn", "env")},
        "openblas_overrides_removed_for_pytorch": sys.argv[3].strip() or "none set",
        "rounds": [{"side": r["side"], "tokens_per_s": r["run"]["tokens_per_s"], "load": r["load"]} for r in rs],
        "gomp_spincount": os.environ.get("GOMP_SPINCOUNT"),
    }
    results.append(row)
    print(json.dumps(row, indent=1))
os.makedirs(os.path.dirname(sys.argv[2]) or ".", exist_ok=True)
json.dump(results, open(sys.argv[2], "w"), indent=1)
PY
