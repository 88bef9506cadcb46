/*
 * gguf_internal.h: the reader's private state, shared by gguf_read.c (parse
 * and validate) and gguf_get.c (lookups and typed getters). Not installed.
 */
#ifndef CLLM_GGUF_INTERNAL_H
#define CLLM_GGUF_INTERNAL_H

#include "cllm/core/fileio.h"
#include "cllm/formats/gguf.h"

/* Open-addressing index from a name to a record number (slot = index + 1,
 * 0 = empty); names live in `pool` at `offs[index]`, NUL-terminated. */
typedef struct {
    uint32_t *slots; /* [cap] */
    size_t cap;      /* power of two, > 2 * entries */
} gguf_name_index;

struct cllm_gguf {
    char *path;           /* owned copy, used in messages */
    cllm_mmap map;        /* owned map (zeroed for open_memory) */
    const uint8_t *base;  /* [size] file bytes */
    size_t size;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset; /* file offset of the data section */
    uint64_t n_kv, n_tensors;
    cllm_gguf_kv *kvs;          /* [n_kv] */
    cllm_gguf_tensor *tensors;  /* [n_tensors] */
    cllm_gguf_str *str_pool;    /* elements of every string array */
    char *name_pool;            /* NUL-terminated keys and tensor names */
    size_t *key_offs;           /* [n_kv] offsets of keys in name_pool */
    size_t *name_offs;          /* [n_tensors] offsets of names in name_pool */
    gguf_name_index kv_index, tensor_index;
};

/* Bytes of one value of a scalar GGUF type; 0 for STRING, ARRAY and unknown ids. */
static inline size_t gguf_scalar_size(uint32_t type) {
    switch (type) {
    case CLLM_GGUF_UINT8: case CLLM_GGUF_INT8: case CLLM_GGUF_BOOL: return 1;
    case CLLM_GGUF_UINT16: case CLLM_GGUF_INT16: return 2;
    case CLLM_GGUF_UINT32: case CLLM_GGUF_INT32: case CLLM_GGUF_FLOAT32: return 4;
    case CLLM_GGUF_UINT64: case CLLM_GGUF_INT64: case CLLM_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

uint64_t cllm_gguf_hash_name(const char *s, size_t len);
/* Index of the record whose name is s[0..len), or -1. */
int64_t cllm_gguf_index_find(const gguf_name_index *ix, const char *pool, const size_t *offs,
                             const char *s, size_t len);

#endif
