#!/usr/bin/env bash
# test_scale_cli.sh: `cllm scale` end to end on a small ladder (sequences of
# 16 tokens, the repo's example corpus), and `cllm info`'s Chinchilla line:
#   - bad input: no data, an empty file, too little data, too few sizes, sizes out of order or
#     spanning under 30x, a budget too small (the error names a budget that
#     fits), an unknown flag;
#   - --plan writes the plan (7 ladder runs, 3 isoFLOP budgets x 4 sizes);
#   - kill -9 in the middle, then the same command: finished runs are read
#     back unchanged, the plan is the same, the ladder completes;
#   - the prediction was written before the held-out size trained;
#   - the report, runs.csv and the three pictures are there, and a rerun
#     rewrites the same report; other settings on the same directory are refused;
#   - every run's parameter count equals `cllm info`'s for the same shape;
#   - cllm info: Chinchilla tokens = 20 N, compute = 6 N D, a measured time.
set -u
. "$(dirname "$0")/lib.sh"
bin=${CLLM_BUILD:-build}/cllm
root=$(cd "$(dirname "$0")/.." && pwd)
data=$root/examples/corpus.txt
[ -x "$bin" ] || fail_all "missing $bin"
[ -s "$data" ] || fail_all "missing $data"
lib_workdir cllm_scale
py=/usr/bin/python3
small=(--data "$data" --seq 16 --batch 4 --no-progress)

# ---- bad input -----------------------------------------------------------------
"$bin" scale -o "$work/x" >"$work/err" 2>&1
check "no --data: exit 2, names the flag" 'test $? -eq 2 && grep -q -- "--data is required" "$work/err"'
: >"$work/empty.txt"
"$bin" scale --data "$work/empty.txt" -o "$work/e" >"$work/err" 2>&1
check "empty data: exit 1, names the file" 'test $? -eq 1 && grep -q "empty.txt: the file is empty" "$work/err"'
head -c 600 "$data" >"$work/small.txt"
"$bin" scale --data "$work/small.txt" -o "$work/e2" >"$work/err" 2>&1
check "too little data: exit 1, names the file and what to change" \
    'test $? -eq 1 && grep -q "small.txt: too little data" "$work/err" && grep -q -- "--seq" "$work/err"'
"$bin" scale "${small[@]}" -o "$work/s6" --sizes 1,2,3,4,5,6 >"$work/err" 2>&1
check "6 sizes: exit 2, says 7 are needed" 'test $? -eq 2 && grep -q "give 7 to" "$work/err"'
"$bin" scale "${small[@]}" -o "$work/so" --sizes 1,3,2,4,5,6,7 >"$work/err" 2>&1
check "sizes out of order: exit 2" 'test $? -eq 2 && grep -q "sizes must increase" "$work/err"'
"$bin" scale "${small[@]}" -o "$work/sn" --sizes 5,6,7,8,9,10,11 >"$work/err" 2>&1
check "sizes spanning under 30x: exit 2, says so" 'test $? -eq 2 && grep -q "at least 30x" "$work/err"'
"$bin" scale "${small[@]}" -o "$work/tiny" --budget 0.01 >"$work/err" 2>&1
check "budget too small: exit 2, names a budget that fits" \
    'test $? -eq 2 && grep -q "too small for 7 sizes" "$work/err" && grep -Eq -- "--budget [0-9.]+ would fit" "$work/err"'
check "budget too small: nothing planned" test ! -e "$work/tiny/plan.tsv"
"$bin" scale "${small[@]}" -o "$work/u" --budgte 3 >"$work/err" 2>&1
check "unknown flag: exit 2 with a suggestion" 'test $? -eq 2 && grep -q "did you mean --budget" "$work/err"'

# ---- the plan ------------------------------------------------------------------------
# A budget the machine can do: 1 minute, or what the error names when this
# machine (or a sanitizer build) is slower.
budget=1
"$bin" scale "${small[@]}" -o "$work/p" --budget "$budget" --plan >"$work/plan.out" 2>&1
if grep -q "would fit" "$work/plan.out"; then
    budget=$(grep -Eo -- "--budget [0-9.]+ would fit" "$work/plan.out" | awk '{print $2}')
    # the speeds measured in $work/p/runs/speed-r* are read back, so the same plan fits
    "$bin" scale "${small[@]}" -o "$work/p" --budget "$budget" --plan >"$work/plan.out" 2>&1
fi
check "--plan: exit 0 at budget $budget" 'test $? -eq 0 && grep -q "planned 1[0-9] runs" "$work/plan.out"'
check "--plan: 7 ladder runs, one held out, 3 budgets x 4 sizes" $py - "$work/p/plan.tsv" <<'EOF'
import sys
runs = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.startswith("run\t")]
ladder = [r for r in runs if r[5] == "1"]
held = [r for r in runs if r[7] == "1"]
iso = {}
for r in runs:
    if r[6] != "-1":
        iso.setdefault(r[6], []).append(r)
assert len(ladder) == 7 and len(held) == 1 and held[0][2] == "7", (len(ladder), held)
assert sorted(iso) == ["0", "1", "2"] and all(len(v) == 4 for v in iso.values()), iso
assert all(int(r[3]) >= 50 for r in runs), "a run under 50 steps"
EOF
check "--plan trains nothing" 'test -z "$(ls "$work/p/runs" | grep -v speed-)"'

