/*
 * convert.c: Hugging Face folder -> GGUF (contract in cllm/infer/convert.h).
 *
 * Three steps: read config.json into one hparams struct (refusing what the
 * target arch cannot express), build the plan (one row per GGUF tensor:
 * its Hugging Face name, expected shape and transform), then hand the
 * tensors to the quantizer's core, which adds them to a GGUF writer with
 * the tokenizer keys. The layout rules were learned from llama.cpp's
 * convert_hf_to_gguf.py and conversion/{gpt2,llama,qwen}.py; the code is
 * cllm's own.
 *
 * Not here: safetensors parsing (formats/safetensors.c), tokenizer file
 * parsing (tokenizer module), type conversion (quantize.c, ggml_types.c).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/core/fileio.h"
#include "cllm/formats/ggml_types.h"
#include "cllm/formats/gguf.h"
#include "cllm/formats/safetensors.h"
#include "cllm/infer/convert.h"
#include "cllm/tokenizer/tokenizer.h"

cllm_convert_params cllm_convert_default_params(void) {
    cllm_convert_params p = {.auto_type = 1, .type = CLLM_GGML_F32, .mix = CLLM_QUANTIZE_PURE, .name = NULL};
    return p;
}

/* ---- config.json ---------------------------------------------------------------- */

typedef enum { ARCH_GPT2, ARCH_LLAMA, ARCH_QWEN2, ARCH_COUNT } arch_kind;

static const struct {
    const char *hf, *gguf;
    arch_kind kind;
    int mistral;
} archs[] = {
    {"GPT2LMHeadModel", "gpt2", ARCH_GPT2, 0},
    {"LlamaForCausalLM", "llama", ARCH_LLAMA, 0},
    {"MistralForCausalLM", "llama", ARCH_LLAMA, 1},
    {"Qwen2ForCausalLM", "qwen2", ARCH_QWEN2, 0},
};

typedef struct {
    arch_kind kind;
    const char *gguf_arch;
    int mistral;
    int64_t V, C, L, NH, NKV, F, ctx; /* vocab, embedding, layers, heads, kv heads, ffn, context */
    double eps, rope_theta;
    int has_rope_theta, tied, attn_bias, head_dim_given;
    int64_t sliding_window;           /* Mistral; 0 none */
    int rope_llama3, rope_linear;
    double rs_factor, rs_low, rs_high, rs_orig; /* rope_scaling */
} hparams;

typedef struct {
    const char *path; /* config.json, for messages */
    const cJSON *root;
    cllm_error *err;
} cfg_reader;

/* An integer key: required (def < 0) or defaulted; must be in [lo, INT32_MAX]. */
static cllm_status cfg_int(cfg_reader *r, const char *key, int64_t def, int64_t lo, int64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->root, key);
    if (!v || cJSON_IsNull(v)) {
        if (def < 0) return cllm_error_set(r->err, CLLM_ERR_FORMAT, "%s: missing key '%s'", r->path, key);
        *out = def;
        return CLLM_OK;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d >= (double)lo && d <= (double)INT32_MAX) || floor(d) != d)
        return cllm_error_set(r->err, CLLM_ERR_FORMAT, "%s: key '%s' is not an integer >= %lld", r->path, key,
                              (long long)lo);
    *out = (int64_t)d;
    return CLLM_OK;
}

static cllm_status cfg_num(cfg_reader *r, const char *key, double def, int required, double *out, int *present) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->root, key);
    if (present) *present = v && !cJSON_IsNull(v);
    if (!v || cJSON_IsNull(v)) {
        if (required) return cllm_error_set(r->err, CLLM_ERR_FORMAT, "%s: missing key '%s'", r->path, key);
        *out = def;
        return CLLM_OK;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble <= 0)
        return cllm_error_set(r->err, CLLM_ERR_FORMAT, "%s: key '%s' is not a positive number", r->path, key);
    *out = v->valuedouble;
    return CLLM_OK;
}

/* 1 when key is absent, null, or equal to the string `want` / the bool `want_b` (want NULL). */
static int cfg_is(const cJSON *root, const char *key, const char *want, int want_b) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return 1;
    if (want) return cJSON_IsString(v) && !strcmp(v->valuestring, want);
    return cJSON_IsBool(v) && cJSON_IsTrue(v) == want_b;
}

static cllm_status refuse(cfg_reader *r, const char *key, const char *why) {
    return cllm_error_set(r->err, CLLM_ERR_FORMAT, "%s: '%s' %s; cllm convert cannot express it", r->path, key, why);
}

