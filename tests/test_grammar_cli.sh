#!/usr/bin/env bash
# test_grammar_cli.sh: --grammar and --json-schema on `cllm generate`, `cllm
# chat` and `cllm eval` with a tiny model trained here (a BPE vocabulary of
# 300, so tokens span several grammar symbols, and Korean text in the corpus
# for multi-byte characters). Sampled at temperature 1 over several seeds,
# every output must parse as JSON and match the schema (checked by a small
# validator below); a GBNF grammar's output is one of its sentences; bad
# grammar and schema files exit 1 naming the file, line:column or keyword.
# Then tool calling through `cllm serve` on the same model.
set -u
bin=${CLLM_BUILD:-build}/cllm
here=$(cd "$(dirname "$0")" && pwd)
. "$(dirname "$0")/lib.sh"
lib_workdir cllm-test-grammar-cli

for i in $(seq 1 100); do
    echo "the cat sat on the mat. {\"name\": \"cat\", \"age\": 3, \"ok\": true, \"tags\": [\"a\", \"b\"]}"
    echo "고양이가 매트에 앉았다. {\"name\": \"개\", \"age\": 12, \"ok\": false}"
done >"$work/text.txt"
"$bin" tokenizer train --vocab-size 300 --pattern gpt4 -o "$work/tok" "$work/text.txt" \
    --special '<|endoftext|>,<|im_start|>,<|im_end|>' >"$work/log" 2>&1 || fail_all "tokenizer train"
"$bin" tokenize --tokenizer "$work/tok" -o "$work/text.tok" "$work/text.txt" >>"$work/log" 2>&1 || fail_all "tokenize"
"$bin" pretrain --data "$work/text.tok" --tokenizer "$work/tok" --preset tiny-gpt2 --steps 40 --batch 4 --seq 32 \
    --context 2048 --lr 1e-2 --eval-every 0 --threads 1 --out "$work/run" --no-progress >>"$work/log" 2>&1 ||
    fail_all "pretrain"
model=$work/run/model.gguf

cat >"$work/schema.json" <<'JSON'
{"type": "object",
 "properties": {
   "name": {"type": "string", "maxLength": 12},
   "age": {"type": "integer"},
   "ok": {"type": "boolean"},
   "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 3},
   "where": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": ["number", "null"]}},
             "required": ["x"], "additionalProperties": false}},
 "required": ["name", "age", "ok"],
 "title": "a person"}
JSON
# The schema above, checked by hand (no jsonschema module on the machine).
cat >"$work/valid.py" <<'PY'
import json, sys
d = json.loads(sys.stdin.read())
assert isinstance(d, dict), d
assert set(d) <= {"name", "age", "ok", "tags", "where"} and {"name", "age", "ok"} <= set(d), d
assert isinstance(d["name"], str) and len(d["name"]) <= 12, d
assert isinstance(d["age"], int) and not isinstance(d["age"], bool), d
assert isinstance(d["ok"], bool), d
if "tags" in d:
    assert isinstance(d["tags"], list) and len(d["tags"]) <= 3 and all(t in ("a", "b", "c") for t in d["tags"]), d
if "where" in d:
    w = d["where"]
    assert set(w) <= {"x", "y"} and "x" in w and isinstance(w["x"], (int, float)), d
    assert "y" not in w or w["y"] is None or isinstance(w["y"], (int, float)), d
PY

# sample_valid SCHEMA CHECKER PREFIX N: samples seeds 1..N under the schema
# (outputs PREFIX.out.SEED), sets valid to how many finished with 'stop' and
# pass the Python checker; the others are described in PREFIX.why.
sample_valid() {
    local schema=$1 checker=$2 prefix=$3 n=$4 seed
    valid=0
    for seed in $(seq 1 "$n"); do
        "$bin" generate -m "$model" -p "the cat" --no-echo -n 1500 --seed $seed --temperature 1 --top-k 0 --top-p 1 \
            --min-p 0 --json-schema "$schema" --threads 1 >"$prefix.out.$seed" 2>"$prefix.err.$seed"
        if [ $? -eq 0 ] && grep -q "finish: stop" "$prefix.err.$seed" &&
            /usr/bin/python3 "$checker" <"$prefix.out.$seed" 2>>"$prefix.why"; then
            valid=$((valid + 1))
        else
            echo "seed $seed: $(cat "$prefix.out.$seed") $(cat "$prefix.err.$seed")" >>"$prefix.why"
        fi
    done
}
sample_valid "$work/schema.json" "$work/valid.py" "$work/plain" 8
check "generate --json-schema: 8 of 8 seeds give JSON matching the schema, finish 'stop'" test $valid -eq 8 ||
    cat "$work/plain.why"
