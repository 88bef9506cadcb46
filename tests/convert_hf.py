#!/usr/bin/python3
"""convert_hf.py: tiny Hugging Face model folders for `cllm convert`, and a
PyTorch forward of their weights in Hugging Face's own conventions, for
tests/test_convert.sh and tests/interop/convert_llama.sh.

  make DIR --arch gpt2|llama|qwen2|mistral [--dtype f32|bf16|f16] [--shards N]
           [--tokenizer json|model] [--tied 0|1] [--mask 1]
           [--rope llama3] [--pad N] [--size C,L,NH,NKV,F] [--seed S] [--break KIND]
      writes config.json, model.safetensors (or N shards + index),
      tokenizer.json (byte-level BPE) or tokenizer.model (SentencePiece BPE
      protobuf), tokenizer_config.json. --break writes a defective folder:
      truncated, overlap, shape, missing-shard, unknown-arch, dtype,
      config-shape, hidden-act.
  logits DIR IDS...
      prints the reference log-probabilities after the last id as JSON.
  vs DIR JSON N_GREEDY ID...
      compares another runtime's {"logits": [[V] per position], "greedy":
      [N_GREEDY ids]} (tests/interop/llama_logits.c) with the reference:
      max |logit diff| <= 1e-3 * max|logit| + 1e-4 (the tolerance of
      tests/interop/compare.mjs for f32 files), same top-1 at every position,
      same greedy continuation. Exit 1 on any difference.
  check DIR --cllm BIN --model GGUF --prompt TEXT [--steps N] [--tol T] [--top K]
      runs `cllm generate --json --logprobs K` greedily and compares each
      step's top-K log-probabilities with the reference forward of the same
      ids (|diff| <= tol) and each greedy token with the reference argmax
      (skipped where the reference's top two are within 2*tol). Exit 1 on
      any difference.

The safetensors writer is written here from the format's description
(8-byte little-endian header length, JSON header padded with spaces to a
multiple of 8, tensors back to back). The reference forward follows the
Hugging Face modeling files' math: GPT-2's Conv1D (x @ W, W [in, out]) and
tanh GELU; Llama/Mistral/Qwen2's rotate-half RoPE on (first half, second
half) of each head, RMSNorm, SwiGLU, grouped-query attention. It never
reads cllm's code; computed in float64 from the stored (rounded) weights.
"""
import json
import math
import os
import struct
import subprocess
import sys

import torch

# ---- safetensors -------------------------------------------------------------

DT = {"f32": (torch.float32, "F32"), "f16": (torch.float16, "F16"), "bf16": (torch.bfloat16, "BF16")}


