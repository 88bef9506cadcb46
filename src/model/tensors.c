/*
 * tensors.c: the tensor table and every allocation of a model.
 *
 * One function (build_table) lists the parameters of a config in a fixed
 * order with their GGUF names, shapes and decay flags; the parameter count,
 * the offsets of the params/grads blocks and the per-layer views all come
 * from it. A second one (plan) carves activations, scratch and the KV cache
 * for the maximum B and T; cllm_model_memory_estimate runs the same plan
 * without allocating, so `cllm info` reports exactly what create allocates.
 *
 * Order: token_embd, position_embd (learned only), then per block
 * attn_norm.{weight,bias}, attn_qkv.{weight,bias}, attn_output.{weight,bias},
 * ffn_norm.{weight,bias}, ffn_up|ffn_gate_up.{weight,bias},
 * ffn_down.{weight,bias}, then output_norm.{weight,bias}, output.weight
 * (untied only). Biases exist when cfg.bias (attn_qkv.bias also with
 * cfg.qkv_bias); norm biases only for LayerNorm.
 * Weight decay: every 2-D tensor (matrices and embeddings, as nanoGPT's
 * configure_optimizers), never 1-D ones (norm weights, biases).
 *
 * Not here: forward/backward math (forward.c, backward.c), decode (kv_cache.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cllm/core/hash.h"
#include "cllm/core/fileio.h"
#include "cllm/formats/ggml_types.h"
#include "cllm/layers/layers.h"
#include "cllm/core/rng.h"
#include "model_internal.h"

#define ALIGN_FLOATS 16 /* 64 bytes */
#define MAX_BATCH 65536
#define MAX_PLAN_BYTES ((double)(1ull << 46)) /* 64 TiB: larger is certainly a mistake */

static size_t round_up(size_t n) { return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS; }

/* Counts (tensors == NULL) or fills the table. Returns the tensor count and
 * sets *n_params; 0 on size overflow. Offsets are rounded to 16 floats so
 * every tensor starts 64-byte aligned. */
