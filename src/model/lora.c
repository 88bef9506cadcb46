/*
 * lora.c: LoRA adapters on a model: their tensor table and memory, the
 * forward/backward hooks the model calls after each adapted projection,
 * merging into the base weights, and adapter GGUF files (lora.h).
 *
 * Geometry of each target inside one block (row-major weights [rows, IC]):
 *   q     rows [0, NH*HS) of attn_qkv          (IC = C, out stride QKV)
 *   k     rows [NH*HS, (NH+NKV)*HS)             "
 *   v     rows [(NH+NKV)*HS, QKV)               "
 *   o     attn_output [C, C]                    (out stride C)
 *   gate  rows [0, H) of ffn_gate_up (SwiGLU)   (out stride 2H)
 *   up    rows [H, 2H) of ffn_gate_up, or ffn_up [H, C] (GELU)
 *   down  ffn_down [C, H]                       (IC = H, out stride C)
 * Memory: one block for A/B (params), one for their gradients (training),
 * saved x A^T per (layer, target) for backward, and scratch. Nothing is
 * allocated per step. Does not: run the optimizer (sft.c) or touch the base
 * model's gradient block (frozen bases have none: model.h freeze_base).
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/core/hash.h"
#include "cllm/core/fileio.h"
#include "cllm/formats/gguf.h"
#include "cllm/kernels/kernels.h"
#include "cllm/layers/layers.h"
#include "cllm/model/lora.h"
#include "cllm/model/gguf_io.h"
#include "cllm/core/rng.h"
#include "model_internal.h"

#define T_COUNT CLLM_LORA_TARGET_COUNT
#define ALIGN 16 /* floats: every tensor starts 64-byte aligned */

static const char *const target_names[T_COUNT] = {"q", "k", "v", "o", "up", "down", "gate"};
/* llama.cpp (`llama` arch) base tensor of each target. */
static const char *const base_names[T_COUNT] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                                "ffn_up", "ffn_down", "ffn_gate"};

typedef struct {
    int present;
    int role;       /* LIN_* of the projection it rides on */
    int IC, OC;     /* input width, rows of the adapted block */
    int row_off;    /* first row inside the (possibly fused) weight */
    int stride;     /* row stride of the projection output (= its total rows) */
    float *A, *B;   /* [r, IC], [OC, r] */
    float *dA, *dB; /* same, or NULL when not training */
    float *xa;      /* [max rows, r] saved for backward, NULL when not training */
} lora_slot;

struct model_lora {
    cllm_lora_config cfg;
    float scale;           /* alpha / r */
    lora_slot *slots;      /* [L * T_COUNT] */
    cllm_tensor *tensors;  /* [n_tensors] */
    int n_tensors;
    float *params, *grads; /* [n_params] */
    size_t n_params;
    float *saves;          /* all slots' xa */
    float *scratch;        /* [scratch_rows, r] x A^T when not saving */
    float *dxa;            /* [max rows, r] backward scratch */
    size_t scratch_rows, max_rows;
};

cllm_lora_config cllm_lora_default_config(void) {
    cllm_lora_config c = {8, 16.0f, (1u << CLLM_LORA_Q) | (1u << CLLM_LORA_V)};
    return c;
}

const char *cllm_lora_target_name(cllm_lora_target t) {
    return (int)t >= 0 && t < T_COUNT ? target_names[t] : "?";
}

cllm_status cllm_lora_targets_parse(const char *list, unsigned *targets, cllm_error *err) {
    *targets = 0;
    if (!list || !*list) return cllm_error_set(err, CLLM_ERR_ARG, "LoRA targets: empty list");
    if (!strcmp(list, "all")) {
        *targets = (1u << T_COUNT) - 1;
        return CLLM_OK;
    }
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        int found = -1;
        for (int t = 0; t < T_COUNT; t++)
            if (strlen(target_names[t]) == n && !strncmp(p, target_names[t], n)) found = t;
        if (found < 0)
            return cllm_error_set(err, CLLM_ERR_ARG,
                                  "LoRA targets: unknown target \"%.*s\" (use q,k,v,o,up,down,gate or all)", (int)n, p);
        if (*targets & (1u << found))
            return cllm_error_set(err, CLLM_ERR_ARG, "LoRA targets: \"%s\" is listed twice", target_names[found]);
        *targets |= 1u << found;
        if (!e) break;
        p = e + 1;
        if (!*p) return cllm_error_set(err, CLLM_ERR_ARG, "LoRA targets: trailing comma in \"%s\"", list);
    }
    return CLLM_OK;
}

