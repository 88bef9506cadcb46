#!/usr/bin/env bash
# test_layout.sh: the code's layout rules that a reader relies on
# (docs/ARCHITECTURE.md, "Layout"): no include cycle between folders (a
# folder of src/ and its include/cllm/<folder>/ headers are one node; a
# header that includes another group's header is an edge like a .c file's
# include), and public headers live in a folder named after their module.
set -u
cd "$(dirname "$0")/.."
. tests/lib.sh
/usr/bin/python3 - >"${TMPDIR:-/tmp}/cllm-layout.$$" 2>&1 <<'PY'
import collections, os, re, sys
edges, why = collections.defaultdict(set), {}
def scan(path, group):
    text = open(path, encoding="utf-8").read()
    for m in re.finditer(r'#include "(?:cllm/([a-z]+)/[a-z_0-9]+\.h|\.\./([a-z]+)/[a-z_0-9]+\.h)"', text):
        g = m.group(1) or m.group(2)
        if g != group:
            edges[group].add(g)
            why.setdefault((group, g), path)
for d in os.listdir("src"):
    for root, _, files in os.walk("src/" + d):
        for f in files:
            if f.endswith((".c", ".h")):
                scan(os.path.join(root, f), d)
for d in os.listdir("include/cllm"):
    if os.path.isdir("include/cllm/" + d):
        for f in os.listdir("include/cllm/" + d):
            scan("include/cllm/%s/%s" % (d, f), d)
def reach(a):
    seen, todo = set(), [a]
    while todo:
        for y in edges.get(todo.pop(), ()):
            if y not in seen:
                seen.add(y)
                todo.append(y)
    return seen
cycles = sorted((a, b) for a in edges for b in edges[a] if a in reach(b))
for a, b in cycles:
    print("cycle edge %s -> %s (%s)" % (a, b, why[(a, b)]))
flat = [f for f in os.listdir("include/cllm") if f.endswith(".h") and f != "cllm.h"]
for f in flat:
    print("flat public header include/cllm/%s (put it in its module's folder)" % f)
groups = {d for d in os.listdir("include/cllm") if os.path.isdir("include/cllm/" + d)}
for g in sorted(groups - set(os.listdir("src"))):
    print("header folder include/cllm/%s names no src/ module" % g)
sys.exit(1 if cycles or flat or groups - set(os.listdir("src")) else 0)
PY
rc=$?
cat "${TMPDIR:-/tmp}/cllm-layout.$$"
rm -f "${TMPDIR:-/tmp}/cllm-layout.$$"
check "no include cycle between folders; every public header in its module's folder" test $rc -eq 0
finish
