#!/usr/bin/env bash
# demo.sh: the whole cllm pipeline, from the built-in practice world to a chat
# assistant, measured on held-out test examples at every stage.
#
#   world -> tokenizer -> token shards -> pre-train -> SFT -> DPO -> GRPO
#   every stage evaluated on the same test examples -> `cllm report` table
#
# `make demo` runs it after `make deps` and the build; `make demo QUICK=1` or
# `scripts/demo.sh --quick` is the small CI version (about 2 minutes on 2 quiet
# cores; the full one is sized for under 15).
#
# Re-running reuses finished stages: each stage is skipped when its output
# exists (the commands write their outputs atomically, and the few files made
# here are written to a temporary name and renamed). The trainers also resume
# from their own checkpoints when a run was interrupted. The first failing
# stage stops the script with its error. The test split is only ever used for
# evaluation; settings were chosen on the validation split.
#
# Does not: download anything, use Python, or touch files outside --out.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/demo.sh [--quick | --smoke] [--out DIR] [--cllm PATH] [--threads N] [--precision P]

  --quick       small world, small model, short runs (CI); default out: demo-quick
  --smoke       the quick pipeline cut to a few steps, for sanitizer builds: shows
                that every stage runs, not what the model learns; default out: demo-smoke
  --out DIR     where everything goes (default: demo, or demo-quick with --quick)
  --cllm PATH   the cllm binary (default: build/cllm)
  --threads N   threads for every command (default: all cores)
  --precision P fp32 (default) or bf16: the training stages' matrix products
                (docs/PRECISION.md; bf16 needs AVX512-BF16 or AMX)
  -h, --help    this help

Outputs in DIR: final.gguf (the assistant), report.txt / report.json (stage x
task test scores), scores.svg (the same as a chart), loss-*.svg (training
curves), attention.svg, samples.txt, logs/ (every stage's output), and the
intermediate files (world/, tokenizer.bin, shards/, runs/, eval/).
EOF
}

quick=0
out=
cllm=build/cllm
threads=0
precision=fp32
while [ $# -gt 0 ]; do
    case $1 in
    --quick) quick=1 ;;
    --smoke) quick=2 ;;
    --out) [ $# -ge 2 ] || { echo "demo.sh: --out needs a value" >&2; exit 2; }; out=$2; shift ;;
    --cllm) [ $# -ge 2 ] || { echo "demo.sh: --cllm needs a value" >&2; exit 2; }; cllm=$2; shift ;;
    --threads) [ $# -ge 2 ] || { echo "demo.sh: --threads needs a value" >&2; exit 2; }; threads=$2; shift ;;
    --precision) [ $# -ge 2 ] || { echo "demo.sh: --precision needs a value" >&2; exit 2; }; precision=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "demo.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
case $threads in '' | *[!0-9]*) echo "demo.sh: --threads must be a number >= 0" >&2; exit 2 ;; esac
case $precision in fp32 | bf16) ;; *) echo "demo.sh: --precision must be fp32 or bf16" >&2; exit 2 ;; esac
if [ -z "$out" ]; then
    case $quick in 1) out=demo-quick ;; 2) out=demo-smoke ;; *) out=demo ;; esac
fi
[ -x "$cllm" ] || { echo "demo.sh: no cllm binary at '$cllm' (run make, or pass --cllm)" >&2; exit 1; }
cllm=$(cd "$(dirname "$cllm")" && pwd)/$(basename "$cllm")

