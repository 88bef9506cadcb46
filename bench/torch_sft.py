#!/usr/bin/python3
"""PyTorch CPU peer for bench/bench_sft.sh: times SFT steps of a Llama-shaped
model (RMSNorm, RoPE, SwiGLU, grouped-query attention, no biases, tied
embeddings) on packed rows: attention kept inside each example
(block-diagonal causal mask from segment ids) and the cross-entropy only on
target positions (ignore_index -1, mean over them), AdamW, fp32. The same
step shape as `cllm sft --pack` (B rows of T positions). Prints one JSON
object: median ms per step over the steps after the first, tokens/s.

Run with Debian's python3 (it has torch 1.13); the shape comes from
`cllm info --json` in bench_sft.sh:
  /usr/bin/python3 bench/torch_sft.py --layers 12 --heads 8 --kv-heads 4 \
      --embd 256 --ffn 688 --vocab 256 --batch 4 --seq 128 --steps 6 --threads 2
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, C, eps):
        super().__init__()
        self.w = nn.Parameter(torch.ones(C))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.w


def rope(x, cos, sin):
    # x [B, H, T, HS]; rotate pairs (even, odd)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


class Block(nn.Module):
    def __init__(self, C, NH, NKV, H, eps):
        super().__init__()
        self.NH, self.NKV, self.HS = NH, NKV, C // NH
        self.n1 = RMSNorm(C, eps)
        self.qkv = nn.Linear(C, (NH + 2 * NKV) * self.HS, bias=False)
        self.o = nn.Linear(C, C, bias=False)
        self.n2 = RMSNorm(C, eps)
        self.gate = nn.Linear(C, H, bias=False)
        self.up = nn.Linear(C, H, bias=False)
        self.down = nn.Linear(H, C, bias=False)

    def forward(self, x, mask, cos, sin):
        B, T, C = x.shape
        HS, NH, NKV = self.HS, self.NH, self.NKV
        q, k, v = self.qkv(self.n1(x)).split([NH * HS, NKV * HS, NKV * HS], dim=2)
        q = rope(q.view(B, T, NH, HS).transpose(1, 2), cos, sin)
        k = rope(k.view(B, T, NKV, HS).transpose(1, 2), cos, sin)
        v = v.view(B, T, NKV, HS).transpose(1, 2)
        k = k.repeat_interleave(NH // NKV, dim=1)
        v = v.repeat_interleave(NH // NKV, dim=1)
        att = (q @ k.transpose(-2, -1)) * (HS ** -0.5)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.o(y)
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Llama(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.emb = nn.Embedding(a.vocab, a.embd)
        nn.init.normal_(self.emb.weight, std=0.02)
        self.blocks = nn.ModuleList(Block(a.embd, a.heads, a.kv_heads, a.ffn, 1e-5) for _ in range(a.layers))
        self.norm = RMSNorm(a.embd, 1e-5)
        HS = a.embd // a.heads
        inv = 1.0 / (10000.0 ** (torch.arange(0, HS, 2).float() / HS))
        self.register_buffer("inv", inv)

    def forward(self, idx, pos, seg, targets):
        B, T = idx.shape
        ang = pos.float()[:, None, :, None] * self.inv  # [B, 1, T, HS/2]
        cos, sin = ang.cos(), ang.sin()
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        mask = (seg[:, :, None] == seg[:, None, :]) & causal  # [B, T, T]
        mask = mask[:, None]
        x = self.emb(idx)
        for b in self.blocks:
            x = b(x, mask, cos, sin)
        logits = self.norm(x) @ self.emb.weight.t()
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    for name, default in [("layers", 12), ("heads", 8), ("kv-heads", 4), ("embd", 256), ("ffn", 688),
                          ("vocab", 256), ("batch", 4), ("seq", 128), ("steps", 6), ("threads", 2),
                          ("example", 100), ("seed", 1)]:
        ap.add_argument("--" + name, type=int, default=default)
    ap.add_argument("--target-frac", type=float, default=0.17, help="fraction of positions with a target")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = Llama(a)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.0)
    B, T = a.batch, a.seq
    idx = torch.randint(0, a.vocab, (B, T))
    # packed rows: examples of `example` positions, positions restart in each
    seg = torch.arange(T)[None, :].expand(B, T) // a.example
    pos = torch.arange(T)[None, :].expand(B, T) % a.example
    targets = torch.randint(0, a.vocab, (B, T))
    targets[torch.rand(B, T) >= a.target_frac] = -1
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(idx, pos, seg, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append(time.perf_counter() - t0)
    steady = times[1:] if len(times) > 1 else times
    med = statistics.median(steady)
    print(json.dumps({"peer": "pytorch", "torch_version": torch.__version__, "threads": a.threads,
                      "params": sum(p.numel() for p in model.parameters()), "batch": B, "seq": T,
                      "ms_per_step_median": round(1e3 * med, 2), "tokens_per_s": round(B * T / med, 1),
                      "final_loss": round(loss.item(), 4),
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


if __name__ == "__main__":
    main()
