/*
 * gguf_get.c: lookups by key and tensor name, and typed getters with range
 * checks, over a file that gguf_read.c has already validated.
 *
 * Getters never trust the caller's expectation of a type: a key of another
 * type, or a value that does not fit, is an error naming the file and key.
 */
#include <math.h>
#include <string.h>

#include "cllm/core/byteorder.h"
#include "gguf_internal.h"

const char *cllm_gguf_type_name(uint32_t type) {
    static const char *names[CLLM_GGUF_TYPE_COUNT] = {
        "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
        "bool", "string", "array", "uint64", "int64", "float64"};
    return type < CLLM_GGUF_TYPE_COUNT ? names[type] : "unknown";
}

const char *cllm_gguf_path(const cllm_gguf *g) { return g->path; }
uint32_t cllm_gguf_version(const cllm_gguf *g) { return g->version; }
uint32_t cllm_gguf_alignment(const cllm_gguf *g) { return g->alignment; }
uint64_t cllm_gguf_data_offset(const cllm_gguf *g) { return g->data_offset; }
uint64_t cllm_gguf_n_kv(const cllm_gguf *g) { return g->n_kv; }
uint64_t cllm_gguf_n_tensors(const cllm_gguf *g) { return g->n_tensors; }

const cllm_gguf_kv *cllm_gguf_kv_at(const cllm_gguf *g, uint64_t i) {
    return i < g->n_kv ? &g->kvs[i] : NULL;
}

const cllm_gguf_tensor *cllm_gguf_tensor_at(const cllm_gguf *g, uint64_t i) {
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const cllm_gguf_kv *cllm_gguf_find_kv(const cllm_gguf *g, const char *key) {
    int64_t i = cllm_gguf_index_find(&g->kv_index, g->name_pool, g->key_offs, key, strlen(key));
    return i < 0 ? NULL : &g->kvs[i];
}

const cllm_gguf_tensor *cllm_gguf_find_tensor(const cllm_gguf *g, const char *name) {
    int64_t i = cllm_gguf_index_find(&g->tensor_index, g->name_pool, g->name_offs, name, strlen(name));
    return i < 0 ? NULL : &g->tensors[i];
}

/* ---- helpers ----------------------------------------------------------- */

static int is_unsigned(cllm_gguf_type t) {
    return t == CLLM_GGUF_UINT8 || t == CLLM_GGUF_UINT16 || t == CLLM_GGUF_UINT32 || t == CLLM_GGUF_UINT64;
}
static int is_signed(cllm_gguf_type t) {
    return t == CLLM_GGUF_INT8 || t == CLLM_GGUF_INT16 || t == CLLM_GGUF_INT32 || t == CLLM_GGUF_INT64;
}
static int is_float(cllm_gguf_type t) { return t == CLLM_GGUF_FLOAT32 || t == CLLM_GGUF_FLOAT64; }

static cllm_status find(const cllm_gguf *g, const char *key, const cllm_gguf_kv **kv, cllm_error *err) {
    *kv = cllm_gguf_find_kv(g, key);
    if (!*kv) return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: required key '%s' is missing", g->path, key);
    return CLLM_OK;
}

static cllm_status wrong_type(const cllm_gguf *g, const cllm_gguf_kv *kv, const char *want, cllm_error *err) {
    return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: key '%s' (at offset %llu) has type %s; expected %s",
                          g->path, kv->key, (unsigned long long)kv->file_offset,
                          cllm_gguf_type_name(kv->type), want);
}

/* An integer value (scalar or array element) as a sign flag + magnitude
 * pair, so every range check is exact. */
typedef struct {
    int neg;     /* value < 0 */
    uint64_t u;  /* value if !neg */
    int64_t i;   /* value if neg */
} int_val;

static int_val int_of_scalar(const cllm_gguf_kv *kv) {
    int_val v = {0, 0, 0};
    if (is_unsigned(kv->type)) v.u = kv->val.u64;
    else if (kv->val.i64 < 0) { v.neg = 1; v.i = kv->val.i64; }
    else v.u = (uint64_t)kv->val.i64;
    return v;
}

