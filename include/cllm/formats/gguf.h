/*
 * gguf.h: reading and writing GGUF files (llama.cpp's model format, v3).
 *
 * Layout (little-endian; docs/FORMATS.md "GGUF" has the full table):
 *   "GGUF" u32 version  u64 n_tensors  u64 n_kv
 *   n_kv   x { string key, u32 value_type, value }
 *   n_tens x { string name, u32 n_dims, u64 dims[n_dims], u32 ggml_type, u64 offset }
 *   zero padding to `general.alignment` (default 32)
 *   data section: tensor i at data_start + offset_i, each padded to alignment
 * A string is u64 length + bytes (no NUL). An array value is u32 element
 * type, u64 count, then the elements. dims[0] is the fastest-varying (row
 * length): a PyTorch weight [OC, IC] is stored with dims {IC, OC}.
 *
 * READER. cllm_gguf_open maps the file and validates ALL of it before it
 * returns: magic; version 2 or 3; every count against the bytes left (before
 * allocating); string lengths; keys non-empty, without NUL, unique; value
 * types known; no nested arrays; bools 0/1; `general.alignment` a u32 power
 * of two in [1, 2^24]; tensor names 1..63 bytes (ggml's GGML_MAX_NAME = 64
 * includes the NUL), without NUL, unique; 1..4 dims, each in [1, INT64_MAX];
 * element count and byte size overflow-checked; ggml type known; row length a
 * multiple of the type's block size; offsets in file order, each exactly
 * where the previous tensor (padded to the alignment) ends, so unaligned,
 * overlapping, out-of-order and gapped tensors are all rejected; every tensor
 * inside the file (a truncated download is an error, never a SIGBUS).
 * Every error message names the file, the field and its byte offset.
 *
 * All pointers returned by the reader (keys, names, strings, tensor data) are
 * borrowed from the cllm_gguf and valid until cllm_gguf_close. Tensor data
 * is aligned to the file's alignment relative to a page-aligned map (so to
 * min(alignment, page size) in memory); strings are NOT NUL-terminated.
 *
 * WRITER. Collects key/values (copied at set time) and tensors (data pointers
 * BORROWED until cllm_gguf_writer_write returns), then writes the file
 * atomically (cllm_atomic_*: temp file, fsync, rename): on any failure no
 * file appears and an older file at the path is untouched. Keys are written
 * in the order first set; setting an existing key replaces its value in place.
 *
 * Not here: what the keys and tensors mean for a model (model/gguf_io.h), the
 * tokenizer.ggml.* keys (tokenizer module), quantization (ggml_types.h).
 */
#ifndef CLLM_GGUF_H
#define CLLM_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cllm/formats/ggml_types.h"
#include "cllm/core/status.h"

#define CLLM_GGUF_MAGIC "GGUF"
#define CLLM_GGUF_VERSION 3           /* what the writer writes; the reader accepts 2 and 3 */
#define CLLM_GGUF_DEFAULT_ALIGNMENT 32
#define CLLM_GGUF_MAX_ALIGNMENT (1u << 24)
#define CLLM_GGUF_MAX_DIMS 4
#define CLLM_GGUF_MAX_NAME 64         /* tensor names are at most 63 bytes */
#define CLLM_GGUF_MAX_KEY 65535       /* keys are at most this many bytes */

/* Value types of the key/value section (ids as in the GGUF spec). */
typedef enum {
    CLLM_GGUF_UINT8 = 0,
    CLLM_GGUF_INT8 = 1,
    CLLM_GGUF_UINT16 = 2,
    CLLM_GGUF_INT16 = 3,
    CLLM_GGUF_UINT32 = 4,
    CLLM_GGUF_INT32 = 5,
    CLLM_GGUF_FLOAT32 = 6,
    CLLM_GGUF_BOOL = 7,
    CLLM_GGUF_STRING = 8,
    CLLM_GGUF_ARRAY = 9,
    CLLM_GGUF_UINT64 = 10,
    CLLM_GGUF_INT64 = 11,
    CLLM_GGUF_FLOAT64 = 12,
    CLLM_GGUF_TYPE_COUNT
} cllm_gguf_type;

/* "uint8", ..., "array", or "unknown". */
const char *cllm_gguf_type_name(uint32_t type);

/* A string inside the file: `len` bytes at `data`, not NUL-terminated. */
typedef struct {
    const char *data; /* [len], borrowed */
    uint64_t len;
} cllm_gguf_str;

