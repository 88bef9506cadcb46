#!/usr/bin/env bash
# test_data_cli.sh: `cllm data world` (determinism, files, bad flags) and
# `cllm eval` on a tiny model trained here for a few steps: the table, JSON
# and predictions outputs, scoring checked end to end (a task whose
# references are the model's own greedy answers scores exact_match 1), text
# perplexity, and bad input (missing file, malformed JSONL with
# file:line:column, unknown metric, missing fields, bad flags).
set -u
bin=${CLLM_BUILD:-build}/cllm
py=/usr/bin/python3
work=$(mktemp -d /tmp/cllm-test-data.XXXXXX)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/lib.sh"

# ---- cllm data world ----
"$bin" data world --seed 3 --out "$work/w" >"$work/out" 2>&1
check "data world exits 0" test $? -eq 0
check "prints the file table" grep -q "summary.test.jsonl" "$work/out"
check "37 files written" test "$(ls "$work/w" | wc -l)" -eq 37
"$bin" data world --seed 3 --out "$work/w2" >/dev/null 2>&1
check "same seed, identical bytes" diff -r "$work/w" "$work/w2"
"$bin" data world --seed 4 --out "$work/w3" >/dev/null 2>&1
check "other seed, different stories" bash -c "! cmp -s '$work/w/stories.train.txt' '$work/w3/stories.train.txt'"
check "manifest is JSON with the seed and counts" $py -c '
import json, sys
m = json.load(open(sys.argv[1] + "/manifest.json"))
assert m["seed"] == 3 and m["size"] == "small", m
files = {f["name"]: f for f in m["files"]}
for f in files.values():
    path = sys.argv[1] + "/" + f["name"]
    data = open(path, "rb").read()
    assert len(data) == f["bytes"], f
    if f["name"].endswith(".jsonl"):
        assert data.count(b"\n") == f["records"], f
        for line in data.decode().splitlines():
            json.loads(line)
' "$work/w"
"$bin" data world --seed 3 --size huge --out "$work/x" >/dev/null 2>&1
check "--size huge exits 2" test $? -eq 2
"$bin" data world --seed abc --out "$work/x" >/dev/null 2>&1
check "--seed abc exits 2" test $? -eq 2
"$bin" data world --seed 3 >/dev/null 2>&1
check "missing --out exits 2" test $? -eq 2
"$bin" data planet --out "$work/x" >/dev/null 2>&1
check "unknown subcommand exits 2" test $? -eq 2
touch "$work/afile"
"$bin" data world --out "$work/afile/sub" >/dev/null 2>"$work/err"
check "output under a regular file exits 1 naming it" bash -c "test $? -eq 1 && grep -q afile '$work/err'"
"$bin" data --help | grep -q "Usage: cllm data world"
check "data --help" test $? -eq 0

# ---- a tiny byte-level model (plain chat template) ----
# Stories plus FAQ turns in the plain template, so the model answers after
# "### Assistant:" instead of ending the turn at once.
head -c 200000 "$work/w/stories.train.txt" >"$work/text.txt"
$py -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)["messages"]
    print("### User:\n%s\n\n### Assistant:\n%s\n" % (m[0]["content"], m[1]["content"]))' \
    "$work/w/faq.train.jsonl" >>"$work/text.txt"
"$bin" pretrain --data "$work/text.txt" --preset tiny-gpt2 --steps 300 --batch 8 --seq 64 --context 256 --lr 1e-2 \
    --eval-every 0 --threads 1 --out "$work/run" --no-progress >"$work/train.log" 2>&1
check "pretrain exits 0" test $? -eq 0
model=$work/run/model.gguf

# ---- cllm eval on task files ----
head -n 4 "$work/w/faq.test.jsonl" >"$work/faq4.jsonl"
head -n 4 "$work/w/sentiment.test.jsonl" >"$work/sent4.jsonl"
"$bin" eval -m "$model" --task "$work/faq4.jsonl" --task "$work/sent4.jsonl" --max-tokens 12 --threads 1 \
    --no-progress --show 1 >"$work/table" 2>"$work/err"
