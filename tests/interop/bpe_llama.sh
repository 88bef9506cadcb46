#!/usr/bin/env bash
# bpe_llama.sh: cllm encodes llama.cpp's byte-level BPE GGUF vocabularies
# (tokenizer.ggml.model "gpt2") exactly as llama.cpp does, for every
# tokenizer.ggml.pre family cllm supports that has a vocabulary file in
# llama.cpp's models/ directory (ggml-vocab-*.gguf: Llama 3, Qwen2, Qwen3.5,
# DeepSeek LLM and Coder, StarCoder, Refact, Command-R, Falcon, GPT-2, MPT,
# GPT-NeoX without a pre name).
# Not part of `make test`: it needs a llama.cpp build (llama-tokenize and
# libllama.so in LLAMA_BIN_DIR, the source tree with include/ and models/).
#
# Each vocabulary encodes a varied corpus written here (English, code,
# numbers of 1 to 24 digits, contractions in several cases, runs of spaces,
# tabs and newlines, CR LF, CJK, Korean, Japanese, emoji with joiners,
# accents composed and combining, other scripts and digits, full-width
# punctuation, special-token and user-defined-token texts): line by line
# with special parsing (llama.cpp's default, cllm --allow-special all) and
# without; every line must give identical ids. llama.cpp's side of the
# per-line run is llama_lines.c (the library's llama_tokenize, the function
# llama-tokenize calls, one process for all lines); the whole corpus as one
# text, lines of invalid UTF-8, and a large text (tinyshakespeare, or a
# generated 1 MB text) go through llama-tokenize itself.
# Usage: bash tests/interop/bpe_llama.sh [LLAMA_BIN_DIR [LLAMA_SRC_DIR]]
#        (default /tmp/llama-src/build/bin and /tmp/llama-src)
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
bin_dir=${1:-/tmp/llama-src/build/bin}
src_dir=${2:-/tmp/llama-src}
lt=$bin_dir/llama-tokenize
. "$(dirname "$0")/../lib.sh"
[ -x "$lt" ] || fail_all "bpe_llama: $lt not found; build the llama-tokenize target"
[ -f "$bin_dir/libllama.so" ] || fail_all "bpe_llama: $bin_dir/libllama.so not found"
[ -f "$src_dir/include/llama.h" ] || fail_all "bpe_llama: $src_dir/include/llama.h not found"
build=${CLLM_BUILD:-$root/build}
cllm=$build/cllm
[ -x "$cllm" ] || fail_all "bpe_llama: $cllm not found; run make"
work=$(mktemp -d /tmp/cllm-bpe-llama.XXXXXX)
trap 'rm -rf "$work"' EXIT

cc -std=c11 -O1 -D_GNU_SOURCE -I"$src_dir/include" -I"$src_dir/ggml/include" "$root/tests/interop/llama_lines.c" \
    -L"$bin_dir" -lllama -Wl,-rpath,"$bin_dir" -o "$work/llama_lines" 2>"$work/cc.log" || cat "$work/cc.log"
check "llama_lines builds against libllama" test -x "$work/llama_lines"

families=(${BPE_FAMILIES:-llama-bpe qwen2 qwen35 deepseek-llm deepseek-coder starcoder refact command-r falcon gpt-2 mpt gpt-neox tekken})

