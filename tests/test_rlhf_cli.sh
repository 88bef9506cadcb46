#!/usr/bin/env bash
# test_rlhf_cli.sh: `cllm reward|dpo|ppo|grpo` end to end on tiny models
# trained here for a few steps: each runs, writes its model (the reward model
# with its cls.* head), prints a JSON summary and logs its metrics; bad input
# (malformed JSONL with file:line:column, missing/wrong-typed fields, empty
# completions, prompts longer than the context, a reference of another shape,
# bad flags) exits 1 or 2 with one clear message and no output file.
set -u
bin=${CLLM_BUILD:-build}/cllm
work=$(mktemp -d /tmp/cllm-test-rlhf.XXXXXX)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/lib.sh"
for i in $(seq 1 60); do printf '### User:\n%d+1\n\n### Assistant:\n%d\n\n' $((i % 8)) $((i % 8 + 1)); done > "$work/sft.txt"
train() { # out_dir n_layer
    "$bin" pretrain --data "$work/sft.txt" --n-layer "$2" --n-head 2 --n-kv-head 2 --n-embd 32 --ffn-hidden 64 --context 48 \
        --seq 48 --batch 4 --steps 5 --eval-every 0 --threads 1 --out "$1" --no-progress >"$work/train.log" 2>&1
}
train "$work/a" 1
check "pretrain a tiny policy" test -f "$work/a/model.gguf"
train "$work/b" 2
m=$work/a/model.gguf
for i in 1 2 3 4 5 6 7 8; do
    echo "{\"prompt\":\"$i+1\",\"chosen\":\"$((i + 1))\",\"rejected\":\"$((i + 2))\"}"
done > "$work/pairs.jsonl"
echo '{"prompt":[{"role":"user","content":"2+1"}],"chosen":[{"role":"assistant","content":"3"}],"rejected":[{"role":"assistant","content":"4"}]}' >> "$work/pairs.jsonl"
for i in 1 2 3 4; do echo "{\"prompt\":\"$i+1\",\"answer\":$((i + 1))}"; done > "$work/prompts.jsonl"

out=$("$bin" reward -m "$m" --data "$work/pairs.jsonl" -o "$work/rm" --json --steps 3 --batch 4 --val-frac 0.3 --threads 1 2>"$work/err")
check "reward exits 0" test $? -eq 0
check "reward reports held-out accuracy" grep -q "held-out pairwise accuracy" "$work/err"
check "reward JSON summary" /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["steps"]==3 and 0<=d["val_accuracy"]<=1' "$out"
check "reward model carries its head" /usr/bin/python3 -c '
import sys
b = open(sys.argv[1], "rb").read()
assert b"cls.weight" in b and b"cls.bias" in b' "$work/rm/model.gguf"
"$bin" info -m "$work/rm/model.gguf" >/dev/null 2>&1
check "the reward model still loads as a model (cllm info)" test $? -eq 0

out=$("$bin" dpo -m "$m" --data "$work/pairs.jsonl" -o "$work/dpo" --steps 3 --batch 4 --threads 1 2>"$work/err")
check "dpo exits 0" test $? -eq 0
check "dpo logs rewards, margin, accuracy" grep -q "rewards chosen .* rejected .* margin .* accuracy" "$work/err"
check "dpo -o RUN_DIR writes RUN_DIR/model.gguf" test -f "$work/dpo/model.gguf"

out=$("$bin" grpo -m "$m" --data "$work/prompts.jsonl" -o "$work/grpo" --json --verify number --steps 2 --batch 2 --group 3 --max-new 3 --threads 1 2>"$work/err")
check "grpo exits 0" test $? -eq 0
check "grpo logs reward, kl, clip fraction" grep -q "reward .* kl .* clip_frac" "$work/err"
check "grpo counts rollout tokens" /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["rollout_tokens"]>=12' "$out"
"$bin" grpo -m "$m" --data "$work/prompts.jsonl" -o "$work/grpo2" --verify regex --pattern '^[0-9]' --steps 1 --batch 2 --group 2 --max-new 2 --threads 1 >/dev/null 2>&1
check "grpo with a regex reward" test $? -eq 0

out=$("$bin" ppo -m "$m" --reward-model "$work/rm/model.gguf" --data "$work/prompts.jsonl" -o "$work/ppo" --steps 2 --batch 3 --max-new 3 --threads 1 2>"$work/err")
check "ppo exits 0" test $? -eq 0
check "ppo logs reward, kl, entropy, clip fraction" grep -q "reward .* kl .* entropy .* clip_frac" "$work/err"

