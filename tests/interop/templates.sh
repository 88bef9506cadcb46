#!/usr/bin/env bash
# templates.sh: cllm's Jinja interpreter (src/infer/jinja.c) renders the chat
# templates that llama.cpp ships for the Qwen2 and Mistral families
# (/tmp/llama-src/models/templates/*.jinja, read in place, never copied
# into this repository) exactly as Python's jinja2 does (with Hugging Face's
# apply_chat_template setup, tests/reference/jinja_render.py), over every
# conversation of tests/reference/jinja_cases.json with and without the
# generation prompt: build/tests/test_jinja run with CLLM_JINJA_TEMPLATES
# pointing at a directory of links to those files.
# Not part of `make test`. Fails (does not skip) without the llama.cpp source.
# Usage: bash tests/interop/templates.sh [LLAMA_SRC]   (default /tmp/llama-src)
# Ends with "N passed, N failed"; exits non-zero on any failure.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
src=${1:-/tmp/llama-src}
. "$(dirname "$0")/../lib.sh"
lib_workdir cllm-templates
names="Qwen-Qwen2.5-7B-Instruct mistralai-Mistral-Nemo-Instruct-2407 mistralai-Ministral-3-14B-Reasoning-2512 unsloth-mistral-Devstral-Small-2507"
for n in $names; do
    [ -f "$src/models/templates/$n.jinja" ] || fail_all "templates: $src/models/templates/$n.jinja not found"
    ln -s "$src/models/templates/$n.jinja" "$work/$n.jinja"
done
cd "$root"
build=${CLLM_BUILD:-$root/build}
make -s -j2 "$build/tests/test_jinja" >/dev/null || fail_all "templates: building test_jinja failed"
CLLM_JINJA_TEMPLATES=$work CLLM_JINJA_FAMILIES=$(echo $names | wc -w) "$build/tests/test_jinja" > "$work/log" 2>&1
grep "reference:" "$work/log"
tail -n 5 "$work/log"
grep "FAIL" "$work/log" | head -n 20
add_results "$work/log"
finish