# ---- settings (chosen on the validation split, never on test) ----
tasks="translate_en_ko translate_ko_en summary sentiment faq arithmetic conversations tool_arithmetic tool_shop"
if [ $quick != 0 ]; then
    mode=quick
    world_size=small
    vocab=1024
    model_args="--n-layer 2 --n-embd 96 --n-head 4 --n-kv-head 2 --ffn-hidden 256"
    pt_args="--steps 120 --batch 8 --seq 128 --lr 3e-3 --warmup 20 --eval-every 60 --eval-batches 4"
    sft_args="--steps 150 --batch 2 --seq 1024 --lr 3e-3 --warmup 15 --eval-every 0"
    dpo_args="--steps 10 --batch 8 --lr 2e-5 --beta 0.1"
    dpo_permille=15
    grpo_args=
    eval_limit=16
    eval_max_tokens=40
    sft_arith_copies=1
    if [ $quick = 2 ]; then
        mode=smoke
        pt_args="--steps 20 --batch 4 --seq 64 --lr 3e-3 --warmup 5 --eval-every 10 --eval-batches 2"
        sft_args="--steps 20 --batch 1 --seq 1024 --lr 3e-3 --warmup 5 --eval-every 0"
        dpo_args="--steps 2 --batch 4 --lr 2e-5 --beta 0.1"
        dpo_permille=4
        eval_limit=3
        eval_max_tokens=16
    fi
else
    mode=full
    world_size=full
    vocab=2048
    model_args="--n-layer 4 --n-embd 192 --n-head 6 --n-kv-head 2 --ffn-hidden 512"
    pt_args="--steps 600 --batch 8 --seq 256 --lr 3e-3 --warmup 50 --eval-every 100 --eval-batches 10"
    sft_args="--steps 4300 --batch 2 --seq 1024 --lr 2e-3 --warmup 50 --eval-every 600"
    sft_arith_copies=6
    dpo_args="--steps 60 --batch 8 --lr 1e-5 --beta 0.1"
    dpo_permille=20
    grpo_args="--steps 80 --batch 8 --group 4 --lr 5e-6 --beta 0.1 --max-new 8 --temperature 0.7"
    eval_limit=100
    eval_max_tokens=64
fi
# Llama-style (RoPE, RMSNorm, SwiGLU, no biases) so llama.cpp can run the result;
# context 1024 holds a tool_sft conversation (four tool exchanges under one
# ~300-token tool list, ~700 tokens) and a chat with tools of a few turns.
arch="--preset llama-1m $model_args --context 1024 --pos rope --norm rmsnorm --mlp swiglu"
pretok=gpt4
settings="mode=$mode world=$world_size vocab=$vocab/$pretok model=[$arch] pretrain=[$pt_args] sft=[$sft_args x$sft_arith_copies tool_sft] dpo=[$dpo_args $dpo_permille] grpo=[$grpo_args] eval=$eval_limit/$eval_max_tokens"

mkdir -p "$out"
out=$(cd "$out" && pwd)
mkdir -p "$out/logs" "$out/eval" "$out/runs" "$out/shards"
# Stages are reused only when they were made with these settings.
if [ -f "$out/settings.txt" ] && [ "$(cat "$out/settings.txt")" != "$settings" ]; then
    echo "demo.sh: $out was made with other settings; remove it or choose another --out" >&2
    exit 1
fi
printf '%s' "$settings" >"$out/settings.txt.tmp" && mv "$out/settings.txt.tmp" "$out/settings.txt"

T=()
[ "$threads" = 0 ] || T=(--threads "$threads")
P=(--precision "$precision") # the training stages only
# Decoding a model this small is a few MFLOP per token: one thread is faster
# than two waiting on each other at every layer (much faster on a busy machine).
TD=(--threads 1)
[ "$threads" = 0 ] || TD=(--threads "$threads")
start=$SECONDS
bold= plain=
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; fi # no escapes in a log or a pipe
banner() { printf '\n%s== %s%s  (%ds)\n' "$bold" "$*" "$plain" $((SECONDS - start)); }
# run_stage NAME OUTPUT CMD...: skip when OUTPUT exists; otherwise run CMD,
# its output shown and kept in logs/NAME.log; stop the demo when it fails.
run_stage() {
    local name=$1 output=$2
    shift 2
    if [ -e "$output" ]; then
        banner "$name: done before (${output#"$out"/}), reused"
        return 0
    fi
    banner "$name"
    if ! "$@" 2>&1 | tee "$out/logs/$name.log"; then
        echo "demo.sh: stage '$name' failed; its output is in $out/logs/$name.log" >&2
        exit 1
    fi
    if [ ! -e "$output" ]; then
        echo "demo.sh: stage '$name' did not write $output; see $out/logs/$name.log" >&2
        exit 1
    fi
}
# capture NAME OUTPUT CMD...: like run_stage for commands that print their
# result on stdout; stdout goes to OUTPUT through a temporary file.
capture() {
    local name=$1 output=$2
    shift 2
    if [ -e "$output" ]; then
        banner "$name: done before (${output#"$out"/}), reused"
        return 0
    fi
    banner "$name"
    if ! "$@" >"$output.tmp" 2> >(tee "$out/logs/$name.log" >&2); then
        rm -f "$output.tmp"
        echo "demo.sh: stage '$name' failed; its output is in $out/logs/$name.log" >&2
        exit 1
    fi
    mv "$output.tmp" "$output"
}

