#!/usr/bin/env bash
# run.sh: llama.cpp interop check for cllm's GGUF writer (not part of
# `make test`: node-llama-cpp is a ~700 MB npm package and loading 8 models
# takes about a minute). Builds the library, writes gpt2/llama models in f32,
# f16, q8_0 and q4_0 with tests/interop/make_models.c, and has llama.cpp
# (node-llama-cpp, CPU) compare next-token logits and greedy continuations
# (tests/interop/compare.mjs states the tolerances); quant_ref.c compares
# cllm's f16/bf16/q8_0/q4_0 encoders byte for byte with ggml's reference
# functions from the same llama.cpp build.
# Usage: bash tests/interop/run.sh   (from the repository root)
# Ends with "N passed, N failed"; exits non-zero on any failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${CLLM_INTEROP_BUILD:-/tmp/cllm-interop-build}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$root"
make -s -j2 BUILD="$build" MODULES="core formats model layers kernels" "$build/libcllm.a" >/dev/null
cc -std=c11 -O2 -D_GNU_SOURCE -fopenmp -Iinclude tests/interop/make_models.c "$build/libcllm.a" \
    -ldnnl -lm -lpthread -o "$out/make_models"
"$out/make_models" "$out"
cc -std=c11 -O2 -D_GNU_SOURCE -Iinclude tests/interop/quant_ref.c "$build/libcllm.a" -ldl -lm -o "$out/quant_ref"
cd tests/interop
# `npm install` (pinned by package-lock.json), not `npm ci`: npm 11 wants the
# lock to list every platform's optional prebuilt package, and the registry
# this project reaches does not serve the mac/win/riscv ones, so ci refuses
[ -d node_modules/node-llama-cpp ] || npm install --no-audit --no-fund --ignore-scripts >/dev/null
set +e
lib=$(ls node_modules/@node-llama-cpp/linux-x64/bins/*/libggml-base.so | head -n 1)
"$out/quant_ref" "$lib" | tee "$out/quant.log"
node compare.mjs "$out" 2>&1 | grep -v "tokenize text and then detokenize" | tee "$out/compare.log"
p=0 f=0
for log in "$out/quant.log" "$out/compare.log"; do
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if [ -z "$line" ]; then f=$((f + 1)); continue; fi
    p=$((p + ${line%% passed*}))
    f=$((f + $(echo "$line" | sed -E 's/.*, ([0-9]+) failed/\1/')))
done
echo "$p passed, $f failed"
[ "$f" -eq 0 ]
