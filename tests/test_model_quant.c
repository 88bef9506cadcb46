/*
 * test_model_quant.c: `cllm quantize`'s library (cllm_quantize_gguf) and
 * inference on mapped GGUF weight views (cllm_model_load_gguf_mapped):
 *   - an f32/f16/bf16 file decoded through the views gives the logits of the
 *     same weights decoded as f32 (chunked prompt and token by token);
 *   - q8_0 and q4_0 files stay close to the f32 original: mean KL bound per
 *     type, q8_0 much tighter than q4_0; the same for q4_1, q5_0, q5_1, the
 *     k-quants and the Q3_K_M / Q4_K_M / Q5_K_M mixes on 256-wide models,
 *     and the k-quants' fallbacks on rows that are not a multiple of 256;
 *   - layouts: every converted tensor has the target type, 1-D tensors stay
 *     f32, metadata is copied, general.file_type is llama.cpp's value;
 *   - rows not a multiple of 32 fall back to f16;
 *   - two threads give one thread's logits (row-split products);
 *   - bad input: unknown type, missing tensor, forward on a mapped model.
 * Models are random (seeded) with the weights scaled up so the next-token
 * distributions are peaked enough for KL to mean something.
 */
#include <stdlib.h>
#include <unistd.h>

#include "cllm/formats/ggml_types.h"
#include "cllm/formats/gguf.h"
#include "cllm/kernels/kernels.h"
#include "cllm/model/model.h"
#include "cllm/model/gguf_io.h"
#include "cllm/model/mapped.h"
#include "cllm/kernels/quant.h"
#include "cllm/infer/quantize.h"
#include "test.h"

static char tmpdir[64];

static cllm_model_config cfg_gpt2(void) {
    cllm_model_config c = cllm_model_default_config();
    c.vocab_size = 96, c.context_length = 64, c.n_layer = 2, c.n_head = 4, c.n_kv_head = 4;
    c.n_embd = 64, c.ffn_hidden = 256;
    return c;
}

static cllm_model_config cfg_llama(void) {
    cllm_model_config c = cfg_gpt2();
    c.vocab_size = 100, c.n_kv_head = 2, c.ffn_hidden = 96, c.pos = CLLM_POS_ROPE, c.norm = CLLM_NORM_RMSNORM;
    c.mlp = CLLM_MLP_SWIGLU, c.bias = 0, c.tied_embeddings = 0, c.rope_theta = 10000.0f;
    return c;
}

static cllm_model_options infer_opts(int max_seq) {
    cllm_model_options o = cllm_model_default_options();
    o.max_seq = max_seq;
    o.kv_slots = 1;
    o.kv_context = 64;
    return o;
}

/* Random model with 2-D weights scaled by `gain`, saved as f32 to path. */
static void make_model_file_gain(const cllm_model_config *c, const char *path, uint64_t seed, float gain) {
    cllm_model *m = NULL;
    cllm_error err = {0};
    cllm_model_options o = infer_opts(8);
    CHECK(cllm_model_create(c, &o, &m, &err) == CLLM_OK, "create: %s", err.msg);
    if (!m) return;
    cllm_model_init_weights(m, seed);
    for (int i = 0; i < cllm_model_num_tensors(m); i++) {
        const cllm_tensor *t = cllm_model_tensor(m, i);
        if (t->ndim == 2)
            for (size_t j = 0; j < t->numel; j++) t->data[j] *= gain;
    }
    CHECK(cllm_model_save_gguf(m, path, NULL, &err) == CLLM_OK, "save: %s", err.msg);
    cllm_model_destroy(m);
}

static void make_model_file(const cllm_model_config *c, const char *path, uint64_t seed) {
    make_model_file_gain(c, path, seed, 8.0f);
}

#define NTOK 12
static const int32_t toks[NTOK] = {1, 5, 9, 33, 2, 7, 60, 11, 0, 42, 3, 8};

/* Logits [NTOK, V] of decode: a chunk of `chunk` tokens at a time. */
static int decode_all(cllm_model *m, int chunk, float *out, int V) {
    cllm_error err = {0};
    cllm_model_kv_reset(m, 0);
    for (int p = 0; p < NTOK; p += chunk) {
        int n = NTOK - p < chunk ? NTOK - p : chunk;
        const float *lg = NULL;
        if (cllm_model_decode(m, 0, toks + p, n, p, 1, &lg, &err) != CLLM_OK) {
            fprintf(stderr, "  decode: %s\n", err.msg);
            return -1;
        }
        memcpy(out + (size_t)p * V, lg, sizeof(float) * (size_t)n * V);
    }
    return 0;
}

static double max_abs_diff(const float *a, const float *b, size_t n, double *scale) {
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        s = fmax(s, fabs((double)b[i]));
    }
    if (scale) *scale = s;
    return d;
}

