#!/usr/bin/env bash
# test_qlora_cli.sh: `cllm sft --lora-rank` on quantized bases (QLoRA), on a
# 256-wide byte-level Llama pre-trained here for a few steps (rows of 256, so
# q4_K and the q4_k_m mix apply): q8_0, q4_K and q4_k_m bases train adapters
# (log says QLoRA, loss falls, CSV and plot written); the q4_K run's loss
# curve equals, within 1e-3 relative per step, LoRA on the f32 file made by
# dequantizing the same q4_K file (the same weight values; only the product's
# path differs); full fine-tuning of a quantized base exits 2 naming
# --lora-rank and `cllm quantize`; `cllm lora merge` of a QLoRA adapter
# writes f32 (saying so) or --type, and the merged model generates what the
# dequantized base + --lora generates; `cllm info` reports QLoRA memory
# below LoRA on f32, below full fine-tuning; `cllm sft --help` names the types.
set -u
bin=${CLLM_BUILD:-build}/cllm
work=$(mktemp -d /tmp/cllm-test-qlora.XXXXXX)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/lib.sh"
for i in $(seq 1 200); do echo "the cat sat on the mat. the dog ran to the log."; done > "$work/text.txt"
"$bin" pretrain --data "$work/text.txt" --preset tiny-llama --n-embd 256 --ffn-hidden 256 --steps 10 --batch 4 \
    --seq 32 --context 64 --lr 1e-2 --eval-every 0 --threads 2 --out "$work/pre" --no-progress >"$work/pre.log" 2>&1
check "pretrain exits 0" test $? -eq 0 || fail_all "no base model"
base=$work/pre/model.gguf
for t in q8_0 q4_K q4_k_m; do
    "$bin" quantize "$base" "$work/$t.gguf" "$t" >/dev/null 2>&1
    check "quantize $t" test $? -eq 0
done
"$bin" quantize "$work/q4_K.gguf" "$work/deq.gguf" f32 >/dev/null 2>&1
check "dequantize the q4_K file to f32" test $? -eq 0
for i in $(seq 1 40); do
    echo '{"messages": [{"role": "user", "content": "where is the cat?"}, {"role": "assistant", "content": "on the mat."}]}'
    echo '{"prompt": "the dog ran to", "completion": " the log."}'
done > "$work/train.jsonl"

sft() { # NAME BASE [extra flags]: a 12-step LoRA run, JSON summary in NAME.json
    local name=$1 model=$2
    shift 2
    "$bin" sft --json --model "$model" --data "$work/train.jsonl" --out "$work/$name" --steps 12 --batch 4 --seq 64 \
        --lr 1e-2 --lora-rank 4 --lora-targets q,k,v,o,up,down,gate --seed 3 --threads 2 "$@" \
        >"$work/$name.json" 2>"$work/$name.err"
}
for t in q8_0 q4_K q4_k_m; do
    sft "qlora-$t" "$work/$t.gguf"
    check "QLoRA sft on $t exits 0" test $? -eq 0
    check "QLoRA sft on $t writes adapter.gguf, train.csv and loss.svg" \
        test -s "$work/qlora-$t/adapter.gguf" -a -s "$work/qlora-$t/train.csv" -a -s "$work/qlora-$t/loss.svg"
    check "QLoRA sft on $t says QLoRA" grep -q "QLoRA" "$work/qlora-$t.err"
    check "QLoRA sft on $t: the loss falls" /usr/bin/python3 -c '
import json,sys; d=json.load(open(sys.argv[1])); assert d["loss_last"] < d["loss_first"] - 0.1, d' "$work/qlora-$t.json"
done
sft lora-deq "$work/deq.gguf"
check "LoRA sft on the dequantized f32 file exits 0" test $? -eq 0
check "QLoRA (q4_K) loss curve == LoRA on the dequantized base (1e-3 relative per step)" /usr/bin/python3 -c '
import csv,sys
def losses(p):
    rows = list(csv.DictReader(open(p)))
    return [float(r["loss"]) for r in rows]
a, b = losses(sys.argv[1]), losses(sys.argv[2])
assert len(a) == len(b) == 12, (len(a), len(b))
worst = max(abs(x - y) / abs(y) for x, y in zip(a, b))
print("  q4_K QLoRA vs LoRA on dequantized: %d steps, loss %.4f -> %.4f, worst relative gap %.2g" % (len(a), a[0], a[-1], worst))
assert worst <= 1e-3, worst' "$work/qlora-q4_K/train.csv" "$work/lora-deq/train.csv"