static cllm_status read_rope_scaling(cfg_reader *r, hparams *h) {
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(r->root, "rope_scaling");
    if (!rs || cJSON_IsNull(rs)) return CLLM_OK;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    if (!t) t = cJSON_GetObjectItemCaseSensitive(rs, "type");
    if (!cJSON_IsObject(rs) || !cJSON_IsString(t))
        return cllm_error_set(r->err, CLLM_ERR_FORMAT, "%s: 'rope_scaling' has no string rope_type", r->path);
    cfg_reader sub = {r->path, rs, r->err};
    cllm_status st;
    if (!strcmp(t->valuestring, "default")) return CLLM_OK;
    if (!strcmp(t->valuestring, "linear")) {
        h->rope_linear = 1;
        return cfg_num(&sub, "factor", 1, 1, &h->rs_factor, NULL);
    }
    if (!strcmp(t->valuestring, "llama3")) {
        h->rope_llama3 = 1;
        if ((st = cfg_num(&sub, "factor", 8.0, 0, &h->rs_factor, NULL)) ||
            (st = cfg_num(&sub, "low_freq_factor", 1.0, 0, &h->rs_low, NULL)) ||
            (st = cfg_num(&sub, "high_freq_factor", 4.0, 0, &h->rs_high, NULL)) ||
            (st = cfg_num(&sub, "original_max_position_embeddings", 8192, 0, &h->rs_orig, NULL)))
            return st;
        if (h->rs_low == h->rs_high)
            return cllm_error_set(r->err, CLLM_ERR_FORMAT, "%s: rope_scaling low_freq_factor == high_freq_factor",
                                  r->path);
        return CLLM_OK;
    }
    return cllm_error_set(r->err, CLLM_ERR_FORMAT,
                          "%s: rope_scaling type '%.40s' is not supported (linear, llama3)", r->path, t->valuestring);
}

static cllm_status read_hparams(cfg_reader *r, hparams *h, char *hf_arch, size_t cap) {
    memset(h, 0, sizeof *h);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(r->root, "architectures");
    const cJSON *a0 = cJSON_IsArray(a) ? a->child : NULL;
    if (!cJSON_IsString(a0)) return cllm_error_set(r->err, CLLM_ERR_FORMAT, "%s: no 'architectures' list", r->path);
    snprintf(hf_arch, cap, "%s", a0->valuestring);
    size_t k = 0;
    while (k < sizeof archs / sizeof archs[0] && strcmp(archs[k].hf, a0->valuestring)) k++;
    if (k == sizeof archs / sizeof archs[0])
        return cllm_error_set(r->err, CLLM_ERR_FORMAT,
                              "%s: architecture '%.64s' is not supported (GPT2LMHeadModel, LlamaForCausalLM, "
                              "MistralForCausalLM, Qwen2ForCausalLM)",
                              r->path, a0->valuestring);
    h->kind = archs[k].kind;
    h->gguf_arch = archs[k].gguf;
    h->mistral = archs[k].mistral;
    cllm_status st;
    if (h->kind == ARCH_GPT2) {
        if ((st = cfg_int(r, "n_embd", -1, 1, &h->C)) || (st = cfg_int(r, "n_layer", -1, 1, &h->L)) ||
            (st = cfg_int(r, "n_head", -1, 1, &h->NH)) || (st = cfg_int(r, "vocab_size", -1, 1, &h->V)) ||
            (st = cfg_num(r, "layer_norm_epsilon", 1e-5, 0, &h->eps, NULL)))
            return st;
        const char *ctx_key = cJSON_GetObjectItemCaseSensitive(r->root, "n_positions") ? "n_positions" : "n_ctx";
        if ((st = cfg_int(r, ctx_key, -1, 1, &h->ctx))) return st;
        int64_t inner;
        if ((st = cfg_int(r, "n_inner", 0, 0, &inner))) return st;
        if (inner != 0 && inner != 4 * h->C) return refuse(r, "n_inner", "is not 4 x n_embd (llama.cpp's gpt2)");
        h->F = 4 * h->C;
        h->NKV = h->NH;
        if (!cfg_is(r->root, "activation_function", "gelu_new", 0) &&
            !cfg_is(r->root, "activation_function", "gelu_pytorch_tanh", 0))
            return refuse(r, "activation_function", "is not gelu_new (the tanh GELU)");
        if (!cfg_is(r->root, "scale_attn_weights", NULL, 1)) return refuse(r, "scale_attn_weights", "is false");
        if (!cfg_is(r->root, "scale_attn_by_inverse_layer_idx", NULL, 0))
            return refuse(r, "scale_attn_by_inverse_layer_idx", "is true");
        if (!cfg_is(r->root, "add_cross_attention", NULL, 0)) return refuse(r, "add_cross_attention", "is true");
        h->tied = cfg_is(r->root, "tie_word_embeddings", NULL, 1);
    } else {
        if ((st = cfg_int(r, "hidden_size", -1, 1, &h->C)) || (st = cfg_int(r, "num_hidden_layers", -1, 1, &h->L)) ||
            (st = cfg_int(r, "num_attention_heads", -1, 1, &h->NH)) || (st = cfg_int(r, "vocab_size", -1, 1, &h->V)) ||
            (st = cfg_int(r, "intermediate_size", -1, 1, &h->F)) ||
            (st = cfg_int(r, "max_position_embeddings", 2048, 1, &h->ctx)) ||
            (st = cfg_num(r, "rms_norm_eps", 1e-6, 0, &h->eps, NULL)) ||
            (st = cfg_num(r, "rope_theta", 10000.0, 0, &h->rope_theta, &h->has_rope_theta)))
            return st;
        if ((st = cfg_int(r, "num_key_value_heads", h->NH, 1, &h->NKV))) return st;
        if (h->C % h->NH || h->NH % h->NKV)
            return cllm_error_set(r->err, CLLM_ERR_FORMAT,
                                  "%s: hidden_size %lld, num_attention_heads %lld, num_key_value_heads %lld do not "
                                  "divide",
                                  r->path, (long long)h->C, (long long)h->NH, (long long)h->NKV);
        if ((h->C / h->NH) % 2) return refuse(r, "hidden_size", "gives an odd head size");
        int64_t hd;
        if ((st = cfg_int(r, "head_dim", 0, 0, &hd))) return st;
        h->head_dim_given = hd != 0;
        if (hd != 0 && hd != h->C / h->NH) return refuse(r, "head_dim", "is not hidden_size / num_attention_heads");
        if (!cfg_is(r->root, "hidden_act", "silu", 0)) return refuse(r, "hidden_act", "is not silu");
        if (!cfg_is(r->root, "mlp_bias", NULL, 0)) return refuse(r, "mlp_bias", "is true");
        const cJSON *prf = cJSON_GetObjectItemCaseSensitive(r->root, "partial_rotary_factor");
        if (prf && !(cJSON_IsNumber(prf) && prf->valuedouble == 1.0))
            return refuse(r, "partial_rotary_factor", "is not 1");
        h->attn_bias = h->kind == ARCH_QWEN2 || !cfg_is(r->root, "attention_bias", NULL, 0);
        h->tied = !cfg_is(r->root, "tie_word_embeddings", NULL, 0);
        if (h->kind == ARCH_QWEN2 && !cfg_is(r->root, "use_sliding_window", NULL, 0))
            return refuse(r, "use_sliding_window", "is true");
        if (h->mistral && (st = cfg_int(r, "sliding_window", 0, 0, &h->sliding_window))) return st;
        if ((st = read_rope_scaling(r, h))) return st;
    }
    const cJSON *tw = cJSON_GetObjectItemCaseSensitive(r->root, "tie_word_embeddings");
    if (tw && !cJSON_IsNull(tw) && !cJSON_IsBool(tw))
        return cllm_error_set(r->err, CLLM_ERR_FORMAT, "%s: 'tie_word_embeddings' is not a bool", r->path);
    return CLLM_OK;
}