static int build_table(const cllm_model_config *c, cllm_tensor *tensors, size_t *n_params,
                       size_t (*layer_off)[ROLE_LAYER_COUNT], size_t *global_off) {
    int n = 0;
    size_t off = 0;
    int ok = 1;
    const size_t C = (size_t)c->n_embd, V = (size_t)c->vocab_size, H = (size_t)c->ffn_hidden;
    const size_t HS = C / (size_t)c->n_head;
    const size_t QKV = ((size_t)c->n_head + 2 * (size_t)c->n_kv_head) * HS;
    const size_t Hu = c->mlp == CLLM_MLP_SWIGLU ? 2 * H : H;
    const int ln = c->norm == CLLM_NORM_LAYERNORM;

#define ADD(slot, lay_, rows, cols, ndim_, fmt, ...)                                     \
    do {                                                                                  \
        size_t numel_ = 0;                                                                  \
        if (!cllm_size_mul((rows), (cols), &numel_)) ok = 0;                              \
        if (tensors) {                                                                    \
            cllm_tensor *t_ = &tensors[n];                                                \
            memset(t_, 0, sizeof *t_);                                                    \
            snprintf(t_->name, sizeof t_->name, fmt, __VA_ARGS__);                        \
            t_->ndim = (ndim_);                                                           \
            t_->shape[0] = (int64_t)(rows);                                               \
            t_->shape[1] = (int64_t)(cols);                                               \
            t_->numel = numel_;                                                           \
            t_->offset = off;                                                             \
            t_->layer = (lay_);                                                           \
            t_->decay = (ndim_) == 2;                                                     \
            t_->trainable = 1;                                                            \
        }                                                                                 \
        if (slot) *(slot) = off;                                                          \
        n++;                                                                              \
        if (!cllm_size_add(off, round_up(numel_), &off)) ok = 0;                          \
    } while (0)

    size_t *g = global_off;
    if (g)
        for (int i = 0; i < GROLE_COUNT; i++) g[i] = MODEL_NO_TENSOR;
    ADD(g ? &g[GROLE_TOK_EMBD] : NULL, -1, V, C, 2, "%s", "token_embd.weight");
    if (c->pos == CLLM_POS_LEARNED)
        ADD(g ? &g[GROLE_POS_EMBD] : NULL, -1, (size_t)c->context_length, C, 2, "%s",
            "position_embd.weight");
    for (int l = 0; l < c->n_layer; l++) {
        size_t *o = layer_off ? layer_off[l] : NULL;
        if (o)
            for (int i = 0; i < ROLE_LAYER_COUNT; i++) o[i] = MODEL_NO_TENSOR;
#define SLOT(r) (o ? &o[r] : NULL)
        ADD(SLOT(ROLE_ATTN_NORM_W), l, C, 1, 1, "blk.%d.attn_norm.weight", l);
        if (ln && c->bias) ADD(SLOT(ROLE_ATTN_NORM_B), l, C, 1, 1, "blk.%d.attn_norm.bias", l);
        ADD(SLOT(ROLE_QKV_W), l, QKV, C, 2, "blk.%d.attn_qkv.weight", l);
        if (c->bias || c->qkv_bias) ADD(SLOT(ROLE_QKV_B), l, QKV, 1, 1, "blk.%d.attn_qkv.bias", l);
        ADD(SLOT(ROLE_ATTN_OUT_W), l, C, C, 2, "blk.%d.attn_output.weight", l);
        if (c->bias) ADD(SLOT(ROLE_ATTN_OUT_B), l, C, 1, 1, "blk.%d.attn_output.bias", l);
        ADD(SLOT(ROLE_FFN_NORM_W), l, C, 1, 1, "blk.%d.ffn_norm.weight", l);
        if (ln && c->bias) ADD(SLOT(ROLE_FFN_NORM_B), l, C, 1, 1, "blk.%d.ffn_norm.bias", l);
        const char *up = c->mlp == CLLM_MLP_SWIGLU ? "ffn_gate_up" : "ffn_up";
        ADD(SLOT(ROLE_FFN_UP_W), l, Hu, C, 2, "blk.%d.%s.weight", l, up);
        if (c->bias) ADD(SLOT(ROLE_FFN_UP_B), l, Hu, 1, 1, "blk.%d.%s.bias", l, up);
        ADD(SLOT(ROLE_FFN_DOWN_W), l, C, H, 2, "blk.%d.ffn_down.weight", l);
        if (c->bias) ADD(SLOT(ROLE_FFN_DOWN_B), l, C, 1, 1, "blk.%d.ffn_down.bias", l);
#undef SLOT
    }
    ADD(g ? &g[GROLE_OUT_NORM_W] : NULL, -1, C, 1, 1, "%s", "output_norm.weight");
    if (ln && c->bias) ADD(g ? &g[GROLE_OUT_NORM_B] : NULL, -1, C, 1, 1, "%s", "output_norm.bias");
    if (!c->tied_embeddings) ADD(g ? &g[GROLE_OUTPUT] : NULL, -1, V, C, 2, "%s", "output.weight");
#undef ADD
    *n_params = off;
    return ok ? n : 0;
}

size_t cllm_model_config_num_params(const cllm_model_config *c) {
    /* Structural sanity only (validate calls us last, after its range checks). */
    if (!c || c->n_head <= 0 || c->n_kv_head <= 0 || c->n_embd <= 0 || c->vocab_size <= 0 ||
        c->ffn_hidden <= 0 || c->n_layer <= 0 || c->n_layer > CLLM_MODEL_MAX_LAYERS ||
        c->context_length <= 0)
        return 0;
    size_t n_params = 0;
    if (build_table(c, NULL, &n_params, NULL, NULL) == 0) return 0;
    /* Count real elements (without alignment padding). */
    cllm_tensor *t = malloc(sizeof *t * (size_t)(3 + 12 * c->n_layer + 3));
    if (!t) return 0;
    int n = build_table(c, t, &n_params, NULL, NULL);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += t[i].numel;
    free(t);
    return total;
}

size_t cllm_model_config_num_params_non_embedding(const cllm_model_config *c) {
    size_t total = cllm_model_config_num_params(c);
    if (total == 0) return 0;
    size_t emb = (size_t)c->vocab_size * (size_t)c->n_embd * (c->tied_embeddings ? 1 : 2);
    if (c->pos == CLLM_POS_LEARNED) emb += (size_t)c->context_length * (size_t)c->n_embd;
    return total - emb;
}

/* ---- activation / KV plan ------------------------------------------------- */

typedef struct {
    float *base; /* NULL while only counting */
    size_t used; /* floats */
} carver;