# The corpus (valid UTF-8): one case per line.
{
    printf '%s\n' "Hello world" "hello World HELLO" " leading space" "trailing space " "  two leading" \
        "The quick brown fox jumps over the lazy dog." "It's a dog's life; they're here, we've gone, I'm sure, you'll see, he'd know." \
        "IT'S SHOUTING: THEY'RE, WE'VE, I'M, YOU'LL, HE'D" "Mixed: It'S, They'Re, we'VE, I'm, You'Ll, she'D" \
        "don't won't can't shouldn't y'all 'tis 'twas ''s '' ' 's 'S 'x" "curly: it’s they’re ’tis" "long s: 'ſ and K (Kelvin) 'ß" \
        "e-mail: someone@example.com, https://example.org/a/b?c=d&e=f#g" "snake_case camelCase PascalCase kebab-case SCREAMING_CASE" \
        " JavaScript iPhone YouTube GitHub McDonald's HTTPServer éÉtude ÀbÇd"
    for n in 1 12 123 1234 12345 123456 1234567 12345678 123456789 1234567890 12345678901 123456789012 \
        1234567890123 12345678901234 123456789012345 1234567890123456 12345678901234567 123456789012345678 \
        1234567890123456789 12345678901234567890 123456789012345678901234; do
        printf '%s x%s %s.%s -%s\n' "$n" "$n" "$n" "${n:0:3}" "$n"
    done
    printf '%s\n' "3.14159 2.71828 1e-10 6.022e23 0x1F 0b1010 1,000,000 1_000_000 100% \$42.50 €99 ¥1000" \
        "2026-12-08T03:04:05Z 12:34:56 +1 (555) 123-4567" "v1.2.3-rc.4 IPv4 192.168.0.1 port 8080" \
        "Arabic-Indic ٠١٢٣٤٥ Devanagari ०१२३ fullwidth １２３４５ superscript x² x³ ½ ⅓ Roman Ⅻ ⅻ circled ①②③"
    printf '%s\n' 'int main(int argc, char **argv) {' '    for (int i = 0; i < argc; i++) printf("%s\n", argv[i]);' \
        '    return x->y[3] >= 0 && (a || !b) ? a << 2 : b >> 1;' '}' 'def f(x): return {"k": [1, 2, 3], '"'"'v'"'"': None}  # comment' \
        '	if (x) {		// tabs' '  - item: {a: 1, b: [x, y]}' '<div class="a">&amp; &lt;tag&gt;</div>' '$ ls -la | grep "\.c$" > out.txt 2>&1' \
        'SELECT * FROM t WHERE a = '"'"'b'"'"' AND c <> 3;' '#include <stdio.h>' '/* block */ // line -- dash ... ellipsis ?! !? ;;'
    printf '%s\n' "a  b   c    d     e      f" "tab	separated	values		two tabs" "mixed 	 	 spaces and tabs" \
        "                    twenty spaces" "end with spaces     " "	leading tab" " " "  " "   " "	" "		"
    printf 'carriage\r\n' ; printf 'lone\rcarriage\n'; printf 'CR in\r\r the middle \r\n'
    printf '%s\n' "안녕하세요 세계! 토크나이저 테스트입니다." "한국어 문장을 나눕니다, 그리고 숫자 123도." \
        "你好，世界！这是一个测试。" "中文字符测试：标点符号、引号“你好”和（括号）" "こんにちは世界。カタカナとひらがな、漢字。" \
        "日本語のテスト：「かぎかっこ」とー長音" "混合 mixed 한국어 English 日本語 text" "全角ＡＢＣａｂｃ！？（）＠"
    printf '%s\n' "emoji 😀 🚀 👍🏽 🇰🇷 ❤️ 🎉" "family 👨‍👩‍👧‍👦 and flag 🏳️‍🌈 ok" "😀😀😀 three in a row" "✨sparkle✨ 🐍python🐍"
    printf '%s\n' "café naïve résumé façade coöperate" "Ångström Ωmega ß straße Œuvre" \
        "Привет, мир! Как дела?" "Γειά σου Κόσμε" "مرحبا بالعالم" "नमस्ते दुनिया" "สวัสดีชาวโลก" "Xin chào thế giới" \
        "ČŠŽ čšž Łódź Ķ ĳ ǅ ǈ" "µ micro vs μ mu, Å angstrom vs Å"
    printf 'combining: e\xcc\x81 a\xcc\x88 n\xcc\x83\n'
    printf 'nbsp:\xc2\xa0here, ideographic:\xe3\x80\x80space, thin:\xe2\x80\x89x, zwsp:\xe2\x80\x8bx, nel:\xc2\x85x\n'
    printf '%s\n' "<|endoftext|>" "text<|endoftext|>more" "<|begin_of_text|>Hello<|eot_id|>" "<|start_header_id|>user<|end_header_id|>" \
        "<|im_start|>user hi<|im_end|>" "<|im_start|>assistant" "<｜begin▁of▁sentence｜>hi<｜end▁of▁sentence｜>" \
        "[PAD151646] [PAD151650]x" "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>hi" "<fim_prefix>a<fim_suffix>b<fim_middle>" \
        "<s>hello</s> <unk>" "<|endoftext|" "<<|endoftext|>>" "ø ö ú ÿ õ ÷ û ý Á À (byte-level letters)" \
        "x                        y (24 spaces)" "<|im_start|><|im_start|><|im_end|>"
    # Generated lines: words, numbers and punctuation in many combinations.
    words=(the of model token "it's" "IT'S" 2026 3.5 "(x)" "{y}" naïve 東京 서울 "🙂" "--" "..." "\"q\"" "'s" 100000)
    for s in $(seq 1 110); do
        line=""
        for k in 1 2 3 4 5 6 7; do line+="${words[$(( (s * 11 + k * 7) % ${#words[@]} ))]}"; [ $(( (s + k) % 3 )) = 0 ] || line+=" "; done
        printf '%s\n' "$line"
    done
} > "$work/corpus.txt"
/usr/bin/python3 -c '
import json, sys
with open(sys.argv[1], "rb") as f, open(sys.argv[2], "w") as o:
    for line in f.read().split(b"\n")[:-1]:
        o.write(json.dumps({"text": line.decode("utf-8")}) + "\n")
