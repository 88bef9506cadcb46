#!/usr/bin/env bash
# convert_llama.sh: GGUF files written by `cllm convert` from tiny random
# Hugging Face folders (tests/convert_hf.py) load in llama.cpp and compute
# what a float64 PyTorch forward of the same Hugging Face weights computes.
# Not part of `make test` (it needs llama.cpp's libllama, built by
# bench/build_llama_cpp.sh); fails when llama.cpp is missing.
#
# For gpt2 (GPT2LMHeadModel, byte-level BPE tokenizer.json), llama
# (LlamaForCausalLM, SentencePiece tokenizer.model; also a bf16 sharded
# checkpoint), qwen2 (Qwen2ForCausalLM, q/k/v biases, tokenizer.json, 12
# embedding rows past the tokenizer: a padded vocabulary), and
# mistral (MistralForCausalLM), and a llama with Llama-3.1 rope_scaling
# (rope_freqs.weight): cllm convert --type f32, then
# tests/interop/llama_logits.c (libllama, CPU, f32 KV cache) gives the
# next-token logits at every prompt position and an 8-token greedy
# continuation (and llama-tokenize must give cllm's token ids for three
# texts); tests/convert_hf.py vs compares them with the reference:
# max |logit diff| <= 1e-3 * max|logit| + 1e-4, the same top-1 everywhere,
# the same greedy tokens. Then llama.cpp's own convert_hf_to_gguf.py
# (through tests/interop/llama_convert_shim.py: Debian has no transformers /
# sentencepiece, so it converts tensors and hyperparameters, not the
# tokenizer) converts the same folder with --outtype f32, and
# tests/interop/tensor_diff.c must find every tensor identical (name, type,
# dims, bytes) to cllm's (also with --outtype f16, bf16 and q8_0 against
# cllm's --type of the same name), and every hyperparameter key it writes
# (general.architecture, general.file_type, <arch>.*) must be in cllm's file
# with the same value (cllm adds only llama.attention.sliding_window for
# Mistral).
# Usage: bash tests/interop/convert_llama.sh [LLAMA_DIR]  (default /tmp/llama-src)
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
llama=${1:-/tmp/llama-src}
bin_dir=$llama/build/bin
. "$(dirname "$0")/../lib.sh"
[ -f "$bin_dir/libllama.so" ] && [ -f "$llama/include/llama.h" ] ||
    fail_all "convert_llama: libllama.so / llama.h not found under $llama; run bench/build_llama_cpp.sh"
build=${CLLM_BUILD:-$root/build}
cllm=$build/cllm
py=/usr/bin/python3
gen=$root/tests/convert_hf.py
[ -x "$cllm" ] || fail_all "convert_llama: missing $cllm"
work=$(mktemp -d /tmp/cllm-convert-llama.XXXXXX)
trap 'rm -rf "$work"' EXIT
cc -std=c11 -O2 -I"$llama/include" -I"$llama/ggml/include" "$root/tests/interop/llama_logits.c" \
    -L"$bin_dir" -lllama -Wl,-rpath,"$bin_dir" -o "$work/llama_logits"
check "llama_logits builds" test -x "$work/llama_logits"
cc -std=c11 -O2 -D_GNU_SOURCE -fopenmp -I"$root/include" "$root/tests/interop/tensor_diff.c" "$build/libcllm.a" \
    -ldnnl -lm -lpthread -o "$work/tensor_diff"
