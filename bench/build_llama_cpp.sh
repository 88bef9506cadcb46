#!/usr/bin/env bash
# Builds llama.cpp's llama-bench, llama-quantize and llama-completion, the
# peers of bench/bench_infer.sh, tests/interop/llama_tools.sh and
# bench/bench_grammar.sh (its completion tool, with --grammar-file and
# --json-schema-file; the common library it needs comes with the tools
# option, on by default), from the llama.cpp
# source that the npm package node-llama-cpp carries as a git bundle (no
# other download is possible here). About 10-20 minutes on 2 cores.
#
#   bash bench/build_llama_cpp.sh [DIR]      # default DIR /tmp/llama-src
#   -> DIR/build/bin/llama-bench, llama-quantize, llama-completion
#
# gcc 12 may emit AMX instructions for -march=native builds that then fault
# (see the project's design notes), so AMX code generation is turned off.
set -euo pipefail
dir=${1:-/tmp/llama-src}
tools="llama-bench llama-quantize llama-completion"
if [ -x "$dir/build/bin/llama-bench" ] && [ -x "$dir/build/bin/llama-quantize" ] &&
    [ -x "$dir/build/bin/llama-completion" ]; then
    echo "llama.cpp tools already built in $dir/build/bin"
    exit 0
fi
pkg=$(mktemp -d)
trap 'rm -rf "$pkg"' EXIT
(cd "$pkg" && npm init -y >/dev/null && npm install --no-audit --no-fund --ignore-scripts node-llama-cpp >/dev/null)
bundle=$pkg/node_modules/node-llama-cpp/llama/gitRelease.bundle
[ -f "$bundle" ] || { echo "build_llama_cpp: $bundle not found in node-llama-cpp" >&2; exit 1; }
[ -d "$dir/.git" ] || git clone -q "$bundle" "$dir"
flags="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
cmake -S "$dir" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DGGML_OPENMP=ON \
    -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF \
    -DLLAMA_OPENSSL=OFF -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" >/dev/null
# shellcheck disable=SC2086 # one word per target
cmake --build "$dir/build" --target $tools -j"$(nproc)"
echo "built $tools in $dir/build/bin"
