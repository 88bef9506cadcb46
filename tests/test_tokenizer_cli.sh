#!/usr/bin/env bash
# `cllm tokenizer` and `cllm tokenize` end to end: the guide's example,
# train -> encode -> decode round trip, shards (u16 header fields, one EOT
# per document), and bad input: usage errors exit 2, data errors exit 1
# with file:line[:col], and no output file is left behind on failure.
set -u
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
build=${CLLM_BUILD:-build}
cllm=$build/cllm
if [ ! -x "$cllm" ]; then fail_all "missing $cllm"; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# expect CODE PATTERN -- command...: exit code CODE and stderr matching PATTERN
expect() {
    local code=$1 pat=$2; shift 3
    "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ $rc -ne "$code" ] || ! grep -qE -- "$pat" "$tmp/err"; then
        echo "  got exit $rc, stderr: $(head -c 300 "$tmp/err")"; return 1
    fi
}
# A small English + Korean corpus.
for i in $(seq 1 300); do
    echo "Hello, world! The model learns to predict the next token, line $i."
    echo "안녕하세요, 세계! 모델은 다음 토큰을 예측합니다. 문장 $i."
done > "$tmp/corpus.txt"
check "train" "$cllm" tokenizer train --vocab-size 600 --pattern gpt4 -o "$tmp/tok" "$tmp/corpus.txt"
check "info names the specials" bash -c "'$cllm' tokenizer info --tokenizer '$tmp/tok' | grep -q '<|im_start|>'"
out=$("$cllm" tokenizer encode --tokenizer "$tmp/tok" --text "Hello, world!" | head -n 1)
check "guide example boundaries: $out" test "$out" = '["Hello", ",", " world", "!"]'
ids=$("$cllm" tokenizer encode --tokenizer "$tmp/tok" --file "$tmp/corpus.txt" --format ids)
"$cllm" tokenizer decode --tokenizer "$tmp/tok" <<<"$ids" > "$tmp/back.txt"
check "decode(encode(corpus)) == corpus" cmp -s "$tmp/corpus.txt" "$tmp/back.txt"
check "bytes per token reported" bash -c "'$cllm' tokenizer encode --tokenizer '$tmp/tok' --file '$tmp/corpus.txt' --format count | grep -q bytes_per_token"
# Shards from text and JSONL: header fields and one EOT per document.
printf '{"text": "Hello, world!"}\n\n{"text": "안녕하세요"}\r\n{"text": "<|endoftext|> stays text"}\n' > "$tmp/docs.jsonl"
check "tokenize jsonl" "$cllm" tokenize --tokenizer "$tmp/tok" --jsonl -o "$tmp/docs.tok" "$tmp/docs.jsonl"
hdr() { od -An -t u4 -j "$2" -N 4 "$1" | tr -d ' '; }
eot=$("$cllm" tokenizer info --tokenizer "$tmp/tok" | sed -E 's/.*"eot_id": ([0-9]+).*/\1/')
check "shard magic" bash -c "head -c 7 '$tmp/docs.tok' | grep -q CLLMTOK"
check "shard u16 ids" test "$(hdr "$tmp/docs.tok" 12)" = 2
check "shard vocab size" test "$(hdr "$tmp/docs.tok" 24)" = 600
check "shard eot id" test "$(hdr "$tmp/docs.tok" 28)" = "$eot"
n=$(hdr "$tmp/docs.tok" 16)
check "shard size = 64 + 2n" test "$(wc -c < "$tmp/docs.tok")" = $((64 + 2 * n))
neot=$(od -An -t u2 -j 64 -v "$tmp/docs.tok" | tr -s ' ' '\n' | grep -cx "$eot")
check "one EOT per document (3), document text never yields it" test "$neot" = 3
check "tokenize text files" "$cllm" tokenize --tokenizer "$tmp/tok" -o "$tmp/txt.tok" --threads 2 "$tmp/corpus.txt" "$tmp/corpus.txt"
# Usage errors: exit 2 and a --help hint.
expect 2 "--help" -- "$cllm" tokenizer frobnicate; check "unknown subcommand" test $? = 0
expect 2 "vocab-size" -- "$cllm" tokenizer train --vocab-size abc -o "$tmp/x" "$tmp/corpus.txt"; check "non-numeric vocab size" test $? = 0
expect 2 "vocab-size" -- "$cllm" tokenizer train --vocab-size 100 -o "$tmp/x" "$tmp/corpus.txt"; check "vocab size below 256" test $? = 0
expect 2 "vocab-size" -- "$cllm" tokenizer train --vocab-size 99999999999999999999 -o "$tmp/x" "$tmp/corpus.txt"; check "overflowing vocab size" test $? = 0
expect 2 "needs a value" -- "$cllm" tokenizer train --vocab-size; check "flag missing its value" test $? = 0
expect 2 "unknown flag" -- "$cllm" tokenizer train --vocab-size 300 --bogus -o "$tmp/x" "$tmp/corpus.txt"; check "unknown flag" test $? = 0
expect 2 "pattern" -- "$cllm" tokenizer train --vocab-size 300 --pattern gpt9 -o "$tmp/x" "$tmp/corpus.txt"; check "unknown pattern" test $? = 0
expect 2 "-t must" -- "$cllm" tokenize --tokenizer "$tmp/tok" -t 0 -o "$tmp/x" "$tmp/corpus.txt"; check "-t 0" test $? = 0
expect 2 "not a token id" -- "$cllm" tokenizer decode --tokenizer "$tmp/tok" -- -5; check "negative id" test $? = 0
expect 2 "not a special token" -- "$cllm" tokenizer encode --tokenizer "$tmp/tok" --allow-special "<|nope|>" --text hi; check "unknown allowed special" test $? = 0
# Data errors: exit 1, the file named, nothing written.
expect 1 "no-such-file" -- "$cllm" tokenizer train --vocab-size 300 -o "$tmp/x" "$tmp/no-such-file"; check "missing input" test $? = 0
expect 1 "$tmp" -- "$cllm" tokenizer train --vocab-size 300 -o "$tmp/x" "$tmp"; check "directory input" test $? = 0
expect 1 "/dev/zero" -- "$cllm" tokenize --tokenizer "$tmp/tok" -o "$tmp/x" /dev/zero; check "/dev/zero input" test $? = 0
expect 1 "missing-dir" -- "$cllm" tokenizer train --vocab-size 300 -o "$tmp/missing-dir/x" "$tmp/corpus.txt"; check "output dir missing" test $? = 0
expect 1 "vocabulary size|not a token" -- "$cllm" tokenizer decode --tokenizer "$tmp/tok" 600; check "decode id >= vocab" test $? = 0
printf '{"text": "ok"}\n{"text": "ok"}\n{"text": broken}\n' > "$tmp/bad.jsonl"
expect 1 "bad.jsonl:3:" -- "$cllm" tokenize --tokenizer "$tmp/tok" --jsonl -o "$tmp/bad.tok" "$tmp/bad.jsonl"; check "malformed JSONL names file:line:col" test $? = 0
check "no partial shard" test ! -e "$tmp/bad.tok"
printf '{"content": "ok"}\n' > "$tmp/nofield.jsonl"
expect 1 'field "text"' -- "$cllm" tokenize --tokenizer "$tmp/tok" --jsonl -o "$tmp/nf.tok" "$tmp/nofield.jsonl"; check "missing field" test $? = 0
python_deep=$(printf '%*s' 100000 '' | tr ' ' '[')
echo "$python_deep" > "$tmp/deep.jsonl"
expect 1 "deep.jsonl:1" -- "$cllm" tokenize --tokenizer "$tmp/tok" --jsonl -o "$tmp/deep.tok" "$tmp/deep.jsonl"; check "10^5 nested [ is an error" test $? = 0
printf 'cllm-tokenizer 1\nrule ranks\npattern gpt2\nvocab 4294967295\n' > "$tmp/badtok"
expect 1 "badtok" -- "$cllm" tokenizer info --tokenizer "$tmp/badtok"; check "huge vocab count" test $? = 0
: > "$tmp/empty"
expect 1 "empty" -- "$cllm" tokenizer info --tokenizer "$tmp/empty"; check "empty tokenizer file" test $? = 0
check "no temp files left" bash -c "! ls '$tmp' | grep -q '\.tmp\.'"
finish