/* Mean KL(p || q) over NTOK rows of logits, and top-1 agreement. */
static double mean_kl(const float *p_logits, const float *q_logits, int V, double *agree) {
    double kl = 0;
    int same = 0;
    for (int t = 0; t < NTOK; t++) {
        const float *a = p_logits + (size_t)t * V, *b = q_logits + (size_t)t * V;
        double ma = -INFINITY, mb = -INFINITY, sa = 0, sb = 0;
        int ia = 0, ib = 0;
        for (int v = 0; v < V; v++) {
            if (a[v] > ma) ma = a[v], ia = v;
            if (b[v] > mb) mb = b[v], ib = v;
        }
        for (int v = 0; v < V; v++) sa += exp(a[v] - ma), sb += exp(b[v] - mb);
        for (int v = 0; v < V; v++) {
            double lp = a[v] - ma - log(sa), lq = b[v] - mb - log(sb);
            kl += exp(lp) * (lp - lq);
        }
        same += ia == ib;
    }
    *agree = (double)same / NTOK;
    return kl / NTOK;
}

/* The reference: the file loaded as f32 parameters (cllm_model_load_gguf dequantizes). */
static int f32_logits(const char *path, float *out, int V) {
    cllm_model *m = NULL;
    cllm_error err = {0};
    cllm_model_options o = infer_opts(NTOK);
    if (cllm_model_load_gguf(path, &o, 0, &m, &err) != CLLM_OK) {
        fprintf(stderr, "  load %s: %s\n", path, err.msg);
        return -1;
    }
    int rc = decode_all(m, NTOK, out, V);
    cllm_model_destroy(m);
    return rc;
}

static int mapped_logits_route(const char *path, int chunk, float *out, int V, int keep_file_layout,
                               int bf16_prompt) {
    cllm_model *m = NULL;
    cllm_error err = {0};
    cllm_model_options o = infer_opts(NTOK);
    o.keep_file_layout = keep_file_layout;
    o.bf16_prompt = bf16_prompt;
    if (cllm_model_load_gguf_mapped(path, &o, &m, &err) != CLLM_OK) {
        fprintf(stderr, "  load mapped %s: %s\n", path, err.msg);
        return -1;
    }
    int rc = decode_all(m, chunk, out, V);
    cllm_model_destroy(m);
    return rc;
}

/* The library's own bf16 route (x16 kernel or dequantized rows), whatever
 * the CPU: with AUTO, an AMX CPU sends bf16 prompt chunks to oneDNN, which
 * rounds activations to bf16, and the exact-f32 checks of check_arch fail
 * there (test_model_quant_bf16_onednn_route checks that route). */
static int mapped_logits_layout(const char *path, int chunk, float *out, int V, int keep_file_layout) {
    return mapped_logits_route(path, chunk, out, V, keep_file_layout, CLLM_BF16_PROMPT_OWN);
}

static int mapped_logits(const char *path, int chunk, float *out, int V) {
    return mapped_logits_layout(path, chunk, out, V, 0);
}

