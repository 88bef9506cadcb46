#!/usr/bin/env bash
# test_server.sh: `cllm serve` end to end on loopback with a tiny model
# trained here: OpenAI response shapes (stream and not), greedy output equal
# to `cllm generate`, SSE framing, n/seed/stop/logprobs, embeddings,
# tokenize, metrics, the chat page, prefix reuse, and every HTTP row of
# docs/RELIABILITY.md (tests/server_cases.py): bad JSON and fields -> 400
# naming the field, over-long prompts, 413, 431, slow clients, 401, a full
# queue -> 429 while /health answers, a client disconnecting mid-stream
# frees its slot, plus a bounded load test, and prompts whose chunks span
# several model passes. Every server started here is
# killed by the EXIT trap. Ports: the server binds port 0 and prints its port.
set -u
bin=${CLLM_BUILD:-build}/cllm
here=$(cd "$(dirname "$0")" && pwd)
. "$(dirname "$0")/lib.sh"
lib_workdir cllm-test-server

for i in $(seq 1 400); do echo "the cat sat on the mat. the dog ran to the log."; done > "$work/text.txt"
"$bin" pretrain --data "$work/text.txt" --preset tiny-gpt2 --steps 300 --batch 8 --seq 32 --context 128 --lr 1e-2 \
    --eval-every 0 --threads 1 --out "$work/run" --no-progress >"$work/train.log" 2>&1 || fail_all "pretrain"
model=$work/run/model.gguf

# start NAME ARGS...: starts a server, waits for its port, sets PORT_<NAME>.
start() {
    local name=$1; shift
    if serve_start "$work/$name.log" -m "$model" --threads 1 --port 0 "$@"; then
        eval "PORT_$name=$serve_port"
        return 0
    fi
    cat "$work/$name.log"
    fail_all "server $name did not start"
}
start main --parallel 2 --queue 1 --max-body 4096 --max-header 8192 --timeout 2 --debug-step-delay 5
start keyed --api-key sekret-key-123
# A diverged model (every logit NaN): each request fails with a 500 or an SSE
# error event naming the cause, and the server stays up.
/usr/bin/python3 "$here/nan_model.py" "$model" "$work/nan.gguf" || fail_all "nan_model.py"
start nan -m "$work/nan.gguf" --parallel 1 --no-check-weights
# Server-side defaults and switches; the key from a file, and from the environment.
printf 'file-key-456\n' >"$work/key.txt"
start extra --parallel 1 --cors http://page.example --api-key-file "$work/key.txt" --n-predict 5 --temp 0 --seed 9 \
    --no-ui --no-metrics --slots --debug-step-delay 20 --request-timeout 1
CLLM_API_KEY=env-key-789 start envkey --parallel 1
expected=$("$bin" generate -m "$model" -p "the cat" -n 20 --temperature 0 --no-echo --threads 1 2>/dev/null)
NAN_PORT="$PORT_nan" EXTRA_PORT="$PORT_extra" ENVKEY_PORT="$PORT_envkey" CLLM_BIN="$bin" MODEL="$model" WEB_PAGE="$here/../web/index.html" EXPECTED_GREEDY="$expected" \
    /usr/bin/python3 "$here/server_cases.py" "$PORT_main" "$PORT_keyed" | tee "$work/cases.out"