/* ---- the tensor plan ------------------------------------------------------------- */

/* XF_F32: a vector kept in place; every 1-D tensor is written f32 (transform) */
typedef enum { XF_NONE, XF_TRANSPOSE, XF_PERMUTE, XF_F32 } xform;

typedef struct {
    char gguf[CLLM_GGUF_MAX_NAME];
    char hf[160];
    int optional;    /* may be absent (then skipped) */
    xform xf;
    int64_t heads;   /* XF_PERMUTE: the head count of this projection */
    uint32_t n_dims; /* expected HF shape */
    int64_t shape[2];
} plan_row;

typedef struct {
    plan_row *r;
    int n, cap;
} plan;

static int plan_add(plan *p, const char *gguf, const char *hf, xform xf, int optional, int64_t heads, uint32_t nd,
                    int64_t s0, int64_t s1) {
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 64;
        plan_row *nr = realloc(p->r, (size_t)cap * sizeof *nr);
        if (!nr) return -1;
        p->r = nr, p->cap = cap;
    }
    plan_row *r = &p->r[p->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->gguf, sizeof r->gguf, "%s", gguf);
    snprintf(r->hf, sizeof r->hf, "%s", hf);
    r->xf = xf, r->optional = optional, r->heads = heads, r->n_dims = nd, r->shape[0] = s0, r->shape[1] = s1;
    return 0;
}