static void check_arch(const cllm_model_config *c, const char *tag) {
    char f32[128], q[128];
    snprintf(f32, sizeof f32, "%s/%s-f32.gguf", tmpdir, tag);
    make_model_file(c, f32, 7);
    const int V = c->vocab_size;
    float *ref = malloc(sizeof(float) * NTOK * (size_t)V), *got = malloc(sizeof(float) * NTOK * (size_t)V);
    float *same = malloc(sizeof(float) * NTOK * (size_t)V), *tok = malloc(sizeof(float) * NTOK * (size_t)V);
    CHECK(f32_logits(f32, ref, V) == 0, "f32 reference");
    const uint32_t types[5] = {CLLM_GGML_F32, CLLM_GGML_F16, CLLM_GGML_BF16, CLLM_GGML_Q8_0, CLLM_GGML_Q4_0};
    /* KL bounds vs the f32 original (nats per token), about 3-10x above what
     * these seeds give (gpt2 / llama: f16 4e-7 / 1e-6, bf16 4e-5 / 1e-4 with
     * activations rounded to bf16 on AVX512-BF16 (2e-5 / 5e-5 without),
     * q8_0 4e-4 / 9e-4, q4_0 0.06 / 0.15; the scaled random nets amplify
     * weight noise more than trained ones do). */
    const double kl_max[5] = {1e-9, 1e-5, 5e-4, 5e-3, 0.5};
    double kl_seen[5] = {0};
    for (int ti = 0; ti < 5; ti++) {
        const char *tn = cllm_ggml_type_name(types[ti]);
        snprintf(q, sizeof q, "%s/%s-%s.gguf", tmpdir, tag, tn);
        cllm_error err = {0};
        cllm_quantize_stats s;
        CHECK(cllm_quantize_gguf(f32, q, types[ti], &s, &err) == CLLM_OK, "quantize %s: %s", tn, err.msg);
        CHECK(s.n_fallback == 0 && (s.n_converted > 0) == (types[ti] != CLLM_GGML_F32), "%s: %d converted, %d fallback",
              tn, s.n_converted, s.n_fallback);
        /* the same weights as f32: the views must reproduce them */
        CHECK(f32_logits(q, same, V) == 0, "%s as f32", tn);
        for (int chunk = 1; chunk <= NTOK; chunk += NTOK - 1) { /* token by token (matvec), one chunk (GEMM) */
            CHECK(mapped_logits(q, chunk, got, V) == 0, "%s mapped", tn);
            double scale, d = max_abs_diff(got, same, (size_t)NTOK * V, &scale);
            const int quant = types[ti] == CLLM_GGML_Q8_0 || types[ti] == CLLM_GGML_Q4_0;
            /* bf16 on AVX512-BF16 runs the x16 copy with activations rounded to bf16 */
            const int bf16_x16 = types[ti] == CLLM_GGML_BF16 && cllm_quant_kernels_get()->gemm_x16_bf16;
            const int rounded = quant || bf16_x16;
            /* f32/f16 (and bf16 without AVX512-BF16): f32 math on identical weights,
             * summation order only. q8_0/q4_0: activations rounded to q8_0 (~0.4% per
             * element, partly averaging out); bf16 x16: to bf16 (~0.2%); token by token
             * and as a chunk. */
            double tol = rounded ? 0.05 * scale : 1e-4 * scale + 1e-5;
            CHECK(d <= tol, "%s %s chunk %d: max |logit diff| %.3g vs same weights in f32 (tol %.3g)", tag, tn, chunk,
                  d, tol);
            if (chunk == 1) memcpy(tok, got, sizeof(float) * NTOK * (size_t)V);
            if (rounded) {
                /* the file layout (keep_file_layout) against the repacked x16 copy:
                 * q8_0/q4_0 the same integer sums (float summation order only); bf16 in
                 * the file layout multiplies f32 activations, exactly the f32 result */
                float *fl = malloc(sizeof(float) * NTOK * (size_t)V);
                CHECK(fl && mapped_logits_layout(q, chunk, fl, V, 1) == 0, "%s mapped, file layout", tn);
                double sc3, d3 = fl ? max_abs_diff(quant ? got : same, fl, (size_t)NTOK * V, &sc3) : 1;
                CHECK(fl && d3 <= 1e-4 * sc3 + 1e-5, "%s %s chunk %d: file layout vs %s max diff %.3g", tag, tn,
                      chunk, quant ? "repacked" : "f32", d3);
                free(fl);
            }
            if (chunk > 1 && rounded) {
                /* the chunk's product and the token-by-token products see the same
                 * rounded activations: they differ by float summation order only, which
                 * for bf16 can flip an activation across a rounding boundary (2^-8
                 * relative on that element): 1e-2 of the logit scale there */
                double sc2, d2 = max_abs_diff(got, tok, (size_t)NTOK * V, &sc2);
                CHECK(d2 <= (quant ? 1e-4 : 1e-2) * sc2 + 1e-5, "%s %s: chunk vs token-by-token max diff %.3g", tag, tn,
                      d2);
            }
            double agree, kl = mean_kl(ref, got, V, &agree);
            if (chunk == 1) kl_seen[ti] = kl;
            CHECK(kl <= kl_max[ti], "%s %s chunk %d: mean KL %.3g > %.3g (top-1 agreement %.2f)", tag, tn, chunk, kl,
                  kl_max[ti], agree);
        }
        /* layout: types in the file */
        cllm_gguf *g = NULL;
        CHECK(cllm_gguf_open(&g, q, &err) == CLLM_OK, "open %s", q);
        if (g) {
            for (uint64_t i = 0; i < cllm_gguf_n_tensors(g); i++) {
                const cllm_gguf_tensor *t = cllm_gguf_tensor_at(g, i);
                uint32_t want = t->n_dims == 1 || !strcmp(t->name, "position_embd.weight") ? CLLM_GGML_F32 : types[ti];
                CHECK(t->type == want, "%s: tensor %s has type %s, want %s", q, t->name, cllm_ggml_type_name(t->type),
                      cllm_ggml_type_name(want));
            }
            uint32_t ft = 99;
            CHECK(cllm_gguf_get_u32(g, "general.file_type", &ft, &err) == CLLM_OK &&
                      (int)ft == cllm_quantize_file_type(types[ti]),
                  "file_type %u", ft);
            CHECK(cllm_gguf_find_kv(g, "cllm.mlp") != NULL, "cllm.* metadata copied");
            cllm_gguf_close(g);
        }
    }
    fprintf(stderr, "  %s mean KL vs f32: f16 %.2g bf16 %.2g q8_0 %.2g q4_0 %.2g\n", tag, kl_seen[1], kl_seen[2],
            kl_seen[3], kl_seen[4]);
    CHECK(kl_seen[3] < kl_seen[4], "q8_0 (%.3g) must be closer to f32 than q4_0 (%.3g)", kl_seen[3], kl_seen[4]);
    CHECK(kl_seen[4] > 0, "q4_0 must change something");
    free(ref);
    free(got);
    free(same);
    free(tok);
}

static void test_model_quant_gpt2_all_types(void) {
    cllm_model_config c = cfg_gpt2();
    check_arch(&c, "gpt2");
}

static void test_model_quant_llama_all_types(void) {
    cllm_model_config c = cfg_llama();
    check_arch(&c, "llama");
}

