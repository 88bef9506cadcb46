/*
 * safetensors.c: the safetensors reader (contract in
 * cllm/formats/safetensors.h): maps each file, validates its header
 * completely, and keeps one name-sorted table of tensor views over all
 * shards.
 *
 * Not here: writing safetensors (cllm has no use for it), dtypes other than
 * F32/F16/BF16, what the names mean.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/core/byteorder.h"
#include "cllm/core/fileio.h"
#include "cllm/formats/ggml_types.h"
#include "cllm/formats/safetensors.h"

typedef struct {
    char *path;     /* owned */
    cllm_mmap map;  /* zeroed for memory input */
} st_file;

struct cllm_safetensors {
    st_file *files; /* [n_files] */
    uint32_t n_files;
    cllm_safetensors_tensor *t; /* [n], sorted by name */
    char **names;               /* [n] owned name strings (t[i].name points into these) */
    uint64_t n, cap;
};

void cllm_safetensors_close(cllm_safetensors *s) {
    if (!s) return;
    for (uint32_t i = 0; i < s->n_files; i++) {
        cllm_mmap_close(&s->files[i].map);
        free(s->files[i].path);
    }
    for (uint64_t i = 0; i < s->n; i++) free(s->names[i]);
    free(s->files);
    free(s->t);
    free(s->names);
    free(s);
}

uint64_t cllm_safetensors_n_tensors(const cllm_safetensors *s) { return s->n; }
uint32_t cllm_safetensors_n_files(const cllm_safetensors *s) { return s->n_files; }

const cllm_safetensors_tensor *cllm_safetensors_tensor_at(const cllm_safetensors *s, uint64_t i) {
    return i < s->n ? &s->t[i] : NULL;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const cllm_safetensors_tensor *)a)->name, ((const cllm_safetensors_tensor *)b)->name);
}

const cllm_safetensors_tensor *cllm_safetensors_find(const cllm_safetensors *s, const char *name) {
    cllm_safetensors_tensor key = {.name = name};
    return s->n ? bsearch(&key, s->t, s->n, sizeof *s->t, by_name) : NULL;
}

/* ---- one file's header ------------------------------------------------------ */

static int dtype_of(const char *s, uint32_t *type, size_t *esize) {
    if (!strcmp(s, "F32")) return *type = CLLM_GGML_F32, *esize = 4, 1;
    if (!strcmp(s, "F16")) return *type = CLLM_GGML_F16, *esize = 2, 1;
    if (!strcmp(s, "BF16")) return *type = CLLM_GGML_BF16, *esize = 2, 1;
    return 0;
}

/* A JSON number that is an exact non-negative integer <= 2^53 (what a double holds exactly). */
static int json_u64(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || floor(d) != d) return 0;
    *out = (uint64_t)d;
    return 1;
}

