#!/usr/bin/env bash
# Inference benchmark: cllm vs llama.cpp on the same GGUF files, one JSON
# object on stdout (also bench/results/infer.json).
#   - models: random-weight GPT-2 124M (preset gpt2) and Llama ~110M (preset
#     llama-110m), written by cllm in f32 and quantized by `cllm quantize` to
#     f16, bf16, q8_0, q4_0 and llama-quantize's Q4_K_M mix (bench_infer make);
#   - TYPES (default f32 f16 bf16 q8_0 q4_0 q4_k_m) picks the files: any name
#     `cllm quantize --type` takes (q4_1 ... q6_k, q3_k_m, q5_k_m too);
#   - per file and thread count (1, 2): prompt tokens/s at 128 and 512
#     tokens, generation tokens/s over TG (default 64) tokens, for cllm (bench_infer run)
#     and llama.cpp (llama-bench -p 128,512 -n 64 -r 3, if found), with ratio
#     cllm / llama.cpp per row; ROUNDS (default 3) rounds alternate the two,
#     and each side reports its best: cllm's best of 3 runs per round,
#     llama.cpp's best repetition (samples_ts; the mean of the reps is kept
#     as llama_cpp_mean_of_reps);
#   - KV cache at depth (DEPTH, default 512; DEPTH=0 skips): tg64 after a
#     DEPTH-token prompt with cllm's f32, f16 and q8_0 caches (--cache-type),
#     and llama-bench -d DEPTH with its default f16 cache and with
#     -ctk q8_0 -ctv q8_0 -fa on (llama.cpp needs flash attention for a
#     quantized V cache); ratios tg64_depth_kv_f16 and _q8_0 = cllm /
#     llama.cpp with the same cache type;
#   - decode roofline: bytes one generated token reads (weights + the K/V rows
#     its attention reads at that context) / measured read bandwidth
#     (bench_infer bw: pre-faulted 1 GiB, AVX-512 loads, 90th percentile of
#     16 MiB slices, 1 and 2 threads) = the tokens/s a memory-bound decoder
#     can reach; cllm_tg_vs_roofline = measured tg64 / that;
#   - load average before and after (the 2 cores are shared; rerun when busy);
#   - BF16_PROMPT=own|onednn is passed to bench_infer (the route of bf16
#     prompt products); rows that ran oneDNN's bf16 matmul name its kernel
#     ("brg:avx512_core_amx" on AMX) in bf16_onednn_kernel.
# Output: $OUT (default bench/results/infer.json) and stdout.
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
depth=${DEPTH:-512}
rounds=${ROUNDS:-3}
out=${OUT:-bench/results/infer.json}
tg=${TG:-64}
export BENCH_TG=$tg
types=${TYPES:-"f32 f16 bf16 q8_0 q4_0 q4_k_m"}
rows=$tmp/rows.jsonl
: >"$rows"
for p in $presets; do
    missing=""
    for t in $types; do [ "$t" = f32 ] || [ -f "$tmp/$p-$t.gguf" ] || missing="$missing $t"; done
    # shellcheck disable=SC2086 # one argument per type
    [ -f "$tmp/$p-f32.gguf" ] && [ -z "$missing" ] || "$bench" make "$p" "$tmp" $missing
    for t in $types; do
        f=$tmp/$p-$t.gguf
        for th in 1 2; do
            # ROUNDS rounds, cllm and llama.cpp alternating: the shared machine
            # drifts between phases seconds to minutes long (GPT-2 f32 2-thread
            # decode, the same binaries a few seconds apart: cllm 69-110 tok/s,
            # llama.cpp 60-79), so each side keeps its best round; with 2 rounds
            # a 2-thread decode cell could still land on a slow phase for one side
            cs="" ls="" lds=""
            for _ in $(seq 1 "$rounds"); do
                cs="$cs$("$bench" run "$f" "$th" "$depth")"$'\n'
                if [ -n "$lb" ]; then
                    ls="$ls$("$lb" -m "$f" -p 128,512 -n "$tg" -t "$th" -r 3 -o jsonl 2>/dev/null)"$'\n'
                    if [ "$depth" -gt 0 ]; then
                        lds="$lds$("$lb" -m "$f" -p 0 -n 64 -d "$depth" -t "$th" -r 3 -o jsonl 2>/dev/null)"$'\n'
                        lds="$lds$("$lb" -m "$f" -p 0 -n 64 -d "$depth" -ctk q8_0 -ctv q8_0 -fa on -t "$th" -r 3 \
                                   -o jsonl 2>/dev/null)"$'\n'
                    fi
                fi
            done
            /usr/bin/python3 - "$p" "$t" "$th" "$cs" "$ls$lds" "$tg" >>"$rows" <<'PY'