static int_val int_of_elem(cllm_gguf_type t, const uint8_t *base, uint64_t i) {
    int_val v = {0, 0, 0};
    int64_t s;
    switch (t) {
    case CLLM_GGUF_UINT8: v.u = base[i]; return v;
    case CLLM_GGUF_UINT16: v.u = cllm_get_le(base + 2 * i, 2); return v;
    case CLLM_GGUF_UINT32: v.u = cllm_get_le(base + 4 * i, 4); return v;
    case CLLM_GGUF_UINT64: v.u = cllm_get_le(base + 8 * i, 8); return v;
    case CLLM_GGUF_INT8: s = (int8_t)base[i]; break;
    case CLLM_GGUF_INT16: s = (int16_t)cllm_get_le(base + 2 * i, 2); break;
    case CLLM_GGUF_INT32: s = (int32_t)cllm_get_le(base + 4 * i, 4); break;
    default: s = (int64_t)cllm_get_le(base + 8 * i, 8); break; /* INT64 */
    }
    if (s < 0) { v.neg = 1; v.i = s; } else v.u = (uint64_t)s;
    return v;
}

static double float_of_elem(cllm_gguf_type t, const uint8_t *base, uint64_t i) {
    if (t == CLLM_GGUF_FLOAT32) {
        uint32_t b = (uint32_t)cllm_get_le(base + 4 * i, 4);
        float f;
        memcpy(&f, &b, 4);
        return f;
    }
    uint64_t b = cllm_get_le(base + 8 * i, 8);
    double d;
    memcpy(&d, &b, 8);
    return d;
}

/* Does v lie in [lo, hi]? (lo <= 0 <= hi) */
static int fits(int_val v, int64_t lo, uint64_t hi) { return v.neg ? v.i >= lo : v.u <= hi; }

static cllm_status range_error(const cllm_gguf *g, const cllm_gguf_kv *kv, int_val v, const char *want,
                               cllm_error *err) {
    if (v.neg)
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: key '%s' value %lld does not fit in %s", g->path,
                              kv->key, (long long)v.i, want);
    return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: key '%s' value %llu does not fit in %s", g->path,
                          kv->key, (unsigned long long)v.u, want);
}

static cllm_status get_int(const cllm_gguf *g, const char *key, int64_t lo, uint64_t hi, const char *want,
                           int_val *out, cllm_error *err) {
    const cllm_gguf_kv *kv;
    cllm_status st = find(g, key, &kv, err);
    if (st) return st;
    if (!is_unsigned(kv->type) && !is_signed(kv->type)) return wrong_type(g, kv, want, err);
    int_val v = int_of_scalar(kv);
    if (!fits(v, lo, hi)) return range_error(g, kv, v, want, err);
    *out = v;
    return CLLM_OK;
}

/* ---- scalar getters ---------------------------------------------------- */

cllm_status cllm_gguf_get_u32(const cllm_gguf *g, const char *key, uint32_t *out, cllm_error *err) {
    int_val v;
    cllm_status st = get_int(g, key, 0, UINT32_MAX, "uint32", &v, err);
    if (!st) *out = (uint32_t)v.u;
    return st;
}

cllm_status cllm_gguf_get_i32(const cllm_gguf *g, const char *key, int32_t *out, cllm_error *err) {
    int_val v;
    cllm_status st = get_int(g, key, INT32_MIN, INT32_MAX, "int32", &v, err);
    if (!st) *out = v.neg ? (int32_t)v.i : (int32_t)v.u;
    return st;
}

cllm_status cllm_gguf_get_u64(const cllm_gguf *g, const char *key, uint64_t *out, cllm_error *err) {
    int_val v;
    cllm_status st = get_int(g, key, 0, UINT64_MAX, "uint64", &v, err);
    if (!st) *out = v.u;
    return st;
}

cllm_status cllm_gguf_get_f32(const cllm_gguf *g, const char *key, float *out, cllm_error *err) {
    const cllm_gguf_kv *kv;
    cllm_status st = find(g, key, &kv, err);
    if (st) return st;
    if (!is_float(kv->type)) return wrong_type(g, kv, "float32", err);
    double d = kv->val.f64;
    if (isfinite(d) && fabs(d) > 3.4028234663852886e38)
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: key '%s' value %g does not fit in float32", g->path,
                              key, d);
    *out = (float)d;
    return CLLM_OK;
}

cllm_status cllm_gguf_get_bool(const cllm_gguf *g, const char *key, bool *out, cllm_error *err) {
    const cllm_gguf_kv *kv;
    cllm_status st = find(g, key, &kv, err);
    if (st) return st;
    if (kv->type != CLLM_GGUF_BOOL) return wrong_type(g, kv, "bool", err);
    *out = kv->val.b;
    return CLLM_OK;
}

cllm_status cllm_gguf_get_str(const cllm_gguf *g, const char *key, cllm_gguf_str *out, cllm_error *err) {
    const cllm_gguf_kv *kv;
    cllm_status st = find(g, key, &kv, err);
    if (st) return st;
    if (kv->type != CLLM_GGUF_STRING) return wrong_type(g, kv, "string", err);
    *out = kv->val.str;
    return CLLM_OK;
}

