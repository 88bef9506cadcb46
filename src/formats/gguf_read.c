/*
 * gguf_read.c: maps a GGUF file and validates every byte of its structure
 * before handing it out (the checks are listed in cllm/formats/gguf.h).
 *
 * The parser walks the file once with a bounds-checked cursor: every count
 * is compared with the bytes left before anything is allocated for it, and
 * every product is overflow-checked. Lookups and typed getters live in
 * gguf_get.c; writing lives in gguf_write.c. This file does not interpret
 * keys beyond general.alignment.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/core/byteorder.h"
#include "cllm/core/hash.h"
#include "gguf_internal.h"

/* Smallest encodings, used to bound counts by the bytes left:
 * a key/value is an 8-byte length, >= 1 key byte, a 4-byte type, >= 1 value
 * byte; a tensor info is a name (8 + >= 1), n_dims (4), one dim (8), the
 * type (4) and the offset (8). */
#define MIN_KV_BYTES 14u
#define MIN_TENSOR_BYTES 33u
#define MAX_RECORDS 0x7fffffffu /* record numbers are stored in 32 bits */

typedef struct {
    const uint8_t *p;
    size_t size;
    size_t pos;
    const char *name; /* file name for messages */
    cllm_error *err;
} cursor;

static cllm_status failf(cursor *c, cllm_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static cllm_status failf(cursor *c, cllm_status st, const char *fmt, ...) {
    char buf[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return cllm_error_set(c->err, st, "%s: %s", c->name, buf);
}

static size_t left(const cursor *c) { return c->size - c->pos; }

/* Checks that n bytes remain for `field`; the message says where. */
static cllm_status need(cursor *c, uint64_t n, const char *field) {
    if (n > left(c))
        return failf(c, CLLM_ERR_FORMAT,
                     "%s at offset %zu needs %llu bytes but only %zu remain (truncated file?)", field,
                     c->pos, (unsigned long long)n, left(c));
    return CLLM_OK;
}

static cllm_status rd_u32(cursor *c, uint32_t *v, const char *field) {
    cllm_status st = need(c, 4, field);
    if (st) return st;
    *v = cllm_get_le32(c->p + c->pos);
    c->pos += 4;
    return CLLM_OK;
}

static cllm_status rd_u64(cursor *c, uint64_t *v, const char *field) {
    cllm_status st = need(c, 8, field);
    if (st) return st;
    *v = cllm_get_le64(c->p + c->pos);
    c->pos += 8;
    return CLLM_OK;
}

/* Reads a string header and body; *s points into the file. */
static cllm_status rd_str(cursor *c, cllm_gguf_str *s, const char *field) {
    size_t at = c->pos;
    uint64_t len;
    cllm_status st = rd_u64(c, &len, field);
    if (st) return st;
    if (len > left(c))
        return failf(c, CLLM_ERR_FORMAT,
                     "%s at offset %zu has length %llu but only %zu bytes remain", field, at,
                     (unsigned long long)len, left(c));
    s->data = (const char *)c->p + c->pos;
    s->len = len;
    c->pos += (size_t)len;
    return CLLM_OK;
}

/* ---- growable pools (offsets stay valid across realloc) -------------- */

typedef struct {
    char *buf;
    size_t len, cap;
} char_pool;

static int pool_add(char_pool *p, const char *s, size_t len, size_t *off) {
    size_t need_len;
    if (!cllm_size_add(p->len, len + 1, &need_len)) return 0;
    if (need_len > p->cap) {
        size_t cap = p->cap ? p->cap : 4096;
        while (cap < need_len) cap *= 2;
        char *nb = realloc(p->buf, cap);
        if (!nb) return 0;
        p->buf = nb;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, s, len);
    p->buf[p->len + len] = '\0';
    *off = p->len;
    p->len = need_len;
    return 1;
}

/* ---- name index -------------------------------------------------------- */

uint64_t cllm_gguf_hash_name(const char *s, size_t len) {
    return cllm_fnv1a64(s, len, CLLM_FNV_OFFSET);
}

int64_t cllm_gguf_index_find(const gguf_name_index *ix, const char *pool, const size_t *offs,
                             const char *s, size_t len) {
    if (!ix->cap) return -1;
    size_t mask = ix->cap - 1;
    for (size_t i = (size_t)cllm_gguf_hash_name(s, len) & mask;; i = (i + 1) & mask) {
        uint32_t slot = ix->slots[i];
        if (!slot) return -1;
        const char *name = pool + offs[slot - 1];
        if (memcmp(name, s, len) == 0 && name[len] == '\0') return slot - 1;
    }
}

static int index_init(gguf_name_index *ix, uint64_t n) {
    size_t cap = 16;
    while (cap <= 2 * n) cap *= 2;
    ix->slots = calloc(cap, sizeof *ix->slots);
    ix->cap = ix->slots ? cap : 0;
    return ix->slots != NULL;
}

static void index_insert(gguf_name_index *ix, const char *s, size_t len, uint32_t record) {
    size_t mask = ix->cap - 1;
    size_t i = (size_t)cllm_gguf_hash_name(s, len) & mask;
    while (ix->slots[i]) i = (i + 1) & mask;
    ix->slots[i] = record + 1;
}

/* ---- parse ------------------------------------------------------------ */

typedef struct {
    cursor c;
    cllm_gguf *g;
    char_pool names;
    cllm_gguf_str *strs; /* string-array elements, fixed up at the end */
    size_t n_strs, cap_strs;
    size_t *arr_str_offs; /* [n_kv] index into strs for string arrays */
} parser;

static cllm_status nomem(parser *ps, const char *what) {
    return failf(&ps->c, CLLM_ERR_NOMEM, "out of memory while reading %s", what);
}

/* Validates a key or tensor name: non-empty, no NUL, at most max bytes. */
static cllm_status check_name(parser *ps, const cllm_gguf_str *s, size_t at, const char *what,
                              uint64_t max) {
    if (s->len == 0) return failf(&ps->c, CLLM_ERR_FORMAT, "%s at offset %zu is empty", what, at);
    if (s->len > max)
        return failf(&ps->c, CLLM_ERR_FORMAT, "%s at offset %zu is %llu bytes long; the limit is %llu",
                     what, at, (unsigned long long)s->len, (unsigned long long)max);
    if (memchr(s->data, '\0', (size_t)s->len))
        return failf(&ps->c, CLLM_ERR_FORMAT, "%s at offset %zu contains a NUL byte", what, at);
    return CLLM_OK;
}

static cllm_status parse_scalar(parser *ps, cllm_gguf_kv *kv, uint32_t type, const char *field) {
    cursor *c = &ps->c;
    size_t at = c->pos;
    if (type == CLLM_GGUF_STRING) return rd_str(c, &kv->val.str, field);
    size_t n = gguf_scalar_size(type);
    cllm_status st = need(c, n, field);
    if (st) return st;
    uint64_t raw = cllm_get_le(c->p + c->pos, (size_t)n);
    c->pos += n;
    switch (type) {
    case CLLM_GGUF_UINT8: case CLLM_GGUF_UINT16: case CLLM_GGUF_UINT32: case CLLM_GGUF_UINT64:
        kv->val.u64 = raw;
        break;
    case CLLM_GGUF_INT8: kv->val.i64 = (int8_t)raw; break;
    case CLLM_GGUF_INT16: kv->val.i64 = (int16_t)raw; break;
    case CLLM_GGUF_INT32: kv->val.i64 = (int32_t)raw; break;
    case CLLM_GGUF_INT64: kv->val.i64 = (int64_t)raw; break;
    case CLLM_GGUF_FLOAT32: {
        uint32_t b = (uint32_t)raw;
        float f;
        memcpy(&f, &b, 4);
        kv->val.f64 = f;
        break;
    }
    case CLLM_GGUF_FLOAT64: memcpy(&kv->val.f64, &raw, 8); break;
    case CLLM_GGUF_BOOL:
        if (raw > 1)
            return failf(c, CLLM_ERR_FORMAT, "%s at offset %zu is a bool with value %llu (must be 0 or 1)",
                         field, at, (unsigned long long)raw);
        kv->val.b = raw != 0;
        break;
    default:
        return failf(c, CLLM_ERR_INTERNAL, "%s: scalar type %u", field, type);
    }
    return CLLM_OK;
}

static cllm_status parse_array(parser *ps, uint64_t kv_i, cllm_gguf_kv *kv, const char *field) {
    cursor *c = &ps->c;
    size_t at = c->pos;
    uint32_t et;
    cllm_status st = rd_u32(c, &et, field);
    if (st) return st;
    if (et == CLLM_GGUF_ARRAY)
        return failf(c, CLLM_ERR_FORMAT, "%s at offset %zu is an array of arrays (not supported)", field, at);
    if (et >= CLLM_GGUF_TYPE_COUNT)
        return failf(c, CLLM_ERR_FORMAT, "%s at offset %zu has unknown element type %u", field, at, et);
    size_t n_at = c->pos;
    uint64_t n;
    if ((st = rd_u64(c, &n, field))) return st;
    size_t elem = et == CLLM_GGUF_STRING ? 8 : gguf_scalar_size(et); /* strings: >= their 8-byte length */
    if (n > left(c) / elem)
        return failf(c, CLLM_ERR_FORMAT,
                     "%s at offset %zu has %llu elements of type %s but only %zu bytes remain", field,
                     n_at, (unsigned long long)n, cllm_gguf_type_name(et), left(c));
    kv->arr_type = (cllm_gguf_type)et;
    kv->arr_n = n;
    kv->arr_data = c->p + c->pos;
    if (et != CLLM_GGUF_STRING) {
        if (et == CLLM_GGUF_BOOL)
            for (uint64_t i = 0; i < n; i++)
                if (c->p[c->pos + i] > 1)
                    return failf(c, CLLM_ERR_FORMAT, "%s element %llu at offset %zu is a bool with value %u",
                                 field, (unsigned long long)i, c->pos + (size_t)i, c->p[c->pos + i]);
        c->pos += (size_t)(n * elem);
        return CLLM_OK;
    }
    /* string array: n <= bytes left / 8, so the pool stays bounded by the file size */
    size_t total;
    if (!cllm_size_add(ps->n_strs, (size_t)n, &total)) return nomem(ps, field);
    if (total > ps->cap_strs) {
        size_t cap = ps->cap_strs ? ps->cap_strs : 256;
        while (cap < total) cap *= 2;
        cllm_gguf_str *ns = realloc(ps->strs, cap * sizeof *ns);
        if (!ns) return nomem(ps, field);
        ps->strs = ns;
        ps->cap_strs = cap;
    }
    ps->arr_str_offs[kv_i] = ps->n_strs;
    for (uint64_t i = 0; i < n; i++) {
        char efield[160];
        snprintf(efield, sizeof efield, "%s element %llu", field, (unsigned long long)i);
        if ((st = rd_str(c, &ps->strs[ps->n_strs + i], efield))) return st;
    }
    ps->n_strs = total;
    return CLLM_OK;
}

static cllm_status parse_kvs(parser *ps) {
    cursor *c = &ps->c;
    cllm_gguf *g = ps->g;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        cllm_gguf_kv *kv = &g->kvs[i];
        kv->file_offset = c->pos;
        char field[200];
        snprintf(field, sizeof field, "key of kv[%llu]", (unsigned long long)i);
        cllm_gguf_str key;
        size_t at = c->pos;
        cllm_status st = rd_str(c, &key, field);
        if (st) return st;
        if ((st = check_name(ps, &key, at, field, CLLM_GGUF_MAX_KEY))) return st;
        if (cllm_gguf_index_find(&g->kv_index, ps->names.buf, g->key_offs, key.data, (size_t)key.len) >= 0)
            return failf(c, CLLM_ERR_FORMAT, "duplicate key '%.*s' in kv[%llu] at offset %zu",
                         (int)key.len, key.data, (unsigned long long)i, at);
        if (!pool_add(&ps->names, key.data, (size_t)key.len, &g->key_offs[i])) return nomem(ps, "keys");
        index_insert(&g->kv_index, key.data, (size_t)key.len, (uint32_t)i);

        snprintf(field, sizeof field, "value type of '%.*s'", key.len > 120 ? 120 : (int)key.len, key.data);
        size_t type_at = c->pos;
        uint32_t type;
        if ((st = rd_u32(c, &type, field))) return st;
        if (type >= CLLM_GGUF_TYPE_COUNT)
            return failf(c, CLLM_ERR_FORMAT, "%s at offset %zu is %u, not a known GGUF value type",
                         field, type_at, type);
        kv->type = (cllm_gguf_type)type;
        snprintf(field, sizeof field, "value of '%.*s'", key.len > 120 ? 120 : (int)key.len, key.data);
        size_t val_at = c->pos;
        st = type == CLLM_GGUF_ARRAY ? parse_array(ps, i, kv, field) : parse_scalar(ps, kv, type, field);
        if (st) return st;

        if (key.len == strlen("general.alignment") && memcmp(key.data, "general.alignment", (size_t)key.len) == 0) {
            if (type != CLLM_GGUF_UINT32)
                return failf(c, CLLM_ERR_FORMAT, "general.alignment at offset %zu has type %s; it must be uint32",
                             type_at, cllm_gguf_type_name(type));
            uint64_t a = kv->val.u64;
            if (a == 0 || (a & (a - 1)) != 0 || a > CLLM_GGUF_MAX_ALIGNMENT)
                return failf(c, CLLM_ERR_FORMAT,
                             "general.alignment at offset %zu is %llu; it must be a power of two in [1, %u]",
                             val_at, (unsigned long long)a, CLLM_GGUF_MAX_ALIGNMENT);
            g->alignment = (uint32_t)a;
        }
    }
    return CLLM_OK;
}

static cllm_status parse_tensor_infos(parser *ps) {
    cursor *c = &ps->c;
    cllm_gguf *g = ps->g;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        cllm_gguf_tensor *t = &g->tensors[i];
        char field[200];
        snprintf(field, sizeof field, "name of tensor[%llu]", (unsigned long long)i);
        cllm_gguf_str name;
        size_t at = c->pos;
        cllm_status st = rd_str(c, &name, field);
        if (st) return st;
        if ((st = check_name(ps, &name, at, field, CLLM_GGUF_MAX_NAME - 1))) return st;
        if (cllm_gguf_index_find(&g->tensor_index, ps->names.buf, g->name_offs, name.data, (size_t)name.len) >= 0)
            return failf(c, CLLM_ERR_FORMAT, "duplicate tensor name '%.*s' in tensor[%llu] at offset %zu",
                         (int)name.len, name.data, (unsigned long long)i, at);
        if (!pool_add(&ps->names, name.data, (size_t)name.len, &g->name_offs[i])) return nomem(ps, "tensor names");
        index_insert(&g->tensor_index, name.data, (size_t)name.len, (uint32_t)i);
        /* field names below quote the tensor */
        char tn[80];
        snprintf(tn, sizeof tn, "tensor '%.*s'", (int)name.len, name.data);

        size_t nd_at = c->pos;
        snprintf(field, sizeof field, "%s n_dims", tn);
        if ((st = rd_u32(c, &t->n_dims, field))) return st;
        if (t->n_dims < 1 || t->n_dims > CLLM_GGUF_MAX_DIMS)
            return failf(c, CLLM_ERR_FORMAT, "%s at offset %zu is %u; it must be 1..%d", field, nd_at,
                         t->n_dims, CLLM_GGUF_MAX_DIMS);
        int64_t n_el = 1;
        for (uint32_t d = 0; d < CLLM_GGUF_MAX_DIMS; d++) t->dims[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            size_t d_at = c->pos;
            uint64_t v;
            snprintf(field, sizeof field, "%s dims[%u]", tn, d);
            if ((st = rd_u64(c, &v, field))) return st;
            if (v > (uint64_t)INT64_MAX)
                return failf(c, CLLM_ERR_FORMAT, "%s at offset %zu is %lld (negative as int64)", field, d_at,
                             (long long)(int64_t)v);
            if (v == 0)
                return failf(c, CLLM_ERR_FORMAT, "%s at offset %zu is 0 (empty tensors are not allowed)",
                             field, d_at);
            t->dims[d] = (int64_t)v;
            if (__builtin_mul_overflow(n_el, (int64_t)v, &n_el))
                return failf(c, CLLM_ERR_FORMAT, "%s at offset %zu: element count overflows int64", field, d_at);
        }
        t->n_elements = n_el;
        size_t ty_at = c->pos;
        snprintf(field, sizeof field, "%s type", tn);
        if ((st = rd_u32(c, &t->type, field))) return st;
        const cllm_ggml_type_info *ti = cllm_ggml_type_get(t->type);
        if (!ti) {
            if ((int32_t)t->type < 0)
                return failf(c, CLLM_ERR_FORMAT, "%s at offset %zu is %d (negative)", field, ty_at,
                             (int32_t)t->type);
            return failf(c, CLLM_ERR_FORMAT, "%s at offset %zu is %u, not a known ggml type", field, ty_at,
                         t->type);
        }
        size_t row;
        if (!cllm_ggml_row_size(t->type, t->dims[0], &row)) {
            if (t->dims[0] % ti->block_size)
                return failf(c, CLLM_ERR_FORMAT,
                             "%s: row length dims[0] = %lld is not a multiple of %s's block size %u",
                             tn, (long long)t->dims[0], ti->name, ti->block_size);
            return failf(c, CLLM_ERR_FORMAT, "%s: row size overflows", tn);
        }
        uint64_t rows = (uint64_t)(n_el / t->dims[0]), nbytes;
        if (__builtin_mul_overflow((uint64_t)row, rows, &nbytes) || nbytes > (uint64_t)INT64_MAX ||
            nbytes > SIZE_MAX)
            return failf(c, CLLM_ERR_FORMAT, "%s: byte size (%llu rows of %zu bytes) overflows", tn,
                         (unsigned long long)rows, row);
        t->nbytes = (size_t)nbytes;
        snprintf(field, sizeof field, "%s offset", tn);
        if ((st = rd_u64(c, &t->offset, field))) return st;
    }
    return CLLM_OK;
}