void cllm_lora_targets_format(unsigned targets, char *buf, size_t cap) {
    size_t n = 0;
    if (cap) buf[0] = '\0';
    for (int t = 0; t < T_COUNT; t++)
        if (targets & (1u << t)) {
            int w = snprintf(buf + n, cap > n ? cap - n : 0, "%s%s", n ? "," : "", target_names[t]);
            if (w > 0) n += (size_t)w;
        }
}

/* Fills the geometry of target t for model m (present = 0 if the config lacks it). */
static void geometry(const cllm_model *m, int t, lora_slot *s) {
    const cllm_model_config *c = &m->cfg;
    const int C = c->n_embd, H = c->ffn_hidden, q = c->n_head * m->HS, kv = c->n_kv_head * m->HS;
    const int swiglu = c->mlp == CLLM_MLP_SWIGLU;
    memset(s, 0, sizeof *s);
    s->present = 1;
    s->IC = C;
    switch (t) {
    case CLLM_LORA_Q: s->role = LIN_QKV, s->OC = q, s->row_off = 0, s->stride = m->QKV; break;
    case CLLM_LORA_K: s->role = LIN_QKV, s->OC = kv, s->row_off = q, s->stride = m->QKV; break;
    case CLLM_LORA_V: s->role = LIN_QKV, s->OC = kv, s->row_off = q + kv, s->stride = m->QKV; break;
    case CLLM_LORA_O: s->role = LIN_ATTN_OUT, s->OC = C, s->stride = C; break;
    case CLLM_LORA_UP: s->role = LIN_FFN_UP, s->OC = H, s->row_off = swiglu ? H : 0, s->stride = m->Hu; break;
    case CLLM_LORA_GATE: s->role = LIN_FFN_UP, s->OC = H, s->stride = m->Hu, s->present = swiglu; break;
    default: s->role = LIN_FFN_DOWN, s->IC = H, s->OC = C, s->stride = C; break;
    }
}

