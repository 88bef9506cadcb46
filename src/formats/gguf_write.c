/*
 * gguf_write.c: builds a GGUF v3 file from key/values and tensors and writes
 * it atomically (layout in cllm/formats/gguf.h).
 *
 * Each value is serialized into its on-disk bytes when it is set, so writing
 * is a plain concatenation. Tensor data is borrowed, never copied, and laid
 * out the way ggml does: data section aligned, each tensor at the next
 * multiple of the alignment after the previous one, the last one padded too.
 * The writer validates what it is given with the same rules as the reader,
 * so it cannot produce a file cllm_gguf_open would reject.
 */
#include <stdlib.h>
#include <string.h>

#include "cllm/core/byteorder.h"
#include "cllm/core/fileio.h"
#include "cllm/formats/gguf.h"
#include "gguf_internal.h"

typedef struct {
    char *key;        /* owned, NUL-terminated */
    uint32_t type;    /* cllm_gguf_type */
    uint8_t *payload; /* [payload_len] serialized value (after the type id), owned */
    size_t payload_len;
} wkv;

typedef struct {
    char *name;       /* owned */
    uint32_t type;    /* ggml type */
    uint32_t n_dims;
    int64_t dims[CLLM_GGUF_MAX_DIMS];
    const void *data; /* [nbytes], borrowed */
    size_t nbytes;
} wtensor;

struct cllm_gguf_writer {
    wkv *kvs; /* [n_kv] */
    size_t n_kv, cap_kv;
    wtensor *ts; /* [n_t] */
    size_t n_t, cap_t;
    uint32_t alignment;
};

cllm_gguf_writer *cllm_gguf_writer_create(void) {
    cllm_gguf_writer *w = calloc(1, sizeof *w);
    if (w) w->alignment = CLLM_GGUF_DEFAULT_ALIGNMENT;
    return w;
}

void cllm_gguf_writer_destroy(cllm_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].payload);
    }
    for (size_t i = 0; i < w->n_t; i++) free(w->ts[i].name);
    free(w->kvs);
    free(w->ts);
    free(w);
}

/* Takes ownership of payload (freed on failure too). Replaces an existing key. */
static cllm_status put_kv(cllm_gguf_writer *w, const char *key, uint32_t type, uint8_t *payload,
                          size_t len, cllm_error *err) {
    size_t klen = key ? strlen(key) : 0;
    if (klen == 0 || klen > CLLM_GGUF_MAX_KEY) {
        free(payload);
        return cllm_error_set(err, CLLM_ERR_ARG, "gguf writer: key must be 1..%d bytes (got %zu)",
                              CLLM_GGUF_MAX_KEY, klen);
    }
    if (strcmp(key, "general.alignment") == 0) {
        uint64_t a = type == CLLM_GGUF_UINT32 ? cllm_get_le32(payload) : 0;
        if (a == 0 || (a & (a - 1)) || a > CLLM_GGUF_MAX_ALIGNMENT) {
            free(payload);
            return cllm_error_set(err, CLLM_ERR_ARG,
                                  "gguf writer: general.alignment must be a uint32 power of two in [1, %u]",
                                  CLLM_GGUF_MAX_ALIGNMENT);
        }
        w->alignment = (uint32_t)a;
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, key) == 0) {
            free(w->kvs[i].payload);
            w->kvs[i].type = type;
            w->kvs[i].payload = payload;
            w->kvs[i].payload_len = len;
            return CLLM_OK;
        }
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 32;
        wkv *nk = realloc(w->kvs, cap * sizeof *nk);
        if (!nk) {
            free(payload);
            return cllm_error_set(err, CLLM_ERR_NOMEM, "gguf writer: out of memory for key '%s'", key);
        }
        w->kvs = nk;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(payload);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "gguf writer: out of memory for key '%s'", key);
    }
    w->kvs[w->n_kv++] = (wkv){k, type, payload, len};
    return CLLM_OK;
}

static cllm_status put_scalar(cllm_gguf_writer *w, const char *key, uint32_t type, uint64_t bits,
                              cllm_error *err) {
    size_t n = gguf_scalar_size(type);
    uint8_t *p = malloc(n);
    if (!p) return cllm_error_set(err, CLLM_ERR_NOMEM, "gguf writer: out of memory for key '%s'", key);
    cllm_put_le(p, bits, n);
    return put_kv(w, key, type, p, n, err);
}

