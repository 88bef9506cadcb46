#!/usr/bin/env bash
# test_mpi.sh: data-parallel training under MPI (docs/MPI.md), on tiny models:
#   - 2 ranks give the model bytes (cmp) and train.csv (loss .. grad_norm) of
#     one process summing its gradients in the same 2 groups
#     (CLLM_GRAD_GROUPS=2), over 20 AdamW steps: GPT-2 style (with dropout)
#     and Llama style pretraining, SFT with LoRA, reward and DPO;
#   - one process with the default single group agrees with 2 ranks to a
#     relative 1e-4 in the final loss (the sums round differently);
#   - two 2-rank runs are bit-identical;
#   - ZeRO-1 (moments sharded, the default) == the unsharded update (cmp);
#   - overlapped reduction (CLLM_OVERLAP=1) gives the same bits (pretrain,
#     SFT LoRA, DPO) and reports its share; ranks disagreeing on it are refused;
#   - kill -9 of one rank stops the whole job (no hang), and --resume then
#     gives the uninterrupted run's model (cmp); SIGTERM to one rank stops
#     every rank after the same step with a checkpoint;
#   - resuming with another rank count works and says so;
#   - ranks started with different settings or data are refused, naming them;
#   - the shim for a build without MPI compiles with -Werror and the program
#     links and trains without libmpi;
#   - cllm info --ranks N reports the per-rank optimizer memory with ZeRO-1.
# In a build made with MPI=0 (BUILD/.mpi holds 0) only the no-MPI cases run, and the
# script says so; in an MPI build a missing mpirun is a failure.
set -u
BUILD=${CLLM_BUILD:-build}
bin=$BUILD/cllm
. "$(dirname "$0")/lib.sh"
[ -x "$bin" ] || fail_all "missing $bin"
lib_workdir cllm-test-mpi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Open MPI's own allocations outlive MPI_Finalize; LeakSanitizer would call them ours.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
mpi_build=$(cat "$BUILD/.mpi" 2>/dev/null) # the Makefile's MPI setting for this build
if [ "$mpi_build" != 0 ] && [ "$mpi_build" != 1 ]; then
    mpi_build=0
    ldd "$bin" 2>/dev/null | grep -q libmpi && mpi_build=1
fi

# ---- the build without MPI: the shim compiles, the program links without libmpi ----
san=()
nm "$bin" 2>/dev/null | grep -q __asan_init && san=(-fsanitize=address,undefined)
cc -std=c11 -Wall -Wextra -Werror -Wno-format-truncation -D_GNU_SOURCE -fopenmp -Iinclude "${san[@]}" \
    -c src/train/dist.c -o "$work/dist.o" 2>"$work/shim.err"