def st_bytes(tensors, metadata=None):
    """tensors: list of (name, tensor). Returns (header dict, data bytes)."""
    hdr, blobs, off = {}, [], 0
    if metadata is not None:
        hdr["__metadata__"] = metadata
    for name, t in tensors:
        raw = t.contiguous().view(torch.uint8).numpy().tobytes() if t.numel() else b""
        dt = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}[t.dtype]
        hdr[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    return hdr, b"".join(blobs)


def st_write(path, hdr, data, hlen_override=None):
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", hlen_override if hlen_override is not None else len(h)))
        f.write(h)
        f.write(data)


def st_read(path):
    with open(path, "rb") as f:
        buf = f.read()
    n = struct.unpack("<Q", buf[:8])[0]
    hdr = json.loads(buf[8:8 + n])
    out = {}
    for name, e in hdr.items():
        if name == "__metadata__":
            continue
        b, en = e["data_offsets"]
        dt = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[e["dtype"]]
        raw = bytearray(buf[8 + n + b:8 + n + en])
        t = torch.frombuffer(raw, dtype=torch.uint8).view(dt).reshape(e["shape"]) if raw else torch.zeros(e["shape"], dtype=dt)
        out[name] = t
    return out


def load_weights(d):
    idx = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(os.path.join(d, "model.safetensors")):
        return st_read(os.path.join(d, "model.safetensors"))
    wm = json.load(open(idx))["weight_map"]
    out = {}
    for shard in sorted(set(wm.values())):
        out.update(st_read(os.path.join(d, shard)))
    return out

# ---- tokenizers --------------------------------------------------------------

CORPUS = ("the cat sat on the mat. the dog ate the cat's food. hello world, hello there! "
          "once upon a time there was a little model that wanted to talk. 12 + 30 = 42.\n") * 4


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def train_merges(words, n_merges):
    """Plain BPE over a list of symbol tuples: the most frequent pair first (ties: smallest pair)."""
    seqs = [list(w) for w in words]
    merges = []
    for _ in range(n_merges):
        counts = {}
        for s in seqs:
            for a, b in zip(s, s[1:]):
                counts[(a, b)] = counts.get((a, b), 0) + 1
        if not counts:
            break
        best = max(sorted(counts), key=lambda p: counts[p])
        merges.append(best)
        for s in seqs:
            i = 0
            while i < len(s) - 1:
                if (s[i], s[i + 1]) == best:
                    s[i:i + 2] = [s[i] + s[i + 1]]
                i += 1
    return merges


def write_tokenizer_json(d, vocab_size):
    """Byte-level BPE: 256 byte tokens, merges, then <|endoftext|> (the last id)."""
    b2u = bytes_to_unicode()
    import re
    words = [w for w in re.findall(r" ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+", CORPUS)]
    words = ["".join(b2u[c] for c in w.encode()) for w in words]
    merges = train_merges(words, vocab_size - 257)
    vocab = {b2u[b]: i for i, b in enumerate(range(256))}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    assert len(vocab) == vocab_size - 1, (len(vocab), vocab_size)
    vocab["<|endoftext|>"] = vocab_size - 1
    tj = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": vocab_size - 1, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None, "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
                  "vocab": vocab, "merges": [a + " " + b for a, b in merges]},
    }
    json.dump(tj, open(os.path.join(d, "tokenizer.json"), "w"), ensure_ascii=False)
    return {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}


def pb_varint(v):
    v &= (1 << 64) - 1
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def pb_field(num, wire, payload):
    key = pb_varint(num << 3 | wire)
    if wire == 0:
        return key + pb_varint(payload)
    if wire == 5:
        return key + payload
    return key + pb_varint(len(payload)) + payload


def write_tokenizer_model(d, vocab_size):
    """SentencePiece BPE ModelProto: <unk> <s> </s>, 256 byte pieces, then pieces by score."""
    words = [("\u2581" + w) for w in CORPUS.replace("\n", " ").split(" ") if w]
    merges = train_merges(words, 10 * vocab_size)
    pieces = []
    seen = set()
    for a, b in merges:
        p = a + b
        if p not in seen:
            seen.add(p)
            pieces.append(p)
    chars = sorted(set("".join(words)))
    n_normal = vocab_size - 3 - 256
    normal = [c for c in chars][:n_normal]
    for p in pieces:
        if len(normal) >= n_normal:
            break
        if p not in normal:
            normal.append(p)
    assert len(normal) == n_normal
    entries = [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3)]
    entries += [("<0x%02X>" % b, 0.0, 6) for b in range(256)]
    entries += [(p, -float(i), 1) for i, p in enumerate(normal)]
    o = b""
    for text, score, typ in entries:
        m = pb_field(1, 2, text.encode()) + pb_field(2, 5, struct.pack("<f", score))
        if typ != 1:
            m += pb_field(3, 0, typ)
        o += pb_field(1, 2, m)
    tr = pb_field(3, 0, 2) + pb_field(40, 0, 0) + pb_field(41, 0, 1) + pb_field(42, 0, 2) + pb_field(43, 0, -1)
    o += pb_field(2, 2, tr)
    o += pb_field(3, 2, pb_field(1, 2, b"identity") + pb_field(3, 0, 1))
    open(os.path.join(d, "tokenizer.model"), "wb").write(o)
    return {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True,
            "add_eos_token": False, "chat_template": CHAT_TEMPLATE}


CHAT_TEMPLATE = ("{{ bos_token }}{% for message in messages %}{{ '[' + message['role'] + '] ' + message['content'] + "
                 "eos_token }}{% endfor %}{% if add_generation_prompt %}{{ '[assistant] ' }}{% endif %}")

# ---- models ------------------------------------------------------------------