/* The other block types and llama-quantize's mixes on models 256 wide (so
 * the k-quants apply without fallbacks), gpt2 (tied head) and llama
 * (untied): mapped decoding equals the same weights loaded as f32 up to the
 * activation rounding (q8_0 / q8_K) token by token and to summation order
 * as a prompt chunk (dequantized rows + sgemm); mean KL to the f32
 * original within a bound per target; each type in the file where the
 * rules put it. */
static void check_other_types(const cllm_model_config *c, const char *tag) {
    char f32[128], q[128];
    snprintf(f32, sizeof f32, "%s/%s-o-f32.gguf", tmpdir, tag);
    make_model_file_gain(c, f32, 11, 3.0f); /* gain 8 on 256 wide: a net so chaotic that 6 bits flip the top token */
    const int V = c->vocab_size;
    float *ref = malloc(sizeof(float) * NTOK * (size_t)V), *got = malloc(sizeof(float) * NTOK * (size_t)V);
    float *same = malloc(sizeof(float) * NTOK * (size_t)V);
    CHECK(f32_logits(f32, ref, V) == 0, "f32 reference");
    static const char *targets[11] = {"q4_1", "q5_0", "q5_1", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K",
                                      "q3_k_m", "q4_k_m", "q5_k_m"};
    /* mean KL bounds (nats per token), 3x the larger of what seed 11 gives on
     * these scaled random nets (gpt2 / llama, measured): q4_1 .015/.040,
     * q5_0 .0064/.013, q5_1 .0052/.0098, q2_K .19/.39, q3_K .068/.13, q4_K
     * .019/.033, q5_K .0037/.0096, q6_K .0012/.0027, Q3_K_M .015/.082,
     * Q4_K_M .012/.031, Q5_K_M .0035/.009 */
    const double kl_max[11] = {0.12, 0.04, 0.03, 1.2, 0.4, 0.1, 0.03, 0.008, 0.25, 0.09, 0.027};
    double kl_seen[11] = {0};
    for (int ti = 0; ti < 11; ti++) {
        uint32_t type;
        cllm_quantize_mix mix;
        CHECK(cllm_quantize_parse_target(targets[ti], &type, &mix) == 0, "parse %s", targets[ti]);
        snprintf(q, sizeof q, "%s/%s-o-%s.gguf", tmpdir, tag, targets[ti]);
        cllm_error err = {0};
        cllm_quantize_stats s;
        CHECK(cllm_quantize_gguf_mix(f32, q, type, mix, &s, &err) == CLLM_OK, "quantize %s: %s", targets[ti], err.msg);
        CHECK(s.n_fallback == 0 && s.n_converted > 0, "%s: %d converted, %d fallback", targets[ti], s.n_converted,
              s.n_fallback);
        CHECK(f32_logits(q, same, V) == 0, "%s as f32", targets[ti]);
        for (int chunk = 1; chunk <= NTOK; chunk += NTOK - 1) {
            CHECK(mapped_logits(q, chunk, got, V) == 0, "%s mapped", targets[ti]);
            double scale, d = max_abs_diff(got, same, (size_t)NTOK * V, &scale);
            /* token by token: activations rounded to q8_0 / q8_K (<= 0.4% per element); a
             * chunk: dequantized rows and f32 activations, summation order only */
            const double tol = chunk == 1 ? 0.05 * scale : 1e-4 * scale + 1e-5;
            CHECK(d <= tol, "%s %s chunk %d: max |logit diff| %.3g vs same weights in f32 (tol %.3g)", tag,
                  targets[ti], chunk, d, tol);
            double agree, kl = mean_kl(ref, got, V, &agree);
            if (chunk == 1) kl_seen[ti] = kl;
            CHECK(kl <= kl_max[ti], "%s %s chunk %d: mean KL %.3g > %.3g (top-1 agreement %.2f)", tag, targets[ti],
                  chunk, kl, kl_max[ti], agree);
        }
        cllm_gguf *g = NULL;
        CHECK(cllm_gguf_open(&g, q, &err) == CLLM_OK, "open %s", q);
        if (g) {
            int q6 = 0;
            for (uint64_t i = 0; i < cllm_gguf_n_tensors(g); i++) {
                const cllm_gguf_tensor *t = cllm_gguf_tensor_at(g, i);
                const int kept = t->n_dims == 1 || !strcmp(t->name, "position_embd.weight");
                if (kept) CHECK(t->type == CLLM_GGML_F32, "%s: %s kept f32", q, t->name);
                else if (mix == CLLM_QUANTIZE_PURE) CHECK(t->type == type, "%s: %s is %s", q, t->name, cllm_ggml_type_name(t->type));
                q6 += t->type == CLLM_GGML_Q6_K;
            }
            /* the mixes' head: q6_K (token_embd when tied), plus the more-bits layers of attn_v
             * and ffn_down for Q4_K_M / Q5_K_M (of 2 layers only layer 1: 1 >= 7 * 2 / 8) */
            const cllm_gguf_tensor *head = cllm_gguf_find_tensor(g, c->tied_embeddings ? "token_embd.weight" : "output.weight");
            if (mix != CLLM_QUANTIZE_PURE)
                CHECK(head && head->type == CLLM_GGML_Q6_K, "%s: head in q6_K", q);
            if (mix == CLLM_QUANTIZE_Q4_K_M || mix == CLLM_QUANTIZE_Q5_K_M)
                CHECK(q6 == 1 + 2, "%s: %d q6_K tensors, want 3", q, q6);
            uint32_t ft = 99;
            CHECK(cllm_gguf_get_u32(g, "general.file_type", &ft, &err) == CLLM_OK && (int)ft == cllm_quantize_file_type(type),
                  "file_type %u", ft);
            cllm_gguf_close(g);
        }
    }
    fprintf(stderr, "  %s mean KL vs f32:", tag);
    for (int ti = 0; ti < 11; ti++) fprintf(stderr, " %s %.2g", targets[ti], kl_seen[ti]);
    fprintf(stderr, "\n");
    CHECK(kl_seen[7] < kl_seen[6] && kl_seen[6] < kl_seen[5] && kl_seen[5] < kl_seen[4] && kl_seen[4] < kl_seen[3],
          "k-quants: more bits, closer to f32");
    free(ref);
    free(got);
    free(same);
}