/* The rows for h: every GGUF tensor in llama.cpp's names with its HF source. */
static int build_plan(const hparams *h, const cllm_safetensors *w, plan *p) {
    char g[CLLM_GGUF_MAX_NAME], f[160];
    int bad = 0;
#define ROW(xf, opt, heads, nd, s0, s1) bad |= plan_add(p, g, f, xf, opt, heads, nd, s0, s1)
    const int64_t C = h->C, V = h->V;
    if (h->kind == ARCH_GPT2) {
        /* GPT2LMHeadModel saves "transformer.*"; a bare GPT2Model saves without it */
        const char *pre = cllm_safetensors_find(w, "transformer.wte.weight") ? "transformer." : "";
        snprintf(g, sizeof g, "token_embd.weight"), snprintf(f, sizeof f, "%swte.weight", pre);
        ROW(XF_NONE, 0, 0, 2, V, C);
        snprintf(g, sizeof g, "position_embd.weight"), snprintf(f, sizeof f, "%swpe.weight", pre);
        ROW(XF_NONE, 0, 0, 2, h->ctx, C);
        for (int64_t l = 0; l < h->L; l++) {
            static const struct { const char *g, *f; int mat, out_mul, in_mul; } parts[] = {
                {"attn_norm", "ln_1", 0, 1, 0},      {"attn_qkv", "attn.c_attn", 1, 3, 1},
                {"attn_output", "attn.c_proj", 1, 1, 1}, {"ffn_norm", "ln_2", 0, 1, 0},
                {"ffn_up", "mlp.c_fc", 1, 4, 1},     {"ffn_down", "mlp.c_proj", 1, 1, 4},
            };
            for (size_t k = 0; k < sizeof parts / sizeof parts[0]; k++) {
                snprintf(g, sizeof g, "blk.%lld.%s.weight", (long long)l, parts[k].g);
                snprintf(f, sizeof f, "%sh.%lld.%s.weight", pre, (long long)l, parts[k].f);
                if (parts[k].mat) ROW(XF_TRANSPOSE, 0, 0, 2, parts[k].in_mul * C, parts[k].out_mul * C); /* Conv1D [in, out] */
                else ROW(XF_F32, 0, 0, 1, C, 0);
                snprintf(g, sizeof g, "blk.%lld.%s.bias", (long long)l, parts[k].g);
                snprintf(f, sizeof f, "%sh.%lld.%s.bias", pre, (long long)l, parts[k].f);
                ROW(XF_F32, 0, 0, 1, parts[k].out_mul * C, 0);
            }
        }
        snprintf(g, sizeof g, "output_norm.weight"), snprintf(f, sizeof f, "%sln_f.weight", pre);
        ROW(XF_F32, 0, 0, 1, C, 0);
        snprintf(g, sizeof g, "output_norm.bias"), snprintf(f, sizeof f, "%sln_f.bias", pre);
        ROW(XF_F32, 0, 0, 1, C, 0);
    } else {
        const int64_t HS = C / h->NH, QR = h->NH * HS, KR = h->NKV * HS;
        const int permute = h->kind == ARCH_LLAMA; /* qwen2 rotates NEOX-style, as Hugging Face does */
        snprintf(g, sizeof g, "token_embd.weight"), snprintf(f, sizeof f, "model.embed_tokens.weight");
        ROW(XF_NONE, 0, 0, 2, V, C);
        for (int64_t l = 0; l < h->L; l++) {
            const long long ll = (long long)l;
#define LROW(gn, fn, xf, heads, nd, s0, s1) \
    (snprintf(g, sizeof g, "blk.%lld.%s", ll, gn), snprintf(f, sizeof f, "model.layers.%lld.%s", ll, fn), \
     ROW(xf, 0, heads, nd, s0, s1))
            LROW("attn_norm.weight", "input_layernorm.weight", XF_F32, 0, 1, C, 0);
            LROW("attn_q.weight", "self_attn.q_proj.weight", permute ? XF_PERMUTE : XF_NONE, h->NH, 2, QR, C);
            LROW("attn_k.weight", "self_attn.k_proj.weight", permute ? XF_PERMUTE : XF_NONE, h->NKV, 2, KR, C);
            LROW("attn_v.weight", "self_attn.v_proj.weight", XF_NONE, 0, 2, KR, C);
            LROW("attn_output.weight", "self_attn.o_proj.weight", XF_NONE, 0, 2, C, QR);
            if (h->attn_bias) {
                LROW("attn_q.bias", "self_attn.q_proj.bias", permute ? XF_PERMUTE : XF_F32, h->NH, 1, QR, 0);
                LROW("attn_k.bias", "self_attn.k_proj.bias", permute ? XF_PERMUTE : XF_F32, h->NKV, 1, KR, 0);
                LROW("attn_v.bias", "self_attn.v_proj.bias", XF_F32, 0, 1, KR, 0);
                if (h->kind == ARCH_LLAMA) LROW("attn_output.bias", "self_attn.o_proj.bias", XF_F32, 0, 1, C, 0);
            }
            LROW("ffn_norm.weight", "post_attention_layernorm.weight", XF_F32, 0, 1, C, 0);
            LROW("ffn_gate.weight", "mlp.gate_proj.weight", XF_NONE, 0, 2, h->F, C);
            LROW("ffn_up.weight", "mlp.up_proj.weight", XF_NONE, 0, 2, h->F, C);
            LROW("ffn_down.weight", "mlp.down_proj.weight", XF_NONE, 0, 2, C, h->F);
#undef LROW
        }
        snprintf(g, sizeof g, "output_norm.weight"), snprintf(f, sizeof f, "model.norm.weight");
        ROW(XF_F32, 0, 0, 1, C, 0);
    }
    /* the head: required when untied; a tied checkpoint that still carries it is written as llama.cpp does */
    snprintf(g, sizeof g, "output.weight"), snprintf(f, sizeof f, "lm_head.weight");
    ROW(XF_NONE, h->tied, 0, 2, V, C);
#undef ROW
    return bad ? -1 : 0;
}

/* Checkpoint tensors that are buffers, not weights (recomputed by every runtime). */
static int ignorable(const char *name) {
    size_t n = strlen(name);
#define ENDS(s) (n >= strlen(s) && !strcmp(name + n - strlen(s), s))
    return ENDS(".attn.bias") || ENDS(".attn.masked_bias") || ENDS(".rotary_emb.inv_freq");
#undef ENDS
}

/* ---- transforms (in the source type: element moves only) --------------------------- */

static void transpose(const uint8_t *src, uint8_t *dst, int64_t rows, int64_t cols, size_t es) {
    const int64_t B = 32; /* tile: both sides stay in cache */
    for (int64_t r0 = 0; r0 < rows; r0 += B)
        for (int64_t c0 = 0; c0 < cols; c0 += B)
            for (int64_t r = r0; r < r0 + B && r < rows; r++)
                for (int64_t c = c0; c < c0 + B && c < cols; c++)
                    memcpy(dst + ((size_t)c * (size_t)rows + (size_t)r) * es, src + ((size_t)r * (size_t)cols + (size_t)c) * es,
                           es);
}