static size_t up16(size_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

static float *falloc(size_t n) {
    if (!n) n = 1;
    float *p = aligned_alloc(64, up16(n) * sizeof(float));
    if (p) memset(p, 0, up16(n) * sizeof(float));
    return p;
}

void model_lora_free(struct model_lora *lo) {
    if (!lo) return;
    free(lo->slots);
    free(lo->tensors);
    free(lo->params);
    free(lo->grads);
    free(lo->saves);
    free(lo->scratch);
    free(lo->dxa);
    free(lo);
}

/* Rows of the saved x A^T (training forward) and of the scratch (decode too). */
static size_t max_rows_of(const cllm_model_options *o) { return (size_t)o->max_batch * (size_t)o->max_seq; }
static size_t scratch_rows_of(const cllm_model_options *o) {
    const size_t kv = o->kv_slots > 0 ? (size_t)o->kv_slots * (size_t)o->max_seq : 0;
    return kv > max_rows_of(o) ? kv : max_rows_of(o);
}

/* Builds the adapters (A, B zero) for cfg; does not initialise A. */
static cllm_status lora_create(cllm_model *m, const cllm_lora_config *cfg, cllm_error *err) {
    const cllm_model_config *c = &m->cfg;
    if (m->lora) return cllm_error_set(err, CLLM_ERR_ARG, "LoRA: the model already has adapters");
    if (cfg->rank < 1 || cfg->rank > CLLM_LORA_MAX_RANK)
        return cllm_error_set(err, CLLM_ERR_ARG, "LoRA: rank %d must be in [1, %d]", cfg->rank, CLLM_LORA_MAX_RANK);
    if (!isfinite(cfg->alpha) || cfg->alpha <= 0)
        return cllm_error_set(err, CLLM_ERR_ARG, "LoRA: alpha %g must be a positive number", (double)cfg->alpha);
    if (cfg->targets == 0 || cfg->targets >> T_COUNT)
        return cllm_error_set(err, CLLM_ERR_ARG, "LoRA: no valid targets (mask 0x%x)", cfg->targets);
    if ((cfg->targets & (1u << CLLM_LORA_GATE)) && c->mlp != CLLM_MLP_SWIGLU)
        return cllm_error_set(err, CLLM_ERR_ARG, "LoRA: target \"gate\" needs a SwiGLU model; this one uses %s",
                              cllm_model_mlp_name(c->mlp));
    const int L = c->n_layer, r = cfg->rank;
    struct model_lora *lo = calloc(1, sizeof *lo);
    if (!lo) return cllm_error_set(err, CLLM_ERR_NOMEM, "LoRA: out of memory");
    lo->cfg = *cfg;
    lo->scale = cfg->alpha / (float)r;
    lo->slots = calloc((size_t)L * T_COUNT, sizeof *lo->slots);
    int per_layer = 0;
    for (int t = 0; t < T_COUNT; t++) per_layer += (cfg->targets >> t) & 1;
    lo->tensors = calloc((size_t)L * per_layer * 2, sizeof *lo->tensors);
    if (!lo->slots || !lo->tensors) goto nomem;
    /* layout */
    size_t off = 0;
    for (int l = 0; l < L; l++)
        for (int t = 0; t < T_COUNT; t++) {
            if (!((cfg->targets >> t) & 1)) continue;
            lora_slot *s = &lo->slots[l * T_COUNT + t];
            geometry(m, t, s);
            for (int ab = 0; ab < 2; ab++) {
                cllm_tensor *x = &lo->tensors[lo->n_tensors++];
                snprintf(x->name, sizeof x->name, "blk.%d.%s.weight.lora_%c", l, base_names[t], ab ? 'b' : 'a');
                x->ndim = 2;
                x->shape[0] = ab ? s->OC : r;
                x->shape[1] = ab ? r : s->IC;
                x->numel = (size_t)x->shape[0] * (size_t)x->shape[1];
                x->offset = off;
                x->layer = l;
                x->decay = 1;
                x->trainable = 1;
                off += up16(x->numel);
            }
        }
    lo->n_params = off;
    lo->max_rows = max_rows_of(&m->opts);
    lo->scratch_rows = scratch_rows_of(&m->opts);
    if (!(lo->params = falloc(off))) goto nomem;
    if (m->opts.training && !(lo->grads = falloc(off))) goto nomem;
    if (!(lo->scratch = falloc(lo->scratch_rows * (size_t)r))) goto nomem;
    if (m->opts.training) {
        size_t per = up16(lo->max_rows * (size_t)r);
        if (!(lo->saves = falloc(per * (size_t)L * (size_t)per_layer))) goto nomem;
        if (!(lo->dxa = falloc(lo->max_rows * (size_t)r))) goto nomem;
        int k = 0;
        for (int i = 0; i < L * T_COUNT; i++)
            if (lo->slots[i].present) lo->slots[i].xa = lo->saves + per * (size_t)k++;
    }
    for (int i = 0, k = 0; i < L * T_COUNT; i++) {
        lora_slot *s = &lo->slots[i];
        if (!s->present) continue;
        cllm_tensor *a = &lo->tensors[k++], *b = &lo->tensors[k++];
        a->data = s->A = lo->params + a->offset;
        b->data = s->B = lo->params + b->offset;
        if (lo->grads) {
            a->grad = s->dA = lo->grads + a->offset;
            b->grad = s->dB = lo->grads + b->offset;
        }
    }
    m->lora = lo;
    return CLLM_OK;
nomem:
    model_lora_free(lo);
    return cllm_error_set(err, CLLM_ERR_NOMEM, "LoRA: out of memory for rank-%d adapters", r);
}

cllm_status cllm_model_lora_attach(cllm_model *m, const cllm_lora_config *cfg, uint64_t seed, cllm_error *err) {
    cllm_status st = lora_create(m, cfg, err);
    if (st != CLLM_OK) return st;
    /* A ~ U(-1/sqrt(IC), 1/sqrt(IC)): PyTorch's kaiming_uniform_(a = sqrt(5)),
     * which PEFT uses for lora_A; B = 0 so the adapted model starts equal to the base. */
    struct model_lora *lo = m->lora;
    for (int i = 0; i < lo->n_tensors; i += 2) {
        cllm_tensor *a = &lo->tensors[i];
        cllm_rng rng;
        cllm_rng_seed(&rng, seed * CLLM_GOLDEN_GAMMA + (uint64_t)i + 1);
        float bound = 1.0f / sqrtf((float)a->shape[1]);
        for (size_t j = 0; j < a->numel; j++) a->data[j] = bound * (2.0f * cllm_rng_float(&rng) - 1.0f);
    }
    return CLLM_OK;
}

const cllm_lora_config *cllm_model_lora_config(const cllm_model *m) { return m->lora ? &m->lora->cfg : NULL; }
int cllm_model_lora_num_tensors(const cllm_model *m) { return m->lora ? m->lora->n_tensors : 0; }
const cllm_tensor *cllm_model_lora_tensor(const cllm_model *m, int i) {
    return m->lora && i >= 0 && i < m->lora->n_tensors ? &m->lora->tensors[i] : NULL;
}
float *cllm_model_lora_params(cllm_model *m) { return m->lora ? m->lora->params : NULL; }
float *cllm_model_lora_grads(cllm_model *m) { return m->lora ? m->lora->grads : NULL; }
size_t cllm_model_lora_num_params(const cllm_model *m) { return m->lora ? m->lora->n_params : 0; }
void cllm_model_lora_zero_grad(cllm_model *m) {
    if (m->lora && m->lora->grads) memset(m->lora->grads, 0, m->lora->n_params * sizeof(float));
}

/* ---- hooks -------------------------------------------------------------------- */

void model_lora_forward(cllm_model *m, int l, int role, float *out, const float *in, int n, int save) {
    struct model_lora *lo = m->lora;
    if (!lo || l < 0) return;
    CLLM_ASSERT((size_t)n <= (save && lo->saves ? lo->max_rows : lo->scratch_rows));
    for (int t = 0; t < T_COUNT; t++) {
        lora_slot *s = &lo->slots[l * T_COUNT + t];
        if (!s->present || s->role != role) continue;
        float *xa = save && s->xa ? s->xa : lo->scratch;
        cllm_lora_forward(out + s->row_off, s->stride, xa, in, s->A, s->B, n, s->IC, s->OC, lo->cfg.rank, lo->scale);
    }
}

void model_lora_backward(cllm_model *m, int l, int role, const float *dout, const float *in, float *din, int n) {
    struct model_lora *lo = m->lora;
    if (!lo || !lo->grads) return;
    CLLM_ASSERT((size_t)n <= lo->max_rows);
    for (int t = 0; t < T_COUNT; t++) {
        lora_slot *s = &lo->slots[l * T_COUNT + t];
        if (!s->present || s->role != role) continue;
        cllm_lora_backward(din, s->dA, s->dB, lo->dxa, dout + s->row_off, s->stride, s->xa, in, s->A, s->B, n, s->IC,
                           s->OC, lo->cfg.rank, lo->scale);
    }
}

/* ---- merge ---------------------------------------------------------------------- */

cllm_status cllm_model_lora_merge(cllm_model *m, cllm_error *err) {
    struct model_lora *lo = m->lora;
    if (!lo) return cllm_error_set(err, CLLM_ERR_ARG, "LoRA merge: the model has no adapters");
    if (m->views)
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "LoRA merge: the base is a mapped (quantized) model; load it with f32 weights");
    for (int l = 0; l < m->cfg.n_layer; l++) {
        model_layer_weights w;
        model_layer_view(m, m->params, l, &w);
        for (int t = 0; t < T_COUNT; t++) {
            lora_slot *s = &lo->slots[l * T_COUNT + t];
            if (!s->present) continue;
            float *W = s->role == LIN_QKV ? w.qkv_w : s->role == LIN_ATTN_OUT ? w.attn_out_w
                     : s->role == LIN_FFN_UP ? w.ffn_up_w : w.ffn_down_w;
            /* W[row_off + i, :] += scale * B[i, :] A */
            cllm_sgemm(0, 0, s->OC, s->IC, lo->cfg.rank, lo->scale, s->B, lo->cfg.rank, s->A, s->IC, 1.0f,
                       W + (size_t)s->row_off * s->IC, s->IC);
        }
    }
    model_lora_free(lo);
    m->lora = NULL;
    return CLLM_OK;
}

