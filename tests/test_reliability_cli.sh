#!/usr/bin/env bash
# test_reliability_cli.sh: small inputs that used to cost a lot or crash
# (issue: reliability), through the cllm program: a model claiming a 2^20
# context, a KV cache larger than the machine, a model file truncated or
# rewritten while it is mapped.
set -u
bin=${CLLM_BUILD:-build}/cllm
py=/usr/bin/python3
work=$(mktemp -d /tmp/cllm-test-reliability.XXXXXX)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/lib.sh"
for i in $(seq 1 40); do echo "the cat sat on the mat. the dog ran to the log."; done > "$work/text.txt"

# Peak RSS (KiB) of a command, through getrusage of the child (works under ASan too).
peak_kib() { $py -c '
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if r.returncode == 0 else -r.returncode)' "$@"; }

# ---- a 146 KB model that claims a 2^20-token context ----
"$bin" pretrain --data "$work/text.txt" --preset tiny-llama --context 1048576 --seq 8 --batch 2 --steps 1 \
    --eval-every 0 --no-progress --threads 1 --out "$work/big" >/dev/null 2>&1
check "pretrain a tiny model claiming a 2^20 context" test -f "$work/big/model.gguf"
kib=$(peak_kib "$bin" generate -m "$work/big/model.gguf" -p "the cat" -n 4 --threads 1)
# before: 2.3 GiB (a KV cache for every claimed position); now a 4096-token default
check "generate on it peaks under 1 GiB (got ${kib} KiB)" test "$kib" -gt 0 -a "$kib" -lt 1048576
"$bin" generate -m "$work/big/model.gguf" -p "the cat" -n 4 --threads 1 >/dev/null 2>"$work/err"
check "generate says it uses a 4096-token context" grep -q "using a 4096-token context (the model allows 1048576" "$work/err"

# ---- a KV cache larger than the machine is refused before allocating ----
"$bin" pretrain --data "$work/text.txt" --preset tiny-llama --n-layer 8 --n-embd 64 --n-head 4 --n-kv-head 4 \
    --context 1048576 --seq 8 --batch 2 --steps 1 --eval-every 0 --no-progress --threads 1 --out "$work/wide" \
    >/dev/null 2>&1
"$bin" serve -m "$work/wide/model.gguf" --ctx 1048576 --parallel 64 --port 1 >"$work/out" 2>"$work/err"
check "serve --ctx 2^20 --parallel 64 (256 GiB of cache) exits 2" test $? -eq 2
check "and says what to lower" grep -q "KV cache for 65 slots needs .* GiB, more than 3/4 of this machine's" "$work/err"

# ---- no lock file is left behind by a run that ends or fails to start ----
mkdir -p "$work/run"
"$bin" pretrain --data "$work/missing.txt" --out "$work/run" --no-progress >/dev/null 2>&1
check "pretrain on missing data exits 1" test $? -eq 1
check "and leaves no lock file in the existing run directory" test ! -e "$work/run/lock"
check "a finished run leaves no lock file" test ! -e "$work/big/lock"

# ---- after a disk-full stop, --resume needs room for one checkpoint ----
# A run whose last save did not happen (ckpt 4 removed, as a full disk leaves
# it) is copied into a tmpfs with room for one more checkpoint but not for
# --keep 3 + 1 of them: --resume must finish, equal to the uninterrupted run
# (it was refused: the check asked for keep+1 checkpoints' worth of space).
wide="--preset tiny-llama --n-layer 2 --n-embd 48 --n-head 4 --n-kv-head 4 --ffn-hidden 96 --seq 8 --batch 2"
run4() { "$bin" pretrain --data "$work/text.txt" $wide --steps 4 --save-every 1 --keep 3 --eval-every 0 --no-progress \
    --threads 1 "$@"; }
run4 --out "$work/full" >/dev/null 2>&1
cp -r "$work/full" "$work/cut"
rm -f "$work/cut"/ckpt-0000000004.* "$work/cut/model.gguf"
if [ "$(id -u)" = 0 ] && mkdir -p "$work/mnt" && mount -t tmpfs -o size=3584k tmpfs "$work/mnt" 2>/dev/null; then
    cp -r "$work/cut" "$work/mnt/r"
    run4 --out "$work/mnt/r" --resume >/dev/null 2>"$work/full.err"
    rc=$?
    check "--resume with room for one ~0.85 MB checkpoint, not 4, exits 0 ($(head -c 150 "$work/full.err"))" test $rc -eq 0
    check "and gives the uninterrupted run's model" cmp -s "$work/full/model.gguf" "$work/mnt/r/model.gguf"
    umount "$work/mnt"
else
    bad "disk-full resume: mounting a tmpfs needs root (run the suite as root, as CI does)"
fi

# ---- bytes from inputs never drive the terminal ----
"$bin" generate -m "$work/no$(printf '\033')[31mred$(printf '\377').gguf" -p x >/dev/null 2>"$work/err"
check "a missing model exits 1" test $? -eq 1
check "the escape byte and invalid UTF-8 in the path are shown as \\xNN" grep -qF 'no\x1b[31mred\xff.gguf' "$work/err"
check "no raw escape byte reaches stderr" bash -c "! grep -q \$'\\x1b' '$work/err'"