/* Places each tensor: offsets must follow each other exactly (ggml's layout). */
static cllm_status check_data_section(parser *ps) {
    cursor *c = &ps->c;
    cllm_gguf *g = ps->g;
    uint64_t a = g->alignment;
    uint64_t data = (c->pos + a - 1) / a * a; /* pos <= size, no overflow */
    g->data_offset = data;
    if (g->n_tensors == 0) return CLLM_OK;
    if (data > c->size)
        return failf(c, CLLM_ERR_FORMAT,
                     "data section would start at offset %llu, past the end of the %zu-byte file (truncated?)",
                     (unsigned long long)data, c->size);
    uint64_t expect = 0;
    uint64_t avail = c->size - data;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        cllm_gguf_tensor *t = &g->tensors[i];
        const char *nm = ps->names.buf + g->name_offs[i];
        if (t->offset % a)
            return failf(c, CLLM_ERR_FORMAT, "tensor '%s' offset %llu is not a multiple of the alignment %llu",
                         nm, (unsigned long long)t->offset, (unsigned long long)a);
        if (t->offset < expect)
            return failf(c, CLLM_ERR_FORMAT,
                         "tensor '%s' offset %llu overlaps the previous tensor or is out of order "
                         "(expected %llu)", nm, (unsigned long long)t->offset, (unsigned long long)expect);
        if (t->offset > expect)
            return failf(c, CLLM_ERR_FORMAT, "tensor '%s' offset %llu leaves a gap after the previous tensor "
                         "(expected %llu)", nm, (unsigned long long)t->offset, (unsigned long long)expect);
        if (t->offset > avail || t->nbytes > avail - t->offset)
            return failf(c, CLLM_ERR_FORMAT,
                         "tensor '%s' data [%llu, +%zu) at file offset %llu extends past the end of the "
                         "%zu-byte file (truncated?)", nm, (unsigned long long)t->offset, t->nbytes,
                         (unsigned long long)(data + t->offset), c->size);
        t->data = c->p + data + t->offset;
        expect = (t->offset + t->nbytes + a - 1) / a * a; /* <= avail + a, no overflow */
    }
    return CLLM_OK;
}