# ---- kill -9 in the middle, then the same command -----------------------------------------
out=$work/ladder
cp -r "$work/p" "$out"
setsid "$bin" scale "${small[@]}" -o "$out" --budget "$budget" >"$work/run1.out" 2>"$work/run1.err" &
bg=$!
pids+=($bg)
for _ in $(seq 1 1200); do
    [ "$(ls "$out"/runs/*/scale.txt 2>/dev/null | wc -l)" -ge 3 ] && break
    kill -0 $bg 2>/dev/null || break
    sleep 0.1
done
kill -9 $bg 2>/dev/null
wait $bg 2>/dev/null
n_done=$(ls "$out"/runs/*/scale.txt 2>/dev/null | wc -l)
check "killed with 3 or more runs finished ($n_done)" test "$n_done" -ge 3
md5sum "$out"/runs/*/scale.txt "$out/plan.tsv" >"$work/before.md5"
"$bin" scale "${small[@]}" -o "$out" --budget "$budget" >"$work/run2.out" 2>"$work/run2.err"
check "rerun after kill -9: exit 0" test $? -eq 0
check "rerun continues the plan" grep -q "continuing the plan" "$work/run2.err"
check "finished runs and the plan are unchanged" md5sum --quiet -c "$work/before.md5"
check "summary: laws, tokens per parameter, the prediction" \
    'grep -q "^parameter law" "$work/run2.out" && grep -q "^joint law" "$work/run2.out" && grep -q "tokens per parameter" "$work/run2.out" && grep -Eq "the law (held|did not hold)" "$work/run2.out"'
for f in report.md runs.csv prediction.txt loss_vs_params.svg loss_vs_compute.svg isoflop.svg; do
    check "$f written" test -s "$out/$f"
done
held=$(awk -F'\t' '$1 == "run" && $8 == "1" {print $2}' "$out/plan.tsv")
check "the prediction predates the held-out run's result" test "$out/prediction.txt" -ot "$out/runs/$held/scale.txt"
check "runs.csv: 19 runs with finite losses" $py - "$out/runs.csv" <<'EOF'
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) >= 17, len(rows)
assert all(math.isfinite(float(r["loss"])) and float(r["loss"]) > 0 for r in rows)
EOF
check "report: prediction, isoFLOP table, Chinchilla's 20" \
    'grep -q "## Prediction of the largest size" "$out/report.md" && grep -q "## IsoFLOP sweep" "$out/report.md" && grep -q "about 20" "$out/report.md"'
check "pictures: axes labels and legends" \
    'grep -q "non-embedding parameters N (log scale)" "$out/loss_vs_params.svg" && grep -q "compute-optimal frontier" "$out/loss_vs_compute.svg" && grep -q "minimum of each budget" "$out/isoflop.svg"'

cp "$out/report.md" "$work/report1.md"
"$bin" scale "${small[@]}" -o "$out" --budget "$budget" >"$work/run3.out" 2>&1
check "a finished ladder reruns from its results: same report" 'test $? -eq 0 && cmp -s "$out/report.md" "$work/report1.md"'
"$bin" scale "${small[@]}" -o "$out" --budget "$budget" --seed 9 >"$work/err" 2>&1
check "other settings on the same directory: exit 2, says what differs" \
    'test $? -eq 2 && grep -q "planned with other settings" "$work/err" && grep -q "seed=9" "$work/err"'

# ---- the ladder rule against cllm info ------------------------------------------------------
ok_counts=1
while IFS=, read -r name rung L C nne np rest; do
    [ "$name" = name ] && continue
    heads=$((C / 16))
    ffn=$($py -c "print(round(8/3*$C/8)*8)")
    got=$("$bin" info --preset tiny-llama --no-speed --json --set vocab_size=256 --set context_length=16 \
        --set n_layer="$L" --set n_embd="$C" --set n_head="$heads" --set n_kv_head="$heads" \
        --set ffn_hidden="$ffn" --set tied_embeddings=true | $py -c 'import json,sys; print(json.load(sys.stdin)["n_params"])')
    [ "$got" = "$np" ] || { echo "  $name: runs.csv $np, cllm info $got"; ok_counts=0; }
done <"$out/runs.csv"
check "every run's parameter count matches cllm info" test $ok_counts -eq 1

# ---- cllm info: the Chinchilla-optimal run ------------------------------------------------------
"$bin" info --preset llama-1m --json >"$work/info.json" 2>&1
check "info --json: Chinchilla tokens 20 N, compute 6 N D, a measured time" $py - "$work/info.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
n, c = j["n_params"], j["chinchilla_optimal"]
assert abs(c["tokens"] - 20 * n) <= 1e-6 * c["tokens"], c
assert abs(c["flops"] - 6 * n * c["tokens"]) <= 1e-6 * c["flops"], c
assert c["train_tokens_per_s"] > 0 and abs(c["seconds"] - c["tokens"] / c["train_tokens_per_s"]) <= 1e-3 * c["seconds"], c
EOF
"$bin" info --preset llama-1m >"$work/info.txt" 2>&1
check "info table: the Chinchilla lines" \
    'grep -q "Chinchilla-optimal training (20 tokens per parameter" "$work/info.txt" && grep -q "time here" "$work/info.txt"'
"$bin" info --preset llama-1m --no-speed >"$work/info.txt" 2>&1
check "info --no-speed: FLOPs without a time" 'grep -q "compute" "$work/info.txt" && ! grep -q "time here" "$work/info.txt"'
finish
