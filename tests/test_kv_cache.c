/*
 * test_kv_cache.c: the optional q8_0 and f16 KV caches
 * (cllm_model_options.kv_type) against the f32 cache: decode logits for learned-position MHA and
 * RoPE/SwiGLU GQA and MQA shapes, a prompt fed in chunks (GEMM path) against one
 * token at a time, two slots decoded as one batch, rewinding a slot,
 * perplexity/KL of a q8_0-cache model against its f32-cache twin, the
 * attention kernel (AVX-512 against the scalar reference, and the reference
 * against plain f32 math on the dequantized rows), the memory accounting (34 bytes per 32 values instead of 128), and the option
 * checks. Weights are random (N(0, 0.02)) with the QKV projection scaled up
 * so that attention is sharp: with near-uniform attention a broken cache
 * would hide behind averaging.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/formats/ggml_types.h"
#include "cllm/kernels/kv_attn.h"
#include "cllm/kernels/quant.h"
#include "cllm/model/model.h"
#include "cllm/infer/perplexity.h"
#include "cllm/core/rng.h"
#include "test.h"

#define V 97
#define CTX 64

/* preset shape with HS a multiple of 32 (q8_0 blocks cover a head exactly). */
static cllm_model_config shape(const char *preset) {
    cllm_model_config c;
    cllm_error err;
    const int mqa = !strcmp(preset, "tiny-llama-mqa");
    if (mqa) preset = "tiny-llama";
    if (cllm_model_preset(preset, &c, &err) != CLLM_OK) abort();
    c.vocab_size = V;
    c.context_length = CTX;
    c.n_layer = 2;
    c.n_embd = 128;
    if (!strcmp(preset, "tiny-gpt2")) { /* MHA, learned positions, HS 64 */
        c.n_head = 2;
        c.n_kv_head = 2;
        c.ffn_hidden = 256;
    } else { /* tiny-llama: GQA 4/2, RoPE, SwiGLU, HS 32 */
        c.n_head = 4;
        c.n_kv_head = 2;
        c.ffn_hidden = 192;
        if (mqa) c.n_kv_head = 1; /* MQA: every query head reads the one K/V head */
    }
    return c;
}

static cllm_model *make(const cllm_model_config *c, int kv_type, int slots, int max_seq) {
    cllm_model_options o = cllm_model_default_options();
    o.max_seq = max_seq;
    o.kv_slots = slots;
    o.kv_type = kv_type;
    cllm_model *m = NULL;
    cllm_error err;
    if (cllm_model_create(c, &o, &m, &err) != CLLM_OK) {
        fprintf(stderr, "create: %s\n", err.msg);
        return NULL;
    }
    cllm_model_init_weights(m, 11);
    /* Sharpen attention: scores scale with the square of this factor. */
    for (int l = 0; l < c->n_layer; l++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.attn_qkv.weight", l);
        const cllm_tensor *t = cllm_model_find_tensor(m, name);
        for (size_t i = 0; t && i < t->numel; i++) t->data[i] *= 6.0f;
    }
    return m;
}

static void tokens(int32_t *t, int n, uint64_t seed) {
    cllm_rng r;
    cllm_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) t[i] = (int32_t)cllm_rng_below(&r, V);
}

/* max |a - b| over n, and max |b| (the scale the difference is judged against). */
static double max_diff(const float *a, const float *b, int n, double *scale) {
    double d = 0, s = 0;
    for (int i = 0; i < n; i++) {
        if (fabs(a[i] - b[i]) > d || !isfinite(a[i])) d = isfinite(a[i]) ? fabs(a[i] - b[i]) : INFINITY;
        if (fabs(b[i]) > s) s = fabs(b[i]);
    }
    if (scale) *scale = s;
    return d;
}

/* Decodes tokens[n] one at a time into slot 0 and keeps every step's logits. */
static int decode_steps(cllm_model *m, const int32_t *t, int n, float *out) {
    cllm_error err;
    for (int i = 0; i < n; i++) {
        const float *lg;
        if (cllm_model_decode(m, 0, &t[i], 1, i, 0, &lg, &err) != CLLM_OK) {
            fprintf(stderr, "decode: %s\n", err.msg);
            return -1;
        }
        memcpy(out + (size_t)i * V, lg, V * sizeof(float));
    }
    return 0;
}

/* q8_0-cache logits stay within 6% of the f32-cache logits' largest
 * magnitude at every one of 48 positions, yet differ from them (the cache
 * really is quantized). The bound: q8_0 rounds each K/V value by up to
 * amax/254 of its 32-block (0.4%), the query adds the same; the scaled QKV
 * weights make attention sharp (scores of a few units), which amplifies
 * score errors through exp(), and random weights give small logits so the
 * relative measure is harsh. Measured: 3.0% (learned MHA), 2.5% (RoPE
 * GQA) and 1.6% (MQA) at the worst position; the KL test below
 * shows what it costs. f16 rounds each K/V value by at most 2^-11
 * relative (the query stays f32): bound 0.6%, a tenth of q8_0's. */