static cllm_status parse_header(parser *ps) {
    cursor *c = &ps->c;
    cllm_gguf *g = ps->g;
    if (c->size == 0) return failf(c, CLLM_ERR_FORMAT, "file is empty; expected a GGUF file");
    if (c->size < 4)
        return failf(c, CLLM_ERR_FORMAT, "file is %zu bytes, too short for the GGUF magic at offset 0", c->size);
    if (memcmp(c->p, CLLM_GGUF_MAGIC, 4) != 0)
        return failf(c, CLLM_ERR_FORMAT,
                     "magic at offset 0 is %02x %02x %02x %02x, expected \"GGUF\" (not a GGUF file)", c->p[0],
                     c->p[1], c->p[2], c->p[3]);
    c->pos = 4;
    cllm_status st = rd_u32(c, &g->version, "version");
    if (st) return st;
    if (g->version != 2 && g->version != 3)
        return failf(c, CLLM_ERR_FORMAT, "version at offset 4 is %u; only GGUF versions 2 and 3 are supported%s",
                     g->version, g->version == 1 ? " (version 1 used 32-bit counts; re-convert the model)" : "");
    if ((st = rd_u64(c, &g->n_tensors, "n_tensors"))) return st;
    if ((st = rd_u64(c, &g->n_kv, "n_kv"))) return st;
    if (g->n_kv > left(c) / MIN_KV_BYTES || g->n_kv > MAX_RECORDS)
        return failf(c, CLLM_ERR_FORMAT,
                     "n_kv at offset 16 is %llu, more than the %zu bytes left can hold (at least %u each)",
                     (unsigned long long)g->n_kv, left(c), MIN_KV_BYTES);
    if (g->n_tensors > left(c) / MIN_TENSOR_BYTES || g->n_tensors > MAX_RECORDS)
        return failf(c, CLLM_ERR_FORMAT,
                     "n_tensors at offset 8 is %llu, more than the %zu bytes left can hold (at least %u each)",
                     (unsigned long long)g->n_tensors, left(c), MIN_TENSOR_BYTES);
    return CLLM_OK;
}