w=$out/world
banner "cllm $mode demo into $out"
echo "$settings"

# ---- 1. the practice world ----
run_stage world "$w/manifest.json" "$cllm" data world --seed 1 --size $world_size --out "$w"

# ---- 2. tokenizer: byte-level BPE with the ChatML specials ----
# GPT-4's split (numbers in runs of up to 3 digits, then BPE merges): every
# number up to 40 ends up one token, so an answer is one token. Measured on the
# validation split (arithmetic-only SFT from the untrained model, 500 steps):
# 57.5% with this split, 14.5% with gpt4-digits (every digit a token, as
# Llama 3 splits numbers): at this size and budget a lookup is learnt sooner
# than digit-wise addition.
train_files=()
for t in $tasks; do train_files+=("$w/$t.train.jsonl"); done
run_stage tokenizer "$out/tokenizer.bin" "$cllm" tokenizer train --vocab-size $vocab --pattern $pretok \
    --special '<|endoftext|>,<|im_start|>,<|im_end|>' -o "$out/tokenizer.bin" "${T[@]}" \
    "$w/stories.train.txt" "${train_files[@]}"

# ---- 3. token shards: training stories, then the validation stories last ----
run_stage tokenize-train "$out/shards/train.tok" "$cllm" tokenize --tokenizer "$out/tokenizer.bin" \
    -o "$out/shards/train.tok" "${T[@]}" "$w/stories.train.txt"
run_stage tokenize-val "$out/shards/val.tok" "$cllm" tokenize --tokenizer "$out/tokenizer.bin" \
    -o "$out/shards/val.tok" "${T[@]}" "$w/stories.val.txt"
# pretrain holds out the tail of its data: make that tail the validation stories.
val_frac=$(awk -v a="$(stat -c %s "$out/shards/train.tok")" -v b="$(stat -c %s "$out/shards/val.tok")" \
    'BEGIN { printf "%.4f", b / (a + b) }')

# ---- 4. pre-training: a small Llama-style model (RoPE, RMSNorm, SwiGLU) ----
# The untrained model: the same initialisation, one step at a negligible
# learning rate (pretrain needs at least one step), so it scores as random.
run_stage untrained "$out/runs/untrained/model.gguf" "$cllm" pretrain \
    --data "$out/shards/train.tok,$out/shards/val.tok" --val-frac "$val_frac" --tokenizer "$out/tokenizer.bin" \
    $arch --steps 1 --batch 1 --seq 64 --lr 1e-12 --warmup 0 --eval-every 0 --seed 1337 "${T[@]}" "${P[@]}" \
    --out "$out/runs/untrained"
run_stage pretrain "$out/runs/pretrain/model.gguf" "$cllm" pretrain \
    --data "$out/shards/train.tok,$out/shards/val.tok" --val-frac "$val_frac" --tokenizer "$out/tokenizer.bin" \
    $arch $pt_args --seed 1337 --save-every 200 --resume "${T[@]}" "${P[@]}" --out "$out/runs/pretrain"

