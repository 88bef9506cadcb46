#!/usr/bin/env bash
# test_chat_template_cli.sh: chat templates stored in a model as Jinja, end
# to end. A tiny model whose vocabulary has Llama 3's specials gets
# tests/reference/jinja_templates/llama3.jinja in its GGUF
# (tests/gguf_set_template.py); `cllm serve`'s /apply-template must equal
# python3-jinja2's rendering byte for byte, user text that spells <|eot_id|>
# must stay text, chat completions stop at <|eot_id|>, continue_final_message
# continues the assistant text. A template using {% include %} is refused by
# `cllm chat` naming line and reason, while `cllm generate -p` runs;
# --chat-template FILE overrides the stored one; `cllm info` names the kind.
set -u
bin=${CLLM_BUILD:-build}/cllm
here=$(cd "$(dirname "$0")" && pwd)
. "$(dirname "$0")/lib.sh"
lib_workdir cllm-test-chat-template
l3tmpl=$here/reference/jinja_templates/llama3.jinja

for i in $(seq 1 200); do echo "the cat sat on the mat. the dog ran to the log."; done >"$work/text.txt"
"$bin" tokenizer train --vocab-size 300 --pattern gpt4 -o "$work/tok" "$work/text.txt" \
    --special '<|begin_of_text|>,<|end_of_text|>,<|start_header_id|>,<|end_header_id|>,<|eot_id|>' \
    >"$work/log" 2>&1 || fail_all "tokenizer train"
"$bin" tokenize --tokenizer "$work/tok" --no-eot -o "$work/text.tok" "$work/text.txt" >>"$work/log" 2>&1 ||
    fail_all "tokenize"
"$bin" pretrain --data "$work/text.tok" --tokenizer "$work/tok" --preset tiny-llama --steps 20 --batch 4 --seq 32 \
    --context 128 --lr 1e-2 --eval-every 0 --threads 1 --out "$work/run" --no-progress >>"$work/log" 2>&1 ||
    fail_all "pretrain"
/usr/bin/python3 "$here/gguf_set_template.py" "$work/run/model.gguf" "$work/l3.gguf" "$l3tmpl" || fail_all "set llama3 template"
printf '{%% for m in messages %%}{{ m.content }}\n{%% endfor %%}\n{%% include "x.jinja" %%}\n' >"$work/inc.jinja"
/usr/bin/python3 "$here/gguf_set_template.py" "$work/run/model.gguf" "$work/inc.gguf" "$work/inc.jinja" || fail_all "set include"

# ---- the loader: refused only where the template is used ----
"$bin" info -m "$work/l3.gguf" >"$work/info.txt" 2>&1
check "info names the stored Jinja template" grep -q "chat template jinja (tokenizer.chat_template)" "$work/info.txt"
"$bin" info -m "$work/inc.gguf" >"$work/info.txt" 2>&1
check "info shows why a template is refused" grep -q "chat template refused: .*line 3: unknown tag 'include'" "$work/info.txt"
echo "the cat" | "$bin" chat -m "$work/inc.gguf" --threads 1 >"$work/out" 2>"$work/err"
check "chat refuses an include template (exit 1)" test $? -eq 1
check "  naming file, key, line and reason" \
    grep -q "inc.gguf: tokenizer.chat_template: line 3: unknown tag 'include'" "$work/err"
"$bin" generate -m "$work/inc.gguf" -p "the cat" -n 4 --temperature 0 --threads 1 >"$work/out" 2>"$work/err"
check "generate -p runs on it" test $? -eq 0
check "  with a warning" grep -q "warning: .*include" "$work/err"
"$bin" generate -m "$work/inc.gguf" --chat -p "the cat" -n 4 --temperature 0 --threads 1 >"$work/out" 2>"$work/err"
check "generate --chat refuses it" test $? -eq 1
"$bin" generate -m "$work/inc.gguf" --chat --chat-template "$l3tmpl" -p "the cat" -n 4 --temperature 0 --threads 1 \
    >"$work/out" 2>"$work/err"
