#!/usr/bin/python3
"""PyTorch CPU peer for bench/bench_train.sh: times training steps of a
GPT-2-shaped model (learned positions, LayerNorm, GELU, biases, tied
embeddings) with AdamW, in fp32 or under torch.autocast("cpu",
dtype=torch.bfloat16) (--precision bf16: PyTorch's mixed precision, fp32
weights and optimizer), and prints one JSON object.

Run with Debian's python3 (it has torch 1.13):
  /usr/bin/python3 bench/torch_train.py --layers 12 --heads 12 --embd 768 \
      --vocab 50257 --ctx 1024 --batch 4 --seq 64 --steps 10 --threads 2
"""
import argparse
import ctypes
import ctypes.util
import json
import math
import os
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, C, NH):
        super().__init__()
        self.NH = NH
        self.ln1 = nn.LayerNorm(C)
        self.qkv = nn.Linear(C, 3 * C)
        self.proj = nn.Linear(C, C)
        self.ln2 = nn.LayerNorm(C)
        self.fc = nn.Linear(C, 4 * C)
        self.fc_proj = nn.Linear(4 * C, C)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q = q.view(B, T, self.NH, C // self.NH).transpose(1, 2)
        k = k.view(B, T, self.NH, C // self.NH).transpose(1, 2)
        v = v.view(B, T, self.NH, C // self.NH).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // self.NH)
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.proj(y)
        return x + self.fc_proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, L, NH, C, V, ctx):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(ctx, C)
        self.blocks = nn.ModuleList([Block(C, NH) for _ in range(L)])
        self.ln_f = nn.LayerNorm(C)
        for p in self.parameters():  # GPT-2 style init, so the loss starts near ln(V)
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for b in self.blocks:
            x = b(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def blas_core():
    """The BLAS torch's fp32 matmuls go to (Debian torch links the system
    libblas.so.3; MKL is absent) and the OpenBLAS kernel family it chose."""
    try:
        lib = ctypes.CDLL("libblas.so.3")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return "openblas " + lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return "not openblas"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    for name, default in [("layers", 12), ("heads", 12), ("embd", 768), ("vocab", 50257),
                          ("ctx", 1024), ("batch", 4), ("seq", 64), ("steps", 10),
                          ("warmup", 2), ("threads", 2)]:
        ap.add_argument("--" + name, type=int, default=default)
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    a = ap.parse_args()
    bf16 = a.precision == "bf16"
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = GPT(a.layers, a.heads, a.embd, a.vocab, a.ctx)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    g = torch.Generator().manual_seed(1)
    idx = torch.randint(0, a.vocab, (a.batch, a.seq), generator=g)
    tgt = torch.randint(0, a.vocab, (a.batch, a.seq), generator=g)
    times = []
    for step in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(idx, tgt)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if step >= a.warmup:
            times.append(dt)
    times.sort()
    median = times[len(times) // 2]
    tokens = a.batch * a.seq
    print(json.dumps({
        "peer": "pytorch",
        "torch_version": torch.__version__,
        "blas": blas_core(),
        "env": {k: os.environ[k] for k in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "OPENBLAS_CORETYPE",
                                           "ATEN_CPU_CAPABILITY") if k in os.environ},
        "threads": a.threads,
        "precision": a.precision,
        "mkldnn": torch.backends.mkldnn.is_available(),
        "params": n_params,
        "ms_per_step_median": round(median * 1e3, 2),
        "ms_per_step_min": round(times[0] * 1e3, 2),
        "tokens_per_s": round(tokens / median, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "final_loss": round(loss.item(), 4),
    }))


if __name__ == "__main__":
    main()