/* ---- adapter files ---------------------------------------------------------------- */

static const struct {
    const char *key;
    size_t field; /* offset of the int in cllm_model_config */
} shape_keys[] = {
    {"cllm.lora.base.n_layer", offsetof(cllm_model_config, n_layer)},
    {"cllm.lora.base.n_embd", offsetof(cllm_model_config, n_embd)},
    {"cllm.lora.base.n_head", offsetof(cllm_model_config, n_head)},
    {"cllm.lora.base.n_kv_head", offsetof(cllm_model_config, n_kv_head)},
    {"cllm.lora.base.ffn_hidden", offsetof(cllm_model_config, ffn_hidden)},
    {"cllm.lora.base.mlp", offsetof(cllm_model_config, mlp)},
};

static int cfg_int(const cllm_model_config *c, size_t off) {
    int v;
    memcpy(&v, (const char *)c + off, sizeof v);
    return v;
}

cllm_status cllm_model_lora_save_gguf(const cllm_model *m, const char *path, cllm_error *err) {
    const struct model_lora *lo = m->lora;
    if (!lo) return cllm_error_set(err, CLLM_ERR_ARG, "%s: the model has no adapters to save", path);
    cllm_gguf_writer *w = cllm_gguf_writer_create();
    if (!w) return cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory", path);
    char targets[64];
    cllm_lora_targets_format(lo->cfg.targets, targets, sizeof targets);
    cllm_status st = cllm_gguf_set_str(w, "general.architecture", cllm_model_gguf_arch(&m->cfg), err);
    if (st == CLLM_OK) st = cllm_gguf_set_str(w, "general.type", "adapter", err);
    if (st == CLLM_OK) st = cllm_gguf_set_str(w, "general.name", "cllm LoRA adapter", err);
    if (st == CLLM_OK) st = cllm_gguf_set_str(w, "adapter.type", "lora", err);
    if (st == CLLM_OK) st = cllm_gguf_set_f32(w, "adapter.lora.alpha", lo->cfg.alpha, err);
    if (st == CLLM_OK) st = cllm_gguf_set_u32(w, "cllm.lora.rank", (uint32_t)lo->cfg.rank, err);
    if (st == CLLM_OK) st = cllm_gguf_set_str(w, "cllm.lora.targets", targets, err);
    for (size_t i = 0; st == CLLM_OK && i < sizeof shape_keys / sizeof shape_keys[0]; i++)
        st = cllm_gguf_set_u32(w, shape_keys[i].key, (uint32_t)cfg_int(&m->cfg, shape_keys[i].field), err);
    for (int i = 0; st == CLLM_OK && i < lo->n_tensors; i++) {
        const cllm_tensor *t = &lo->tensors[i];
        int64_t dims[2] = {t->shape[1], t->shape[0]};
        st = cllm_gguf_add_tensor(w, t->name, CLLM_GGML_F32, 2, dims, t->data, t->numel * sizeof(float), err);
    }
    if (st == CLLM_OK) st = cllm_gguf_writer_write(w, path, err);
    cllm_gguf_writer_destroy(w);
    return st;
}