SIZES = {"C": 64, "L": 2, "NH": 4, "NKV": 2, "F": 96, "ctx": 64, "V": 320}


def make_model(arch, g, dtype, tied, mask=False, pad=0):
    C, L, NH, NKV, F, ctx, V = (SIZES[k] for k in ("C", "L", "NH", "NKV", "F", "ctx", "V"))
    V += pad  # embedding rows beyond the tokenizer's ids, as Qwen2's checkpoints have
    HS = C // NH
    W = []

    def r(*shape, std=0.2):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * std).to(dtype)

    def ln(n):
        return (1 + torch.randn(n, generator=g, dtype=torch.float64) * 0.1).to(dtype)

    if arch == "gpt2":
        cfg = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": C, "n_layer": L, "n_head": NH,
               "n_positions": ctx, "n_ctx": ctx, "vocab_size": V, "layer_norm_epsilon": 1e-5, "n_inner": None,
               "activation_function": "gelu_new", "tie_word_embeddings": True, "bos_token_id": SIZES["V"] - 1,
               "eos_token_id": SIZES["V"] - 1}
        wte = r(V, C, std=0.5)
        if pad:  # padding rows are zero (logit 0: below the real tokens' maxima, so greedy never picks one)
            wte[V - pad:] = 0
        W.append(("transformer.wte.weight", wte))
        W.append(("transformer.wpe.weight", r(ctx, C, std=0.1)))
        for l in range(L):
            p = "transformer.h.%d." % l
            W += [(p + "ln_1.weight", ln(C)), (p + "ln_1.bias", r(C, std=0.05)),
                  (p + "attn.c_attn.weight", r(C, 3 * C)), (p + "attn.c_attn.bias", r(3 * C, std=0.05)),
                  (p + "attn.c_proj.weight", r(C, C)), (p + "attn.c_proj.bias", r(C, std=0.05)),
                  (p + "ln_2.weight", ln(C)), (p + "ln_2.bias", r(C, std=0.05)),
                  (p + "mlp.c_fc.weight", r(C, 4 * C)), (p + "mlp.c_fc.bias", r(4 * C, std=0.05)),
                  (p + "mlp.c_proj.weight", r(4 * C, C)), (p + "mlp.c_proj.bias", r(C, std=0.05))]
            if mask:  # the causal-mask buffer older checkpoints carry (transformers now leaves it out)
                W.append((p + "attn.bias", torch.tril(torch.ones(ctx, ctx)).view(1, 1, ctx, ctx).to(dtype)))
        W += [("transformer.ln_f.weight", ln(C)), ("transformer.ln_f.bias", r(C, std=0.05))]
        return cfg, W
    hf = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "mistral": "MistralForCausalLM"}[arch]
    cfg = {"architectures": [hf], "model_type": arch, "hidden_size": C, "num_hidden_layers": L,
           "num_attention_heads": NH, "num_key_value_heads": NKV, "intermediate_size": F,
           "max_position_embeddings": ctx, "vocab_size": V, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
           "hidden_act": "silu", "tie_word_embeddings": tied, "bos_token_id": 1, "eos_token_id": 2,
           "rope_scaling": None}
    if arch == "mistral":
        cfg["sliding_window"] = 4096
    if arch == "qwen2":
        cfg["use_sliding_window"] = False
    if arch == "llama":
        cfg["attention_bias"] = False
        cfg["head_dim"] = HS
    emb = r(V, C, std=0.5)
    if pad:
        emb[V - pad:] = 0
    W.append(("model.embed_tokens.weight", emb))
    for l in range(L):
        p = "model.layers.%d." % l
        W += [(p + "input_layernorm.weight", ln(C)),
              (p + "self_attn.q_proj.weight", r(NH * HS, C)), (p + "self_attn.k_proj.weight", r(NKV * HS, C)),
              (p + "self_attn.v_proj.weight", r(NKV * HS, C)), (p + "self_attn.o_proj.weight", r(C, NH * HS)),
              (p + "post_attention_layernorm.weight", ln(C)),
              (p + "mlp.gate_proj.weight", r(F, C)), (p + "mlp.up_proj.weight", r(F, C)),
              (p + "mlp.down_proj.weight", r(C, F))]
        if arch == "qwen2":
            W += [(p + "self_attn.q_proj.bias", r(NH * HS, std=0.1)), (p + "self_attn.k_proj.bias", r(NKV * HS, std=0.1)),
                  (p + "self_attn.v_proj.bias", r(NKV * HS, std=0.1))]
    W.append(("model.norm.weight", ln(C)))
    if not tied:
        head = r(V, C, std=0.5)
        if pad:
            head[V - pad:] = 0
        W.append(("lm_head.weight", head))
    return cfg, W