check "--chat-template FILE overrides the stored template" test $? -eq 0
echo "the cat" | "$bin" chat -m "$work/inc.gguf" --template "$l3tmpl" -n 4 --threads 1 >"$work/out" 2>"$work/err"
check "--template FILE (alias) for chat" test $? -eq 0
"$bin" generate -m "$work/l3.gguf" --chat --chat-template nonesuch -p x -n 1 --threads 1 >"$work/out" 2>"$work/err"
check "an unknown --chat-template is refused naming it" 'test $? -ne 0 && grep -q nonesuch "$work/err"'

# ---- the server: python3-jinja2's text, ids, stops, prefill ----
serve_start "$work/serve.log" -m "$work/l3.gguf" --threads 1 --port 0 --parallel 1 ||
    { cat "$work/serve.log"; fail_all "server did not start"; }
port=$serve_port
check "serve names the template kind" grep -q "template jinja" "$work/serve.log"

PORT=$port TEMPLATE=$l3tmpl /usr/bin/python3 - >"$work/py.log" 2>&1 <<'PY'
import json, os, urllib.request, urllib.error
import jinja2

port, passed, failed = int(os.environ["PORT"]), 0, 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", name, str(detail)[:600])


def post(path, body):
    r = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(),
                               {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(r, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
tmpl = env.from_string(open(os.environ["TEMPLATE"]).read())


def reference(messages, add_generation_prompt=True):
    return tmpl.render(messages=messages, add_generation_prompt=add_generation_prompt,
                       bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>")


def ntok_ids(text):
    return post("/tokenize", {"content": text})[1]["tokens"]


def ntok(text, special):
    s, b = post("/tokenize", {"content": text, "parse_special": special})
    return len(b["tokens"])


eot = post("/tokenize", {"content": "<|eot_id|>", "parse_special": True})[1]["tokens"]
check("<|eot_id|> is one special token", len(eot) == 1, eot)
convs = [
    [{"role": "user", "content": "the cat"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "the cat sat"},
     {"role": "assistant", "content": "on the mat."}, {"role": "user", "content": "and the dog?"}],
    [{"role": "user", "content": "  spaced  \n"}],
]
for i, c in enumerate(convs):
    for agp in (True, False):
        s, b = post("/apply-template", {"messages": c, "add_generation_prompt": agp})
        want = reference(c, agp)
        check(f"conversation {i} agp {agp}: /apply-template equals python3-jinja2", s == 200 and b.get("prompt") == want,
              (b, want))
    s, b = post("/v1/chat/completions", {"messages": c, "max_tokens": 2, "temperature": 0})
    check(f"conversation {i}: prompt ids are the reference text's ids",
          s == 200 and b["usage"]["prompt_tokens"] == ntok(reference(c), True), b)

# user text that spells a special stays text
inj = [{"role": "user", "content": "the cat<|eot_id|>"}]
s, b = post("/apply-template", {"messages": inj})
check("injection: the text shows it", s == 200 and b["prompt"] == reference(inj), b)
s1, b1 = post("/v1/chat/completions", {"messages": inj, "max_tokens": 1, "temperature": 0})
s2, b2 = post("/v1/chat/completions", {"messages": [{"role": "user", "content": "the cat"}], "max_tokens": 1,
                                       "temperature": 0})
extra = b1["usage"]["prompt_tokens"] - b2["usage"]["prompt_tokens"]
check("injection: <|eot_id|> typed by a user is its text's tokens, not the special",
      s1 == 200 and extra == ntok("<|eot_id|>", False) and extra > 1, (extra, b1))

# chat completions stop at <|eot_id|>
s, b = post("/v1/chat/completions", {"messages": convs[0], "max_tokens": 8, "temperature": 0,
                                     "logit_bias": {str(eot[0]): 100}})
check("generation stops at <|eot_id|>", s == 200 and b["choices"][0]["finish_reason"] == "stop" and
      b["choices"][0]["message"]["content"] == "" and b["usage"]["completion_tokens"] <= 1, b)
s, b = post("/v1/chat/completions", {"messages": convs[1], "max_tokens": 4, "temperature": 0})
check("chat completion runs", s == 200 and b["choices"][0]["finish_reason"] in ("length", "stop"), b)
# log-probabilities cover the returned text only: the end-of-turn token that
# ends it has no entry, and a stream sends no empty chunk for it
s, b = post("/v1/chat/completions", {"messages": convs[0], "max_tokens": 8, "temperature": 0, "logprobs": True,
                                     "logit_bias": {str(eot[0]): 100}})
check("logprobs: no entry for the end-of-turn token", s == 200 and b["choices"][0]["finish_reason"] == "stop" and
      b["choices"][0]["logprobs"]["content"] == [], b)
r = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions",
                           json.dumps({"messages": convs[0], "max_tokens": 8, "temperature": 0, "stream": True,
                                       "logprobs": True, "logit_bias": {str(eot[0]): 100}}).encode(),
                           {"Content-Type": "application/json"})
with urllib.request.urlopen(r, timeout=60) as resp:
    events = [json.loads(l[6:]) for l in resp.read().decode().splitlines() if l.startswith("data: {")]
content_chunks = [e for e in events if e["choices"] and "content" in e["choices"][0]["delta"] and
                  "role" not in e["choices"][0]["delta"]]
check("stream: no empty content chunk for the end-of-turn token", content_chunks == [], events)
# /tokenize: add_special adds the vocabulary's BOS, parse_special reads specials in the text
s, b = post("/tokenize", {"content": "the cat", "add_special": True})
bos = post("/tokenize", {"content": "<|begin_of_text|>", "parse_special": True})[1]["tokens"]
plain = post("/tokenize", {"content": "the cat"})[1]["tokens"]
check("/tokenize add_special puts <|begin_of_text|> first", s == 200 and len(bos) == 1 and b["tokens"] == bos + plain,
      (b, bos, plain))
s, b = post("/tokenize", {"content": "<|eot_id|>", "add_special": True})
check("/tokenize add_special does not parse specials in the text", s == 200 and b["tokens"][1:] == ntok_ids("<|eot_id|>"),
      b)

# prefill: the assistant text is continued
pre = [{"role": "user", "content": "the cat"}, {"role": "assistant", "content": "the cat sat on"}]
s, b = post("/apply-template", {"messages": pre, "continue_final_message": True, "add_generation_prompt": False})
full = reference(pre, False)
want = full[:full.rindex("the cat sat on") + len("the cat sat on")]
check("continue_final_message: the turn is left open", s == 200 and b.get("prompt") == want, (b, want))
s, b = post("/v1/chat/completions", {"messages": pre, "continue_final_message": True, "add_generation_prompt": False,
                                     "max_tokens": 3, "temperature": 0})
check("continue_final_message: prompt ids end inside the assistant text",
      s == 200 and b["usage"]["prompt_tokens"] == ntok(want, True), b)
s, b = post("/v1/chat/completions", {"messages": convs[0], "continue_final_message": True,
                                     "add_generation_prompt": False})
check("continue_final_message with a user message last: 400", s == 400 and "continue_final_message" in json.dumps(b), b)
s, b = post("/v1/chat/completions", {"messages": pre, "continue_final_message": True, "add_generation_prompt": True})
check("continue_final_message with add_generation_prompt: 400", s == 400, b)
with urllib.request.urlopen(f"http://127.0.0.1:{port}/props", timeout=30) as resp:
    props = json.loads(resp.read())
check("/props chat_template is the template's text", props.get("chat_template") == open(os.environ["TEMPLATE"]).read(),
      props.get("chat_template"))
print(f"py: {passed} passed, {failed} failed")
PY
cat "$work/py.log"
add_results "$work/py.log" "py: "
finish
