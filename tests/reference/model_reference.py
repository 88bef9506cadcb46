#!/usr/bin/python3
"""model_reference.py: the cllm transformer written independently in PyTorch,
from the math, for tests/test_model_parity.c.

Usage: /usr/bin/python3 model_reference.py DIR

DIR holds what the C test wrote:
  config.txt   key=value lines (model config + batch + AdamW hyperparameters)
  tensors.txt  one line per parameter: name ndim rows cols decay (table order)
  weights.bin  float32 little-endian, the tensors concatenated in that order
  tokens.bin, targets.bin   int32 [B*T] (targets -1 = no loss)
For each of float64, float32 and float32 under torch.autocast("cpu",
dtype=torch.bfloat16) (PyTorch's mixed precision, the yardstick for cllm's
--precision bf16) it writes DIR/out_<float64|float32|autocast_bf16>.bin, float32:
  logits [B*T*V], loss [1], every gradient in table order, the losses of
  `steps` AdamW steps (torch.optim.AdamW, decay on the tensors flagged, global
  grad-norm clipping by torch.nn.utils.clip_grad_norm_), then every parameter
  after those steps in table order.
It never reads cllm's C code; conventions (fused qkv rows q,k,v; SwiGLU gate
rows then up rows; RoPE on adjacent pairs, or halves with rope_neox=1;
linear and Llama-3.1 RoPE scaling) come from include/cllm/*.h and, for the
Llama 3.1 divisors, Meta's published formula (written out below).
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F


def read_config(d):
    cfg = {}
    with open(os.path.join(d, "config.txt")) as f:
        for line in f:
            line = line.strip()
            if line:
                k, v = line.split("=", 1)
                cfg[k] = v
    return cfg


def sinusoidal(T, C, dtype):
    pos = torch.arange(T, dtype=torch.float64)[:, None]
    i = torch.arange(0, C, 2, dtype=torch.float64)[None, :]
    ang = pos / torch.pow(10000.0, i / C)
    tab = torch.zeros(T, C, dtype=torch.float64)
    tab[:, 0::2] = torch.sin(ang)
    tab[:, 1::2] = torch.cos(ang)
    return tab.to(dtype)


def rope_inv_freq(cfg, HS):
    """Per-pair angular frequency, float64: theta^(-2i/HS), then the scaling."""
    theta = float(cfg["rope_theta"])
    inv = [theta ** (-2.0 * i / HS) for i in range(HS // 2)]
    kind = cfg.get("rope_scaling", "none")
    if kind == "linear":  # positions divided by the factor
        inv = [f / float(cfg["rope_factor"]) for f in inv]
    elif kind == "llama3":  # Llama 3.1: long wavelengths slowed by `factor`, a smooth ramp between
        factor, lo, hi = float(cfg["rope_factor"]), float(cfg["rope_low_freq_factor"]), float(cfg["rope_high_freq_factor"])
        orig = float(cfg["rope_orig_context"])
        out = []
        for f in inv:
            wavelen = 2 * math.pi / f
            if wavelen < orig / hi:
                out.append(f)
            elif wavelen > orig / lo:
                out.append(f / factor)
            else:
                smooth = (orig / wavelen - lo) / (hi - lo)
                out.append((1 - smooth) * f / factor + smooth * f)
        inv = out
    return torch.tensor(inv, dtype=torch.float64)


def rope(x, cfg):
    """x [B, H, T, HS]; rotate pair i (adjacent (x[2i], x[2i+1]), or with
    rope_neox (x[i], x[i+HS/2]) as HF's rotate_half) by t * inv_freq[i]."""
    B, H, T, HS = x.shape
    inv = rope_inv_freq(cfg, HS)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]  # [T, HS/2]
    cos, sin = torch.cos(ang).to(x.dtype), torch.sin(ang).to(x.dtype)
    if cfg.get("rope_neox", "0") == "1":
        x0, x1 = x[..., :HS // 2], x[..., HS // 2:]
        return torch.cat([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1)
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x0 * cos - x1 * sin
    out[..., 1::2] = x0 * sin + x1 * cos
    return out


def norm(cfg, x, w, b):
    eps = float(cfg["norm_eps"])
    if cfg["norm"] == "layernorm":
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        y = (x - mu) / torch.sqrt(var + eps) * w
        return y + b if b is not None else y
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def linear(x, w, b):
    y = x @ w.t()
    return y + b if b is not None else y


def forward(cfg, P, tokens, targets):
    B, T = tokens.shape
    C, NH, NKV = int(cfg["n_embd"]), int(cfg["n_head"]), int(cfg["n_kv_head"])
    HS, H, L = C // NH, int(cfg["ffn_hidden"]), int(cfg["n_layer"])
    g = P.get
    x = P["token_embd.weight"][tokens]
    if cfg["pos"] == "learned":
        x = x + P["position_embd.weight"][:T]
    elif cfg["pos"] == "sinusoidal":
        x = x + sinusoidal(T, C, x.dtype)
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    W = int(cfg.get("sliding_window", "0"))
    if W > 0:  # query t sees keys t2 with t - t2 < W (Mistral's sliding window)
        mask &= torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=-(W - 1))
    for l in range(L):
        p = "blk.%d." % l
        h = norm(cfg, x, P[p + "attn_norm.weight"], g(p + "attn_norm.bias"))
        qkv = linear(h, P[p + "attn_qkv.weight"], g(p + "attn_qkv.bias"))
        q, k, v = qkv.split([NH * HS, NKV * HS, NKV * HS], dim=-1)
        q = q.view(B, T, NH, HS).transpose(1, 2)
        k = k.view(B, T, NKV, HS).transpose(1, 2)
        v = v.view(B, T, NKV, HS).transpose(1, 2)
        if cfg["pos"] == "rope":
            q, k = rope(q, cfg), rope(k, cfg)
        k = k.repeat_interleave(NH // NKV, dim=1)  # query head h uses kv head h // (NH/NKV)
        v = v.repeat_interleave(NH // NKV, dim=1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(HS)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + linear(y, P[p + "attn_output.weight"], g(p + "attn_output.bias"))
        h = norm(cfg, x, P[p + "ffn_norm.weight"], g(p + "ffn_norm.bias"))
        if cfg["mlp"] == "swiglu":
            u = linear(h, P[p + "ffn_gate_up.weight"], g(p + "ffn_gate_up.bias"))
            gate, up = u.split([H, H], dim=-1)
            a = F.silu(gate) * up
        else:
            a = F.gelu(linear(h, P[p + "ffn_up.weight"], g(p + "ffn_up.bias")), approximate="tanh")
        x = x + linear(a, P[p + "ffn_down.weight"], g(p + "ffn_down.bias"))
    x = norm(cfg, x, P["output_norm.weight"], g("output_norm.bias"))
    W = P["token_embd.weight"] if cfg["tied_embeddings"] == "1" else P["output.weight"]
    logits = x @ W.t()
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
    return logits, loss


def run(d, cfg, table, flat, tokens, targets, dtype, autocast=False):
    P, off = {}, 0
    for name, ndim, rows, cols, decay in table:
        n = rows * cols
        shape = (rows,) if ndim == 1 else (rows, cols)
        t = torch.tensor(flat[off:off + n], dtype=torch.float64).to(dtype).view(shape).clone()
        P[name] = t.requires_grad_(True)
        off += n
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        logits, loss = forward(cfg, P, tokens, targets)
    loss.backward()
    out = [logits.detach().reshape(-1), loss.detach().reshape(1)]
    out += [P[name].grad.detach().reshape(-1) for name, *_ in table]
    # AdamW steps on the same batch, starting again from the initial weights
    for name, *_ in table:
        P[name].grad = None
    decay = [P[t[0]] for t in table if t[4]]
    nodecay = [P[t[0]] for t in table if not t[4]]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": float(cfg["weight_decay"])},
         {"params": nodecay, "weight_decay": 0.0}],
        lr=float(cfg["lr"]), betas=(float(cfg["beta1"]), float(cfg["beta2"])), eps=float(cfg["eps"]))
    params = [P[n] for n, *_ in table]
    losses = []
    for _ in range(int(cfg["steps"])):
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            _, l = forward(cfg, P, tokens, targets)
        losses.append(l.item())
        l.backward()
        if float(cfg["clip"]) > 0:
            torch.nn.utils.clip_grad_norm_(params, float(cfg["clip"]))
        opt.step()
    out.append(torch.tensor(losses, dtype=torch.float64))
    out += [P[name].detach().reshape(-1) for name, *_ in table]
    arr = torch.cat([o.to(torch.float64) for o in out]).numpy().astype("<f4")
    name = "autocast_bf16" if autocast else str(dtype).replace("torch.", "")
    arr.tofile(os.path.join(d, "out_%s.bin" % name))


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: model_reference.py DIR\n")
        return 2
    d = sys.argv[1]
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cfg = read_config(d)
    table = []
    with open(os.path.join(d, "tensors.txt")) as f:
        for line in f:
            name, ndim, rows, cols, decay = line.split()
            table.append((name, int(ndim), int(rows), int(cols), int(decay)))
    flat = np.fromfile(os.path.join(d, "weights.bin"), dtype="<f4").astype(np.float64)
    B, T = int(cfg["B"]), int(cfg["T"])
    tokens = torch.from_numpy(np.fromfile(os.path.join(d, "tokens.bin"), dtype="<i4").astype(np.int64)).view(B, T)
    targets = torch.from_numpy(np.fromfile(os.path.join(d, "targets.bin"), dtype="<i4").astype(np.int64)).view(B, T)
    if flat.size != sum(t[2] * t[3] for t in table):
        sys.stderr.write("weights.bin size does not match tensors.txt\n")
        return 1
    for dtype in (torch.float64, torch.float32):
        run(d, cfg, table, flat, tokens, targets, dtype)
    run(d, cfg, table, flat, tokens, targets, torch.float32, autocast=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
