/*
 * gguf_io.c: the model's GGUF file mapping: saves a cllm_model as a GGUF
 * file (arch gpt2, llama or qwen2, with llama.cpp's names and keys) and loads one
 * back, validating the metadata and every tensor's presence, shape and type
 * (contract in model/gguf_io.h).
 *
 * The one non-obvious part is the tensor mapping: the model fuses q/k/v
 * and gate/up, llama.cpp's `llama` arch stores them split.
 * model_gguf_parts() describes each model tensor as 1..3 row ranges
 * ("parts") with their file names; saving writes the parts, loading fills
 * them, and the mapped-model binding (infer_linear.c) looks them up. Rows
 * are contiguous in the row-major model, so f32 parts are written straight
 * from the model's memory without a copy.
 *
 * Not here: tokenizer keys (caller's hook), the GGUF byte format
 * (src/formats/gguf_*.c), quantized compute.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/layers/layers.h"
#include "cllm/model/gguf_io.h"
#include "model_internal.h"

static int is_llama_arch(const cllm_model_config *cfg) { return cfg->pos == CLLM_POS_ROPE; }

/* llama.cpp's `qwen2` graph rotates NEOX pairs; its `llama` graph adjacent ones. */
const char *cllm_model_gguf_arch(const cllm_model_config *cfg) {
    return !is_llama_arch(cfg) ? "gpt2" : cfg->rope_neox ? "qwen2" : "llama";
}

int cllm_model_gguf_llama_cpp_compatible(const cllm_model_config *cfg) {
    if (is_llama_arch(cfg) && cfg->rope_neox) /* qwen2: biases on q/k/v only, no rope_freqs */
        return cfg->norm == CLLM_NORM_RMSNORM && cfg->mlp == CLLM_MLP_SWIGLU && !cfg->bias &&
               cfg->rope_scaling != CLLM_ROPE_SCALING_LLAMA3;
    if (is_llama_arch(cfg)) return cfg->norm == CLLM_NORM_RMSNORM && cfg->mlp == CLLM_MLP_SWIGLU;
    return cfg->norm == CLLM_NORM_LAYERNORM && cfg->mlp == CLLM_MLP_GELU && cfg->bias;
}

cllm_model_save_params cllm_model_save_default_params(void) {
    cllm_model_save_params p = {CLLM_GGML_F32, "cllm", NULL, NULL, NULL};
    return p;
}

/* Splits `t` into its file tensors (model_internal.h). The one table of
 * the llama q/k/v and gate/up split, shared by saving, loading and the
 * mapped-model binding (infer_linear.c). */
int model_gguf_parts(const cllm_model_config *cfg, const cllm_tensor *t, model_gguf_part *out) {
    int64_t rows = t->shape[0], cols = t->ndim == 2 ? t->shape[1] : 1;
    const char *qkv = strstr(t->name, "attn_qkv.");
    const char *gu = strstr(t->name, "ffn_gate_up.");
    int64_t r[MODEL_GGUF_MAX_PARTS];
    const char *nm[MODEL_GGUF_MAX_PARTS];
    const char *hit = NULL, *suffix = NULL;
    int n = 0;
    if (qkv && is_llama_arch(cfg)) { /* the `llama` arch stores q, k, v apart */
        int64_t hs = cfg->n_embd / cfg->n_head;
        r[0] = (int64_t)cfg->n_head * hs;
        r[1] = r[2] = (int64_t)cfg->n_kv_head * hs;
        nm[0] = "attn_q", nm[1] = "attn_k", nm[2] = "attn_v";
        n = 3, hit = qkv, suffix = qkv + strlen("attn_qkv.");
    } else if (gu) {
        r[0] = r[1] = rows / 2;
        nm[0] = "ffn_gate", nm[1] = "ffn_up";
        n = 2, hit = gu, suffix = gu + strlen("ffn_gate_up.");
    }
    if (!n) {
        out[0] = (model_gguf_part){.row0 = 0, .rows = rows, .cols = cols, .ndim = t->ndim};
        snprintf(out[0].name, sizeof out[0].name, "%s", t->name);
        return 1;
    }
    int64_t row0 = 0;
    for (int i = 0; i < n; i++) {
        out[i] = (model_gguf_part){.row0 = row0, .rows = r[i], .cols = cols, .ndim = t->ndim};
        snprintf(out[i].name, sizeof out[i].name, "%.*s%s.%s", (int)(hit - t->name), t->name, nm[i], suffix);
        row0 += r[i];
    }
    CLLM_ASSERT(row0 == rows);
    return n;
}

/* llama.cpp's llama_ftype for a file whose matrices are `type`. */
static uint32_t file_type_of(uint32_t type) {
    switch (type) {
    case CLLM_GGML_F16: return 1;
    case CLLM_GGML_Q4_0: return 2;
    case CLLM_GGML_Q8_0: return 7;
    case CLLM_GGML_BF16: return 32;
    default: return 0; /* all f32 */
    }
}

