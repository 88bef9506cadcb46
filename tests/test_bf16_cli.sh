#!/usr/bin/env bash
# test_bf16_cli.sh: --precision bf16 on every training command.
#   - pretrain: the loss falls as in fp32 and ends close to it; two bf16 runs
#     give byte-identical weights (determinism per seed and thread count);
#     stopped and resumed == uninterrupted (cmp); the checkpoint is f32;
#   - resume at another precision is refused (naming --precision) unless
#     --precision-change, which continues with a note;
#   - a CPU without AVX512-BF16 or AMX (CLLM_CPU_DISABLE hides them) refuses
#     --precision bf16 with exit 2 naming the flag, and runs fp32;
#   - sft (full and LoRA), reward, dpo, ppo, grpo accept it and train;
#   - test_bf16 again with AMX hidden: the AVX512-BF16 kernel path (on a CPU
#     with AMX; elsewhere the run above already took that path);
#   - `cllm version` names the bf16 training path.
set -u
BUILD=${CLLM_BUILD:-build}
bin=$BUILD/cllm
. "$(dirname "$0")/lib.sh"
[ -x "$bin" ] || fail_all "missing $bin"
lib_workdir cllm-test-bf16

for i in $(seq 1 400); do echo "the quick brown fox jumps over the lazy dog, number $((i % 7))."; done >"$work/data.txt"
common=(pretrain --data "$work/data.txt" --preset tiny-llama --batch 4 --seq 16 --steps 40 --lr 3e-3 --warmup 4
        --eval-every 10 --eval-batches 2 --threads 2 --seed 3 --peak-gflops -1 --no-progress)

"$bin" "${common[@]}" --out "$work/f32" >"$work/f32.out" 2>"$work/f32.err"
check "fp32 reference run" test $? -eq 0
"$bin" "${common[@]}" --precision bf16 --out "$work/b1" >"$work/b1.out" 2>"$work/b1.err"
check "bf16 run exits 0" test $? -eq 0
check "bf16 run says what is bf16 and on which kernel" grep -q "precision: bf16 matrix products (oneDNN bf16 matmul on" "$work/b1.err"
"$bin" "${common[@]}" --precision bf16 --out "$work/b2" >/dev/null 2>&1
check "two bf16 runs give byte-identical weights" cmp -s "$work/b1/model.gguf" "$work/b2/model.gguf"
check "bf16 and fp32 weights differ (bf16 really ran)" '! cmp -s "$work/b1/model.gguf" "$work/f32/model.gguf"'
f_first=$(awk -F, 'NR==2 {print $2}' "$work/f32/train.csv")
f_last=$(awk -F, 'NR>1 && $3 != "" {v=$3} END {print v}' "$work/f32/train.csv")
b_last=$(awk -F, 'NR>1 && $3 != "" {v=$3} END {print v}' "$work/b1/train.csv")
echo "  val loss: fp32 $f_last, bf16 $b_last (first train loss $f_first)"
check "bf16 loss falls like fp32's" "awk -v f=$f_first -v l=$b_last 'BEGIN{exit !(l < 0.7 * f)}'"
# 40 steps of a tiny model: bf16 rounding moves the final val loss by well under 2%
check "bf16 val loss within 2% of fp32's" "awk -v a=$f_last -v b=$b_last 'BEGIN{d=a-b; if (d<0) d=-d; exit !(d <= 0.02 * a)}'"
check "the bf16 run's model.gguf holds f32 weights" /usr/bin/python3 -c '
import sys
sys.path.insert(0, sys.argv[2])
import gguf_header
infos = gguf_header.read(open(sys.argv[1], "rb").read())["infos"]
assert infos and all(t == 0 for _, _, t, _ in infos), infos' "$work/b1/model.gguf" "$(dirname "$0")"