/* Hugging Face's rotate-half layout -> adjacent pairs: within each head of hs
 * rows, new row 2j + p is old row p * hs/2 + j (p = 0, 1; j < hs/2). */
static void permute_heads(const uint8_t *src, uint8_t *dst, int64_t rows, int64_t heads, size_t row_bytes) {
    const int64_t hs = rows / heads, half = hs / 2;
    for (int64_t hd = 0; hd < heads; hd++)
        for (int64_t j = 0; j < half; j++)
            for (int p = 0; p < 2; p++)
                memcpy(dst + (size_t)(hd * hs + 2 * j + p) * row_bytes, src + (size_t)(hd * hs + p * half + j) * row_bytes,
                       row_bytes);
}

/* Tensor t as row r wants it, in a buffer of its own (*buf, owned by the
 * caller; o's data, type, size and dims follow): the rows moved in the
 * source type (transposed, permuted or as they are), then 1-D tensors
 * widened to f32, as llama.cpp's converter writes norms and biases. */
static cllm_status transform(const plan_row *r, const cllm_safetensors_tensor *t, cllm_gguf_tensor *o, void **buf,
                             cllm_error *err) {
    const size_t es = t->type == CLLM_GGML_F32 ? 4 : 2;
    const int64_t rows = t->shape[0], cols = r->n_dims == 2 ? t->shape[1] : 1;
    const int widen = r->n_dims == 1 && t->type != CLLM_GGML_F32;
    uint8_t *moved = malloc(t->nbytes ? t->nbytes : 1);
    float *wide = widen ? malloc((size_t)t->n_elements * sizeof *wide) : NULL;
    if (!moved || (widen && !wide)) {
        free(moved);
        free(wide);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory for tensor '%s' (%zu bytes)", r->hf, t->nbytes);
    }
    if (r->xf == XF_TRANSPOSE) {
        transpose(t->data, moved, rows, cols, es);
        o->dims[0] = rows, o->dims[1] = cols;
    } else if (r->xf == XF_PERMUTE) {
        permute_heads(t->data, moved, rows, r->heads, (size_t)cols * es);
    } else {
        memcpy(moved, t->data, t->nbytes);
    }
    if (wide) {
        cllm_ggml_to_f32(t->type, moved, wide, t->n_elements);
        free(moved);
        o->type = CLLM_GGML_F32, o->nbytes = (size_t)t->n_elements * sizeof *wide;
    }
    *buf = wide ? (void *)wide : (void *)moved;
    o->data = *buf;
    return CLLM_OK;
}

/* llama.cpp's rope_freqs for rope_scaling "llama3": one factor per rotated
 * pair. The frequencies are float32 as in llama.cpp's converter, so the
 * tensor is byte-identical to the one it writes; the model's own divisors
 * (cllm_model_rope_freq_div, double) are checked against this table within
 * 1e-5 when the file loads. */
static void llama3_factors(const hparams *h, float *out) {
    const int64_t dim = h->C / h->NH;
    const double lo_wl = h->rs_orig / h->rs_low, hi_wl = h->rs_orig / h->rs_high;
    for (int64_t i = 0; i < dim / 2; i++) {
        const float freq = 1.0f / powf((float)h->rope_theta, (float)(2 * i) / (float)dim);
        const double wl = 2 * M_PI / freq;
        double f;
        if (wl < hi_wl) f = 1;
        else if (wl > lo_wl) f = h->rs_factor;
        else {
            const double smooth = (h->rs_orig / wl - h->rs_low) / (h->rs_high - h->rs_low);
            f = 1 / ((1 - smooth) / h->rs_factor + smooth);
        }
        out[i] = (float)f;
    }
}

/* ---- tokenizer ------------------------------------------------------------------------ */

