#!/usr/bin/env bash
# test_newcomer_cli.sh: what a new user meets first (issue: the newcomer's
# path): help that points at commands that exist, messages that say what to
# do next, `cllm --version`, and the trainers accepting cllm's own files.
set -u
bin=${CLLM_BUILD:-build}/cllm
work=$(mktemp -d /tmp/cllm-test-newcomer.XXXXXX)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/lib.sh"
for i in $(seq 1 30); do echo "the cat sat on the mat. the dog ran to the log."; done >"$work/text.txt"

# pretrain --help names `cllm info --list` (it named --presets, which does not exist), and that runs
"$bin" pretrain --help | grep -q "cllm info --list"
check "pretrain --help points to 'cllm info --list'" test $? -eq 0
"$bin" info --list >/dev/null 2>&1
check "cllm info --list exits 0" test $? -eq 0

# a vocabulary smaller than asked is said, with why
"$bin" tokenizer train --vocab-size 4096 -o "$work/tok" "$work/text.txt" >/dev/null 2>"$work/err"
check "tokenizer train exits 0" test $? -eq 0
check "tokenizer train says it made fewer tokens than asked, and why" \
    grep -q "fewer than the 4096 asked: the corpus ran out of pairs" "$work/err"

# text data with a tokenizer: say that text is read as bytes and how to make shards
"$bin" pretrain --data "$work/text.txt" --tokenizer "$work/tok" --preset tiny-llama --steps 1 --out "$work/run" \
    --no-progress >/dev/null 2>"$work/err"
check "pretrain on text with --tokenizer exits 2 or 1" test $? -ne 0
check "and says text is read as bytes and 'cllm tokenize' makes shards" \
    bash -c "grep -q 'raw bytes' '$work/err' && grep -q 'cllm tokenize' '$work/err'"

# cllm --version is cllm version
check "cllm --version prints what cllm version prints" bash -c "[ \"\$('$bin' --version)\" = \"\$('$bin' version)\" ]"

# grpo reads cllm's own task files (messages + reference), as every other trainer does
"$bin" pretrain --data "$work/text.txt" --preset tiny-llama --steps 1 --seq 16 --context 128 --batch 2 --eval-every 0 \
    --no-progress --threads 1 --out "$work/base" >/dev/null 2>&1
cat >"$work/arith.jsonl" <<'J'
{"task": "arithmetic", "messages": [{"role": "user", "content": "What is 2 plus 3?"}, {"role": "assistant", "content": "5"}], "reference": "5"}
{"task": "arithmetic", "messages": [{"role": "user", "content": "Add 1 and 1."}, {"role": "assistant", "content": "2"}]}
J
"$bin" grpo -m "$work/base/model.gguf" --data "$work/arith.jsonl" --verify number --steps 1 --batch 2 --group 2 \
    --max-new 2 --threads 1 --out "$work/grpo" >/dev/null 2>"$work/err"
check "grpo accepts a task file in the messages format ($(head -c 120 "$work/err"))" test -f "$work/grpo/model.gguf"

# sft packs by default (unpacked rows of short examples were 75% padding); --no-pack says the fill
for i in $(seq 1 20); do
    echo '{"messages": [{"role": "user", "content": "where is the cat?"}, {"role": "assistant", "content": "on the mat."}]}'
done >"$work/chat.jsonl"
"$bin" sft -m "$work/base/model.gguf" --data "$work/chat.jsonl" --steps 1 --batch 2 --seq 64 --threads 1 \
    --out "$work/sft" >/dev/null 2>"$work/err"
check "sft packs by default ($(grep -m1 'rows of' "$work/err"))" grep -q "rows of 64 per epoch (packed)" "$work/err"
"$bin" sft -m "$work/base/model.gguf" --data "$work/chat.jsonl" --steps 1 --batch 2 --seq 64 --threads 1 --no-pack \
    --out "$work/sft-unpacked" >/dev/null 2>"$work/err"
check "sft --no-pack says how full its rows are ($(grep -m1 'fill' "$work/err"))" \
    grep -Eq "unpacked, real tokens fill [0-9.]+% of each row" "$work/err"

