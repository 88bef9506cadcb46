#!/usr/bin/python3
"""llama_convert_shim.py: runs llama.cpp's own convert_hf_to_gguf.py here,
where Debian has torch, numpy and yaml but no `transformers` or
`sentencepiece`, for tests/interop/convert_llama.sh's tensor-by-tensor
comparison with `cllm convert`.

The shim, and all it changes:
  - a stand-in `transformers` module whose AutoConfig/AutoTokenizer raise,
    so the converter takes its own fallback and reads config.json directly;
  - TextModel.set_vocab is a no-op: without those packages llama.cpp's
    converter cannot read a tokenizer, so the file has no tokenizer.* keys
    (tensors and hyperparameter keys are untouched).
Usage: llama_convert_shim.py LLAMA_SRC_DIR HF_DIR --outfile OUT.gguf --outtype f32 [...]
"""
import sys
import types

src = sys.argv[1]
sys.path[0:0] = [src, src + "/gguf-py"]
tf = types.ModuleType("transformers")


class _Unavailable:
    @staticmethod
    def from_pretrained(*args, **kwargs):
        raise RuntimeError("transformers is not installed here (llama_convert_shim.py)")


tf.AutoConfig = _Unavailable
tf.AutoTokenizer = _Unavailable
sys.modules["transformers"] = tf

import conversion.base as base  # noqa: E402

base.TextModel.set_vocab = lambda self: None
import convert_hf_to_gguf  # noqa: E402

sys.argv = ["convert_hf_to_gguf.py"] + sys.argv[2:]
convert_hf_to_gguf.main()