# ---- killed after the step-20 checkpoint, resumed to 40: byte-identical ------------
# run_to_ckpt20 DIR ARG...: trains in the background, kill -9 once step 20's checkpoint is complete
run_to_ckpt20() {
    local dir=$1
    shift
    "$bin" "${common[@]}" "$@" --out "$dir" --save-every 20 >/dev/null 2>&1 &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 1 1500); do
        [ -f "$dir/ckpt-0000000020.done" ] && break
        sleep 0.02
    done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    # 20 steps of this model can take less than one poll: when the run got
    # past step 20 before the kill, leave what a kill right after step 20's
    # checkpoint leaves (the later checkpoint and the final weights removed).
    if [ -f "$dir/ckpt-0000000040.done" ] || [ -f "$dir/model.gguf" ]; then
        rm -f "$dir"/ckpt-0000000040.* "$dir/model.gguf" "$dir/best.gguf" "$dir/loss.svg"
    fi
}
run_to_ckpt20 "$work/r" --precision bf16
check "a checkpoint at step 20 before the kill" test -f "$work/r/ckpt-0000000020.done"
check "the run stands at step 20 before the resume" test ! -f "$work/r/ckpt-0000000040.done"
"$bin" "${common[@]}" --precision bf16 --out "$work/r" --save-every 20 --resume >/dev/null 2>"$work/r2.err"
check "bf16 resume exits 0" test $? -eq 0
check "bf16 killed + resumed == uninterrupted (cmp)" cmp -s "$work/r/model.gguf" "$work/b1/model.gguf"

# ---- switching precision on resume -------------------------------------------
run_to_ckpt20 "$work/sw"
"$bin" "${common[@]}" --out "$work/sw" --save-every 20 --resume --precision bf16 >/dev/null 2>"$work/sw.err"
rc=$?
check "resuming an fp32 run at bf16 is refused (exit 1)" test $rc -eq 1
check "the refusal names both precisions and the flag" grep -q "precision=fp32.*precision=bf16.*--precision-change" "$work/sw.err"
"$bin" "${common[@]}" --out "$work/b1" --resume >/dev/null 2>"$work/sw1.err"
check "resuming a bf16 run at fp32 is refused too" grep -q "precision=bf16.*precision=fp32" "$work/sw1.err"
"$bin" "${common[@]}" --out "$work/sw" --save-every 20 --resume --precision bf16 --precision-change >/dev/null 2>"$work/sw3.err"
check "--precision-change lets the resume through" test $? -eq 0
check "--precision-change is noted" grep -q "note: resuming at bf16 from a checkpoint trained at another precision" "$work/sw3.err"
check "the switched run finished all 40 steps" '[ "$(($(wc -l <"$work/sw/train.csv") - 1))" -eq 40 ]'

# ---- a CPU without bf16 instructions -----------------------------------------------
CLLM_CPU_DISABLE=amx,avx512_bf16 "$bin" "${common[@]}" --precision bf16 --out "$work/nobf" >/dev/null 2>"$work/nobf.err"
rc=$?
check "no AVX512-BF16/AMX: --precision bf16 exits 2" test $rc -eq 2
check "the refusal names --precision and says what is missing" grep -q -- "--precision bf16: bf16 needs a CPU with AVX512-BF16 or AMX" "$work/nobf.err"
check "nothing written on refusal" test ! -e "$work/nobf"
CLLM_CPU_DISABLE=amx,avx512_bf16 "$bin" "${common[@]}" --steps 2 --out "$work/nobf32" >/dev/null 2>&1
check "the same CPU trains fp32" test -f "$work/nobf32/model.gguf"
"$bin" pretrain --data "$work/data.txt" --out "$work/x" --precision fp16 >/dev/null 2>"$work/p.err"
check "unknown precision: exit 2 naming the flag" '[ $? -eq 2 ] && grep -q -- "--precision must be fp32 or bf16" "$work/p.err"'
check "version names the bf16 training path" bash -c "'$bin' version | grep -q 'bf16 training: *oneDNN bf16 matmul on'"
check "version with bf16 hidden says unavailable" bash -c "CLLM_CPU_DISABLE=amx,avx512_bf16 '$bin' version | grep -q 'bf16 training: *unavailable'"