/* A special token named in tokenizer_config.json (a string, or {"content": ...}). */
static const char *special_text(const cJSON *tc, const char *key) {
    const cJSON *v = tc ? cJSON_GetObjectItemCaseSensitive(tc, key) : NULL;
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A byte-level BPE vocabulary widened to V ids: the ids past its end are
 * holes, which the GGUF keys write as "[PAD<id>]" of type unused, as
 * llama.cpp's converter pads a vocabulary smaller than the embedding. */
static cllm_status pad_bpe(const cllm_tokenizer *t, uint32_t V, cllm_tokenizer **out, cllm_error *err) {
    const cllm_pretok_kind kind = cllm_tokenizer_pretok_kind(t);
    cllm_tokenizer *p = NULL;
    cllm_status st = cllm_tokenizer_new(&p, V, kind, kind == CLLM_PRETOK_CUSTOM ? cllm_tokenizer_pattern(t) : NULL, err);
    for (uint32_t id = 0; st == CLLM_OK && id < cllm_tokenizer_n_vocab(t); id++) {
        const cllm_token_kind k = cllm_tokenizer_token_kind(t, id);
        const uint8_t *bytes;
        size_t len;
        if (k == CLLM_TOKEN_UNUSED) continue;
        if ((st = cllm_tokenizer_token_bytes(t, id, &bytes, &len, err)) == CLLM_OK)
            st = cllm_tokenizer_set_token(p, id, bytes, len, k, err);
    }
    for (uint32_t r = 0; st == CLLM_OK && r < cllm_tokenizer_n_merges(t); r++) {
        uint32_t left, right, result;
        cllm_tokenizer_merge(t, r, &left, &right, &result);
        st = cllm_tokenizer_add_merge(p, left, right, err);
    }
    if (st == CLLM_OK) st = cllm_tokenizer_finalize(p, cllm_tokenizer_rule(t), err);
    if (st) cllm_tokenizer_destroy(p);
    else *out = p;
    return st;
}

static cllm_status add_tokenizer(const char *dir, const cJSON *config, const hparams *h, cllm_gguf_writer *w,
                                 cllm_convert_stats *s, cllm_error *err) {
    char spm[4096], hf[4096], tcp[4096];
    snprintf(spm, sizeof spm, "%s/tokenizer.model", dir);
    snprintf(hf, sizeof hf, "%s/tokenizer.json", dir);
    snprintf(tcp, sizeof tcp, "%s/tokenizer_config.json", dir);
    uint64_t size;
    cllm_error probe;
    const int have_spm = cllm_file_check_regular(spm, &size, &probe) == CLLM_OK;
    const int have_hf = cllm_file_check_regular(hf, &size, &probe) == CLLM_OK;
    cllm_tokenizer *t = NULL;
    cllm_status st;
    const char *used;
    if (have_spm && h->kind != ARCH_GPT2) { /* llama.cpp tries SentencePiece first for these */
        used = spm;
        st = cllm_tokenizer_load_spm_model(spm, &t, err);
        snprintf(s->tokenizer, sizeof s->tokenizer, "tokenizer.model");
    } else if (have_hf) {
        used = hf;
        st = cllm_tokenizer_load_hf(hf, &t, err);
        snprintf(s->tokenizer, sizeof s->tokenizer, "tokenizer.json");
    } else {
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: no tokenizer.json%s", dir,
                              h->kind != ARCH_GPT2 ? " or tokenizer.model" : "");
    }
    if (st) return st;
    int known = 1;
    const char *pre = cllm_tokenizer_gguf_pre(t, &known);
    snprintf(s->pre, sizeof s->pre, "%s", pre ? pre : "");
    s->pre_unknown = !known;
    cJSON *tc = NULL;
    char *text = NULL;
    size_t len = 0;
    if (cllm_file_check_regular(tcp, &size, &probe) == CLLM_OK) {
        if ((st = cllm_file_read_all(tcp, 64u << 20, &text, &len, err))) goto done;
        if (!(tc = cJSON_ParseWithLength(text, len)) || !cJSON_IsObject(tc)) {
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: not a JSON object", tcp);
            goto done;
        }
    }
    uint32_t V = cllm_tokenizer_n_vocab(t);
    if ((int64_t)V < h->V && !cllm_tokenizer_is_spm(t)) {
        cllm_tokenizer *padded = NULL;
        if ((st = pad_bpe(t, (uint32_t)h->V, &padded, err))) goto done;
        cllm_tokenizer_destroy(t);
        t = padded;
        V = (uint32_t)h->V;
    }
    if ((int64_t)V != h->V) {
        st = cllm_error_set(err, CLLM_ERR_FORMAT,
                            "%s has %u tokens but config.json vocab_size is %lld (%s)", used, V, (long long)h->V,
                            (int64_t)V > h->V ? "more tokens than embedding rows"
                                              : "padding a SentencePiece vocabulary is not supported yet");
        goto done;
    }
    const char *tmpl = NULL;
    const cJSON *ct = tc ? cJSON_GetObjectItemCaseSensitive(tc, "chat_template") : NULL;
    if (ct && !cJSON_IsNull(ct)) {
        if (!cJSON_IsString(ct)) {
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: chat_template is not a string (named template lists are "
                                "not supported)", tcp);
            goto done;
        }
        tmpl = ct->valuestring;
    }
    if ((st = cllm_tokenizer_gguf_set(t, w, tmpl, err))) goto done;
    /* special ids: tokenizer_config.json's token texts, else config.json's ids (llama.cpp's SpecialVocab order) */
    static const char *const kinds[4] = {"bos", "eos", "unk", "pad"};
    static const char *const keys[4] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                        "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id"};
    for (int k = 0; k < 4 && st == CLLM_OK; k++) {
        char key[32];
        snprintf(key, sizeof key, "%s_token", kinds[k]);
        const char *txt = special_text(tc, key);
        int64_t id = txt ? cllm_tokenizer_special_id(t, txt) : -1;
        if (id < 0) {
            snprintf(key, sizeof key, "%s_token_id", kinds[k]);
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(config, key);
            if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < V && floor(v->valuedouble) == v->valuedouble)
                id = (int64_t)v->valuedouble;
        }
        if (id >= 0) st = cllm_gguf_set_u32(w, keys[k], (uint32_t)id, err);
    }
    static const char *const flags[2] = {"add_bos_token", "add_eos_token"};
    for (int k = 0; k < 2 && st == CLLM_OK; k++) {
        const cJSON *v = tc ? cJSON_GetObjectItemCaseSensitive(tc, flags[k]) : NULL;
        char key[48];
        snprintf(key, sizeof key, "tokenizer.ggml.%s", flags[k]);
        if (cJSON_IsBool(v)) st = cllm_gguf_set_bool(w, key, cJSON_IsTrue(v), err);
    }