/* ---- save ----------------------------------------------------------------- */

static cllm_status put_keys(cllm_gguf_writer *w, const cllm_model_config *c, const cllm_model_save_params *p,
                            cllm_error *err) {
    const char *arch = cllm_model_gguf_arch(c);
    char k[128];
    cllm_status st = CLLM_OK;
#define KEY(s) (snprintf(k, sizeof k, "%s.%s", arch, (s)), k)
#define DO(call) do { if (!st) st = (call); } while (0)
    DO(cllm_gguf_set_str(w, "general.architecture", arch, err));
    DO(cllm_gguf_set_str(w, "general.name", p->name ? p->name : "cllm", err));
    if (p->description) DO(cllm_gguf_set_str(w, "general.description", p->description, err));
    DO(cllm_gguf_set_u32(w, "general.file_type", file_type_of(p->weight_type), err));
    if (p->weight_type == CLLM_GGML_Q8_0 || p->weight_type == CLLM_GGML_Q4_0)
        DO(cllm_gguf_set_u32(w, "general.quantization_version", 2, err)); /* ggml's GGML_QNT_VERSION */
    DO(cllm_gguf_set_u32(w, KEY("vocab_size"), (uint32_t)c->vocab_size, err));
    DO(cllm_gguf_set_u32(w, KEY("context_length"), (uint32_t)c->context_length, err));
    DO(cllm_gguf_set_u32(w, KEY("embedding_length"), (uint32_t)c->n_embd, err));
    DO(cllm_gguf_set_u32(w, KEY("block_count"), (uint32_t)c->n_layer, err));
    DO(cllm_gguf_set_u32(w, KEY("feed_forward_length"), (uint32_t)c->ffn_hidden, err));
    DO(cllm_gguf_set_u32(w, KEY("attention.head_count"), (uint32_t)c->n_head, err));
    DO(cllm_gguf_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_kv_head, err));
    if (c->norm == CLLM_NORM_RMSNORM)
        DO(cllm_gguf_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->norm_eps, err));
    else
        DO(cllm_gguf_set_f32(w, KEY("attention.layer_norm_epsilon"), c->norm_eps, err));
    if (c->pos == CLLM_POS_ROPE) {
        DO(cllm_gguf_set_f32(w, KEY("rope.freq_base"), c->rope_theta, err));
        DO(cllm_gguf_set_u32(w, KEY("rope.dimension_count"), (uint32_t)(c->n_embd / c->n_head), err));
    }
    if (c->rope_scaling == CLLM_ROPE_SCALING_LINEAR) { /* llama.cpp reads these for every arch */
        DO(cllm_gguf_set_str(w, KEY("rope.scaling.type"), "linear", err));
        DO(cllm_gguf_set_f32(w, KEY("rope.scaling.factor"), c->rope_factor, err));
    } else if (c->rope_scaling == CLLM_ROPE_SCALING_LLAMA3) {
        /* llama.cpp knows Llama 3.1 scaling only as the rope_freqs.weight divisors
         * (written with the tensors); the parameters that made them ride as cllm keys */
        DO(cllm_gguf_set_str(w, "cllm.rope_scaling", "llama3", err));
        DO(cllm_gguf_set_f32(w, "cllm.rope_factor", c->rope_factor, err));
        DO(cllm_gguf_set_f32(w, "cllm.rope_low_freq_factor", c->rope_low_freq_factor, err));
        DO(cllm_gguf_set_f32(w, "cllm.rope_high_freq_factor", c->rope_high_freq_factor, err));
        DO(cllm_gguf_set_u32(w, "cllm.rope_orig_context", (uint32_t)c->rope_orig_context, err));
    }
    DO(cllm_gguf_set_str(w, "cllm.pos", cllm_model_pos_name(c->pos), err));
    DO(cllm_gguf_set_str(w, "cllm.norm", cllm_model_norm_name(c->norm), err));
    DO(cllm_gguf_set_str(w, "cllm.mlp", cllm_model_mlp_name(c->mlp), err));
    DO(cllm_gguf_set_bool(w, "cllm.bias", c->bias != 0, err));
    DO(cllm_gguf_set_bool(w, "cllm.qkv_bias", c->qkv_bias != 0, err));
    DO(cllm_gguf_set_bool(w, "cllm.rope_neox", c->rope_neox != 0, err));
    /* llama.cpp's llama graph has no window (its Mistral files run with full
     * attention); the window cllm trained with rides as a cllm key */
    if (c->sliding_window > 0) DO(cllm_gguf_set_u32(w, "cllm.sliding_window", (uint32_t)c->sliding_window, err));
    DO(cllm_gguf_set_bool(w, "cllm.tied_embeddings", c->tied_embeddings != 0, err));
    DO(cllm_gguf_set_f32(w, "cllm.dropout", c->dropout, err));
