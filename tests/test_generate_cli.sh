#!/usr/bin/env bash
# test_generate_cli.sh: `cllm generate` and `cllm chat` on a tiny model
# trained here for a few steps: the model file carries its tokenizer, output
# is deterministic for a seed, stop strings and --json work, the context
# limit is enforced with a clear message, bad flags exit 2 and bad files 1.
set -u
bin=${CLLM_BUILD:-build}/cllm
work=$(mktemp -d /tmp/cllm-test-generate.XXXXXX)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/lib.sh"
# A small repetitive corpus that a tiny model learns in a few dozen steps.
for i in $(seq 1 400); do echo "the cat sat on the mat. the dog ran to the log."; done > "$work/text.txt"
"$bin" pretrain --data "$work/text.txt" --preset tiny-gpt2 --steps 400 --batch 8 --seq 32 --context 128 --lr 1e-2 \
    --eval-every 0 --threads 1 --out "$work/run" --no-progress >"$work/train.log" 2>&1
check "pretrain exits 0" test $? -eq 0
model=$work/run/model.gguf
out=$("$bin" generate -m "$model" -p "the cat" -n 24 --temperature 0 --threads 1 2>"$work/err")
check "greedy generate exits 0" test $? -eq 0
check "echoes the prompt and continues it" test "${#out}" -gt 20
check "learned the corpus: greedy continues 'the cat' with ' sat on the mat'" bash -c "[[ '$out' == 'the cat sat on the mat'* ]]"
check "stats on stderr" grep -q "generated 24 tokens" "$work/err"
a=$("$bin" generate -m "$model" -p "the" -n 30 --seed 7 --temperature 1 --threads 1 2>/dev/null)
b=$("$bin" generate -m "$model" -p "the" -n 30 --seed 7 --temperature 1 --threads 1 2>/dev/null)
check "same seed, same text" test "$a" = "$b"
json=$("$bin" generate -m "$model" -p "the cat" -n 8 --temperature 0 --json --logprobs 3 --threads 1 2>/dev/null)
check "--json is valid JSON with 8 tokens and 3 alternatives each" /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["completion_tokens"] == 8 and d["finish_reason"] == "length", d
assert all(len(t["top"]) == 3 and t["top"][0][1] >= t["top"][1][1] for t in d["tokens"])
assert all(t["logprob"] <= 0 for t in d["tokens"])' "$json"
stop_out=$("$bin" generate -m "$model" -p "the cat" -n 40 --temperature 0 --stop "mat" --no-echo --threads 1 2>"$work/err")
check "stop string ends generation before it" bash -c "[[ '$stop_out' != *mat* ]] && grep -q 'finish: stop' '$work/err'"
long=$(head -c 400 "$work/text.txt")
"$bin" generate -m "$model" -p "$long" -n 4 --threads 1 >/dev/null 2>"$work/err"
check "prompt longer than the context exits 1" test $? -eq 1
check "...naming the token counts" grep -q "context window holds" "$work/err"
"$bin" generate -m "$model" -p "x" --top-p 2 >/dev/null 2>&1
check "--top-p 2 exits 2" test $? -eq 2
"$bin" generate -m "$model" -p "x" --temperature -1 >/dev/null 2>&1
check "--temperature -1 exits 2" test $? -eq 2
"$bin" generate -m "$model" -p "x" --top-k -5 >/dev/null 2>&1
check "--top-k -5 exits 2" test $? -eq 2
"$bin" generate -m "$model" -p "x" --threads 0 >/dev/null 2>&1
check "--threads 0 exits 2" test $? -eq 2
"$bin" generate -m "$model" -p "x" --bogus >/dev/null 2>&1
check "unknown flag exits 2" test $? -eq 2
"$bin" generate -p "x" >/dev/null 2>&1
check "missing model exits 2" test $? -eq 2
"$bin" generate -m "$work/none.gguf" -p "x" >/dev/null 2>&1
check "missing model file exits 1" test $? -eq 1
head -c 100 "$model" > "$work/truncated.gguf"
"$bin" generate -m "$work/truncated.gguf" -p "x" >/dev/null 2>"$work/err"
check "truncated model exits 1 naming the file" bash -c "grep -q truncated.gguf '$work/err'"
# A diverged model (a NaN weight, so every logit NaN): refused at load naming
# the tensor; loaded anyway with --no-check-weights, an error naming the
# cause, exit 1, no bare nan on stdout (the sampler used to read past its
# empty candidate list).
/usr/bin/python3 "$(dirname "$0")/nan_model.py" "$model" "$work/nan.gguf"
"$bin" generate -m "$work/nan.gguf" -p "the cat" -n 4 --threads 1 >/dev/null 2>"$work/err"
check "NaN model: refused at load, exit 1 naming the tensor" bash -c "test $? -eq 1 && grep -q \"tensor 'output_norm.weight' holds nan\" '$work/err'"
for mp in 0.05 0.5; do
    "$bin" generate -m "$work/nan.gguf" -p "the cat" -n 4 --min-p $mp --json --no-check-weights --threads 1 >"$work/nan.out" 2>"$work/err"
    check "NaN model, --min-p $mp --json: exit 1 naming the cause" bash -c "test $? -eq 1 && grep -q 'no finite logit' '$work/err'"
    check "NaN model, --min-p $mp --json: no nan on stdout" bash -c "! grep -qi nan '$work/nan.out'"
done
"$bin" generate -m "$work/nan.gguf" -p "the cat" -n 4 --temperature 0 --no-check-weights --threads 1 >/dev/null 2>"$work/err"
check "NaN model, greedy: exit 1 naming the cause" bash -c "test $? -eq 1 && grep -q 'no finite logit' '$work/err'"
"$bin" generate --help | grep -q "Usage: cllm generate"
check "generate --help" test $? -eq 0
# chat: scripted turns from stdin, the plain template (byte vocabulary).
printf 'the cat\n/set temperature 0\nthe dog\n/save %s\n' "$work/t.json" |
    "$bin" chat -m "$model" -n 12 --threads 1 >"$work/chat.out" 2>"$work/chat.err"
check "chat exits 0" test $? -eq 0
check "chat printed two replies" test "$(wc -l <"$work/chat.out")" -ge 2
check "transcript saved as JSON" /usr/bin/python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))["messages"]
assert m[-1]["role"] == "assistant" and m[-2] == {"role": "user", "content": "the dog"}, m' "$work/t.json"
"$bin" chat -m "$model" --prompt "the mat" -n 5 --threads 1 >/dev/null 2>&1
check "chat --prompt exits 0" test $? -eq 0
"$bin" chat -m "$model" --template chatml --prompt "x" >/dev/null 2>"$work/err"
rc=$?
check "chatml on a vocabulary without its specials fails naming them" bash -c "test $rc -eq 1 && grep -q 'im_start' '$work/err'"
"$bin" chat --help | grep -q "/reset"
check "chat --help lists commands" test $? -eq 0
finish
