#!/usr/bin/env bash
# bench_grammar.sh: the cost of constrained decoding (docs/GRAMMAR.md), side
# by side with llama.cpp: decode tokens/s of `cllm generate` and of llama.cpp's
# completion tool (llama-completion), each with and without the same GBNF
# grammar (the JSON schema below converted by cllm) on the same GGUF file,
# greedy, same prompt, same token limit, same threads. One JSON object on
# stdout and in $OUT (default bench/results/grammar.json).
#
#   bash bench/bench_grammar.sh        # ROUNDS=3 THREADS=2 N=128 LLAMA_BIN=/tmp/llama-src/build/bin
#
# First the grammar alone (bench/bench_grammar.c): per step of a 31-token
# JSON sample under the schema below, with GPT-2's vocabulary, the time of the
# full vocabulary mask (the slow path) and of checking one token (the fast
# path the sampler tries first), best of 5.
# Models (GGUF files written by cllm, which llama.cpp loads as they are):
#   - gpt2vocab-tiny: the tiny-gpt2 shape (2 layers, 32 wide) with GPT-2's
#     50257-token vocabulary (from the npm tiktoken package), 2 training steps:
#     a forward pass of almost nothing, so the grammar's share is as large as
#     it gets (its untrained output is never JSON: every step needs the mask);
#   - gpt2-124m: GPT-2 small's shape, same vocabulary, 1 training step;
#   - demo: $DEMO_MODEL (default /tmp/demo-bf16/final.gguf, `make demo`'s
#     trained chat model), asked through its chat template (cllm --chat,
#     llama-completion -cnv -st); skipped if absent.
# Each round runs, alternating the peers: cllm plain, llama.cpp plain, cllm
# with the grammar, llama.cpp with the grammar, and llama.cpp with the schema
# through its own converter (-jf; another GBNF for the same language). Each
# side reports its best round.
#
# What is timed. cllm: completion_tokens / generate_seconds of `cllm generate
# --json` (every decode step after the prompt: forward, sampling, grammar).
# llama.cpp: its own perf report; "eval time" is the forward passes only, the
# grammar runs in its "sampling time", so the figure comparable with cllm's is
# sampled tokens (eval runs + 1, as cllm counts the first token after the
# prompt) / (eval time + sampling time); its reported eval tokens/s is kept
# too (eval_only_*). Plain runs ignore end-of-text so they make N tokens; the
# constrained ones end when the JSON is complete. extra_ms_per_token is the
# difference of the two per-token times.
# Load: the script waits (up to QUIET_WAIT seconds, default 1200) while
# /tmp/cllm-quiet exists or the 1-minute load average is above 1.3, then runs
# anyway; the load is recorded before, after and at each round (2 shared
# cores: rerun when busy). The benchmark's own threads raise the 1-minute
# average while it runs, so the round and after figures include them. On a
# busy machine use THREADS=1: with 2 threads and other jobs on the cores,
# llama.cpp's OpenMP threads spin for a core they cannot get and its rates
# collapse (3-48 tokens/s instead of ~1700 on the tiny model at load 4-5).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${CLLM_BUILD:-build}
rounds=${ROUNDS:-3}
threads=${THREADS:-2}
n=${N:-128}
out=${OUT:-bench/results/grammar.json}
demo=${DEMO_MODEL:-/tmp/demo-bf16/final.gguf}
llama_bin=${LLAMA_BIN:-/tmp/llama-src/build/bin}
quiet_wait=${QUIET_WAIT:-1200}
bin=$build/cllm
lc=$llama_bin/llama-completion
make -s -j2 BUILD="$build" "$build/cllm" "$build/bench/bench_grammar" >&2
work=$(mktemp -d /tmp/cllm-bench-grammar.XXXXXX)
trap 'rm -rf "$work"' EXIT
load() { cut -d' ' -f1 /proc/loadavg; }
if [ -x "$lc" ]; then have_llama=true; else have_llama=false; echo "bench_grammar: $lc not found (bench/build_llama_cpp.sh builds it); cllm only" >&2; fi

node tests/js/ranks.js gpt2 "$work/gpt2.tiktoken" >/dev/null
"$bin" tokenizer convert --tokenizer "$work/gpt2.tiktoken" --pattern gpt2 -o "$work/gpt2.tok" >/dev/null
head -c 200000 /work/shared/data/tinyshakespeare.txt >"$work/text.txt" 2>/dev/null ||
    for i in $(seq 1 2000); do echo "the cat sat on the mat. the dog ran to the log."; done >"$work/text.txt"
"$bin" tokenize --tokenizer "$work/gpt2.tok" -o "$work/text.tok" "$work/text.txt" >/dev/null 2>&1
"$bin" pretrain --data "$work/text.tok" --tokenizer "$work/gpt2.tok" --preset tiny-gpt2 --context 512 --steps 2 \
    --batch 2 --seq 32 --eval-every 0 --threads "$threads" --out "$work/tiny" --no-progress >/dev/null 2>&1
