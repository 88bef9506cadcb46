/*
 * test_model_gguf.c: a cllm_model to GGUF and back.
 *
 * - f32 round trip is bit-exact for gpt2- and llama-arch configs and the
 *   odd ones (sinusoidal, no bias, untied, GQA, SwiGLU without RoPE);
 * - the file uses llama.cpp's names, dims and keys (q/k/v and gate/up split
 *   for llama, attn_qkv fused for gpt2), with the split rows in place;
 * - f16, bf16, q8_0 and q4_0 files load within the types' error bounds;
 * - bad model files (missing/extra/misshaped/mistyped tensors, bad
 *   hyperparameters, unknown arch, NaN weights) are rejected with messages
 *   naming the file and the tensor or key.
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cllm/core/fileio.h"
#include "cllm/model/gguf_io.h"
#include "test.h"

static char tmpdir[256];

static void tmp_path(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", tmpdir, name); }

static cllm_model *make_model(const cllm_model_config *cfg, uint64_t seed) {
    cllm_model_options o = cllm_model_default_options();
    o.max_seq = 8;
    cllm_model *m = NULL;
    cllm_error err;
    if (cllm_model_create(cfg, &o, &m, &err) != CLLM_OK) {
        CHECK(0, "create: %s", err.msg);
        return NULL;
    }
    cllm_model_init_weights(m, seed);
    /* norm weights start at exactly 1 and biases at 0: perturb every tensor so
     * a swapped or skipped tensor cannot go unnoticed */
    float *p = cllm_model_params(m);
    for (size_t i = 0; i < cllm_model_num_params(m); i++) p[i] += 1e-3f * (float)((i * 2654435761u) % 1000) / 1000.0f;
    return m;
}

static cllm_model_config tiny(const char *preset) {
    cllm_model_config c;
    cllm_error err;
    CHECK(cllm_model_preset(preset, &c, &err) == CLLM_OK, "%s", err.msg);
    return c;
}

/* Every tensor of a and b bit-identical (same config assumed). */
static int same_weights(const cllm_model *a, const cllm_model *b) {
    if (cllm_model_num_tensors(a) != cllm_model_num_tensors(b)) return 0;
    for (int i = 0; i < cllm_model_num_tensors(a); i++) {
        const cllm_tensor *x = cllm_model_tensor(a, i), *y = cllm_model_find_tensor(b, x->name);
        if (!y || x->numel != y->numel || memcmp(x->data, y->data, x->numel * sizeof(float))) {
            fprintf(stderr, "  tensor %s differs\n", x->name);
            return 0;
        }
    }
    return 1;
}

static void roundtrip_config(const cllm_model_config *cfg, const char *what) {
    char path[512];
    tmp_path(path, sizeof path, "rt.gguf");
    cllm_error err;
    cllm_model *m = make_model(cfg, 42);
    if (!m) return;
    CHECK(cllm_model_save_gguf(m, path, NULL, &err) == CLLM_OK, "%s save: %s", what, err.msg);
    cllm_model *r = NULL;
    CHECK(cllm_model_load_gguf(path, NULL, 1, &r, &err) == CLLM_OK, "%s load: %s", what, err.msg);
    if (r) {
        CHECK(memcmp(cllm_model_get_config(r), cfg, sizeof *cfg) == 0, "%s: config differs after load", what);
        CHECK(same_weights(m, r), "%s: weights not bit-identical", what);
        /* and reading into an existing model of the same config */
        cllm_model *z = make_model(cfg, 7);
        cllm_gguf *g = NULL;
        CHECK(cllm_gguf_open(&g, path, &err) == CLLM_OK, "%s", err.msg);
        CHECK(g && z && cllm_model_read_gguf(z, g, 1, &err) == CLLM_OK, "%s read into model: %s", what, err.msg);
        CHECK(z && same_weights(m, z), "%s: read_gguf weights differ", what);
        cllm_gguf_close(g);
        cllm_model_destroy(z);
    }
    cllm_model_destroy(r);
    cllm_model_destroy(m);
    unlink(path);
}