static float *carve(carver *cv, size_t nfloats) {
    size_t off = cv->used;
    cv->used += round_up(nfloats);
    return cv->base ? cv->base + off : NULL;
}
static uint8_t *carve_bytes(carver *cv, size_t nbytes) {
    return (uint8_t *)carve(cv, (nbytes + sizeof(float) - 1) / sizeof(float));
}

/* Carves the activation block (m may have all pointers NULL when counting). */
static size_t plan_acts(cllm_model *m, float *base) {
    const cllm_model_config *c = &m->cfg;
    const size_t B = (size_t)m->opts.max_batch, T = (size_t)m->opts.max_seq, N = B * T;
    const size_t C = (size_t)c->n_embd, V = (size_t)c->vocab_size, H = (size_t)c->ffn_hidden;
    const size_t QKV = (size_t)m->QKV, Hu = (size_t)m->Hu, NH = (size_t)c->n_head;
    const int training = m->opts.training;
    const int ln = c->norm == CLLM_NORM_LAYERNORM;
    const int drop = training && c->dropout > 0.0f;
    carver cv = {base, 0};
    model_global_acts *g = &m->ga;
    g->emb = carve(&cv, N * C);
    g->mask_emb = drop ? carve_bytes(&cv, N * C) : NULL;
    /* Blocks: all L when training, else one shared set. */
    int n_sets = training ? c->n_layer : 1;
    for (int l = 0; l < c->n_layer; l++) {
        model_layer_acts *a = &m->la[l];
        if (l >= n_sets) {
            *a = m->la[0];
            continue;
        }
        a->ln1 = carve(&cv, N * C);
        a->ln1_mean = ln ? carve(&cv, N) : NULL;
        a->ln1_rstd = carve(&cv, N);
        a->qkv = carve(&cv, N * QKV);
        a->att = carve(&cv, B * NH * T * T);
        a->atty = carve(&cv, N * C);
        a->res2 = carve(&cv, N * C);
        a->ln2 = carve(&cv, N * C);
        a->ln2_mean = ln ? carve(&cv, N) : NULL;
        a->ln2_rstd = carve(&cv, N);
        a->fch = carve(&cv, N * Hu);
        a->fact = carve(&cv, N * H);
        a->res3 = carve(&cv, N * C);
        a->mask_attn = drop ? carve_bytes(&cv, N * C) : NULL;
        a->mask_mlp = drop ? carve_bytes(&cv, N * C) : NULL;
    }
    g->lnf = carve(&cv, N * C);
    g->lnf_mean = ln ? carve(&cv, N) : NULL;
    g->lnf_rstd = carve(&cv, N);
    g->logits = carve(&cv, N * V);
    g->row_max = carve(&cv, N);
    g->row_rsum = carve(&cv, N);
    g->losses = carve(&cv, N);
    g->proj = carve(&cv, N * C);
    g->drop = c->dropout > 0.0f ? carve(&cv, N * C) : NULL;
    m->tokens = (int32_t *)carve(&cv, N);
    m->targets = (int32_t *)carve(&cv, N);
    if (training) {
        g->dres = carve(&cv, N * C);
        g->dln = carve(&cv, N * C);
        g->dqkv = carve(&cv, N * QKV);
        g->datt = carve(&cv, B * NH * T * T);
        g->datty = carve(&cv, N * C);
        g->dfch = carve(&cv, N * Hu);
        g->dfact = carve(&cv, N * H);
        g->dproj = drop ? carve(&cv, N * C) : NULL;
    }
    return cv.used;
}

size_t model_kv_row_bytes(const cllm_model *m) {
    const size_t KVW = (size_t)m->cfg.n_kv_head * (size_t)m->HS;
    return m->opts.kv_type == CLLM_GGML_Q8_0 ? KVW / CLLM_QK8_0 * CLLM_Q8_0_BYTES
           : m->opts.kv_type == CLLM_GGML_F16 ? KVW * sizeof(uint16_t)
                                               : KVW * sizeof(float);
}