"$bin" pretrain --data "$work/text.tok" --tokenizer "$work/gpt2.tok" --preset gpt2 --context 512 --steps 1 \
    --batch 1 --seq 32 --eval-every 0 --threads "$threads" --out "$work/gpt2" --no-progress >/dev/null 2>&1

cat >"$work/schema.json" <<'JSON'
{"type": "object",
 "properties": {"name": {"type": "string", "maxLength": 24}, "age": {"type": "integer"},
                "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 4},
                "ok": {"type": "boolean"}},
 "required": ["name", "age", "tags", "ok"]}
JSON
"$build/bench/bench_grammar" --gbnf "$work/schema.json" >"$work/schema.gbnf"

waited=0
while { [ -e /tmp/cllm-quiet ] || awk -v l="$(load)" 'BEGIN { exit !(l > 1.3) }'; } && [ "$waited" -lt "$quiet_wait" ]; do
    sleep 30
    waited=$((waited + 30))
done
load_before=$(load)

# Each run appends one JSON line to $work/runs.jsonl:
# {"model", "peer", "mode", "round", "tokens", "seconds", "eval_only_tokens_per_s", "valid"}.
# cllm_run NAME MODE ROUND MODEL PROMPT EXTRA...
cllm_run() {
    local name=$1 mode=$2 round=$3 model=$4 prompt=$5
    shift 5
    "$bin" generate -m "$model" -p "$prompt" -n "$n" --temperature 0 --json --threads "$threads" "$@" 2>/dev/null |
        /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
try:
    json.loads(d["text"]); valid = True
except ValueError:
    valid = False
print(json.dumps({"model": sys.argv[1], "peer": "cllm", "mode": sys.argv[2], "round": int(sys.argv[3]),
                  "tokens": d["completion_tokens"], "seconds": d["generate_seconds"], "valid": valid}))' \
            "$name" "$mode" "$round" >>"$work/runs.jsonl"
}
# llama_parse NAME MODE ROUND: one JSON line from the last llama_run's text
# and perf report; exit 3 when the report is missing.
llama_parse() {
    /usr/bin/python3 - "$1" "$2" "$3" "$work/llama.out" "$work/llama.err" <<'PY'
import json, re, sys
name, mode, rnd, out, err = sys.argv[1:6]
log = open(err, errors="replace").read()
s = re.search(r"sampling time =\s*([0-9.]+) ms", log)
m = re.search(r"\beval time =\s*([0-9.]+) ms /\s*([0-9]+) runs .*?([0-9.]+) tokens per second", log)
if not s or not m:
    print("bench_grammar: no perf report from llama-completion on %s (%s); its log ends:\n%s"
          % (name, mode, "\n".join(log.splitlines()[-4:])), file=sys.stderr)
    sys.exit(3)
sampling = float(s.group(1))
eval_ms, runs, eval_tps = float(m.group(1)), int(m.group(2)), float(m.group(3))
text = open(out, errors="replace").read()
text = re.sub(r"\s*\[end of text\]\s*$", "", text)
try:
    json.loads(text); valid = True
except ValueError:
    valid = False
print(json.dumps({"model": name, "peer": "llamacpp", "mode": mode, "round": int(rnd), "tokens": runs + 1,
                  "seconds": (eval_ms + sampling) / 1e3, "eval_only_tokens_per_s": eval_tps, "valid": valid}))
PY
}
# llama_run NAME MODE ROUND MODEL PROMPT EXTRA...: the tool's text on stdout,
# its perf report on stderr. llama.cpp logs from a thread of its own, and a
# process that ends right after its report sometimes loses the report's last
# lines (seen now and then with -cnv -st): such a run is repeated,
# up to 3 times.
llama_run() {
    local name=$1 mode=$2 round=$3 model=$4 prompt=$5 try line
    shift 5
    for try in 1 2 3; do
        "$lc" -m "$model" -p "$prompt" -n "$n" --temp 0 -t "$threads" -tb "$threads" --no-warmup \
            --no-display-prompt "$@" </dev/null >"$work/llama.out" 2>"$work/llama.err" || {
            echo "bench_grammar: llama-completion failed on $name ($mode):" >&2
            tail -n 5 "$work/llama.err" >&2
            return 1
        }
        if line=$(llama_parse "$name" "$mode" "$round"); then
            echo "$line" >>"$work/runs.jsonl"
            return 0
        fi
    done
    return 1
}

