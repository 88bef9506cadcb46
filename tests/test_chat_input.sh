#!/usr/bin/env bash
# test_chat_input.sh: how `cllm chat` reads what is typed (issue 23 item 14).
# From a pipe: a line ending in '\' continues the turn, a """ block is one
# turn, '/system' alone clears the system message (and '/system TEXT' sets
# it), checked through /save's transcript. On a terminal (script(1) gives it
# a pseudo-terminal): libedit's line editing (Ctrl-A, then typing, moves the
# text) and history (Up recalls the last line).
set -u
. "$(dirname "$0")/lib.sh"
bin=${CLLM_BUILD:-build}/cllm
lib_workdir cllm-test-chat-input
for i in $(seq 1 30); do echo "the cat sat on the mat. the dog ran to the log."; done >"$work/text.txt"
"$bin" pretrain --data "$work/text.txt" --preset tiny-llama --steps 1 --seq 16 --context 256 --batch 2 --eval-every 0 \
    --no-progress --threads 1 --out "$work/base" >/dev/null 2>&1 || fail_all "pretrain a tiny model"
m=$work/base/model.gguf
chat() { "$bin" chat -m "$m" --temperature 0 -n 2 --threads 1 "$@"; }

printf 'first line \\\nsecond line\n"""\nblock one\n\nblock two\n"""\n/save %s\n/quit\n' "$work/t1.json" |
    chat --system "Be brief." >/dev/null 2>"$work/err"
rc=$?  # before the message's $(...), which would reset $?
check "piped chat exits 0 ($(tail -c 200 "$work/err"))" test "$rc" -eq 0
check "a trailing backslash continues the turn, and a \"\"\" block is one turn" /usr/bin/python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))["messages"]
assert m[0] == {"role": "system", "content": "Be brief."}, m
users = [x["content"] for x in m if x["role"] == "user"]
assert users == ["first line \nsecond line", "block one\n\nblock two"], users' "$work/t1.json"

printf '/system\nhello\n/save %s\n/system Answer in Korean.\n/save %s\n/quit\n' "$work/t2.json" "$work/t3.json" |
    chat --system "You are a helpful assistant." >/dev/null 2>"$work/err"
check "/system with no text says it cleared the message" grep -q "system message cleared" "$work/err"
check "and the transcript has no system message" /usr/bin/python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))["messages"]
assert [x["role"] for x in m] == ["user", "assistant"], m' "$work/t2.json"
check "/system TEXT sets it again" grep -q '"role": "system", "content": "Answer in Korean."' "$work/t3.json"

if command -v script >/dev/null; then
    # "ab", Ctrl-A, "X", Enter -> "Xab"; then Up, Enter -> "Xab" again
    printf 'ab\001X\n\033[A\n/save %s\n/quit\n' "$work/t4.json" |
        script -qfec "'$bin' chat -m '$m' --temperature 0 -n 2 --threads 1" /dev/null >"$work/tty" 2>&1
    check "chat on a terminal exits 0" test $? -eq 0
    check "libedit: Ctrl-A edits the line, Up recalls it ($(head -c 300 "$work/t4.json" 2>/dev/null))" /usr/bin/python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))["messages"]
assert [x["content"] for x in m if x["role"] == "user"] == ["Xab", "Xab"], m' "$work/t4.json"
else
    ok "terminal editing (skipped: no script(1))"
fi
finish