def cmd_make(args):
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--arch", required=True)
    ap.add_argument("--dtype", default="f32")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--tokenizer", default=None)
    ap.add_argument("--tied", type=int, default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--break", dest="brk", default=None)
    ap.add_argument("--mask", type=int, default=0)
    ap.add_argument("--pad", type=int, default=0, help="embedding rows beyond the tokenizer")
    ap.add_argument("--size", default=None, help="C,L,NH,NKV,F (default 64,2,4,2,96)")
    ap.add_argument("--rope", default=None, help="llama3: a Llama-3.1 style rope_scaling")
    a = ap.parse_args(args)
    os.makedirs(a.dir, exist_ok=True)
    g = torch.Generator().manual_seed(a.seed)
    if a.size:
        SIZES.update(zip(("C", "L", "NH", "NKV", "F"), (int(v) for v in a.size.split(","))))
    tied = bool(a.tied) if a.tied is not None else a.arch in ("gpt2", "qwen2")
    cfg, W = make_model(a.arch, g, DT[a.dtype][0], tied, bool(a.mask), a.pad)
    tok = a.tokenizer or ("json" if a.arch in ("gpt2", "qwen2") else "model")
    tc = write_tokenizer_json(a.dir, SIZES["V"]) if tok == "json" else write_tokenizer_model(a.dir, SIZES["V"])
    if a.rope == "llama3":
        cfg["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                               "original_max_position_embeddings": 64}
    if a.brk == "unknown-arch":
        cfg["architectures"] = ["FalconForCausalLM"]
    if a.brk == "config-shape":  # config.json disagrees with the tensors
        cfg["intermediate_size"] += 32
    if a.brk == "hidden-act":  # a key the GGUF arch cannot express
        cfg["hidden_act"] = "gelu"
    json.dump(cfg, open(os.path.join(a.dir, "config.json"), "w"), indent=1)
    json.dump(tc, open(os.path.join(a.dir, "tokenizer_config.json"), "w"), indent=1)
    if a.shards == 1:
        hdr, data = st_bytes(W, {"format": "pt"})
        path = os.path.join(a.dir, "model.safetensors")
        if a.brk == "overlap":  # the second tensor starts inside the first
            names = [n for n, _ in W]
            e0, e1 = hdr[names[0]], hdr[names[1]]
            e1["data_offsets"] = [e1["data_offsets"][0] - 8, e1["data_offsets"][1] - 8]
            e0  # unchanged
        if a.brk == "shape":  # shape disagrees with the byte range
            n1 = W[1][0]
            hdr[n1]["shape"] = [hdr[n1]["shape"][0] + 1] + hdr[n1]["shape"][1:]
        if a.brk == "dtype":
            hdr[W[0][0]]["dtype"] = "I64"
        st_write(path, hdr, data)
        if a.brk == "truncated":  # the header length claims more than the file holds
            st_write(path, hdr, data, hlen_override=len(json.dumps(hdr)) + 10 ** 6)
    else:
        per = (len(W) + a.shards - 1) // a.shards
        wm = {}
        for s in range(a.shards):
            part = W[s * per:(s + 1) * per]
            fname = "model-%05d-of-%05d.safetensors" % (s + 1, a.shards)
            hdr, data = st_bytes(part)
            if not (a.brk == "missing-shard" and s == a.shards - 1):
                st_write(os.path.join(a.dir, fname), hdr, data)
            for n, _ in part:
                wm[n] = fname
        json.dump({"metadata": {"total_size": 0}, "weight_map": wm},
                  open(os.path.join(a.dir, "model.safetensors.index.json"), "w"), indent=1)

# ---- reference forward (Hugging Face conventions, float64) -------------------------


def forward(d, ids):
    cfg = json.load(open(os.path.join(d, "config.json")))
    P = {k: v.to(torch.float64) for k, v in load_weights(d).items()}
    x_ids = torch.tensor(ids, dtype=torch.long)
    T = len(ids)
    mask = torch.triu(torch.full((T, T), float("-inf"), dtype=torch.float64), 1)
    arch = cfg["architectures"][0]
    if arch == "GPT2LMHeadModel":
        C, NH = cfg["n_embd"], cfg["n_head"]
        HS = C // NH
        eps = cfg["layer_norm_epsilon"]
        x = P["transformer.wte.weight"][x_ids] + P["transformer.wpe.weight"][:T]
        ln = lambda x, p: torch.nn.functional.layer_norm(x, (C,), P[p + ".weight"], P[p + ".bias"], eps)
        for l in range(cfg["n_layer"]):
            p = "transformer.h.%d." % l
            h = ln(x, p + "ln_1")
            qkv = h @ P[p + "attn.c_attn.weight"] + P[p + "attn.c_attn.bias"]
            q, k, v = (t.view(T, NH, HS).transpose(0, 1) for t in qkv.split(C, dim=1))
            a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(HS) + mask, dim=-1) @ v
            x = x + a.transpose(0, 1).reshape(T, C) @ P[p + "attn.c_proj.weight"] + P[p + "attn.c_proj.bias"]
            h = ln(x, p + "ln_2")
            h = torch.nn.functional.gelu(h @ P[p + "mlp.c_fc.weight"] + P[p + "mlp.c_fc.bias"], approximate="tanh")
            x = x + h @ P[p + "mlp.c_proj.weight"] + P[p + "mlp.c_proj.bias"]
        x = ln(x, "transformer.ln_f")
        head = P.get("lm_head.weight", P["transformer.wte.weight"])
        return x @ head.T
    C, NH = cfg["hidden_size"], cfg["num_attention_heads"]
    NKV = cfg.get("num_key_value_heads", NH)
    HS = C // NH
    eps = cfg["rms_norm_eps"]
    theta = cfg.get("rope_theta", 10000.0)
    inv = 1.0 / theta ** (torch.arange(0, HS, 2, dtype=torch.float64) / HS)
    rs = cfg.get("rope_scaling") or {}
    if rs.get("rope_type") == "llama3":  # Llama 3.1: long wavelengths slowed by `factor`, a smooth band between
        factor, lo, hi, orig = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], rs["original_max_position_embeddings"]
        wl = 2 * math.pi / inv
        scaled = torch.where(wl > orig / lo, inv / factor, inv)
        smooth = (orig / wl - lo) / (hi - lo)
        medium = ~(wl < orig / hi) & ~(wl > orig / lo)
        inv = torch.where(medium, (1 - smooth) * scaled / factor + smooth * scaled, scaled)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    emb = torch.cat([ang, ang], dim=-1)
    cos, sin = emb.cos(), emb.sin()

    def rot(t):  # t [H, T, HS]: Hugging Face's rotate_half
        t1, t2 = t[..., :HS // 2], t[..., HS // 2:]
        return t * cos + torch.cat([-t2, t1], dim=-1) * sin

    rms = lambda x, w: x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w
    lin = lambda x, p: x @ P[p + ".weight"].T + (P[p + ".bias"] if p + ".bias" in P else 0)
    x = P["model.embed_tokens.weight"][x_ids]
    for l in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % l
        h = rms(x, P[p + "input_layernorm.weight"])
        q = lin(h, p + "self_attn.q_proj").view(T, NH, HS).transpose(0, 1)
        k = lin(h, p + "self_attn.k_proj").view(T, NKV, HS).transpose(0, 1)
        v = lin(h, p + "self_attn.v_proj").view(T, NKV, HS).transpose(0, 1)
        q, k = rot(q), rot(k)
        k = k.repeat_interleave(NH // NKV, dim=0)
        v = v.repeat_interleave(NH // NKV, dim=0)
        a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(HS) + mask, dim=-1) @ v
        x = x + lin(a.transpose(0, 1).reshape(T, C), p + "self_attn.o_proj")
        h = rms(x, P[p + "post_attention_layernorm.weight"])
        x = x + lin(torch.nn.functional.silu(lin(h, p + "mlp.gate_proj")) * lin(h, p + "mlp.up_proj"), p + "mlp.down_proj")
    x = rms(x, P["model.norm.weight"])
    head = P.get("lm_head.weight", P["model.embed_tokens.weight"])
    return x @ head.T


def cmd_logits(args):
    ids = [int(a) for a in args[1:]]
    lp = torch.log_softmax(forward(args[0], ids)[-1], dim=-1)
    print(json.dumps([float(v) for v in lp]))


def cmd_vs(args):
    d, other, n_greedy, ids = args[0], json.load(open(args[1])), int(args[2]), [int(a) for a in args[3:]]
    ref = forward(d, ids)
    got = torch.tensor(other["logits"], dtype=torch.float64)
    max_abs = float(ref.abs().max())
    diff = float((got - ref).abs().max())
    tol = 1e-3 * max_abs + 1e-4
    top1 = int((got.argmax(-1) == ref.argmax(-1)).sum())
    toks, greedy = list(ids), []
    for _ in range(n_greedy):
        b = int(forward(d, toks)[-1].argmax())
        greedy.append(b)
        toks.append(b)
    ok = diff <= tol and top1 == len(ids) and greedy == other["greedy"]
    print("max|dlogit| %.2e (tol %.2e, max|logit| %.2f), top-1 %d/%d, greedy other %s reference %s" %
          (diff, tol, max_abs, top1, len(ids), other["greedy"], greedy))
    return 0 if ok else 1


def cmd_check(args):
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--cllm", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompt", required=True)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--top", type=int, default=5)
    a = ap.parse_args(args)
    enc = subprocess.run([a.cllm, "tokenizer", "encode", "--tokenizer", a.model, "--text", a.prompt, "--format", "ids"],
                         capture_output=True, text=True, check=True).stdout.split()
    ids = [int(t) for t in enc]
    out = subprocess.run([a.cllm, "generate", "-m", a.model, "-p", a.prompt, "-n", str(a.steps), "--temp", "0",
                          "--ignore-eos", "--json", "--logprobs", str(a.top)], capture_output=True, text=True)
    if out.returncode != 0:
        print("cllm generate failed: " + out.stderr.strip())
        return 1
    res = json.loads(out.stdout)
    if res["prompt_tokens"] == len(ids) + 1:  # the vocabulary's BOS, added by generate
        bos = json.load(open(os.path.join(a.dir, "config.json"))).get("bos_token_id", 1)
        ids = [bos] + ids
    if res["prompt_tokens"] != len(ids):
        print("prompt tokens %d, tokenizer gave %d" % (res["prompt_tokens"], len(ids)))
        return 1
    gen = [t["id"] for t in res["tokens"]]
    lp = torch.log_softmax(forward(a.dir, ids + gen), dim=-1)
    worst, bad = 0.0, 0
    for k, t in enumerate(res["tokens"]):
        ref = lp[len(ids) + k - 1]
        for tok, v in t["top"]:
            worst = max(worst, abs(v - float(ref[tok])))
        top2 = torch.topk(ref, 2).values
        if int(ref.argmax()) != t["id"] and float(top2[0] - top2[1]) > 2 * a.tol:
            print("step %d: cllm chose %d, reference argmax %d" % (k, t["id"], int(ref.argmax())))
            bad += 1
    print("%d steps, %d greedy mismatches, max |logprob diff| %.3g (tolerance %g) over top-%d; prompt ids %s; text %r" %
          (len(gen), bad, worst, a.tol, a.top, ids, res["text"]))
    return 1 if bad or worst > a.tol or len(gen) != a.steps else 0


if __name__ == "__main__":
    cmd, rest = sys.argv[1], sys.argv[2:]
    if cmd == "make":
        sys.exit(cmd_make(rest) or 0)
    if cmd == "logits":
        sys.exit(cmd_logits(rest) or 0)
    if cmd == "vs":
        sys.exit(cmd_vs(rest))
    if cmd == "check":
        sys.exit(cmd_check(rest))
    sys.exit("usage: convert_hf.py make|logits|check ...")