#undef KEY
#undef DO
    return st;
}

cllm_status cllm_model_save_gguf(const cllm_model *m, const char *path, const cllm_model_save_params *params,
                                 cllm_error *err) {
    cllm_model_save_params p = params ? *params : cllm_model_save_default_params();
    const cllm_ggml_type_info *ti = cllm_ggml_type_get(p.weight_type);
    if (!ti || !ti->has_kernels)
        return cllm_error_set(err, CLLM_ERR_ARG, "%s: cannot write weights as ggml type %s (id %u)", path,
                              cllm_ggml_type_name(p.weight_type), p.weight_type);
    const cllm_model_config *c = cllm_model_get_config(m);
    int nt = cllm_model_num_tensors(m);
    cllm_gguf_writer *w = cllm_gguf_writer_create();
    void **owned = calloc((size_t)nt * MODEL_GGUF_MAX_PARTS + 2, sizeof *owned); /* converted copies */
    size_t n_owned = 0;
    cllm_status st = CLLM_OK;
    if (!w || !owned) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if ((st = put_keys(w, c, &p, err))) goto done;
    if (p.extra && (st = p.extra(w, p.extra_ctx, err))) goto done;
    for (int i = 0; i < nt; i++) {
        const cllm_tensor *t = cllm_model_tensor(m, i);
        model_gguf_part parts[MODEL_GGUF_MAX_PARTS];
        int np = model_gguf_parts(c, t, parts);
        for (int k = 0; k < np; k++) {
            const model_gguf_part *pt = &parts[k];
            const float *src = t->data + pt->row0 * pt->cols;
            int64_t dims[2] = {pt->ndim == 2 ? pt->cols : pt->rows, pt->rows};
            size_t n = (size_t)(pt->rows * pt->cols);
            uint32_t type = CLLM_GGML_F32;
            if (pt->ndim == 2 && pt->cols % ti->block_size == 0) type = p.weight_type;
            if (type == CLLM_GGML_F32) {
                st = cllm_gguf_add_tensor(w, pt->name, type, (uint32_t)pt->ndim, dims, src, n * sizeof(float), err);
            } else {
                size_t row = 0;
                CLLM_ASSERT(cllm_ggml_row_size(type, pt->cols, &row));
                void *buf = malloc(row * (size_t)pt->rows);
                if (!buf) {
                    st = cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory converting %s", path, pt->name);
                    goto done;
                }
                owned[n_owned++] = buf;
                CLLM_ASSERT(cllm_ggml_from_f32(type, src, buf, (int64_t)n) == 0);
                st = cllm_gguf_add_tensor(w, pt->name, type, 2, dims, buf, row * (size_t)pt->rows, err);
            }
            if (st) goto done;
        }
    }
    if (c->rope_scaling == CLLM_ROPE_SCALING_LLAMA3) {
        const int half = c->n_embd / c->n_head / 2;
        double div[512];
        float *f = malloc((size_t)half * sizeof *f);
        if (!f) {
            st = cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory for rope_freqs", path);
            goto done;
        }
        owned[n_owned++] = f;
        cllm_model_rope_freq_div(c, div);
        for (int i = 0; i < half; i++) f[i] = (float)div[i];
        int64_t dims[1] = {half};
        if ((st = cllm_gguf_add_tensor(w, MODEL_ROPE_FREQS, CLLM_GGML_F32, 1, dims, f, (size_t)half * sizeof *f, err)))
            goto done;
    }
    if (c->pos == CLLM_POS_SINUSOIDAL) {
        /* the fixed table as a tensor, so llama.cpp's gpt2 graph adds it like a learned one */
        size_t n = (size_t)c->context_length * (size_t)c->n_embd;
        float *table = malloc(n * sizeof *table);
        if (!table) {
            st = cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory for the position table", path);
            goto done;
        }
        owned[n_owned++] = table;
        cllm_sinusoidal_table(table, c->context_length, c->n_embd);
        int64_t dims[2] = {c->n_embd, c->context_length};
        if ((st = cllm_gguf_add_tensor(w, "position_embd.weight", CLLM_GGML_F32, 2, dims, table,
                                       n * sizeof *table, err)))
            goto done;
    }
    st = cllm_gguf_writer_write(w, path, err);
done:
    for (size_t i = 0; i < n_owned; i++) free(owned[i]);
    free(owned);
    cllm_gguf_writer_destroy(w);
    return st;
}

/* ---- config from metadata ------------------------------------------------- */

static cllm_status get_int_key(const cllm_gguf *g, const char *key, int *out, int required, cllm_error *err) {
    if (!required && !cllm_gguf_find_kv(g, key)) return CLLM_OK;
    int32_t v;
    cllm_status st = cllm_gguf_get_i32(g, key, &v, err);
    if (!st) *out = v;
    return st;
}