static cllm_status lora_load(cllm_model *m, const char *path, cllm_error *err);

cllm_status cllm_model_lora_load_gguf(cllm_model *m, const char *path, cllm_error *err) {
    cllm_status st = lora_load(m, path, err);
    if (st != CLLM_OK) cllm_error_name_file(err, path);
    return st;
}

static cllm_status lora_load(cllm_model *m, const char *path, cllm_error *err) {
    if (m->lora) return cllm_error_set(err, CLLM_ERR_ARG, "%s: the model already has adapters", path);
    cllm_gguf *g = NULL;
    cllm_status st = cllm_gguf_open(&g, path, err);
    if (st != CLLM_OK) return st;
    char buf[64];
    cllm_lora_config cfg = {0, 0, 0};
    st = cllm_gguf_get_str_buf(g, "general.type", buf, sizeof buf, err);
    if (st == CLLM_OK && strcmp(buf, "adapter"))
        st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: general.type is \"%s\", not \"adapter\"", path, buf);
    if (st == CLLM_OK) st = cllm_gguf_get_str_buf(g, "adapter.type", buf, sizeof buf, err);
    if (st == CLLM_OK && strcmp(buf, "lora"))
        st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: adapter.type is \"%s\", not \"lora\"", path, buf);
    if (st == CLLM_OK) st = cllm_gguf_get_str_buf(g, "general.architecture", buf, sizeof buf, err);
    if (st == CLLM_OK && strcmp(buf, cllm_model_gguf_arch(&m->cfg)))
        st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: the adapter is for arch \"%s\" but the model is \"%s\"", path, buf,
                            cllm_model_gguf_arch(&m->cfg));
    if (st == CLLM_OK) st = cllm_gguf_get_f32(g, "adapter.lora.alpha", &cfg.alpha, err);
    for (size_t i = 0; st == CLLM_OK && i < sizeof shape_keys / sizeof shape_keys[0]; i++) {
        uint32_t v;
        if (!cllm_gguf_find_kv(g, shape_keys[i].key)) continue; /* files from other tools */
        st = cllm_gguf_get_u32(g, shape_keys[i].key, &v, err);
        if (st == CLLM_OK && (int)v != cfg_int(&m->cfg, shape_keys[i].field))
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: %s = %u does not match the model's %d", path, shape_keys[i].key,
                                v, cfg_int(&m->cfg, shape_keys[i].field));
    }
    /* targets and rank from the tensors of block 0 */
    for (int t = 0; st == CLLM_OK && t < T_COUNT; t++) {
        char name[CLLM_MODEL_NAME_MAX];
        snprintf(name, sizeof name, "blk.0.%s.weight.lora_a", base_names[t]);
        const cllm_gguf_tensor *a = cllm_gguf_find_tensor(g, name);
        if (!a) continue;
        cfg.targets |= 1u << t;
        if (a->n_dims != 2) st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: %s must be 2-D", path, name);
        else if (cfg.rank == 0) cfg.rank = (int)a->dims[1];
    }
    if (st == CLLM_OK && !cfg.targets)
        st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: no blk.0.*.weight.lora_a tensor: not a LoRA adapter for this model", path);
    if (st == CLLM_OK) st = lora_create(m, &cfg, err);
    if (st == CLLM_OK && cllm_gguf_n_tensors(g) != (uint64_t)m->lora->n_tensors)
        st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: %llu tensors, expected %d for rank %d targets of block 0 in every block",
                            path, (unsigned long long)cllm_gguf_n_tensors(g), m->lora->n_tensors, cfg.rank);
    for (int i = 0; st == CLLM_OK && i < m->lora->n_tensors; i++) {
        cllm_tensor *t = &m->lora->tensors[i];
        const cllm_gguf_tensor *x = cllm_gguf_find_tensor(g, t->name);
        if (!x) st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: missing tensor %s", path, t->name);
        else if (x->type != CLLM_GGML_F32)
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tensor %s is %s; adapters are read as f32", path, t->name,
                                cllm_gguf_type_name(x->type));
        else if (x->n_dims != 2 || x->dims[0] != t->shape[1] || x->dims[1] != t->shape[0])
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tensor %s has dims {%lld, %lld}, expected {%lld, %lld}", path,
                                t->name, (long long)x->dims[0], (long long)x->dims[1], (long long)t->shape[1],
                                (long long)t->shape[0]);
        else {
            memcpy(t->data, x->data, t->numel * sizeof(float));
            for (size_t j = 0; j < t->numel && st == CLLM_OK; j++)
                if (!isfinite(t->data[j]))
                    st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tensor %s element %zu is not finite", path, t->name, j);
        }
    }
    if (st != CLLM_OK && m->lora) {
        model_lora_free(m->lora);
        m->lora = NULL;
    }
    cllm_gguf_close(g);
    return st;
}