static int by_range(const void *a, const void *b) {
    const cllm_safetensors_tensor *x = *(const cllm_safetensors_tensor *const *)a;
    const cllm_safetensors_tensor *y = *(const cllm_safetensors_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

static cllm_status push_tensor(cllm_safetensors *s, const cllm_safetensors_tensor *t, const char *name,
                               cllm_error *err) {
    if (s->n == s->cap) {
        uint64_t cap = s->cap ? 2 * s->cap : 64;
        cllm_safetensors_tensor *nt = realloc(s->t, cap * sizeof *nt);
        if (nt) s->t = nt;
        char **nn = nt ? realloc(s->names, cap * sizeof *nn) : NULL;
        if (nn) s->names = nn;
        if (!nt || !nn) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory for the tensor table");
        s->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory for the tensor table");
    s->names[s->n] = copy;
    s->t[s->n] = *t;
    s->t[s->n].name = copy;
    s->n++;
    return CLLM_OK;
}

/* Validates one file's bytes and appends its tensors to s. */
static cllm_status parse_file(cllm_safetensors *s, const uint8_t *data, size_t size, const char *path,
                              cllm_error *err) {
    if (size < 8) return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: %zu bytes; too short for the 8-byte header length", path, size);
    const uint64_t hlen = cllm_get_le64(data);
    if (hlen > CLLM_SAFETENSORS_MAX_HEADER)
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: header length %llu exceeds the %u-byte cap", path,
                              (unsigned long long)hlen, CLLM_SAFETENSORS_MAX_HEADER);
    if (hlen > size - 8)
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: header length %llu but only %zu bytes follow (truncated?)",
                              path, (unsigned long long)hlen, size - 8);
    if (hlen < 2) return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: header length %llu; a JSON object needs 2", path,
                                        (unsigned long long)hlen);
    const char *json = (const char *)data + 8;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, (size_t)hlen, &end, 0);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: header is not a JSON object", path);
    }
    for (const char *p = end; p && p < json + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: bytes after the header's JSON object (offset %lld)",
                                  path, (long long)(p - (const char *)data));
        }
    const uint8_t *area = data + 8 + hlen;
    const uint64_t area_size = size - 8 - hlen;
    const uint64_t first = s->n;
    cllm_status st = CLLM_OK;
    for (const cJSON *e = root->child; e && st == CLLM_OK; e = e->next) {
        const char *name = e->string;
        if (!strcmp(name, "__metadata__")) {
            if (!cJSON_IsObject(e)) {
                st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: __metadata__ is not an object", path);
                break;
            }
            for (const cJSON *m = e->child; m; m = m->next)
                if (!cJSON_IsString(m)) {
                    st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: __metadata__.%s is not a string", path, m->string);
                    break;
                }
            continue;
        }
        size_t nlen = strlen(name);
        if (nlen == 0 || nlen > CLLM_SAFETENSORS_MAX_NAME) {
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tensor name of %zu bytes (1..%d)", path, nlen,
                                CLLM_SAFETENSORS_MAX_NAME);
            break;
        }
        if (!cJSON_IsObject(e)) {
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tensor '%s': entry is not an object", path, name);
            break;
        }
        const cJSON *dt = NULL, *sh = NULL, *off = NULL;
        for (const cJSON *f = e->child; f; f = f->next) {
            const cJSON **slot = !strcmp(f->string, "dtype") ? &dt : !strcmp(f->string, "shape") ? &sh
                               : !strcmp(f->string, "data_offsets") ? &off : NULL;
            if (!slot || *slot) {
                st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tensor '%s': %s field '%s'", path, name,
                                    slot ? "duplicate" : "unknown", f->string);
                break;
            }
            *slot = f;
        }
        if (st) break;
        cllm_safetensors_tensor t = {.file = path};
        size_t esize = 0;
        if (!cJSON_IsString(dt)) {
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tensor '%s': dtype missing or not a string", path, name);
            break;
        }
        if (!dtype_of(dt->valuestring, &t.type, &esize)) {
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tensor '%s': dtype '%.32s' is not supported (F32, F16, BF16)",
                                path, name, dt->valuestring);
            break;
        }
        int nd = cJSON_IsArray(sh) ? cJSON_GetArraySize(sh) : -1;
        if (nd < 0 || nd > CLLM_SAFETENSORS_MAX_DIMS) {
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tensor '%s': shape %s", path, name,
                                nd < 0 ? "missing or not an array" : "has more than 8 dims");
            break;
        }
        t.n_dims = (uint32_t)nd;
        uint64_t count = 1;
        int k = 0;
        for (int d = 0; d < CLLM_SAFETENSORS_MAX_DIMS; d++) t.shape[d] = 1;
        for (const cJSON *v = sh ? sh->child : NULL; v; v = v->next, k++) {
            uint64_t dim;
            size_t prod;
            if (!json_u64(v, &dim) || dim > (uint64_t)INT64_MAX) {
                st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer",
                                    path, name, k);
                break;
            }
            if (!cllm_size_mul((size_t)count, (size_t)dim, &prod)) {
                st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tensor '%s': shape product overflows", path, name);
                break;
            }
            count = prod;
            t.shape[k] = (int64_t)dim;
        }
        if (st) break;
        uint64_t b, en;
        if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !json_u64(off->child, &b) ||
            !json_u64(off->child->next, &en) || b > en) {
            st = cllm_error_set(err, CLLM_ERR_FORMAT,
                                "%s: tensor '%s': data_offsets is not [begin, end] with 0 <= begin <= end", path, name);
            break;
        }
        size_t nbytes;
        if (!cllm_size_mul((size_t)count, esize, &nbytes) || nbytes != en - b) {
            st = cllm_error_set(err, CLLM_ERR_FORMAT,
                                "%s: tensor '%s': shape x %s size = %llu elements x %zu bytes but data_offsets span %llu "
                                "bytes",
                                path, name, dt->valuestring, (unsigned long long)count, esize,
                                (unsigned long long)(en - b));
            break;
        }
        if (en > area_size) {
            st = cllm_error_set(err, CLLM_ERR_FORMAT,
                                "%s: tensor '%s': data_offsets [%llu, %llu] end past the data area (%llu bytes)", path,
                                name, (unsigned long long)b, (unsigned long long)en, (unsigned long long)area_size);
            break;
        }
        t.n_elements = (int64_t)count;
        t.nbytes = nbytes;
        t.begin = b;
        t.data = area + b;
        st = push_tensor(s, &t, name, err);
    }
    cJSON_Delete(root);
    if (st) return st;
    /* the ranges, in order, must tile [0, area_size) exactly */
    const uint64_t n = s->n - first;
    const cllm_safetensors_tensor **ord = malloc((n ? n : 1) * sizeof *ord);
    if (!ord) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    for (uint64_t i = 0; i < n; i++) ord[i] = &s->t[first + i];
    qsort(ord, n, sizeof *ord, by_range);
    uint64_t at = 0;
    for (uint64_t i = 0; i < n && st == CLLM_OK; i++) {
        if (ord[i]->begin < at)
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s'",
                                path, ord[i]->name, (unsigned long long)ord[i]->begin,
                                (unsigned long long)(ord[i]->begin + ord[i]->nbytes), ord[i - 1]->name);
        else if (ord[i]->begin > at)
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tensor '%s': data_offsets start at %llu, leaving bytes "
                                "[%llu, %llu) of the data area unused",
                                path, ord[i]->name, (unsigned long long)ord[i]->begin, (unsigned long long)at,
                                (unsigned long long)ord[i]->begin);
        at = ord[i]->begin + ord[i]->nbytes;
    }
    if (st == CLLM_OK && at != area_size)
        st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: the tensors cover %llu of the data area's %llu bytes", path,
                            (unsigned long long)at, (unsigned long long)area_size);
    free(ord);
    return st;
}