check "eval exits 0" test $? -eq 0
check "table has both tasks and their metrics" bash -c "grep -qE '^faq +4 ' '$work/table' && grep -qE '^sentiment +4 ' '$work/table' && grep -q chrf '$work/table'"
"$bin" eval -m "$model" --task "$work/faq4.jsonl" --max-tokens 12 --threads 1 --json --predictions "$work/pred.jsonl" \
    >"$work/eval.json" 2>"$work/err"
check "eval --json exits 0" test $? -eq 0
check "JSON has n, declared metrics in range, samples" $py -c '
import json, sys
d = json.load(open(sys.argv[1]))
t = d["tasks"][0]
assert t["task"] == "faq" and t["n"] == 4, t
assert set(t["metrics"]) == {"exact_match", "chrf"}, t
assert 0 <= t["metrics"]["exact_match"] <= 1 and 0 <= t["metrics"]["chrf"] <= 100, t
assert len(t["samples"]) == 3 and "output" in t["samples"][0]' "$work/eval.json"
# A task whose references are the model's own greedy answers must score 1.
$py -c '
import json, sys
pred = [json.loads(l) for l in open(sys.argv[1])]
src = [json.loads(l) for l in open(sys.argv[2])]
assert len(pred) == len(src) == 4
with open(sys.argv[3], "w") as out:
    for p, s in zip(pred, src):
        s["reference"] = p["output"]
        s["metrics"] = ["exact_match", "chrf", "rouge_l"]
        out.write(json.dumps(s, ensure_ascii=False) + "\n")
nonempty = sum(1 for p in pred if p["output"])
print(nonempty)' "$work/pred.jsonl" "$work/faq4.jsonl" "$work/self.jsonl" >"$work/nonempty"
check "the tiny model answers something" test "$(cat "$work/nonempty")" -ge 1
"$bin" eval -m "$model" --task "$work/self.jsonl" --max-tokens 12 --threads 1 --json >"$work/self.json" 2>"$work/err"
check "own answers as references score exact_match 1, chrF 100, ROUGE-L 1" $py -c '
import json, sys
m = json.load(open(sys.argv[1]))["tasks"][0]["metrics"]
assert m["exact_match"] == 1 and abs(m["chrf"] - 100) < 1e-9 and abs(m["rouge_l"] - 1) < 1e-9, m' "$work/self.json"
# BOM, CRLF and blank lines are accepted.
{ printf '\xef\xbb\xbf'; head -n 1 "$work/faq4.jsonl" | tr -d '\n'; printf '\r\n\r\n'; sed -n 2p "$work/faq4.jsonl"; } >"$work/bom.jsonl"
out=$("$bin" eval -m "$model" --task "$work/bom.jsonl" --max-tokens 4 --threads 1 --json 2>"$work/err")
check "BOM + CRLF + blank line: 2 examples" $py -c 'import json,sys; assert json.loads(sys.argv[1])["tasks"][0]["n"] == 2' "$out"

# ---- text perplexity ----
head -c 3000 "$work/w/stories.val.txt" >"$work/val.txt"
out=$("$bin" eval -m "$model" --text "$work/val.txt" --threads 1 --json 2>"$work/err")
check "--text reports perplexity and bits per byte" $py -c '
import json, sys
t = json.loads(sys.argv[1])["text"]
assert t["scored_tokens"] == t["tokens"] - 1 and t["perplexity"] > 1 and 0 < t["bits_per_byte"] < 9, t' "$out"

