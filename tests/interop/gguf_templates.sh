#!/usr/bin/env bash
# gguf_templates.sh: the chat template of a Hugging Face folder goes through
# `cllm convert` into the GGUF (tokenizer.chat_template) and is what
# `cllm serve` applies. For llama.cpp's Qwen2.5 template (a qwen2 folder with
# <|im_start|> and <|im_end|> added as special tokens) and its Mistral-Nemo
# template (a llama folder with a SentencePiece tokenizer.model), both read
# in place from the llama.cpp source (never copied into this repository):
#   - the converted file carries the template byte for byte;
#   - /apply-template of three conversations (with and without a system
#     message, several turns) equals Python jinja2's rendering of the same
#     template with Hugging Face's setup (tests/reference/jinja_render.py's
#     environment, add_generation_prompt true);
#   - /v1/chat/completions counts as many prompt tokens as `cllm tokenizer
#     encode --allow-special all` gives for that text (the special tokens are single ids).
# Not part of `make test` (needs the llama.cpp source); fails (does not
# skip) without it or without torch / jinja2.
# Usage: bash tests/interop/gguf_templates.sh [LLAMA_SRC]   (default /tmp/llama-src)
# Ends with "N passed, N failed"; exits non-zero on any failure.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
src=${1:-/tmp/llama-src}
. "$(dirname "$0")/../lib.sh"
lib_workdir cllm-gguf-templates
py=/usr/bin/python3
$py -c "import torch, jinja2" 2>/dev/null || fail_all "gguf_templates: /usr/bin/python3 cannot import torch and jinja2"
qwen_t=$src/models/templates/Qwen-Qwen2.5-7B-Instruct.jinja
nemo_t=$src/models/templates/mistralai-Mistral-Nemo-Instruct-2407.jinja
for t in "$qwen_t" "$nemo_t"; do [ -f "$t" ] || fail_all "gguf_templates: $t not found"; done
bin=${CLLM_BUILD:-$root/build}/cllm
[ -n "${CLLM_BUILD:-}" ] || make -s -C "$root" -j2 >/dev/null || fail_all "gguf_templates: building cllm failed"
cd "$work" || exit 1

# folder NAME ARCH TEMPLATE [extra make args]: the HF folder, its chat_template set to TEMPLATE's
# text; for qwen2 also <|im_start|>/<|im_end|> as added special tokens on the two padded rows
folder() {
    local name=$1 arch=$2 tmpl=$3
    shift 3
    $py "$root/tests/convert_hf.py" make "$name" --arch "$arch" "$@" >/dev/null 2>&1 || return 1
    $py - "$name" "$tmpl" "$arch" <<'PY'
import json, sys
d, tmpl, arch = sys.argv[1:]
tc = json.load(open(d + "/tokenizer_config.json"))
tc["chat_template"] = open(tmpl, encoding="utf-8", newline="").read()
if arch == "qwen2":
    V = json.load(open(d + "/config.json"))["vocab_size"]
    tj = json.load(open(d + "/tokenizer.json"))
    for i, text in ((V - 2, "<|im_start|>"), (V - 1, "<|im_end|>")):
        tj["added_tokens"].append({"id": i, "content": text, "single_word": False, "lstrip": False,
                                   "rstrip": False, "normalized": False, "special": True})
    json.dump(tj, open(d + "/tokenizer.json", "w"))
    tc["eos_token"] = "<|im_end|>"
json.dump(tc, open(d + "/tokenizer_config.json", "w"))
cfg = json.load(open(d + "/config.json"))
cfg["max_position_embeddings"] = 512  # RoPE models: room for the conversations' prompts
json.dump(cfg, open(d + "/config.json", "w"))
PY
}

conversations='[
 [{"role": "user", "content": "Translate to Korean: the cat is sleeping."}],
 [{"role": "system", "content": "You answer in one word."}, {"role": "user", "content": "Colour of the sky?"}],
 [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
  {"role": "user", "content": "Tell me a joke about\nnewlines, tabs\tand \"quotes\"."}]
]'