/* Sorts the table and refuses a name seen twice. */
static cllm_status finish(cllm_safetensors *s, cllm_error *err) {
    if (s->n > 1) qsort(s->t, s->n, sizeof *s->t, by_name); /* s->t is NULL when there are none */
    for (uint64_t i = 1; i < s->n; i++)
        if (!strcmp(s->t[i].name, s->t[i - 1].name))
            return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tensor '%s' appears twice%s%s", s->t[i].file, s->t[i].name,
                                  strcmp(s->t[i].file, s->t[i - 1].file) ? " (also in " : "",
                                  strcmp(s->t[i].file, s->t[i - 1].file) ? s->t[i - 1].file : "");
    return CLLM_OK;
}

static cllm_status add_file(cllm_safetensors *s, const char *path, cllm_error *err) {
    st_file *nf = realloc(s->files, (s->n_files + 1) * sizeof *nf);
    if (!nf) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    s->files = nf;
    st_file *f = &s->files[s->n_files];
    memset(f, 0, sizeof *f);
    if (!(f->path = strdup(path))) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    s->n_files++;
    cllm_status st = cllm_mmap_open(&f->map, path, err);
    if (st) return st;
    return parse_file(s, f->map.data, f->map.size, f->path, err);
}

cllm_status cllm_safetensors_open(cllm_safetensors **out, const char *path, cllm_error *err) {
    *out = NULL;
    cllm_safetensors *s = calloc(1, sizeof *s);
    if (!s) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    cllm_status st = add_file(s, path, err);
    if (st == CLLM_OK) st = finish(s, err);
    if (st) cllm_safetensors_close(s);
    else *out = s;
    return st;
}

cllm_status cllm_safetensors_open_memory(cllm_safetensors **out, const void *data, size_t size, const char *name,
                                         cllm_error *err) {
    *out = NULL;
    cllm_safetensors *s = calloc(1, sizeof *s);
    if (!s) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    cllm_status st = CLLM_OK;
    if (!(s->files = calloc(1, sizeof *s->files)) || !(s->files[0].path = strdup(name)))
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    else s->n_files = 1;
    if (st == CLLM_OK) st = parse_file(s, data, size, s->files[0].path, err);
    if (st == CLLM_OK) st = finish(s, err);
    if (st) cllm_safetensors_close(s);
    else *out = s;
    return st;
}

