#!/usr/bin/python3
"""nanogpt_recipe.py: the peer for cllm's quality check (bench/quality_shakespeare.sh).

Trains nanoGPT's CPU recipe for tinyshakespeare in PyTorch (Debian
python3-torch), written here from the recipe's description: a GPT with 4
layers, 4 heads, 128 wide, context 64, no biases, tied embeddings, exact
(erf) GELU as nanoGPT's nn.GELU, init N(0, 0.02) with the residual
projections at 0.02/sqrt(2L); batch 12, 2000 iterations, AdamW (lr 1e-3,
betas 0.9/0.99, weight decay 0.1 on 2-D tensors), warmup 100 then cosine to
1e-4, clipping at 1.0, no dropout; byte-level vocabulary (the file is ASCII,
so bytes are nanoGPT's characters). Validation: the last 10% of the file,
scored on --eval-windows windows at stride 64 from its start, wrapping
around (exactly the windows `cllm pretrain --eval-batches N` scores when
windows = 12 N; default 2400 = 200 batches), so the two numbers are
comparable to the last digit of their noise.

Prints one JSON object.
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, C, NH, gelu):
        super().__init__()
        self.NH, self.gelu = NH, gelu
        self.ln1 = nn.LayerNorm(C, bias=False) if "bias" in nn.LayerNorm.__init__.__code__.co_varnames else nn.LayerNorm(C)
        self.qkv = nn.Linear(C, 3 * C, bias=False)
        self.proj = nn.Linear(C, C, bias=False)
        self.ln2 = nn.LayerNorm(C)
        self.fc = nn.Linear(C, 4 * C, bias=False)
        self.fc_proj = nn.Linear(4 * C, C, bias=False)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.NH, C // self.NH).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // self.NH)
        att = att.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf")).softmax(-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(B, T, C))
        return x + self.fc_proj(F.gelu(self.fc(self.ln2(x)), approximate=self.gelu))


class GPT(nn.Module):
    def __init__(self, L, NH, C, V, ctx, gelu):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(ctx, C)
        self.blocks = nn.ModuleList([Block(C, NH, gelu) for _ in range(L)])
        self.ln_f = nn.LayerNorm(C)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * L) if name.endswith(("proj.weight",)) else 0.02
                nn.init.normal_(p, std=std)
        for m in self.modules():  # nanoGPT's LayerNorms have no bias (bias=False)
            if isinstance(m, nn.LayerNorm) and m.bias is not None:
                m.bias.requires_grad_(False)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for b in self.blocks:
            x = b(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--eval-windows", type=int, default=2400)
    ap.add_argument("--gelu", choices=["none", "tanh"], default="none", help="none = exact erf GELU (nanoGPT)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    data = torch.tensor(list(open(a.data, "rb").read()), dtype=torch.long)
    n = int(len(data) * 0.9)
    train, val = data[:n], data[n:]
    L, NH, C, T, B = 4, 4, 128, 64, 12
    model = GPT(L, NH, C, 256, T, a.gelu)
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    other = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.99))
    lr, min_lr, warmup = 1e-3, 1e-4, 100
    t0 = time.time()
    for it in range(a.iters):
        if it < warmup:
            cur = lr * (it + 1) / (warmup + 1)
        else:
            ratio = (it - warmup) / (a.iters - warmup)
            cur = min_lr + 0.5 * (1 + math.cos(math.pi * ratio)) * (lr - min_lr)
        for g in opt.param_groups:
            g["lr"] = cur
        ix = torch.randint(len(train) - T - 1, (B,))
        x = torch.stack([train[i:i + T] for i in ix])
        y = torch.stack([train[i + 1:i + T + 1] for i in ix])
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    train_s = time.time() - t0
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        n_windows = (len(val) - 1) // T
        starts = [(i % n_windows) * T for i in range(a.eval_windows)]
        for k in range(0, len(starts), 64):
            chunk = starts[k:k + 64]
            x = torch.stack([val[i:i + T] for i in chunk])
            y = torch.stack([val[i + 1:i + T + 1] for i in chunk])
            total += model(x, y).item() * len(chunk)
            count += len(chunk)
    print(json.dumps({"peer": "pytorch-nanogpt-recipe", "seed": a.seed, "gelu": "erf" if a.gelu == "none" else "tanh",
                      "final_train_loss": round(loss.item(), 4), "val_loss": round(total / count, 4),
                      "val_windows": count, "train_seconds": round(train_s, 1)}))


if __name__ == "__main__":
    main()
