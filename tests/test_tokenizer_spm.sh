#!/usr/bin/env bash
# SentencePiece vocabularies through the CLI: `cllm tokenizer info|encode|
# decode` on the GGUF vocabulary that build/tests/test_tokenizer_spm writes
# (SPM_GGUF_OUT), `cllm tokenize` shards with </s> between documents, a tiny
# llama pre-trained on them carrying the vocabulary in its model.gguf, and
# `cllm generate` on that model starting from <s>. The ids were checked
# against llama.cpp's llama-tokenize (tests/interop/spm_llama.sh does that
# on a large vocabulary).
set -u
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
build=${CLLM_BUILD:-build}
cllm=$build/cllm
maker=$build/tests/test_tokenizer_spm
if [ ! -x "$cllm" ] || [ ! -x "$maker" ]; then fail_all "missing $cllm or $maker"; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
v=$tmp/spm.gguf
SPM_GGUF_OUT=$v "$maker" >/dev/null 2>&1
check "vocabulary written" test -s "$v"
info=$("$cllm" tokenizer info --tokenizer "$v")
check "info: sentencepiece, 300 ids, eot </s> = 2" bash -c "grep -q '\"rule\": \"sentencepiece\"' <<<'$info' && grep -q '\"vocab_size\": 300' <<<'$info' && grep -q '\"eot_id\": 2' <<<'$info'"
out=$("$cllm" tokenizer encode --tokenizer "$v" --text "hello  world" --format ids)
check "encode 'hello  world' = 281 288 264 286 (as llama-tokenize): $out" test "$out" = "281 288 264 286"
out=$("$cllm" tokenizer encode --tokenizer "$v" --text "hello  world" | head -n 1)
check "pieces shown with spaces: $out" test "$out" = '[" hello", "  ", "w", "orld"]'
out=$("$cllm" tokenizer encode --tokenizer "$v" --text "<s>hello" --allow-special all --format ids)
check "allowed <s> then ' hello': $out" test "$out" = "1 281"
out=$("$cllm" tokenizer encode --tokenizer "$v" --text "<s>hello" --format ids)
check "<s> as text without special parsing: $out" test "$out" = "259 271 270 272 282"
printf 'hello world\n\n안녕 😀 é\n  two  spaces  \n' > "$tmp/text.txt"
ids=$("$cllm" tokenizer encode --tokenizer "$v" --file "$tmp/text.txt" --format ids)
"$cllm" tokenizer decode --tokenizer "$v" $ids > "$tmp/back.txt" </dev/null
check "decode(encode(file)) == file" cmp -s "$tmp/text.txt" "$tmp/back.txt"
out=$("$cllm" tokenizer decode --tokenizer "$v" 1 281 </dev/null)
check "decode <s> ▁hello = '<s> hello': '$out'" test "$out" = "<s> hello"
out=$("$cllm" tokenizer encode --tokenizer "$v.model" --text "hello  world" --format ids)
check "the same vocabulary as a SentencePiece .model file: $out" test "$out" = "281 288 264 286"
check "own tokenizer file refused for SPM" bash -c "! '$cllm' tokenizer convert --tokenizer '$v' -o '$tmp/x.tok' 2>/dev/null"
# Shards and a model carrying the vocabulary.
for i in $(seq 1 200); do echo "hello world, hello world! 안녕 abc cab"; done > "$tmp/corpus.txt"
check "tokenize to a shard" bash -c "'$cllm' tokenize --tokenizer '$v' -o '$tmp/c.tok' '$tmp/corpus.txt' >/dev/null 2>&1"
eot=$(od -An -t u4 -j 28 -N 4 "$tmp/c.tok" | tr -d ' ')
check "shard eot id is </s> (2): $eot" test "$eot" = 2
"$cllm" pretrain --data "$tmp/c.tok" --tokenizer "$v" --preset tiny-llama --steps 20 --batch 4 --seq 32 --lr 1e-2 \
    --eval-every 0 --threads 1 --out "$tmp/run" --no-progress >/dev/null 2>&1
check "pretrain a tiny llama on the shard" test -f "$tmp/run/model.gguf"
h1=$(sed -E 's/.*"hash": "([0-9a-f]+)".*/\1/' <<<"$info")
h2=$("$cllm" tokenizer info --tokenizer "$tmp/run/model.gguf" 2>&1 | sed -E 's/.*"hash": "([0-9a-f]+)".*/\1/')
check "model.gguf carries the same SentencePiece vocabulary ($h1 vs $h2)" test "$h1" = "$h2"
out=$("$cllm" generate -m "$tmp/run/model.gguf" --prompt "hello" --max-tokens 8 --temp 0 --threads 1 2>"$tmp/gen.err")
check "generate runs on the model's own vocabulary" test $? = 0
check "generate printed text: '$out' $(head -c 200 "$tmp/gen.err")" test -n "$out"
finish
