#!/usr/bin/env bash
# test_info.sh: `cllm info` prints the right numbers and exits 2 on bad usage,
# 1 on bad data. Uses $CLLM_BUILD/cllm (default build/cllm).
set -u
bin=${CLLM_BUILD:-build}/cllm
. "$(dirname "$0")/lib.sh"
out=$("$bin" info --preset gpt2 --json)
check "gpt2 json exits 0" test $? -eq 0
check "gpt2 has 124,439,808 parameters" grep -q '"n_params":124439808,' <<<"$out"
check "json parses" /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); assert d["training"]["total_bytes"] == sum(d["training"][k] for k in ("param_bytes","grad_bytes","adamw_bytes","activation_bytes"))' <<<"$out"
out=$("$bin" info --preset tiny-llama --set n_layer=3 --set n_kv_head=1 --json)
check "--set applies" grep -q '"n_layer":3,' <<<"$out"
check "table output" bash -c "'$bin' info --preset llama-110m | grep -q '^parameters .*109529856'"
check "--list lists presets" bash -c "'$bin' info --list | grep -q '^llama-1b '"
"$bin" info --preset gpt2 --set n_head=0 >/dev/null 2>&1
check "invalid override exits 2" test $? -eq 2
"$bin" info --preset nosuch >/dev/null 2>&1
check "unknown preset exits 2" test $? -eq 2
"$bin" info --preset gpt2 -b 0 >/dev/null 2>&1
check "batch 0 exits 2" test $? -eq 2
"$bin" info >/dev/null 2>&1
check "no model exits 2" test $? -eq 2
"$bin" info -m /nonexistent.gguf >/dev/null 2>&1
check "unreadable model exits 1" test $? -eq 1
"$bin" info --help | grep -q "Usage: cllm info"
check "--help" test $? -eq 0
finish
