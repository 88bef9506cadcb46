#!/usr/bin/env bash
# make-examples.sh: rewrites the example inputs of the README's tour from the
# practice world (`cllm data world --seed 1 --size small`, deterministic) and
# the hand-written conversations.jsonl:
#
#   corpus.txt      the first 600 training stories (plain text, a blank line
#                   between stories; each English story is followed by a short
#                   Korean rendering)
#   held-out.txt    40 validation stories, never in corpus.txt (perplexity)
#   chat.jsonl      every 10th training example of the six tasks and of the
#                   world's conversations (system messages, several turns,
#                   reworded instructions), plus the hand-written
#                   conversations.jsonl
#   pairs.jsonl     150 preference pairs (prompt / chosen / rejected)
#   arithmetic.jsonl 120 arithmetic questions with a reference answer (grpo)
#
# Usage: examples/make-examples.sh [CLLM [OUT_DIR]]   (defaults: build/cllm,
# this directory). tests/test_readme_tour.sh checks that the committed files
# are what this script writes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cllm=${1:-$here/../build/cllm}
dest=${2:-$here}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$cllm" data world --seed 1 --size small --out "$tmp/w" >/dev/null
w=$tmp/w
# stories are paragraphs separated by one blank line
awk 'BEGIN { RS = ""; ORS = "\n\n" } NR <= 600' "$w/stories.train.txt" >"$tmp/corpus.txt"
awk 'BEGIN { RS = ""; ORS = "\n\n" } NR <= 40' "$w/stories.val.txt" >"$tmp/held-out.txt"
{
    for t in translate_en_ko translate_ko_en summary sentiment faq arithmetic conversations; do
        awk 'NR % 10 == 1' "$w/$t.train.jsonl"
    done
    cat "$here/conversations.jsonl"
} >"$tmp/chat.jsonl"
awk 'NR % 55 == 1 && ++n <= 150' "$w/preferences.train.jsonl" >"$tmp/pairs.jsonl"
awk 'NR % 15 == 2 && ++n <= 120' "$w/arithmetic.train.jsonl" >"$tmp/arithmetic.jsonl"
for f in corpus.txt held-out.txt chat.jsonl pairs.jsonl arithmetic.jsonl; do
    mv "$tmp/$f" "$dest/$f"
done
