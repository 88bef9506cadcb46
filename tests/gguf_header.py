"""gguf_header.py: reads the header of a GGUF v2/v3 file, for the test
scripts that rewrite models (nan_model.py, gguf_set_template.py); not a test.
Standard library only."""
import struct

SIZES = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def read(data):
    """-> dict: version; kvs, a list of (key, value, the pair's raw bytes);
    align; infos, a list of (tensor name, dims, type, offset); infos_raw (their
    bytes); base (where tensor data starts)."""
    off = 0

    def take(fmt):
        nonlocal off
        v = struct.unpack_from("<" + fmt, data, off)
        off += struct.calcsize("<" + fmt)
        return v[0]

    def string():
        nonlocal off
        n = take("Q")
        s = bytes(data[off:off + n]).decode("utf-8", "replace")
        off += n
        return s

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        return take(SIZES[t])

    assert bytes(data[:4]) == b"GGUF", "not a GGUF file"
    off = 4
    version, n_tensors, n_kv = take("I"), take("Q"), take("Q")
    align, kvs = 32, []
    for _ in range(n_kv):
        start = off
        k = string()
        v = value(take("I"))
        if k == "general.alignment":
            align = v
        kvs.append((k, v, bytes(data[start:off])))
    infos_start, infos = off, []
    for _ in range(n_tensors):
        tname = string()
        n_dims = take("I")
        dims = [take("Q") for _ in range(n_dims)]
        ttype = take("I")
        infos.append((tname, dims, ttype, take("Q")))
    return {"version": version, "kvs": kvs, "align": align, "infos": infos,
            "infos_raw": bytes(data[infos_start:off]), "base": (off + align - 1) // align * align}
