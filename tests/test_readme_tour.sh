#!/usr/bin/env bash
# test_readme_tour.sh: the README's tour runs as written (issue 23, items 1-3).
#
# Takes the ```sh block under "## A tour" in README.md, joins continued lines,
# and runs every command (`mkdir`, then `build/cllm ...`) in a scratch copy of the clone's
# layout (build/ -> the binaries under test, examples/ -> the repo's), with
# one change: every `--steps N` becomes `--steps 3`, so CI pays seconds, not
# the minutes the README gives. `chat` reads two turns from a pipe; `serve`
# runs in the background on --port 0 and answers /health and one chat
# completion. Comment lines are not run.
# Also: the tokens the README prints for "Hello, world!" are the ones the
# tour's tokenizer gives, and examples/make-examples.sh still writes exactly
# the committed example files.
set -u
. "$(dirname "$0")/lib.sh"
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${CLLM_BUILD:-$repo/build}
build=$(cd "$build" && pwd)
bin=$build/cllm
lib_workdir cllm-test-tour
mkdir "$work/clone"
ln -s "$build" "$work/clone/build"
ln -s "$repo/examples" "$work/clone/examples"

# the block: from "## A tour" to the first closing fence after its ```sh
awk '/^## A tour/ { t = 1 } t && /^```sh$/ { b = 1; next } b && /^```$/ { exit } b' "$repo/README.md" >"$work/block"
# join "\"-continued lines, keep the commands
awk '{ if (sub(/\\$/, "")) { acc = acc $0; next } print acc $0; acc = "" }' "$work/block" |
    grep -E '^(build/cllm|mkdir) ' >"$work/commands"
n=$(wc -l <"$work/commands")
check "the tour has its commands ($n)" test "$n" -ge 12

cd "$work/clone" || fail_all "cd $work/clone"
i=0
while IFS= read -r cmd; do
    i=$((i + 1))
    run=$(printf '%s' "$cmd" | sed -E 's/--steps [0-9]+/--steps 3/g')
    log=$work/cmd$i.log
    case $cmd in
    "build/cllm serve "*)
        run=$(printf '%s' "$run" | sed -E 's/--port [0-9]+/--port 0/')
        bash -c "exec $run" >/dev/null 2>"$log" &
        pids+=($!)
        port=
        for _ in $(seq 1 100); do
            port=$(grep -o 'listening on http://[^ ]*:[0-9]*' "$log" | sed 's/.*://')
            [ -n "$port" ] && break
            sleep 0.1
        done
        if check "tour: $cmd (starts: $(tail -c 200 "$log"))" test -n "$port"; then
            code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")
            check "tour: serve /health answers 200 (got $code)" test "$code" = 200
            reply=$(curl -s "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
                -d '{"messages": [{"role": "user", "content": "What is 3 + 4?"}], "max_tokens": 8}')
            check "tour: serve answers a chat completion ($(printf '%s' "$reply" | head -c 200))" \
                bash -c "printf '%s' '$reply' | grep -q '\"choices\"'"
        fi
        continue
        ;;
    "build/cllm chat "*)
        printf 'Translate to Korean: Good morning.\nWhat is 3 + 4?\n' | bash -c "$run" >"$work/out$i" 2>"$log"
        ;;
    *)
        bash -c "$run" >"$work/out$i" 2>"$log" </dev/null
        ;;
    esac
    rc=$?
    check "tour: $cmd (exit $rc: $(tail -c 300 "$log"))" test $rc -eq 0
    case $cmd in
    "build/cllm tokenizer encode "*)
        said=$(grep -A1 -F "$cmd" "$work/block" | sed -n '2s/^#   \(\[[^]]*\]\).*/\1/p')
        got=$(head -n 1 "$work/out$i")
        check "README's tokens for the encode example ($said) are what it prints ($got)" test "$said" = "$got"
        ;;
    "build/cllm chat "*)
        check "chat answered both piped turns" test "$(grep -c . "$work/out$i")" -ge 2
        ;;
    esac
done <"$work/commands"
for f in tour/tok.cllm tour/corpus.tok tour/run/model.gguf tour/run/q8.gguf tour/sft/model.gguf tour/dpo/model.gguf \
    tour/grpo/model.gguf; do
    check "tour wrote $f" test -s "$f"
done

# the example files are what the script writes (from `cllm data world --seed 1`)
mkdir "$work/examples"
bash "$repo/examples/make-examples.sh" "$bin" "$work/examples"
check "make-examples.sh runs" test $? -eq 0
for f in corpus.txt held-out.txt chat.jsonl pairs.jsonl arithmetic.jsonl; do
    check "examples/$f is what make-examples.sh writes" cmp -s "$work/examples/$f" "$repo/examples/$f"
done
finish
