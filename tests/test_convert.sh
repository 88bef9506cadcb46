#!/usr/bin/env bash
# test_convert.sh: `cllm convert` on tiny random Hugging Face folders that
# tests/convert_hf.py writes (GPT-2 with a byte-level BPE tokenizer.json,
# Llama with a SentencePiece tokenizer.model, f32 / bf16 / f16 checkpoints,
# one file and sharded with an index): cllm's greedy tokens and top-5
# log-probabilities on a prompt against a float64 PyTorch forward of the
# same Hugging Face weights in Hugging Face's conventions (tolerances beside
# each check), the sharded and single-file conversions byte-identical, the
# tokenizer keys present, and bad folders (truncated header, overlapping
# ranges, shape/dtype mismatch, unsupported dtype, missing shard, unknown
# architecture, config.json vs tensor shapes, an activation the arch cannot
# express) each refused with one error naming the file and field, exit
# 1 and no output file. Uses $CLLM_BUILD/cllm and /usr/bin/python3 (torch).
set -u
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
root=$(pwd)
bin=$(realpath "${CLLM_BUILD:-build}/cllm")
py=/usr/bin/python3
gen=$(realpath tests/convert_hf.py)
[ -x "$bin" ] || fail_all "missing $bin"
$py -c "import torch" 2>/dev/null || fail_all "/usr/bin/python3 cannot import torch"
lib_workdir cllm-convert
cd "$work" || exit 1
prompt="the cat sat on the mat. hello"

# name arch type tol extra-make-args: make, convert, compare
run_case() {
    local name=$1 arch=$2 type=$3 tol=$4
    shift 4
    $py "$gen" make "$name" --arch "$arch" "$@" >/dev/null 2>&1
    check "$name: folder written" test -s "$name/config.json"
    "$bin" convert "$name" -o "$name.gguf" --type "$type" 2>"$name.log"
    rc=$?  # before the message's $(...), which would reset $?
    check "$name: convert exits 0 ($(tail -c 300 "$name.log"))" test "$rc" -eq 0
    $py "$gen" check "$name" --cllm "$bin" --model "$name.gguf" --prompt "$prompt" --steps 6 --tol "$tol" \
        >"$name.check" 2>&1
    rc=$?  # before the message's $(...), which would reset $?
    check "$name: cllm vs PyTorch on the HF weights: $(tail -n 1 "$name.check")" test "$rc" -eq 0
    echo "$name ($type): $(tail -n 1 "$name.check")"
}

# f32 weights, f32 compute: 1e-3 on log-probabilities (float32 accumulation over C = 64..256)
run_case gpt2 gpt2 f32 1e-3
run_case llama llama f32 1e-3 --tied 0
# a bf16 checkpoint, sharded, widened to f32: bf16 -> f32 is exact, so the same 1e-3
run_case llama-bf16-f32 llama f32 1e-3 --dtype bf16 --shards 3
# the same kept bf16 (auto): cllm's bf16 matrix products round the activations to bf16 too
# (relative 2^-8 per operand) while the reference runs float64 on the same weights; with logits
# spanning about +-20 here that moves log-probs by up to ~0.1: tolerance 0.15, greedy tokens equal
run_case llama-bf16 llama auto 0.15 --dtype bf16 --shards 3
# f16 checkpoint converted to f32, with the attn.bias mask buffers older GPT-2 checkpoints carry
run_case gpt2-f16 gpt2 f32 1e-3 --dtype f16 --mask 1
# q8_0 on the way out: q8_0 weights and (as in llama.cpp) q8 activations in the products, about
# 1% relative per dot product: log-probs move by up to ~0.3 here; tolerance 0.5, greedy tokens equal
run_case llama-q8 llama q8_0 0.5 --tied 0

# an embedding with 12 rows more than the tokenizer's ids (as Qwen2 checkpoints have): the vocabulary
# is padded with unused "[PAD<id>]" tokens, as llama.cpp's converter pads it
run_case gpt2-pad gpt2 f32 1e-3 --pad 12
# Mistral is llama.cpp's llama arch (its sliding window, 4096, is longer than this prompt)
run_case mistral mistral f32 1e-3 --tied 0
# Qwen2 (q/k/v biases, rope pairs i and i + HS/2) and Llama-3.1 rope scaling (rope_freqs.weight)
run_case qwen2 qwen2 f32 1e-3
run_case llama3 llama f32 1e-3 --rope llama3