/* ---- QLoRA: quantized bases and the memory figures ------------------------------ */

int cllm_lora_base_is_quantized(const cllm_gguf *g) {
    for (uint64_t i = 0; i < cllm_gguf_n_tensors(g); i++) {
        const cllm_gguf_tensor *t = cllm_gguf_tensor_at(g, i);
        if (t->n_dims == 2 && t->type != CLLM_GGML_F32 && t->type != CLLM_GGML_F16 && t->type != CLLM_GGML_BF16)
            return 1;
    }
    return 0;
}

cllm_status cllm_lora_memory_estimate(const cllm_model_config *cfg, const cllm_lora_config *lc,
                                      const cllm_model_options *opts, const cllm_gguf *g, cllm_lora_memory *out,
                                      cllm_error *err) {
    memset(out, 0, sizeof *out);
    cllm_model_options o = *opts;
    o.training = 1;
    o.freeze_base = 1;
    cllm_model_memory mm;
    cllm_status st = cllm_model_memory_estimate(cfg, &o, &mm, err);
    if (st != CLLM_OK) return st;
    if (lc->rank < 1 || lc->rank > CLLM_LORA_MAX_RANK || !lc->targets || lc->targets >> T_COUNT)
        return cllm_error_set(err, CLLM_ERR_ARG, "LoRA memory: rank %d or targets 0x%x out of range", lc->rank,
                              lc->targets);
    /* the geometry of each target, as lora_create lays it out */
    cllm_model *m = calloc(1, sizeof *m);
    if (!m) return cllm_error_set(err, CLLM_ERR_NOMEM, "LoRA memory: out of memory");
    m->cfg = *cfg;
    m->HS = cfg->n_embd / cfg->n_head;
    m->QKV = (cfg->n_head + 2 * cfg->n_kv_head) * m->HS;
    m->Hu = cfg->mlp == CLLM_MLP_SWIGLU ? 2 * cfg->ffn_hidden : cfg->ffn_hidden;
    size_t n = 0;
    int per_layer = 0;
    for (int t = 0; t < T_COUNT; t++) {
        if (!((lc->targets >> t) & 1)) continue;
        lora_slot s;
        geometry(m, t, &s);
        if (!s.present) continue;
        per_layer++;
        n += up16((size_t)lc->rank * (size_t)s.IC) + up16((size_t)s.OC * (size_t)lc->rank);
    }
    free(m);
    n *= (size_t)cfg->n_layer;
    const size_t r = (size_t)lc->rank;
    const size_t saves = up16(max_rows_of(&o) * r) * (size_t)cfg->n_layer * (size_t)per_layer;
    out->adapter_params = n;
    out->adapter_bytes = sizeof(float) * (4 * up16(n) + saves + up16(scratch_rows_of(&o) * r) + up16(max_rows_of(&o) * r));
    if (!g) {
        out->base_bytes = mm.param_bytes;
    } else {
        /* matrices as the file stores them; 1-D tensors and position_embd widened to f32 */
        for (uint64_t i = 0; i < cllm_gguf_n_tensors(g); i++) {
            const cllm_gguf_tensor *t = cllm_gguf_tensor_at(g, i);
            size_t numel = 1;
            for (uint32_t d = 0; d < t->n_dims; d++) numel *= (size_t)t->dims[d];
            out->base_bytes += t->n_dims == 2 && strcmp(t->name, "position_embd.weight") ? (size_t)t->nbytes
                                                                                          : numel * sizeof(float);
        }
        out->base_bytes += model_infer_scratch_bytes(cfg);
    }
    out->activation_bytes = mm.activation_bytes;
    out->total_bytes = out->adapter_bytes + out->base_bytes + out->activation_bytes;
    return CLLM_OK;
}
