#!/usr/bin/env bash
# test_train_summary.sh: every trainer (pretrain, sft, reward, dpo, ppo,
# grpo) ends with the same summary (cli_print_train_summary): the same
# lines in the same order, and with --json the same keys; -o is the run
# directory everywhere (RUN_DIR/model.gguf); the weights carry what they
# were trained to do (general.name, general.description). Tiny runs.
set -u
bin=${CLLM_BUILD:-build}/cllm
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
lib_workdir cllm-test-train-summary
for i in $(seq 1 60); do echo "the cat sat on the mat. 1+1=2. 2+1=3."; done > "$work/text.txt"
for i in 1 2 3 4 5 6; do
    echo "{\"messages\":[{\"role\":\"user\",\"content\":\"$i+1\"},{\"role\":\"assistant\",\"content\":\"$((i + 1))\"}]}"
done > "$work/chat.jsonl"
for i in 1 2 3 4 5 6; do echo "{\"prompt\":\"$i+1\",\"chosen\":\"$((i + 1))\",\"rejected\":\"$((i + 2))\"}"; done > "$work/pairs.jsonl"
for i in 1 2 3 4; do echo "{\"prompt\":\"$i+1\",\"answer\":$((i + 1))}"; done > "$work/prompts.jsonl"
common=(--steps 2 --threads 1)
run() { # NAME ARGS...: runs `cllm ARGS` twice (text, --json) into $work/NAME.txt / NAME.json
    local name=$1; shift
    "$bin" "$@" -o "$work/$name" "${common[@]}" >"$work/$name.txt" 2>"$work/$name.err" &&
        "$bin" "$@" -o "$work/$name-json" --json "${common[@]}" >"$work/$name.json" 2>>"$work/$name.err"
    check "$name exits 0" test $? -eq 0 || sed -n '1,5p' "$work/$name.err"
}
run pretrain pretrain --data "$work/text.txt" --preset tiny-gpt2 --batch 2 --seq 16 --context 64 --eval-every 0 --no-progress
m=$work/pretrain/model.gguf
run sft sft --model "$m" --data "$work/chat.jsonl" --batch 2 --seq 64 --quiet
run reward reward -m "$m" --data "$work/pairs.jsonl" --batch 2 --val-frac 0.3 --no-progress
run dpo dpo -m "$m" --data "$work/pairs.jsonl" --batch 2 --no-progress
run ppo ppo -m "$m" --reward-model "$work/reward/model.gguf" --data "$work/prompts.jsonl" --batch 2 --max-new 2 --no-progress
run grpo grpo -m "$m" --data "$work/prompts.jsonl" --verify number --batch 2 --group 2 --max-new 2 --no-progress
shape() { sed -n '2,$p' "$1" | awk '{print $1 ($2 == "loss" ? " loss" : "")}' | tr '\n' ' '; }
want=$(shape "$work/pretrain.txt")
echo "summary lines: $want"
check "the summary has every field (pretrain)" test "$want" = "reason steps loss val loss metric skipped time weights extra "
for c in pretrain sft reward dpo ppo grpo; do
    check "$c: first line names the command" grep -q "^$c summary\$" "$work/$c.txt"
    check "$c: the same summary lines as pretrain ($(shape "$work/$c.txt"))" test "$(shape "$work/$c.txt")" = "$want"
    check "$c: -o RUN_DIR holds the weights" grep -q "^  weights   $work/$c/model.gguf\$" "$work/$c.txt"
    check "$c: this run's first and last loss" grep -Eq '^  loss      [0-9.]+ -> [0-9.]+ \(training loss' "$work/$c.txt"
    check "$c: --json has the common keys" /usr/bin/python3 -c '
import json, sys
d = json.loads(open(sys.argv[1]).read())
keys = ["command", "reason", "steps", "start_step", "loss_first", "loss_last", "val_loss", "val_loss_best", "metric",
        "metric_first", "metric_last", "skipped", "seconds", "tokens_per_s", "run_dir", "weights"]
assert all(k in d for k in keys), [k for k in keys if k not in d]
assert d["command"] == sys.argv[2] and d["steps"] == 2 and d["loss_first"] is not None, d' "$work/$c.json" "$c"
    check "$c: the weights say what they were trained to do" grep -aq "; $c on " "$work/$c/model.gguf"
done
check "metric: rollouts' mean reward for ppo and grpo" bash -c "grep -q 'mean reward of the rollouts' '$work/ppo.txt' && grep -q 'mean reward of the rollouts' '$work/grpo.txt'"
check "metric: batch pair accuracy for reward and dpo" bash -c "grep -q 'pair accuracy of the batch' '$work/reward.txt' && grep -q 'pair accuracy of the batch' '$work/dpo.txt'"
check "metric: none for pretrain and sft" bash -c "grep -q '^  metric    -\$' '$work/pretrain.txt' && grep -q '^  metric    -\$' '$work/sft.txt'"
check "reward's held-out accuracy is an extra" grep -q "val_accuracy=" "$work/reward.txt"
check "cllm info says what the model was trained to do" bash -c "'$bin' info -m '$work/sft/model.gguf' | grep -q '^  about cllm-sft: answering as the assistant in chats; sft on chat.jsonl, from $m\$'"
check "the model's name says its trainer" grep -aq "general.name.*cllm-grpo" "$work/grpo/model.gguf"
# -o/--out names the output of every command that writes one
"$bin" quantize "$m" q8_0 -o "$work/q8.gguf" -q
check "quantize IN TYPE -o OUT" test -s "$work/q8.gguf"
"$bin" quantize "$m" --out "$work/q8b.gguf" q8_0 -q
check "quantize IN --out OUT TYPE" cmp -s "$work/q8.gguf" "$work/q8b.gguf"
"$bin" sft --model "$m" --data "$work/chat.jsonl" --batch 2 --seq 64 --lora-rank 2 -o "$work/lora" "${common[@]}" --quiet >/dev/null 2>&1
"$bin" lora merge "$m" "$work/lora/adapter.gguf" -o "$work/merged.gguf" 2>/dev/null
check "lora merge BASE ADAPTER -o OUT" test -s "$work/merged.gguf"
for c in pretrain sft reward dpo ppo grpo tokenize tokenizer attention data quantize lora; do
    check "$c --help shows -o" bash -c "'$bin' $c --help 2>&1 | grep -Eq -- '-o, --out|-o/--out|-o RUN_DIR|-o OUT'"
done
echo "--- pretrain's summary:"; cat "$work/pretrain.txt"; echo "--- grpo's:"; cat "$work/grpo.txt"
finish