static cllm_status get_enum_key(const cllm_gguf *g, const char *key, int (*parse)(const char *), int *out,
                                cllm_error *err) {
    if (!cllm_gguf_find_kv(g, key)) return CLLM_OK;
    char buf[64];
    cllm_status st = cllm_gguf_get_str_buf(g, key, buf, sizeof buf, err);
    if (st) return st;
    int v = parse(buf);
    if (v < 0)
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: key '%s' has unknown value '%s'", cllm_gguf_path(g), key, buf);
    *out = v;
    return CLLM_OK;
}

/* RoPE scaling as llama.cpp reads it: {arch}.rope.scaling.type (default
 * "linear" when only a factor is given) and .factor (0 or absent: 1);
 * Llama 3.1 scaling as cllm.rope_* keys plus the rope_freqs.weight divisors,
 * which must match the ones the keys give (cllm_model_rope_freq_div). */
static cllm_status rope_scaling_from_gguf(const cllm_gguf *g, const char *arch, cllm_model_config *c,
                                          cllm_error *err) {
    const char *path = cllm_gguf_path(g);
    char k[128], type[32] = "linear";
    cllm_status st;
    float factor = 0.0f;
    snprintf(k, sizeof k, "%s.rope.scaling.factor", arch);
    if (cllm_gguf_find_kv(g, k) && (st = cllm_gguf_get_f32(g, k, &factor, err))) return st;
    snprintf(k, sizeof k, "%s.rope.scaling.type", arch);
    if (cllm_gguf_find_kv(g, k) && (st = cllm_gguf_get_str_buf(g, k, type, sizeof type, err))) return st;
    if (strcmp(type, "none") && strcmp(type, "linear"))
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: %s = '%s' is not supported (none or linear)", path, k, type);
    if (!strcmp(type, "linear") && factor != 0.0f && factor != 1.0f) {
        if (!(isfinite(factor) && factor > 0.0f))
            return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: %s.rope.scaling.factor = %g must be > 0", path, arch,
                                  (double)factor);
        c->rope_scaling = CLLM_ROPE_SCALING_LINEAR;
        c->rope_factor = factor;
    }
    int v = 0;
    if ((st = get_enum_key(g, "cllm.rope_scaling", cllm_model_rope_scaling_parse, &v, err))) return st;
    if (cllm_gguf_find_kv(g, "cllm.rope_scaling") && v == CLLM_ROPE_SCALING_LLAMA3) {
        c->rope_scaling = CLLM_ROPE_SCALING_LLAMA3;
        if ((st = cllm_gguf_get_f32(g, "cllm.rope_factor", &c->rope_factor, err)) ||
            (st = cllm_gguf_get_f32(g, "cllm.rope_low_freq_factor", &c->rope_low_freq_factor, err)) ||
            (st = cllm_gguf_get_f32(g, "cllm.rope_high_freq_factor", &c->rope_high_freq_factor, err)) ||
            (st = get_int_key(g, "cllm.rope_orig_context", &c->rope_orig_context, 1, err)))
            return st;
    }
    const cllm_gguf_tensor *rf = cllm_gguf_find_tensor(g, MODEL_ROPE_FREQS);
    if (rf && c->rope_scaling == CLLM_ROPE_SCALING_NONE && !cllm_gguf_find_kv(g, "cllm.rope_scaling") &&
        rf->type == CLLM_GGML_F32 && rf->n_dims == 1 && rf->dims[0] >= 1 && rf->dims[0] <= 512) {
        /* llama.cpp's converter keeps only the divisors: take Llama 3.1's published
         * low/high frequency factors (1, 4) with the largest divisor as the factor;
         * check_rope_freqs finds the original context in the table (8192 until
         * then) and requires the whole table to be what those give */
        float mx = 0.0f;
        for (int64_t i = 0; i < rf->dims[0]; i++) {
            float x;
            memcpy(&x, (const float *)rf->data + i, sizeof x);
            if (x > mx) mx = x; /* NaN never wins */
        }
        c->rope_scaling = CLLM_ROPE_SCALING_LLAMA3;
        c->rope_factor = mx;
        c->rope_low_freq_factor = 1.0f, c->rope_high_freq_factor = 4.0f, c->rope_orig_context = 8192;
    }
    if (rf && c->rope_scaling != CLLM_ROPE_SCALING_LLAMA3)
        return cllm_error_set(err, CLLM_ERR_FORMAT,
                              "%s: tensor %s (per-pair RoPE frequency divisors) with linear rope scaling is not supported",
                              path, MODEL_ROPE_FREQS);
    if (c->rope_scaling == CLLM_ROPE_SCALING_LLAMA3 && !rf)
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: cllm.rope_scaling = llama3 but tensor %s is missing", path,
                              MODEL_ROPE_FREQS);
    return CLLM_OK;
}