static void cache_close_to_f32(const char *preset, int kv_type, double bound) {
    cllm_model_config c = shape(preset);
    cllm_model *f = make(&c, CLLM_GGML_F32, 1, 16), *q = make(&c, kv_type, 1, 16);
    const char *tn = cllm_ggml_type_name((uint32_t)kv_type);
    CHECK(f && q, "create %s", preset);
    enum { N = 48 };
    int32_t t[N];
    tokens(t, N, 5);
    float *lf = malloc(sizeof(float) * N * V), *lq = malloc(sizeof(float) * N * V);
    if (f && q && lf && lq && decode_steps(f, t, N, lf) == 0 && decode_steps(q, t, N, lq) == 0) {
        double worst = 0, scale;
        for (int i = 0; i < N; i++) {
            double d = max_diff(lq + (size_t)i * V, lf + (size_t)i * V, V, &scale);
            if (d / scale > worst) worst = d / scale;
        }
        fprintf(stderr, "  %s: %s vs f32 cache, worst relative logit difference %.3g\n", preset, tn, worst);
        CHECK(worst <= bound, "%s: %s logits differ by %.3g of the logit scale (bound %g)", preset, tn, worst, bound);
        CHECK(worst > 0, "%s: %s logits are bit-identical to f32: the cache is not rounded", preset, tn);
    } else {
        CHECK(0, "decode %s", preset);
    }
    free(lf);
    free(lq);
    cllm_model_destroy(f);
    cllm_model_destroy(q);
}

static void test_kv_cache_q8_learned_mha_close_to_f32(void) { cache_close_to_f32("tiny-gpt2", CLLM_GGML_Q8_0, 0.06); }
static void test_kv_cache_q8_rope_gqa_close_to_f32(void) { cache_close_to_f32("tiny-llama", CLLM_GGML_Q8_0, 0.06); }
static void test_kv_cache_q8_rope_mqa_close_to_f32(void) { cache_close_to_f32("tiny-llama-mqa", CLLM_GGML_Q8_0, 0.06); }
static void test_kv_cache_f16_close_to_f32(void) {
    cache_close_to_f32("tiny-gpt2", CLLM_GGML_F16, 0.006);
    cache_close_to_f32("tiny-llama", CLLM_GGML_F16, 0.006);
    cache_close_to_f32("tiny-llama-mqa", CLLM_GGML_F16, 0.006);
}

/* A 40-token prompt fed in chunks of 16, 16, 8 (dequantize + GEMM) gives the
 * same last-token logits as feeding it one token at a time (integer dots
 * with a q8_0 query), within 1% of the logit scale: both read the same
 * stored blocks, they differ only by the query's q8_0 rounding (<= 0.4%) and
 * summation order. Then one more decoded token after the chunks also agrees.
 * f16: both paths multiply the f32 query with the same widened values, so
 * summation order alone (1e-4). */
static void chunked(const char *preset, int kv_type, double tol) {
    cllm_model_config c = shape(preset);
    cllm_model *a = make(&c, kv_type, 1, 16), *b = make(&c, kv_type, 1, 16);
    CHECK(a && b, "create %s", preset);
    enum { N = 41 };
    int32_t t[N];
    tokens(t, N, 9);
    float *steps = malloc(sizeof(float) * N * V), last[V];
    cllm_error err;
    const float *lg = NULL;
    if (a && b && steps && decode_steps(a, t, N, steps) == 0) {
        int ok = cllm_model_decode(b, 0, t, 16, 0, 0, &lg, &err) == CLLM_OK &&
                 cllm_model_decode(b, 0, t + 16, 16, 16, 0, &lg, &err) == CLLM_OK &&
                 cllm_model_decode(b, 0, t + 32, 8, 32, 1, &lg, &err) == CLLM_OK;
        CHECK(ok, "chunks: %s", err.msg);
        if (ok) {
            memcpy(last, lg + 7 * V, sizeof last); /* all_logits: row 7 is position 39 */
            double scale, d = max_diff(last, steps + 39 * V, V, &scale);
            CHECK(d <= tol * scale, "%s: chunked vs stepwise differ by %.3g (scale %.3g)", preset, d, scale);
            CHECK(cllm_model_decode(b, 0, t + 40, 1, 40, 0, &lg, &err) == CLLM_OK, "%s", err.msg);
            d = max_diff(lg, steps + 40 * V, V, &scale);
            CHECK(d <= tol * scale, "%s: token after chunks differs by %.3g (scale %.3g)", preset, d, scale);
        }
    } else {
        CHECK(0, "stepwise decode %s", preset);
    }
    free(steps);
    cllm_model_destroy(a);
    cllm_model_destroy(b);
}