check "tensor_diff builds" test -x "$work/tensor_diff"
prompt="the cat sat on the mat. hello world"
# name arch extra-make-args
for spec in "gpt2 gpt2" "llama llama --tied 0" "llama-bf16 llama --dtype bf16 --shards 2" "qwen2 qwen2 --pad 12" \
    "mistral mistral --tied 0" "llama3-rope llama --rope llama3"; do
    set -- $spec
    name=$1 arch=$2
    shift 2
    d=$work/$name
    $py "$gen" make "$d" --arch "$arch" "$@" >/dev/null 2>&1
    "$cllm" convert "$d" -o "$d.gguf" --type f32 -q 2>"$d.log"
    rc=$?  # before the message's $(...), which would reset $?
    check "$name: cllm convert ($(tail -c 300 "$d.log"))" test "$rc" -eq 0
    ids=$("$cllm" tokenizer encode --tokenizer "$d.gguf" --text "$prompt" --format ids 2>"$d.tok")
    check "$name: cllm tokenizes the prompt from the GGUF ($(tail -c 200 "$d.tok"))" test -n "$ids"
    case $arch in llama|mistral) ids="1 $ids" ;; esac # SentencePiece: llama.cpp's add_bos
    for text in "$prompt" "  Hello,  WORLD!\n\tonce upon 12 + 30 = 42 ... it's" "caf\u00e9 na\u00efve \ud55c\uad6d\uc5b4"; do
        text=$(printf '%b' "$text")
        mine=$("$cllm" tokenizer encode --tokenizer "$d.gguf" --text "$text" --format ids 2>&1 | tr -s ' \n' ' ')
        case $arch in llama|mistral) mine="1 $mine" ;; esac
        theirs=$("$bin_dir/llama-tokenize" -m "$d.gguf" -p "$text" --ids --log-disable 2>/dev/null | tail -n 1 |
            tr -d '[],' | tr -s ' ')
        check "$name: tokens of '$(head -c 20 <<<"$text")...' as llama-tokenize's (cllm [${mine% }] llama.cpp [$theirs])" \
            test "${mine% }" = "$theirs"
    done
    "$work/llama_logits" "$d.gguf" 8 $ids >"$d.json" 2>"$d.err"
    rc=$?  # before the message's $(...), which would reset $?
    check "$name: llama.cpp loads and evaluates it ($(tail -c 200 "$d.err"))" test "$rc" -eq 0
    res=$($py "$gen" vs "$d" "$d.json" 8 $ids 2>&1)
    rc=$?
    echo "$name: $res"
    check "$name: llama.cpp vs PyTorch on the HF weights" test $rc -eq 0
    $py "$root/tests/interop/llama_convert_shim.py" "$llama" "$d" --outfile "$d-llama.gguf" --outtype f32 \
        >"$d-llama.log" 2>&1
    check "$name: llama.cpp's convert_hf_to_gguf.py (shim) ($(tail -n 1 "$d-llama.log"))" test -s "$d-llama.gguf"
    diff=$("$work/tensor_diff" "$d.gguf" "$d-llama.gguf" 2>&1)
    rc=$?
    echo "$name: tensor_diff cllm vs llama.cpp: $(tail -n 1 <<<"$diff")"
    check "$name: every tensor identical to llama.cpp's converter ($(head -n 3 <<<"$diff" | tr '\n' ' '))" test $rc -eq 0
    res=$($py - "$d.gguf" "$d-llama.gguf" <<EOF 2>&1
import sys
sys.path.insert(0, "$root/tests")
import gguf_header
def kv(p):
    h = gguf_header.read(open(p, "rb").read())
    return {k: v for k, v, _ in h["kvs"]}
ours, theirs = kv(sys.argv[1]), kv(sys.argv[2])
arch = theirs["general.architecture"]
want = {k: v for k, v in theirs.items() if k.startswith(arch + ".") or k in ("general.architecture", "general.file_type")}
bad = [f"{k}: llama.cpp {v!r}, cllm {ours.get(k, 'absent')!r}" for k, v in want.items() if ours.get(k) != v]
extra = sorted(k for k in ours if k.startswith(arch + ".") and k not in want)
print(f"{len(want)} keys compared, {len(bad)} differ {bad}; cllm's extra: {extra}")
sys.exit(1 if bad else 0)
EOF
)
    rc=$?
    echo "$name: keys: $res"
    check "$name: hyperparameter keys as llama.cpp's converter writes them ($res)" test $rc -eq 0
    for t in f16 bf16 q8_0; do # the same with the output types both converters have
        "$cllm" convert "$d" -o "$d-$t.gguf" --type "$t" -q
        $py "$root/tests/interop/llama_convert_shim.py" "$llama" "$d" --outfile "$d-llama-$t.gguf" --outtype "$t" \
            >/dev/null 2>&1
        diff=$("$work/tensor_diff" "$d-$t.gguf" "$d-llama-$t.gguf" 2>&1)
        rc=$?
        echo "$name $t: tensor_diff cllm vs llama.cpp: $(tail -n 1 <<<"$diff")"
        check "$name $t: every tensor identical to llama.cpp's converter ($(head -n 3 <<<"$diff" | tr '\n' ' '))" \
            test $rc -eq 0
    done
done
finish