static size_t plan_kv(cllm_model *m, float *base) {
    if (m->opts.kv_slots <= 0) return 0;
    const cllm_model_config *c = &m->cfg;
    const size_t n = (size_t)m->opts.max_seq, S = (size_t)m->opts.kv_slots;
    const size_t ctx = (size_t)m->opts.kv_context, L = (size_t)c->n_layer;
    const size_t C = (size_t)c->n_embd, KVW = (size_t)c->n_kv_head * (size_t)m->HS;
    carver cv = {base, 0};
    model_kv *k = &m->kv;
    if (m->opts.kv_type != CLLM_GGML_F32) { /* q8_0: 34-byte blocks of 32 values; f16 (kv_cache.c) */
        const size_t rowb = model_kv_row_bytes(m), hs = (size_t)m->HS;
        k->kq = carve_bytes(&cv, L * S * ctx * rowb);
        k->vq = carve_bytes(&cv, L * S * ctx * rowb);
        if (m->opts.kv_type == CLLM_GGML_Q8_0)
            k->qq = carve_bytes(&cv, n * (size_t)c->n_head * hs / CLLM_QK8_0 * CLLM_Q8_0_BYTES);
        k->kdq = carve(&cv, ctx * hs);
        k->vdq = carve(&cv, ctx * hs);
    } else {
        k->k = carve(&cv, L * S * ctx * KVW);
        k->v = carve(&cv, L * S * ctx * KVW);
    }
    k->x = carve(&cv, n * C);
    k->h = carve(&cv, n * C);
    k->mean = carve(&cv, n);
    k->rstd = carve(&cv, n);
    k->qkv = carve(&cv, n * (size_t)m->QKV);
    k->atty = carve(&cv, n * C);
    k->proj = carve(&cv, n * C);
    k->fch = carve(&cv, n * (size_t)m->Hu);
    k->fact = carve(&cv, n * (size_t)c->ffn_hidden);
    k->scores = carve(&cv, ((size_t)c->n_head > n ? (size_t)c->n_head : n) * ctx); /* [max(NH, max_seq), ctx] */
    k->logits = carve(&cv, n * (size_t)c->vocab_size);
    return cv.used;
}

cllm_model_options cllm_model_default_options(void) {
    cllm_model_options o = {1, 64, 0, 0, 0, 0, CLLM_GGML_F32, 0, CLLM_BF16_PROMPT_AUTO, 0};
    return o;
}

/* Validates opts against cfg (cfg already valid); fills kv_context default. */
static cllm_status check_options(const cllm_model_config *c, cllm_model_options *o, cllm_error *err) {
    if (o->max_batch < 1 || o->max_batch > MAX_BATCH)
        return cllm_error_set(err, CLLM_ERR_ARG, "model options: max_batch = %d must be in [1, %d]",
                              o->max_batch, MAX_BATCH);
    if (o->max_seq < 1 || o->max_seq > c->context_length)
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "model options: max_seq = %d must be in [1, context_length = %d]",
                              o->max_seq, c->context_length);
    if (o->training != 0 && o->training != 1)
        return cllm_error_set(err, CLLM_ERR_ARG, "model options: training = %d must be 0 or 1",
                              o->training);
    if (o->freeze_base != 0 && o->freeze_base != 1)
        return cllm_error_set(err, CLLM_ERR_ARG, "model options: freeze_base = %d must be 0 or 1",
                              o->freeze_base);
    if (o->kv_slots < 0 || o->kv_slots > MAX_BATCH)
        return cllm_error_set(err, CLLM_ERR_ARG, "model options: kv_slots = %d must be in [0, %d]",
                              o->kv_slots, MAX_BATCH);
    if (o->kv_type != CLLM_GGML_F32 && o->kv_type != CLLM_GGML_F16 && o->kv_type != CLLM_GGML_Q8_0)
        return cllm_error_set(err, CLLM_ERR_ARG, "model options: kv_type = %d must be f32 (%d), f16 (%d) or q8_0 (%d)",
                              o->kv_type, CLLM_GGML_F32, CLLM_GGML_F16, CLLM_GGML_Q8_0);
    if (o->kv_type == CLLM_GGML_Q8_0 && (c->n_embd / c->n_head) % CLLM_QK8_0 != 0)
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "model options: a q8_0 KV cache needs a head size that is a multiple of %d "
                              "(this model's is %d)", CLLM_QK8_0, c->n_embd / c->n_head);
    if (o->bf16_prompt < CLLM_BF16_PROMPT_AUTO || o->bf16_prompt > CLLM_BF16_PROMPT_ONEDNN)
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "model options: bf16_prompt = %d must be auto (%d), own (%d) or onednn (%d)",
                              o->bf16_prompt, CLLM_BF16_PROMPT_AUTO, CLLM_BF16_PROMPT_OWN, CLLM_BF16_PROMPT_ONEDNN);
    if (o->kv_context == 0) o->kv_context = c->context_length;
    if (o->kv_context < 1 || o->kv_context > c->context_length)
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "model options: kv_context = %d must be in [1, context_length = %d]",
                              o->kv_context, c->context_length);
    /* Bound the plan in double precision first so size_t arithmetic cannot overflow. */
    double B = o->max_batch, T = o->max_seq, N = B * T, C = c->n_embd, V = c->vocab_size;
    double acts = (double)c->n_layer * (N * (8.0 * C + 3.0 * c->ffn_hidden + 2.0 * (c->n_head + 2.0 * c->n_kv_head) * C / c->n_head) +
                                        2.0 * B * c->n_head * T * T) +
                  4.0 * N * V;
    double kv = 2.0 * c->n_layer * (double)o->kv_slots * o->kv_context * C + 4.0 * T * V;
    if (4.0 * acts > MAX_PLAN_BYTES || 4.0 * kv > MAX_PLAN_BYTES)
        return cllm_error_set(err, CLLM_ERR_LIMIT,
                              "model options: activations (%.3g bytes) or KV cache (%.3g bytes) "
                              "exceed the %.3g byte limit; lower max_batch, max_seq or kv_context",
                              4.0 * acts, 4.0 * kv, MAX_PLAN_BYTES);
    return CLLM_OK;
}