check "outputs differ between seeds (sampling, not one forced string)" \
    test "$(cat "$work"/plain.out.* | sort -u | wc -l)" -gt 1

json=$("$bin" generate -m "$model" -p "the cat" -n 1500 --seed 3 --json-schema "$work/schema.json" --json --threads 1 2>/dev/null)
check "--json with --json-schema: the text field is valid" /usr/bin/python3 -c '
import json, subprocess, sys
d = json.loads(sys.argv[1])
assert d["finish_reason"] == "stop", d
subprocess.run([sys.executable, sys.argv[2]], input=d["text"].encode(), check=True)' "$json" "$work/valid.py"

# pattern, format and integer bounds: sampled outputs hold to each.
cat >"$work/strings.json" <<'JSON'
{"type": "object",
 "properties": {
   "code": {"type": "string", "pattern": "^[A-Z]{2}-\\d{3}(\\.[a-z]+)?$"},
   "when": {"type": "string", "format": "date-time"},
   "id": {"type": "string", "format": "uuid"},
   "n": {"type": "integer", "minimum": -5, "maximum": 42}},
 "required": ["code", "when", "id", "n"]}
JSON
cat >"$work/strings.py" <<'PY'
import json, re, sys
d = json.loads(sys.stdin.read())
assert set(d) == {"code", "when", "id", "n"}, d
assert re.fullmatch(r"[A-Z]{2}-[0-9]{3}(\.[a-z]+)?", d["code"]), d
assert re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)"
                    r"(\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])", d["when"]), d
assert re.fullmatch(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", d["id"]), d
assert isinstance(d["n"], int) and not isinstance(d["n"], bool) and -5 <= d["n"] <= 42, d
PY
sample_valid "$work/strings.json" "$work/strings.py" "$work/strings" 6
check "generate --json-schema with pattern, format and integer bounds: 6 of 6 seeds hold to them" test $valid -eq 6 ||
    cat "$work/strings.why"

printf 'root ::= ("yes" | "no" | "고양이") "!"\n' >"$work/yn.gbnf"
all_ok=1
for seed in 1 2 3 4 5 6; do
    o=$("$bin" generate -m "$model" -p "the cat" --no-echo -n 50 --seed $seed --temperature 1 --grammar "$work/yn.gbnf" --threads 1 2>/dev/null)
    case "$o" in "yes!" | "no!" | "고양이!") ;; *) all_ok=0; echo "seed $seed gave '$o'" ;; esac
done
check "generate --grammar: every output is a sentence of the grammar" test $all_ok -eq 1

cat >"$work/multi.gbnf" <<'GBNF'
# llama.cpp style: comments, a rule over several lines, classes and repetition
root ::= "[" (
    item ("," item){0,2}
  )? "]"
item ::= [0-9]{1,3} | "\"" [a-z\u00e0-\u00ff]{1,4} "\""   # a number or a short word
GBNF
all_ok=1
for seed in 1 2 3 4; do
    o=$("$bin" generate -m "$model" -p "the cat" --no-echo -n 100 --seed $seed --temperature 1 --grammar "$work/multi.gbnf" --threads 1 2>/dev/null)
    /usr/bin/python3 -c '
import re, sys
assert re.fullmatch(r"\[((\d{1,3}|\"[a-z\u00e0-\u00ff]{1,4}\")(,(\d{1,3}|\"[a-z\u00e0-\u00ff]{1,4}\")){0,2})?\]", sys.argv[1]), sys.argv[1]' "$o" || all_ok=0
done
check "generate --grammar: a multi-line grammar with comments, every output matches (checked by a regex)" test $all_ok -eq 1

