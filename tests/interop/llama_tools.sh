#!/usr/bin/env bash
# llama_tools.sh: cllm reads GGUF files written by llama.cpp's own tools.
# Not part of `make test` (it needs llama-quantize, built by
# bench/build_llama_cpp.sh in 10-20 minutes). For a gpt2-arch and a
# llama-arch model trained here, llama-quantize --pure writes F16, Q8_0 and
# Q4_0 files; cllm must load each, score a text with a KL divergence to the
# f32 original below the bound of its type, and `cllm quantize` of the same
# f32 file must give the same perplexity to 4 decimals (the same quantized
# blocks, since both encoders follow ggml's reference rounding).
# Usage: bash tests/interop/llama_tools.sh [LLAMA_BIN_DIR]  (default /tmp/llama-src/build/bin)
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
bin_dir=${1:-/tmp/llama-src/build/bin}
lq=$bin_dir/llama-quantize
. "$(dirname "$0")/../lib.sh"
[ -x "$lq" ] || fail_all "llama_tools: $lq not found; run bench/build_llama_cpp.sh"
build=${CLLM_BUILD:-$root/build}
cllm=$build/cllm
work=$(mktemp -d /tmp/cllm-llama-tools.XXXXXX)
trap 'rm -rf "$work"' EXIT
for i in $(seq 1 300); do echo "the cat sat on the mat. the dog ran to the log. a bird flew over the tree."; done > "$work/text.txt"
for arch in gpt2 llama; do
    preset=tiny-$arch
    "$cllm" pretrain --data "$work/text.txt" --preset "$preset" --steps 100 --batch 8 --seq 32 --lr 1e-2 \
        --eval-every 0 --threads 1 --out "$work/run-$arch" --no-progress >/dev/null 2>&1
    check "$arch: pretrain" test -f "$work/run-$arch/model.gguf"
    f32=$work/run-$arch/model.gguf
    for t in F16 Q8_0 Q4_0; do
        lower=$(echo "$t" | tr 'A-Z' 'a-z')
        "$lq" --pure "$f32" "$work/$arch-lq-$t.gguf" "$t" 1 >/dev/null 2>&1
        check "$arch $t: llama-quantize wrote a file" test -s "$work/$arch-lq-$t.gguf"
        out=$("$cllm" perplexity -m "$work/$arch-lq-$t.gguf" --kl-base "$f32" "$work/text.txt" --ctx 32 --threads 1 2>&1)
        check "$arch $t: cllm loads and scores llama-quantize's file" grep -q "^PPL" <<<"$out"
        kl=$(grep -oE "mean [0-9.e+-]+" <<<"$out" | head -n 1 | cut -d' ' -f2)
        bound=$(case $t in F16) echo 1e-4;; Q8_0) echo 1e-3;; Q4_0) echo 3e-2;; esac)
        echo "$arch $t: PPL $(grep "^PPL" <<<"$out" | cut -d" " -f2), mean KL $kl"
        check "$arch $t: mean KL $kl <= $bound" awk -v k="${kl:-1}" -v b="$bound" 'BEGIN { exit !(k <= b) }'
        "$cllm" quantize "$f32" "$work/$arch-own-$t.gguf" "$lower" >/dev/null 2>&1
        a=$(grep "^PPL" <<<"$out" | cut -d' ' -f2)
        b=$("$cllm" perplexity -m "$work/$arch-own-$t.gguf" "$work/text.txt" --ctx 32 --threads 1 2>&1 | grep "^PPL" | cut -d' ' -f2)
        check "$arch $t: cllm quantize gives the same perplexity ($a vs $b)" test "$a" = "$b"
    done
done
finish
