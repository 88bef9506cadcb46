#!/usr/bin/env bash
# run.sh: llama.cpp interop check for cllm's GGUF writer (not part of
# `make test`: node-llama-cpp is a ~700 MB npm package and loading 8 models
# takes about a minute). Builds the library, writes gpt2/llama models in f32,
# f16, q8_0 and q4_0 with tests/interop/make_models.c, and has llama.cpp
# (node-llama-cpp, CPU) compare next-token logits and greedy continuations
# (tests/interop/compare.mjs states the tolerances).
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
cd tests/interop
[ -d node_modules/node-llama-cpp ] || npm ci --no-audit --no-fund --ignore-scripts >/dev/null
node compare.mjs "$out" 2>&1 | grep -v "tokenize text and then detokenize"
exit "${PIPESTATUS[0]}"