static void test_model_gguf_f32_roundtrip_is_bit_exact(void) {
    cllm_model_config c = tiny("tiny-gpt2");
    roundtrip_config(&c, "tiny-gpt2");
    c = tiny("tiny-llama");
    roundtrip_config(&c, "tiny-llama (GQA)");
    c = tiny("tiny-llama");
    c.bias = 1, c.tied_embeddings = 1, c.n_kv_head = 1, c.rope_theta = 500000.0f, c.norm_eps = 1e-6f;
    roundtrip_config(&c, "llama with biases, MQA, tied");
    c = tiny("tiny-gpt2");
    c.pos = CLLM_POS_SINUSOIDAL, c.bias = 0, c.tied_embeddings = 0, c.dropout = 0.1f;
    roundtrip_config(&c, "gpt2 sinusoidal, no bias, untied, dropout");
    c = tiny("tiny-gpt2");
    c.mlp = CLLM_MLP_SWIGLU, c.norm = CLLM_NORM_RMSNORM;
    roundtrip_config(&c, "gpt2 arch with SwiGLU and RMSNorm");
    c = tiny("tiny-qwen2");
    roundtrip_config(&c, "tiny-qwen2");
    c = tiny("tiny-mistral");
    roundtrip_config(&c, "tiny-mistral (window 4)");
    c = tiny("tiny-llama");
    c.rope_scaling = CLLM_ROPE_SCALING_LINEAR, c.rope_factor = 4.0f;
    roundtrip_config(&c, "llama, linear rope scaling");
    c.rope_scaling = CLLM_ROPE_SCALING_LLAMA3, c.rope_factor = 8.0f, c.rope_orig_context = 64;
    c.rope_low_freq_factor = 1.5f, c.rope_high_freq_factor = 3.0f;
    roundtrip_config(&c, "llama, llama3 rope scaling");
}

/* The names, dims and keys llama.cpp looks for, and the split rows. */
static void test_model_gguf_uses_llama_cpp_names_and_keys(void) {
    cllm_model_config c = tiny("tiny-llama"); /* C 32, NH 4, NKV 2, H 64, V 64, ctx 16 */
    cllm_model *m = make_model(&c, 1);
    if (!m) return;
    char path[512];
    tmp_path(path, sizeof path, "names.gguf");
    cllm_error err;
    CHECK(cllm_model_save_gguf(m, path, NULL, &err) == CLLM_OK, "%s", err.msg);
    cllm_gguf *g = NULL;
    CHECK(cllm_gguf_open(&g, path, &err) == CLLM_OK, "%s", err.msg);
    if (!g) {
        cllm_model_destroy(m);
        return;
    }
    char s[64];
    uint32_t u = 0;
    float f = 0;
    CHECK(cllm_gguf_get_str_buf(g, "general.architecture", s, sizeof s, &err) == CLLM_OK && !strcmp(s, "llama"), "arch");
    CHECK(cllm_gguf_get_u32(g, "general.file_type", &u, &err) == CLLM_OK && u == 0, "file_type all f32");
    CHECK(cllm_gguf_get_u32(g, "llama.context_length", &u, &err) == CLLM_OK && u == 16, "context_length");
    CHECK(cllm_gguf_get_u32(g, "llama.embedding_length", &u, &err) == CLLM_OK && u == 32, "embedding_length");
    CHECK(cllm_gguf_get_u32(g, "llama.block_count", &u, &err) == CLLM_OK && u == 2, "block_count");
    CHECK(cllm_gguf_get_u32(g, "llama.feed_forward_length", &u, &err) == CLLM_OK && u == 64, "feed_forward_length");
    CHECK(cllm_gguf_get_u32(g, "llama.attention.head_count", &u, &err) == CLLM_OK && u == 4, "head_count");
    CHECK(cllm_gguf_get_u32(g, "llama.attention.head_count_kv", &u, &err) == CLLM_OK && u == 2, "head_count_kv");
    CHECK(cllm_gguf_get_u32(g, "llama.rope.dimension_count", &u, &err) == CLLM_OK && u == 8, "rope dims = head size");
    CHECK(cllm_gguf_get_f32(g, "llama.rope.freq_base", &f, &err) == CLLM_OK && f == 10000.0f, "freq_base");
    CHECK(cllm_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &f, &err) == CLLM_OK && f == 1e-5f, "rms eps");
    CHECK(cllm_gguf_find_kv(g, "llama.attention.layer_norm_epsilon") == NULL, "no LayerNorm eps key");
    CHECK(cllm_gguf_find_tensor(g, "blk.0.attn_qkv.weight") == NULL, "qkv is split for llama");
    CHECK(cllm_gguf_find_tensor(g, "blk.0.ffn_gate_up.weight") == NULL, "gate/up is split");
    static const struct { const char *name; int64_t d0, d1; uint32_t nd; } want[] = {
        {"token_embd.weight", 32, 64, 2},      {"output_norm.weight", 32, 1, 1},
        {"output.weight", 32, 64, 2},          {"blk.1.attn_norm.weight", 32, 1, 1},
        {"blk.1.attn_q.weight", 32, 32, 2},    {"blk.1.attn_k.weight", 32, 16, 2},
        {"blk.1.attn_v.weight", 32, 16, 2},    {"blk.1.attn_output.weight", 32, 32, 2},
        {"blk.1.ffn_norm.weight", 32, 1, 1},   {"blk.1.ffn_gate.weight", 32, 64, 2},
        {"blk.1.ffn_up.weight", 32, 64, 2},    {"blk.1.ffn_down.weight", 64, 32, 2},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const cllm_gguf_tensor *t = cllm_gguf_find_tensor(g, want[i].name);
        CHECK(t && t->n_dims == want[i].nd && t->dims[0] == want[i].d0 && t->dims[1] == want[i].d1 &&
                  t->type == CLLM_GGML_F32,
              "%s: %s", want[i].name, t ? "wrong dims/type" : "missing");
    }
    CHECK(cllm_gguf_n_tensors(g) == 3 + 2 * 9, "tensor count %llu", (unsigned long long)cllm_gguf_n_tensors(g));
    /* the split rows: attn_k is rows [32, 48) of the fused qkv, ffn_up rows [64, 128) of gate_up */
    const cllm_tensor *qkv = cllm_model_find_tensor(m, "blk.1.attn_qkv.weight");
    const cllm_tensor *gu = cllm_model_find_tensor(m, "blk.1.ffn_gate_up.weight");
    const cllm_gguf_tensor *k = cllm_gguf_find_tensor(g, "blk.1.attn_k.weight");
    const cllm_gguf_tensor *up = cllm_gguf_find_tensor(g, "blk.1.ffn_up.weight");
    CHECK(qkv && k && !memcmp(k->data, qkv->data + 32 * 32, 16 * 32 * sizeof(float)), "attn_k rows");
    CHECK(gu && up && !memcmp(up->data, gu->data + 64 * 32, 64 * 32 * sizeof(float)), "ffn_up rows");
    cllm_gguf_close(g);
    cllm_model_destroy(m);

    /* gpt2 arch: fused attn_qkv with bias, LayerNorm eps key, learned positions, tied */
    c = tiny("tiny-gpt2");
    m = make_model(&c, 2);
    CHECK(m && cllm_model_save_gguf(m, path, NULL, &err) == CLLM_OK, "%s", err.msg);
    g = NULL;
    CHECK(cllm_gguf_open(&g, path, &err) == CLLM_OK, "%s", err.msg);
    if (g) {
        CHECK(cllm_gguf_get_str_buf(g, "general.architecture", s, sizeof s, &err) == CLLM_OK && !strcmp(s, "gpt2"), "gpt2");
        CHECK(cllm_gguf_get_f32(g, "gpt2.attention.layer_norm_epsilon", &f, &err) == CLLM_OK && f == 1e-5f, "ln eps");
        const cllm_gguf_tensor *t = cllm_gguf_find_tensor(g, "blk.0.attn_qkv.weight");
        CHECK(t && t->dims[0] == 32 && t->dims[1] == 96, "fused qkv {C, 3C}");
        CHECK(cllm_gguf_find_tensor(g, "blk.0.attn_qkv.bias") && cllm_gguf_find_tensor(g, "position_embd.weight") &&
                  cllm_gguf_find_tensor(g, "output_norm.bias"), "gpt2 biases and positions");
        CHECK(cllm_gguf_find_tensor(g, "output.weight") == NULL, "tied: no output.weight");
        CHECK(cllm_model_gguf_llama_cpp_compatible(&c), "tiny-gpt2 runs in llama.cpp");
    }
    cllm_gguf_close(g);
    cllm_model_destroy(m);
    unlink(path);
}

