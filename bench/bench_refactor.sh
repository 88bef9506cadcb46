#!/usr/bin/env bash
# Same-machine, same-run comparison of two cllm builds (a refactor must not
# cost speed): inference (bench_infer run: pp128, pp512, tg64; every preset,
# type and thread count of bench_infer.sh) and training (bench_train: ms per
# step at the GPT-2 124M and ~10M shapes), the two builds alternating in
# ROUNDS rounds, each side's best kept (the 2 cores are shared; best-of
# removes slow phases that hit either side). One JSON object on stdout and
# in $OUT (default bench/results/refactor.json): per cell both sides' best
# and new/base ratio, the load average before and after.
#
#   BASE=/path/to/old/checkout bash bench/bench_refactor.sh
#
# BASE is a checkout of the earlier commit with its bench binaries built
# (make build/bench/bench_infer build/bench/bench_train there).
set -euo pipefail
cd "$(dirname "$0")/.."
base=${BASE:?BASE=checkout of the earlier commit}
new=${CLLM_BUILD:-build}
rounds=${ROUNDS:-2}
out=${OUT:-bench/results/refactor.json}
export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-10000}
make -s BUILD="$new" "$new/bench/bench_infer" "$new/bench/bench_train" >&2
(cd "$base" && make -s build/bench/bench_infer build/bench/bench_train >&2)
tmp=$(mktemp -d /tmp/cllm-bench-refactor-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
rows=$tmp/rows.jsonl
for p in ${PRESETS:-gpt2 llama-110m}; do
    "$new/bench/bench_infer" make "$p" "$tmp" >&2
    for t in ${TYPES:-f32 f16 bf16 q8_0 q4_0}; do
        for th in 1 2; do
            for _ in $(seq 1 "$rounds"); do
                echo "{\"side\": \"base\", \"model\": \"$p\", \"type\": \"$t\", \"threads\": $th, \"r\": $("$base/build/bench/bench_infer" run "$tmp/$p-$t.gguf" "$th" 0)}" >>"$rows"
                echo "{\"side\": \"new\", \"model\": \"$p\", \"type\": \"$t\", \"threads\": $th, \"r\": $("$new/bench/bench_infer" run "$tmp/$p-$t.gguf" "$th" 0)}" >>"$rows"
            done
        done
    done
done
# training: bench_train at bench_train.sh's two shapes (GPT-2 124M at B=4 T=64, a ~10M model), 2 threads
train() { # build layers heads embd vocab ctx batch seq
    "$1/bench_train" --preset gpt2 --set n_layer="$2" --set n_head="$3" --set n_kv_head="$3" --set n_embd="$4" \
        --set ffn_hidden=$((4 * $4)) --set vocab_size="$5" --set context_length="$6" --batch "$7" --seq "$8" \
        --steps "${STEPS:-8}" --threads 2 2>/dev/null | tail -1
}
for _ in $(seq 1 "$rounds"); do
    for side in base new; do
        b=$new/bench; [ $side = base ] && b=$base/build/bench
        for shape in "12 12 768 50257 1024 4 64" "6 6 384 8192 256 8 128"; do
            echo "{\"side\": \"$side\", \"train\": \"$shape\", \"r\": $(train "$b" $shape)}" >>"$rows"
        done
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
/usr/bin/python3 - "$rows" "$load_before" "$load_after" "$rounds" <<'PY' | tee "$out"
import json, sys
rows = [json.loads(x) for x in open(sys.argv[1]) if x.strip()]
best, cells = {}, []
for r in rows:
    if "train" in r:
        key = ("train", r["train"])
        b = best.setdefault(key, {}).setdefault(r["side"], {})
        b["ms_per_step"] = min(b.get("ms_per_step", 1e30), r["r"]["ms_per_step_median"])
    else:
        key = (r["model"], r["type"], r["threads"])
        b = best.setdefault(key, {}).setdefault(r["side"], {})
        for k in ("pp128", "pp512", "tg64"):
            b[k] = max(b.get(k, 0), r["r"][k])
out = []
for key, sides in best.items():
    if key[0] == "train":
        ratio = {"speed": round(sides["base"]["ms_per_step"] / sides["new"]["ms_per_step"], 3)}
        out.append({"train": "layers heads embd vocab ctx batch seq = " + key[1], "base": sides["base"],
                    "new": sides["new"], "new_over_base": ratio})
    else:
        ratio = {k: round(sides["new"][k] / sides["base"][k], 3) for k in sides["new"]}
        out.append({"model": key[0], "type": key[1], "threads": key[2], "base": sides["base"], "new": sides["new"],
                    "new_over_base": ratio})
allr = [v for o in out for v in o["new_over_base"].values()]
print(json.dumps({"bench": "refactor", "rounds": int(sys.argv[4]), "load_before": sys.argv[2],
                  "load_after": sys.argv[3], "min_ratio": min(allr), "median_ratio": sorted(allr)[len(allr) // 2],
                  "cells": out}, indent=1))
PY