# "did you mean" on unknown flags, from each command's own --help (tools/cli.c, cli_unknown_flag)
for case in "pretrain --stesp 3|--steps" "generate --temprature 0.5|--temperature" "sft --lora-rnk 4|--lora-rank" \
    "grpo --grup 4|--group" "chat --sytem x|--system" "tokenizer train --vocab 30|--vocab-size" "serve --prot 1|--port" \
    "data world --sede 3|--seed" "generate --top_p 1|--top-p"; do
    args=${case%|*} want=${case#*|}
    # shellcheck disable=SC2086
    "$bin" $args >/dev/null 2>"$work/err"
    rc=$?
    check "cllm $args exits 2 and asks 'did you mean $want?' ($(head -n 1 "$work/err"))" \
        bash -c "[ $rc -eq 2 ] && grep -qF 'did you mean $want?' '$work/err'"
done
"$bin" info --bogus >/dev/null 2>"$work/err"
check "a flag close to none gets no suggestion" bash -c "grep -q \"unknown flag '--bogus'\" '$work/err' && ! grep -q 'did you mean' '$work/err'"

# aliases: --temp for --temperature (sampling and the RL rollouts), -o for --out on the trainers
"$bin" generate -m "$work/base/model.gguf" --temp 0 -p "the" -n 2 --threads 1 >/dev/null 2>"$work/err"
rc=$?  # before the message's $(...), which would reset $?
check "generate --temp is --temperature ($(tail -c 200 "$work/err"))" test "$rc" -eq 0
"$bin" pretrain --data "$work/text.txt" --preset tiny-llama --steps 1 --seq 16 --batch 2 --eval-every 0 \
    --no-progress --threads 1 -o "$work/pre-o" >/dev/null 2>&1
check "pretrain -o is --out" test -s "$work/pre-o/model.gguf"
"$bin" sft -m "$work/base/model.gguf" --data "$work/chat.jsonl" --steps 1 --batch 2 --seq 64 --threads 1 \
    -o "$work/sft-o" >/dev/null 2>&1
check "sft -o is --out" test -s "$work/sft-o/model.gguf"
"$bin" data world -o "$work/world" --stories 5 >/dev/null 2>&1
check "data world -o is --out" test -s "$work/world/manifest.json"

# RL commands: a progress bar with ETA on a terminal; the summary names what first/last measure
if command -v script >/dev/null; then
    script -qfec "'$bin' grpo -m '$work/base/model.gguf' --data '$work/arith.jsonl' --verify number --steps 2 --batch 2 \
        --group 2 --max-new 2 --threads 1 --out '$work/grpo-tty'" /dev/null >"$work/tty" 2>&1
    check "grpo on a terminal draws a progress bar with ETA ($(tr '\r' '\n' <"$work/tty" | grep -a -m1 ETA))" \
        grep -aq "grpo \[#*\.*\] .*ETA" "$work/tty"
else
    ok "grpo progress bar (skipped: no script(1))"
fi
out=$("$bin" grpo -m "$work/base/model.gguf" --data "$work/arith.jsonl" --verify number --steps 1 --batch 2 --group 2 \
    --max-new 2 --threads 1 --out "$work/grpo2" 2>"$work/err")
check "grpo's summary says what first/last are ($(grep metric <<<"$out"))" grep -q '^  metric    .* (mean reward of the rollouts, first -> last step of this run)' <<<"$out"
check "grpo without a terminal logs steps instead of a bar" bash -c "grep -q 'grpo step 1:' '$work/err' && ! grep -q ETA '$work/err'"

# output hygiene without a terminal: no escape sequences, one final progress line, singular counts
"$bin" tokenize --tokenizer "$work/tok" -o "$work/one.tok" "$work/text.txt" >"$work/out" 2>"$work/err"
check "tokenize in a log: exactly one progress line ($(grep -c 'tokenize \[' "$work/err"))" \
    test "$(grep -c 'tokenize \[' "$work/err")" -eq 1
check "tokenize says 'from 1 document,' ($(grep wrote "$work/err"))" grep -q "from 1 document," "$work/err"
"$bin" pretrain --data "$work/text.txt" --preset tiny-llama --steps 1 --seq 16 --batch 2 --eval-every 0 --threads 1 \
    --out "$work/pre-log" >"$work/out" 2>"$work/err"
check "pretrain in a log: exactly one progress line ($(grep -c 'pretrain \[' "$work/err"))" \
    test "$(grep -c 'pretrain \[' "$work/err")" -eq 1
check "pretrain in a log: no escape sequences" bash -c "! grep -q $'\033' '$work/err' '$work/out'"
check "pretrain says 'completed 1 step' and '1 thread' ($(grep reason "$work/out"))" \
    bash -c "grep -qx '  reason    completed 1 step' '$work/out' && grep -q '= 32 tokens per step; 1 thread' '$work/err'"

# early stopping keeps the best evaluated weights as model.gguf, and says so: training text the
# model overfits at lr 3e-2, a validation tail it never sees, so validation loss is best early
for i in $(seq 1 60); do echo "the cat sat on the mat. the dog ran to the log."; done >"$work/es.txt"
for i in $(seq 1 8); do echo "zebras quietly juggle purple xylophones while vexed wizards box."; done >>"$work/es.txt"
"$bin" pretrain --data "$work/es.txt" --preset tiny-llama --steps 60 --seq 16 --batch 4 --lr 3e-2 --warmup 0 \
    --schedule constant --eval-every 3 --eval-batches 4 --patience 3 --val-frac 0.15 --save-every 3 --keep 100 \
    --threads 1 --out "$work/es" >"$work/out" 2>"$work/err"
check "pretrain --patience stops early ($(grep reason "$work/out"))" grep -q "^  reason    early stop at step" "$work/out"
best=$(sed -n 's/.*holds the best evaluated weights, step \([0-9]*\).*/\1/p' "$work/err")
last=$(sed -n 's/^  steps     \([0-9]*\) .*/\1/p' "$work/out")
check "and says model.gguf holds the best evaluated weights (step '$best' of '$last')" \
    bash -c "[ -n '$best' ] && [ -n '$last' ] && [ '$best' -lt '$last' ]"
check "model.gguf is the checkpoint of that step, byte for byte" \
    cmp -s "$work/es/model.gguf" "$(printf '%s/es/ckpt-%010d.gguf' "$work" "${best:-0}")"
check "not the last step's weights" bash -c "! cmp -s '$work/es/model.gguf' \"\$(printf '%s/es/ckpt-%010d.gguf' '$work' '${last:-0}')\""

finish
