"""spm_hf_json.py: writes a Hugging Face tokenizer.json (Llama 2 style: BPE
with byte_fallback, normalizer Sequence[Prepend "\u2581", Replace " " ->
"\u2581"]) and a SentencePiece vocabulary GGUF that are the same tokenizer,
from a SentencePiece vocabulary GGUF, as converting a SentencePiece BPE
model gives it: the merges are every split of every normal piece into two
reachable normal pieces, the best-scored piece first; control tokens are
special added tokens, user-defined ones non-special added tokens.
A piece that no chain of merges can make (a synthetic vocabulary may hold
":\\n" without "\\n") would still be merged by llama.cpp's SentencePiece
encoder, which merges any two symbols whose text is a piece, but never by
tokenizers' BPE: such pieces get the unmatchable text "[UNREACHABLE_<id>]"
in both outputs, so they stay one tokenizer.
Reads and writes GGUF with llama.cpp's gguf-py (its directory: argument 1).
Used by tests/interop/spm_llama.sh.
Usage: python3 spm_hf_json.py GGUF_PY_DIR VOCAB.gguf OUT.json OUT.gguf
"""
import json
import sys

sys.path.insert(0, sys.argv[1])
from gguf import GGUFReader, GGUFWriter  # noqa: E402

r = GGUFReader(sys.argv[2])
f = r.fields
toks = [bytes(f["tokenizer.ggml.tokens"].parts[i]).decode("utf-8") for i in f["tokenizer.ggml.tokens"].data]
scores = [float(f["tokenizer.ggml.scores"].parts[i][0]) for i in f["tokenizer.ggml.scores"].data]
types = [int(f["tokenizer.ggml.token_type"].parts[i][0]) for i in f["tokenizer.ggml.token_type"].data]
normal = {t: i for i, t in enumerate(toks) if types[i] == 1}
reach = {t for t in normal if len(t) == 1}
changed = True
while changed:
    changed = False
    for t in normal:
        if t not in reach and any(t[:k] in reach and t[k:] in reach for k in range(1, len(t))):
            reach.add(t)
            changed = True
n_unreach = 0
for t, i in normal.items():
    if t not in reach:
        toks[i] = f"[UNREACHABLE_{i}]"
        n_unreach += 1
merges = []
for i in sorted((normal[t] for t in reach), key=lambda i: (-scores[i], i)):
    t = toks[i]
    for k in range(1, len(t)):
        if t[:k] in reach and t[k:] in reach:
            merges.append(t[:k] + " " + t[k:])
added = [{"id": i, "content": t, "special": types[i] in (2, 3)} for i, t in enumerate(toks) if types[i] in (2, 3, 4)]
out = {
    "model": {"type": "BPE", "byte_fallback": True, "unk_token": toks[0],
              "vocab": {t: i for i, t in enumerate(toks)}, "merges": merges},
    "normalizer": {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
    "pre_tokenizer": None,
    "added_tokens": added,
}
with open(sys.argv[3], "w", encoding="utf-8") as o:
    json.dump(out, o, ensure_ascii=False)
w = GGUFWriter(sys.argv[4], "llama")
w.add_context_length(256)
w.add_embedding_length(64)
w.add_block_count(1)
w.add_feed_forward_length(128)
w.add_head_count(4)
w.add_layer_norm_rms_eps(1e-5)
w.add_tokenizer_model("llama")
w.add_token_list(toks)
w.add_token_scores(scores)
w.add_token_types(types)
w.add_bos_token_id(1)
w.add_eos_token_id(2)
w.add_unk_token_id(0)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print(f"{len(toks)} pieces ({n_unreach} unreachable by merges, renamed), {len(merges)} merges, {len(added)} added tokens")