cllm_status cllm_gguf_set_u8(cllm_gguf_writer *w, const char *key, uint8_t v, cllm_error *err) {
    return put_scalar(w, key, CLLM_GGUF_UINT8, v, err);
}
cllm_status cllm_gguf_set_i8(cllm_gguf_writer *w, const char *key, int8_t v, cllm_error *err) {
    return put_scalar(w, key, CLLM_GGUF_INT8, (uint8_t)v, err);
}
cllm_status cllm_gguf_set_u16(cllm_gguf_writer *w, const char *key, uint16_t v, cllm_error *err) {
    return put_scalar(w, key, CLLM_GGUF_UINT16, v, err);
}
cllm_status cllm_gguf_set_i16(cllm_gguf_writer *w, const char *key, int16_t v, cllm_error *err) {
    return put_scalar(w, key, CLLM_GGUF_INT16, (uint16_t)v, err);
}
cllm_status cllm_gguf_set_u32(cllm_gguf_writer *w, const char *key, uint32_t v, cllm_error *err) {
    return put_scalar(w, key, CLLM_GGUF_UINT32, v, err);
}
cllm_status cllm_gguf_set_i32(cllm_gguf_writer *w, const char *key, int32_t v, cllm_error *err) {
    return put_scalar(w, key, CLLM_GGUF_INT32, (uint32_t)v, err);
}
cllm_status cllm_gguf_set_u64(cllm_gguf_writer *w, const char *key, uint64_t v, cllm_error *err) {
    return put_scalar(w, key, CLLM_GGUF_UINT64, v, err);
}
cllm_status cllm_gguf_set_i64(cllm_gguf_writer *w, const char *key, int64_t v, cllm_error *err) {
    return put_scalar(w, key, CLLM_GGUF_INT64, (uint64_t)v, err);
}
cllm_status cllm_gguf_set_f32(cllm_gguf_writer *w, const char *key, float v, cllm_error *err) {
    uint32_t b;
    memcpy(&b, &v, 4);
    return put_scalar(w, key, CLLM_GGUF_FLOAT32, b, err);
}
cllm_status cllm_gguf_set_f64(cllm_gguf_writer *w, const char *key, double v, cllm_error *err) {
    uint64_t b;
    memcpy(&b, &v, 8);
    return put_scalar(w, key, CLLM_GGUF_FLOAT64, b, err);
}
cllm_status cllm_gguf_set_bool(cllm_gguf_writer *w, const char *key, bool v, cllm_error *err) {
    return put_scalar(w, key, CLLM_GGUF_BOOL, v ? 1 : 0, err);
}

cllm_status cllm_gguf_set_str_n(cllm_gguf_writer *w, const char *key, const char *v, uint64_t len,
                                cllm_error *err) {
    size_t total;
    if (len > SIZE_MAX - 8 || !cllm_size_add(8, (size_t)len, &total))
        return cllm_error_set(err, CLLM_ERR_ARG, "gguf writer: string for '%s' too long", key ? key : "");
    uint8_t *p = malloc(total);
    if (!p) return cllm_error_set(err, CLLM_ERR_NOMEM, "gguf writer: out of memory for key '%s'", key ? key : "");
    cllm_put_le(p, len, 8);
    if (len) memcpy(p + 8, v, (size_t)len);
    return put_kv(w, key, CLLM_GGUF_STRING, p, total, err);
}

cllm_status cllm_gguf_set_str(cllm_gguf_writer *w, const char *key, const char *v, cllm_error *err) {
    return cllm_gguf_set_str_n(w, key, v ? v : "", v ? strlen(v) : 0, err);
}

cllm_status cllm_gguf_set_arr(cllm_gguf_writer *w, const char *key, cllm_gguf_type elem_type,
                              const void *data, uint64_t n, cllm_error *err) {
    size_t es = gguf_scalar_size(elem_type), body, total;
    if (!es)
        return cllm_error_set(err, CLLM_ERR_ARG, "gguf writer: array '%s' element type %s is not numeric/bool",
                              key ? key : "", cllm_gguf_type_name(elem_type));
    if (n > SIZE_MAX || !cllm_size_mul((size_t)n, es, &body) || !cllm_size_add(body, 12, &total))
        return cllm_error_set(err, CLLM_ERR_ARG, "gguf writer: array '%s' too long", key ? key : "");
    if (elem_type == CLLM_GGUF_BOOL)
        for (uint64_t i = 0; i < n; i++)
            if (((const uint8_t *)data)[i] > 1)
                return cllm_error_set(err, CLLM_ERR_ARG, "gguf writer: array '%s' element %llu is not a bool",
                                      key ? key : "", (unsigned long long)i);
    uint8_t *p = malloc(total);
    if (!p) return cllm_error_set(err, CLLM_ERR_NOMEM, "gguf writer: out of memory for array '%s'", key ? key : "");
    cllm_put_le(p, elem_type, 4);
    cllm_put_le(p + 4, n, 8);
    /* elements: host layout is little-endian on every platform cllm builds for */
    if (body) memcpy(p + 12, data, body);
    return put_kv(w, key, CLLM_GGUF_ARRAY, p, total, err);
}