static void test_model_quant_gpt2_other_types(void) {
    cllm_model_config c = cfg_gpt2();
    c.n_embd = 256, c.ffn_hidden = 512;
    check_other_types(&c, "gpt2");
}

static void test_model_quant_llama_other_types(void) {
    cllm_model_config c = cfg_llama();
    c.n_embd = 256, c.ffn_hidden = 512;
    check_other_types(&c, "llama");
}

/* Rows that are not a multiple of 256 (the 64-wide test models): the
 * k-quants fall back as llama-quantize's do (q4_K -> q5_0, q5_K -> q5_1,
 * q6_K -> q8_0, q2_K/q3_K -> q4_0) and the file still runs. */
static void test_model_quant_kquant_fallbacks(void) {
    cllm_model_config c = cfg_llama();
    char f32[128], q[128];
    snprintf(f32, sizeof f32, "%s/fb-f32.gguf", tmpdir);
    make_model_file(&c, f32, 5);
    const uint32_t from[5] = {CLLM_GGML_Q2_K, CLLM_GGML_Q3_K, CLLM_GGML_Q4_K, CLLM_GGML_Q5_K, CLLM_GGML_Q6_K};
    const uint32_t to[5] = {CLLM_GGML_Q4_0, CLLM_GGML_Q4_0, CLLM_GGML_Q5_0, CLLM_GGML_Q5_1, CLLM_GGML_Q8_0};
    float *got = malloc(sizeof(float) * NTOK * (size_t)c.vocab_size);
    for (int i = 0; i < 5; i++) {
        snprintf(q, sizeof q, "%s/fb-%s.gguf", tmpdir, cllm_ggml_type_name(from[i]));
        cllm_error err = {0};
        cllm_quantize_stats s;
        CHECK(cllm_quantize_gguf(f32, q, from[i], &s, &err) == CLLM_OK, "quantize: %s", err.msg);
        CHECK(s.n_fallback > 0 && s.n_fallback == s.n_converted + s.n_fallback - s.n_converted, "fallbacks counted");
        cllm_gguf *g = NULL;
        CHECK(cllm_gguf_open(&g, q, &err) == CLLM_OK, "open");
        const cllm_gguf_tensor *t = g ? cllm_gguf_find_tensor(g, "blk.0.ffn_up.weight") : NULL;
        CHECK(t && t->type == to[i], "%s falls back to %s (got %s)", cllm_ggml_type_name(from[i]),
              cllm_ggml_type_name(to[i]), t ? cllm_ggml_type_name(t->type) : "none");
        cllm_gguf_close(g);
        CHECK(mapped_logits(q, 1, got, c.vocab_size) == 0, "fallback file runs");
    }
    free(got);
}

/* bf16 prompt chunks through oneDNN's matmul (the route CPUs with AMX
 * take; forced here): as a chunk, the x16 kernel's rounded activations with
 * exact products in another summation order (1e-2 of the logit scale, as
 * chunk vs token by token in check_arch: a later layer's activation can
 * round to the other side of a bf16 boundary) and within the rounded-
 * activation tolerance of the f32 result; token by token the route decodes
 * the file layout with f32 activations, so the f32 result to summation
 * order. Both from the arena copy and from the map (keep_file_layout). */