/* One key/value pair, as read. */
typedef struct {
    const char *key;      /* NUL-terminated, borrowed */
    cllm_gguf_type type;  /* value type; CLLM_GGUF_ARRAY for arrays */
    union {               /* scalar value, by type */
        uint64_t u64;     /* UINT8/16/32/64 widened */
        int64_t i64;      /* INT8/16/32/64 widened */
        double f64;       /* FLOAT32/FLOAT64 widened (exact for FLOAT32) */
        bool b;           /* BOOL */
        cllm_gguf_str str;/* STRING */
    } val;
    cllm_gguf_type arr_type;      /* element type (ARRAY only; never ARRAY) */
    uint64_t arr_n;               /* element count (ARRAY only) */
    const uint8_t *arr_data;      /* [arr_n * element size] raw little-endian
                                     elements, unaligned (numeric arrays) */
    const cllm_gguf_str *arr_str; /* [arr_n] (STRING arrays only) */
    uint64_t file_offset;         /* where the key/value starts in the file */
} cllm_gguf_kv;

/* One tensor, as read. */
typedef struct {
    const char *name;     /* NUL-terminated, borrowed */
    uint32_t type;        /* cllm_ggml_type id (known, see ggml_types.h) */
    uint32_t n_dims;      /* 1..4 */
    int64_t dims[CLLM_GGUF_MAX_DIMS]; /* dims[0] = row length; unused = 1 */
    int64_t n_elements;   /* product of dims */
    size_t nbytes;        /* bytes of data */
    uint64_t offset;      /* offset of the data from the data section start */
    const void *data;     /* [nbytes] in the map, borrowed, read-only */
} cllm_gguf_tensor;

typedef struct cllm_gguf cllm_gguf; /* an opened, fully validated file */

/* Maps and validates `path`. On success *out is owned by the caller
 * (cllm_gguf_close); on failure *out is NULL and err names file/field/offset. */
cllm_status cllm_gguf_open(cllm_gguf **out, const char *path, cllm_error *err);

/* Same over a caller's buffer (borrowed until close), for tests and fuzzing.
 * `name` is used in messages. */
cllm_status cllm_gguf_open_memory(cllm_gguf **out, const void *data, size_t size,
                                  const char *name, cllm_error *err);

void cllm_gguf_close(cllm_gguf *g); /* accepts NULL */
/* Whether the file behind an opened g is still the one that was mapped
 * (cllm_mmap_check: truncated or modified in place is CLLM_ERR_IO naming
 * the path); CLLM_OK for a file opened from memory. */
cllm_status cllm_gguf_check_file(const cllm_gguf *g, cllm_error *err);

const char *cllm_gguf_path(const cllm_gguf *g);
uint32_t cllm_gguf_version(const cllm_gguf *g);
uint32_t cllm_gguf_alignment(const cllm_gguf *g);
uint64_t cllm_gguf_data_offset(const cllm_gguf *g); /* file offset of the data section */

/* ---- key/values -------------------------------------------------------- */
uint64_t cllm_gguf_n_kv(const cllm_gguf *g);
const cllm_gguf_kv *cllm_gguf_kv_at(const cllm_gguf *g, uint64_t i); /* NULL if out of range */
const cllm_gguf_kv *cllm_gguf_find_kv(const cllm_gguf *g, const char *key); /* NULL if absent */

/* Typed getters. Each returns CLLM_OK, or CLLM_ERR_FORMAT with a message
 * naming the file and key when the key is missing, has another type, or its
 * value does not fit. Integer getters accept any integer type whose value
 * fits the requested one; the f32 getter accepts FLOAT32 and FLOAT64 (and
 * rejects a FLOAT64 outside float's range); bool and string need exactly
 * that type. On failure *out is unchanged. */
cllm_status cllm_gguf_get_u32(const cllm_gguf *g, const char *key, uint32_t *out, cllm_error *err);
cllm_status cllm_gguf_get_i32(const cllm_gguf *g, const char *key, int32_t *out, cllm_error *err);
cllm_status cllm_gguf_get_u64(const cllm_gguf *g, const char *key, uint64_t *out, cllm_error *err);
cllm_status cllm_gguf_get_f32(const cllm_gguf *g, const char *key, float *out, cllm_error *err);
cllm_status cllm_gguf_get_bool(const cllm_gguf *g, const char *key, bool *out, cllm_error *err);
cllm_status cllm_gguf_get_str(const cllm_gguf *g, const char *key, cllm_gguf_str *out, cllm_error *err);
/* Copies a string value into buf (NUL-terminated); CLLM_ERR_LIMIT if it needs
 * more than cap bytes, CLLM_ERR_FORMAT if it contains a NUL byte. */
cllm_status cllm_gguf_get_str_buf(const cllm_gguf *g, const char *key, char *buf, size_t cap,
                                  cllm_error *err);

/* Arrays. get_arr_n gives the element type and count of an ARRAY key. The
 * copy functions fill dst[0..n) and require the array to hold exactly n
 * elements; ints accept any integer element type whose values fit, floats
 * FLOAT32 or FLOAT64. get_arr_str returns the borrowed string table. */
cllm_status cllm_gguf_get_arr_n(const cllm_gguf *g, const char *key, cllm_gguf_type *elem_type,
                                uint64_t *n, cllm_error *err);
cllm_status cllm_gguf_get_arr_i32(const cllm_gguf *g, const char *key, int32_t *dst, uint64_t n,
                                  cllm_error *err);
