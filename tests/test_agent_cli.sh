#!/usr/bin/env bash
# test_agent_cli.sh: the agent loop end to end with a real model. A tiny
# model is fine-tuned until it knows two tool conversations of the practice
# world by heart (a calculator question and an order question); then `cllm
# chat --tools` must write the call, run the built-in tool, feed the result
# back and answer as the conversation does, and `cllm eval --tools` must
# score both right with every call valid. Also: the same questions with
# --no-tools, the transcript /save, and bad input (a toolbox that names a
# program, a missing table, tool examples without --tools, --tools with
# --grammar) refused with one clear error.
set -u
build=${CLLM_BUILD:-build}
bin=$build/cllm
. "$(dirname "$0")/lib.sh"
lib_workdir cllm-test-agent
w=$work/world

"$bin" data world --out "$w" >/dev/null 2>&1 || fail_all "cllm data world failed"
head -n 1 "$w/tool_arithmetic.train.jsonl" >"$work/two.jsonl"
grep -m 1 '"name": "order_status"' "$w/tool_shop.train.jsonl" | grep -v 'no such order' >>"$work/two.jsonl"
check "two tool conversations picked" test "$(wc -l <"$work/two.jsonl")" -eq 2
q_arith=$(sed -n 1p "$work/two.jsonl" | grep -o '"role": "user", "content": "[^"]*"' | sed 's/.*"content": "//; s/"$//')
a_arith=$(sed -n 1p "$work/two.jsonl" | grep -o '"reference": "[^"]*"' | sed 's/.*: "//; s/"$//')
q_order=$(sed -n 2p "$work/two.jsonl" | grep -o '"role": "user", "content": "[^"]*"' | sed 's/.*"content": "//; s/"$//')
a_order=$(sed -n 2p "$work/two.jsonl" | grep -o '"reference": "[^"]*"' | sed 's/.*: "//; s/"$//')

# A tokenizer with the ChatML specials, a tiny Llama-style model, and SFT on
# the two conversations until they are known by heart.
"$bin" tokenizer train --vocab-size 400 --special '<|endoftext|>,<|im_start|>,<|im_end|>' -o "$work/tok.bin" \
    "$work/two.jsonl" "$w/tools.json" >/dev/null 2>&1
"$bin" tokenize --tokenizer "$work/tok.bin" -o "$work/text.tok" "$w/tool_shop.train.jsonl" >/dev/null 2>&1
"$bin" pretrain --data "$work/text.tok" --tokenizer "$work/tok.bin" --preset llama-1m --n-layer 2 --n-embd 64 \
    --n-head 4 --n-kv-head 2 --ffn-hidden 128 --context 1024 --steps 1 --batch 1 --seq 64 --eval-every 0 \
    --threads 1 --out "$work/pt" --no-progress >/dev/null 2>&1
check "pretrain (initialisation)" test -s "$work/pt/model.gguf"
"$bin" sft --model "$work/pt/model.gguf" --data "$work/two.jsonl" --template chatml --steps 300 --batch 2 \
    --seq 1024 --lr 1e-2 --warmup 10 --eval-every 0 --threads 1 --seed 1 --out "$work/sft" >"$work/sft.log" 2>&1
check "sft on the two conversations" test -s "$work/sft/model.gguf"
m=$work/sft/model.gguf

# The loop: call, result, answer.
out=$("$bin" chat -m "$m" --tools "$w/tools.json" --temperature 0 -n 64 --threads 1 -p "$q_arith" 2>"$work/c1.err")
check "chat --tools exits 0" test $? -eq 0
expr=$(sed -n 1p "$work/two.jsonl" | grep -o '\\"expression\\": \\"[^\\]*' | sed 's/.*\\"//')
check "the calculator is called with the question's numbers" grep -qF "[tool] calculator {\"expression\":\"$expr\"}" \
    "$work/c1.err"
check "its result is fed back" grep -qF "[tool] -> $a_arith" "$work/c1.err"
check "the answer is the result ($out)" test "$out" = "$a_arith"
out=$("$bin" chat -m "$m" --tools "$w/tools.json" --temperature 0 -n 64 --threads 1 -p "$q_order" 2>"$work/c2.err")
check "the order is looked up in the shop's table" grep -qE '^\[tool\] order_status \{"order":"[0-9]{4}"\}$' "$work/c2.err"
check "the table's status comes back" grep -qE '^\[tool\] -> \{"order":"[0-9]{4}","item":".*","status":".*"\}$' \
    "$work/c2.err"
check "the answer says it ($out)" test "$out" = "$a_order"

# A session: a question, /reset (the model knows each conversation alone), the
# other, then /save writes the OpenAI transcript with the call.
printf '%s\n/reset\n%s\n/save %s\n' "$q_arith" "$q_order" "$work/t.json" |
    "$bin" chat -m "$m" --tools "$w/tools.json" --temperature 0 -n 64 --threads 1 >"$work/s.out" 2>"$work/s.err"