check "dist.c without MPI compiles with -Werror" test $? -eq 0
cp "$BUILD/libcllm.a" "$work/lib.a" && ar r "$work/lib.a" "$work/dist.o" 2>/dev/null
cc -fopenmp "${san[@]}" -o "$work/cllm-nompi" "$BUILD"/obj/tools/*.o "$work/lib.a" \
    $(pkg-config --libs libpcre2-8 libcjson libmicrohttpd libedit) -ldnnl -lm -lpthread 2>"$work/link.err"
check "the program links without libmpi" test $? -eq 0
check "... and does not load it" '! ldd "$work/cllm-nompi" | grep -q libmpi'
for i in $(seq 1 300); do echo "the quick brown fox jumps over the lazy dog, number $((i % 5))."; done >"$work/data.txt"
small=(pretrain --data "$work/data.txt" --preset tiny-gpt2 --batch 2 --seq 16 --total-batch 64 --steps 5 --threads 1
       --seed 3 --peak-gflops -1 --no-progress --eval-every 0)
"$work/cllm-nompi" "${small[@]}" --out "$work/nompi" >/dev/null 2>&1
check "the build without MPI trains" test -s "$work/nompi/model.gguf"
"$bin" "${small[@]}" --out "$work/withmpi" >/dev/null 2>&1
check "... the same model as the MPI build run as one process (cmp)" cmp -s "$work/nompi/model.gguf" "$work/withmpi/model.gguf"

"$bin" info --preset gpt2 --ranks 8 --json >"$work/info.json" 2>&1
check "cllm info --ranks 8: ZeRO-1 moments are 1/8 of the unsharded ones (to a 64 Ki-element chunk)" /usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["data_parallel"]
full, z = d["adamw_bytes_per_rank"], d["adamw_bytes_per_rank_zero1"]
assert d["ranks"] == 8 and full == 8 * json.load(open(sys.argv[1]))["n_params"], d
assert full / 8 <= z <= full / 8 + 8 * 65536, d' "$work/info.json"

if [ "$mpi_build" -eq 0 ]; then
    echo "this build was made without MPI (make MPI=0): the multi-rank cases are skipped"
    finish
fi
command -v mpirun >/dev/null 2>&1 || fail_all "this build uses MPI but mpirun is missing (apt-get install openmpi-bin)"
# generous hang guard (not a speed bound): a job that never ends fails here instead of stalling the suite
run2() { timeout 300 mpirun -np 2 --oversubscribe --bind-to none "$@"; }

# same_bits NAME A B: model bytes and the CSV's deterministic columns equal
same_bits() {
    check "$1: model bytes equal (cmp)" cmp -s "$2/${4:-model.gguf}" "$3/${4:-model.gguf}"
    cut -d, -f1-5 "$2/train.csv" >"$work/a.csv" 2>/dev/null
    cut -d, -f1-5 "$3/train.csv" >"$work/b.csv" 2>/dev/null
    check "$1: train.csv loss, lr, grad_norm equal" cmp -s "$work/a.csv" "$work/b.csv"
}

# ---- 1 process (2 gradient groups) == 2 ranks, 20 AdamW steps ----
for preset in tiny-gpt2 tiny-llama; do
    drop=0
    [ "$preset" = tiny-gpt2 ] && drop=0.1 # skipped micro-batches still advance the dropout stream
    args=(pretrain --data "$work/data.txt" --preset "$preset" --batch 2 --seq 16 --total-batch 64 --steps 20 --lr 3e-3
          --dropout "$drop" --warmup 3 --eval-every 10 --eval-batches 2 --threads 1 --seed 7 --peak-gflops -1 --no-progress)
    CLLM_GRAD_GROUPS=2 "$bin" "${args[@]}" --out "$work/$preset.g2" >"$work/$preset.g2.log" 2>&1
    check "$preset: one process, 2 gradient groups, exits 0" test $? -eq 0
    run2 "$bin" "${args[@]}" --out "$work/$preset.r2" >"$work/$preset.r2.log" 2>&1
    check "$preset: 2 ranks exit 0" test $? -eq 0
    same_bits "$preset: 2 ranks vs 1 process" "$work/$preset.g2" "$work/$preset.r2"
    check "$preset: rank 0 alone logs (one model line)" test "$(grep -c '^model: ' "$work/$preset.r2.log")" -eq 1
    check "$preset: train.csv has ranks and per-rank times" \
        'awk -F, "NR==1 && \$7==\"ranks\" {h=1} NR>1 && \$7==2 && \$9 ~ /;/ {r++} END {exit !(h && r==20)}" "$work/$preset.r2/train.csv"'
done
args=(pretrain --data "$work/data.txt" --preset tiny-gpt2 --batch 2 --seq 16 --total-batch 64 --steps 20 --lr 3e-3
      --dropout 0.1 --warmup 3 --eval-every 10 --eval-batches 2 --threads 1 --seed 7 --peak-gflops -1 --no-progress)
"$bin" "${args[@]}" --out "$work/g1" >/dev/null 2>&1
check "one process, one group: final loss within 1e-4 (relative) of 2 ranks" /usr/bin/python3 -c '
import sys
a = float(open(sys.argv[1]).read().splitlines()[-1].split(",")[1])
b = float(open(sys.argv[2]).read().splitlines()[-1].split(",")[1])
assert abs(a - b) <= 1e-4 * abs(b), (a, b)' "$work/g1/train.csv" "$work/tiny-gpt2.r2/train.csv"
run2 "$bin" "${args[@]}" --out "$work/again" >/dev/null 2>&1
same_bits "2 ranks run twice" "$work/tiny-gpt2.r2" "$work/again"
# bf16 (docs/PRECISION.md) with ZeRO-1: the other ranks' weight slices arrive by all-gather, outside
# AdamW, so the bf16 weight copies must be remade; 2 ranks == 1 process with 2 groups in bf16 too
if "$bin" version | grep -q 'bf16 training: *oneDNN'; then
    CLLM_GRAD_GROUPS=2 "$bin" "${args[@]}" --precision bf16 --out "$work/bf.g2" >/dev/null 2>&1
    run2 "$bin" "${args[@]}" --precision bf16 --out "$work/bf.r2" >/dev/null 2>&1
    same_bits "bf16: 2 ranks (ZeRO-1) vs 1 process" "$work/bf.g2" "$work/bf.r2"
    timeout 300 mpirun --oversubscribe --bind-to none -np 1 "$bin" "${args[@]}" --out "$work/mixp" : -np 1 "$bin" "${args[@]}" \
        --precision bf16 --out "$work/mixp" >/dev/null 2>"$work/mixp.err"
    check "ranks started with different --precision are refused" grep -q "precision=bf16" "$work/mixp.err"
fi

# ---- SFT with LoRA, reward, DPO ----
for i in $(seq 1 40); do
    echo '{"messages": [{"role": "user", "content": "where is the fox?"}, {"role": "assistant", "content": "over the dog."}]}'
    echo '{"prompt": "the quick brown", "completion": " fox jumps."}'
done >"$work/chat.jsonl"
"$bin" pretrain --data "$work/data.txt" --preset tiny-llama --steps 10 --batch 4 --seq 32 --context 64 --lr 1e-2 \
    --eval-every 0 --threads 1 --out "$work/base" --no-progress >/dev/null 2>&1
base=$work/base/model.gguf
check "a base model for SFT, reward and DPO" test -s "$base"
sft=(sft --model "$base" --data "$work/chat.jsonl" --steps 20 --batch 2 --seq 64 --accum 2 --pack --lr 1e-2
     --lora-rank 4 --lora-targets q,k,v,o,up,down,gate --threads 1 --quiet)
CLLM_GRAD_GROUPS=2 "$bin" "${sft[@]}" --out "$work/sft.g2" >/dev/null 2>"$work/sft.g2.err"
check "sft LoRA: one process exits 0" test $? -eq 0
run2 "$bin" "${sft[@]}" --out "$work/sft.r2" >"$work/sft.r2.out" 2>&1
check "sft LoRA: 2 ranks exit 0" test $? -eq 0
same_bits "sft LoRA: 2 ranks vs 1 process" "$work/sft.g2" "$work/sft.r2" adapter.gguf
for i in 1 2 3 4 5 6 7 8; do echo "{\"prompt\":\"$i+1\",\"chosen\":\"$((i + 1))\",\"rejected\":\"$((i + 2))\"}"; done >"$work/pairs.jsonl"
for t in reward dpo; do
    a=($t -m "$base" --data "$work/pairs.jsonl" --steps 6 --batch 4 --threads 1)
    CLLM_GRAD_GROUPS=2 "$bin" "${a[@]}" --out "$work/$t.g2" >/dev/null 2>&1
    run2 "$bin" "${a[@]}" --out "$work/$t.r2" >/dev/null 2>&1
    check "$t: 2 ranks exit 0" test $? -eq 0
    check "$t: 2 ranks vs 1 process, model bytes equal (cmp)" cmp -s "$work/$t.g2/model.gguf" "$work/$t.r2/model.gguf"
done

# ---- overlap (CLLM_OVERLAP=1): reductions start during backward, same bits ----
args=(pretrain --data "$work/data.txt" --preset tiny-llama --batch 2 --seq 16 --total-batch 64 --steps 20 --lr 3e-3
      --dropout 0 --warmup 3 --eval-every 10 --eval-batches 2 --threads 1 --seed 7 --peak-gflops -1 --no-progress)
run2 -x CLLM_OVERLAP=1 "$bin" "${args[@]}" --out "$work/ov.llama" >"$work/ov.llama.log" 2>&1
check "overlap: tiny-llama exits 0" test $? -eq 0
same_bits "overlap: tiny-llama vs 1 process" "$work/tiny-llama.g2" "$work/ov.llama"
check "overlap: the log reports the share exchanged during backward" grep -q "^overlap: [0-9]*% of the gradient bytes" \
    "$work/ov.llama.log"
run2 -x CLLM_OVERLAP=1 -x CLLM_ZERO=0 "$bin" "${sft[@]}" --out "$work/ov.sft" >/dev/null 2>&1
same_bits "overlap, unsharded: sft LoRA vs 1 process" "$work/sft.g2" "$work/ov.sft" adapter.gguf
a=(dpo -m "$base" --data "$work/pairs.jsonl" --steps 6 --batch 4 --threads 1)
run2 -x CLLM_OVERLAP=1 "$bin" "${a[@]}" --out "$work/ov.dpo" >/dev/null 2>&1
check "overlap: dpo vs 1 process, model bytes equal (cmp)" cmp -s "$work/dpo.g2/model.gguf" "$work/ov.dpo/model.gguf"
timeout 300 mpirun --oversubscribe --bind-to none -np 1 -x CLLM_OVERLAP=1 "$bin" "${args[@]}" --out "$work/ov.mm" : \
    -np 1 "$bin" "${args[@]}" --out "$work/ov.mm" >"$work/ov.mm.log" 2>&1
check "ranks that disagree on CLLM_OVERLAP are refused" grep -q "CLLM_OVERLAP / CLLM_ZERO environment does not match" \
    "$work/ov.mm.log"

# ---- ZeRO-1: a model of 13 norm chunks (828K parameters), sharded vs not ----
big=(pretrain --data "$work/data.txt" --preset nanogpt-shakespeare --batch 2 --seq 16 --total-batch 64 --steps 10
     --lr 3e-3 --warmup 2 --threads 1 --seed 7 --peak-gflops -1 --no-progress --eval-every 0)
run2 "$bin" "${big[@]}" --out "$work/zero1" >/dev/null 2>&1
check "ZeRO-1 run exits 0" test $? -eq 0
run2 -x CLLM_ZERO=0 "$bin" "${big[@]}" --out "$work/zero0" >/dev/null 2>&1
check "unsharded run exits 0" test $? -eq 0
same_bits "ZeRO-1 vs unsharded" "$work/zero1" "$work/zero0"
check "the clipping bound was active (so the sharded norm mattered)" \
    'awk -F, "NR>1 && \$5 > 1 {n++} END {exit !n}" "$work/zero1/train.csv"'
run2 -x CLLM_REDUCE_ROUND=50000 "$bin" "${big[@]}" --out "$work/rounds1" >/dev/null 2>&1
same_bits "ZeRO-1 reducing in rounds of 50000 elements vs in one" "$work/zero1" "$work/rounds1"
run2 -x CLLM_REDUCE_ROUND=50000 -x CLLM_ZERO=0 "$bin" "${big[@]}" --out "$work/rounds0" >/dev/null 2>&1
same_bits "unsharded, in rounds vs ZeRO-1" "$work/zero1" "$work/rounds0"

# ---- kill -9 of one rank: the job stops, --resume continues bit-exactly ----
long=(pretrain --data "$work/data.txt" --preset nanogpt-shakespeare --batch 2 --seq 16 --total-batch 64 --steps 400
      --lr 3e-3 --warmup 2 --threads 1 --seed 9 --peak-gflops -1 --no-progress --eval-every 0 --save-every 20 --keep 2)
run2 "$bin" "${long[@]}" --out "$work/ref" >/dev/null 2>&1
check "uninterrupted 2-rank run exits 0" test $? -eq 0
# start_job NAME ROWS: the long 2-rank run into $work/NAME in the background (job), and once its
# train.csv has more than ROWS lines the pid of its rank 1 (victim; empty when the job ended first)
start_job() {
    run2 "$bin" "${long[@]}" --out "$work/$1" >"$work/$1.log" 2>&1 &
    job=$!
    pids+=("$job")
    for _ in $(seq 1 3000); do
        [ -f "$work/$1/train.csv" ] && [ "$(wc -l <"$work/$1/train.csv")" -gt "$2" ] && break
        kill -0 "$job" 2>/dev/null || break
        sleep 0.02
    done
    victim=""
    for p in $(pgrep -f -- "--out $work/$1"); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1" && victim=$p
    done
}
start_job killed 50
if [ -n "$victim" ]; then
    kill -9 "$victim"
    wait "$job"
    rc=$?
    check "killing rank 1 with -9 ends the job with an error (exit $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
    check "mpirun names the killed rank" grep -q "rank 1 .*signal 9" "$work/killed.log"
    run2 "$bin" "${long[@]}" --out "$work/killed" --resume >"$work/resume.log" 2>&1
    check "--resume after the kill exits 0" test $? -eq 0
    check "--resume continued from a checkpoint" grep -q "resumed from" "$work/resume.log"
    same_bits "killed + resumed vs uninterrupted" "$work/ref" "$work/killed"
else
    bad "found no rank 1 to kill (the job ended before 50 steps?)"
fi

# ---- SIGTERM to one rank only: every rank stops after the same step, rank 0 saves ----
start_job term 30
if [ -n "$victim" ]; then
    kill -TERM "$victim"
    wait "$job"
    rc=$?
    check "SIGTERM to rank 1 alone: the job exits 0 (exit $rc)" test "$rc" -eq 0 || tail -5 "$work/term.log"
    check "... rank 0 reports the stop" grep -q "stopped by a signal after step" "$work/term.log"
    check "... and saved a checkpoint there" 'ls "$work/term"/ckpt-*.done >/dev/null 2>&1'
else
    bad "found no rank 1 to signal"
fi

# ---- resume with another rank count: works, with a note ----
mkdir -p "$work/other"
cp "$work/ref"/ckpt-0000000380.* "$work/ref/train.csv" "$work/other/" 2>/dev/null
"$bin" "${long[@]}" --out "$work/other" --resume >"$work/other.log" 2>&1
check "a 2-rank checkpoint resumes in one process" test $? -eq 0
check "... with a note about the different grouping" grep -q "summed in 2 group(s) (ranks) and this run sums them in 1" "$work/other.log"

# ---- mismatched ranks are refused ----
mm=(pretrain --preset tiny-gpt2 --batch 2 --seq 16 --total-batch 64 --steps 3 --threads 1
    --peak-gflops -1 --no-progress --eval-every 0 --out "$work/mm")
timeout 300 mpirun --oversubscribe --bind-to none -np 1 "$bin" "${mm[@]}" --data "$work/data.txt" --seed 1 : -np 1 "$bin" "${mm[@]}" --data "$work/data.txt" --seed 2 \
    >"$work/mm.log" 2>&1
rc=$?
check "ranks with different --seed: non-zero exit ($rc)" test "$rc" -ne 0 -a "$rc" -ne 124
check "... naming the setting" grep -q "rank 1 was started with other settings than rank 0 ('seed=2' on rank 1, 'seed=1'" "$work/mm.log"
head -c 5000 "$work/data.txt" >"$work/less.txt"
timeout 300 mpirun --oversubscribe --bind-to none -np 1 "$bin" "${mm[@]}" --data "$work/data.txt" : -np 1 "$bin" "${mm[@]}" --data "$work/less.txt" \
    >"$work/mm2.log" 2>&1
rc=$?
check "ranks with different data: non-zero exit ($rc)" test "$rc" -ne 0 -a "$rc" -ne 124
check "... naming the data" grep -q "training data (fingerprint) does not match rank 0's" "$work/mm2.log"
check "no model was written" test ! -e "$work/mm/model.gguf"

finish
