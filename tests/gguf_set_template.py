"""gguf_set_template.py IN.gguf OUT.gguf TEMPLATE_FILE: copies a GGUF model
with tokenizer.chat_template set to the text of TEMPLATE_FILE (replaced or
added), the tensor data re-aligned after the longer header. Used by
tests/test_chat_template_cli.sh to store family templates (Llama 3, one
using {% include %}) in models cllm trained. Standard library only; GGUF v2/v3."""
import struct, sys

src, dst, tfile = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(src, "rb").read()
template = open(tfile, "rb").read()
KEY = "tokenizer.chat_template"
off = 0


def take(fmt):
    global off
    v = struct.unpack_from("<" + fmt, data, off)
    off += struct.calcsize("<" + fmt)
    return v[0]



def string():
    global off
    n = take("Q")
    s = data[off:off + n]
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
version = struct.unpack_from("<I", data, 4)[0]
off = 8
n_tensors, n_kv = take("Q"), take("Q")
align = 32
kvs = []  # raw bytes of each kept key/value pair
for _ in range(n_kv):
    start = off
    k = string().decode()
    v = value(take("I"))
    if k == "general.alignment":
        align = v
    if k != KEY:
        kvs.append(data[start:off])
infos_start = off
for _ in range(n_tensors):
    string()
    n_dims = take("I")
    off += 8 * n_dims
    off += 4 + 8
infos = data[infos_start:off]
base = (off + align - 1) // align * align
kb = KEY.encode()
kvs.append(struct.pack("<Q", len(kb)) + kb + struct.pack("<IQ", 8, len(template)) + template)
head = b"GGUF" + struct.pack("<IQQ", version, n_tensors, len(kvs)) + b"".join(kvs) + infos
head += b"\0" * ((-len(head)) % align)
open(dst, "wb").write(head + data[base:])