# ---- 5. SFT on every task's training split, mixed ----
# The arithmetic split is repeated sft_arith_copies times: its answers are one
# or two tokens, so unrepeated it is a small share of the answer-token loss,
# and on the validation split it is the task a small model learns last. The
# tool tasks come as the world's tool_sft conversations: their exchanges four
# to a conversation under one ~300-token tool list (docs/TOOLS.md); one
# exchange per example spent 7 of every 8 tokens on the list, and a model
# trained on 1,000 of each task copied too few numbers right (3% on
# validation). Rows are 1024 tokens so that a conversation fits whole;
# 4300 steps of 2 rows keep the other tasks at about two epochs.
sft_train=$out/sft.train.jsonl
sft_val=$out/sft.val.jsonl
sft_val_args="--val $sft_val"
[ $mode != smoke ] || sft_val_args=
if [ ! -e "$sft_train" ]; then
    {
        for t in $tasks; do
            case $t in tool_*) ;; *) cat "$w/$t.train.jsonl" ;; esac
        done
        cat "$w/tool_sft.train.jsonl"
        for ((i = 1; i < sft_arith_copies; i++)); do cat "$w/arithmetic.train.jsonl"; done
    } >"$sft_train.tmp" && mv "$sft_train.tmp" "$sft_train"
fi
if [ ! -e "$sft_val" ]; then
    {
        for t in $tasks; do
            case $t in tool_*) ;; *) cat "$w/$t.val.jsonl" ;; esac
        done
        head -n 50 "$w/tool_sft.val.jsonl"
    } >"$sft_val.tmp" && mv "$sft_val.tmp" "$sft_val"
fi
run_stage sft "$out/runs/sft/model.gguf" "$cllm" sft --model "$out/runs/pretrain/model.gguf" \
    --data "$sft_train" $sft_val_args --template chatml --pack $sft_args --seed 1337 \
    --save-every 300 --resume "${T[@]}" "${P[@]}" --out "$out/runs/sft"

# ---- 6. preference tuning: DPO on a sample of the preference pairs ----
# cllm dpo scores every pair with the reference model first, so give it only
# about the pairs the run will use: a fixed pseudo-random sample of the lines
# (a multiplicative hash of the line number; every task and kind of rejection).
pref=$out/preferences.sample.jsonl
if [ ! -e "$pref" ]; then
    awk -v pm=$dpo_permille '(NR * 2654435761) % 1000 < pm' "$w/preferences.train.jsonl" >"$pref.tmp"
    mv "$pref.tmp" "$pref"
fi
run_stage dpo "$out/runs/dpo/model.gguf" "$cllm" dpo -m "$out/runs/sft/model.gguf" \
    --data "$pref" $dpo_args --seed 1337 --save-every 100 --resume "${T[@]}" "${P[@]}" --out "$out/runs/dpo"
stages=(untrained pretrain sft dpo)
models=("$out/runs/untrained/model.gguf" "$out/runs/pretrain/model.gguf" "$out/runs/sft/model.gguf" "$out/runs/dpo/model.gguf")

# ---- 7. GRPO with a verifiable reward on the arithmetic training prompts ----
if [ -n "$grpo_args" ]; then
    grpo_data=$out/arithmetic.prompts.jsonl
    if [ ! -e "$grpo_data" ]; then
        # {"messages": [user Q, assistant A], "reference": A} -> {"prompt": Q, "answer": A};
        # the generator writes one fixed layout, and every line must convert.
        sed -nE 's/^\{.*"messages": \[\{"role": "user", "content": (".*")\}, \{"role": "assistant", "content": .*"reference": (".*")\}$/{"prompt": \1, "answer": \2}/p' \
            "$w/arithmetic.train.jsonl" >"$grpo_data.tmp"
        if [ "$(wc -l <"$grpo_data.tmp")" -ne "$(wc -l <"$w/arithmetic.train.jsonl")" ]; then
            echo "demo.sh: could not convert $w/arithmetic.train.jsonl to GRPO prompts" >&2
            exit 1
        fi
        mv "$grpo_data.tmp" "$grpo_data"
    fi
    run_stage grpo "$out/runs/grpo/model.gguf" "$cllm" grpo -m "$out/runs/dpo/model.gguf" --data "$grpo_data" \
        --verify number $grpo_args --seed 1337 --save-every 20 --resume "${T[@]}" "${P[@]}" --out "$out/runs/grpo"
    stages+=(grpo)
    models+=("$out/runs/grpo/model.gguf")
fi