/* The architectures beyond gpt2/llama through the KV cache: a 40-token
 * sequence decoded one token at a time, and as chunks of 16, 16, 8, gives
 * the logits of one full forward at every position. f32 cache: the same
 * products in another order, 1e-4 of the logit scale; q8_0 / f16: the
 * bounds of cache_close_to_f32 above. Variants: Mistral's sliding window
 * (4, so most positions see a cut-off window), Qwen2 (q/k/v biases, NEOX
 * rope), linear and Llama-3.1 rope scaling. */
static void arch_decode_matches_forward(const char *what, cllm_model_config c, int kv_type, double tol) {
    enum { N = 40 };
    cllm_model *m = make(&c, kv_type, 1, N);
    CHECK(m, "create %s", what);
    int32_t t[N];
    tokens(t, N, 21);
    float *fw = malloc(sizeof(float) * N * V), *st = malloc(sizeof(float) * N * V);
    cllm_error err;
    if (m && fw && st && cllm_model_forward(m, t, NULL, 1, N, NULL, &err) == CLLM_OK) {
        memcpy(fw, cllm_model_logits(m), sizeof(float) * N * V);
        double worst = 0, scale;
        if (decode_steps(m, t, N, st) == 0)
            for (int i = 0; i < N; i++) {
                double d = max_diff(st + (size_t)i * V, fw + (size_t)i * V, V, &scale);
                if (d / scale > worst) worst = d / scale;
            }
        else
            worst = INFINITY;
        const float *lg = NULL;
        const int c0[3] = {0, 16, 32}, cn[3] = {16, 16, 8};
        double worst_chunk = 0;
        for (int k = 0; k < 3; k++) {
            if (cllm_model_decode(m, 0, t + c0[k], cn[k], c0[k], 1, &lg, &err) != CLLM_OK) {
                worst_chunk = INFINITY;
                break;
            }
            for (int i = 0; i < cn[k]; i++) {
                double d = max_diff(lg + (size_t)i * V, fw + (size_t)(c0[k] + i) * V, V, &scale);
                if (d / scale > worst_chunk) worst_chunk = d / scale;
            }
        }
        fprintf(stderr, "  %s (%s cache): decode vs forward, worst relative logit difference %.3g stepwise, %.3g chunked\n",
                what, cllm_ggml_type_name((uint32_t)kv_type), worst, worst_chunk);
        CHECK(worst <= tol, "%s: stepwise decoding differs from forward by %.3g (bound %g)", what, worst, tol);
        CHECK(worst_chunk <= tol, "%s: chunked decoding differs from forward by %.3g (bound %g)", what, worst_chunk, tol);
    } else {
        CHECK(0, "%s: forward: %s", what, err.msg);
    }
    free(fw);
    free(st);
    cllm_model_destroy(m);
}

static void test_kv_cache_archs_decode_match_forward(void) {
    static const int types[3] = {CLLM_GGML_F32, CLLM_GGML_F16, CLLM_GGML_Q8_0};
    static const double tols[3] = {1e-4, 0.006, 0.06};
    for (int k = 0; k < 3; k++) {
        cllm_model_config c = shape("tiny-mistral");
        CHECK(c.sliding_window == 4, "tiny-mistral has window 4");
        arch_decode_matches_forward("mistral window 4", c, types[k], tols[k]);
        arch_decode_matches_forward("qwen2", shape("tiny-qwen2"), types[k], tols[k]);
        c = shape("tiny-llama");
        c.rope_scaling = CLLM_ROPE_SCALING_LINEAR, c.rope_factor = 4.0f;
        arch_decode_matches_forward("llama linear rope x4", c, types[k], tols[k]);
        c.rope_scaling = CLLM_ROPE_SCALING_LLAMA3, c.rope_factor = 8.0f, c.rope_orig_context = 64;
        arch_decode_matches_forward("llama llama3 rope", c, types[k], tols[k]);
    }
}

static void test_kv_cache_q8_chunked_prompt_matches_stepwise(void) {
    chunked("tiny-gpt2", CLLM_GGML_Q8_0, 0.01);
    chunked("tiny-llama", CLLM_GGML_Q8_0, 0.01);
}

static void test_kv_cache_f16_chunked_prompt_matches_stepwise(void) {
    chunked("tiny-gpt2", CLLM_GGML_F16, 1e-4);
    chunked("tiny-llama", CLLM_GGML_F16, 1e-4);
}

/* Two slots with prompts of different lengths, then three steps decoded as
 * one batch (cllm_model_decode_batch) equal the same steps decoded slot by
 * slot on a twin model: same stored blocks and the same quantized queries,
 * so only GEMM vs mat-vec rounding differs (1e-4 of the logit scale). The
 * same for the f16 cache. */
