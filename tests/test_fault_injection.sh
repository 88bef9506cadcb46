#!/usr/bin/env bash
# test_fault_injection.sh: checkpoints of every trainer under faults
# (RELIABILITY.md "Training runs"; issue 15):
#
#  kill -9  pretrain, sft, dpo, reward, ppo and grpo on tiny models run with
#           --save-every 1 --resume and are killed with SIGKILL 20 times each
#           at random moments (delays drawn from a fixed seed, within the
#           uninterrupted run's duration), then resumed to the end: the final
#           model.gguf must equal the uninterrupted run's byte for byte (cmp)
#           and so must train.csv without its wall-clock tokens_per_s column.
#           Kills that landed while the trainer was running are counted and
#           printed per trainer.
#  disk full a tmpfs run directory is filled up while each trainer saves a
#           checkpoint every step: the trainer fails naming the path, the
#           last complete checkpoint survives, no temp file is left, and once
#           space returns --resume finishes equal to the uninterrupted run.
#           Needs `mount -t tmpfs` (root); where mount is impossible the case
#           is counted in the closing line as skipped.
set -u
bin=$(cd "$(dirname "${CLLM_BUILD:-build}/cllm")" && pwd)/cllm
work=$(mktemp -d /tmp/cllm-test-fault.XXXXXX)
mnt=$work/tmpfs
cleanup() {
    mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
    rm -rf "$work"
}
trap cleanup EXIT
[ -n "${KEEP_WORK:-}" ] && trap - EXIT
. "$(dirname "$0")/lib.sh"
skipped=0
KILLS=20
STEPS=40
RANDOM=20240915 # fixed seed: the kill delays are the same every run

# ---- tiny data and models ----
for i in $(seq 1 60); do printf '### User:\n%d+1\n\n### Assistant:\n%d\n\n' $((i % 8)) $((i % 8 + 1)); done >"$work/text.txt"
for i in $(seq 0 15); do
    echo "{\"prompt\":\"$((i % 8))+1\",\"completion\":\"$((i % 8 + 1))\"}"
done >"$work/sft.jsonl"
for i in $(seq 0 7); do
    echo "{\"prompt\":\"$i+1\",\"chosen\":\"$((i + 1))\",\"rejected\":\"$(((i + 5) % 10))\"}"
done >"$work/pairs.jsonl"
for i in $(seq 0 7); do echo "{\"prompt\":\"$i+1\",\"answer\":$((i + 1))}"; done >"$work/prompts.jsonl"
tiny="--n-layer 1 --n-head 2 --n-kv-head 2 --n-embd 32 --ffn-hidden 64 --context 48 --seq 48 --batch 4 --eval-every 0"
"$bin" pretrain --data "$work/text.txt" $tiny --steps 3 --threads 1 --out "$work/base" --no-progress >/dev/null 2>&1 ||
    fail_all "could not pretrain the tiny base model"
m=$work/base/model.gguf
"$bin" reward -m "$m" --data "$work/pairs.jsonl" --steps 2 --batch 2 --threads 1 --out "$work/rm" >/dev/null 2>&1 ||
    fail_all "could not train the tiny reward model"
rm_model=$work/rm/model.gguf

# cmd TRAINER RUN_DIR: the trainer's command line (always --save-every 1 --resume)
cmd() {
    local common="--steps $STEPS --threads 1 --save-every 1 --resume --out $2"
    case $1 in
    pretrain) echo "$bin pretrain --data $work/text.txt $tiny --no-progress $common" ;;
    sft) echo "$bin sft --model $m --data $work/sft.jsonl --batch 4 --seq 48 --quiet $common" ;;
    dpo) echo "$bin dpo -m $m --data $work/pairs.jsonl --batch 2 $common" ;;
    reward) echo "$bin reward -m $m --data $work/pairs.jsonl --batch 2 $common" ;;
    ppo) echo "$bin ppo -m $m --reward-model $rm_model --data $work/prompts.jsonl --batch 2 --max-new 3 $common" ;;
    grpo) echo "$bin grpo -m $m --data $work/prompts.jsonl --verify number --batch 2 --group 2 --max-new 3 $common" ;;
    esac
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# same_run NAME REF_DIR DIR: model.gguf bytes and train.csv (without tokens_per_s) equal
same_run() {
    check "$1: model.gguf equals the uninterrupted run's (cmp)" cmp -s "$2/model.gguf" "$3/model.gguf"
    cut -d, -f1-5 "$2/train.csv" >"$work/csv.ref"
    cut -d, -f1-5 "$3/train.csv" >"$work/csv.got"
    check "$1: train.csv equals the uninterrupted run's ($(($(wc -l <"$work/csv.ref") - 1)) rows, cmp)" cmp -s "$work/csv.ref" "$work/csv.got"
}