# ---- command line: usage errors exit 2 with a --help hint, on every command ----
# (RELIABILITY.md "Command line"; docs/RELIABILITY_COVERAGE.md.) $work/big is the
# tiny model trained above.
m="$work/big/model.gguf"
usage2() { # NAME ARGS...: exit 2, and stderr names the --help of the command
    "$bin" "$@" >/dev/null 2>"$work/uerr" </dev/null
    local rc=$? cmd=$1
    check "$cmd: exit 2 with a usage hint (rc $rc: $(head -c 120 "$work/uerr"))" \
        '[ $rc -eq 2 ] && grep -q "Run .cllm $cmd --help" "$work/uerr"'
}
for c in info tokenize pretrain sft reward dpo ppo grpo quantize generate chat serve eval perplexity attention report; do
    usage2 "$c" --frobnicate 1
done
for v in abc "" 99999999999999999999 1e400 5x -1 0; do
    usage2 generate -m "$m" -p x -n 1 --ctx "$v"
    usage2 serve -m "$m" --port 1 --parallel "$v"
    usage2 dpo -m "$m" --data "$work/text.txt" --out "$work/u" --steps "$v"
    usage2 perplexity -m "$m" --ctx "$v" "$work/text.txt"
    usage2 info --preset tiny-llama -b "$v"
done
for v in nan inf -inf abc "" 1e400; do
    usage2 generate -m "$m" -p x -n 1 --top-p "$v"
    usage2 generate -m "$m" -p x -n 1 --temperature "$v"
    usage2 sft -m "$m" --data "$work/text.txt" --out "$work/u" --lr "$v"
done
usage2 generate -m "$m" -p x --top-p 2
usage2 generate -m "$m" -p x --threads 0
usage2 sft -m "$m" --data "$work/text.txt" --out "$work/u" --lr -1
usage2 generate -m "$m" -p x --top-p
usage2 serve -m "$m" --parallel
usage2 eval -m
check "no run directory from refused starts" test ! -e "$work/u"

# ---- a FIFO, /dev/zero, a directory or a missing file as the model: exit 1, named ----
mkfifo "$work/fifo"
for p in "$work/fifo" /dev/zero "$work" "$work/missing.gguf"; do
    for c in generate info quantize perplexity eval serve; do
        case $c in
        generate) a=(generate -m "$p" -p x) ;;
        info) a=(info -m "$p") ;;
        quantize) a=(quantize "$p" "$work/q.gguf" q8_0) ;;
        perplexity) a=(perplexity -m "$p" "$work/text.txt") ;;
        eval) a=(eval -m "$p" --text "$work/text.txt") ;;
        serve) a=(serve -m "$p" --port 1) ;;
        esac
        timeout 20 "$bin" "${a[@]}" >/dev/null 2>"$work/perr" </dev/null
        rc=$?
        check "$c -m ${p##*/}: exit 1 naming the file (rc $rc: $(head -c 100 "$work/perr"))" \
            '[ $rc -eq 1 ] && grep -qF "$p" "$work/perr"'
    done
done

# ---- an output directory that does not exist: fail before any work ----
# quantize used to convert every tensor, then fail creating its temp file.
"$bin" quantize "$m" "$work/nodir/q.gguf" q8_0 >/dev/null 2>"$work/qerr"
check "quantize into a missing directory exits 1" test $? -eq 1
check "and names the directory before converting" grep -q "nodir: output directory does not exist" "$work/qerr"
check "and creates nothing" test ! -e "$work/nodir"

# ---- SIGINT: finish the step, save, exit 0 (as SIGTERM, tested elsewhere) ----
"$bin" pretrain --data "$work/text.txt" $wide --steps 100000 --save-every 1000000 --eval-every 0 --no-progress \
    --threads 1 --out "$work/int" >/dev/null 2>"$work/int.err" &
ipid=$!
for _ in $(seq 1 200); do [ -s "$work/int/train.csv" ] && [ "$(wc -l <"$work/int/train.csv")" -gt 3 ] && break; sleep 0.05; done
kill -INT $ipid
wait $ipid
check "pretrain stopped by SIGINT exits 0" test $? -eq 0
check "and saved a complete checkpoint" bash -c "ls '$work/int' | grep -q '\.done$'"

# ---- a read-only output directory fails before any work, even for root ----
if [ "$(id -u)" = 0 ] && mkdir -p "$work/ro" && mount -t tmpfs -o ro,size=1m tmpfs "$work/ro" 2>/dev/null; then
    "$bin" pretrain --data "$work/text.txt" $wide --steps 2 --out "$work/ro/run" --no-progress >/dev/null 2>"$work/ro.err"
    check "pretrain into a read-only file system exits 1 naming it" bash -c "test $? -eq 1 && grep -q '$work/ro' '$work/ro.err'"
    echo '{"prompt": "the cat", "completion": " sat"}' >"$work/s.jsonl"
    "$bin" sft --model "$work/full/model.gguf" --data "$work/s.jsonl" --seq 8 --out "$work/ro/run" >/dev/null 2>"$work/ro.err"
    check "sft into a read-only file system exits 1 naming it" bash -c "test $? -eq 1 && grep -q '$work/ro' '$work/ro.err'"
    "$bin" dpo -m "$work/full/model.gguf" --data "$work/s.jsonl" --out "$work/ro/run" >/dev/null 2>"$work/ro.err"
    check "dpo into a read-only file system exits 1 before reading its data" \
        bash -c "test $? -eq 1 && grep -q '$work/ro' '$work/ro.err'"
    "$bin" generate -m "$work/full/model.gguf" -p x -n 1 >/dev/null 2>&1
    check "reading from the same tree still works" test $? -eq 0
    umount "$work/ro"
else
    bad "read-only output: mounting a read-only tmpfs needs root (run the suite as root, as CI does)"
fi

finish