static void two_slots_batch(int kv_type) {
    cllm_model_config c = shape("tiny-llama");
    cllm_model *a = make(&c, kv_type, 2, 8), *b = make(&c, kv_type, 2, 8);
    CHECK(a && b, "create");
    if (!a || !b) goto done;
    cllm_error err;
    int32_t p[12];
    tokens(p, 12, 21);
    CHECK(cllm_model_decode(a, 0, p, 5, 0, 0, NULL, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_decode(a, 1, p + 5, 7, 0, 0, NULL, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_decode(b, 0, p, 5, 0, 0, NULL, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_decode(b, 1, p + 5, 7, 0, 0, NULL, &err) == CLLM_OK, "%s", err.msg);
    for (int step = 0; step < 3; step++) {
        int slots[2] = {0, 1}, pos[2] = {5 + step, 7 + step};
        int32_t tk[2] = {(int32_t)(step * 17 % V), (int32_t)(step * 29 % V + 1)};
        const float *lb;
        float batch[2 * V];
        CHECK(cllm_model_decode_batch(a, 2, slots, tk, pos, &lb, &err) == CLLM_OK, "%s", err.msg);
        memcpy(batch, lb, sizeof batch);
        for (int s = 0; s < 2; s++) {
            const float *ls;
            CHECK(cllm_model_decode(b, s, &tk[s], 1, pos[s], 0, &ls, &err) == CLLM_OK, "%s", err.msg);
            double scale, d = max_diff(batch + s * V, ls, V, &scale);
            CHECK(d <= 1e-4 * scale, "step %d slot %d: batch vs single differ by %.3g (scale %.3g)", step, s, d,
                  scale);
        }
    }
done:
    cllm_model_destroy(a);
    cllm_model_destroy(b);
}

static void test_kv_cache_q8_two_slots_batch_matches_single(void) { two_slots_batch(CLLM_GGML_Q8_0); }
static void test_kv_cache_f16_two_slots_batch_matches_single(void) { two_slots_batch(CLLM_GGML_F16); }

/* Rewinding a slot to position 10 and decoding other tokens from there gives
 * the logits of a fresh slot fed the same tokens (prefix reuse in the
 * server): the stale rows beyond 10 are overwritten and never read. The two
 * runs do the same arithmetic, so they agree to 1e-6 of the scale. */
static void test_kv_cache_q8_rewind_equals_fresh(void) {
    cllm_model_config c = shape("tiny-gpt2");
    cllm_model *m = make(&c, CLLM_GGML_Q8_0, 2, 16);
    CHECK(m != NULL, "create");
    if (!m) return;
    cllm_error err;
    int32_t a[30], b[30];
    tokens(a, 30, 1);
    memcpy(b, a, 10 * sizeof *b);
    tokens(b + 10, 20, 2);
    const float *lg;
    float r[V];
    CHECK(cllm_model_decode(m, 0, a, 16, 0, 0, &lg, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_decode(m, 0, a + 16, 14, 16, 0, &lg, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_kv_length(m, 0) == 30, "length %d", cllm_model_kv_length(m, 0));
    /* rewind: positions 10.. of slot 0 get b's tokens */
    CHECK(cllm_model_decode(m, 0, b + 10, 16, 10, 0, &lg, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_decode(m, 0, b + 26, 1, 26, 0, &lg, &err) == CLLM_OK, "%s", err.msg);
    memcpy(r, lg, sizeof r);
    CHECK(cllm_model_kv_length(m, 0) == 27, "length after rewind %d", cllm_model_kv_length(m, 0));
    /* fresh: slot 1 fed b from scratch in the same chunking */
    CHECK(cllm_model_decode(m, 1, b, 10, 0, 0, &lg, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_decode(m, 1, b + 10, 16, 10, 0, &lg, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_decode(m, 1, b + 26, 1, 26, 0, &lg, &err) == CLLM_OK, "%s", err.msg);
    double scale, d = max_diff(r, lg, V, &scale);
    CHECK(d <= 1e-6 * scale, "rewound vs fresh differ by %.3g (scale %.3g)", d, scale);
    cllm_model_destroy(m);
}

/* Perplexity of 4 chunks of 32 tokens with a q8_0 cache against the same
 * weights with an f32 cache (the f32 model as the KL base): perplexity
 * within 1% and mean KL under 1e-3 nats. Random text on random weights is
 * a harsh case (nothing is predictable, every logit matters). f16: within
 * 0.1% and 1e-5 nats. */
static void perplexity_close_to_f32(int kv_type, double ppl_rel, double kl_max) {
    cllm_model_config c = shape("tiny-llama");
    cllm_model *f = make(&c, CLLM_GGML_F32, 1, 32), *q = make(&c, kv_type, 1, 32);
    CHECK(f && q, "create");
    if (f && q) {
        int32_t t[128];
        tokens(t, 128, 77);
        cllm_perplexity_result r;
        cllm_error err;
        CHECK(cllm_perplexity_eval(q, f, t, 128, 32, &r, &err) == CLLM_OK, "%s", err.msg);
        fprintf(stderr, "  ppl %s %.4f f32 %.4f, KL mean %.3g max %.3g, top-1 agree %.3f\n",
                cllm_ggml_type_name((uint32_t)kv_type), r.ppl, r.base_ppl, r.kl_mean, r.kl_max, r.top1_agree);
        CHECK_NEAR(r.ppl, r.base_ppl, 0, ppl_rel, "cache perplexity vs f32");
        CHECK(r.kl_mean < kl_max && r.kl_mean >= 0, "KL mean %.3g (bound %g)", r.kl_mean, kl_max);
    }
    cllm_model_destroy(f);
    cllm_model_destroy(q);
}

static void test_kv_cache_q8_perplexity_close_to_f32(void) { perplexity_close_to_f32(CLLM_GGML_Q8_0, 0.01, 1e-3); }
static void test_kv_cache_f16_perplexity_close_to_f32(void) { perplexity_close_to_f32(CLLM_GGML_F16, 1e-3, 1e-5); }

/* K and V take 34 bytes per 32 values instead of 128: exactly 128/34 =
 * 3.76x less, for any shape; the estimate equals what create allocates
 * (the whole KV block, decode scratch included, is smaller too). */
static void test_kv_cache_q8_memory_3_76x_smaller(void) {
    const char *presets[] = {"gpt2", "llama-110m", "tiny-llama"};
    for (int i = 0; i < 3; i++) {
        cllm_model_config c = i == 2 ? shape("tiny-llama") : shape("tiny-gpt2");
        cllm_error err;
        if (i < 2 && cllm_model_preset(presets[i], &c, &err) != CLLM_OK) abort();
        cllm_model_options o = cllm_model_default_options();
        o.kv_slots = 2;
        cllm_model_memory mf, mq;
        CHECK(cllm_model_memory_estimate(&c, &o, &mf, &err) == CLLM_OK, "%s", err.msg);
        o.kv_type = CLLM_GGML_Q8_0;
        CHECK(cllm_model_memory_estimate(&c, &o, &mq, &err) == CLLM_OK, "%s", err.msg);
        const double per_row = 2.0 * c.n_layer * 2 * c.context_length * (c.n_kv_head * (c.n_embd / c.n_head));
        CHECK(mf.kv_store_bytes == (size_t)(per_row * 4), "%s: f32 K+V %zu bytes", presets[i], mf.kv_store_bytes);
        CHECK(mq.kv_store_bytes == (size_t)(per_row / 32 * 34), "%s: q8_0 K+V %zu bytes", presets[i],
              mq.kv_store_bytes);
        CHECK_NEAR((double)mf.kv_store_bytes / (double)mq.kv_store_bytes, 128.0 / 34.0, 1e-12, 0,
                   "K+V ratio (exact block arithmetic)");
        CHECK(mq.kv_cache_bytes < mf.kv_cache_bytes && mq.total_bytes < mf.total_bytes, "%s: totals", presets[i]);
        cllm_model_memory mh;
        o.kv_type = CLLM_GGML_F16;
        CHECK(cllm_model_memory_estimate(&c, &o, &mh, &err) == CLLM_OK, "%s", err.msg);
        CHECK(mh.kv_store_bytes == (size_t)(per_row * 2), "%s: f16 K+V %zu bytes", presets[i], mh.kv_store_bytes);
    }
}

/* kv_type other than f32/f16/q8_0 and a q8_0 cache on a head size that is
 * not a multiple of 32 are refused with the field named; f16 takes any. */
static void test_kv_cache_q8_option_checks(void) {
    cllm_model_config c;
    cllm_error err;
    if (cllm_model_preset("tiny-llama", &c, &err) != CLLM_OK) abort(); /* HS 8 */
    cllm_model_options o = cllm_model_default_options();
    o.max_seq = 8;
    o.kv_slots = 1;
    cllm_model *m = NULL;
    o.kv_type = CLLM_GGML_Q4_0;
    CHECK(cllm_model_create(&c, &o, &m, &err) == CLLM_ERR_ARG && strstr(err.msg, "kv_type") && !m, "q4_0 cache: %s",
          err.msg);
    o.kv_type = CLLM_GGML_Q8_0;
    CHECK(cllm_model_create(&c, &o, &m, &err) == CLLM_ERR_ARG && strstr(err.msg, "head size") && !m, "HS 8: %s",
          err.msg);
    cllm_model_memory mem;
    CHECK(cllm_model_memory_estimate(&c, &o, &mem, &err) == CLLM_ERR_ARG, "estimate accepted HS 8");
    o.kv_type = CLLM_GGML_F16; /* any head size */
    CHECK(cllm_model_create(&c, &o, &m, &err) == CLLM_OK && m, "f16 cache on HS 8: %s", err.msg);
    cllm_model_destroy(m);
}

/* Random q8_0 rows: n positions of `heads` heads of HS values, row stride
 * heads * HS/32 blocks; the query head from f32 values. */
static void q8_rows(uint8_t *rows, float *deq, int n, int heads, int HS, uint64_t seed) {
    const cllm_quant_kernels *qk = cllm_quant_kernels_backend(CLLM_QUANT_REFERENCE);
    const int W = heads * HS;
    float *x = malloc(sizeof(float) * (size_t)W);
    cllm_rng r;
    cllm_rng_seed(&r, seed);
    for (int j = 0; j < n; j++) {
        for (int d = 0; d < W; d++) x[d] = cllm_rng_float(&r) * 4.0f - 2.0f;
        qk->quantize_q8_0(x, rows + (size_t)j * W / 32 * 34, W);
        qk->dequant_q8_0(rows + (size_t)j * W / 32 * 34, deq + (size_t)j * W, W);
    }
    free(x);
}

/* For head sizes 32..288 (288: more than 8 blocks, the SIMD fallback),
 * ragged position counts and a head in the middle of a 3-head row: (1) the
 * reference equals attention computed in double on the dequantized rows
 * with the query's dequantized blocks (1e-5 relative: float vs double
 * sums), (2) the AVX-512 and AVX2 kernels, where this CPU has them, equal
 * the reference to 1e-5 of the output's scale (summation order only). */
static void test_kv_cache_attend_kernel_matches_reference(void) {
    const int hs_list[] = {32, 64, 96, 128, 288}, n_list[] = {1, 2, 17, 100};
    cllm_kv_attend_fn simds[2] = {cllm_kv_attend_q8_0_avx512_get(), cllm_kv_attend_q8_0_avx2_get()};
    fprintf(stderr, "  dispatched: %s\n", cllm_kv_attend_name());
    for (int a = 0; a < 5; a++)
        for (int c = 0; c < 4; c++) {
            const int HS = hs_list[a], n = n_list[c], heads = 3, W = heads * HS;
            const size_t rowb = (size_t)W / 32 * 34, hoff = (size_t)HS / 32 * 34; /* head 1 */
            uint8_t *k = malloc(rowb * n), *v = malloc(rowb * n), *q = malloc(rowb);
            float *kd = malloc(sizeof(float) * W * n), *vd = malloc(sizeof(float) * W * n), *qd = malloc(sizeof(float) * W);
            float *out = malloc(sizeof(float) * HS), *out2 = malloc(sizeof(float) * HS), *sc = malloc(sizeof(float) * n);
            double *p = malloc(sizeof(double) * n);
            q8_rows(k, kd, n, heads, HS, 100 + a * 10 + c);
            q8_rows(v, vd, n, heads, HS, 200 + a * 10 + c);
            q8_rows(q, qd, 1, heads, HS, 300 + a * 10 + c);
            const float scale = 1.0f / sqrtf((float)HS);
            cllm_kv_attend_q8_0_reference(out, sc, q + hoff, k + hoff, v + hoff, rowb, n, HS, scale);
            double mx = -INFINITY, sum = 0, worst = 0, size = 0;
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int d = 0; d < HS; d++) s += (double)qd[HS + d] * kd[(size_t)j * W + HS + d];
                p[j] = s * scale;
                if (p[j] > mx) mx = p[j];
            }
            for (int j = 0; j < n; j++) sum += (p[j] = exp(p[j] - mx));
            for (int d = 0; d < HS; d++) {
                double o = 0;
                for (int j = 0; j < n; j++) o += p[j] / sum * vd[(size_t)j * W + HS + d];
                if (fabs(o - out[d]) > worst) worst = fabs(o - out[d]);
                if (fabs(o) > size) size = fabs(o);
            }
            CHECK(worst <= 1e-5 * (size + 1e-3), "HS %d n %d: reference off by %.3g (size %.3g)", HS, n, worst, size);
            for (int s = 0; s < 2; s++) {
                if (!simds[s]) continue;
                simds[s](out2, sc, q + hoff, k + hoff, v + hoff, rowb, n, HS, scale);
                double d2 = 0;
                for (int d = 0; d < HS; d++)
                    if (fabs(out2[d] - out[d]) > d2 || !isfinite(out2[d])) d2 = isfinite(out2[d]) ? fabs(out2[d] - out[d]) : INFINITY;
                CHECK(d2 <= 1e-5 * (size + 1e-3), "HS %d n %d: %s off by %.3g", HS, n, s ? "avx2" : "avx512", d2);
            }
            free(k), free(v), free(q), free(kd), free(vd), free(qd), free(out), free(out2), free(sc), free(p);
        }
}

/* f16 rows for head sizes 8..200 (200: not a multiple of 16, the SIMD
 * fallback; 8: AVX2 only) and ragged position counts, head 1 of a 3-head
 * row: (1) the reference equals attention in double on the widened rows
 * with the f32 query (1e-5 relative), (2) the AVX-512 and AVX2 kernels,
 * where this CPU has them, equal the reference to 1e-5 of the output's
 * scale (summation order only). */
static void test_kv_cache_attend_f16_kernel_matches_reference(void) {
    const int hs_list[] = {8, 64, 128, 200, 256}, n_list[] = {1, 2, 17, 100};
    cllm_kv_attend_fn simds[2] = {cllm_kv_attend_f16_avx512_get(), cllm_kv_attend_f16_avx2_get()};
    cllm_rng r;
    cllm_rng_seed(&r, 41);
    for (int a = 0; a < 5; a++)
        for (int c = 0; c < 4; c++) {
            const int HS = hs_list[a], n = n_list[c], W = 3 * HS;
            const size_t rowb = (size_t)W * 2, hoff = (size_t)HS * 2; /* head 1 */
            uint16_t *k = malloc(rowb * n), *v = malloc(rowb * n);
            float *q = malloc(sizeof(float) * HS), *out = malloc(sizeof(float) * HS), *out2 = malloc(sizeof(float) * HS);
            float *sc = malloc(sizeof(float) * n);
            double *p = malloc(sizeof(double) * n);
            for (int i = 0; i < W * n; i++) {
                k[i] = cllm_fp32_to_fp16(cllm_rng_float(&r) * 4.0f - 2.0f);
                v[i] = cllm_fp32_to_fp16(cllm_rng_float(&r) * 4.0f - 2.0f);
            }
            for (int d = 0; d < HS; d++) q[d] = cllm_rng_float(&r) * 4.0f - 2.0f;
            const float scale = 1.0f / sqrtf((float)HS);
            const uint8_t *kh = (const uint8_t *)k + hoff, *vh = (const uint8_t *)v + hoff;
            cllm_kv_attend_f16_reference(out, sc, q, kh, vh, rowb, n, HS, scale);
            double mx = -INFINITY, sum = 0, worst = 0, size = 0;
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int d = 0; d < HS; d++) s += (double)q[d] * cllm_fp16_to_fp32(k[(size_t)j * W + HS + d]);
                p[j] = s * scale;
                if (p[j] > mx) mx = p[j];
            }
            for (int j = 0; j < n; j++) sum += (p[j] = exp(p[j] - mx));
            for (int d = 0; d < HS; d++) {
                double o = 0;
                for (int j = 0; j < n; j++) o += p[j] / sum * cllm_fp16_to_fp32(v[(size_t)j * W + HS + d]);
                if (fabs(o - out[d]) > worst) worst = fabs(o - out[d]);
                if (fabs(o) > size) size = fabs(o);
            }
            CHECK(worst <= 1e-5 * (size + 1e-3), "f16 HS %d n %d: reference off by %.3g (size %.3g)", HS, n, worst,
                  size);
            for (int s = 0; s < 2; s++) {
                if (!simds[s]) continue;
                simds[s](out2, sc, q, kh, vh, rowb, n, HS, scale);
                double d2 = 0;
                for (int d = 0; d < HS; d++)
                    if (fabs(out2[d] - out[d]) > d2 || !isfinite(out2[d]))
                        d2 = isfinite(out2[d]) ? fabs(out2[d] - out[d]) : INFINITY;
                CHECK(d2 <= 1e-5 * (size + 1e-3), "f16 HS %d n %d: %s off by %.3g", HS, n, s ? "avx2" : "avx512", d2);
            }
            free(k), free(v), free(q), free(out), free(out2), free(sc), free(p);
        }
}

/* The f32 cache kernel on ragged shapes: head sizes 1..200 (not multiples
 * of 16 included), 1..100 positions, 1..3 KV heads serving 1..4 query heads
 * each, a slice starting at KV head 1 of a wider row (so rows are not
 * contiguous), ld_scores above n. (1) The reference equals attention in
 * double (1e-5 relative); (2) the AVX-512 and AVX2 versions, where this CPU
 * has them, equal the reference to 1e-5 of the output's scale (summation
 * order and the vector exponential only), and so does the dispatched one. */
static void test_kv_cache_attend_f32_kernel_matches_reference(void) {
    const int hs_list[] = {1, 8, 17, 64, 128, 200}, n_list[] = {1, 2, 17, 100};
    cllm_kv_attend_f32_fn simds[3] = {cllm_kv_attend_f32_avx512_get(), cllm_kv_attend_f32_avx2_get(),
                                      cllm_kv_attend_f32};
    const char *names[3] = {"avx512", "avx2", "dispatched"};
    cllm_rng r;
    cllm_rng_seed(&r, 43);
    for (int a = 0; a < 6; a++)
        for (int c = 0; c < 4; c++) {
            const int HS = hs_list[a], n = n_list[c], nk = 1 + (a + c) % 3, G = 1 + (a * 3 + c) % 4, H = nk * G;
            const size_t stride = (size_t)(nk + 2) * HS, ld = (size_t)n + 3; /* KV heads 1..nk of nk + 2 */
            float *k = malloc(sizeof(float) * stride * n), *v = malloc(sizeof(float) * stride * n);
            float *q = malloc(sizeof(float) * H * HS), *out = malloc(sizeof(float) * H * HS);
            float *out2 = malloc(sizeof(float) * H * HS), *sc = malloc(sizeof(float) * H * ld);
            double *p = malloc(sizeof(double) * n);
            for (size_t i = 0; i < stride * n; i++) {
                k[i] = cllm_rng_float(&r) * 4.0f - 2.0f;
                v[i] = cllm_rng_float(&r) * 4.0f - 2.0f;
            }
            for (int i = 0; i < H * HS; i++) q[i] = cllm_rng_float(&r) * 4.0f - 2.0f;
            const float scale = 1.0f / sqrtf((float)HS);
            const float *kh = k + HS, *vh = v + HS;
            cllm_kv_attend_f32_reference(out, sc, ld, q, kh, vh, stride, n, nk, G, HS, scale);
            double worst = 0, size = 0;
            for (int h = 0; h < H; h++) {
                const size_t ko = (size_t)(h / G) * HS;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < n; j++) {
                    double s = 0;
                    for (int d = 0; d < HS; d++) s += (double)q[h * HS + d] * kh[(size_t)j * stride + ko + d];
                    p[j] = s * scale;
                    if (p[j] > mx) mx = p[j];
                }
                for (int j = 0; j < n; j++) sum += (p[j] = exp(p[j] - mx));
                for (int d = 0; d < HS; d++) {
                    double o = 0;
                    for (int j = 0; j < n; j++) o += p[j] / sum * vh[(size_t)j * stride + ko + d];
                    if (fabs(o - out[h * HS + d]) > worst) worst = fabs(o - out[h * HS + d]);
                    if (fabs(o) > size) size = fabs(o);
                }
            }
            CHECK(worst <= 1e-5 * (size + 1e-3), "f32 HS %d n %d nk %d G %d: reference off by %.3g (size %.3g)", HS,
                  n, nk, G, worst, size);
            for (int s = 0; s < 3; s++) {
                if (!simds[s]) continue;
                simds[s](out2, sc, ld, q, kh, vh, stride, n, nk, G, HS, scale);
                double d2 = 0;
                for (int d = 0; d < H * HS; d++)
                    if (fabs(out2[d] - out[d]) > d2 || !isfinite(out2[d]))
                        d2 = isfinite(out2[d]) ? fabs(out2[d] - out[d]) : INFINITY;
                CHECK(d2 <= 1e-5 * (size + 1e-3), "f32 HS %d n %d nk %d G %d: %s off by %.3g", HS, n, nk, G, names[s],
                      d2);
            }
            free(k), free(v), free(q), free(out), free(out2), free(sc), free(p);
        }
}

int main(void) {
    TEST_RUN(test_kv_cache_attend_f32_kernel_matches_reference);
    TEST_RUN(test_kv_cache_attend_kernel_matches_reference);
    TEST_RUN(test_kv_cache_q8_learned_mha_close_to_f32);
    TEST_RUN(test_kv_cache_q8_rope_gqa_close_to_f32);
    TEST_RUN(test_kv_cache_q8_rope_mqa_close_to_f32);
    TEST_RUN(test_kv_cache_q8_chunked_prompt_matches_stepwise);
    TEST_RUN(test_kv_cache_archs_decode_match_forward);
    TEST_RUN(test_kv_cache_q8_two_slots_batch_matches_single);
    TEST_RUN(test_kv_cache_q8_rewind_equals_fresh);
    TEST_RUN(test_kv_cache_q8_perplexity_close_to_f32);
    TEST_RUN(test_kv_cache_q8_memory_3_76x_smaller);
    TEST_RUN(test_kv_cache_q8_option_checks);
    TEST_RUN(test_kv_cache_attend_f16_kernel_matches_reference);
    TEST_RUN(test_kv_cache_f16_close_to_f32);
    TEST_RUN(test_kv_cache_f16_chunked_prompt_matches_stepwise);
    TEST_RUN(test_kv_cache_f16_two_slots_batch_matches_single);
    TEST_RUN(test_kv_cache_f16_perplexity_close_to_f32);
    return test_finish();
}