check "a piped session answers both" bash -c "grep -qxF '$a_arith' '$work/s.out' && grep -qxF '$a_order' '$work/s.out'"
check "/save writes the calls and the tool results" bash -c "
    grep -q '\"tool_calls\"' '$work/t.json' && grep -q '\"role\":[[:space:]]*\"tool\"' '$work/t.json' &&
    grep -q '\"tool_call_id\"' '$work/t.json' && ! grep -qF '$q_arith' '$work/t.json'"

# eval: the agent answers both, every call valid; without tools it cannot compute.
"$bin" eval -m "$m" --task "$work/two.jsonl" --tools "$w/tools.json" --threads 1 --json --no-progress >"$work/e.json" \
    2>"$work/e.err"
check "eval --tools exits 0" test $? -eq 0
check "eval --tools: both right, both calls valid" /usr/bin/python3 -c '
import json, sys
r = {t["task"]: t for t in json.load(open(sys.argv[1]))["tasks"]}
a, s = r["tool_arithmetic"], r["tool_shop"]
assert a["metrics"]["accuracy"] == 1 and s["metrics"]["exact_match"] == 1, r
assert a["tool_calls"] == 1 and s["tool_calls"] == 1, r
assert a["tool_call_validity"] == 1 and s["tool_call_validity"] == 1, r' "$work/e.json"
"$bin" eval -m "$m" --task "$work/two.jsonl" --no-tools --threads 1 --json --no-progress >"$work/n.json" 2>/dev/null
check "eval --no-tools runs the model alone (no tool counts)" /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["tasks"]
assert len(r) == 2 and all("tool_calls" not in t for t in r), r' "$work/n.json"

# GRPO's tool_call reward on the world's prompts for the two questions: the
# model writes the expected calls, so every rollout earns 1.
grep -F -e "\"content\": \"$q_arith\"" -e "\"content\": \"$q_order\"" "$w/tool_prompts.train.jsonl" >"$work/p.jsonl"
check "the world has GRPO prompts for both" test "$(wc -l <"$work/p.jsonl")" -eq 2
"$bin" grpo -m "$m" --data "$work/p.jsonl" --verify tool_call --steps 2 --batch 2 --group 2 --max-new 48 \
    --temperature 0.1 --lr 1e-6 --threads 1 --seed 1 --json --out "$work/grpo" >"$work/g.json" 2>"$work/g.err"
check "grpo --verify tool_call: every rollout makes the expected call" /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["metric_first"] == 1.0 and r["metric_last"] == 1.0, r' "$work/g.json"

# Bad input: one clear error, non-zero exit.
"$bin" eval -m "$m" --task "$work/two.jsonl" --threads 1 >/dev/null 2>"$work/b1.err"
check "tool examples without --tools: exit 2 saying what to pass" bash -c "test $? -eq 2 &&
    grep -q 'two.jsonl:1: the example has \"tools\": pass --tools' '$work/b1.err'"
printf '[{"type": "function", "function": {"name": "sh"}, "x-cllm-builtin": "shell"}]' >"$work/evil.json"
"$bin" chat -m "$m" --tools "$work/evil.json" -p hi >/dev/null 2>"$work/b2.err"
check "a toolbox naming a program is refused" bash -c "test $? -ne 0 &&
    grep -q \"evil.json: \[0\].x-cllm-builtin 'shell' is not a built-in tool\" '$work/b2.err'"
sed 's/"shop.json"/"nowhere.json"/' "$w/tools.json" >"$work/notable.json"
"$bin" chat -m "$m" --tools "$work/notable.json" -p hi >/dev/null 2>"$work/b3.err"
check "a missing table is named" bash -c "test $? -ne 0 && grep -q 'nowhere.json' '$work/b3.err'"
echo 'root ::= "x"' >"$work/g.gbnf"
"$bin" chat -m "$m" --tools "$w/tools.json" --grammar "$work/g.gbnf" -p hi >/dev/null 2>"$work/b4.err"
check "--tools with --grammar: exit 2" bash -c "test $? -eq 2 && grep -q 'cannot be combined with --grammar' '$work/b4.err'"
"$bin" eval -m "$m" --task "$work/two.jsonl" --tools "$w/tools.json" --no-tools >/dev/null 2>"$work/b5.err"
check "--tools with --no-tools: exit 2" bash -c "test $? -eq 2 && grep -q 'exclude each other' '$work/b5.err'"
"$bin" chat -m "$m" --tools "$work/missing.json" -p hi >/dev/null 2>"$work/b6.err"
check "a missing toolbox file is named" bash -c "test $? -ne 0 && grep -q 'missing.json' '$work/b6.err'"
finish