cllm_status cllm_gguf_get_str_buf(const cllm_gguf *g, const char *key, char *buf, size_t cap,
                                  cllm_error *err) {
    cllm_gguf_str s = {NULL, 0};
    cllm_status st = cllm_gguf_get_str(g, key, &s, err);
    if (st) return st;
    if (s.len >= cap)
        return cllm_error_set(err, CLLM_ERR_LIMIT, "%s: key '%s' is a %llu-byte string; at most %zu allowed",
                              g->path, key, (unsigned long long)s.len, cap ? cap - 1 : 0);
    if (memchr(s.data, '\0', (size_t)s.len))
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: key '%s' contains a NUL byte", g->path, key);
    memcpy(buf, s.data, (size_t)s.len);
    buf[s.len] = '\0';
    return CLLM_OK;
}

/* ---- array getters ----------------------------------------------------- */

static cllm_status find_arr(const cllm_gguf *g, const char *key, const cllm_gguf_kv **kv, cllm_error *err) {
    cllm_status st = find(g, key, kv, err);
    if (st) return st;
    if ((*kv)->type != CLLM_GGUF_ARRAY) return wrong_type(g, *kv, "array", err);
    return CLLM_OK;
}

static cllm_status check_count(const cllm_gguf *g, const cllm_gguf_kv *kv, uint64_t n, cllm_error *err) {
    if (kv->arr_n != n)
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: array '%s' has %llu elements; expected %llu", g->path,
                              kv->key, (unsigned long long)kv->arr_n, (unsigned long long)n);
    return CLLM_OK;
}

cllm_status cllm_gguf_get_arr_n(const cllm_gguf *g, const char *key, cllm_gguf_type *elem_type,
                                uint64_t *n, cllm_error *err) {
    const cllm_gguf_kv *kv;
    cllm_status st = find_arr(g, key, &kv, err);
    if (st) return st;
    if (elem_type) *elem_type = kv->arr_type;
    if (n) *n = kv->arr_n;
    return CLLM_OK;
}

cllm_status cllm_gguf_get_arr_i32(const cllm_gguf *g, const char *key, int32_t *dst, uint64_t n,
                                  cllm_error *err) {
    const cllm_gguf_kv *kv;
    cllm_status st = find_arr(g, key, &kv, err);
    if (st) return st;
    if (!is_unsigned(kv->arr_type) && !is_signed(kv->arr_type))
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: array '%s' holds %s; expected integers", g->path, key,
                              cllm_gguf_type_name(kv->arr_type));
    if ((st = check_count(g, kv, n, err))) return st;
    for (uint64_t i = 0; i < n; i++) {
        int_val v = int_of_elem(kv->arr_type, kv->arr_data, i);
        if (!fits(v, INT32_MIN, INT32_MAX))
            return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: array '%s' element %llu does not fit in int32",
                                  g->path, key, (unsigned long long)i);
        dst[i] = v.neg ? (int32_t)v.i : (int32_t)v.u;
    }
    return CLLM_OK;
}

cllm_status cllm_gguf_get_arr_f32(const cllm_gguf *g, const char *key, float *dst, uint64_t n,
                                  cllm_error *err) {
    const cllm_gguf_kv *kv;
    cllm_status st = find_arr(g, key, &kv, err);
    if (st) return st;
    if (!is_float(kv->arr_type))
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: array '%s' holds %s; expected floats", g->path, key,
                              cllm_gguf_type_name(kv->arr_type));
    if ((st = check_count(g, kv, n, err))) return st;
    for (uint64_t i = 0; i < n; i++) {
        double d = float_of_elem(kv->arr_type, kv->arr_data, i);
        if (isfinite(d) && fabs(d) > 3.4028234663852886e38)
            return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: array '%s' element %llu does not fit in float32",
                                  g->path, key, (unsigned long long)i);
        dst[i] = (float)d;
    }
    return CLLM_OK;
}

cllm_status cllm_gguf_get_arr_str(const cllm_gguf *g, const char *key, const cllm_gguf_str **strs,
                                  uint64_t *n, cllm_error *err) {
    const cllm_gguf_kv *kv;
    cllm_status st = find_arr(g, key, &kv, err);
    if (st) return st;
    if (kv->arr_type != CLLM_GGUF_STRING)
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: array '%s' holds %s; expected strings", g->path, key,
                              cllm_gguf_type_name(kv->arr_type));
    *strs = kv->arr_str;
    *n = kv->arr_n;
    return CLLM_OK;
}