# ---- bad input ----
"$bin" eval -m "$model" --task "$work/none.jsonl" >/dev/null 2>"$work/err"
check "missing task file exits 1 naming it" bash -c "test $? -eq 1 && grep -q none.jsonl '$work/err'"
{ head -n 1 "$work/faq4.jsonl"; echo '{"task": "faq", "messages": [}'; } >"$work/bad.jsonl"
"$bin" eval -m "$model" --task "$work/bad.jsonl" >/dev/null 2>"$work/err"
check "malformed JSONL exits 1 with file:line:column" bash -c "test $? -eq 1 && grep -qE 'bad.jsonl:2:[0-9]+: malformed JSON' '$work/err'"
echo '{"task": "x", "metrics": ["bleu"], "messages": [{"role": "user", "content": "hi"}], "reference": "a"}' >"$work/metric.jsonl"
"$bin" eval -m "$model" --task "$work/metric.jsonl" >/dev/null 2>"$work/err"
check "unknown metric exits 1 naming it and the line" bash -c "test $? -eq 1 && grep -q \"metric.jsonl:1: unknown metric 'bleu'\" '$work/err'"
echo '{"task": "x", "reference": "a"}' >"$work/nomsg.jsonl"
"$bin" eval -m "$model" --task "$work/nomsg.jsonl" >/dev/null 2>"$work/err"
check "missing messages exits 1" bash -c "test $? -eq 1 && grep -q 'messages' '$work/err'"
echo '{"messages": [{"role": "wizard", "content": "hi"}], "reference": "a"}' >"$work/role.jsonl"
"$bin" eval -m "$model" --task "$work/role.jsonl" >/dev/null 2>"$work/err"
check "unknown role exits 1" bash -c "test $? -eq 1 && grep -q wizard '$work/err'"
: >"$work/empty.jsonl"
"$bin" eval -m "$model" --task "$work/empty.jsonl" >/dev/null 2>"$work/err"
check "empty task file exits 1" test $? -eq 1
"$bin" eval -m "$model" --task "$work/faq4.jsonl" --predictions "$work/nodir/p.jsonl" >/dev/null 2>&1
check "predictions into a missing directory exits 1 before work" test $? -eq 1
check "...and writes no file" test ! -e "$work/nodir/p.jsonl"
"$bin" eval -m "$model" >/dev/null 2>&1
check "nothing to evaluate exits 2" test $? -eq 2
"$bin" eval --task "$work/faq4.jsonl" >/dev/null 2>&1
check "missing model exits 2" test $? -eq 2
"$bin" eval -m "$model" --task "$work/faq4.jsonl" --max-tokens 0 >/dev/null 2>&1
check "--max-tokens 0 exits 2" test $? -eq 2
"$bin" eval -m "$model" --task "$work/faq4.jsonl" --bogus >/dev/null 2>&1
check "unknown flag exits 2" test $? -eq 2
"$bin" eval -m "$work/none.gguf" --task "$work/faq4.jsonl" >/dev/null 2>&1
check "missing model file exits 1" test $? -eq 1
"$bin" eval --help | grep -q "Usage: cllm eval"
check "eval --help" test $? -eq 0

# ---- cllm attention ----
"$bin" attention -m "$model" "Lily went to the park." --out "$work/attn.svg" --threads 1 >"$work/out" 2>"$work/err"
check "attention exits 0" test $? -eq 0
check "attention SVG: 4 heads of 22x22 lower triangles, token labels" $py -c '
import sys, xml.dom.minidom
d = xml.dom.minidom.parse(sys.argv[1])
texts = [t.firstChild.data for t in d.getElementsByTagName("text") if t.firstChild]
assert sum(1 for t in texts if t.startswith("head ")) == 4, texts[:8]
cells = [r for r in d.getElementsByTagName("rect") if r.getElementsByTagName("title")]
assert len(cells) == 4 * 22 * 23 // 2, len(cells)
assert "L" in texts and "k" in texts' "$work/attn.svg"
"$bin" attention -m "$model" "x" --out "$work/a2.svg" --layer 5 >/dev/null 2>&1
check "attention --layer out of range exits 2" test $? -eq 2
"$bin" attention -m "$model" "$(head -c 400 "$work/text.txt")" --out "$work/a3.svg" >/dev/null 2>"$work/err"
check "attention on too many tokens exits 1, no file" bash -c "test $? -eq 1 && test ! -e '$work/a3.svg' && grep -q 'at most' '$work/err'"
"$bin" attention -m "$model" "x" >/dev/null 2>&1
check "attention without --out exits 2" test $? -eq 2
"$bin" attention -m "$model" "x" --out "$work/nodir/a.svg" >/dev/null 2>&1
check "attention into a missing directory exits 1" test $? -eq 1
finish