/* Quantized and half-precision files load within each type's error bound. */
static void test_model_gguf_quantized_types_load_within_bounds(void) {
    cllm_model_config c = tiny("tiny-llama");
    c.n_embd = 64, c.ffn_hidden = 96, c.n_head = 4, c.n_kv_head = 2; /* rows of 64 and 96: whole q blocks */
    cllm_model *m = make_model(&c, 3);
    if (!m) return;
    static const uint32_t types[] = {CLLM_GGML_F16, CLLM_GGML_BF16, CLLM_GGML_Q8_0, CLLM_GGML_Q4_0};
    static const uint32_t ftypes[] = {1, 32, 7, 2};
    char path[512];
    tmp_path(path, sizeof path, "q.gguf");
    for (size_t ti = 0; ti < 4; ti++) {
        cllm_error err;
        cllm_model_save_params p = cllm_model_save_default_params();
        p.weight_type = types[ti];
        CHECK(cllm_model_save_gguf(m, path, &p, &err) == CLLM_OK, "save %s: %s", cllm_ggml_type_name(types[ti]), err.msg);
        cllm_gguf *g = NULL;
        CHECK(cllm_gguf_open(&g, path, &err) == CLLM_OK, "%s", err.msg);
        if (!g) continue;
        uint32_t ft = 99;
        CHECK(cllm_gguf_get_u32(g, "general.file_type", &ft, &err) == CLLM_OK && ft == ftypes[ti], "file_type %u", ft);
        const cllm_gguf_tensor *w = cllm_gguf_find_tensor(g, "blk.0.ffn_down.weight");
        const cllm_gguf_tensor *n = cllm_gguf_find_tensor(g, "blk.0.attn_norm.weight");
        CHECK(w && w->type == types[ti], "matrices stored as %s", cllm_ggml_type_name(types[ti]));
        CHECK(n && n->type == CLLM_GGML_F32, "1-D tensors stay f32");
        cllm_model *r = NULL;
        CHECK(cllm_model_from_gguf(g, NULL, 1, &r, &err) == CLLM_OK, "load %s: %s", cllm_ggml_type_name(types[ti]), err.msg);
        cllm_gguf_close(g);
        if (!r) continue;
        int bad = 0;
        for (int i = 0; i < cllm_model_num_tensors(m); i++) {
            const cllm_tensor *a = cllm_model_tensor(m, i), *b = cllm_model_tensor(r, i);
            int64_t cols = a->ndim == 2 ? a->shape[1] : (int64_t)a->numel;
            for (size_t k0 = 0; k0 < a->numel; k0 += 32) {
                /* bound per 32-element block (rows are multiples of 32 here) */
                float amax = 0;
                for (size_t k = k0; k < k0 + 32 && k < a->numel; k++) amax = fmaxf(amax, fabsf(a->data[k]));
                for (size_t k = k0; k < k0 + 32 && k < a->numel; k++) {
                    double e = fabs((double)a->data[k] - b->data[k]), tol;
                    if (a->ndim == 1) tol = 0;                                        /* f32: exact */
                    else if (types[ti] == CLLM_GGML_F16) tol = fabs(a->data[k]) / 2048 + 6e-8; /* half ulp, subnormal step */
                    else if (types[ti] == CLLM_GGML_BF16) tol = fabs(a->data[k]) / 256;        /* half ulp of 8 bits */
                    else if (types[ti] == CLLM_GGML_Q8_0) tol = 0.57 * amax / 127;    /* half step + fp16 scale */
                    else tol = 1.01 * amax / 8;                                       /* one step (top is capped) */
                    if (e > tol) bad++;
                }
            }
            (void)cols;
        }
        CHECK(bad == 0, "%s: %d elements beyond the bound", cllm_ggml_type_name(types[ti]), bad);
        cllm_model_destroy(r);
    }
    cllm_model_destroy(m);

    /* rows that are not whole blocks fall back to f32 */
    c = tiny("tiny-llama"); /* C = 32: q blocks fit; make ffn 48 so ffn_down rows (48) do not */
    c.ffn_hidden = 48;
    m = make_model(&c, 4);
    cllm_error err;
    cllm_model_save_params p = cllm_model_save_default_params();
    p.weight_type = CLLM_GGML_Q8_0;
    CHECK(m && cllm_model_save_gguf(m, path, &p, &err) == CLLM_OK, "%s", err.msg);
    cllm_gguf *g = NULL;
    CHECK(cllm_gguf_open(&g, path, &err) == CLLM_OK, "%s", err.msg);
    if (g) {
        const cllm_gguf_tensor *dn = cllm_gguf_find_tensor(g, "blk.0.ffn_down.weight");
        const cllm_gguf_tensor *up = cllm_gguf_find_tensor(g, "blk.0.ffn_up.weight");
        CHECK(dn && dn->type == CLLM_GGML_F32 && up && up->type == CLLM_GGML_Q8_0, "fallback only where needed");
    }
    cllm_gguf_close(g);
    p.weight_type = CLLM_GGML_Q8_1;
    CHECK(m && cllm_model_save_gguf(m, path, &p, &err) == CLLM_ERR_ARG, "q8_1 cannot be written");
    cllm_model_destroy(m);
    unlink(path);
}