/* Llama 3.1's original context in a divisor table f[half] that came without
 * cllm.rope_* keys (llama.cpp's converter writes only the table; Llama 3.1
 * and 3.2 use 8192, small test models other values). A pair in the smooth
 * band gives it exactly: f = 1 / ((1 - s) / factor + s) with
 * s = (orig / wavelen - lo) / (hi - lo). Without such a pair the unscaled
 * pairs (wavelen < orig / hi) and the fully scaled ones (wavelen > orig / lo)
 * only bound it, and every context inside the bounds gives the same table:
 * 8192 when it is inside, else the smallest inside. */
static int llama3_orig_context(const cllm_model_config *c, const float *f, int half) {
    const double lo = c->rope_low_freq_factor, hi = c->rope_high_freq_factor, factor = c->rope_factor;
    double above = 0.0, below = INFINITY;
    for (int i = 0; i < half; i++) {
        float x;
        memcpy(&x, f + i, sizeof x);
        const double wavelen = 2.0 * M_PI / pow((double)c->rope_theta, -2.0 * i / (2 * half));
        if (x > 1.0 + 1e-4 && x < factor * (1.0 - 1e-4)) {
            const double s = (1.0 / x - 1.0 / factor) / (1.0 - 1.0 / factor);
            return (int)lround(wavelen * (lo + s * (hi - lo)));
        }
        if (x <= 1.0 + 1e-4 && wavelen * hi > above) above = wavelen * hi;
        if (x >= factor * (1.0 - 1e-4) && wavelen * lo < below) below = wavelen * lo;
    }
    if (8192.0 > above && 8192.0 < below) return 8192;
    const double first = floor(above) + 1.0;
    return first < below && first <= CLLM_MODEL_MAX_CONTEXT ? (int)first : 8192; /* else the check names the table */
}

/* The rope_freqs.weight divisors of a llama3 config against the file's
 * (after validation, so the head size is known); a table without cllm keys
 * sets c's original context first (llama3_orig_context). */
static cllm_status check_rope_freqs(const cllm_gguf *g, cllm_model_config *c, cllm_error *err) {
    if (c->rope_scaling != CLLM_ROPE_SCALING_LLAMA3) return CLLM_OK;
    const char *path = cllm_gguf_path(g);
    const cllm_gguf_tensor *rf = cllm_gguf_find_tensor(g, MODEL_ROPE_FREQS);
    const int half = c->n_embd / c->n_head / 2;
    if (rf->type != CLLM_GGML_F32 || rf->n_dims != 1 || rf->dims[0] != half)
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: %s must be f32 {%d} (head size / 2)", path, MODEL_ROPE_FREQS,
                              half);
    if (half > 512)
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: head size %d exceeds the RoPE limit 1024", path, 2 * half);
    double div[512];
    const float *f = rf->data;
    if (!cllm_gguf_find_kv(g, "cllm.rope_scaling")) c->rope_orig_context = llama3_orig_context(c, f, half);
    cllm_model_rope_freq_div(c, div);
    for (int i = 0; i < half; i++) { /* the file holds float roundings of the double divisors */
        float x;
        memcpy(&x, f + i, sizeof x);
        /* 1e-5: llama.cpp's converter computes the frequencies in float32 */
        if (!(fabs(x - div[i]) <= 1e-5 * div[i]))
            return cllm_error_set(err, CLLM_ERR_FORMAT,
                                  "%s: %s[%d] = %g but Llama-3.1 scaling with factor %g, low/high frequency factors "
                                  "%g/%g and original context %d (cllm.rope_* keys, else Llama 3.1's 1/4 and the "
                                  "context the table implies) gives "
                                  "%g; other divisor tables are not supported",
                                  path, MODEL_ROPE_FREQS, i, (double)x, (double)c->rope_factor,
                                  (double)c->rope_low_freq_factor, (double)c->rope_high_freq_factor,
                                  c->rope_orig_context, div[i]);
    }
    return CLLM_OK;
}

int model_gguf_extra_tensor(const cllm_model_config *c, const char *name) {
    return c->rope_scaling == CLLM_ROPE_SCALING_LLAMA3 && !strcmp(name, MODEL_ROPE_FREQS);
}