reply=$("$bin" chat -m "$model" --prompt "give me json" -n 1500 --seed 2 --temperature 1 --json-schema "$work/schema.json" --threads 1 2>"$work/err")
check "chat --json-schema: the reply matches the schema" bash -c "/usr/bin/python3 '$work/valid.py' <<<'$reply'" ||
    cat "$work/err"

printf '{"messages": [{"role": "user", "content": "the cat"}], "reference": "x", "task": "json", "metrics": ["exact_match"]}\n' >"$work/tasks.jsonl"
printf '{"messages": [{"role": "user", "content": "the dog"}], "reference": "y", "task": "json", "metrics": ["exact_match"]}\n' >>"$work/tasks.jsonl"
"$bin" eval -m "$model" --task "$work/tasks.jsonl" --max-tokens 1500 --json-schema "$work/schema.json" \
    --predictions "$work/pred.jsonl" --no-progress --threads 1 >"$work/eval.out" 2>"$work/err"
check "eval --json-schema exits 0" test $? -eq 0 || cat "$work/err"
check "eval --json-schema: every answer matches the schema" /usr/bin/python3 -c '
import json, subprocess, sys
n = 0
for line in open(sys.argv[1]):
    subprocess.run([sys.executable, sys.argv[2]], input=json.loads(line)["output"].encode(), check=True)
    n += 1
assert n == 2, n' "$work/pred.jsonl" "$work/valid.py"

# Bad inputs: one clear error, naming the file and where.
printf 'root ::= "a" | b\n\nb ::= [a-z\n' >"$work/bad.gbnf"
"$bin" generate -m "$model" -p "x" --grammar "$work/bad.gbnf" >/dev/null 2>"$work/err"
check "bad grammar: exit 1" test $? -eq 1
check "...naming file:line:column and the problem" grep -q "bad.gbnf:3:7: unterminated character class" "$work/err"
check "...in one line" test "$(wc -l <"$work/err")" -eq 1
printf 'root ::= x\n' >"$work/undef.gbnf"
"$bin" chat -m "$model" --prompt "x" --grammar "$work/undef.gbnf" >/dev/null 2>"$work/err"
check "chat: undefined rule exits 1 naming it" bash -c "test $? -eq 1 && grep -q \"undef.gbnf:1:10: rule 'x' is used but never defined\" '$work/err'"
echo '{"type": "string", "format": "email"}' >"$work/fmt.json"
"$bin" generate -m "$model" -p "x" --json-schema "$work/fmt.json" >/dev/null 2>"$work/err"
check "unsupported schema keyword: exit 1 naming it" bash -c "test $? -eq 1 && grep -q \"fmt.json: unsupported JSON Schema keyword 'format' at /\" '$work/err'"
echo '{"type": "string", "pattern": "^(a)\\1$"}' >"$work/backref.json"
"$bin" generate -m "$model" -p "x" --json-schema "$work/backref.json" >/dev/null 2>"$work/err"
check "unsupported regex construct in a pattern: exit 1 naming the keyword and the construct" bash -c "test $? -eq 1 && grep -q \"backref.json: unsupported JSON Schema keyword 'pattern' at /: a backreference '.1' (at offset 4 of the pattern) is not supported\" '$work/err'"
echo '{"type": "object",' >"$work/broken.json"
"$bin" eval -m "$model" --task "$work/tasks.jsonl" --json-schema "$work/broken.json" >/dev/null 2>"$work/err"
check "eval: schema that is not JSON exits 1 naming the file" bash -c "test $? -eq 1 && grep -q 'broken.json: the schema is not valid JSON' '$work/err'"
"$bin" generate -m "$model" -p "x" --grammar "$work/none.gbnf" >/dev/null 2>"$work/err"
check "missing grammar file: exit 1 naming it" bash -c "test $? -eq 1 && grep -q 'none.gbnf' '$work/err'"
"$bin" generate -m "$model" -p "x" --grammar "$work/yn.gbnf" --json-schema "$work/schema.json" >/dev/null 2>"$work/err"
check "--grammar with --json-schema: usage error, exit 2" bash -c "test $? -eq 2 && grep -q 'not both' '$work/err'"
"$bin" generate -m "$model" -p "x" --grammar >/dev/null 2>&1
check "--grammar without a value: exit 2" test $? -eq 2
"$bin" generate -m "$model" -p "x" --gramar "$work/yn.gbnf" >/dev/null 2>"$work/err"
check "--gramar: did you mean --grammar" bash -c "test $? -eq 2 && grep -q -- '--grammar' '$work/err'"
# Tool calling through `cllm serve` on the same model (ChatML template, 2048
# context): tools in the prompt in the ChatML tool format, tool_choice
# required / named / auto / none, role "tool" messages, tool_calls in the
# answer and in a stream, and the 400s.
if serve_start "$work/serve.log" -m "$model" --threads 1 --port 0 --parallel 1; then
    PORT=$serve_port /usr/bin/python3 - <<'PY' >"$work/tools.out" 2>&1
