"""nan_model.py IN.gguf OUT.gguf [TENSOR]: copies a GGUF model with every
value of one float32 tensor (default output_norm.weight) set to NaN, so every
logit the model produces is NaN. Used by test_server.sh and
test_generate_cli.sh to check that a diverged model is an error, never a
crash or bare `nan` in JSON. Standard library only; reads GGUF v2/v3."""
import struct, sys

import gguf_header

src, dst = sys.argv[1], sys.argv[2]
name = sys.argv[3] if len(sys.argv) > 3 else "output_norm.weight"
data = bytearray(open(src, "rb").read())
h = gguf_header.read(data)
infos, base = h["infos"], h["base"]
for tname, dims, ttype, toff in infos:
    if tname == name:
        assert ttype == 0, f"{name} is not float32"
        count = 1
        for d in dims:
            count *= d
        struct.pack_into("<%df" % count, data, base + toff, *([float("nan")] * count))
        open(dst, "wb").write(data)
        sys.exit(0)
sys.exit(f"no tensor {name}")