cllm_status cllm_model_config_from_gguf(const cllm_gguf *g, cllm_model_config *cfg, cllm_error *err) {
    const char *path = cllm_gguf_path(g);
    char arch[32];
    cllm_status st = cllm_gguf_get_str_buf(g, "general.architecture", arch, sizeof arch, err);
    if (st) return st;
    const int qwen2 = strcmp(arch, "qwen2") == 0, llama = qwen2 || strcmp(arch, "llama") == 0;
    if (!llama && strcmp(arch, "gpt2") != 0)
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: architecture '%s' is not supported (gpt2, llama or qwen2)",
                              path, arch);
    cllm_model_config c = cllm_model_default_config();
    /* arch defaults, overridden by cllm.* keys when present */
    c.pos = llama ? CLLM_POS_ROPE : CLLM_POS_LEARNED;
    c.norm = llama ? CLLM_NORM_RMSNORM : CLLM_NORM_LAYERNORM;
    c.mlp = llama ? CLLM_MLP_SWIGLU : CLLM_MLP_GELU;
    /* qwen2: biases on q/k/v only (llama.cpp's graph has no others) */
    c.bias = qwen2 ? 0 : llama ? cllm_gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL : 1;
    c.qkv_bias = qwen2 && cllm_gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL;
    c.rope_neox = qwen2;
    c.tied_embeddings = cllm_gguf_find_tensor(g, "output.weight") == NULL;
    c.dropout = 0.0f;
    c.rope_theta = 10000.0f;
    int v;
    char k[128];
#define KEY(s) (snprintf(k, sizeof k, "%s.%s", arch, (s)), k)
    if ((st = get_enum_key(g, "cllm.pos", cllm_model_pos_parse, &v, err))) return st;
    if (cllm_gguf_find_kv(g, "cllm.pos")) c.pos = (cllm_pos_kind)v;
    if ((st = get_enum_key(g, "cllm.norm", cllm_model_norm_parse, &v, err))) return st;
    if (cllm_gguf_find_kv(g, "cllm.norm")) c.norm = (cllm_norm_kind)v;
    if ((st = get_enum_key(g, "cllm.mlp", cllm_model_mlp_parse, &v, err))) return st;
    if (cllm_gguf_find_kv(g, "cllm.mlp")) c.mlp = (cllm_mlp_kind)v;
    bool b;
    if (cllm_gguf_find_kv(g, "cllm.bias")) {
        if ((st = cllm_gguf_get_bool(g, "cllm.bias", &b, err))) return st;
        c.bias = b;
    }
    if (cllm_gguf_find_kv(g, "cllm.qkv_bias")) {
        if ((st = cllm_gguf_get_bool(g, "cllm.qkv_bias", &b, err))) return st;
        c.qkv_bias = b;
    }
    if (cllm_gguf_find_kv(g, "cllm.rope_neox")) {
        if ((st = cllm_gguf_get_bool(g, "cllm.rope_neox", &b, err))) return st;
        c.rope_neox = b;
    }
    if ((st = get_int_key(g, "cllm.sliding_window", &c.sliding_window, 0, err))) return st;
    if (cllm_gguf_find_kv(g, "cllm.tied_embeddings")) {
        if ((st = cllm_gguf_get_bool(g, "cllm.tied_embeddings", &b, err))) return st;
        c.tied_embeddings = b;
    }
    if (cllm_gguf_find_kv(g, "cllm.dropout") && (st = cllm_gguf_get_f32(g, "cllm.dropout", &c.dropout, err)))
        return st;
    if ((st = get_int_key(g, KEY("context_length"), &c.context_length, 1, err))) return st;
    if ((st = get_int_key(g, KEY("embedding_length"), &c.n_embd, 1, err))) return st;
    if ((st = get_int_key(g, KEY("block_count"), &c.n_layer, 1, err))) return st;
    if ((st = get_int_key(g, KEY("feed_forward_length"), &c.ffn_hidden, 1, err))) return st;
    if ((st = get_int_key(g, KEY("attention.head_count"), &c.n_head, 1, err))) return st;
    c.n_kv_head = c.n_head;
    if ((st = get_int_key(g, KEY("attention.head_count_kv"), &c.n_kv_head, 0, err))) return st;
    const char *eps_key = c.norm == CLLM_NORM_RMSNORM ? "attention.layer_norm_rms_epsilon"
                                                      : "attention.layer_norm_epsilon";
    if ((st = cllm_gguf_get_f32(g, KEY(eps_key), &c.norm_eps, err))) return st;
    if (c.pos == CLLM_POS_ROPE && cllm_gguf_find_kv(g, KEY("rope.freq_base")) &&
        (st = cllm_gguf_get_f32(g, k, &c.rope_theta, err)))
        return st;
    if (c.pos == CLLM_POS_ROPE && (st = rope_scaling_from_gguf(g, arch, &c, err))) return st;
    /* the vocabulary size: token_embd.weight is {n_embd, vocab} */
    const cllm_gguf_tensor *te = cllm_gguf_find_tensor(g, "token_embd.weight");
    if (!te) return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: missing tensor token_embd.weight", path);
    if (te->n_dims != 2 || te->dims[1] > INT_MAX)
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: token_embd.weight has %u dims; expected {n_embd, vocab}",
                              path, te->n_dims);
    c.vocab_size = (int)te->dims[1];
    if (cllm_gguf_find_kv(g, KEY("vocab_size"))) {
        int vs = 0;
        if ((st = get_int_key(g, k, &vs, 1, err))) return st;
        if (vs != c.vocab_size)
            return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: %s = %d but token_embd.weight has %d rows", path, k, vs,
                                  c.vocab_size);
    }
    if ((st = cllm_model_config_validate(&c, err))) {
        cllm_error_prefix(err, "%s", path);
        return CLLM_ERR_FORMAT;
    }
    if (c.pos == CLLM_POS_ROPE && cllm_gguf_find_kv(g, KEY("rope.dimension_count"))) {
        int rd = 0;
        if ((st = get_int_key(g, k, &rd, 1, err))) return st;
        if (rd != c.n_embd / c.n_head)
            return cllm_error_set(err, CLLM_ERR_FORMAT,
                                  "%s: %s = %d; cllm rotates whole heads (head size %d)", path, k, rd,
                                  c.n_embd / c.n_head);
    }
    if ((st = check_rope_freqs(g, &c, err))) return st;