/* ---- rewriting a good file into bad ones ---------------------------------- */

typedef struct {
    const char *drop_tensor;   /* leave this tensor out */
    const char *reshape;       /* write this tensor with dims {d0 + 32, d1} instead */
    const char *retype;        /* write this 1-D tensor as i32 */
    const char *nan_in;        /* write this tensor with a NaN */
    int extra_tensor;          /* add "blk.0.extra.weight" */
    const char *drop_key;
    const char *drop_prefix;   /* leave out every key starting with this */
    const char *u32_key;       /* set this key to u32_val */
    uint32_t u32_val;
    const char *str_key;       /* set this key to str_val */
    const char *str_val;
} edit;

static cllm_status rewrite(const char *src, const char *dst, const edit *e, cllm_error *err) {
    cllm_gguf *g = NULL;
    cllm_status st = cllm_gguf_open(&g, src, err);
    if (st) return st;
    cllm_gguf_writer *w = cllm_gguf_writer_create();
    void *scratch[4] = {0};
    int ns = 0;
    for (uint64_t i = 0; i < cllm_gguf_n_kv(g) && !st; i++) {
        const cllm_gguf_kv *kv = cllm_gguf_kv_at(g, i);
        if (e->drop_key && !strcmp(kv->key, e->drop_key)) continue;
        if (e->drop_prefix && !strncmp(kv->key, e->drop_prefix, strlen(e->drop_prefix))) continue;
        st = cllm_gguf_set_kv(w, kv, err);
    }
    if (!st && e->u32_key) st = cllm_gguf_set_u32(w, e->u32_key, e->u32_val, err);
    if (!st && e->str_key) st = cllm_gguf_set_str(w, e->str_key, e->str_val, err);
    for (uint64_t i = 0; i < cllm_gguf_n_tensors(g) && !st; i++) {
        const cllm_gguf_tensor *t = cllm_gguf_tensor_at(g, i);
        int64_t dims[4] = {t->dims[0], t->dims[1], t->dims[2], t->dims[3]};
        if (e->drop_tensor && !strcmp(t->name, e->drop_tensor)) continue;
        if (e->reshape && !strcmp(t->name, e->reshape)) {
            dims[0] += 32;
            size_t nb = t->nbytes / (size_t)t->dims[0] * (size_t)dims[0];
            scratch[ns] = calloc(1, nb);
            st = cllm_gguf_add_tensor(w, t->name, t->type, t->n_dims, dims, scratch[ns++], nb, err);
        } else if (e->retype && !strcmp(t->name, e->retype)) {
            st = cllm_gguf_add_tensor(w, t->name, CLLM_GGML_I32, t->n_dims, dims, t->data, t->nbytes, err);
        } else if (e->nan_in && !strcmp(t->name, e->nan_in)) {
            float *copy = malloc(t->nbytes);
            memcpy(copy, t->data, t->nbytes);
            copy[t->n_elements - 1] = NAN;
            scratch[ns++] = copy;
            st = cllm_gguf_add_tensor(w, t->name, t->type, t->n_dims, dims, copy, t->nbytes, err);
        } else {
            st = cllm_gguf_add_tensor(w, t->name, t->type, t->n_dims, dims, t->data, t->nbytes, err);
        }
    }
    static const float extra[32];
    int64_t ed[1] = {32};
    if (!st && e->extra_tensor) st = cllm_gguf_add_tensor(w, "blk.0.extra.weight", CLLM_GGML_F32, 1, ed, extra, sizeof extra, err);
    if (!st) st = cllm_gguf_writer_write(w, dst, err);
    cllm_gguf_writer_destroy(w);
    for (int i = 0; i < ns; i++) free(scratch[i]);
    cllm_gguf_close(g);
    return st;
}