done:
    cJSON_Delete(tc);
    free(text);
    cllm_tokenizer_destroy(t);
    return st;
}

/* ---- the conversion --------------------------------------------------------------------- */

static cllm_status put_arch_keys(cllm_gguf_writer *w, const hparams *h, const char *name, cllm_error *err) {
    char k[96];
    cllm_status st = CLLM_OK;
#define KEY(s) (snprintf(k, sizeof k, "%s.%s", h->gguf_arch, (s)), k)
#define DO(call) do { if (!st) st = (call); } while (0)
    DO(cllm_gguf_set_str(w, "general.architecture", h->gguf_arch, err));
    DO(cllm_gguf_set_str(w, "general.type", "model", err));
    DO(cllm_gguf_set_str(w, "general.name", name, err));
    DO(cllm_gguf_set_u32(w, KEY("block_count"), (uint32_t)h->L, err));
    DO(cllm_gguf_set_u32(w, KEY("context_length"), (uint32_t)h->ctx, err));
    DO(cllm_gguf_set_u32(w, KEY("embedding_length"), (uint32_t)h->C, err));
    DO(cllm_gguf_set_u32(w, KEY("feed_forward_length"), (uint32_t)h->F, err));
    DO(cllm_gguf_set_u32(w, KEY("attention.head_count"), (uint32_t)h->NH, err));
    if (h->kind == ARCH_GPT2) {
        DO(cllm_gguf_set_f32(w, KEY("attention.layer_norm_epsilon"), (float)h->eps, err));
    } else {
        DO(cllm_gguf_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)h->NKV, err));
        if (h->has_rope_theta) DO(cllm_gguf_set_f32(w, KEY("rope.freq_base"), (float)h->rope_theta, err));
        DO(cllm_gguf_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), (float)h->eps, err));
        if (h->head_dim_given) {
            DO(cllm_gguf_set_u32(w, KEY("attention.key_length"), (uint32_t)(h->C / h->NH), err));
            DO(cllm_gguf_set_u32(w, KEY("attention.value_length"), (uint32_t)(h->C / h->NH), err));
        }
        if (h->rope_linear) {
            DO(cllm_gguf_set_str(w, KEY("rope.scaling.type"), "linear", err));
            DO(cllm_gguf_set_f32(w, KEY("rope.scaling.factor"), (float)h->rs_factor, err));
        }
        if (h->kind == ARCH_LLAMA) {
            DO(cllm_gguf_set_u32(w, KEY("vocab_size"), (uint32_t)h->V, err));
            DO(cllm_gguf_set_u32(w, KEY("rope.dimension_count"), (uint32_t)(h->C / h->NH), err));
        }
        if (h->sliding_window > 0)
            DO(cllm_gguf_set_u32(w, KEY("attention.sliding_window"), (uint32_t)h->sliding_window, err));
    }
#undef KEY
#undef DO
    return st;
}

static int same_shape(const cllm_safetensors_tensor *t, const plan_row *r) {
    if (t->n_dims != r->n_dims) return 0;
    for (uint32_t d = 0; d < r->n_dims; d++)
        if (t->shape[d] != r->shape[d]) return 0;
    return 1;
}