add_results "$work/cases.out" "server cases: "
# Command-line checks (no server needed).
"$bin" serve --help | grep -q "Usage: cllm serve"; check "--help" test $? -eq 0
"$bin" serve -m "$model" --port 70000 >/dev/null 2>&1; check "--port 70000 exits 2" test $? -eq 2
"$bin" serve -m "$model" --parallel 0 >/dev/null 2>&1; check "--parallel 0 exits 2" test $? -eq 2
"$bin" serve --port 0 >/dev/null 2>&1; check "missing model exits 2" test $? -eq 2
"$bin" serve -m "$work/none.gguf" --host 0.0.0.0 >/dev/null 2>"$work/err"; check "missing model file exits 1" test $? -eq 1
check "0.0.0.0 without a key warns loudly" grep -q "WARNING.*WITHOUT an API key" "$work/err"
"$bin" serve -m "$model" --host not-an-ip --port 0 --threads 1 >/dev/null 2>"$work/err"; check "bad host exits 1" test $? -eq 1
"$bin" serve -m "$model" --api-key-file "$work/none.txt" --port 0 >/dev/null 2>&1; check "missing --api-key-file exits 1" test $? -eq 1
# --host :: binds every interface: the message must say [::], not [::1].
"$bin" serve -m "$model" --host :: --port 0 --threads 1 2>"$work/v6.log" &
v6=$!
for _ in $(seq 1 50); do grep -q "listening on" "$work/v6.log" && break; sleep 0.1; done
kill $v6 2>/dev/null; wait $v6 2>/dev/null
check "--host :: says it listens on [::]" grep -q 'listening on http://\[::\]:' "$work/v6.log"
# The model file truncated, or rewritten in place by cp, while it is served
# (the default copied layout and --no-repack): the server used to die of
# SIGBUS at the next request (exit 135). Now that request fails naming the
# file, /health answers 503 with the reason, and the process stays up.
http_status() { # URL [JSON]: "STATUS BODY" of a GET, or of a POST with the JSON body
    /usr/bin/python3 -c '
import sys, urllib.request, urllib.error
data = sys.argv[2].encode() if len(sys.argv) > 2 else None
req = urllib.request.Request(sys.argv[1], data=data, headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=20) as r: print(r.status, r.read().decode())
except urllib.error.HTTPError as e: print(e.code, e.read().decode())
except Exception as e: print("down", e)' "$@"; }
for layout in copied no-repack; do
    for how in truncate rewrite; do
        cp "$model" "$work/live.gguf"
        extra=(); [ "$layout" = no-repack ] && extra=(--no-repack)
        serve_start "$work/live.log" -m "$work/live.gguf" --threads 1 --port 0 --parallel 1 "${extra[@]}"
        live=${pids[-1]}
        url=http://127.0.0.1:$serve_port
        before=$(http_status "$url/v1/completions" '{"prompt": "the cat", "max_tokens": 8}')
        if [ $how = truncate ]; then truncate -s 4096 "$work/live.gguf"; else cp "$work/nan.gguf" "$work/live.gguf"; fi
        after=$(http_status "$url/v1/completions" '{"prompt": "the cat", "max_tokens": 8}')
        health=$(http_status "$url/health")
        check "$layout, $how: served before (${before:0:3})" test "${before:0:3}" = 200
        check "$layout, $how: the next request fails naming the file (${after:0:60})" \
            bash -c "[[ '${after:0:3}' == 5* ]] && grep -q live.gguf <<< '$after'"
        check "$layout, $how: /health is 503 with the reason" bash -c "grep -q '^503.*live.gguf' <<< '$health'"
        check "$layout, $how: the server is still running" kill -0 $live
        kill $live 2>/dev/null; wait $live 2>/dev/null
    done
done
# Prompt chunks spread over model passes: three choices of a 23-token prompt
# are 69 prompt rows and one pass holds 24 (max_seq = --ctx), so chunks start
# mid-prompt and share passes; each choice must still be the greedy one.
start split --parallel 3 --ctx 24
p23="the cat sat on the mat."
want=$("$bin" generate -m "$model" -p "$p23" -n 1 --temperature 0 --no-echo --threads 1 --ctx 24 2>/dev/null)
split_out=$(PORT="$PORT_split" PROMPT="$p23" WANT="$want" /usr/bin/python3 -c '
import http.client, json, os
c = http.client.HTTPConnection("127.0.0.1", int(os.environ["PORT"]), timeout=60)
c.request("POST", "/v1/completions", json.dumps({"prompt": os.environ["PROMPT"], "n": 3, "max_tokens": 1, "temperature": 0}))
texts = [ch["text"] for ch in json.loads(c.getresponse().read())["choices"]]
c.request("GET", "/metrics")
m = dict(l.rsplit(" ", 1) for l in c.getresponse().read().decode().splitlines() if not l.startswith("#"))
same = len(texts) == 3 and all(t.rstrip("\n") == os.environ["WANT"] for t in texts)  # $(...) drops newlines
print("greedy" if same else json.dumps(texts), m["cllm_prompt_tokens_total"], m["cllm_decode_steps_total"])')
check "prompt chunks over several passes give the greedy text" test "$split_out" = "greedy 69 3"
[ "$split_out" = "greedy 69 3" ] || echo "  got: $split_out (want: greedy 69 3; greedy text: $want)"
finish