grep -q "tokenizer from tokenizer.model" llama.log
check "llama: SentencePiece tokenizer.model used" test $? -eq 0
grep -q "3 files" llama-bf16.log
rc=$?  # before the message's $(...), which would reset $?
check "llama-bf16: three shards read ($(tail -c 200 llama-bf16.log))" test "$rc" -eq 0
grep -q "(arch llama, bf16" llama-bf16.log
check "llama-bf16: auto type is the checkpoint's bf16" test $? -eq 0

# sharded vs single file: the same GGUF bytes
$py "$gen" make one --arch gpt2 --seed 7 >/dev/null 2>&1
$py "$gen" make two --arch gpt2 --seed 7 --shards 2 >/dev/null 2>&1
"$bin" convert one -o one.gguf --name same -q && "$bin" convert two -o two.gguf --name same -q
check "sharded and single-file conversions are byte-identical" cmp -s one.gguf two.gguf

# the tokenizer and model keys llama.cpp reads
ggufkeys() { $py -c "
import sys; sys.path.insert(0, '$root/tests')
import gguf_header
h = gguf_header.read(open(sys.argv[1], 'rb').read())
print(' '.join(k for k, _, _ in h['kvs']))
print(' '.join(n for n, *_ in h['infos']))" "$1"; }
keys=$(ggufkeys llama.gguf | tr '\n' ' ')
for k in tokenizer.ggml.model tokenizer.ggml.tokens tokenizer.ggml.scores tokenizer.ggml.token_type \
    tokenizer.ggml.bos_token_id tokenizer.ggml.add_bos_token llama.rope.dimension_count llama.attention.head_count_kv; do
    case " $keys " in *" $k "*) ok "llama.gguf has $k" ;; *) bad "llama.gguf lacks $k (has: $keys)" ;; esac
done
$py -c "
import sys; sys.path.insert(0, '$root/tests')
import gguf_header, convert_hf
kv = {k: v for k, v, _ in gguf_header.read(open('llama.gguf', 'rb').read())['kvs']}
sys.exit(0 if kv.get('tokenizer.chat_template') == convert_hf.CHAT_TEMPLATE and kv.get('tokenizer.ggml.eos_token_id') == 2
         and kv.get('tokenizer.ggml.unknown_token_id') == 0 else 1)"
check "llama.gguf: tokenizer_config.json's chat_template, eos </s> = 2, unk <unk> = 0" test $? -eq 0
keys=$(ggufkeys gpt2.gguf | tr '\n' ' ')
$py -c "
import sys; sys.path.insert(0, '$root/tests')
import gguf_header
h = gguf_header.read(open('gpt2-pad.gguf', 'rb').read())
kv = {k: v for k, v, _ in h['kvs']}
toks, types = kv['tokenizer.ggml.tokens'], kv['tokenizer.ggml.token_type']
ok = len(toks) == 332 and toks[320] == '[PAD320]' and toks[331] == '[PAD331]' and set(types[320:]) == {5}
sys.exit(0 if ok else 1)" 2>/dev/null
check "gpt2-pad.gguf: 332 tokens, ids 320..331 '[PAD<id>]' of type unused (5)" test $? -eq 0
for k in tokenizer.ggml.merges tokenizer.ggml.pre gpt2.attention.layer_norm_epsilon; do
    case " $keys " in *" $k "*) ok "gpt2.gguf has $k" ;; *) bad "gpt2.gguf lacks $k" ;; esac
done

# the gpt2 folder's tokenizer.json with a Split regex: Qwen2's is named qwen2 in the GGUF; one llama.cpp has
# no name for converts all the same, with a note that llama.cpp will split differently
for split in qwen2 own; do
    rm -rf "gpt2-$split" && cp -r gpt2 "gpt2-$split"
    $py - "gpt2-$split/tokenizer.json" "$split" <<'PY'
import json, sys
path, split = sys.argv[1:]
rx = {"qwen2": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
             "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
      "own": "\\p{L}+|\\p{N}+|[^\\p{L}\\p{N}]+"}[split]