static void test_model_quant_bf16_onednn_route(void) {
    const cllm_model_config cfgs[2] = {cfg_gpt2(), cfg_llama()};
    const char *tags[2] = {"gpt2", "llama"};
    for (int a = 0; a < 2; a++) {
        char f32[128], q[128];
        snprintf(f32, sizeof f32, "%s/route-%s-f32.gguf", tmpdir, tags[a]);
        snprintf(q, sizeof q, "%s/route-%s-bf16.gguf", tmpdir, tags[a]);
        make_model_file(&cfgs[a], f32, 11);
        cllm_error err = {0};
        cllm_quantize_stats s;
        CHECK(cllm_quantize_gguf(f32, q, CLLM_GGML_BF16, &s, &err) == CLLM_OK, "quantize: %s", err.msg);
        const int V = cfgs[a].vocab_size;
        const size_t NV = (size_t)NTOK * (size_t)V;
        float *same = malloc(sizeof(float) * NV), *own = malloc(sizeof(float) * NV), *got = malloc(sizeof(float) * NV);
        CHECK(f32_logits(q, same, V) == 0, "%s bf16 as f32", tags[a]);
        CHECK(mapped_logits_route(q, NTOK, own, V, 0, CLLM_BF16_PROMPT_OWN) == 0, "%s own route", tags[a]);
        const int own_rounds = cllm_quant_kernels_get()->gemm_x16_bf16 != NULL;
        for (int keep = 0; keep <= 1; keep++) {
            double sc, d;
            CHECK(mapped_logits_route(q, NTOK, got, V, keep, CLLM_BF16_PROMPT_ONEDNN) == 0, "%s onednn chunk", tags[a]);
            d = max_abs_diff(got, same, NV, &sc);
            CHECK(d <= 0.05 * sc, "%s oneDNN chunk (keep_file_layout %d) vs f32: max diff %.3g", tags[a], keep, d);
            if (own_rounds) {
                d = max_abs_diff(got, own, NV, &sc);
                CHECK(d <= 1e-2 * sc + 1e-5, "%s oneDNN chunk (keep_file_layout %d) vs x16 kernel: max diff %.3g",
                      tags[a], keep, d);
            }
            CHECK(mapped_logits_route(q, 1, got, V, keep, CLLM_BF16_PROMPT_ONEDNN) == 0, "%s onednn tokens", tags[a]);
            d = max_abs_diff(got, same, NV, &sc);
            CHECK(d <= 1e-4 * sc + 1e-5, "%s oneDNN route token by token (keep_file_layout %d) vs f32: max diff %.3g",
                  tags[a], keep, d);
        }
        free(same), free(own), free(got);
    }
    if (cllm_kernels_get()->cpu_features & CLLM_CPU_AVX512_BF16)
        CHECK(strcmp(cllm_quant_bf16_onednn_impl(), "none") != 0, "oneDNN ran no bf16 matmul on an AVX512-BF16 CPU");
    fprintf(stderr, "  oneDNN bf16 kernel: %s\n", cllm_quant_bf16_onednn_impl());
    /* an out-of-range route is refused by name */
    cllm_model_options o = infer_opts(NTOK);
    o.bf16_prompt = 7;
    cllm_model *m = NULL;
    cllm_error err = {0};
    char f32[128];
    snprintf(f32, sizeof f32, "%s/route-gpt2-f32.gguf", tmpdir);
    CHECK(cllm_model_load_gguf_mapped(f32, &o, &m, &err) == CLLM_ERR_ARG && strstr(err.msg, "bf16_prompt") && !m,
          "bf16_prompt = 7: %s", err.msg);
}

static void test_model_quant_ragged_rows_fall_back_to_f16(void) {
    cllm_model_config c = cfg_gpt2();
    c.n_embd = 48; /* rows of qkv, attn_output, ffn_up, embeddings: 48, not a multiple of 32 */
    c.ffn_hidden = 96;
    char f32[128], q[128];
    snprintf(f32, sizeof f32, "%s/ragged-f32.gguf", tmpdir);
    snprintf(q, sizeof q, "%s/ragged-q4_0.gguf", tmpdir);
    make_model_file(&c, f32, 9);
    cllm_error err = {0};
    cllm_quantize_stats s;
    CHECK(cllm_quantize_gguf(f32, q, CLLM_GGML_Q4_0, &s, &err) == CLLM_OK, "quantize: %s", err.msg);
    /* token_embd + per layer qkv, attn_output, ffn_up (row 48); ffn_down rows are 96 */
    CHECK(s.n_fallback == 1 + 3 * c.n_layer, "fallbacks %d", s.n_fallback);
    CHECK(s.n_converted == c.n_layer, "converted %d", s.n_converted);
    cllm_gguf *g = NULL;
    CHECK(cllm_gguf_open(&g, q, &err) == CLLM_OK, "open");
    if (g) {
        CHECK(cllm_gguf_find_tensor(g, "blk.0.attn_qkv.weight")->type == CLLM_GGML_F16, "qkv f16");
        CHECK(cllm_gguf_find_tensor(g, "blk.0.ffn_down.weight")->type == CLLM_GGML_Q4_0, "ffn_down q4_0");
        cllm_gguf_close(g);
    }
    const int V = c.vocab_size;
    float *a = malloc(sizeof(float) * NTOK * (size_t)V), *b = malloc(sizeof(float) * NTOK * (size_t)V);
    float *t1 = malloc(sizeof(float) * NTOK * (size_t)V);
    CHECK(f32_logits(q, a, V) == 0 && mapped_logits(q, NTOK, b, V) == 0 && mapped_logits(q, 1, t1, V) == 0,
          "decode the mixed file");
    double scale, d = max_abs_diff(b, a, (size_t)NTOK * V, &scale);
    /* q4_0 rows see q8_0-rounded activations (tolerance as in check_arch) */
    CHECK(d <= 0.05 * scale, "mixed f16/q4_0 file: max diff %.3g vs f32", d);
    d = max_abs_diff(b, t1, (size_t)NTOK * V, &scale); /* chunk (GEMM) vs token by token: summation order */
    CHECK(d <= 1e-4 * scale + 1e-5, "mixed f16/q4_0 file: chunk vs token-by-token max diff %.3g", d);
    free(t1);
    free(a);
    free(b);
}