import json, sys
preset, typ, th, cs, ls, tg = sys.argv[1:]
tgk = "tg" + tg
runs = [json.loads(x) for x in cs.splitlines() if x.strip()]
c = dict(runs[0])
for k in ("pp128", "pp512", tgk, "tg64_depth_kv_f32", "tg64_depth_kv_f16", "tg64_depth_kv_q8_0"):
    if k in c: c[k] = max(r[k] for r in runs)  # each run is already a best of 3
keys = ["pp128", "pp512", tgk] + [k for k in ("tg64_depth_kv_f32", "tg64_depth_kv_f16", "tg64_depth_kv_q8_0") if k in c]
row = {"model": preset, "type": typ, "threads": int(th), "cllm": {k: c[k] for k in keys},
       "decode_weight_bytes": c["decode_weight_bytes"], "decode_kv_bytes": c["decode_kv_bytes"],
       "llama_cpp": None, "ratio": None}
row["cllm_kernels"] = {"vec": c["kernels"], "quant": c.get("quant_kernels")}  # "amx" on CPUs with AMX-INT8
if c.get("bf16_onednn_kernel", "none") != "none":  # BF16_PROMPT=onednn, or auto on a CPU with AMX
    row["bf16_onednn_kernel"] = c["bf16_onednn_kernel"]
if "depth" in c:
    row["depth"] = c["depth"]
    row["decode_kv_bytes_depth"] = {t: c["decode_kv_bytes_depth_" + t] for t in ("f32", "f16", "q8_0")}
lrows = []
for x in ls.splitlines():
    try:
        lrows.append(json.loads(x))
    except Exception:
        pass
if lrows:
    lc, lmean = {}, {}
    for r in lrows:
        if r.get("n_gen", 0) == 0: key = "pp%d" % r["n_prompt"]
        elif r.get("n_depth", 0): key = "tg64_depth_kv_" + r["type_k"]  # f16 (llama.cpp's default) or q8_0
        else: key = "tg%d" % r["n_gen"]
        best = max(r.get("samples_ts") or [r["avg_ts"]])  # best repetition, as cllm's best of 3
        lc[key] = max(lc.get(key, 0), best)
        lmean[key] = max(lmean.get(key, 0), r["avg_ts"])
    row["llama_cpp"] = lc
    row["llama_cpp_mean_of_reps"] = lmean
    row["ratio"] = {k: round(row["cllm"][k] / lc[k], 3) for k in row["cllm"] if k in lc and lc[k]}
print(json.dumps(row))
PY
        done
    done
done
bw1=$("$bench" bw 1)
bw2=$("$bench" bw 2)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$(dirname "$out")"
/usr/bin/python3 - "$rows" "$bw1" "$bw2" "$load_before" "$load_after" "${lb:-}" "$rounds" "$tg" <<'PY' | tee "$out"
import json, sys
rows = [json.loads(x) for x in open(sys.argv[1]) if x.strip()]
bwj = {1: json.loads(sys.argv[2]), 2: json.loads(sys.argv[3])}
bw = {t: j["read_gb_s"] for t, j in bwj.items()}
for r in rows:
    gbs = bw[r["threads"]] * 1e9
    per_token = r["decode_weight_bytes"] + r["decode_kv_bytes"]  # weights + K/V rows read at positions 16..15+TG
    r["decode_bytes_per_token"] = per_token
    r["decode_roofline_tok_s"] = round(gbs / per_token, 2)
    r["cllm_tg_vs_roofline"] = round(r["cllm"]["tg" + sys.argv[8]] / r["decode_roofline_tok_s"], 3)
    if "decode_kv_bytes_depth" in r:
        roof = {k: round(gbs / (r["decode_weight_bytes"] + v), 2) for k, v in r["decode_kv_bytes_depth"].items()}
        r["decode_roofline_depth_tok_s"] = roof
        r["cllm_tg_depth_vs_roofline"] = {k: round(r["cllm"]["tg64_depth_kv_" + k] / roof[k], 3)
                                          for k in roof if r["cllm"].get("tg64_depth_kv_" + k, -1) > 0}
print(json.dumps({"bench": "infer", "read_bandwidth_gb_s": bw, "bandwidth": bwj, "load_before": sys.argv[4],
                  "load_after": sys.argv[5], "llama_bench": sys.argv[6] or None, "rounds": int(sys.argv[7]), "tg": int(sys.argv[8]),
                  "rows": rows}, indent=1))
PY
