#!/usr/bin/env bash
# test_sft_cli.sh: `cllm sft` (full and LoRA), `cllm lora merge` and
# `--lora` at inference on a tiny byte-level model pre-trained here for a
# few steps: outputs exist, the merged model generates exactly what base +
# adapter generate, bad flags exit 2, bad data exits 1 naming file:line:col,
# and nothing is left behind by a failed run.
set -u
bin=${CLLM_BUILD:-build}/cllm
work=$(mktemp -d /tmp/cllm-test-sft.XXXXXX)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/lib.sh"
for i in $(seq 1 200); do echo "the cat sat on the mat. the dog ran to the log."; done > "$work/text.txt"
"$bin" pretrain --data "$work/text.txt" --preset tiny-llama --steps 30 --batch 4 --seq 32 --context 64 --lr 1e-2 \
    --eval-every 0 --threads 1 --out "$work/pre" --no-progress >"$work/pre.log" 2>&1
check "pretrain exits 0" test $? -eq 0
base=$work/pre/model.gguf
for i in $(seq 1 40); do
    echo '{"messages": [{"role": "user", "content": "where is the cat?"}, {"role": "assistant", "content": "on the mat."}]}'
    echo '{"prompt": "the dog ran to", "completion": " the log."}'
done > "$work/train.jsonl"
head -4 "$work/train.jsonl" > "$work/val.jsonl"

out=$("$bin" sft --json --model "$base" --data "$work/train.jsonl" --val "$work/val.jsonl" --out "$work/full" --steps 20 \
      --batch 4 --seq 64 --lr 3e-3 --threads 1 --quiet 2>"$work/full.err")
check "full sft exits 0" test $? -eq 0
check "full sft writes model.gguf" test -s "$work/full/model.gguf"
check "full sft summary is JSON with a val loss" /usr/bin/python3 -c '
import json,sys; d=json.loads(sys.stdin.read()); assert d["steps"] == 20 and d["val_loss"] is not None and d["examples"] == 80, d' <<<"$out"
check "loss plot and CSV" test -s "$work/full/loss.svg" -a -s "$work/full/train.csv"
rows=$(wc -l < "$work/full/train.csv")
cp "$work/full/model.gguf" "$work/full-before.gguf"
"$bin" sft --model "$base" --data "$work/train.jsonl" --val "$work/val.jsonl" --out "$work/full" --steps 20 \
      --batch 4 --seq 64 --lr 3e-3 --threads 1 --quiet --resume >/dev/null 2>"$work/resume.err"
check "resuming the finished sft run exits 0" test $? -eq 0
check "resuming the finished sft run keeps its $rows CSV lines" test "$(wc -l < "$work/full/train.csv")" -eq "$rows" -a "$rows" -eq 21
check "resuming the finished sft run keeps its weights" cmp -s "$work/full/model.gguf" "$work/full-before.gguf"
"$bin" sft --model "$base" --data "$work/train.jsonl" --val "$work/val.jsonl" --out "$work/full" --steps 20 \
      --batch 4 --seq 64 --lr 1e-3 --threads 1 --quiet --resume >/dev/null 2>"$work/resume.err"
check "resume with another --lr exits 1 naming the setting" grep -q "lr=" "$work/resume.err"
"$bin" info -m "$work/full/model.gguf" >/dev/null 2>&1
check "cllm info reads the tuned model" test $? -eq 0

out=$("$bin" sft --json --model "$base" --data "$work/train.jsonl" --out "$work/lora" --steps 20 --batch 4 --seq 64 --pack \
      --lr 1e-2 --lora-rank 4 --lora-targets q,k,v,o,up,down,gate --threads 1 --quiet 2>"$work/lora.err")
check "LoRA sft exits 0" test $? -eq 0
check "LoRA sft writes adapter.gguf only" test -s "$work/lora/adapter.gguf" -a ! -e "$work/lora/model.gguf"
check "LoRA trains far fewer parameters" /usr/bin/python3 -c '
import json,sys; d=json.loads(sys.stdin.read()); assert d["trainable_params"] * 5 < d["total_params"], d' <<<"$out"
"$bin" lora merge "$base" "$work/lora/adapter.gguf" "$work/merged.gguf" 2>/dev/null
check "lora merge exits 0" test $? -eq 0
a=$("$bin" generate -m "$base" --lora "$work/lora/adapter.gguf" -p "the dog" -n 16 --temperature 0 --threads 1 2>/dev/null)
b=$("$bin" generate -m "$work/merged.gguf" -p "the dog" -n 16 --temperature 0 --threads 1 2>/dev/null)
check "merged model generates what base + --lora generates" test -n "$a" -a "$a" = "$b"

# bad input
printf '{"text": "ok"}\n{"messages": [1, 2}\n' > "$work/bad.jsonl"
"$bin" sft --model "$base" --data "$work/bad.jsonl" --out "$work/bad" --steps 1 --quiet 2>"$work/bad.err"
check "malformed JSONL exits 1" test $? -eq 1
check "error names file:line:column" grep -q "bad.jsonl:2:[0-9]*: malformed JSON" "$work/bad.err"
check "failed run leaves no run directory" test ! -e "$work/bad"
echo '{"prompt": "a", "completion": ""}' > "$work/empty.jsonl"
"$bin" sft --model "$base" --data "$work/empty.jsonl" --out "$work/bad" --steps 1 --quiet 2>"$work/bad.err"
check "empty completion exits 1 naming the line" grep -q 'empty.jsonl:1: "completion" is empty' "$work/bad.err"
"$bin" sft --model "$base" --data "$work/train.jsonl" --out "$work/bad" --steps 1 --seq 8 --quiet 2>"$work/bad.err"
check "example longer than --seq is an error without --truncate" grep -q "more than the 8 of a training row; shorten it, raise --seq" "$work/bad.err"
"$bin" sft --model "$base" --data "$work/train.jsonl" --out "$work/x" --lora-rank 0 2>/dev/null
check "--lora-rank 0 exits 2" test $? -eq 2
"$bin" sft --model "$base" --data "$work/train.jsonl" --out "$work/x" --lora-rank 2 --lora-targets q,bogus 2>/dev/null
check "unknown LoRA target exits 2" test $? -eq 2
"$bin" sft --model "$base" --out "$work/x" 2>/dev/null
check "missing --data exits 2" test $? -eq 2
"$bin" sft --model /nonexistent.gguf --data "$work/train.jsonl" --out "$work/x" 2>/dev/null
check "missing model exits 1" test $? -eq 1
"$bin" lora merge "$base" "$work/train.jsonl" "$work/m2.gguf" 2>/dev/null
check "merging a non-adapter exits 1" test $? -eq 1 -a ! -e "$work/m2.gguf"
"$bin" lora 2>/dev/null
check "lora without subcommand exits 2" test $? -eq 2
"$bin" sft --help | grep -q "Usage: cllm sft"
check "sft --help" test $? -eq 0
finish
