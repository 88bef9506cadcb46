/*
 * safetensors.h: reading Hugging Face safetensors checkpoints, one file or
 * a sharded set (model.safetensors.index.json), memory-mapped, with tensor
 * views into the map (no copy).
 *
 * File layout (little-endian; docs/FORMATS.md "safetensors" has the table):
 *   u64 N  then N bytes of JSON (the header)  then the data area
 * The header is an object: "__metadata__" (an object of strings, optional)
 * and one entry per tensor:
 *   "name": {"dtype": "F32"|"F16"|"BF16", "shape": [d0, d1, ...],
 *            "data_offsets": [begin, end]}
 * offsets relative to the data area; shape in PyTorch order (the last
 * dimension varies fastest).
 *
 * Validation, before a view is handed out: N >= 2, 8 + N within the file and
 * N <= CLLM_SAFETENSORS_MAX_HEADER; the JSON parses and is an object (only
 * whitespace after it, as the writers pad with spaces); every tensor entry is
 * an object with exactly a string dtype, an integer array shape of at most
 * CLLM_SAFETENSORS_MAX_DIMS non-negative dims and two integer offsets
 * begin <= end; dtype one of F32/F16/BF16 (any other dtype is refused by its
 * name: cllm's converter has no use for integer or fp8 tensors); shape
 * product x dtype size == end - begin, with overflow-checked arithmetic;
 * every range inside the data area; ranges neither overlapping nor leaving
 * holes, and together covering the whole data area (the format's own rule:
 * the buffer is "entirely indexed"); tensor names 1..CLLM_SAFETENSORS_MAX_NAME
 * bytes and unique. Every error names the file and the tensor or field.
 *
 * Sharded checkpoints: cllm_safetensors_open_dir reads DIR/model.safetensors,
 * or else DIR/model.safetensors.index.json, whose "weight_map" maps each
 * tensor name to a shard file name (a plain name in DIR: no '/', not "." or
 * ".."). Every listed shard must exist and validate, every listed tensor must
 * be in the shard the map names, every tensor of a shard must be listed, and
 * no name may appear twice across shards.
 *
 * Views: data pointers are borrowed from the maps and valid until close.
 * They are NOT aligned beyond 1 byte in general (the header length is
 * arbitrary); read them with memcpy or check the alignment.
 *
 * Not here: what the tensors mean (infer/convert.h), writing safetensors.
 */
#ifndef CLLM_SAFETENSORS_H
#define CLLM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "cllm/core/status.h"

#define CLLM_SAFETENSORS_MAX_HEADER (100u << 20) /* 100 MiB, the Hugging Face library's cap */
#define CLLM_SAFETENSORS_MAX_DIMS 8
#define CLLM_SAFETENSORS_MAX_NAME 512
#define CLLM_SAFETENSORS_MAX_SHARDS 4096

typedef struct {
    const char *name;  /* NUL-terminated, borrowed */
    const char *file;  /* path of the file it is in, borrowed */
    uint32_t type;     /* cllm_ggml_type with the same bytes: F32, F16 or BF16 */
    uint32_t n_dims;   /* 0..CLLM_SAFETENSORS_MAX_DIMS */
    int64_t shape[CLLM_SAFETENSORS_MAX_DIMS]; /* PyTorch order, shape[n_dims-1] fastest; unused = 1 */
    int64_t n_elements;
    size_t nbytes;     /* n_elements x element size */
    uint64_t begin;    /* offset in the data area */
    const void *data;  /* [nbytes] in the map, borrowed, read-only, unaligned */
} cllm_safetensors_tensor;

typedef struct cllm_safetensors cllm_safetensors; /* one file or a shard set, validated */

/* One .safetensors file. On failure *out is NULL and err names the file. */
cllm_status cllm_safetensors_open(cllm_safetensors **out, const char *path, cllm_error *err);
/* The same over a caller's buffer (borrowed until close); `name` in messages. */
cllm_status cllm_safetensors_open_memory(cllm_safetensors **out, const void *data, size_t size,
                                         const char *name, cllm_error *err);
/* DIR/model.safetensors, else the shards of DIR/model.safetensors.index.json. */
cllm_status cllm_safetensors_open_dir(cllm_safetensors **out, const char *dir, cllm_error *err);
void cllm_safetensors_close(cllm_safetensors *s); /* accepts NULL */

uint64_t cllm_safetensors_n_tensors(const cllm_safetensors *s);
uint32_t cllm_safetensors_n_files(const cllm_safetensors *s);
/* Tensors in name order. NULL if out of range. */
const cllm_safetensors_tensor *cllm_safetensors_tensor_at(const cllm_safetensors *s, uint64_t i);
const cllm_safetensors_tensor *cllm_safetensors_find(const cllm_safetensors *s, const char *name);

#endif
