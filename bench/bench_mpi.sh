#!/usr/bin/env bash
# Data-parallel benchmark (docs/MPI.md): the same pre-training steps as
#   - 1 rank x 2 threads (a plain `cllm pretrain --threads 2`), and
#   - 2 ranks x 1 thread (mpirun -np 2 --bind-to core ... --threads 1),
# on a Llama-style ~10M shape (preset llama-10m, layers/width as the preset;
# the vocabulary is the data's 256 bytes) with B=4, T=128 and 2 micro-batches
# per step (one per rank). One JSON object on stdout (also $OUT):
#   per setup: median step ms, global tokens/s (train.csv), and for 2 ranks
#   the median communication ms per step (rank 0's comm_s column: the
#   reduce-scatter, the parameter all-gather, the norm and loss exchanges),
#   its fraction of the step, each rank's median compute ms, and the
#   effective all-reduce bandwidth = bytes one rank sends and receives per
#   step for the reduce-scatter + all-gather (2 x (N-1)/N x 4 x params) /
#   comm time;
#   the same 2 ranks with CLLM_OVERLAP=1 (reductions started during backward):
#   its exposed comm ms, comm_hidden_fraction = 1 - that / the blocking run's,
#   and the share of gradient bytes exchanged before backward ended (log);
#   the speedup 2 ranks vs 1 rank x 2 threads; whether both models are
#   equal to a one-process run with CLLM_GRAD_GROUPS=2 (cmp) is not asked
#   here (tests/test_mpi.sh does that).
# STEPS (default 30; the first 5 are dropped as warm-up), PRESET, OUT
# (default bench/results/mpi.json). Needs a quiet machine for numbers that
# mean anything: the load average is recorded before and after.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${CLLM_BUILD:-build}
bin=$build/cllm
steps=${STEPS:-30}
preset=${PRESET:-llama-10m}
out=${OUT:-bench/results/mpi.json}
[ -x "$bin" ] || make -s -j2 "$bin" >&2
command -v mpirun >/dev/null || { echo "bench_mpi: mpirun not found (apt-get install openmpi-bin)" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d /tmp/cllm-bench-mpi.XXXXXX)
trap 'rm -rf "$work"' EXIT
for i in $(seq 1 3000); do
    echo "once upon a time there was a little fox number $((i % 97)) who lived by the river $((i % 13)) and liked to sing."
done >"$work/data.txt"
load_before=$(cut -d' ' -f1 /proc/loadavg)
args=(pretrain --data "$work/data.txt" --preset "$preset" --batch 4 --seq 128 --total-batch 1024 --steps "$steps"
      --lr 1e-3 --warmup 2 --eval-every 0 --seed 1 --peak-gflops -1 --no-progress)
"$bin" "${args[@]}" --threads 2 --out "$work/one" >"$work/one.log" 2>&1
mpirun -np 2 --oversubscribe --bind-to core "$bin" "${args[@]}" --threads 1 --out "$work/two" >"$work/two.log" 2>&1 ||
    mpirun -np 2 --oversubscribe --bind-to none "$bin" "${args[@]}" --threads 1 --out "$work/two" >"$work/two.log" 2>&1
mpirun -np 2 --oversubscribe --bind-to core -x CLLM_OVERLAP=1 "$bin" "${args[@]}" --threads 1 --out "$work/ov" \
    >"$work/ov.log" 2>&1 ||
    mpirun -np 2 --oversubscribe --bind-to none -x CLLM_OVERLAP=1 "$bin" "${args[@]}" --threads 1 --out "$work/ov" \
    >"$work/ov.log" 2>&1
load_after=$(cut -d' ' -f1 /proc/loadavg)
share=$(grep -o '^overlap: [0-9]*%' "$work/ov.log" | grep -o '[0-9]*' || echo null)
params=$(grep -o 'model: [0-9]*' "$work/one.log" | grep -o '[0-9]*$')
/usr/bin/python3 - "$work/one/train.csv" "$work/two/train.csv" "$params" "$preset" "$steps" "$load_before" \
    "$load_after" "$(nproc)" "$work/ov/train.csv" "$share" <<'EOF' | tee "$out"
import csv, json, statistics, sys
one, two, params, preset, steps, lb, la, cores, ov, share = sys.argv[1:]
params = int(params)
def rows(p):
    r = list(csv.DictReader(open(p)))
    return r[5:] if len(r) > 10 else r
def summary(p, ranks):
    r = rows(p)
    tps = statistics.median(float(x["tokens_per_s"]) for x in r)
    d = {"tokens_per_s": round(tps, 1), "step_ms": round(1024 / tps * 1e3, 3)}
    if ranks > 1:
        comm = statistics.median(float(x["comm_s"]) for x in r)
        per = [statistics.median(float(x["rank_compute_s"].split(";")[k]) for x in r) for k in range(ranks)]
        moved = 2 * (ranks - 1) / ranks * 4 * params
        d.update({"comm_ms": round(comm * 1e3, 3), "comm_fraction": round(comm / (d["step_ms"] / 1e3), 4),
                  "rank_compute_ms": [round(c * 1e3, 3) for c in per],
                  "allreduce_bytes_per_step": int(moved),
                  "allreduce_GB_per_s": round(moved / comm / 1e9, 3) if comm > 0 else None})
    return d
a, b, c = summary(one, 1), summary(two, 2), summary(ov, 2)
c["exchanged_during_backward_pct"] = None if share == "null" else int(share)
c["comm_hidden_fraction"] = round(1 - c["comm_ms"] / b["comm_ms"], 3) if b["comm_ms"] > 0 else None
print(json.dumps({"bench": "mpi", "preset": preset, "params": params, "batch": 4, "seq": 128, "tokens_per_step": 1024,
                  "steps": int(steps), "cores": int(cores),
                  "one_rank_two_threads": a, "two_ranks_one_thread": b, "two_ranks_overlap": c,
                  "speedup_two_ranks": round(b["tokens_per_s"] / a["tokens_per_s"], 3),
                  "load_before": float(lb), "load_after": float(la)}, indent=1))
EOF