typedef struct {
    const char *name;
    edit e;
    const char *expect;
} bad_model;

static void test_model_gguf_rejects_bad_model_files(void) {
    cllm_model_config c = tiny("tiny-llama");
    cllm_model *m = make_model(&c, 5);
    if (!m) return;
    char good[512], bad[512];
    tmp_path(good, sizeof good, "good.gguf");
    tmp_path(bad, sizeof bad, "bad.gguf");
    cllm_error err;
    CHECK(cllm_model_save_gguf(m, good, NULL, &err) == CLLM_OK, "%s", err.msg);
    static const bad_model cases[] = {
        {"missing tensor", {.drop_tensor = "blk.1.ffn_down.weight"}, "missing tensor blk.1.ffn_down.weight"},
        {"missing split part", {.drop_tensor = "blk.0.attn_v.weight"}, "missing tensor blk.0.attn_v.weight"},
        {"missing token_embd", {.drop_tensor = "token_embd.weight"}, "missing tensor token_embd.weight"},
        {"wrong shape", {.reshape = "blk.0.attn_k.weight"}, "shape of blk.0.attn_k.weight is {64, 16}, expected {32, 16}"},
        {"wrong shape 1-D", {.reshape = "output_norm.weight"}, "shape of output_norm.weight is {64}, expected {32}"},
        {"unsupported type", {.retype = "blk.0.ffn_norm.weight"}, "blk.0.ffn_norm.weight has type i32"},
        {"extra tensor", {.extra_tensor = 1}, "unexpected tensor blk.0.extra.weight"},
        {"NaN weight", {.nan_in = "blk.1.attn_output.weight"}, "blk.1.attn_output.weight element 1023 is NaN"},
        {"n_head 0", {.u32_key = "llama.attention.head_count", .u32_val = 0}, "n_head = 0 is out of range"},
        {"n_embd % n_head", {.u32_key = "llama.attention.head_count", .u32_val = 6}, "must be divisible by n_head"},
        {"too many layers", {.u32_key = "llama.block_count", .u32_val = 100000}, "n_layer = 100000 is out of range"},
        {"n_kv_head > n_head", {.u32_key = "llama.attention.head_count_kv", .u32_val = 8}, "n_kv_head = 8 is out of range"},
        {"head count above int", {.u32_key = "llama.attention.head_count", .u32_val = 0x80000000u}, "does not fit in int32"},
        {"vocab mismatch", {.u32_key = "llama.vocab_size", .u32_val = 65}, "llama.vocab_size = 65 but token_embd.weight has 64 rows"},
        {"rope dims", {.u32_key = "llama.rope.dimension_count", .u32_val = 4}, "llama.rope.dimension_count = 4"},
        {"layers fewer than tensors", {.u32_key = "llama.block_count", .u32_val = 1}, "unexpected tensor blk.1."},
        {"missing context_length", {.drop_key = "llama.context_length"}, "'llama.context_length' is missing"},
        {"missing eps", {.drop_key = "llama.attention.layer_norm_rms_epsilon"}, "layer_norm_rms_epsilon' is missing"},
        {"unknown arch", {.str_key = "general.architecture", .str_val = "mamba"}, "architecture 'mamba' is not supported"},
        {"bad cllm.pos", {.str_key = "cllm.pos", .str_val = "spiral"}, "'cllm.pos' has unknown value 'spiral'"},
        {"arch keys of the other arch", {.str_key = "general.architecture", .str_val = "gpt2"}, "'gpt2.context_length' is missing"},
        {"config larger than the file", {.u32_key = "llama.feed_forward_length", .u32_val = 1048576}, "weights but its config needs"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(rewrite(good, bad, &cases[i].e, &err) == CLLM_OK, "%s: rewrite: %s", cases[i].name, err.msg);
        cllm_model *r = (cllm_model *)1;
        cllm_status st = cllm_model_load_gguf(bad, NULL, 1, &r, &err);
        CHECK(st != CLLM_OK && r == NULL, "%s: accepted", cases[i].name);
        CHECK(strstr(err.msg, bad) != NULL, "%s: no file name in '%s'", cases[i].name, err.msg);
        CHECK(strstr(err.msg, cases[i].expect) != NULL, "%s: '%s' lacks '%s'", cases[i].name, err.msg, cases[i].expect);
        if (st == CLLM_OK) cllm_model_destroy(r);
    }
    /* NaN loads when the finite check is off (it is opt-in, always on for resume) */
    edit nan = {.nan_in = "blk.1.attn_output.weight"};
    CHECK(rewrite(good, bad, &nan, &err) == CLLM_OK, "%s", err.msg);
    cllm_model *r = NULL;
    CHECK(cllm_model_load_gguf(bad, NULL, 0, &r, &err) == CLLM_OK, "NaN without check: %s", err.msg);
    cllm_model_destroy(r);

    /* reading into a model of another shape names the differing field */
    cllm_model_config c3 = c;
    c3.n_layer = 3;
    cllm_model *m3 = make_model(&c3, 1);
    cllm_gguf *g = NULL;
    CHECK(cllm_gguf_open(&g, good, &err) == CLLM_OK, "%s", err.msg);
    CHECK(g && m3 && cllm_model_read_gguf(m3, g, 1, &err) == CLLM_ERR_FORMAT &&
              strstr(err.msg, "the file's n_layer is 2 but the model's is 3"), "config mismatch: %s", err.msg);
    cllm_gguf_close(g);
    cllm_model_destroy(m3);
    /* not a GGUF at all */
    CHECK(cllm_file_write_atomic(bad, "hello", 5, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_load_gguf(bad, NULL, 1, &r, &err) == CLLM_ERR_FORMAT && strstr(err.msg, "magic"), "%s", err.msg);
    cllm_model_destroy(m);
    unlink(good);
    unlink(bad);
}

/* The extra-keys hook (tokenizer) lands in the file; a failing hook leaves
 * the previous file untouched and no temp file behind. */
/* qwen2 / rope-scaling / window files: names and keys llama.cpp reads, and
 * bad variants refused with the field named. */
static void test_model_gguf_new_archs_keys_and_rejects(void) {
    char path[512], bad[512];
    tmp_path(path, sizeof path, "arch.gguf");
    tmp_path(bad, sizeof bad, "arch-bad.gguf");
    cllm_error err;
    char s[64];
    float f = 0;
    cllm_model_config c = tiny("tiny-qwen2");
    cllm_model *m = make_model(&c, 9), *r = NULL;
    CHECK(m && cllm_model_save_gguf(m, path, NULL, &err) == CLLM_OK, "%s", err.msg);
    cllm_gguf *g = NULL;
    CHECK(cllm_gguf_open(&g, path, &err) == CLLM_OK, "%s", err.msg);
    if (g) {
        CHECK(cllm_gguf_get_str_buf(g, "general.architecture", s, sizeof s, &err) == CLLM_OK && !strcmp(s, "qwen2"),
              "qwen2 arch");
        CHECK(cllm_gguf_get_f32(g, "qwen2.rope.freq_base", &f, &err) == CLLM_OK && f == 1e6f, "qwen2 keys");
        const cllm_gguf_tensor *qb = cllm_gguf_find_tensor(g, "blk.1.attn_q.bias"), *kb = cllm_gguf_find_tensor(g, "blk.1.attn_k.bias");
        CHECK(qb && qb->dims[0] == 32 && kb && kb->dims[0] == 16 && cllm_gguf_find_tensor(g, "blk.1.attn_v.bias"),
              "split q/k/v biases {32}, {16}, {16}");
        CHECK(!cllm_gguf_find_tensor(g, "blk.0.attn_output.bias") && !cllm_gguf_find_tensor(g, "blk.0.ffn_down.bias"),
              "no other biases");
        CHECK(cllm_model_gguf_llama_cpp_compatible(&c), "tiny-qwen2 runs in llama.cpp");
    }
    cllm_gguf_close(g);
    /* a qwen2 file as llama.cpp's converter writes it (no cllm.* keys) loads as the same config */
    edit e1 = {.drop_prefix = "cllm."};
    CHECK(rewrite(path, bad, &e1, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_load_gguf(bad, NULL, 1, &r, &err) == CLLM_OK, "qwen2 without cllm keys: %s", err.msg);
    if (r) {
        CHECK(memcmp(cllm_model_get_config(r), &c, sizeof c) == 0, "qwen2 without cllm.* keys: another config");
        CHECK(same_weights(m, r), "qwen2 without cllm.* keys: weights differ");
    }
    cllm_model_destroy(r);
    r = NULL;
    cllm_model_destroy(m);

    c = tiny("tiny-llama");
    c.rope_scaling = CLLM_ROPE_SCALING_LLAMA3, c.rope_factor = 8.0f, c.rope_orig_context = 64;
    m = make_model(&c, 10);
    CHECK(m && cllm_model_save_gguf(m, path, NULL, &err) == CLLM_OK, "%s", err.msg);
    g = NULL;
    CHECK(cllm_gguf_open(&g, path, &err) == CLLM_OK, "%s", err.msg);
    if (g) {
        const cllm_gguf_tensor *t = cllm_gguf_find_tensor(g, "rope_freqs.weight");
        CHECK(t && t->n_dims == 1 && t->dims[0] == 4 && t->type == CLLM_GGML_F32, "rope_freqs.weight {HS/2} f32");
        float d[4] = {0};
        if (t) memcpy(d, t->data, sizeof d);
        /* head size 8, theta 1e4: wavelengths 6.3 (< 64/4: 1), 62.8 (ramp), 628 and 6283 (> 64: factor 8) */
        CHECK(d[0] == 1.0f && d[1] > 1.0f && d[1] < 8.0f && d[2] == 8.0f && d[3] == 8.0f, "divisors %g %g %g %g", d[0],
              d[1], d[2], d[3]);
        CHECK(!cllm_gguf_find_kv(g, "llama.rope.scaling.type"), "no scaling.type key llama.cpp would misread");
    }
    cllm_gguf_close(g);
    static const struct { edit e; const char *expect; } bads[] = {
        {{.nan_in = "rope_freqs.weight"}, "rope_freqs.weight[3]"},
        {{.drop_tensor = "rope_freqs.weight"}, "rope_freqs.weight is missing"},
        {{.str_key = "llama.rope.scaling.type", .str_val = "yarn"}, "llama.rope.scaling.type"},
    };
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        CHECK(rewrite(path, bad, &bads[i].e, &err) == CLLM_OK, "%s", err.msg);
        err.msg[0] = 0;
        CHECK(cllm_model_load_gguf(bad, NULL, 1, &r, &err) == CLLM_ERR_FORMAT && !r && strstr(err.msg, bads[i].expect),
              "bad llama3 file %zu: '%s' should name '%s'", i, err.msg, bads[i].expect);
        cllm_model_destroy(r);
        r = NULL;
    }
    /* without cllm.rope_scaling the table alone says it all: factor 8 (its largest divisor), Llama 3.1's
     * 1/4, and the original context 64 from the ramp's pair (d[1]), so the same config loads */
    edit e_keys = {.drop_key = "cllm.rope_scaling"};
    CHECK(rewrite(path, bad, &e_keys, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_load_gguf(bad, NULL, 1, &r, &err) == CLLM_OK, "llama3 table without cllm.rope_scaling: %s", err.msg);
    if (r)
        CHECK(memcmp(cllm_model_get_config(r), &c, sizeof c) == 0, "llama3 table alone: another config (context %d)",
              cllm_model_get_config(r)->rope_orig_context);
    cllm_model_destroy(r);
    r = NULL;
    cllm_model_destroy(m);
    /* a Llama 3.1 file as llama.cpp's converter writes it: rope_freqs.weight, no cllm.* keys */
    c = tiny("tiny-llama");
    c.rope_scaling = CLLM_ROPE_SCALING_LLAMA3, c.rope_factor = 32.0f, c.rope_orig_context = 8192;
    c.rope_theta = 500000.0f, c.n_embd = 128, c.n_head = 2, c.n_kv_head = 1; /* head size 64: all three regimes */
    m = make_model(&c, 11);
    CHECK(m && cllm_model_save_gguf(m, path, NULL, &err) == CLLM_OK, "%s", err.msg);
    edit e2 = {.drop_prefix = "cllm."};
    CHECK(rewrite(path, bad, &e2, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_load_gguf(bad, NULL, 1, &r, &err) == CLLM_OK, "llama3 file without cllm keys: %s", err.msg);
    if (r) {
        CHECK(memcmp(cllm_model_get_config(r), &c, sizeof c) == 0, "llama3 without cllm.* keys: another config");
        CHECK(same_weights(m, r), "llama3 without cllm.* keys: weights differ");
    }
    cllm_model_destroy(r);
    cllm_model_destroy(m);
    unlink(path);
    unlink(bad);
}

static cllm_status add_tok(cllm_gguf_writer *w, void *ctx, cllm_error *err) {
    const char *toks[3] = {"a", "b", "<|eot|>"};
    cllm_status st = cllm_gguf_set_str(w, "tokenizer.ggml.model", (const char *)ctx, err);
    if (!st) st = cllm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 3, err);
    return st;
}
static cllm_status fail_hook(cllm_gguf_writer *w, void *ctx, cllm_error *err) {
    (void)w, (void)ctx;
    return cllm_error_set(err, CLLM_ERR_ARG, "tokenizer refused");
}

static void test_model_gguf_extra_hook_and_atomicity(void) {
    cllm_model_config c = tiny("tiny-gpt2");
    cllm_model *m = make_model(&c, 6);
    if (!m) return;
    char path[512];
    tmp_path(path, sizeof path, "hook.gguf");
    cllm_error err;
    cllm_model_save_params p = cllm_model_save_default_params();
    p.extra = add_tok;
    p.extra_ctx = (void *)"gpt2";
    p.name = "tiny test";
    CHECK(cllm_model_save_gguf(m, path, &p, &err) == CLLM_OK, "%s", err.msg);
    cllm_gguf *g = NULL;
    CHECK(cllm_gguf_open(&g, path, &err) == CLLM_OK, "%s", err.msg);
    char s[32];
    const cllm_gguf_str *toks = NULL;
    uint64_t n = 0;
    CHECK(g && cllm_gguf_get_str_buf(g, "tokenizer.ggml.model", s, sizeof s, &err) == CLLM_OK && !strcmp(s, "gpt2"), "hook key");
    CHECK(g && cllm_gguf_get_arr_str(g, "tokenizer.ggml.tokens", &toks, &n, &err) == CLLM_OK && n == 3 &&
              toks[2].len == 7 && !memcmp(toks[2].data, "<|eot|>", 7), "hook array");
    CHECK(g && cllm_gguf_get_str_buf(g, "general.name", s, sizeof s, &err) == CLLM_OK && !strcmp(s, "tiny test"), "name");
    cllm_gguf_close(g);
    char *before = NULL, *after = NULL;
    size_t lb = 0, la = 0;
    CHECK(cllm_file_read_all(path, 0, &before, &lb, &err) == CLLM_OK, "%s", err.msg);
    p.extra = fail_hook;
    cllm_model_init_weights(m, 99);
    CHECK(cllm_model_save_gguf(m, path, &p, &err) == CLLM_ERR_ARG && strstr(err.msg, "tokenizer refused"), "%s", err.msg);
    CHECK(cllm_file_read_all(path, 0, &after, &la, &err) == CLLM_OK, "%s", err.msg);
    CHECK(lb == la && before && after && !memcmp(before, after, lb), "failed save changed the old file");
    free(before);
    free(after);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(access(tmp, F_OK) != 0, "temp file left behind");
    cllm_model_destroy(m);
    unlink(path);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cllm_test_model_gguf_%ld", (long)getpid());
    mkdir(tmpdir, 0755);
    TEST_RUN(test_model_gguf_f32_roundtrip_is_bit_exact);
    TEST_RUN(test_model_gguf_uses_llama_cpp_names_and_keys);
    TEST_RUN(test_model_gguf_quantized_types_load_within_bounds);
    TEST_RUN(test_model_gguf_rejects_bad_model_files);
    TEST_RUN(test_model_gguf_new_archs_keys_and_rejects);
    TEST_RUN(test_model_gguf_extra_hook_and_atomicity);
    rmdir(tmpdir);
    return test_finish();
}