bench_model() { # NAME MODEL PROMPT CHAT(0/1)
    local name=$1 model=$2 prompt=$3 chat=$4 r
    local cchat=() lchat=(-no-cnv)
    [ "$chat" = 1 ] && cchat=(--chat) && lchat=(-cnv -st)
    for ((r = 0; r < rounds; r++)); do
        echo "{\"model\": \"$name\", \"round\": $r, \"load\": $(load)}" >>"$work/loads.jsonl"
        cllm_run "$name" plain "$r" "$model" "$prompt" --ignore-eos "${cchat[@]}"
        if $have_llama; then llama_run "$name" plain "$r" "$model" "$prompt" --ignore-eos "${lchat[@]}"; fi
        cllm_run "$name" grammar "$r" "$model" "$prompt" --grammar "$work/schema.gbnf" "${cchat[@]}"
        if $have_llama; then
            llama_run "$name" grammar "$r" "$model" "$prompt" --grammar-file "$work/schema.gbnf" "${lchat[@]}"
            llama_run "$name" own_schema "$r" "$model" "$prompt" -jf "$work/schema.json" "${lchat[@]}"
        fi
    done
}
printf '{"name": "Juliet Capulet", "age": 13, "tags": ["verona", "balcony"], "ok": true}' >"$work/sample.json"
"$build/bench/bench_grammar" "$work/gpt2.tok" "$work/schema.json" "$work/sample.json" 5 >"$work/mask.json"
bench_model gpt2vocab-tiny "$work/tiny/model.gguf" "ROMEO:" 0
bench_model gpt2-124m "$work/gpt2/model.gguf" "ROMEO:" 0
[ -f "$demo" ] && bench_model demo "$demo" "Describe a person as JSON with name, age, tags and ok." 1

mkdir -p "$(dirname "$out")"
llama_commit=$(git -C "$llama_bin/../.." describe --always --tags 2>/dev/null || echo "?")
/usr/bin/python3 - "$work" "$out" "$threads" "$rounds" "$n" "$load_before" "$(load)" "$waited" "$have_llama" \
    "$llama_commit" <<'PY'
import datetime, json, sys
work, out = sys.argv[1], sys.argv[2]
runs = [json.loads(l) for l in open(work + "/runs.jsonl") if l.strip()]
loads = [json.loads(l) for l in open(work + "/loads.jsonl") if l.strip()]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")

def best(model, peer, mode):
    rs = [r for r in runs if r["model"] == model and r["peer"] == peer and r["mode"] == mode]
    if not rs:
        return None
    b = max(rs, key=lambda r: r["tokens"] / r["seconds"])
    b = dict(b, tokens_per_s=round(b["tokens"] / b["seconds"], 2), all_valid=all(r["valid"] for r in rs))
    return b

def side(model, peer):
    p, g = best(model, peer, "plain"), best(model, peer, "grammar")
    if not p or not g:
        return None
    d = {"plain_tokens_per_s": p["tokens_per_s"], "grammar_tokens_per_s": g["tokens_per_s"],
         "ratio": round(g["tokens_per_s"] / p["tokens_per_s"], 3),
         "extra_ms_per_token": round(1e3 / g["tokens_per_s"] - 1e3 / p["tokens_per_s"], 3),
         "plain_tokens": p["tokens"], "grammar_tokens": g["tokens"], "grammar_output_valid_json": g["all_valid"]}
    if peer == "llamacpp":
        d["eval_only_plain_tokens_per_s"] = p["eval_only_tokens_per_s"]
        d["eval_only_grammar_tokens_per_s"] = g["eval_only_tokens_per_s"]
        o = best(model, peer, "own_schema")
        if o:
            d["own_schema_converter_tokens_per_s"] = o["tokens_per_s"]
            d["own_schema_converter_tokens"] = o["tokens"]
            d["own_schema_converter_output_valid_json"] = o["all_valid"]
    return d

rows = []
for model in dict.fromkeys(r["model"] for r in runs):
    c, l = side(model, "cllm"), side(model, "llamacpp")
    row = {"model": model, "cllm": c, "llamacpp": l,
           "round_loads": [x["load"] for x in loads if x["model"] == model]}
    if c and l:
        row["cllm_over_llamacpp_plain"] = round(c["plain_tokens_per_s"] / l["plain_tokens_per_s"], 3)
        row["cllm_over_llamacpp_grammar"] = round(c["grammar_tokens_per_s"] / l["grammar_tokens_per_s"], 3)
    rows.append(row)
d = {"bench": "grammar", "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
     "cpu": cpu, "threads": int(sys.argv[3]), "rounds": int(sys.argv[4]), "max_tokens": int(sys.argv[5]),
     "load_before": float(sys.argv[6]), "load_after": float(sys.argv[7]), "waited_for_quiet_s": int(sys.argv[8]),
     "llamacpp": {"tool": "llama-completion", "commit": sys.argv[10]} if sys.argv[9] == "true" else None,
     "grammar_alone_gpt2_vocab": json.load(open(work + "/mask.json")), "rows": rows}
text = json.dumps(d, indent=1)
open(out, "w").write(text + "\n")
print(text)
PY
