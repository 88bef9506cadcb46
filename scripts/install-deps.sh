#!/usr/bin/env bash
# Installs what cllm needs on Debian 12, as root, skipping what is present.
# Debian packages: compiler, oneDNN (GEMM), PCRE2 (tokenizer regexes), cJSON,
# libmicrohttpd (server), PyTorch + NumPy (reference tests, benchmarks), Jinja2 (chat-template reference) and
# OpenBLAS (without it Debian's torch runs the netlib reference BLAS, ~25x slower).
# clang with its libFuzzer and OpenMP runtimes (make fuzz, the last part of make check).
# Open MPI (libopenmpi-dev, openmpi-bin): data-parallel training, mpirun -np N cllm pretrain (docs/MPI.md).
# npm packages (tiktoken etc. for exactness tests) from tests/js/package.json.
# Chromium and fonts-noto-cjk (the CJK font the chat page asks for): tests/test_chat_page.sh.
# curl (the README tour's and test_archs_cli.sh's server requests) and procps
# (pgrep in test_mpi.sh): not in a minimal Debian 12 image.
#
# `install-deps.sh --build` (what `make demo` runs) installs only what building
# and running cllm needs: the compiler, pkg-config, oneDNN, PCRE2, cJSON,
# libmicrohttpd and libedit (line editing in `cllm chat`); no Python, no
# browser, no npm. Without --build (`make deps`, `make check`) the tests' peers
# come too.
set -euo pipefail
cd "$(dirname "$0")/.."
build_only=0
[ "${1:-}" = --build ] && build_only=1
packages=(build-essential pkg-config libdnnl-dev libpcre2-dev libcjson-dev libmicrohttpd-dev libedit-dev)
if [ $build_only = 0 ]; then
    packages+=(python3 python3-torch python3-numpy python3-jinja2 libopenblas0-openmp chromium fonts-noto-cjk
               clang libclang-rt-14-dev libomp-dev libopenmpi-dev openmpi-bin curl procps)
    # Node.js may come from another source than Debian (whose npm package then
    # conflicts with it): only ask apt for it when the commands are missing.
    command -v node >/dev/null 2>&1 || packages+=(nodejs)
    command -v npm >/dev/null 2>&1 || packages+=(npm)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}"
fi
[ $build_only = 0 ] || exit 0
# npm dependencies for the JavaScript-side tests (exactness peers, API clients),
# reinstalled whenever package-lock.json changed since the last install.
for dir in tests/js bench/js; do
    [ -f "$dir/package.json" ] || continue
    if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.cllm-installed-lock" 2>/dev/null; then
        echo "install-deps: npm ci in $dir"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.cllm-installed-lock)
    fi
done
