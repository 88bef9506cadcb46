#!/usr/bin/env bash
# Inference benchmark: cllm vs llama.cpp on the same GGUF files, one JSON
# object on stdout (also bench/results/infer.json).
#   - models: random-weight GPT-2 124M (preset gpt2) and Llama ~110M (preset
#     llama-110m), written by cllm in f32 and quantized by `cllm quantize` to
#     f16, bf16, q8_0, q4_0 (bench_infer make);
#   - per file and thread count (1, 2): prompt tokens/s at 128 and 512
#     tokens, generation tokens/s over 64 tokens, for cllm (bench_infer run)
#     and llama.cpp (llama-bench -p 128,512 -n 64, if found), with ratio
#     cllm / llama.cpp per row;
#   - decode roofline: weight bytes read per token / measured read bandwidth
#     (bench_infer bw) = the tokens/s a memory-bound decoder can reach;
#   - load average before and after (the 2 cores are shared; rerun when busy).
# llama-bench: $LLAMA_BENCH, else /tmp/llama-src/build/bin/llama-bench (built
# from node-llama-cpp's llama.cpp bundle: see docs in bench/README or the
# report; cmake -DGGML_NATIVE=ON, gcc 12 needs -mno-amx-*). Without it the
# llama.cpp columns are null.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${CLLM_BUILD:-build}
make -s BUILD="$build" "$build/bench/bench_infer" >&2
bench=$build/bench/bench_infer
lb=${LLAMA_BENCH:-/tmp/llama-src/build/bin/llama-bench}
[ -x "$lb" ] || lb=""
tmp=${BENCH_DIR:-$(mktemp -d /tmp/cllm-bench-infer-XXXXXX)}
mkdir -p "$tmp"
export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-10000}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
presets=${PRESETS:-"gpt2 llama-110m"}
types=${TYPES:-"f32 f16 q8_0 q4_0"}
rows=$tmp/rows.jsonl
: >"$rows"
for p in $presets; do
    [ -f "$tmp/$p-q4_0.gguf" ] || "$bench" make "$p" "$tmp"
    for t in $types; do
        f=$tmp/$p-$t.gguf
        for th in 1 2; do
            c=$("$bench" run "$f" "$th")
            l=null
            if [ -n "$lb" ]; then
                l=$("$lb" -m "$f" -p 128,512 -n 64 -t "$th" -r 3 -o json 2>/dev/null || echo null)
            fi
            /usr/bin/python3 - "$p" "$t" "$th" "$c" "$l" >>"$rows" <<'PY'
import json, sys
preset, typ, th, c, l = sys.argv[1:]
c = json.loads(c)
row = {"model": preset, "type": typ, "threads": int(th), "cllm": {k: c[k] for k in ("pp128", "pp512", "tg64")},
       "decode_weight_bytes": c["decode_weight_bytes"], "llama_cpp": None, "ratio": None}
try:
    l = json.loads(l)
except Exception:
    l = None
if l:
    lc = {}
    for r in l:
        if r.get("n_gen", 0) == 0: lc["pp%d" % r["n_prompt"]] = r["avg_ts"]
        else: lc["tg%d" % r["n_gen"]] = r["avg_ts"]
    row["llama_cpp"] = lc
    row["ratio"] = {k: round(row["cllm"][k] / lc[k], 3) for k in row["cllm"] if k in lc and lc[k]}
print(json.dumps(row))
PY
        done
    done
done
bw1=$("$bench" bw 1)
bw2=$("$bench" bw 2)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p bench/results
/usr/bin/python3 - "$rows" "$bw1" "$bw2" "$load_before" "$load_after" "${lb:-}" <<'PY' | tee bench/results/infer.json
import json, sys
rows = [json.loads(x) for x in open(sys.argv[1]) if x.strip()]
bw = {1: json.loads(sys.argv[2])["read_gb_s"], 2: json.loads(sys.argv[3])["read_gb_s"]}
for r in rows:
    gbs = bw[r["threads"]]
    r["decode_roofline_tok_s"] = round(gbs * 1e9 / r["decode_weight_bytes"], 2)
    r["cllm_tg_vs_roofline"] = round(r["cllm"]["tg64"] / r["decode_roofline_tok_s"], 3)
print(json.dumps({"bench": "infer", "read_bandwidth_gb_s": bw, "load_before": sys.argv[4], "load_after": sys.argv[5],
                  "llama_bench": sys.argv[6] or None, "rows": rows}, indent=1))
PY
