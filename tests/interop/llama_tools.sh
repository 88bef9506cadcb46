#!/usr/bin/env bash
# llama_tools.sh: cllm reads GGUF files written by llama.cpp's own tools.
# Not part of `make test` (it needs llama-quantize, built by
# bench/build_llama_cpp.sh in 10-20 minutes). For a gpt2-arch and a
# llama-arch model trained here, llama-quantize --pure writes F16, Q8_0 and
# Q4_0 files; cllm must load each, score a text with a KL divergence to the
# f32 original below the bound of its type, and `cllm quantize` of the same
# f32 file must give the same perplexity to 4 decimals (the same quantized
# blocks, since both encoders follow ggml's reference rounding).
# Then, for a gpt2-arch and a llama-arch model 256 wide and 8 layers deep
# (so the k-quants need no fallback and the mixes' layer rules matter):
# llama-quantize --pure writes Q4_1, Q5_0, Q5_1, Q2_K .. Q6_K and, without
# --pure, its Q3_K_M / Q4_K_M / Q5_K_M mixes; cllm must load each with a KL
# below the bound of its type, and `cllm quantize` of the same f32 file must
# write every tensor byte for byte as llama-quantize did (tensor_diff.c).
# quant_ref.c also compares the encoders with the libggml-base.so beside
# llama-quantize.
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

# ---- the other block types and the k-quant mixes ----------------------------
helpers="-std=c11 -O2 -D_GNU_SOURCE -fopenmp -I$root/include"
cc $helpers "$root/tests/interop/tensor_diff.c" "$build/libcllm.a" -ldnnl -lm -lpthread -o "$work/tensor_diff"
check "tensor_diff builds" test -x "$work/tensor_diff"
cc $helpers "$root/tests/interop/quant_ref.c" "$build/libcllm.a" -ldl -lm -o "$work/quant_ref"
"$work/quant_ref" "$bin_dir/libggml-base.so" > "$work/quant_ref.log" 2>&1
grep -v "^ok" "$work/quant_ref.log"
add_results "$work/quant_ref.log"
for arch in gpt2 llama; do
    preset=tiny-$arch kv=$([ $arch = llama ] && echo 2 || echo 4)
    "$cllm" pretrain --data "$work/text.txt" --preset "$preset" --n-layer 8 --n-embd 256 --ffn-hidden 512 \
        --n-head 4 --n-kv-head "$kv" --steps 60 --batch 8 --seq 32 --lr 3e-3 --eval-every 0 --threads 1 \
        --out "$work/wide-$arch" --no-progress >/dev/null 2>&1
    check "$arch 256 wide: pretrain" test -f "$work/wide-$arch/model.gguf"
    f32=$work/wide-$arch/model.gguf
    for t in Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q4_K Q5_K Q6_K Q3_K_M Q4_K_M Q5_K_M; do
        lower=$(echo "$t" | tr 'A-Z' 'a-z')
        pure=$(case $t in *_M) ;; *) echo --pure;; esac)
        # mean KL bounds (nats per token), about 5x what these models gave: q4_1 2e-3 / 3e-3 (gpt2 /
        # llama), q5_0 6e-4 / 7e-4, q5_1 4e-4 / 9e-4, q2_K .04 / .03, q3_K .010 / .016, q4_K 2e-3 / 3e-3,
        # q5_K 5e-4 / 9e-4, q6_K 1.5e-4 / 1.1e-4, Q3_K_M 5e-4 / .010, Q4_K_M 2.5e-4 / 2.9e-3, Q5_K_M
        # 1.5e-4 / 9e-4
        bound=$(case $t in Q4_1) echo 1e-2;; Q5_0|Q5_1|Q5_K|Q5_K_M) echo 5e-3;; Q2_K) echo 0.2;;
                Q3_K) echo 8e-2;; Q4_K|Q4_K_M) echo 1.5e-2;; Q6_K) echo 1e-3;; Q3_K_M) echo 5e-2;; esac)
        "$lq" $pure "$f32" "$work/w-$arch-lq-$t.gguf" "$t" 1 >/dev/null 2>&1
        check "$arch $t: llama-quantize wrote a file" test -s "$work/w-$arch-lq-$t.gguf"
        out=$("$cllm" perplexity -m "$work/w-$arch-lq-$t.gguf" --kl-base "$f32" "$work/text.txt" --ctx 32 --threads 1 2>&1)
        check "$arch $t: cllm loads and scores llama-quantize's file" grep -q "^PPL" <<<"$out"
        kl=$(grep -oE "mean [0-9.e+-]+" <<<"$out" | head -n 1 | cut -d' ' -f2)
        "$cllm" quantize -q "$f32" "$work/w-$arch-own-$t.gguf" "$lower" >/dev/null 2>&1
        diff=$("$work/tensor_diff" "$work/w-$arch-lq-$t.gguf" "$work/w-$arch-own-$t.gguf" 2>&1 | tail -n 1)
        echo "$arch $t: PPL $(grep "^PPL" <<<"$out" | cut -d" " -f2), mean KL $kl; cllm quantize: $diff"
        check "$arch $t: mean KL $kl <= $bound" awk -v k="${kl:-1}" -v b="$bound" 'BEGIN { exit !(k <= b) }'
        "$work/tensor_diff" "$work/w-$arch-lq-$t.gguf" "$work/w-$arch-own-$t.gguf" >/dev/null 2>&1
        check "$arch $t: cllm quantize writes llama-quantize's bytes" test $? -eq 0
    done
done
finish
