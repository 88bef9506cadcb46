#!/usr/bin/env bash
# bench_server.sh: `cllm serve` under 1, 4 and 16 concurrent streaming
# clients on loopback (bench/bench_server.py); prints JSON with TTFT
# p50/p95/p99, per-client and aggregate tokens/s, failures and server RSS
# before/after each level, twice (the second pass shows memory growth).
# Target: aggregate tokens/s at 16 clients >= 4x the single-client rate.
# Env: MODEL (a GGUF; default: a byte-level PRESET model trained for a few
# steps here), PRESET (llama-10m), THREADS (2), REQS (requests per client, 2),
# TOKENS (max_tokens, 64), LEVELS (1,4,16).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${CLLM_BUILD:-$here/../build}/cllm
work=$(mktemp -d /tmp/cllm-bench-server.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$work"' EXIT
model=${MODEL:-}
if [ -z "$model" ]; then
    for i in $(seq 1 300); do echo "the cat sat on the mat. the dog ran to the log."; done > "$work/text.txt"
    "$bin" pretrain --data "$work/text.txt" --preset "${PRESET:-llama-10m}" --steps 3 --batch 2 --seq 64 --context 256 \
        --eval-every 0 --out "$work/run" --no-progress > "$work/train.log" 2>&1
    model=$work/run/model.gguf
fi
"$bin" serve -m "$model" --port 0 --threads "${THREADS:-2}" --parallel 16 --queue 64 2> "$work/serve.log" &
pid=$!
for _ in $(seq 1 200); do grep -q "listening on" "$work/serve.log" && break; sleep 0.1; done
port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$work/serve.log" | sed 's/.*://')
load=$(cut -d' ' -f1-3 /proc/loadavg)
first=$(/usr/bin/python3 "$here/bench_server.py" "$port" "$pid" "${LEVELS:-1,4,16}" "${REQS:-2}" "${TOKENS:-64}")
second=$(/usr/bin/python3 "$here/bench_server.py" "$port" "$pid" "${LEVELS:-1,4,16}" "${REQS:-2}" "${TOKENS:-64}")
printf '{"bench":"server","model":"%s","threads":%s,"loadavg_before":"%s","pass1":%s,"pass2":%s}\n' \
    "$(basename "$model")" "${THREADS:-2}" "$load" "$first" "$second"
