#!/usr/bin/env bash
# test_demo_quick.sh: the `make demo` pipeline end to end in its --quick size
# (world -> tokenizer -> shards -> pre-train -> SFT -> DPO -> eval of every
# stage -> report, attention, sample answers). Asserts that it runs, writes
# its outputs, that the final stage does better than the untrained model on
# the test examples (not the full demo's targets), that a re-run reuses every
# finished stage, that a failing stage stops the demo with its name, and that
# an output directory made with other settings is refused. Sanitizer builds
# (a build directory named *san*) run the --smoke size instead: every stage
# and behaviour above except the improvement, which needs the real training.
set -u
build=${CLLM_BUILD:-build}
bin=$build/cllm
py=/usr/bin/python3
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/cllm-test-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/lib.sh"
d=$work/demo
size=--quick
case $(basename "$build") in *san*) size=--smoke ;; esac

bash "$root/scripts/demo.sh" $size --out "$d" --cllm "$bin" >"$work/log1" 2>&1
rc=$?
check "demo --quick exits 0" test $rc -eq 0
[ $rc -eq 0 ] || tail -n 40 "$work/log1"
for f in final.gguf report.txt report.json scores.svg loss-pretrain.svg loss-sft.svg attention.svg samples.txt \
    tools.txt eval/untrained.json eval/pretrain.json eval/sft.json eval/dpo.json eval/no-tools.json \
    eval/json-schema.json; do
    check "writes $f" test -s "$d/$f"
done
check "prints the stage x task table and how to chat and serve" bash -c "
    grep -qE '^task \(metric\) +untrained +pretrain +sft +dpo' '$work/log1' &&
    grep -qE '^sentiment \(accuracy\) ' '$work/log1' &&
    grep -q 'chat -m .*final.gguf' '$work/log1' && grep -q 'serve -m .*final.gguf' '$work/log1'"
check "the tool summary: validity, with and without tools, JSON schema" bash -c "
    grep -q '^tool-call validity' '$d/tools.txt' && grep -q 'with the calculator' '$d/tools.txt' &&
    grep -q 'the model alone' '$d/tools.txt' && grep -q '^JSON-schema output validity' '$d/tools.txt'"
# the schema's grammar keeps every answer valid (the smoke size's 16-token answers cut some short)
[ $size = --smoke ] || check "JSON under the schema: 100% valid" \
    grep -qE '^JSON-schema output validity .* 100.0% +100.0% met' "$d/tools.txt"
check "tool questions sampled through the agent loop" test "$(grep -c '^User (tools: ' "$d/samples.txt")" -eq 3
check "sample answers for the guide's prompts" bash -c "
    test \$(grep -c '^User: ' '$d/samples.txt') -eq 11 && grep -q 'Hello, how are you?' '$d/samples.txt' &&
    grep -q '^System: ' '$d/samples.txt' && grep -q '다음 문장을 한국어로 번역하세요' '$d/samples.txt'"
# The final stage beats the untrained model: never worse on any task, better
# on most, and by at least 10 points on average (every score on 0..100).
[ $size = --smoke ] || check "final stage improves over the untrained model" $py -c '
import json, sys
r = json.load(open(sys.argv[1]))
first, last = r["stages"][0], r["stages"][-1]
assert first == "untrained" and len(r["tasks"]) == 9, r["stages"]
scale = lambda t, v: v if t["metric"] == "chrf" else 100 * v
better, gain = 0, 0.0
for t in r["tasks"]:
    a, b = scale(t, t["scores"][first]), scale(t, t["scores"][last])
    assert b >= a, (t["task"], a, b)
    better += b > a
    gain += (b - a) / len(r["tasks"])
assert better >= 4 and gain >= 10, (better, gain)
print("tasks improved:", better, "mean gain:", round(gain, 1))' "$d/report.json"

# A second run reuses every stage and leaves the model as it was.
cp "$d/final.gguf" "$work/final.before"
bash "$root/scripts/demo.sh" $size --out "$d" --cllm "$bin" >"$work/log2" 2>&1
check "re-run exits 0" test $? -eq 0
check "re-run reuses every training and eval stage" bash -c "
    for s in world tokenizer untrained pretrain sft dpo eval-untrained eval-sft eval-dpo eval-no-tools eval-json-schema; do
        grep -q \"== \$s: done before\" '$work/log2' || { echo \"not reused: \$s\"; exit 1; }
    done"
check "re-run: same final model" cmp -s "$d/final.gguf" "$work/final.before"

# A failing stage stops the demo and names it; nothing after it runs.
cp -r "$d" "$work/broken"
rm -rf "$work/broken/runs/sft" "$work/broken/runs/dpo" "$work/broken/eval" "$work/broken/final.gguf"
cat >"$work/fake-cllm" <<EOF
#!/usr/bin/env bash
[ "\$1" = sft ] && { echo "sft: simulated failure" >&2; exit 1; }
exec "$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")" "\$@"
EOF
chmod +x "$work/fake-cllm"
bash "$root/scripts/demo.sh" $size --out "$work/broken" --cllm "$work/fake-cllm" >"$work/log3" 2>&1
rc=$?
check "failing stage: non-zero exit naming the stage" bash -c "test $rc -ne 0 && grep -q \"stage 'sft' failed\" '$work/log3'"
check "failing stage: its error is shown" grep -q "simulated failure" "$work/log3"
check "failing stage: later stages did not run" bash -c "test ! -e '$work/broken/runs/dpo/model.gguf' && test ! -e '$work/broken/final.gguf'"

# An output directory made with other settings is refused; bad options exit 2.
bash "$root/scripts/demo.sh" --out "$d" --cllm "$bin" >"$work/log4" 2>&1
check "other settings in the same directory: exit 1" bash -c "test $? -eq 1 && grep -q 'other settings' '$work/log4'"
bash "$root/scripts/demo.sh" --bogus >/dev/null 2>&1
check "unknown option: exit 2" test $? -eq 2
bash "$root/scripts/demo.sh" --quick --cllm "$work/none" --out "$work/x" >/dev/null 2>&1
check "missing binary: exit 1" test $? -eq 1

finish