for name in qwen2 nemo; do
    if [ "$name" = qwen2 ]; then folder qwen2 qwen2 "$qwen_t" --pad 2; else folder nemo llama "$nemo_t" --tied 0; fi
    check "$name: HF folder written with the template" test $? -eq 0
    "$bin" convert "$name" -o "$name.gguf" -q 2>"$name.convert.err"
    rc=$?  # before the message's $(...), which would reset $?
    check "$name: cllm convert ($(tail -c 200 "$name.convert.err"))" test "$rc" -eq 0
    $py - "$root/tests" "$name.gguf" "$([ $name = qwen2 ] && echo "$qwen_t" || echo "$nemo_t")" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import gguf_header
h = gguf_header.read(open(sys.argv[2], "rb").read())
got = dict((k, v) for k, v, _ in h["kvs"]).get("tokenizer.chat_template")
sys.exit(0 if got == open(sys.argv[3], encoding="utf-8", newline="").read() else 1)
PY
    check "$name: the GGUF's tokenizer.chat_template is the template byte for byte" test $? -eq 0
    serve_start "$name.serve.log" -m "$name.gguf" --port 0 --threads 1
    check "$name: cllm serve starts ($(tail -c 200 "$name.serve.log"))" test -n "$serve_port"
    [ -n "$serve_port" ] || continue
    for i in 0 1 2; do
        msgs=$(echo "$conversations" | $py -c "import json,sys; print(json.dumps(json.load(sys.stdin)[$i]))")
        curl -s -X POST "http://127.0.0.1:$serve_port/apply-template" -H 'Content-Type: application/json' \
            -d "{\"messages\": $msgs}" >"$name.$i.applied.json"
        $py - "$root/tests/reference" "$([ $name = qwen2 ] && echo "$qwen_t" || echo "$nemo_t")" "$name" "$msgs" \
            "$name.$i.prompt" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
from jinja_render import environment
tmpl, name, msgs, out = sys.argv[2:]
bos, eos = ("", "<|im_end|>") if name == "qwen2" else ("<s>", "</s>")
open(out, "w", encoding="utf-8", newline="").write(environment().from_string(
    open(tmpl, encoding="utf-8", newline="").read()).render(
    messages=json.loads(msgs), add_generation_prompt=True, bos_token=bos, eos_token=eos))
PY
        # llama.cpp's way: the rendered text tokenized whole, special tokens parsed everywhere
        ids=$("$bin" tokenizer encode --tokenizer "$name.gguf" --file "$name.$i.prompt" --format ids \
            --allow-special all 2>/dev/null)
        # shellcheck disable=SC2086 # one argument per id
        "$bin" tokenizer decode --tokenizer "$name.gguf" $ids >"$name.$i.canonical" 2>/dev/null
        $py - "$name.$i.applied.json" "$name.$i.canonical" "$(echo $ids | wc -w)" <<'PY'
import json, sys
got = json.load(open(sys.argv[1]))
want = open(sys.argv[2], encoding="utf-8", newline="").read()
if got.get("prompt") != want or got.get("n_tokens") != int(sys.argv[3]):
    print("cllm:   %d tokens %s\njinja2: %s tokens %s" % (got.get("n_tokens", -1), json.dumps(got.get("prompt"))[:300],
          sys.argv[3], json.dumps(want)[:300]), file=sys.stderr)
    sys.exit(1)
PY
        check "$name conversation $i: /apply-template's tokens are jinja2's text tokenized whole" test $? -eq 0
        curl -s -X POST "http://127.0.0.1:$serve_port/v1/chat/completions" -H 'Content-Type: application/json' \
            -d "{\"messages\": $msgs, \"max_tokens\": 1}" >"$name.$i.chat.json"
        used=$($py -c "import json,sys; print(json.load(open(sys.argv[1]))['usage']['prompt_tokens'])" \
            "$name.$i.chat.json" 2>/dev/null)
        check "$name conversation $i: chat completion's prompt_tokens ($used) = that count ($(echo $ids | wc -w))" \
            test -n "$used" -a "$used" = "$(echo $ids | wc -w)"
    done
    kill "${pids[-1]}" 2>/dev/null
done
finish