cllm_status cllm_gguf_set_arr_str(cllm_gguf_writer *w, const char *key, const char *const *strs,
                                  const uint64_t *lens, uint64_t n, cllm_error *err) {
    size_t total = 12;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t l = lens ? lens[i] : strlen(strs[i]);
        if (l > SIZE_MAX || !cllm_size_add(total, 8, &total) || !cllm_size_add(total, (size_t)l, &total))
            return cllm_error_set(err, CLLM_ERR_ARG, "gguf writer: string array '%s' too long", key ? key : "");
    }
    uint8_t *p = malloc(total);
    if (!p) return cllm_error_set(err, CLLM_ERR_NOMEM, "gguf writer: out of memory for array '%s'", key ? key : "");
    cllm_put_le(p, CLLM_GGUF_STRING, 4);
    cllm_put_le(p + 4, n, 8);
    size_t at = 12;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t l = lens ? lens[i] : strlen(strs[i]);
        cllm_put_le(p + at, l, 8);
        if (l) memcpy(p + at + 8, strs[i], (size_t)l);
        at += 8 + (size_t)l;
    }
    return put_kv(w, key, CLLM_GGUF_ARRAY, p, total, err);
}

cllm_status cllm_gguf_set_alignment(cllm_gguf_writer *w, uint32_t alignment, cllm_error *err) {
    return cllm_gguf_set_u32(w, "general.alignment", alignment, err);
}

cllm_status cllm_gguf_add_tensor(cllm_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                 const int64_t *dims, const void *data, size_t nbytes, cllm_error *err) {
    size_t nlen = name ? strlen(name) : 0;
    if (nlen == 0 || nlen >= CLLM_GGUF_MAX_NAME)
        return cllm_error_set(err, CLLM_ERR_ARG, "gguf writer: tensor name '%s' must be 1..%d bytes",
                              name ? name : "", CLLM_GGUF_MAX_NAME - 1);
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->ts[i].name, name) == 0)
            return cllm_error_set(err, CLLM_ERR_ARG, "gguf writer: duplicate tensor name '%s'", name);
    if (n_dims < 1 || n_dims > CLLM_GGUF_MAX_DIMS)
        return cllm_error_set(err, CLLM_ERR_ARG, "gguf writer: tensor '%s' has %u dims; must be 1..%d", name,
                              n_dims, CLLM_GGUF_MAX_DIMS);
    int64_t n_el = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (dims[d] < 1 || __builtin_mul_overflow(n_el, dims[d], &n_el))
            return cllm_error_set(err, CLLM_ERR_ARG, "gguf writer: tensor '%s' dims[%u] = %lld is invalid", name,
                                  d, (long long)dims[d]);
    }
    size_t row, expect;
    if (!cllm_ggml_row_size(type, dims[0], &row) ||
        !cllm_size_mul(row, (size_t)(n_el / dims[0]), &expect))
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "gguf writer: tensor '%s' of type %s (id %u): row length %lld is not a whole "
                              "number of blocks, or the type is unknown", name, cllm_ggml_type_name(type), type,
                              (long long)dims[0]);
    if (expect != nbytes)
        return cllm_error_set(err, CLLM_ERR_ARG, "gguf writer: tensor '%s' needs %zu bytes of %s; given %zu",
                              name, expect, cllm_ggml_type_name(type), nbytes);
    if (!data) return cllm_error_set(err, CLLM_ERR_ARG, "gguf writer: tensor '%s' has no data", name);
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *nt = realloc(w->ts, cap * sizeof *nt);
        if (!nt) return cllm_error_set(err, CLLM_ERR_NOMEM, "gguf writer: out of memory for tensor '%s'", name);
        w->ts = nt;
        w->cap_t = cap;
    }
    wtensor t = {0};
    t.name = strdup(name);
    if (!t.name) return cllm_error_set(err, CLLM_ERR_NOMEM, "gguf writer: out of memory for tensor '%s'", name);
    t.type = type;
    t.n_dims = n_dims;
    for (uint32_t d = 0; d < CLLM_GGUF_MAX_DIMS; d++) t.dims[d] = d < n_dims ? dims[d] : 1;
    t.data = data;
    t.nbytes = nbytes;
    w->ts[w->n_t++] = t;
    return CLLM_OK;
}

static void write_u32(cllm_atomic_file *af, uint64_t v) {
    uint8_t b[4];
    cllm_put_le(b, v, 4);
    cllm_atomic_write(af, b, 4);
}
static void write_u64(cllm_atomic_file *af, uint64_t v) {
    uint8_t b[8];
    cllm_put_le(b, v, 8);
    cllm_atomic_write(af, b, 8);
}