static cllm_status parse(parser *ps) {
    cllm_gguf *g = ps->g;
    cllm_status st = parse_header(ps);
    if (st) return st;
    g->kvs = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kvs);
    g->key_offs = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->key_offs);
    ps->arr_str_offs = calloc(g->n_kv ? g->n_kv : 1, sizeof *ps->arr_str_offs);
    g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
    g->name_offs = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->name_offs);
    if (!g->kvs || !g->key_offs || !ps->arr_str_offs || !g->tensors || !g->name_offs ||
        !index_init(&g->kv_index, g->n_kv) || !index_init(&g->tensor_index, g->n_tensors))
        return nomem(ps, "the header");
    if ((st = parse_kvs(ps))) return st;
    if ((st = parse_tensor_infos(ps))) return st;
    if ((st = check_data_section(ps))) return st;
    /* fix up pointers into the pools, now that they no longer move */
    g->name_pool = ps->names.buf;
    ps->names.buf = NULL;
    g->str_pool = ps->strs;
    ps->strs = NULL;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        g->kvs[i].key = g->name_pool + g->key_offs[i];
        if (g->kvs[i].type == CLLM_GGUF_ARRAY && g->kvs[i].arr_type == CLLM_GGUF_STRING)
            g->kvs[i].arr_str = g->str_pool ? g->str_pool + ps->arr_str_offs[i] : NULL;
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) g->tensors[i].name = g->name_pool + g->name_offs[i];
    return CLLM_OK;
}