summary=()
for t in ${TRAINERS:-pretrain sft dpo reward ppo grpo}; do
    ref=$work/$t-ref
    t0=$(now_ms)
    $(cmd $t "$ref") >/dev/null 2>"$work/$t.ref.err"
    rc=$?
    dur=$(($(now_ms) - t0))
    check "$t: uninterrupted run exits 0 (see $t.ref.err)" test $rc -eq 0 || { cat "$work/$t.ref.err"; continue; }
    # ---- kill -9 at random moments, resume each time ----
    run=$work/$t-kill
    landed=0
    for k in $(seq 1 $KILLS); do
        delay=$((RANDOM % (dur > 30 ? dur / 3 : 20)))
        $(cmd $t "$run") >/dev/null 2>>"$work/$t.kill.err" &
        pid=$!
        sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
        if kill -9 $pid 2>/dev/null; then landed=$((landed + 1)); fi
        wait $pid 2>/dev/null
    done
    $(cmd $t "$run") >/dev/null 2>>"$work/$t.kill.err"
    check "$t: final --resume after $KILLS kills exits 0" test $? -eq 0 || tail -5 "$work/$t.kill.err"
    check "$t: no temp file left" bash -c "! ls '$run' | grep -q '\.tmp\.'"
    same_run "$t (kill -9)" "$ref" "$run"
    check "$t: at least one kill landed mid-run" test $landed -ge 1
    summary+=("$t: $landed of $KILLS kills landed mid-run (uninterrupted run ${dur} ms)")
done

# ---- disk full during a save ----
mkdir -p "$mnt"
if mount -t tmpfs -o size=4m tmpfs "$mnt" 2>"$work/mount.err"; then
    for t in ${TRAINERS:-pretrain sft dpo reward ppo grpo}; do
        rm -rf "${mnt:?}"/*
        run=$mnt/$t
        $(cmd $t "$run") >/dev/null 2>"$work/$t.full.err" &
        pid=$!
        # once the first checkpoint is complete, fill the file system
        for i in $(seq 1 200); do ls "$run" 2>/dev/null | grep -q '\.done$' && break; sleep 0.01; done
        dd if=/dev/zero of="$mnt/fill" bs=4k >/dev/null 2>&1
        wait $pid
        rc=$?
        if [ $rc -eq 0 ]; then
            # finished before the disk filled: nothing to judge here
            ok "$t: disk full came after the run finished (not judged)"
            rm -f "$mnt/fill"
            continue
        fi
        check "$t: disk full: exit 1 (got $rc)" test $rc -eq 1
        check "$t: disk full: the error names the run directory" grep -q "$run" "$work/$t.full.err" || cat "$work/$t.full.err"
        check "$t: disk full: a complete checkpoint survives" bash -c "ls '$run' | grep -q '\.done$'"
        check "$t: disk full: no temp file left" bash -c "! ls '$run' | grep -q '\.tmp\.'"
        rm -f "$mnt/fill"
        $(cmd $t "$run") >/dev/null 2>>"$work/$t.full.err"
        check "$t: space back: --resume exits 0" test $? -eq 0 || tail -3 "$work/$t.full.err"
        same_run "$t (disk full)" "$work/$t-ref" "$run"
    done
    umount "$mnt"
else
    echo "skipped: disk-full cases (mount -t tmpfs failed: $(head -c 200 "$work/mount.err"))"
    skipped=$((skipped + 1))
fi

for s in "${summary[@]}"; do echo "kills: $s"; done
echo "$pass passed, $fail failed, $skipped skipped"
[ "$fail" -eq 0 ]