' "$work/corpus.txt" "$work/corpus.jsonl"
total=$(wc -l < "$work/corpus.txt")
check "corpus of a few hundred lines ($total) written as JSONL" test "$(wc -l < "$work/corpus.jsonl")" = "$total" -a "$total" -ge 200
# Invalid UTF-8 (llama.cpp reads each byte that starts no valid character as U+FFFD).
printf 'lone continuation \x80 here' > "$work/bad1.txt"
printf 'truncated \xe4\xb8 and \xf0\x9f\x98 end' > "$work/bad2.txt"
printf '\xff\xfe bytes \xc3' > "$work/bad3.txt"
printf 'overlong \xc0\xaf slash and \xe0\x80\x80 nul' > "$work/bad4.txt"
printf 'mixed \xe2\x82 valid \xe2\x82\xac euro \x80\x80\x80' > "$work/bad5.txt"
# A large text.
if [ -f "$root/../shared/data/tinyshakespeare.txt" ]; then
    big=$root/../shared/data/tinyshakespeare.txt
else
    big=$work/big.txt
    for i in $(seq 1 12); do cat "$work/corpus.txt" "$root/README.md" "$root"/docs/*.md; done | head -c 1100000 > "$big"
fi

ids_llama() { "$lt" -m "$1" -f "$2" --ids --no-bos --no-escape --log-disable "${@:3}" 2>/dev/null </dev/null | tr -d '[],'; }
ids_cllm() { "$cllm" tokenizer encode --tokenizer "$1" --file "$2" --format ids "${@:3}" 2>&1 </dev/null; }

# Families llama.cpp ships no vocabulary of: another family's vocabulary with this
# tokenizer.ggml.pre (the split and the encoding rules come from the name alone).
declare -A derived=([tekken]=qwen2)
for fam in ${families[@]}; do
    v=$src_dir/models/ggml-vocab-$fam.gguf
    if [ ! -f "$v" ] && [ -n "${derived[$fam]:-}" ]; then
        printf '%s' "$fam" > "$work/pre.txt"
        PYTHONPATH=$root/tests /usr/bin/python3 "$root/tests/gguf_set_template.py" \
            "$src_dir/models/ggml-vocab-${derived[$fam]}.gguf" "$work/vocab-$fam.gguf" "$work/pre.txt" tokenizer.ggml.pre &&
            v=$work/vocab-$fam.gguf
    fi
    if [ ! -f "$v" ]; then bad "$fam: $v missing"; continue; fi
    for mode in sp nosp; do
        if [ $mode = sp ]; then ca=(--allow-special all); else ca=(); fi
        "$work/llama_lines" "$v" "$work/corpus.txt" $mode > "$work/$fam-$mode-llama.txt" 2>"$work/err.txt" ||
            cat "$work/err.txt"
        "$cllm" tokenizer encode --tokenizer "$v" --jsonl "$work/corpus.jsonl" --field text --format ids "${ca[@]}" \
            > "$work/$fam-$mode-cllm.txt" 2>"$work/err.txt" </dev/null || cat "$work/err.txt"
        same=$(paste -d '\t' "$work/$fam-$mode-llama.txt" "$work/$fam-$mode-cllm.txt" | awk -F'\t' '$1 == $2' | wc -l)
        if [ "$same" != "$total" ]; then
            paste -d '\t' "$work/$fam-$mode-llama.txt" "$work/$fam-$mode-cllm.txt" | awk -F'\t' '$1 != $2 {print NR}' |
                head -n 5 | while read -r k; do
                    echo "  $fam ($mode) line $k: $(sed -n "${k}p" "$work/corpus.txt" | cut -c1-80)"
                    echo "    llama.cpp: $(sed -n "${k}p" "$work/$fam-$mode-llama.txt" | cut -c1-150)"
                    echo "    cllm:      $(sed -n "${k}p" "$work/$fam-$mode-cllm.txt" | cut -c1-150)"
                done
        fi
        check "$fam: special parsing $mode: every line identical ($same / $total)" test "$same" = "$total"
        if [ $mode = sp ]; then la=(); else la=(--no-parse-special); fi
        a=$(ids_llama "$v" "$work/corpus.txt" "${la[@]}")
        b=$(ids_cllm "$v" "$work/corpus.txt" "${ca[@]}")
        check "$fam ($mode): the whole corpus as one text, $(wc -w <<<"$a") ids, identical" test "$a" = "$b"
    done
    nbad=0
    for k in 1 2 3 4 5; do
        a=$(ids_llama "$v" "$work/bad$k.txt" --no-parse-special)
        b=$(ids_cllm "$v" "$work/bad$k.txt")
        if [ -n "$a" ] && [ "$a" = "$b" ]; then nbad=$((nbad + 1)); else echo "  $fam invalid UTF-8 $k: llama.cpp '$a' cllm '$b'"; fi
    done
    check "$fam: invalid UTF-8: $nbad / 5 texts identical" test "$nbad" = 5
    "$lt" -m "$v" -f "$big" --ids --no-bos --no-escape --log-disable --no-parse-special 2>/dev/null | tr -d '[],' | tr ' ' '\n' |
        grep . > "$work/big-llama.txt"
    ids_cllm "$v" "$big" | tr ' ' '\n' | grep . > "$work/big-cllm.txt"
    check "$fam: $(wc -c < "$big") bytes of text: $(wc -l < "$work/big-llama.txt") ids from llama-tokenize, identical" \
        cmp -s "$work/big-llama.txt" "$work/big-cllm.txt"
done
finish