/* ---- shard sets ---------------------------------------------------------------- */

static cllm_status open_index(cllm_safetensors *s, const char *dir, const char *index, cllm_error *err) {
    char *text = NULL;
    size_t len = 0;
    cllm_status st = cllm_file_read_all(index, 64u << 20, &text, &len, err);
    if (st) return st;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *wm = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(wm)) {
        cJSON_Delete(root);
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: %s", index,
                              root ? "no \"weight_map\" object" : "not valid JSON");
    }
    /* the distinct shard names, each opened once */
    for (const cJSON *e = wm->child; e && st == CLLM_OK; e = e->next) {
        const char *shard = cJSON_IsString(e) ? e->valuestring : NULL;
        if (!shard || !*shard || strchr(shard, '/') || !strcmp(shard, ".") || !strcmp(shard, "..")) {
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: weight_map.%s is not a file name in the folder", index,
                                e->string);
            break;
        }
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, shard) >= sizeof path) {
            st = cllm_error_set(err, CLLM_ERR_LIMIT, "%s: weight_map.%s: path too long", index, e->string);
            break;
        }
        uint32_t k = 0;
        while (k < s->n_files && strcmp(s->files[k].path, path)) k++;
        if (k == s->n_files) {
            if (s->n_files >= CLLM_SAFETENSORS_MAX_SHARDS) {
                st = cllm_error_set(err, CLLM_ERR_LIMIT, "%s: more than %d shards", index, CLLM_SAFETENSORS_MAX_SHARDS);
                break;
            }
            uint64_t fsize;
            cllm_error why;
            if (cllm_file_check_regular(path, &fsize, &why) != CLLM_OK) {
                st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: weight_map.%s names shard %s, which cannot be read: %s",
                                    index, e->string, shard, why.msg);
                break;
            }
            st = add_file(s, path, err);
        }
    }
    if (st == CLLM_OK) st = finish(s, err);
    /* every listed tensor in the shard named, every shard tensor listed */
    uint64_t listed = 0;
    for (const cJSON *e = wm->child; e && st == CLLM_OK; e = e->next, listed++) {
        const cllm_safetensors_tensor *t = cllm_safetensors_find(s, e->string);
        const char *slash = t ? strrchr(t->file, '/') : NULL;
        if (!t)
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tensor '%s' is listed in weight_map but is in no shard "
                                "(%s)", index, e->string, e->valuestring);
        else if (strcmp(slash ? slash + 1 : t->file, e->valuestring))
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tensor '%s' is listed in shard %s but found in %s", index,
                                e->string, e->valuestring, t->file);
    }
    if (st == CLLM_OK && listed != s->n)
        for (uint64_t i = 0; i < s->n; i++)
            if (!cJSON_GetObjectItemCaseSensitive(wm, s->t[i].name)) {
                st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tensor '%s' of %s is not listed in weight_map", index,
                                    s->t[i].name, s->t[i].file);
                break;
            }
    if (st == CLLM_OK && listed != s->n) /* a name listed twice in the JSON object */
        st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: weight_map lists %llu entries for %llu tensors", index,
                            (unsigned long long)listed, (unsigned long long)s->n);
    cJSON_Delete(root);
    return st;
}

cllm_status cllm_safetensors_open_dir(cllm_safetensors **out, const char *dir, cllm_error *err) {
    *out = NULL;
    char single[4096], index[4096];
    if ((size_t)snprintf(single, sizeof single, "%s/model.safetensors", dir) >= sizeof single ||
        (size_t)snprintf(index, sizeof index, "%s/model.safetensors.index.json", dir) >= sizeof index)
        return cllm_error_set(err, CLLM_ERR_LIMIT, "%s: path too long", dir);
    uint64_t size;
    cllm_error probe;
    if (cllm_file_check_regular(single, &size, &probe) == CLLM_OK) return cllm_safetensors_open(out, single, err);
    if (cllm_file_check_regular(index, &size, &probe) != CLLM_OK)
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: neither model.safetensors nor model.safetensors.index.json "
                              "is there", dir);
    cllm_safetensors *s = calloc(1, sizeof *s);
    if (!s) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    cllm_status st = open_index(s, dir, index, err);
    if (st) cllm_safetensors_close(s);
    else *out = s;
    return st;
}