static void test_model_quant_bad_input(void) {
    cllm_model_config c = cfg_gpt2();
    char f32[128], out[128], cut[128];
    snprintf(f32, sizeof f32, "%s/bad-f32.gguf", tmpdir);
    snprintf(out, sizeof out, "%s/bad-out.gguf", tmpdir);
    snprintf(cut, sizeof cut, "%s/bad-missing.gguf", tmpdir);
    make_model_file(&c, f32, 3);
    cllm_error err = {0};
    CHECK(cllm_quantize_gguf(f32, out, CLLM_GGML_Q8_1, NULL, &err) == CLLM_ERR_ARG, "q8_1 target refused");
    CHECK(cllm_quantize_gguf(f32, out, CLLM_GGML_Q8_K, NULL, &err) == CLLM_ERR_ARG, "q8_K target refused");
    CHECK(cllm_quantize_gguf(f32, out, 999, NULL, &err) == CLLM_ERR_ARG, "unknown target refused");
    CHECK(access(out, F_OK) != 0, "no output file after a refusal");
    CHECK(cllm_quantize_gguf("/nonexistent/x.gguf", out, CLLM_GGML_Q8_0, NULL, &err) != CLLM_OK, "missing input");
    /* a file without one tensor */
    cllm_gguf *g = NULL;
    CHECK(cllm_gguf_open(&g, f32, &err) == CLLM_OK, "open");
    if (g) {
        cllm_gguf_writer *w = cllm_gguf_writer_create();
        for (uint64_t i = 0; i < cllm_gguf_n_kv(g); i++) cllm_gguf_set_kv(w, cllm_gguf_kv_at(g, i), &err);
        for (uint64_t i = 0; i < cllm_gguf_n_tensors(g); i++) {
            const cllm_gguf_tensor *t = cllm_gguf_tensor_at(g, i);
            if (strcmp(t->name, "blk.1.ffn_down.weight") != 0)
                cllm_gguf_add_tensor(w, t->name, t->type, t->n_dims, t->dims, t->data, t->nbytes, &err);
        }
        CHECK(cllm_gguf_writer_write(w, cut, &err) == CLLM_OK, "write cut file: %s", err.msg);
        cllm_gguf_writer_destroy(w);
        cllm_gguf_close(g);
        cllm_model *m = NULL;
        CHECK(cllm_model_load_gguf_mapped(cut, NULL, &m, &err) == CLLM_ERR_FORMAT && m == NULL &&
                  strstr(err.msg, "blk.1.ffn_down.weight"),
              "missing tensor named: %s", err.msg);
    }
    /* a mapped model refuses forward and training */
    cllm_model *m = NULL;
    cllm_model_options o = infer_opts(8);
    CHECK(cllm_model_load_gguf_mapped(f32, &o, &m, &err) == CLLM_OK, "load: %s", err.msg);
    if (m) {
        CHECK(cllm_model_is_mapped(m), "is mapped");
        int32_t t2[2] = {1, 2};
        CHECK(cllm_model_forward(m, t2, NULL, 1, 2, NULL, &err) == CLLM_ERR_ARG, "forward refused");
        CHECK(cllm_model_decode_weight_bytes(m) > 0, "weight bytes");
        cllm_model_destroy(m);
    }
    o.training = 1;
    CHECK(cllm_model_load_gguf_mapped(f32, &o, &m, &err) == CLLM_ERR_ARG, "training refused");
}

/* Two threads split the products by rows (one parallel region per product:
 * the integer GEMM for q8_0/q4_0 in row chunks, dequantize + GEMM per
 * 256-row block for f16/bf16, handed out dynamically; decoding one token,
 * row chunks of every part of a view): the logits must match one thread's,
 * for a prompt chunk and token by token. The model is wide enough and the
 * chunk long enough that every product runs in parallel (decode: every
 * view has >= 2^19 weights). */