cllm_status cllm_convert_hf(const char *dir, const char *out_path, const cllm_convert_params *params,
                            cllm_convert_stats *stats, cllm_error *err) {
    cllm_convert_params p = params ? *params : cllm_convert_default_params();
    cllm_convert_stats s_local;
    cllm_convert_stats *s = stats ? stats : &s_local;
    memset(s, 0, sizeof *s);
    char cpath[4096];
    if ((size_t)snprintf(cpath, sizeof cpath, "%s/config.json", dir) >= sizeof cpath)
        return cllm_error_set(err, CLLM_ERR_LIMIT, "%s: path too long", dir);
    char *text = NULL;
    size_t len = 0;
    cllm_status st = cllm_file_read_all(cpath, 16u << 20, &text, &len, err);
    if (st) return st;
    cJSON *config = cJSON_ParseWithLength(text, len);
    free(text);
    cllm_safetensors *w = NULL;
    cllm_gguf_writer *gw = NULL;
    plan pl = {0};
    cllm_gguf_tensor *ts = NULL;
    void **xbufs = NULL, **qbufs = NULL;
    uint64_t n_ts = 0;
    float *rope_freqs = NULL;
    if (!cJSON_IsObject(config)) {
        st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: not a JSON object", cpath);
        goto done;
    }
    hparams h;
    cfg_reader rd = {cpath, config, err};
    if ((st = read_hparams(&rd, &h, s->hf_arch, sizeof s->hf_arch))) goto done;
    snprintf(s->arch, sizeof s->arch, "%s", h.gguf_arch);
    if ((st = cllm_safetensors_open_dir(&w, dir, err))) goto done;
    s->n_source = cllm_safetensors_n_tensors(w);
    s->n_files = cllm_safetensors_n_files(w);
    if (build_plan(&h, w, &pl)) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* every checkpoint tensor used or a known buffer */
    for (uint64_t i = 0; i < s->n_source; i++) {
        const cllm_safetensors_tensor *t = cllm_safetensors_tensor_at(w, i);
        int used = ignorable(t->name);
        for (int k = 0; k < pl.n && !used; k++) used = !strcmp(pl.r[k].hf, t->name);
        if (!used) {
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tensor '%s' has no place in a %s model", t->file, t->name,
                                s->hf_arch);
            goto done;
        }
    }
    const uint64_t cap = (uint64_t)pl.n + 1;
    ts = calloc(cap, sizeof *ts);
    xbufs = calloc(cap, sizeof *xbufs);
    if (!ts || !xbufs || !(gw = cllm_gguf_writer_create())) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
        goto done;
    }
    uint32_t first_type = UINT32_MAX;
    int mixed = 0;
    for (int k = 0; k < pl.n; k++) {
        const plan_row *r = &pl.r[k];
        const cllm_safetensors_tensor *t = cllm_safetensors_find(w, r->hf);
        if (!t) {
            if (r->optional) continue;
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tensor '%s' is missing (needed for %s)", dir, r->hf, r->gguf);
            goto done;
        }
        if (!same_shape(t, r)) {
            char want[64], got[160] = "";
            if (r->n_dims == 2) snprintf(want, sizeof want, "[%lld, %lld]", (long long)r->shape[0], (long long)r->shape[1]);
            else snprintf(want, sizeof want, "[%lld]", (long long)r->shape[0]);
            for (uint32_t d = 0; d < t->n_dims; d++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "", (long long)t->shape[d]);
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tensor '%s' has shape [%s]; config.json implies %s", t->file,
                                r->hf, got, want);
            goto done;
        }
        if (r->n_dims == 2) {
            if (first_type == UINT32_MAX) first_type = t->type;
            mixed |= t->type != first_type;
        }
        const size_t es = t->type == CLLM_GGML_F32 ? 4 : 2;
        const int64_t rows = t->shape[0], cols = r->n_dims == 2 ? t->shape[1] : 1;
        cllm_gguf_tensor *o = &ts[n_ts];
        o->name = r->gguf;
        o->type = t->type;
        o->data = t->data;
        o->nbytes = t->nbytes;
        o->n_elements = t->n_elements;
        o->n_dims = r->n_dims;
        o->dims[0] = r->n_dims == 2 ? cols : rows; /* GGUF dims are the reverse of PyTorch's */
        o->dims[1] = r->n_dims == 2 ? rows : 1;
        o->dims[2] = o->dims[3] = 1;
        /* the quantizer reads rows through typed pointers: unaligned views are copied */
        if ((((uintptr_t)t->data % es) != 0 || r->xf != XF_NONE) && (st = transform(r, t, o, &xbufs[n_ts], err)))
            goto done;
        n_ts++;
    }
    if (h.rope_llama3) {
        const int64_t half = h.C / h.NH / 2;
        if (!(rope_freqs = malloc((size_t)half * sizeof *rope_freqs))) {
            st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
            goto done;
        }
        llama3_factors(&h, rope_freqs);
        ts[n_ts++] = (cllm_gguf_tensor){.name = "rope_freqs.weight", .type = CLLM_GGML_F32, .n_dims = 1,
                                        .dims = {half, 1, 1, 1}, .n_elements = half,
                                        .nbytes = (size_t)half * sizeof(float), .data = rope_freqs};
    }
    uint32_t type = p.type;
    cllm_quantize_mix mix = p.mix;
    if (p.auto_type) { /* llama.cpp's --outtype auto: the checkpoint's float type */
        type = mixed || first_type == UINT32_MAX ? CLLM_GGML_F32 : first_type;
        mix = CLLM_QUANTIZE_PURE;
    }
    s->type = type;
    const char *name = p.name;
    char base[256];
    if (!name) { /* the folder's last component */
        snprintf(base, sizeof base, "%s", dir);
        size_t bl = strlen(base);
        while (bl > 1 && base[bl - 1] == '/') base[--bl] = '\0';
        const char *slash = strrchr(base, '/');
        name = slash && slash[1] ? slash + 1 : base;
    }
    if ((st = put_arch_keys(gw, &h, name, err))) goto done;
    if ((st = add_tokenizer(dir, config, &h, gw, s, err))) goto done;
    if ((st = cllm_quantize_add_tensors(gw, ts, n_ts, type, mix, dir, &qbufs, &s->q, err))) goto done;
    for (uint64_t i = 0; i < n_ts; i++) /* a transformed tensor the quantizer converted is no longer referenced */
        if (qbufs[i] && xbufs[i]) {
            free(xbufs[i]);
            xbufs[i] = NULL;
        }
    st = cllm_gguf_writer_write(gw, out_path, err);
done:
    cllm_quantize_free_buffers(qbufs, n_ts);
    for (uint64_t i = 0; xbufs && i < n_ts; i++) free(xbufs[i]);
    free(xbufs);
    free(ts);
    free(rope_freqs);
    free(pl.r);
    cllm_gguf_writer_destroy(gw);
    cllm_safetensors_close(w);
    cJSON_Delete(config);
    return st;
}
