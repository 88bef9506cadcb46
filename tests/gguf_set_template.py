"""gguf_set_template.py IN.gguf OUT.gguf TEMPLATE_FILE [KEY]: copies a GGUF
model with tokenizer.chat_template (or the string key KEY) set to the text of
TEMPLATE_FILE (replaced or added), the tensor data re-aligned after the
longer header. Used by tests/test_chat_template_cli.sh to store family
templates (Llama 3, one using {% include %}) in models cllm trained, and by
tests/interop/bpe_llama.sh to give a vocabulary another tokenizer.ggml.pre.
Standard library only; GGUF v2/v3."""
import struct, sys

import gguf_header

src, dst, tfile = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(src, "rb").read()
template = open(tfile, "rb").read()
KEY = (sys.argv[4] if len(sys.argv) > 4 else "tokenizer.chat_template").encode()
h = gguf_header.read(data)
kvs = [raw for k, _, raw in h["kvs"] if k != KEY.decode()]
kvs.append(struct.pack("<Q", len(KEY)) + KEY + struct.pack("<IQ", 8, len(template)) + template)
head = b"GGUF" + struct.pack("<IQQ", h["version"], len(h["infos"]), len(kvs)) + b"".join(kvs) + h["infos_raw"]
head += b"\0" * ((-len(head)) % h["align"])
open(dst, "wb").write(head + data[h["base"]:])
