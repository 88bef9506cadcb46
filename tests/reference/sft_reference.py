#!/usr/bin/python3
"""sft_reference.py: the SFT-masked loss in PyTorch, for tests/test_sft.c.

Usage: /usr/bin/python3 sft_reference.py DIR

DIR holds what the C test wrote:
  shape.txt    "N V"
  logits.bin   float32 [N*V]
  ids.bin      int32 [N+1] a token sequence (a rendered conversation)
  mask.bin     uint8 [N+1] the chat mask (1 = assistant token to learn)
The loss follows TRL's SFTTrainer (assistant-only loss): position t predicts
ids[t+1]; labels are -100 where mask[t+1] == 0; the loss is
F.cross_entropy(..., ignore_index=-100), the mean over learned positions.
Writes DIR/out.bin, float64: loss [1], then d loss / d logits [N*V].
It does not read cllm's C code.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F


def main():
    d = sys.argv[1]
    n, v = (int(x) for x in open(os.path.join(d, "shape.txt")).read().split())
    logits = np.fromfile(os.path.join(d, "logits.bin"), dtype=np.float32).reshape(n, v)
    ids = np.fromfile(os.path.join(d, "ids.bin"), dtype=np.int32)
    mask = np.fromfile(os.path.join(d, "mask.bin"), dtype=np.uint8)
    assert ids.shape[0] == n + 1 and mask.shape[0] == n + 1
    labels = torch.tensor(ids[1:].astype(np.int64))
    labels[torch.tensor(mask[1:] == 0)] = -100
    x = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    loss = F.cross_entropy(x, labels, ignore_index=-100)
    loss.backward()
    out = np.concatenate([[loss.item()], x.grad.numpy().reshape(-1)]).astype(np.float64)
    out.tofile(os.path.join(d, "out.bin"))


if __name__ == "__main__":
    main()