# full fine-tuning of a quantized base is refused before any work
"$bin" sft --model "$work/q4_K.gguf" --data "$work/train.jsonl" --out "$work/full" --steps 1 2>"$work/full.err"
check "full fine-tuning of a q4_K base exits 2" test $? -eq 2
check "the refusal names --lora-rank and cllm quantize" grep -q -- "--lora-rank.*cllm quantize" "$work/full.err"
check "the refused run leaves no run directory" test ! -e "$work/full"

# merge: f32 by default (said), --type on request; same function as the dequantized base + adapter
"$bin" lora merge "$work/q4_K.gguf" "$work/qlora-q4_K/adapter.gguf" "$work/merged.gguf" 2>"$work/merge.err"
check "lora merge of a QLoRA adapter exits 0" test $? -eq 0
check "lora merge says the quantized base was written in f32" grep -q "written in f32" "$work/merge.err"
a=$("$bin" generate -m "$work/deq.gguf" --lora "$work/qlora-q4_K/adapter.gguf" -p "where is" -n 12 --temperature 0 --threads 1 2>/dev/null)
b=$("$bin" generate -m "$work/merged.gguf" -p "where is" -n 12 --temperature 0 --threads 1 2>/dev/null)
check "merged model generates what the dequantized base + --lora generates" test -n "$a" -a "$a" = "$b"
"$bin" lora merge "$work/q4_K.gguf" "$work/qlora-q4_K/adapter.gguf" "$work/merged-q8.gguf" --type q8_0 2>/dev/null
check "lora merge --type q8_0 exits 0" test $? -eq 0
"$bin" info --json --no-speed -m "$work/merged-q8.gguf" >"$work/merged-q8.info" 2>/dev/null
check "the --type q8_0 merge holds q8_0 matrices" /usr/bin/python3 -c '
import json,sys; d=json.load(open(sys.argv[1])); assert d["tensor_types"].get("q8_0", 0) > 0 and "f32" in d["tensor_types"], d["tensor_types"]' "$work/merged-q8.info"
"$bin" lora merge "$work/q4_K.gguf" "$work/qlora-q4_K/adapter.gguf" "$work/merged-km.gguf" --type q4_k_m 2>/dev/null
check "lora merge --type q4_k_m (a mix) exits 0, leaving no temporary file" \
    test $? -eq 0 -a ! -e "$work/merged-km.gguf.merge-f32.tmp"
"$bin" info --json --no-speed -m "$work/merged-km.gguf" >"$work/merged-km.info" 2>/dev/null
check "the q4_k_m merge holds llama-quantize's mix (q4_K and q6_K matrices)" /usr/bin/python3 -c '
import json,sys; d=json.load(open(sys.argv[1])); t=d["tensor_types"]; assert t.get("q4_K", 0) > 0 and t.get("q6_K", 0) > 0, t' \
    "$work/merged-km.info"
"$bin" lora merge "$work/q4_K.gguf" "$work/qlora-q4_K/adapter.gguf" "$work/m3.gguf" --type q9 2>/dev/null
check "lora merge --type q9 exits 2" test $? -eq 2 -a ! -e "$work/m3.gguf"

# memory figures
"$bin" info --json --no-speed -m "$work/q4_K.gguf" --lora-rank 8 -b 4 -t 64 >"$work/info.json" 2>/dev/null
check "info -m q4_K --lora-rank 8 exits 0" test $? -eq 0
check "info: QLoRA < LoRA on f32 < full fine-tuning" /usr/bin/python3 -c '
import json,sys; f=json.load(open(sys.argv[1]))["fine_tuning"]
print("  info (q4_K file, r8, B4 T64): full %d, LoRA f32 %d, QLoRA %d bytes" % (f["full_bytes"], f["lora_f32_bytes"], f["qlora_bytes"]))
assert f["base_quantized"] and f["lora_rank"] == 8 and f["qlora_bytes"] < f["lora_f32_bytes"] < f["full_bytes"], f' "$work/info.json"
"$bin" info -m "$work/q4_K.gguf" --no-speed | grep -q "QLoRA, the file's types"
check "info table has the QLoRA row" test $? -eq 0
"$bin" info --preset tiny-llama --no-speed --lora-rank 0 2>/dev/null
check "info --lora-rank 0 exits 2" test $? -eq 2
"$bin" sft --help | grep -q "q4_K.*--lora-rank only\|--lora-rank only"
check "sft --help names the quantized base types" test $? -eq 0
finish
