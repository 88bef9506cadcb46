#!/usr/bin/env bash
# bench_server.sh: `cllm serve` under 1, 4 and 16 concurrent streaming
# clients on loopback (bench/bench_server.py); prints JSON with TTFT
# p50/p95/p99, per-client and aggregate tokens/s, failures and server RSS
# before/after each level, twice (the second pass shows memory growth),
# plus where the time went (the worker's phases from /metrics, server CPU
# per thread, the client's own CPU).
# Target: aggregate tokens/s at 16 clients >= 4x the single-client rate.
#
# Two rows: a small model (decode dominated by per-token overheads) and a
# ~100M one (f32 decode bound by reading the weights: batching pays most).
# Env: MODEL (a GGUF; default: a byte-level PRESET model trained for a few
# steps here), PRESET (llama-10m), TOKENS (max_tokens, 64), REQS (requests
# per client, 2); MODEL2 / PRESET2 (llama-110m; PRESET2=none skips the
# row), TOKENS2 (32), REQS2 (1); THREADS (2), LEVELS (1,4,16).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${CLLM_BUILD:-$here/../build}/cllm
work=$(mktemp -d /tmp/cllm-bench-server.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$work"' EXIT
for i in $(seq 1 300); do echo "the cat sat on the mat. the dog ran to the log."; done > "$work/text.txt"

# make_model PRESET DIR: a byte-level model of that shape after one short step
# (serving speed does not depend on what the weights learned).
make_model() {
    "$bin" pretrain --data "$work/text.txt" --preset "$1" --steps 1 --batch 1 --seq 32 --context 256 \
        --eval-every 0 --out "$2" --no-progress > "$2.log" 2>&1 || { cat "$2.log" >&2; exit 1; }
    echo "$2/model.gguf"
}

# run_row MODEL TOKENS REQS: one JSON object for one model.
run_row() {
    local model=$1 tokens=$2 reqs=$3
    "$bin" serve -m "$model" --port 0 --threads "${THREADS:-2}" --parallel 16 --queue 64 2> "$work/serve.log" &
    pid=$!
    for _ in $(seq 1 600); do grep -q "listening on" "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
    local port load first second
    port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$work/serve.log" | sed 's/.*://')
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    first=$(/usr/bin/python3 "$here/bench_server.py" "$port" "$pid" "${LEVELS:-1,4,16}" "$reqs" "$tokens")
    second=$(/usr/bin/python3 "$here/bench_server.py" "$port" "$pid" "${LEVELS:-1,4,16}" "$reqs" "$tokens")
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
    pid=
    printf '{"model":"%s","model_bytes":%s,"loadavg_before":"%s","pass1":%s,"pass2":%s}' \
        "$(basename "$(dirname "$model")")/$(basename "$model")" "$(stat -c %s "$model")" "$load" "$first" "$second"
}

model=${MODEL:-}
[ -n "$model" ] || model=$(make_model "${PRESET:-llama-10m}" "$work/small")
rows=$(run_row "$model" "${TOKENS:-64}" "${REQS:-2}")
if [ "${PRESET2:-llama-110m}" != none ] || [ -n "${MODEL2:-}" ]; then
    model2=${MODEL2:-}
    [ -n "$model2" ] || model2=$(make_model "${PRESET2:-llama-110m}" "$work/large")
    rows="$rows,$(run_row "$model2" "${TOKENS2:-32}" "${REQS2:-1}")"
fi
printf '{"bench":"server","threads":%s,"gomp_spincount":"%s","rows":[%s]}\n' "${THREADS:-2}" \
    "${GOMP_SPINCOUNT:-cllm default}" "$rows"