tj = json.load(open(path))
tj["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": rx}, "behavior": "Isolated", "invert": False},
    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}
json.dump(tj, open(path, "w"))
PY
    "$bin" convert "gpt2-$split" -o "gpt2-$split.gguf" -q 2>"gpt2-$split.err"
    rc=$?  # before the message's $(...), which would reset $?
    check "gpt2 with a $split Split regex: convert exits 0 ($(head -c 200 "gpt2-$split.err"))" test "$rc" -eq 0
    pre=$($py -c "
import sys; sys.path.insert(0, '$root/tests')
import gguf_header
print(dict((k, v) for k, v, _ in gguf_header.read(open(sys.argv[1], 'rb').read())['kvs']).get('tokenizer.ggml.pre'))" \
        "gpt2-$split.gguf" 2>/dev/null)
    if [ "$split" = qwen2 ]; then
        check "Qwen2's split: tokenizer.ggml.pre '$pre' is qwen2, no note" \
            bash -c '[ "$1" = qwen2 ] && ! grep -q note "$2"' _ "$pre" "gpt2-$split.err"
    else
        check "an unnamed split: tokenizer.ggml.pre '$pre' is default, and a note says llama.cpp splits differently" \
            bash -c '[ "$1" = default ] && grep -q "llama.cpp will split differently" "$2"' _ "$pre" "gpt2-$split.err"
    fi
done

keys=$(ggufkeys qwen2.gguf | tr '\n' ' ')
for k in general.architecture qwen2.attention.head_count_kv qwen2.rope.freq_base blk.0.attn_q.bias blk.1.attn_v.bias \
    tokenizer.ggml.merges; do
    case " $keys " in *" $k "*) ok "qwen2.gguf has $k" ;; *) bad "qwen2.gguf lacks $k" ;; esac
done
case " $(ggufkeys llama3.gguf | tr '\n' ' ') " in *" rope_freqs.weight "*) ok "llama3.gguf has rope_freqs.weight" ;;
    *) bad "llama3.gguf lacks rope_freqs.weight" ;; esac

# bad input: exit 1, one error line naming the file and field, no output
bad_case() {
    local kind=$1 want=$2
    shift 2
    $py "$gen" make "bad-$kind" --break "$kind" "$@" >/dev/null 2>&1
    "$bin" convert "bad-$kind" -o "bad-$kind.gguf" 2>"bad-$kind.err"
    local rc=$?
    local msg
    msg=$(cat "bad-$kind.err")
    check "$kind: exit 1 (got $rc): $msg" test $rc -eq 1
    check "$kind: one line naming \"$want\"" bash -c '[ "$(wc -l <"$2")" -eq 1 ] && grep -q -- "$1" "$2"' _ "$want" "bad-$kind.err"
    check "$kind: no output file" test ! -e "bad-$kind.gguf"
}
bad_case truncated "model.safetensors: header length" --arch gpt2
bad_case overlap "model.safetensors: tensor '.*': data_offsets .* overlap tensor" --arch llama
bad_case shape "model.safetensors: tensor '.*': shape x F32 size" --arch gpt2
bad_case dtype "dtype 'I64' is not supported" --arch gpt2
bad_case missing-shard "names shard model-00002-of-00002.safetensors" --arch llama --shards 2
bad_case unknown-arch "config.json: architecture 'FalconForCausalLM' is not supported" --arch llama
bad_case config-shape "model.safetensors: tensor 'model.layers.0.mlp.gate_proj.weight' has shape \[96, 64\]; config.json implies \[128, 64\]" --arch llama
bad_case hidden-act "config.json: 'hidden_act' is not silu" --arch llama
"$bin" convert 2>/dev/null
check "no arguments: exit 2" test $? -eq 2
"$bin" convert gpt2 -o x.gguf --type q9_9 2>/dev/null
check "unknown --type: exit 2" test $? -eq 2
"$bin" convert /nonexistent -o x.gguf 2>/dev/null
check "missing folder: exit 1" test $? -eq 1
"$bin" convert --help | grep -q "Usage: cllm convert"
check "--help" test $? -eq 0
finish