import http.client, json, os
port = int(os.environ["PORT"])
passed = failed = 0
def check(name, cond, detail=""):
    global passed, failed
    if cond: passed += 1
    else:
        failed += 1
        print(f"FAIL: {name} {str(detail)[:400]}")
def post(body, path="/v1/chat/completions"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    t = r.read().decode()
    c.close()
    return r.status, t
weather = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 8},
                          "days": {"type": "integer"}}, "required": ["city"], "additionalProperties": False}}}
add = {"type": "function", "function": {"name": "add", "parameters": {"type": "object", "properties": {
       "a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}}}
msgs = [{"role": "user", "content": "the cat"}]
def calls_ok(m, names, schema_check):
    tc = m.get("tool_calls") or []
    ok = len(tc) >= 1
    for c in tc:
        a = json.loads(c["function"]["arguments"])
        ok = ok and c["type"] == "function" and c["id"].startswith("call_") and c["function"]["name"] in names
        ok = ok and schema_check(c["function"]["name"], a)
    return ok
def args_ok(name, a):
    if name == "get_weather":
        return set(a) <= {"city", "days"} and isinstance(a["city"], str) and len(a["city"]) <= 8 and \
            ("days" not in a or (isinstance(a["days"], int) and not isinstance(a["days"], bool)))
    return set(a) == {"a", "b"} and all(isinstance(a[k], int) for k in "ab")
for seed in (1, 2, 3):
    s, t = post({"messages": msgs, "tools": [weather, add], "tool_choice": "required", "seed": seed,
                 "max_tokens": 400, "logit_bias": {}})
    d = json.loads(t) if s == 200 else {}
    ch = d.get("choices", [{}])[0]
    check(f"tool_choice required, seed {seed}: tool_calls that parse and match their schema, finish tool_calls",
          s == 200 and calls_ok(ch["message"], ("get_weather", "add"), args_ok) and ch["finish_reason"] == "tool_calls"
          and ch["message"]["content"] is None, t)
s, t = post({"messages": msgs, "tools": [weather, add], "seed": 4, "max_tokens": 400, "parallel_tool_calls": False,
             "tool_choice": {"type": "function", "function": {"name": "add"}}})
d = json.loads(t) if s == 200 else {}
m = d.get("choices", [{}])[0].get("message", {})
check("tool_choice naming 'add': exactly one call of add", s == 200 and calls_ok(m, ("add",), args_ok)
      and len(m["tool_calls"]) == 1, t)
s, t = post({"messages": msgs, "tools": [weather], "tool_choice": "required", "seed": 5, "stream": True,
             "max_tokens": 400})
evs = [json.loads(b[6:]) for b in t.strip().split("\n\n") if b.startswith("data: {")]
deltas = [e["choices"][0]["delta"] for e in evs if e.get("choices")]
tcs = [tc for dl in deltas for tc in dl.get("tool_calls", [])]
check("stream with tool_choice required: a tool_calls delta, finish tool_calls, [DONE]", s == 200
      and t.endswith("data: [DONE]\n\n") and len(tcs) >= 1 and tcs[0]["index"] == 0
      and args_ok("get_weather", json.loads(tcs[0]["function"]["arguments"]))
      and evs[-1]["choices"][0]["finish_reason"] == "tool_calls", t)
history = msgs + [{"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
           "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
          {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21}"}]
for choice in ("auto", "none"):
    s, t = post({"messages": history, "tools": [weather], "tool_choice": choice, "max_tokens": 8, "temperature": 0})
    d = json.loads(t) if s == 200 else {}
    ch = d.get("choices", [{}])[0]
    check(f"tool_choice {choice} with a tool call and a role 'tool' message in the history: 200, an answer",
          s == 200 and isinstance(ch["message"]["content"], str) and ch["finish_reason"] in ("stop", "length"), t)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
c.request("POST", "/apply-template", json.dumps({"messages": history}), {"Content-Type": "application/json"})
r = c.getresponse(); body = r.read().decode(); c.close()
check("/apply-template: the assistant's call in the ChatML tool format, then the tool's message",
      r.status == 200 and '<tool_call>\\n{\\"name\\":\\"get_weather\\",\\"arguments\\":{\\"city\\":\\"Paris\\"}}\\n</tool_call>' in body
      and "<|im_start|>tool" in body and "21" in body, body)
for name, body, param in [
        ("a tool without a name", {"messages": msgs, "tools": [{"type": "function", "function": {}}]}, "tools"),
        ("a tool of type retrieval", {"messages": msgs, "tools": [{"type": "retrieval"}]}, "tools"),
        ("a tool name with a space", {"messages": msgs, "tools": [{"type": "function", "function": {"name": "a b"}}]}, "tools"),
        ("two tools of one name", {"messages": msgs, "tools": [weather, weather]}, "tools"),
        ("parameters with oneOf", {"messages": msgs, "tools": [{"type": "function", "function": {"name": "f",
          "parameters": {"oneOf": [{}]}}}]}, "tools"),
        ("tool_choice names an unknown function", {"messages": msgs, "tools": [weather], "tool_choice":
          {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
        ("tool_choice required without tools", {"messages": msgs, "tool_choice": "required"}, "tool_choice"),
        ("tool_choice sometimes", {"messages": msgs, "tools": [weather], "tool_choice": "sometimes"}, "tool_choice"),
        ("required tool call with response_format", {"messages": msgs, "tools": [weather], "tool_choice": "required",
          "response_format": {"type": "json_object"}}, "tool_choice"),
        ("parallel_tool_calls not a boolean", {"messages": msgs, "tools": [weather], "parallel_tool_calls": 1},
          "parallel_tool_calls")]:
    s, t = post(body)
    e = json.loads(t).get("error", {}) if t.startswith("{") else {}
    check(f"bad tools input: {name} -> 400 naming {param}", s == 400 and e.get("param") == param, t)
if "parameters with oneOf" and True:
    s, t = post({"messages": msgs, "tools": [{"type": "function", "function": {"name": "f", "parameters":
                 {"type": "object", "properties": {"x": {"type": "string", "format": "email"}}}}}]})
    check("a refused parameters keyword is named with its tool", s == 400 and
          "tools[0].function.parameters: unsupported JSON Schema keyword 'format' at /properties/x" in t, t)
print(f"{passed} passed, {failed} failed")
PY
    add_results "$work/tools.out"
    grep FAIL "$work/tools.out"
    if command -v node >/dev/null && [ -d "$here/js/node_modules/openai" ]; then
        (cd "$here/js" && timeout 300 node server_tools.mjs "http://127.0.0.1:$serve_port/v1") >"$work/js.out" 2>&1
        add_results "$work/js.out"
        grep FAIL "$work/js.out"
    else
        bad "node or tests/js/node_modules/openai is missing: the openai client's tool-calling flow cannot run (scripts/install-deps.sh)"
    fi
else
    cat "$work/serve.log"
    bad "cllm serve did not start"
fi

for c in generate chat eval; do
    "$bin" $c --help | grep -q -- "--json-schema FILE"
    check "$c --help lists --json-schema" test $? -eq 0
done
finish