static void test_model_quant_two_threads_match_one(void) {
    cllm_model_config c = cfg_gpt2();
    c.n_layer = 1, c.n_embd = 512, c.ffn_hidden = 1024;
    enum { N = 40 }; /* 40 x 1024 x 256 multiply-adds: above the float-type threshold (2^22) */
    char f32[128], q[128];
    snprintf(f32, sizeof f32, "%s/wide-f32.gguf", tmpdir);
    make_model_file(&c, f32, 11);
    int32_t tk[N];
    for (int i = 0; i < N; i++) tk[i] = (i * 37 + 5) % c.vocab_size;
    const int V = c.vocab_size, before = cllm_kernels_threads();
    float *a = malloc(sizeof(float) * N * (size_t)V), *b = malloc(sizeof(float) * N * (size_t)V);
    const uint32_t types[4] = {CLLM_GGML_F16, CLLM_GGML_BF16, CLLM_GGML_Q8_0, CLLM_GGML_Q4_0};
    for (int ti = 0; ti < 4; ti++) {
        const char *tn = cllm_ggml_type_name(types[ti]);
        snprintf(q, sizeof q, "%s/wide-%s.gguf", tmpdir, tn);
        cllm_error err = {0};
        CHECK(cllm_quantize_gguf(f32, q, types[ti], NULL, &err) == CLLM_OK, "quantize %s: %s", tn, err.msg);
        cllm_model *m = NULL;
        cllm_model_options o = infer_opts(N);
        CHECK(cllm_model_load_gguf_mapped(q, &o, &m, &err) == CLLM_OK, "load %s: %s", tn, err.msg);
        if (!m) continue;
        for (int step = 1; step <= N; step += N - 1) { /* one chunk of N, then token by token */
            for (int th = 1; th <= 2; th++) {
                cllm_kernels_set_threads(th);
                cllm_model_kv_reset(m, 0);
                for (int p = 0; p < N; p += step) {
                    const float *lg = NULL;
                    CHECK(cllm_model_decode(m, 0, tk + p, step, p, 1, &lg, &err) == CLLM_OK, "decode %s: %s", tn,
                          err.msg);
                    if (lg) memcpy((th == 1 ? a : b) + (size_t)p * V, lg, sizeof(float) * (size_t)step * V);
                }
            }
            cllm_kernels_set_threads(before);
            double scale, d = max_abs_diff(b, a, (size_t)N * V, &scale);
            CHECK(d <= 1e-5 * scale, "%s step %d: 2 threads vs 1 max |logit diff| %.3g (scale %.3g)", tn, step, d,
                  scale); /* order only */
        }
        cllm_model_destroy(m);
    }
    free(a);
    free(b);
}

/* A weight that is NaN or Inf (an fp16 block scale in q8_0, a float in f16, a
 * norm weight) makes every logit non-finite: the mapped load refuses it,
 * naming the tensor (issue: base models used to load with no check), unless
 * skip_weight_check asks for the file as it is. */
static void test_model_quant_non_finite_weights_refused(void) {
    const cllm_model_config c = cfg_llama();
    const char *poison[2] = {"blk.1.ffn_down.weight", "output_norm.weight"};
    const uint32_t types[2] = {CLLM_GGML_F16, CLLM_GGML_Q8_0}; /* the norm stays f32 in both */
    for (int k = 0; k < 2; k++) {
        char f32[160], q[160];
        snprintf(f32, sizeof f32, "%s/nan-%d-f32.gguf", tmpdir, k);
        snprintf(q, sizeof q, "%s/nan-%d.gguf", tmpdir, k);
        cllm_model *m = NULL;
        cllm_error err = {0};
        cllm_model_options o = infer_opts(8);
        CHECK(cllm_model_create(&c, &o, &m, &err) == CLLM_OK, "create: %s", err.msg);
        if (!m) return;
        cllm_model_init_weights(m, 3);
        for (int i = 0; i < cllm_model_num_tensors(m); i++) {
            const cllm_tensor *t = cllm_model_tensor(m, i);
            if (!strcmp(t->name, poison[k])) t->data[t->numel / 2] = k ? INFINITY : NAN;
        }
        CHECK(cllm_model_save_gguf(m, f32, NULL, &err) == CLLM_OK, "save: %s", err.msg);
        cllm_model_destroy(m);
        cllm_quantize_stats s;
        CHECK(cllm_quantize_gguf(f32, q, types[k], &s, &err) == CLLM_OK, "quantize: %s", err.msg);
        o.kv_slots = 1, o.kv_context = 8;
        m = NULL;
        CHECK(cllm_model_load_gguf_mapped(q, &o, &m, &err) == CLLM_ERR_NUMERIC && !m && strstr(err.msg, poison[k]) &&
                  strstr(err.msg, q),
              "%s poisoned: refused naming it: %s", poison[k], err.msg);
        o.skip_weight_check = 1;
        CHECK(cllm_model_load_gguf_mapped(q, &o, &m, &err) == CLLM_OK && m, "skip_weight_check loads it: %s", err.msg);
        cllm_model_destroy(m);
    }
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cllm-test-mquant-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    TEST_RUN(test_model_quant_gpt2_all_types);
    TEST_RUN(test_model_quant_llama_all_types);
    TEST_RUN(test_model_quant_gpt2_other_types);
    TEST_RUN(test_model_quant_llama_other_types);
    TEST_RUN(test_model_quant_kquant_fallbacks);
    TEST_RUN(test_model_quant_bf16_onednn_route);
    TEST_RUN(test_model_quant_ragged_rows_fall_back_to_f16);
    TEST_RUN(test_model_quant_bad_input);
    TEST_RUN(test_model_quant_two_threads_match_one);
    TEST_RUN(test_model_quant_non_finite_weights_refused);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_finish();
}