static void set_shape(cllm_model *m) {
    m->HS = m->cfg.n_embd / m->cfg.n_head;
    const cllm_model_config *c = &m->cfg;
    m->rope = (cllm_rope_params){.theta = c->rope_theta, .neox = c->rope_neox, .freq_scale = 1.0};
    if (c->rope_scaling == CLLM_ROPE_SCALING_LINEAR) m->rope.freq_scale = 1.0 / c->rope_factor;
    if (c->rope_scaling == CLLM_ROPE_SCALING_LLAMA3 && m->HS <= 1024) {
        cllm_model_rope_freq_div(c, m->rope_div);
        m->rope.freq_div = m->rope_div;
    }
    m->QKV = (m->cfg.n_head + 2 * m->cfg.n_kv_head) * m->HS;
    m->Hu = m->cfg.mlp == CLLM_MLP_SWIGLU ? 2 * m->cfg.ffn_hidden : m->cfg.ffn_hidden;
}

static float *alloc_floats(size_t n) {
    if (n == 0) return NULL;
    size_t bytes;
    if (!cllm_size_mul(n, sizeof(float), &bytes)) return NULL;
    bytes = (bytes + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

cllm_status cllm_model_memory_estimate(const cllm_model_config *cfg, const cllm_model_options *opts,
                                       cllm_model_memory *out, cllm_error *err) {
    cllm_status st = cllm_model_config_validate(cfg, err);
    if (st != CLLM_OK) return st;
    cllm_model_options o = *opts;
    if ((st = check_options(cfg, &o, err)) != CLLM_OK) return st;
    cllm_model *m = calloc(1, sizeof *m);
    model_layer_acts *la = calloc((size_t)cfg->n_layer, sizeof *la);
    if (!m || !la) {
        free(m);
        free(la);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "model memory estimate: out of memory");
    }
    m->cfg = *cfg;
    m->opts = o;
    m->la = la;
    set_shape(m);
    size_t padded = 0;
    build_table(cfg, NULL, &padded, NULL, NULL);
    memset(out, 0, sizeof *out);
    out->n_params = cllm_model_config_num_params(cfg);
    out->param_bytes = round_up(padded) * sizeof(float);
    out->grad_bytes = o.training && !o.freeze_base ? out->param_bytes : 0;
    out->adamw_bytes = o.training && !o.freeze_base ? 2 * out->param_bytes : 0;
    out->activation_bytes = plan_acts(m, NULL) * sizeof(float);
    if (cfg->pos == CLLM_POS_SINUSOIDAL)
        out->activation_bytes += round_up((size_t)cfg->context_length * (size_t)cfg->n_embd) * sizeof(float);
    out->kv_cache_bytes = plan_kv(m, NULL) * sizeof(float);
    if (o.kv_slots > 0)
        out->kv_store_bytes = 2 * (size_t)cfg->n_layer * (size_t)o.kv_slots * (size_t)o.kv_context * model_kv_row_bytes(m);
    out->total_bytes = out->param_bytes + out->grad_bytes + out->adamw_bytes + out->activation_bytes +
                       out->kv_cache_bytes;
    free(la);
    free(m);
    return CLLM_OK;
}

/* Zeroed floats whose pages are only committed when written (mapped models
 * keep their matrices in the file, so most of this block is never touched). */
static float *alloc_floats_lazy(size_t n, size_t *bytes_out) {
    size_t bytes;
    if (n == 0 || !cllm_size_mul(n, sizeof(float), &bytes)) return NULL;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return NULL;
    *bytes_out = bytes;
    return p;
}

cllm_status cllm_model_create(const cllm_model_config *cfg, const cllm_model_options *opts,
                              cllm_model **out, cllm_error *err) {
    return model_create_impl(cfg, opts, 0, out, err);
}

cllm_status model_create_impl(const cllm_model_config *cfg, const cllm_model_options *opts, int lazy_params,
                              cllm_model **out, cllm_error *err) {
    *out = NULL;
    cllm_status st = cllm_model_config_validate(cfg, err);
    if (st != CLLM_OK) return st;
    cllm_model_options o = opts ? *opts : cllm_model_default_options();
    if (!opts && o.max_seq > cfg->context_length) o.max_seq = cfg->context_length;
    if ((st = check_options(cfg, &o, err)) != CLLM_OK) return st;
    cllm_model *m = calloc(1, sizeof *m);
    if (!m) return cllm_error_set(err, CLLM_ERR_NOMEM, "model: out of memory");
    m->cfg = *cfg;
    m->opts = o;
    set_shape(m);
    size_t padded = 0;
    int n = build_table(cfg, NULL, &padded, NULL, NULL);
    m->tensors = calloc((size_t)n, sizeof *m->tensors);
    m->la = calloc((size_t)cfg->n_layer, sizeof *m->la);
    if (o.kv_slots > 0) m->kv_len = calloc((size_t)o.kv_slots, sizeof *m->kv_len);
    if (!m->tensors || !m->la || (o.kv_slots > 0 && !m->kv_len)) goto nomem;
    m->n_tensors = build_table(cfg, m->tensors, &padded, m->layer_off, m->global_off);
    m->n_params = padded;
    if (lazy_params ? !(m->params = alloc_floats_lazy(padded, &m->params_map_bytes))
                    : !(m->params = alloc_floats(padded)))
        goto nomem;
    if (o.training && !o.freeze_base && !(m->grads = alloc_floats(padded))) goto nomem;
    for (int i = 0; i < m->n_tensors; i++) {
        m->tensors[i].trainable = !o.freeze_base;
        m->tensors[i].data = m->params + m->tensors[i].offset;
        m->tensors[i].grad = m->grads ? m->grads + m->tensors[i].offset : NULL;
    }
    size_t acts = plan_acts(m, NULL);
    if (!(m->acts_mem = alloc_floats(acts))) goto nomem;
    plan_acts(m, m->acts_mem);
    if (cfg->pos == CLLM_POS_SINUSOIDAL) {
        if (!(m->consts = alloc_floats((size_t)cfg->context_length * (size_t)cfg->n_embd))) goto nomem;
        cllm_sinusoidal_table(m->consts, cfg->context_length, cfg->n_embd);
    }
    size_t kv = plan_kv(m, NULL);
    if (kv) {
        if (!(m->kv_mem = alloc_floats(kv))) goto nomem;
        plan_kv(m, m->kv_mem);
    }
    *out = m;
    return CLLM_OK;
nomem:
    cllm_model_destroy(m);
    return cllm_error_set(err, CLLM_ERR_NOMEM, "model: out of memory allocating %zu parameters",
                          padded);
}

void cllm_model_destroy(cllm_model *m) {
    if (!m) return;
    model_lora_free(m->lora);
    free(m->seg);
    free(m->tensors);
    free(m->la);
    free(m->kv_len);
    model_infer_views_free(m->views);
    if (m->params_map_bytes)
        munmap(m->params, m->params_map_bytes);
    else
        free(m->params);
    free(m->grads);
    free(m->acts_mem);
    free(m->consts);
    free(m->kv_mem);
    free(m);
}

const cllm_model_config *cllm_model_get_config(const cllm_model *m) { return &m->cfg; }
const cllm_model_options *cllm_model_get_options(const cllm_model *m) { return &m->opts; }
float *cllm_model_params(cllm_model *m) { return m->params; }
float *cllm_model_grads(cllm_model *m) { return m->grads; }
size_t cllm_model_num_params(const cllm_model *m) { return m->n_params; }
int cllm_model_num_tensors(const cllm_model *m) { return m->n_tensors; }

const cllm_tensor *cllm_model_tensor(const cllm_model *m, int i) {
    return i >= 0 && i < m->n_tensors ? &m->tensors[i] : NULL;
}

const cllm_tensor *cllm_model_find_tensor(const cllm_model *m, const char *name) {
    for (int i = 0; name && i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

/* NULL for an absent tensor, and for every tensor of an absent block (frozen base: no grads). */
static float *at(float *base, size_t off) { return off == MODEL_NO_TENSOR || !base ? NULL : base + off; }

void model_layer_view(const cllm_model *m, float *base, int l, model_layer_weights *w) {
    const size_t *o = m->layer_off[l];
    w->attn_norm_w = at(base, o[ROLE_ATTN_NORM_W]);
    w->attn_norm_b = at(base, o[ROLE_ATTN_NORM_B]);
    w->qkv_w = at(base, o[ROLE_QKV_W]);
    w->qkv_b = at(base, o[ROLE_QKV_B]);
    w->attn_out_w = at(base, o[ROLE_ATTN_OUT_W]);
    w->attn_out_b = at(base, o[ROLE_ATTN_OUT_B]);
    w->ffn_norm_w = at(base, o[ROLE_FFN_NORM_W]);
    w->ffn_norm_b = at(base, o[ROLE_FFN_NORM_B]);
    w->ffn_up_w = at(base, o[ROLE_FFN_UP_W]);
    w->ffn_up_b = at(base, o[ROLE_FFN_UP_B]);
    w->ffn_down_w = at(base, o[ROLE_FFN_DOWN_W]);
    w->ffn_down_b = at(base, o[ROLE_FFN_DOWN_B]);
}

void model_global_view(const cllm_model *m, float *base, model_global_weights *w) {
    w->tok_embd = at(base, m->global_off[GROLE_TOK_EMBD]);
    w->pos_embd = at(base, m->global_off[GROLE_POS_EMBD]);
    w->out_norm_w = at(base, m->global_off[GROLE_OUT_NORM_W]);
    w->out_norm_b = at(base, m->global_off[GROLE_OUT_NORM_B]);
    w->output = m->cfg.tied_embeddings ? w->tok_embd : at(base, m->global_off[GROLE_OUTPUT]);
}

/* An independent stream seed per tensor: one splitmix64 step (hash.h). */
static uint64_t mix64(uint64_t x) { return cllm_splitmix64(&x); }

void cllm_model_init_weights(cllm_model *m, uint64_t seed) {
    /* GPT-2 paper sec. 2.3 / nanoGPT: std 0.02, residual projections 0.02/sqrt(2L). */
    const float std = 0.02f, resid_std = 0.02f / sqrtf(2.0f * (float)m->cfg.n_layer);
    /* Each tensor has its own stream, so tensors can fill in parallel with
     * identical results for any thread count. */
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < m->n_tensors; i++) {
        cllm_tensor *t = &m->tensors[i];
        if (t->ndim == 1) {
            /* norm weights 1, biases 0 */
            float v = strstr(t->name, "norm.weight") ? 1.0f : 0.0f;
            for (size_t j = 0; j < t->numel; j++) t->data[j] = v;
            continue;
        }
        int resid = strstr(t->name, "attn_output.weight") || strstr(t->name, "ffn_down.weight");
        float s = resid ? resid_std : std;
        cllm_rng rng;
        cllm_rng_seed(&rng, mix64(seed ^ mix64((uint64_t)i + 1)));
        for (size_t j = 0; j < t->numel; j++) t->data[j] = s * cllm_rng_normal(&rng);
    }
}

double cllm_model_flops_per_token(const cllm_model_config *c, int T) {
    double C = c->n_embd, H = c->ffn_hidden, V = c->vocab_size, L = c->n_layer;
    double HS = C / c->n_head, QKV = (c->n_head + 2.0 * c->n_kv_head) * HS;
    double up = c->mlp == CLLM_MLP_SWIGLU ? 2 * H : H;
    double matmul_params = L * (QKV * C + C * C + up * C + H * C) + V * C;
    return 2.0 * matmul_params + 4.0 * L * (double)T * C;
}
