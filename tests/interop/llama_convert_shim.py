#!/usr/bin/python3
"""llama_convert_shim.py: runs llama.cpp's own convert_hf_to_gguf.py here,
where Debian has torch, numpy and yaml but no `transformers` or
`sentencepiece`, for tests/interop/convert_llama.sh's tensor-by-tensor
comparison with `cllm convert`.

The shim, and all it changes:
  - a stand-in `transformers` module whose AutoConfig/AutoTokenizer raise,
    so the converter takes its own fallback and reads config.json directly;
  - Debian's torch (1.13) predates the float8 dtypes the converter names in
    its tables; they get stand-in objects that no tensor here has;
  - a silent stand-in `tqdm` (the writer's progress bar; not installed);
  - TextModel.set_vocab and its _set_vocab_* readers are no-ops: without those packages llama.cpp's
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
try:
    import tqdm  # noqa: F401
except ImportError:
    tq = types.ModuleType("tqdm")

    class _Bar:
        def __init__(self, *args, **kwargs):
            pass

        def __getattr__(self, name):  # update, reset, set_description, close: nothing to show
            return lambda *args, **kwargs: None

    tq.tqdm = _Bar
    sys.modules["tqdm"] = tq

import torch  # noqa: E402

for _name in ("float8_e4m3fn", "float8_e5m2", "float8_e8m0fnu"):
    if not hasattr(torch, _name):
        setattr(torch, _name, type(_name, (), {})())

import conversion.base as base  # noqa: E402

base.TextModel.set_vocab = lambda self: None
for _name in dir(base.TextModel):
    if _name.startswith("_set_vocab_"):
        setattr(base.TextModel, _name, lambda self, *args, **kwargs: None)
import convert_hf_to_gguf  # noqa: E402

sys.argv = ["convert_hf_to_gguf.py"] + sys.argv[2:]
convert_hf_to_gguf.main()