#undef KEY
    *cfg = c;
    return CLLM_OK;
}

/* ---- weights -------------------------------------------------------------- */

static cllm_status config_mismatch(const cllm_gguf *g, const char *field, double file_v, double model_v,
                                   cllm_error *err) {
    return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: the file's %s is %g but the model's is %g",
                          cllm_gguf_path(g), field, file_v, model_v);
}

static cllm_status compare_configs(const cllm_gguf *g, const cllm_model_config *f, const cllm_model_config *m,
                                   cllm_error *err) {
#define SAME(field) \
    if (f->field != m->field) return config_mismatch(g, #field, (double)f->field, (double)m->field, err)
    SAME(vocab_size);
    SAME(context_length);
    SAME(n_layer);
    SAME(n_head);
    SAME(n_kv_head);
    SAME(n_embd);
    SAME(ffn_hidden);
    SAME(pos);
    SAME(norm);
    SAME(mlp);
    SAME(norm_eps);
    SAME(tied_embeddings);
    SAME(bias);
    SAME(dropout);
    SAME(qkv_bias);
    SAME(sliding_window);
    if (m->pos == CLLM_POS_ROPE) {
        SAME(rope_theta);
        SAME(rope_neox);
        SAME(rope_scaling);
    }
    if (m->rope_scaling != CLLM_ROPE_SCALING_NONE) SAME(rope_factor);
    if (m->rope_scaling == CLLM_ROPE_SCALING_LLAMA3) {
        SAME(rope_low_freq_factor);
        SAME(rope_high_freq_factor);
        SAME(rope_orig_context);
    }
#undef SAME
    return CLLM_OK;
}

static void fmt_dims(char *buf, size_t cap, const int64_t *d, uint32_t n) {
    size_t at = (size_t)snprintf(buf, cap, "{");
    for (uint32_t i = 0; i < n && at < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%lld", i ? ", " : "", (long long)d[i]);
    if (at < cap) snprintf(buf + at, cap - at, "}");
}

static cllm_status load_part(const cllm_gguf *g, const cllm_tensor *t, const model_gguf_part *pt, int check_finite,
                             cllm_error *err) {
    const char *path = cllm_gguf_path(g);
    const cllm_gguf_tensor *ft = cllm_gguf_find_tensor(g, pt->name);
    if (!ft) return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: missing tensor %s", path, pt->name);
    int64_t want[CLLM_GGUF_MAX_DIMS] = {pt->ndim == 2 ? pt->cols : pt->rows, pt->ndim == 2 ? pt->rows : 1, 1, 1};
    /* trailing 1s are not significant (llama.cpp drops them when writing) */
    if (memcmp(want, ft->dims, sizeof want) != 0) {
        char a[96], b[96];
        fmt_dims(a, sizeof a, ft->dims, ft->n_dims);
        fmt_dims(b, sizeof b, want, (uint32_t)pt->ndim);
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: shape of %s is %s, expected %s (GGUF dims, row length first)",
                              path, pt->name, a, b);
    }
    const cllm_ggml_type_info *ti = cllm_ggml_type_get(ft->type);
    if (!ti || !ti->has_kernels)
        return cllm_error_set(err, CLLM_ERR_FORMAT,
                              "%s: tensor %s has type %s; cllm loads f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1 and q2_K..q6_K", path,
                              pt->name, cllm_ggml_type_name(ft->type));
    float *dst = t->data + pt->row0 * pt->cols;
    int64_t n = pt->rows * pt->cols;
    CLLM_ASSERT(cllm_ggml_to_f32(ft->type, ft->data, dst, n) == 0); /* shape and type were checked */
    if (check_finite)
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(dst[i]))
                return cllm_error_set(err, CLLM_ERR_NUMERIC, "%s: tensor %s element %lld is %s", path, pt->name,
                                      (long long)i, isnan(dst[i]) ? "NaN" : "Inf");
    return CLLM_OK;
}

