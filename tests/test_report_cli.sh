#!/usr/bin/env bash
# test_report_cli.sh: `cllm report` on hand-written `cllm eval --json` files:
# headline metric per task (manifest, --metric, fallback), units in the table,
# targets met/missed, drops between stages (and --drops-from), the JSON
# summary's numbers, the bar chart (one bar per value, scaled to 0..100), and
# bad input (missing/invalid files, bad pairs, unknown metric or task) with
# exit codes 1/2 and no output file written.
set -u
bin=${CLLM_BUILD:-build}/cllm
py=/usr/bin/python3
work=$(mktemp -d /tmp/cllm-test-report.XXXXXX)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/lib.sh"
cd "$work"
cat >manifest.json <<'EOF'
{"tasks": {"faq": ["exact_match", "chrf"], "translate_en_ko": ["chrf", "exact_match"], "summary": ["rouge_l", "chrf"]}}
EOF
cat >u.json <<'EOF'
{"tasks": [{"task": "faq", "n": 10, "metrics": {"exact_match": 0.1, "chrf": 20.5}},
 {"task": "translate_en_ko", "n": 10, "metrics": {"exact_match": 0, "chrf": 10}},
 {"task": "summary", "n": 5, "metrics": {"rouge_l": 0.25, "chrf": 30}},
 {"task": "sentiment", "n": 8, "metrics": {"accuracy": 0.375}}]}
EOF
cat >s.json <<'EOF'
{"tasks": [{"task": "faq", "n": 10, "metrics": {"exact_match": 0.9, "chrf": 95}},
 {"task": "translate_en_ko", "n": 10, "metrics": {"exact_match": 0.5, "chrf": 85.25}},
 {"task": "summary", "n": 5, "metrics": {"rouge_l": 0.2, "chrf": 40}},
 {"task": "sentiment", "n": 8, "metrics": {"accuracy": 1}}]}
EOF
cat >d.json <<'EOF'
{"tasks": [{"task": "faq", "n": 10, "metrics": {"exact_match": 0.8, "chrf": 96}},
 {"task": "translate_en_ko", "n": 10, "metrics": {"exact_match": 0.5, "chrf": 85.25}},
 {"task": "summary", "n": 5, "metrics": {"rouge_l": 0.7, "chrf": 41}}]}
EOF

"$bin" report --manifest manifest.json --target faq=0.9 --target translate_en_ko=80 --target summary=0.6 \
    --svg chart.svg --json sum.json untrained=u.json sft=s.json dpo=d.json >table 2>err
check "report exits 0" test $? -eq 0
check "headline metrics from the manifest" bash -c "grep -q '^faq (exact_match) ' table && grep -q '^translate_en_ko (chrf) ' table && grep -q '^summary (rouge_l) ' table"
check "fallback metric for a task the manifest lacks" grep -q '^sentiment (accuracy) ' table
check "units: %, chrF, ROUGE-L" bash -c "grep -qE '^faq .* 10\.0% +90\.0% +80\.0% +90\.0% MISS' table && grep -qE '^translate_en_ko .* 10\.00 +85\.25 +85\.25 +80\.00 met' table && grep -qE '^summary .* 0\.250 +0\.200 +0\.700 +0\.600 met' table"
check "a stage without the task shows -" grep -qE '^sentiment .* 37\.5% +100\.0% +- *$' table
check "targets line" grep -q "targets met at stage 'dpo': 2 of 3" table
check "drops listed" bash -c "grep -q \"drop: summary fell from 0.250 to 0.200 at stage 'sft'\" table && grep -q \"drop: faq fell from 90.0% to 80.0% at stage 'dpo'\" table && test \$(grep -c '^drop:' table) -eq 2"
check "JSON summary" $py -c '
import json, sys
d = json.load(open("sum.json"))
assert d["stages"] == ["untrained", "sft", "dpo"], d["stages"]
t = {x["task"]: x for x in d["tasks"]}
assert t["faq"]["metric"] == "exact_match" and t["faq"]["scores"] == {"untrained": 0.1, "sft": 0.9, "dpo": 0.8}
assert t["faq"]["target_met"] is False and t["summary"]["target_met"] is True
assert t["sentiment"]["scores"]["dpo"] is None and t["sentiment"]["final_over_first"] is False
assert t["translate_en_ko"]["final_over_first"] is True and "target" not in t["sentiment"]
assert d["targets_met"] == 2 and d["targets"] == 3
assert sorted((x["stage"], x["task"]) for x in d["drops"]) == [("dpo", "faq"), ("sft", "summary")]'
check "chart: one bar per value present, on 0..100" $py -c '
import re
s = open("chart.svg").read()
bars = re.findall(r"<title>([^<]*)</title>", s)
assert len(bars) == 11, bars                       # 4 + 4 + 3 values
assert "sft, faq: 90" in bars                       # exact match 0.9 -> 90
assert "untrained, summary: 25" in bars             # ROUGE-L 0.25 -> 25
assert "sft, translate_en_ko: 85.25" in bars        # chrF as is
assert s.count("<text") >= 4 + 3 and ">dpo</text>" in s'