# ---- the kernel tests on the AVX512-BF16 path ----------------------------------------
if grep -q amx_bf16 /proc/cpuinfo; then
    CLLM_CPU_DISABLE=amx "$BUILD/tests/test_bf16" >"$work/t.out" 2>"$work/t.err"
    check "test_bf16 with AMX hidden passes" test $? -eq 0
    check "... and ran oneDNN's AVX512-BF16 kernel" grep -q "oneDNN ran brg:avx512_core_bf16" "$work/t.err"
fi

# ---- every trainer takes --precision bf16 --------------------------------------------
"$bin" "${common[@]}" --steps 5 --context 64 --out "$work/base" >/dev/null 2>&1
m=$work/base/model.gguf
for i in 1 2 3 4 5 6 7 8; do
    echo "{\"messages\":[{\"role\":\"user\",\"content\":\"fox $i\"},{\"role\":\"assistant\",\"content\":\"dog $((i % 3))\"}]}"
done >"$work/chat.jsonl"
for i in 1 2 3 4 5 6 7 8; do
    echo "{\"prompt\":\"fox $i\",\"chosen\":\"dog $i\",\"rejected\":\"cat $i\"}"
done >"$work/pairs.jsonl"
for i in 1 2 3 4; do echo "{\"prompt\":\"number $i\",\"answer\":$i}"; done >"$work/prompts.jsonl"
"$bin" sft -m "$m" --data "$work/chat.jsonl" --out "$work/sft" --steps 3 --batch 2 --seq 64 --threads 2 \
    --precision bf16 >/dev/null 2>"$work/sft.err"
check "sft --precision bf16" '[ $? -eq 0 ] && grep -q "precision: bf16" "$work/sft.err"'
"$bin" sft -m "$m" --data "$work/chat.jsonl" --out "$work/lora" --steps 3 --batch 2 --seq 64 --threads 2 \
    --lora-rank 4 --precision bf16 >/dev/null 2>"$work/lora.err"
check "sft LoRA --precision bf16" '[ $? -eq 0 ] && grep -q "precision: bf16" "$work/lora.err"'
"$bin" reward -m "$m" --data "$work/pairs.jsonl" --out "$work/rm" --steps 2 --batch 2 --threads 2 --precision bf16 \
    >/dev/null 2>"$work/rm.err"
check "reward --precision bf16" '[ $? -eq 0 ] && grep -q "precision: bf16" "$work/rm.err"'
"$bin" dpo -m "$m" --data "$work/pairs.jsonl" --out "$work/dpo" --steps 2 --batch 2 --threads 2 --precision bf16 \
    >/dev/null 2>"$work/dpo.err"
check "dpo --precision bf16" '[ $? -eq 0 ] && grep -q "precision: bf16" "$work/dpo.err"'
"$bin" ppo -m "$m" --reward-model "$work/rm/model.gguf" --data "$work/prompts.jsonl" --out "$work/ppo" --steps 2 \
    --batch 2 --max-new 3 --threads 2 --precision bf16 >/dev/null 2>"$work/ppo.err"
check "ppo --precision bf16" '[ $? -eq 0 ] && grep -q "precision: bf16" "$work/ppo.err"'
"$bin" grpo -m "$m" --data "$work/prompts.jsonl" --verify number --out "$work/grpo" --steps 2 --batch 2 --group 2 \
    --max-new 3 --threads 2 --precision bf16 >/dev/null 2>"$work/grpo.err"
check "grpo --precision bf16" '[ $? -eq 0 ] && grep -q "precision: bf16" "$work/grpo.err"'
for c in sft reward dpo ppo grpo; do
    check "$c --help documents --precision" bash -c "'$bin' $c --help | grep -q -- '--precision P'"
done
finish
