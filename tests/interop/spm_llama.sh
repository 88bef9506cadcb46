#!/usr/bin/env bash
# spm_llama.sh: cllm's SentencePiece tokenizer gives llama.cpp's ids.
# Not part of `make test` (it needs llama-tokenize: in a llama.cpp build,
# `cmake --build build --target llama-tokenize`). A cllm BPE vocabulary of
# 4000 tokens is trained on the repository's docs and code plus Korean
# lines and turned into a SentencePiece vocabulary GGUF (spm_vocab.c: pieces
# with U+2581 spaces and scores = -rank, 256 byte tokens, <unk> <s> </s>,
# two control tokens and a user-defined one). Each line of a varied corpus
# (English, markdown, C code with indentation, Korean, numbers, emoji, runs
# of spaces and tabs, leading/trailing spaces, special-token texts) is
# tokenized by llama-tokenize and by `cllm tokenizer encode`, with special
# parsing (llama-tokenize's default, cllm --allow-special all) and without;
# the ids must be identical on every line, and cllm's decode must give the
# line back (but for lines holding the user-defined token, after which the
# encoder adds a space, or a literal U+2581, which decodes to a space: both
# as in llama.cpp). The whole corpus as one text, a ~2 MB text, and a
# vocabulary without newline pieces (cllm then merges line by line) are
# compared too, and the vocabulary written as a Hugging Face tokenizer.json
# (spm_hf_json.py) must give llama-tokenize's ids on the GGUF as well.
# Usage: bash tests/interop/spm_llama.sh [LLAMA_BIN_DIR]  (default /tmp/llama-src/build/bin;
#        LLAMA_SRC: the llama.cpp source tree, default LLAMA_BIN_DIR/../..)
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
bin_dir=${1:-/tmp/llama-src/build/bin}
lt=$bin_dir/llama-tokenize
. "$(dirname "$0")/../lib.sh"
[ -x "$lt" ] || fail_all "spm_llama: $lt not found; build the llama-tokenize target"
build=${CLLM_BUILD:-$root/build}
cllm=$build/cllm
work=$(mktemp -d /tmp/cllm-spm-llama.XXXXXX)
trap '[ -n "${KEEP_WORK:-}" ] || rm -rf "$work"' EXIT

