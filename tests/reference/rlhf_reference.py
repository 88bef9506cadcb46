#!/usr/bin/python3
"""rlhf_reference.py: the DPO loss and PPO's clipped policy and value losses
written independently in PyTorch (float64 autograd), for tests/test_rlhf.c.

Usage: /usr/bin/python3 rlhf_reference.py DIR

DIR/in.txt (written by the C test), whitespace-separated numbers:
  n beta eps vf_eps
  pi_c[n] pi_r[n] ref_c[n] ref_r[n]          DPO sequence log-probs
  logp[n] old_logp[n] adv[n]                 PPO policy
  v[n] v_old[n] ret[n]                       PPO value
DIR/out.txt: one number per line:
  dpo_loss, d pi_c[n], d pi_r[n],
  policy_loss, d logp[n], clip_frac,
  value_loss, d v[n]
Formulas follow the papers (Rafailov et al. 2023 eq. 7; Schulman et al. 2017
eq. 7; the value clipping of OpenAI baselines / TRL), with torch's
logsigmoid, clamp and max, not cllm's C code.
"""
import os
import sys

import torch
import torch.nn.functional as F


def main(d):
    vals = [float(x) for x in open(os.path.join(d, "in.txt")).read().split()]
    n = int(vals[0])
    beta, eps, vf_eps = vals[1], vals[2], vals[3]
    rest = vals[4:]

    def take(k):
        nonlocal rest
        t = torch.tensor(rest[:k], dtype=torch.float64)
        rest = rest[k:]
        return t

    pi_c, pi_r, ref_c, ref_r = take(n), take(n), take(n), take(n)
    logp, old, adv = take(n), take(n), take(n)
    v, v_old, ret = take(n), take(n), take(n)
    out = []

    pi_c.requires_grad_(True)
    pi_r.requires_grad_(True)
    z = beta * ((pi_c - ref_c) - (pi_r - ref_r))
    dpo = -F.logsigmoid(z).mean()
    dpo.backward()
    out += [dpo.item()] + pi_c.grad.tolist() + pi_r.grad.tolist()

    logp.requires_grad_(True)
    ratio = torch.exp(logp - old)
    l1 = -adv * ratio
    l2 = -adv * torch.clamp(ratio, 1 - eps, 1 + eps)
    pol = torch.max(l1, l2).mean()
    pol.backward()
    clip_frac = (l2 > l1).double().mean().item()
    out += [pol.item()] + logp.grad.tolist() + [clip_frac]

    v.requires_grad_(True)
    v_clipped = v_old + torch.clamp(v - v_old, -vf_eps, vf_eps)
    vl = 0.5 * torch.max((v - ret) ** 2, (v_clipped - ret) ** 2).mean()
    vl.backward()
    out += [vl.item()] + v.grad.tolist()

    with open(os.path.join(d, "out.txt"), "w") as f:
        for x in out:
            f.write("%.17g\n" % x)


if __name__ == "__main__":
    main(sys.argv[1])