static cllm_status open_common(cllm_gguf **out, cllm_gguf *g, const char *name, cllm_error *err) {
    parser ps = {0};
    ps.g = g;
    ps.c.p = g->base;
    ps.c.size = g->size;
    ps.c.name = name;
    ps.c.err = err;
    g->alignment = CLLM_GGUF_DEFAULT_ALIGNMENT;
    cllm_status st = parse(&ps);
    free(ps.names.buf);
    free(ps.strs);
    free(ps.arr_str_offs);
    if (st) {
        cllm_gguf_close(g);
        return st;
    }
    *out = g;
    return CLLM_OK;
}

static cllm_gguf *alloc_handle(const char *name, cllm_error *err) {
    cllm_gguf *g = calloc(1, sizeof *g);
    if (g) g->path = strdup(name ? name : "(memory)");
    if (!g || !g->path) {
        free(g);
        cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory", name ? name : "(memory)");
        return NULL;
    }
    return g;
}

cllm_status cllm_gguf_open(cllm_gguf **out, const char *path, cllm_error *err) {
    *out = NULL;
    cllm_gguf *g = alloc_handle(path, err);
    if (!g) return CLLM_ERR_NOMEM;
    cllm_status st = cllm_mmap_open(&g->map, path, err);
    if (st) {
        cllm_gguf_close(g);
        return st;
    }
    g->base = g->map.data;
    g->size = g->map.size;
    return open_common(out, g, path, err);
}

cllm_status cllm_gguf_open_memory(cllm_gguf **out, const void *data, size_t size, const char *name,
                                  cllm_error *err) {
    *out = NULL;
    cllm_gguf *g = alloc_handle(name, err);
    if (!g) return CLLM_ERR_NOMEM;
    g->base = data;
    g->size = data ? size : 0;
    return open_common(out, g, g->path, err);
}

cllm_status cllm_gguf_check_file(const cllm_gguf *g, cllm_error *err) {
    return cllm_mmap_check(&g->map, g->path, err);
}

void cllm_gguf_close(cllm_gguf *g) {
    if (!g) return;
    cllm_mmap_close(&g->map);
    free(g->kvs);
    free(g->tensors);
    free(g->str_pool);
    free(g->name_pool);
    free(g->key_offs);
    free(g->name_offs);
    free(g->kv_index.slots);
    free(g->tensor_index.slots);
    free(g->path);
    free(g);
}