/* Is `name` a file tensor this model reads? */
static int expected_name(const cllm_model *m, const char *name) {
    const cllm_model_config *c = cllm_model_get_config(m);
    if (c->pos == CLLM_POS_SINUSOIDAL && strcmp(name, "position_embd.weight") == 0) return 1;
    if (model_gguf_extra_tensor(c, name)) return 1;
    /* scalar reward/value heads (rlhf.h) ride along; their readers load them */
    if (strncmp(name, "cls.", 4) == 0) return 1;
    for (int i = 0; i < cllm_model_num_tensors(m); i++) {
        model_gguf_part parts[MODEL_GGUF_MAX_PARTS];
        int np = model_gguf_parts(c, cllm_model_tensor(m, i), parts);
        for (int k = 0; k < np; k++)
            if (strcmp(parts[k].name, name) == 0) return 1;
    }
    return 0;
}

cllm_status cllm_model_read_gguf(cllm_model *m, const cllm_gguf *g, int check_finite, cllm_error *err) {
    const cllm_model_config *c = cllm_model_get_config(m);
    cllm_model_config fc;
    cllm_status st = cllm_model_config_from_gguf(g, &fc, err);
    if (st) return st;
    if ((st = compare_configs(g, &fc, c, err))) return st;
    uint64_t used = 0;
    for (int i = 0; i < cllm_model_num_tensors(m); i++) {
        const cllm_tensor *t = cllm_model_tensor(m, i);
        model_gguf_part parts[MODEL_GGUF_MAX_PARTS];
        int np = model_gguf_parts(c, t, parts);
        for (int k = 0; k < np; k++) {
            if ((st = load_part(g, t, &parts[k], check_finite, err))) return st;
            used++;
        }
    }
    if (c->pos == CLLM_POS_SINUSOIDAL && cllm_gguf_find_tensor(g, "position_embd.weight")) used++;
    if (cllm_gguf_find_tensor(g, MODEL_ROPE_FREQS) && model_gguf_extra_tensor(c, MODEL_ROPE_FREQS)) used++;
    if (used != cllm_gguf_n_tensors(g)) {
        for (uint64_t i = 0; i < cllm_gguf_n_tensors(g); i++) {
            const cllm_gguf_tensor *ft = cllm_gguf_tensor_at(g, i);
            if (!expected_name(m, ft->name))
                return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: unexpected tensor %s (not part of this %s model)",
                                      cllm_gguf_path(g), ft->name, cllm_model_gguf_arch(c));
        }
    }
    return CLLM_OK;
}

cllm_status cllm_model_from_gguf(const cllm_gguf *g, const cllm_model_options *opts, int check_finite,
                                 cllm_model **out, cllm_error *err) {
    *out = NULL;
    cllm_model_config cfg;
    cllm_status st = cllm_model_config_from_gguf(g, &cfg, err);
    if (st) return st;
    /* Bound the allocation by the file before creating the model: every
     * parameter needs an element in the file, and element counts were
     * checked against the file's real bytes by the reader. The slack lets a
     * file missing a few tensors reach the precise "missing tensor" message
     * below; a config far larger than its file stops here. */
    uint64_t have = 0;
    for (uint64_t i = 0; i < cllm_gguf_n_tensors(g); i++) have += (uint64_t)cllm_gguf_tensor_at(g, i)->n_elements;
    size_t need = cllm_model_config_num_params(&cfg);
    if (need > 2 * have + (1u << 20))
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: the file holds %llu weights but its config needs %zu",
                              cllm_gguf_path(g), (unsigned long long)have, need);
    cllm_model_options o = cllm_model_default_options();
    if (opts) o = *opts;
    else if (o.max_seq > cfg.context_length) o.max_seq = cfg.context_length;
    cllm_model *m = NULL;
    if ((st = cllm_model_create(&cfg, &o, &m, err))) {
        cllm_error_prefix(err, "%s", cllm_gguf_path(g));
        return st;
    }
    if ((st = cllm_model_read_gguf(m, g, check_finite, err))) {
        cllm_model_destroy(m);
        return st;
    }
    *out = m;
    return CLLM_OK;
}

cllm_status cllm_model_load_gguf(const char *path, const cllm_model_options *opts, int check_finite,
                                 cllm_model **out, cllm_error *err) {
    *out = NULL;
    cllm_gguf *g = NULL;
    cllm_status st = cllm_gguf_open(&g, path, err);
    if (st) return st;
    st = cllm_model_from_gguf(g, opts, check_finite, out, err);
    cllm_gguf_close(g);
    return st;
}
