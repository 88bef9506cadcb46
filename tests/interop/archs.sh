#!/usr/bin/env bash
# archs.sh: cllm-written files of the architectures beyond gpt2/llama run in
# llama.cpp with cllm's logits: qwen2 (q/k/v biases, NEOX rope), llama with
# linear rope scaling (llama.rope.scaling.type/factor) and with Llama-3.1
# scaling (rope_freqs.weight), Mistral-style llama files with a sliding
# window (cllm.sliding_window), each in f32, f16, q8_0 and q4_0
# (tests/interop/make_models.c --archs, which also checks cllm's KV-cache
# decoding against its full forwards). llama.cpp's side is
# tests/interop/llama_logits.c linked against the libllama of
# /tmp/llama-src/build/bin (bench/build_llama_cpp.sh).
# Not part of `make test`. Fails (does not skip) without llama.cpp.
# Tolerances, as tests/interop/compare.mjs states them for gpt2/llama:
#   f32:  max |logit difference| <= 1e-3 * max|logit| + 1e-4, mean KL <= 1e-4,
#         the same top-1 at every prompt position, the same 8 greedy tokens;
#   f16:  3e-3 * max|logit| + 1e-4, otherwise as f32;
#   q8_0 / q4_0: llama.cpp quantizes activations to 8 bits for its quantized
#         dot products, cllm's reference here uses f32 activations, so: mean
#         KL <= 1e-2 (q8_0) / 2e-2 (q4_0) and the first 4 greedy tokens equal.
# Sliding window: llama.cpp's `llama` graph (the arch its converter gives
# Mistral) has no window and runs every Mistral file with full attention.
# mistral-w16's window covers all 14 positions used, so it must match in
# full; for mistral-w4 only the prompt positions 0..3 (where the window cuts
# nothing) are compared, greedy tokens are not, and the difference at
# positions 4, 5 is printed to show llama.cpp ignoring the window.
# Usage: bash tests/interop/archs.sh [LLAMA_SRC]   (default /tmp/llama-src)
# Ends with "N passed, N failed"; exits non-zero on any failure.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
src=${1:-/tmp/llama-src}
bin=$src/build/bin
. "$(dirname "$0")/../lib.sh"
[ -f "$bin/libllama.so" ] && [ -f "$src/include/llama.h" ] || fail_all "archs: llama.cpp not found under $src; run bench/build_llama_cpp.sh"
build=${CLLM_INTEROP_BUILD:-/tmp/cllm-interop-build}
lib_workdir cllm-archs
cd "$root"
make -s -j2 BUILD="$build" MODULES="core formats model layers kernels" "$build/libcllm.a" >/dev/null ||
    fail_all "archs: building libcllm.a failed"
cc -std=c11 -O2 -D_GNU_SOURCE -fopenmp -Iinclude tests/interop/make_models.c "$build/libcllm.a" \
    -ldnnl -lm -lpthread -o "$work/make_models" || fail_all "archs: make_models does not build"
cc -std=c11 -O2 -I"$src/include" -I"$src/ggml/include" tests/interop/llama_logits.c -L"$bin" -lllama \
    -Wl,-rpath,"$bin" -o "$work/llama_logits" || fail_all "archs: llama_logits does not build"
check "make_models --archs (KV-cache decoding = full forwards)" "$work/make_models" "$work" --archs
for js in "$work"/*.json; do
    name=$(basename "$js" .json)
    toks=$(/usr/bin/python3 -c 'import json,sys; print(" ".join(map(str, json.load(open(sys.argv[1]))["tokens"])))' "$js")
    if ! "$work/llama_logits" "$work/$name.gguf" 8 $toks > "$work/$name.llama" 2> "$work/$name.err"; then
        bad "$name: llama.cpp did not run it: $(head -c 300 "$work/$name.err")"
        continue
    fi
    line=$(/usr/bin/python3 - "$js" "$work/$name.llama" "$name" <<'PY'
import json, math, sys
want, got, name = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
quant = "q8_0" in name or "q4_0" in name
T, V = len(want["tokens"]), len(want["logits"][0])
window_cut = "mistral-w4" in name  # llama.cpp ignores the window: compare where it cuts nothing
extra = ""
if window_cut:
    later = max(abs(a - b) for t in range(4, T) for a, b in zip(want["logits"][t], got["logits"][t]))
    extra = ", positions 4..%d (window 4 cuts, llama.cpp attends fully): max|dlogit| %.2e" % (T - 1, later)
    T = 4
max_diff = max(abs(a - b) for t in range(T) for a, b in zip(want["logits"][t], got["logits"][t]))
max_abs = max(abs(a) for t in range(T) for a in want["logits"][t])
def log_softmax(r):
    m = max(r); z = math.log(sum(math.exp(x - m) for x in r)) + m
    return [x - z for x in r]
kl, top1 = 0.0, 0
for t in range(T):
    lp, lq = log_softmax(want["logits"][t]), log_softmax(got["logits"][t])
    kl += sum(math.exp(p) * (p - q) for p, q in zip(lp, lq))
    am = lambda r: max(range(V), key=lambda i: r[i])
    top1 += am(want["logits"][t]) == am(got["logits"][t])
kl /= T
tol = math.inf if quant else (3e-3 if "f16" in name else 1e-3) * max_abs + 1e-4
kl_tol = (2e-2 if "q4_0" in name else 1e-2) if quant else 1e-4
need = 0 if window_cut else 4 if quant else len(want["greedy"])
greedy_ok = got["greedy"][:need] == want["greedy"][:need]
ok = max_diff <= tol and kl <= kl_tol and (quant or top1 == T) and greedy_ok
print("%s %s: max|dlogit| %.2e (tol %.2e, max|logit| %.2f), KL %.2e (tol %.0e), top-1 %d/%d, greedy llama.cpp %s cllm %s"
      % ("ok" if ok else "FAIL", name, max_diff, tol, max_abs, kl, kl_tol, top1, T, got["greedy"], want["greedy"]) + extra)
PY
)
    echo "$line"
    case $line in ok\ *) ok "$name matches llama.cpp" ;; *) bad "$name matches llama.cpp" ;; esac
done
finish