cllm_status cllm_gguf_get_arr_f32(const cllm_gguf *g, const char *key, float *dst, uint64_t n,
                                  cllm_error *err);
cllm_status cllm_gguf_get_arr_str(const cllm_gguf *g, const char *key, const cllm_gguf_str **strs,
                                  uint64_t *n, cllm_error *err);

/* ---- tensors ----------------------------------------------------------- */
uint64_t cllm_gguf_n_tensors(const cllm_gguf *g);
const cllm_gguf_tensor *cllm_gguf_tensor_at(const cllm_gguf *g, uint64_t i); /* NULL if out of range */
const cllm_gguf_tensor *cllm_gguf_find_tensor(const cllm_gguf *g, const char *name); /* NULL if absent */

/* ---- writer ------------------------------------------------------------ */
typedef struct cllm_gguf_writer cllm_gguf_writer;

/* NULL only when out of memory. */
cllm_gguf_writer *cllm_gguf_writer_create(void);
void cllm_gguf_writer_destroy(cllm_gguf_writer *w); /* accepts NULL */

/* Scalar setters (key copied; replaces an existing key of any type).
 * Fail with CLLM_ERR_ARG on an empty or over-long key. */
cllm_status cllm_gguf_set_u8(cllm_gguf_writer *w, const char *key, uint8_t v, cllm_error *err);
cllm_status cllm_gguf_set_i8(cllm_gguf_writer *w, const char *key, int8_t v, cllm_error *err);
cllm_status cllm_gguf_set_u16(cllm_gguf_writer *w, const char *key, uint16_t v, cllm_error *err);
cllm_status cllm_gguf_set_i16(cllm_gguf_writer *w, const char *key, int16_t v, cllm_error *err);
cllm_status cllm_gguf_set_u32(cllm_gguf_writer *w, const char *key, uint32_t v, cllm_error *err);
cllm_status cllm_gguf_set_i32(cllm_gguf_writer *w, const char *key, int32_t v, cllm_error *err);
cllm_status cllm_gguf_set_u64(cllm_gguf_writer *w, const char *key, uint64_t v, cllm_error *err);
cllm_status cllm_gguf_set_i64(cllm_gguf_writer *w, const char *key, int64_t v, cllm_error *err);
cllm_status cllm_gguf_set_f32(cllm_gguf_writer *w, const char *key, float v, cllm_error *err);
cllm_status cllm_gguf_set_f64(cllm_gguf_writer *w, const char *key, double v, cllm_error *err);
cllm_status cllm_gguf_set_bool(cllm_gguf_writer *w, const char *key, bool v, cllm_error *err);
/* A NUL-terminated string, or `len` bytes (may contain any byte). */
cllm_status cllm_gguf_set_str(cllm_gguf_writer *w, const char *key, const char *v, cllm_error *err);
cllm_status cllm_gguf_set_str_n(cllm_gguf_writer *w, const char *key, const char *v, uint64_t len,
                                cllm_error *err);
/* A numeric or bool array: n elements of elem_type (not STRING/ARRAY) in
 * host (little-endian) layout, copied. */
cllm_status cllm_gguf_set_arr(cllm_gguf_writer *w, const char *key, cllm_gguf_type elem_type,
                              const void *data, uint64_t n, cllm_error *err);
/* A string array, copied; lens may be NULL for NUL-terminated strings. */
cllm_status cllm_gguf_set_arr_str(cllm_gguf_writer *w, const char *key, const char *const *strs,
                                  const uint64_t *lens, uint64_t n, cllm_error *err);
/* Copies a key/value read by cllm_gguf_open (any type, arrays included),
 * e.g. to carry metadata from one file into another. */
cllm_status cllm_gguf_set_kv(cllm_gguf_writer *w, const cllm_gguf_kv *kv, cllm_error *err);
/* Sets general.alignment (a power of two in [1, CLLM_GGUF_MAX_ALIGNMENT]). */
cllm_status cllm_gguf_set_alignment(cllm_gguf_writer *w, uint32_t alignment, cllm_error *err);

/* Adds a tensor: name 1..63 bytes and unique, 1..4 dims each >= 1 (dims[0]
 * the row length, a multiple of the type's block size), `data` holding
 * exactly cllm_ggml_row_size(type, dims[0]) * dims[1] * ... bytes (checked
 * against nbytes). `data` is BORROWED until cllm_gguf_writer_write returns.
 * Tensors are written in the order added. */
cllm_status cllm_gguf_add_tensor(cllm_gguf_writer *w, const char *name, uint32_t type,
                                 uint32_t n_dims, const int64_t *dims, const void *data,
                                 size_t nbytes, cllm_error *err);

/* Writes everything to `path` atomically. The writer stays usable (write
 * again, or destroy). */
cllm_status cllm_gguf_writer_write(const cllm_gguf_writer *w, const char *path, cllm_error *err);

#endif
