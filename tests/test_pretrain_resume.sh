#!/usr/bin/env bash
# test_pretrain_resume.sh: end-to-end checks of `cllm pretrain`:
#   - training loss falls on a tiny repetitive text;
#   - kill -9 at random moments (often mid-checkpoint), then --resume, gives
#     final weights byte-identical (cmp) to an uninterrupted run, and the same
#     loss CSV (all columns but the timing one);
#   - SIGTERM finishes the step, saves, exits 0, and resume matches too;
#   - a second trainer on the same run directory fails fast;
#   - resume refuses changed settings or data with a clear message;
#   - bad flags exit 2, bad paths / too little data exit 1 before any work.
# Uses $CLLM_BIN if set, else $CLLM_BUILD/cllm (default build/cllm).
set -u
BUILD=${CLLM_BUILD:-build}
CLLM=${CLLM_BIN:-$BUILD/cllm}
. "$(dirname "$0")/lib.sh"
sleep_ms() { sleep "$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))"; }
if [ ! -x "$CLLM" ]; then
    fail_all "missing $CLLM"
fi
tmp=$(mktemp -d /tmp/cllm_test_resume_XXXXXX)
bg_pid=""
cleanup() {
    [ -n "$bg_pid" ] && kill -9 "$bg_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

for i in $(seq 1 300); do echo "the quick brown fox jumps over the lazy dog, number $((i % 5))."; done >"$tmp/data.txt"
# A tiny GPT-2-style model with dropout (so the dropout stream must resume too),
# gradient accumulation, random windows, evaluation and early-stop bookkeeping.
common=(pretrain --data "$tmp/data.txt" --preset tiny-gpt2 --batch 4 --seq 16 --total-batch 128
        --steps 120 --lr 3e-3 --warmup 5 --dropout 0.1 --eval-every 10 --eval-batches 2
        --patience 100 --save-every 3 --keep 2 --threads 1 --seed 7 --peak-gflops -1 --no-progress)

# ---- uninterrupted reference ------------------------------------------------
t0=$(date +%s%N)
"$CLLM" "${common[@]}" --out "$tmp/ref" >"$tmp/ref.out" 2>"$tmp/ref.err"
rc=$?
ref_ms=$((($(date +%s%N) - t0) / 1000000))
echo "  reference run: $ref_ms ms"
check "reference run completes" '[ $rc -eq 0 ] && [ -f "$tmp/ref/model.gguf" ] && [ -f "$tmp/ref/loss.svg" ]'
check "csv has a row per step" '[ "$(($(wc -l <"$tmp/ref/train.csv") - 1))" -eq 120 ]'
# loss falls: mean of the last 5 rows well below the first row
first=$(awk -F, 'NR==2 {print $2}' "$tmp/ref/train.csv")
last=$(awk -F, 'NR>1 {a[NR]=$2} END {s=0; for (i=NR-4;i<=NR;i++) s+=a[i]; print s/5}' "$tmp/ref/train.csv")
check "training loss decreases ($first -> $last)" "awk -v f=$first -v l=$last 'BEGIN{exit !(l < 0.6 * f)}'"
check "validation loss logged" '[ "$(awk -F, "NR>1 && \$3 != \"\"" "$tmp/ref/train.csv" | wc -l)" -eq 12 ]'

# ---- kill -9 at random moments, then resume -----------------------------------
RANDOM=$$
run="$tmp/killed"
kills=0
for attempt in 1 2 3; do
    resume=()
    [ -d "$run" ] && resume=(--resume)
    "$CLLM" "${common[@]}" --out "$run" "${resume[@]}" >/dev/null 2>"$tmp/kill.err" &
    bg_pid=$!
    # 10..40% of the reference run's time: lands anywhere in steps,
    # evaluations and checkpoint writes, and each attempt gets further
    ms=$((ref_ms / 10 + RANDOM % (ref_ms * 3 / 10 + 1)))
    sleep_ms "$ms"
    if kill -9 "$bg_pid" 2>/dev/null; then kills=$((kills + 1)); fi
    wait "$bg_pid" 2>/dev/null
    bg_pid=""
done
echo "  killed $kills times; newest checkpoint: $(ls "$run" 2>/dev/null | grep '\.done$' | tail -n 1)"
"$CLLM" "${common[@]}" --out "$run" --resume >"$tmp/resume.out" 2>"$tmp/resume.err"
check "resume after kill -9 completes" '[ $? -eq 0 ]' || cat "$tmp/resume.err"
check "weights bit-identical after kill -9 + resume" 'cmp -s "$tmp/ref/model.gguf" "$run/model.gguf"'
check "final optimizer state identical" 'cmp -s "$tmp/ref/ckpt-0000000120.optim" "$run/ckpt-0000000120.optim"'
cut -d, -f1-5 "$tmp/ref/train.csv" >"$tmp/ref.csv"
cut -d, -f1-5 "$run/train.csv" >"$tmp/run.csv"
check "loss CSV identical (step,loss,val_loss,lr,grad_norm)" 'cmp -s "$tmp/ref.csv" "$tmp/run.csv"'
check "only the newest 2 checkpoints kept" '[ "$(ls "$run" | grep -c "\.done$")" -eq 2 ]'
check "no temp files left" '[ "$(ls "$run" | grep -c "\.tmp\.")" -eq 0 ]'
"$CLLM" "${common[@]}" --out "$run" --resume >"$tmp/again.out" 2>&1
check "resume of a finished run says so" '[ $? -eq 0 ] && grep -q "already finished" "$tmp/again.out"'

# ---- SIGTERM: finish the step, save, exit 0 -------------------------------------
"$CLLM" "${common[@]}" --out "$tmp/term" --save-every 0 >"$tmp/term.out" 2>"$tmp/term.err" &
bg_pid=$!
sleep_ms $((ref_ms / 3))
kill -TERM "$bg_pid" 2>/dev/null
wait "$bg_pid"
rc=$?
bg_pid=""
check "SIGTERM exits 0 (rc $rc)" '[ $rc -eq 0 ]'
check "SIGTERM saved a checkpoint" 'ls "$tmp/term" | grep -q "\.done$"'
"$CLLM" "${common[@]}" --out "$tmp/term" --save-every 0 --resume >/dev/null 2>&1
check "weights bit-identical after SIGTERM + resume" 'cmp -s "$tmp/ref/model.gguf" "$tmp/term/model.gguf"'

# ---- resume refuses other settings or data -------------------------------------
"$CLLM" "${common[@]}" --out "$run" --resume --lr 1e-3 >/dev/null 2>"$tmp/cfg.err"
check "resume with another --lr refused" '[ $? -ne 0 ] && grep -q "cannot resume" "$tmp/cfg.err" && grep -q "lr=" "$tmp/cfg.err"'
sed 's/quick/quack/' "$tmp/data.txt" >"$tmp/data2.txt"
args=("${common[@]}")
args[2]="$tmp/data2.txt"
"$CLLM" "${args[@]}" --out "$run" --resume >/dev/null 2>"$tmp/data.err"
check "resume with other data refused" '[ $? -ne 0 ] && grep -q "data differs" "$tmp/data.err"'
"$CLLM" "${common[@]}" --out "$run" >/dev/null 2>"$tmp/fresh.err"
check "fresh run into a used directory refused" '[ $? -ne 0 ] && grep -q "already holds a checkpoint" "$tmp/fresh.err"'

# ---- a second trainer on the same run directory fails fast ---------------------------
"$CLLM" "${common[@]}" --steps 100000 --warmup 5 --out "$tmp/busy" >/dev/null 2>&1 &
bg_pid=$!
for _ in $(seq 1 50); do [ -s "$tmp/busy/lock" ] && break; sleep 0.1; done
start=$SECONDS
"$CLLM" "${common[@]}" --steps 100000 --out "$tmp/busy" --resume >/dev/null 2>"$tmp/lock.err"
rc=$?
check "second trainer refused (rc $rc)" '[ $rc -eq 1 ] && grep -q "another trainer" "$tmp/lock.err" && [ $((SECONDS - start)) -le 5 ]'
kill -9 "$bg_pid" 2>/dev/null
wait "$bg_pid" 2>/dev/null
bg_pid=""

# ---- usage and path errors ---------------------------------------------------------
usage_case() { # name, expected rc, args...
    local name=$1 want=$2
    shift 2
    "$CLLM" pretrain "$@" >"$tmp/u.out" 2>"$tmp/u.err"
    local rc=$?
    if [ $rc -eq "$want" ] && [ -s "$tmp/u.err" ]; then ok "$name (rc $rc)"; else bad "$name (rc $rc, want $want)"; cat "$tmp/u.err"; fi
}
d=(--data "$tmp/data.txt")
usage_case "--lr -1" 2 "${d[@]}" --out "$tmp/u1" --lr -1
usage_case "--batch 0" 2 "${d[@]}" --out "$tmp/u1" --batch 0
usage_case "--steps abc" 2 "${d[@]}" --out "$tmp/u1" --steps abc
usage_case "--total-batch not a multiple" 2 "${d[@]}" --out "$tmp/u1" --batch 4 --seq 16 --total-batch 100
usage_case "--schedule bogus" 2 "${d[@]}" --out "$tmp/u1" --schedule bogus
usage_case "--pos bogus" 2 "${d[@]}" --out "$tmp/u1" --pos bogus
usage_case "--n-head not dividing --n-embd" 2 "${d[@]}" --out "$tmp/u1" --preset tiny-gpt2 --n-head 3
usage_case "unknown flag" 2 "${d[@]}" --out "$tmp/u1" --frobnicate 1
usage_case "flag missing its value" 2 "${d[@]}" --out
usage_case "no --data" 2 --out "$tmp/u1"
usage_case "missing data file" 1 --data "$tmp/nope.txt" --out "$tmp/u1"
usage_case "directory as data" 1 --data "$tmp" --out "$tmp/u1"
mkfifo "$tmp/fifo"
usage_case "FIFO as data" 1 --data "$tmp/fifo" --out "$tmp/u1"
usage_case "/dev/zero as data" 1 --data /dev/zero --out "$tmp/u1"
usage_case "--out under a missing directory" 1 "${d[@]}" --out "$tmp/no/such/dir"
echo x >"$tmp/afile"
usage_case "--out is a file" 1 "${d[@]}" --out "$tmp/afile"
printf 'tiny' >"$tmp/tiny.txt"
usage_case "too little data" 1 --data "$tmp/tiny.txt" --out "$tmp/u2" --batch 4 --seq 16 --steps 5
check "too little data: clear message, no run dir" 'grep -q "too little data" "$tmp/u.err" && [ ! -e "$tmp/u2" ]'
check "no run directory created by failed starts" '[ ! -e "$tmp/u1" ]'

finish