# ---- 8. evaluate every stage on the same test examples ----
# The tool tasks run through the agent loop with the world's built-in tools
# (tools.json: the calculator and the shop's table), calls constrained to
# the tools' grammar.
test_files=()
for t in $tasks; do test_files+=(--task "$w/$t.test.jsonl"); done
report_args=()
for i in "${!stages[@]}"; do
    s=${stages[$i]}
    capture "eval-$s" "$out/eval/$s.json" "$cllm" eval -m "${models[$i]}" --template chatml "${test_files[@]}" \
        --tools "$w/tools.json" --limit $eval_limit --max-tokens $eval_max_tokens --json "${TD[@]}"
    report_args+=("$s=$out/eval/$s.json")
done

# ---- 9. the report: stage x task table, chart, JSON ----
final=${models[${#models[@]} - 1]}
cp "$final" "$out/final.gguf.tmp" && mv "$out/final.gguf.tmp" "$out/final.gguf"
for r in pretrain sft; do
    if [ -e "$out/runs/$r/loss.svg" ]; then cp "$out/runs/$r/loss.svg" "$out/loss-$r.svg"; fi
done
banner "report: test scores per stage (first $eval_limit test examples of each task)"
"$cllm" report --manifest "$w/manifest.json" --drops-from sft --svg "$out/scores.svg" --json "$out/report.json.tmp" \
    --target translate_en_ko=80 --target summary=0.6 --target sentiment=0.95 --target faq=0.9 \
    --target arithmetic=0.9 --target tool_arithmetic=0.95 --target tool_shop=0.9 "${report_args[@]}" |
    tee "$out/report.txt.tmp"
mv "$out/report.json.tmp" "$out/report.json"
mv "$out/report.txt.tmp" "$out/report.txt"

# ---- 9b. tools and structured output, on the final model ----
# The same test questions without the tools (the model alone must compute
# the 4-digit sums), and the sentiment test answered as JSON under a schema
# the model was never trained on (the grammar alone keeps it valid).
capture eval-no-tools "$out/eval/no-tools.json" "$cllm" eval -m "$final" --template chatml \
    --task "$w/tool_arithmetic.test.jsonl" --task "$w/tool_shop.test.jsonl" --no-tools \
    --limit $eval_limit --max-tokens $eval_max_tokens --json "${TD[@]}"
schema=$out/sentiment.schema.json
printf '%s\n' '{"type": "object", "properties": {"sentiment": {"enum": ["positive", "negative", "neutral"]}},' \
    ' "required": ["sentiment"], "additionalProperties": false}' >"$schema"
capture eval-json-schema "$out/eval/json-schema.json" "$cllm" eval -m "$final" --template chatml \
    --task "$w/sentiment.test.jsonl" --json-schema "$schema" --limit $eval_limit --max-tokens $eval_max_tokens \
    --json "${TD[@]}"
"$cllm" report --tools-summary "$out/eval/${stages[${#stages[@]} - 1]}.json" "$out/eval/no-tools.json" \
    "$out/eval/json-schema.json" | tee "$out/tools.txt.tmp"
mv "$out/tools.txt.tmp" "$out/tools.txt"

# ---- 10. attention, sample answers ----
"$cllm" attention -m "$out/final.gguf" "Mina and Sam went to the park. They were happy." \
    --out "$out/attention.svg" "${TD[@]}" >"$out/logs/attention.log" 2>&1 ||
    { cat "$out/logs/attention.log" >&2; echo "demo.sh: cllm attention failed" >&2; exit 1; }
banner "sample answers from final.gguf (greedy)"
prompts=(
    "Translate to Korean: Hello, how are you?"
    "Translate to English: 저는 사과를 좋아해요."
    $'Is this text positive, negative or neutral?\n\nWhat a wonderful day! I loved the park.'
    "When are you open?"
    "What is 7 + 5?"
    $'Summarize this story in one or two sentences.\n\nOnce there was a little girl named Mina. She was very kind. One day, Mina and Sam wanted to build a sandcastle. They went to the beach and worked hard. Oh no! A big wave came and broke the sandcastle. Mina felt sad. "We can build it again," said Sam. They worked together again, and soon the sandcastle was even better than before. Mina and Sam were proud of their work.'
)
: >"$out/samples.txt.tmp"
story=$("$cllm" generate -m "$out/runs/pretrain/model.gguf" -p "Once there was" -n 96 --temperature 0.8 --seed 1 \
    "${TD[@]}" 2>"$out/logs/generate.log") ||
    { cat "$out/logs/generate.log" >&2; echo "demo.sh: cllm generate failed" >&2; exit 1; }
printf 'A story from the pre-trained model (temperature 0.8):\n%s\n\n' "$story" | tee -a "$out/samples.txt.tmp"
for p in "${prompts[@]}"; do
    a=$("$cllm" chat -m "$out/final.gguf" --temperature 0 -n 64 -p "$p" "${TD[@]}" 2>"$out/logs/chat.log") ||
        { cat "$out/logs/chat.log" >&2; echo "demo.sh: cllm chat failed" >&2; exit 1; }
    printf 'User: %s\nAssistant: %s\n\n' "$p" "$a" | tee -a "$out/samples.txt.tmp"
done
# Questions that need a tool, through the agent loop: its calls and their
# results (stderr, "[tool] ...") are shown before the answer.
for p in "What is 4821 + 377?" "What is 23 + 19?" "Do you have apples in stock?"; do
    a=$("$cllm" chat -m "$out/final.gguf" --tools "$w/tools.json" --temperature 0 -n 64 -p "$p" "${TD[@]}" \
        2>"$out/logs/chat.log") || { cat "$out/logs/chat.log" >&2; echo "demo.sh: cllm chat --tools failed" >&2; exit 1; }
    {
        printf 'User (tools: calculator, shop): %s\n' "$p"
        grep '^\[tool\]' "$out/logs/chat.log" | sed 's/^/  /' || true # no call: no lines
        printf 'Assistant: %s\n\n' "$a"
    } | tee -a "$out/samples.txt.tmp"
done
# A system message, the guide's Korean instruction and reworded ones, then three
# turns of one conversation (the conversations task's kind of input).
sys_msg="You are a helpful assistant."
for p in "다음 문장을 한국어로 번역하세요: I like apples." "Please translate into English: 고마워요."; do
    a=$("$cllm" chat -m "$out/final.gguf" --temperature 0 -n 64 --system "$sys_msg" -p "$p" "${TD[@]}" \
        2>"$out/logs/chat.log") || { cat "$out/logs/chat.log" >&2; echo "demo.sh: cllm chat failed" >&2; exit 1; }
    printf 'System: %s\nUser: %s\nAssistant: %s\n\n' "$sys_msg" "$p" "$a" | tee -a "$out/samples.txt.tmp"
done
turns=("What is 3 + 4?" "Translate to Korean: Good morning." "When are you open?")
replies=$(printf '%s\n' "${turns[@]}" | "$cllm" chat -m "$out/final.gguf" --temperature 0 -n 64 --system "$sys_msg" \
    "${TD[@]}" 2>"$out/logs/chat.log") || { cat "$out/logs/chat.log" >&2; echo "demo.sh: cllm chat failed" >&2; exit 1; }
{
    printf 'One conversation (system: %s):\n' "$sys_msg"
    for i in "${!turns[@]}"; do
        printf 'User: %s\nAssistant: %s\n' "${turns[$i]}" "$(sed -n "$((i + 1))p" <<<"$replies")"
    done
    printf '\n'
} | tee -a "$out/samples.txt.tmp"
mv "$out/samples.txt.tmp" "$out/samples.txt"

banner "done in $((SECONDS - start)) s"
rel=$out
case $out in "$PWD"/*) rel=${out#"$PWD"/} ;; esac
cat <<EOF
The assistant is $rel/final.gguf. Images: $rel/scores.svg (test scores per stage),
$rel/loss-pretrain.svg and $rel/loss-sft.svg (training curves), $rel/attention.svg.
Talk to it:          $cllm chat -m $rel/final.gguf
Serve it (OpenAI API and a chat page at http://127.0.0.1:8080/):
                     $cllm serve -m $rel/final.gguf
EOF
