"""nan_model.py IN.gguf OUT.gguf [TENSOR]: copies a GGUF model with every
value of one float32 tensor (default output_norm.weight) set to NaN, so every
logit the model produces is NaN. Used by test_server.sh and
test_generate_cli.sh to check that a diverged model is an error, never a
crash or bare `nan` in JSON. Standard library only; reads GGUF v2/v3."""
import struct, sys

src, dst = sys.argv[1], sys.argv[2]
name = sys.argv[3] if len(sys.argv) > 3 else "output_norm.weight"
data = bytearray(open(src, "rb").read())
off = 0


def take(fmt):
    global off
    v = struct.unpack_from("<" + fmt, data, off)
    off += struct.calcsize("<" + fmt)
    return v[0]


def string():
    global off
    n = take("Q")
    s = bytes(data[off:off + n]).decode("utf-8", "replace")
    off += n
    return s


SIZES = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def value(t):
    if t == 8:
        return string()
    if t == 9:
        et, n = take("I"), take("Q")
        return [value(et) for _ in range(n)]
    return take(SIZES[t])


assert data[:4] == b"GGUF", "not a GGUF file"
off = 8
n_tensors, n_kv = take("Q"), take("Q")
align = 32
for _ in range(n_kv):
    k = string()
    v = value(take("I"))
    if k == "general.alignment":
        align = v
infos = []
for _ in range(n_tensors):
    tname = string()
    dims = [take("Q") for _ in range(take("I"))]
    infos.append((tname, dims, take("I"), take("Q")))
base = (off + align - 1) // align * align
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