"$bin" report --drops-from sft untrained=u.json sft=s.json dpo=d.json >table2 2>&1
check "--drops-from skips earlier stages" bash -c "grep -q 'drop: faq' table2 && ! grep -q 'drop: summary' table2"
"$bin" report --metric faq=chrf untrained=u.json sft=s.json >table3 2>&1
check "--metric overrides" grep -qE '^faq \(chrf\) +20\.50 +95\.00' table3
check "drops without --drops-from cover every stage" grep -q "drop: summary" table3
sed 's/"chrf": 10}/"chrf": 9.999}/' u.json >u2.json
"$bin" report first=u.json again=u2.json >table4 2>&1
check "no drops: says so (a change too small to print is no drop)" grep -q "no task fell" table4
check "without a manifest: first of exact_match, accuracy, rouge_l, chrf" grep -q '^translate_en_ko (exact_match)' table3
sed 's/"n": 5/"n": 6/' s.json >s6.json
"$bin" report untrained=u.json sft=s6.json >/dev/null 2>err
check "different example counts warn" grep -q "warning: task 'summary' has 6 examples" err

# ---- bad input ----
"$bin" report >/dev/null 2>err
check "no stages: exit 2" test $? -eq 2
"$bin" report u.json >/dev/null 2>err
check "missing STAGE=: exit 2" bash -c "test $? -eq 2 && grep -q 'STAGE=EVAL.json' err"
"$bin" report a=u.json a=s.json >/dev/null 2>err
check "duplicate stage: exit 2" test $? -eq 2
"$bin" report a=nope.json --json out.json >/dev/null 2>err
check "missing file: exit 1 naming it, no output" bash -c "test $? -eq 1 && grep -q nope.json err && test ! -e out.json"
echo '{"tasks": [' >bad.json
"$bin" report a=bad.json >/dev/null 2>err
check "invalid JSON: exit 1 naming the file" bash -c "test $? -eq 1 && grep -q 'bad.json: not valid JSON' err"
echo '{"model": "x"}' >notasks.json
"$bin" report a=notasks.json >/dev/null 2>err
check "no tasks array: exit 1" bash -c "test $? -eq 1 && grep -q 'no \"tasks\"' err"
echo '{"tasks": [{"task": "faq", "metrics": {"chrf": 1}}]}' >non.json
"$bin" report a=non.json >/dev/null 2>err
check "task without n: exit 1 naming the entry" bash -c "test $? -eq 1 && grep -q 'tasks\[0\]' err"
echo '{"tasks": [{"task": "faq", "n": 1, "metrics": {"chrf": 1}}, {"task": "faq", "n": 1, "metrics": {"chrf": 2}}]}' >dup.json
"$bin" report a=dup.json >/dev/null 2>err
check "task twice in one file: exit 1" test $? -eq 1
"$bin" report --metric faq=bleu a=u.json >/dev/null 2>err
check "unknown metric: exit 2" test $? -eq 2
"$bin" report --metric nosuch=chrf a=u.json >/dev/null 2>err
check "--metric for an unknown task: exit 2" test $? -eq 2
"$bin" report --target faq=abc a=u.json >/dev/null 2>err
check "non-numeric target: exit 2" test $? -eq 2
"$bin" report --metric summary=accuracy a=u.json >/dev/null 2>err
check "headline metric missing from the results: exit 1" bash -c "test $? -eq 1 && grep -q \"no number for accuracy\" err"
"$bin" report --svg nodir/c.svg a=u.json >/dev/null 2>err
check "unwritable chart path: exit 1 naming it" bash -c "test $? -eq 1 && grep -q nodir/c.svg err"
"$bin" report --bogus a=u.json >/dev/null 2>err
check "unknown flag: exit 2" test $? -eq 2
"$bin" report --help | grep -q "Usage: cllm report"
check "--help" test $? -eq 0

finish