cllm_status cllm_gguf_writer_write(const cllm_gguf_writer *w, const char *path, cllm_error *err) {
    uint64_t a = w->alignment;
    cllm_atomic_file af;
    cllm_status st = cllm_atomic_begin(&af, path, err);
    if (st) return st;
    cllm_atomic_write(&af, CLLM_GGUF_MAGIC, 4);
    write_u32(&af, CLLM_GGUF_VERSION);
    write_u64(&af, w->n_t);
    write_u64(&af, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        size_t kl = strlen(w->kvs[i].key);
        write_u64(&af, kl);
        cllm_atomic_write(&af, w->kvs[i].key, kl);
        write_u32(&af, w->kvs[i].type);
        cllm_atomic_write(&af, w->kvs[i].payload, w->kvs[i].payload_len);
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->ts[i];
        size_t nl = strlen(t->name);
        write_u64(&af, nl);
        cllm_atomic_write(&af, t->name, nl);
        write_u32(&af, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) write_u64(&af, (uint64_t)t->dims[d]);
        write_u32(&af, t->type);
        write_u64(&af, offset);
        if (__builtin_add_overflow(offset, (uint64_t)t->nbytes + a - 1, &offset)) {
            cllm_atomic_abort(&af);
            return cllm_error_set(err, CLLM_ERR_LIMIT, "%s: tensor data too large", path);
        }
        offset = offset / a * a;
    }
    cllm_atomic_pad(&af, a);
    for (size_t i = 0; i < w->n_t; i++) {
        cllm_atomic_write(&af, w->ts[i].data, w->ts[i].nbytes);
        cllm_atomic_pad(&af, a);
    }
    return cllm_atomic_commit(&af, err);
}

cllm_status cllm_gguf_set_kv(cllm_gguf_writer *w, const cllm_gguf_kv *kv, cllm_error *err) {
    switch (kv->type) {
    case CLLM_GGUF_UINT8: return cllm_gguf_set_u8(w, kv->key, (uint8_t)kv->val.u64, err);
    case CLLM_GGUF_INT8: return cllm_gguf_set_i8(w, kv->key, (int8_t)kv->val.i64, err);
    case CLLM_GGUF_UINT16: return cllm_gguf_set_u16(w, kv->key, (uint16_t)kv->val.u64, err);
    case CLLM_GGUF_INT16: return cllm_gguf_set_i16(w, kv->key, (int16_t)kv->val.i64, err);
    case CLLM_GGUF_UINT32: return cllm_gguf_set_u32(w, kv->key, (uint32_t)kv->val.u64, err);
    case CLLM_GGUF_INT32: return cllm_gguf_set_i32(w, kv->key, (int32_t)kv->val.i64, err);
    case CLLM_GGUF_UINT64: return cllm_gguf_set_u64(w, kv->key, kv->val.u64, err);
    case CLLM_GGUF_INT64: return cllm_gguf_set_i64(w, kv->key, kv->val.i64, err);
    case CLLM_GGUF_FLOAT32: return cllm_gguf_set_f32(w, kv->key, (float)kv->val.f64, err);
    case CLLM_GGUF_FLOAT64: return cllm_gguf_set_f64(w, kv->key, kv->val.f64, err);
    case CLLM_GGUF_BOOL: return cllm_gguf_set_bool(w, kv->key, kv->val.b, err);
    case CLLM_GGUF_STRING: return cllm_gguf_set_str_n(w, kv->key, kv->val.str.data, kv->val.str.len, err);
    case CLLM_GGUF_ARRAY: break;
    default:
        return cllm_error_set(err, CLLM_ERR_ARG, "gguf writer: key '%s' has unknown type %u", kv->key, kv->type);
    }
    if (kv->arr_type != CLLM_GGUF_STRING)
        return cllm_gguf_set_arr(w, kv->key, kv->arr_type, kv->arr_data, kv->arr_n, err);
    size_t n = (size_t)kv->arr_n;
    const char **strs = malloc((n ? n : 1) * sizeof *strs);
    uint64_t *lens = malloc((n ? n : 1) * sizeof *lens);
    cllm_status st;
    if (!strs || !lens) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "gguf writer: out of memory copying '%s'", kv->key);
    } else {
        for (size_t i = 0; i < n; i++) {
            strs[i] = kv->arr_str[i].data;
            lens[i] = kv->arr_str[i].len;
        }
        st = cllm_gguf_set_arr_str(w, kv->key, strs, lens, n, err);
    }
    free(strs);
    free(lens);
    return st;
}