korean=(안녕하세요 세계 토크나이저 한국어 문장을 나눕니다 모델은 다음 토큰을 예측합니다 데이터 학습 서울 사람 컴퓨터 언어 오늘 날씨가 좋습니다 우리는)
emoji=(😀 🚀 👍🏽 🇰🇷 ❤️ 🎉 🤖 ✨ 🐍 👨‍👩‍👧)
korean_line() { # $1: seed
    local s=$1 out="" i
    for i in 1 2 3 4 5 6; do out+="${korean[$(( (s * 7 + i * 13) % ${#korean[@]} ))]} "; done
    printf '%s' "${out% }"
}
# Training text for the BPE vocabulary.
{
    cat "$root"/README.md "$root"/docs/*.md "$root"/src/tokenizer/*.c
    for s in $(seq 1 400); do korean_line "$s"; echo ". 문장 $s"; done
} > "$work/train.txt"
"$cllm" tokenizer train --vocab-size 4000 --pattern gpt4 --no-special -o "$work/bpe" "$work/train.txt" >/dev/null 2>&1
check "train a 4000-token BPE vocabulary" test -f "$work/bpe"
cc -std=c11 -O2 -D_GNU_SOURCE -fopenmp -I"$root/include" "$root/tests/interop/spm_vocab.c" "$build/libcllm.a" \
    -lpcre2-8 -lcjson -lm -lpthread -o "$work/spm_vocab" 2>"$work/cc.log" || cat "$work/cc.log"
check "spm_vocab builds" test -x "$work/spm_vocab"
"$work/spm_vocab" "$work/bpe" "$work/spm.gguf"
check "SentencePiece vocabulary written" test -s "$work/spm.gguf"

# The corpus: one case per line.
{
    grep -v '^\s*$' "$root/README.md" | head -n 90 | cut -c1-300
    grep -hv '^\s*$' "$root"/docs/FORMATS.md | sed -n '40,100p' | cut -c1-300
    grep -hv '^\s*$' "$root"/src/tokenizer/encode.c | sed -n '60,120p'
    for s in $(seq 1 50); do korean_line $((s + 1000)); [ $((s % 3)) = 0 ] && printf ' (%d) model %s' "$s" "${emoji[$((s % 10))]}"; echo; done
    for s in $(seq 1 40); do
        printf '%d %d.%02d -%d 0x%X 1e%d %s 2026-12-%02d 3,141,592 %d%%\n' $((s * 7919)) $s $((s * 3 % 100)) $((s * 13)) \
            $((s * 4099)) $((s % 9)) "$((s * s * s))" $((s % 28 + 1)) $((s * 5))
    done
    for s in $(seq 1 30); do printf '%s%s %s hello%s\n' "${emoji[$((s % 10))]}" "${emoji[$(((s + 3) % 10))]}" "emoji $s" "${emoji[$(((s + 7) % 10))]}"; done
    for s in $(seq 1 30); do
        printf '%*s%s%*s%s%*s\n' $((s % 5)) '' "word$s" $((s % 7 + 1)) '' "next" $((s % 4)) ''
    done
    printf '\tindented with a tab\n  two spaces\n   three spaces\n    four spaces then\ttab\n \n  \n     \n'
    printf 'trailing space \ntrailing spaces   \n'
    printf '<s>hello</s>\n<s> hello </s>\n</s></s><s>\n<|im_start|>user hi<|im_end|>\n<|im_start|>assistant\n'
    printf 'a<tool>b\n<tool> call <tool>\n<unk> unknown <unk>\n<s\n</ s>\n<|im_start|\n<<s>>\n'
    printf 'é è ê ë café naïve résumé\nÅngström Ωmega ß straße\nПривет мир\nこんにちは世界\n中文字符测试\n'
    printf 'x\xe2\x96\x81y\n\xe2\x96\x81\xe2\x96\x81 already escaped\n'
} > "$work/corpus.txt"
total=$(wc -l < "$work/corpus.txt")
echo "corpus: $total lines"

same_sp=0 same_nosp=0 same_rt=0 rt_skip=0 n=0
while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    f=$work/line.txt
    printf '%s' "$line" > "$f"
    for mode in sp nosp; do
        if [ $mode = sp ]; then la=(); ca=(--allow-special all); else la=(--no-parse-special); ca=(); fi
        a=$("$lt" -m "$work/spm.gguf" -f "$f" --ids --no-bos --no-escape --log-disable "${la[@]}" 2>/dev/null </dev/null | tr -d '[],')
        b=$("$cllm" tokenizer encode --tokenizer "$work/spm.gguf" --file "$f" --format ids "${ca[@]}" 2>&1 </dev/null)
        if [ "$a" = "$b" ]; then
            [ $mode = sp ] && same_sp=$((same_sp + 1)) || same_nosp=$((same_nosp + 1))
        else
            echo "differ ($mode) line $n: '$line'"
            echo "  llama-tokenize: $a"
            echo "  cllm:           $b"
        fi
    done
    case $line in *"<tool>"*|*$'\xe2\x96\x81'*) rt_skip=$((rt_skip + 1)); continue;; esac
    ids=$("$cllm" tokenizer encode --tokenizer "$work/spm.gguf" --file "$f" --format ids 2>/dev/null </dev/null)
    "$cllm" tokenizer decode --tokenizer "$work/spm.gguf" $ids > "$work/back.txt" 2>/dev/null </dev/null
    if cmp -s "$f" "$work/back.txt"; then same_rt=$((same_rt + 1)); else echo "decode differs on line $n: '$line'"; fi
done < "$work/corpus.txt"
echo "special parsing on:  $same_sp / $n lines identical to llama-tokenize"
echo "special parsing off: $same_nosp / $n lines identical to llama-tokenize"
echo "decode(encode(line)) == line: $same_rt / $((n - rt_skip)) ($rt_skip lines with <tool> or a literal U+2581 left out:"
echo "  a space follows a user-defined token and U+2581 decodes to a space, in llama.cpp too)"
check "with special parsing, every line identical ($same_sp / $n)" test "$same_sp" = "$n"
check "without special parsing, every line identical ($same_nosp / $n)" test "$same_nosp" = "$n"
check "decode gives every line back ($same_rt / $((n - rt_skip)))" test "$same_rt" = $((n - rt_skip))
check "a few hundred lines" test "$n" -ge 300
a=$("$lt" -m "$work/spm.gguf" -f "$work/corpus.txt" --ids --no-bos --no-escape --log-disable 2>/dev/null | tr -d '[],')
b=$("$cllm" tokenizer encode --tokenizer "$work/spm.gguf" --file "$work/corpus.txt" --format ids --allow-special all 2>&1)
echo "whole corpus: $(wc -w <<<"$a") ids from llama-tokenize, $(wc -w <<<"$b") from cllm"
check "the whole corpus as one text: identical ids" test "$a" = "$b"
# A large text (the training text six times, about 2 MB) in both modes.
for i in 1 2 3 4 5 6; do cat "$work/train.txt"; done > "$work/big.txt"
for mode in sp nosp; do
    if [ $mode = sp ]; then la=(); ca=(--allow-special all); else la=(--no-parse-special); ca=(); fi
    "$lt" -m "$work/spm.gguf" -f "$work/big.txt" --ids --no-bos --no-escape --log-disable "${la[@]}" 2>/dev/null |
        tr -d '[],' | tr ' ' '\n' | grep . > "$work/big-llama.txt"
    "$cllm" tokenizer encode --tokenizer "$work/spm.gguf" --file "$work/big.txt" --format ids "${ca[@]}" 2>/dev/null |
        tr ' ' '\n' | grep . > "$work/big-cllm.txt"
    echo "$(wc -c < "$work/big.txt") bytes ($mode): $(wc -l < "$work/big-llama.txt") ids from llama-tokenize, $(wc -l < "$work/big-cllm.txt") from cllm"
    check "large text ($mode): identical ids" cmp -s "$work/big-llama.txt" "$work/big-cllm.txt"
done
# The same vocabulary as a Hugging Face tokenizer.json (Llama 2 style) and as
# the GGUF of the same tokenizer (spm_hf_json.py, with llama.cpp's gguf-py):
# cllm reading the JSON gives llama-tokenize's ids on that GGUF.
src_dir=${LLAMA_SRC:-$(cd "$bin_dir/../.." && pwd)}
if /usr/bin/python3 "$root/tests/interop/spm_hf_json.py" "$src_dir/gguf-py" "$work/spm.gguf" "$work/tokenizer.json" \
    "$work/spm-hf.gguf"; then
    for mode in sp nosp; do
        if [ $mode = sp ]; then la=(); ca=(--allow-special all); else la=(--no-parse-special); ca=(); fi
        for f in "$work/corpus.txt" "$work/big.txt"; do
            a=$("$lt" -m "$work/spm-hf.gguf" -f "$f" --ids --no-bos --no-escape --log-disable "${la[@]}" 2>/dev/null | tr -d '[],')
            b=$("$cllm" tokenizer encode --tokenizer "$work/tokenizer.json" --file "$f" --format ids "${ca[@]}" 2>&1)
            check "tokenizer.json ($mode, $(basename "$f"), $(wc -w <<<"$a") ids): identical to llama-tokenize on the GGUF" \
                test "$a" = "$b"
        done
    done
else
    bad "spm_hf_json.py wrote no tokenizer.json (needs $src_dir/gguf-py)"
fi
# A vocabulary without newline pieces: cllm then encodes line by line (spm.c).
"$work/spm_vocab" "$work/bpe" "$work/spm-nonl.gguf" no-newline
a=$("$lt" -m "$work/spm-nonl.gguf" -f "$work/corpus.txt" --ids --no-bos --no-escape --log-disable 2>/dev/null | tr -d '[],')
b=$("$cllm" tokenizer encode --tokenizer "$work/spm-nonl.gguf" --file "$work/corpus.txt" --format ids --allow-special all 2>&1)
echo "whole corpus, no newline pieces: $(wc -w <<<"$a") ids from llama-tokenize, $(wc -w <<<"$b") from cllm"
check "no newline pieces, the whole corpus as one text: identical ids" test "$a" = "$b"
printf 'a\xe2\nb\n\xf0\n\n\nc\xc3\n' > "$work/lead.txt"
a=$("$lt" -m "$work/spm-nonl.gguf" -f "$work/lead.txt" --ids --no-bos --no-escape --log-disable 2>/dev/null | tr -d '[],')
b=$("$cllm" tokenizer encode --tokenizer "$work/spm-nonl.gguf" --file "$work/lead.txt" --format ids 2>&1)
check "invalid lead bytes before newlines: identical ids ($a)" test "$a" = "$b"
a=$("$lt" -m "$work/spm.gguf" -f "$work/corpus.txt" --ids --no-escape --log-disable 2>/dev/null | tr -d '[],' | cut -d' ' -f1)
check "llama-tokenize adds BOS 1 by default (cllm_tokenizer_prompt_bos)" test "$a" = 1
finish