# ---- bad input ----
expect() { # name, exit code, stderr pattern, command...
    local name=$1 code=$2 pat=$3; shift 3
    "$@" >/dev/null 2>"$work/err"
    local rc=$?
    check "$name: exit $code (got $rc)" test "$rc" -eq "$code"
    check "$name: message matches '$pat'" grep -q -- "$pat" "$work/err"
}
printf '{"prompt":"1+1","chosen":"2","rejected":"3"}\n{"prompt": "1+1", "chosen" "2"}\n' > "$work/bad1.jsonl"
expect "malformed JSONL" 1 "bad1.jsonl:2:[0-9]*: malformed JSON" "$bin" dpo -m "$m" --data "$work/bad1.jsonl" -o "$work/x"
printf '{"prompt":"1+1","rejected":"3"}\n' > "$work/bad2.jsonl"
expect "missing field" 1 'bad2.jsonl:1: field "chosen": missing' "$bin" reward -m "$m" --data "$work/bad2.jsonl" -o "$work/x"
printf '{"prompt":"1+1","chosen":2,"rejected":"3"}\n' > "$work/bad3.jsonl"
expect "wrong-typed field" 1 'field "chosen": must be a string' "$bin" dpo -m "$m" --data "$work/bad3.jsonl" -o "$work/x"
printf '{"prompt":"1+1","chosen":"","rejected":"3"}\n' > "$work/bad4.jsonl"
expect "empty completion" 1 'empty completion' "$bin" dpo -m "$m" --data "$work/bad4.jsonl" -o "$work/x"
printf '{"prompt":"%s","chosen":"2","rejected":"3"}\n' "$(head -c 60 /dev/zero | tr '\0' x)" > "$work/bad5.jsonl"
expect "prompt longer than the context" 1 "exceed the 48-token context" "$bin" dpo -m "$m" --data "$work/bad5.jsonl" -o "$work/x"
expect "reference of another shape" 1 "reference model (L=2 .*) does not match the policy (L=1 " "$bin" dpo -m "$m" --ref "$work/b/model.gguf" --data "$work/pairs.jsonl" -o "$work/x"
expect "ppo needs a reward model" 2 "reward-model is required" "$bin" ppo -m "$m" --data "$work/prompts.jsonl" -o "$work/x"
expect "ppo with a model that is not a reward model" 1 "not a reward model" "$bin" ppo -m "$m" --reward-model "$m" --data "$work/prompts.jsonl" --max-new 4 -o "$work/x"
expect "grpo needs a reward" 2 "verify" "$bin" grpo -m "$m" --data "$work/prompts.jsonl" -o "$work/x"
expect "bad --beta" 2 "beta" "$bin" dpo -m "$m" --data "$work/pairs.jsonl" -o "$work/x" --beta -1
expect "unknown flag" 2 "unknown flag" "$bin" reward -m "$m" --data "$work/pairs.jsonl" -o "$work/x" --beta 1
expect "bad regex" 2 "offset" "$bin" grpo -m "$m" --data "$work/prompts.jsonl" -o "$work/x" --verify regex --pattern '(['
expect "missing data file" 1 "nope.jsonl" "$bin" dpo -m "$m" --data "$work/nope.jsonl" -o "$work/x"
check "no output file after any failure" test ! -e "$work/x.gguf"
check "no run directory after any failure" test ! -e "$work/x"

# ---- run directory (issue 15 item 5) ----
expect "missing parent of --out: fails before step 0" 1 "no/such" "$bin" dpo -m "$m" --data "$work/pairs.jsonl" --out "$work/no/such/run" --steps 2 --batch 2
check "missing parent: no step ran" bash -c "! grep -q 'dpo step' '$work/err'"
expect "missing parent of -o: fails before any work" 1 "nodir" "$bin" reward -m "$m" --data "$work/pairs.jsonl" -o "$work/nodir/rm" --steps 2 --batch 2
check "missing parent of -o: nothing trained" bash -c "! grep -q 'reward step' '$work/err'"
if [ "$(id -u)" != 0 ]; then
    mkdir -p "$work/ro" && chmod 555 "$work/ro"
    expect "read-only parent of --out: fails before step 0" 1 "ro/run" "$bin" grpo -m "$m" --data "$work/prompts.jsonl" --out "$work/ro/run" --verify number --steps 2 --batch 2 --group 2 --max-new 2
    check "read-only parent: no step ran" bash -c "! grep -q 'grpo step' '$work/err'"
    chmod 755 "$work/ro"
else
    echo "skipped: read-only parent of --out (running as root: permissions do not apply)"
fi
out=$("$bin" dpo -m "$m" --data "$work/pairs.jsonl" --out "$work/dpo-run" --steps 3 --batch 2 --threads 1 2>"$work/err")
check "dpo --out RUN_DIR writes RUN_DIR/model.gguf, train.csv and a checkpoint" bash -c "test -f '$work/dpo-run/model.gguf' && test -f '$work/dpo-run/train.csv' && ls '$work/dpo-run' | grep -q 'ckpt-0000000003.done'"
"$bin" dpo -m "$m" --data "$work/pairs.jsonl" --out "$work/dpo-run" --steps 3 --batch 2 --threads 1 >/dev/null 2>"$work/err"
check "a second run into a finished run directory needs --resume" bash -c "[ $? -eq 1 ] && grep -q -- '--resume' '$work/err'"
"$bin" dpo -m "$m" --data "$work/pairs.jsonl" --out "$work/dpo-run" --steps 3 --batch 2 --beta 0.5 --threads 1 --resume >/dev/null 2>"$work/err"
check "--resume with another --beta names it" bash -c "[ $? -eq 1 ] && grep -q 'beta=' '$work/err'"
# SIGTERM: finish the step, save, exit 0; --resume continues from there
"$bin" ppo -m "$m" --reward-model "$work/rm/model.gguf" --data "$work/prompts.jsonl" --out "$work/ppo-sig" --steps 100000 --batch 2 --max-new 3 --threads 1 >"$work/sig.out" 2>"$work/sig.err" &
pid=$!
for i in $(seq 1 100); do grep -q "ppo step 1:" "$work/sig.err" 2>/dev/null && break; sleep 0.1; done
kill -TERM $pid
wait $pid
check "SIGTERM: exit 0" test $? -eq 0
check "SIGTERM: reason names the signal" grep -q '^  reason    stopped by a signal' "$work/sig.out"
check "SIGTERM: a complete checkpoint" bash -c "ls '$work/ppo-sig' | grep -q '\\.done$'"
check "SIGTERM: the model written" test -f "$work/ppo-sig/model.gguf"
for c in reward dpo ppo grpo; do
    "$bin" "$c" --help >"$work/help" 2>&1
    check "$c --help exits 0 and shows usage" bash -c "[ $? -eq 0 ] && grep -q 'Usage: cllm $c' '$work/help'"
done
finish
