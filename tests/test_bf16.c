/*
 * test_bf16.c: mixed precision (kernels.h "mixed precision", docs/PRECISION.md).
 *
 *   - every bf16 product against the exact product of the same bf16-rounded
 *     operands (cllm_gemm_bf16_reference, double accumulation): ragged
 *     shapes, all four transposes, alpha and beta, strided operands, and
 *     products run concurrently from inside an OpenMP loop (as attention
 *     runs them);
 *   - the weight mirror: a registered tensor is read from its bf16 copy, and
 *     a stale mark after a change makes the next product see the change;
 *   - the kernel oneDNN chose matches the CPU: AMX tiles when cllm sees AMX,
 *     AVX512-BF16 otherwise (tests/test_bf16_cli.sh runs this binary again
 *     with CLLM_CPU_DISABLE=amx to cover the AVX512-BF16 path on an AMX CPU);
 *   - whole models: bf16 gradients within a written tolerance of fp32
 *     gradients (GPT-2-style and Llama-style configs), bit-identical on a
 *     rerun, and cllm_gemm follows the matmul precision.
 * The PyTorch autocast comparison lives in test_model_parity.c.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/kernels/kernels.h"
#include "cllm/formats/ggml_types.h"
#include "cllm/kernels/quant.h"
#include "cllm/model/model.h"
#include "cllm/train/optim.h"
#include "cllm/core/rng.h"
#include "test.h"

/* Fills x[n] with N(0, 1) values. */
static void fill(float *x, size_t n, cllm_rng *rng) {
    for (size_t i = 0; i < n; i++) x[i] = cllm_rng_normal(rng);
}

/* Worst |got - ref| / (sum over k of |a_ik b_kj| + |beta c|): both sides
 * multiply the same bf16 values exactly, so the only difference is f32
 * versus double accumulation, bounded by K f32 roundings of the running sum. */
static double product_error(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                            int ldb, float beta, const float *C0, const float *got, const float *ref, int ldc) {
    double worst = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double mag = fabs(beta * C0[(size_t)i * ldc + j]);
            for (int k = 0; k < K; k++) {
                const float a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                const float b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                mag += fabs((double)alpha * a * b);
            }
            const double d = fabs((double)got[(size_t)i * ldc + j] - ref[(size_t)i * ldc + j]);
            worst = fmax(worst, d / fmax(mag, 1e-30));
        }
    return worst;
}

/* One product of each kind on random operands with padded strides. */
static void check_product(int ta, int tb, int M, int N, int K, float alpha, float beta, cllm_rng *rng) {
    const int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
    const size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = malloc(na * sizeof *A), *B = malloc(nb * sizeof *B), *C0 = malloc(nc * sizeof *C0);
    float *got = malloc(nc * sizeof *got), *ref = malloc(nc * sizeof *ref);
    fill(A, na, rng);
    fill(B, nb, rng);
    fill(C0, nc, rng);
    memcpy(got, C0, nc * sizeof *got);
    memcpy(ref, C0, nc * sizeof *ref);
    cllm_gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, got, ldc);
    cllm_gemm_bf16_reference(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, ref, ldc);
    const double e = product_error(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C0, got, ref, ldc);
    /* f32 accumulation: at most ~K/2 ulps of the running magnitude in the
     * worst order, far less in practice; 2^-24 * 64 covers K up to ~100 at
     * the worst case and any K here on average */
    CHECK(e <= 64 * 0x1p-24 * fmax(1.0, sqrt((double)K)), "ta %d tb %d M %d N %d K %d alpha %g beta %g: error %g", ta,
          tb, M, N, K, alpha, beta, e);
    /* padding columns of C stay untouched */
    for (int i = 0; i < M; i++)
        for (int j = N; j < ldc; j++) CHECK(got[(size_t)i * ldc + j] == C0[(size_t)i * ldc + j], "C padding written");
    free(A);
    free(B);
    free(C0);
    free(got);
    free(ref);
}

static void test_bf16_products_match_reference(void) {
    cllm_rng rng;
    cllm_rng_seed(&rng, 11);
    static const int sizes[] = {1, 3, 17, 64, 65, 130};
    enum { NS = sizeof sizes / sizeof sizes[0] };
    int cases = 0;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int a = 0; a < NS; a++)
                for (int b = 0; b < NS; b++) {
                    const int M = sizes[a], N = sizes[b], K = sizes[(a + b + ta + 2 * tb) % NS];
                    const float alpha = (a + b) % 3 == 0 ? 0.125f : 1.0f;
                    const float beta = (a + 2 * b) % 2 ? 1.0f : 0.0f;
                    check_product(ta, tb, M, N, K, alpha, beta, &rng);
                    cases++;
                }
    check_product(0, 1, 256, 768, 768, 1.0f, 0.0f, &rng); /* a linear layer's forward at GPT-2 width */
    check_product(1, 0, 384, 256, 300, 1.0f, 1.0f, &rng); /* a weight gradient, accumulated */
    fprintf(stderr, "  %d shapes; oneDNN kernel: %s\n", cases + 2, cllm_quant_bf16_onednn_impl());
}

/* bf16 rounding itself: nearest even on the 16 dropped bits, NaN kept. */
static void test_bf16_rounding(void) {
    CHECK(cllm_fp32_to_bf16(1.0f) == 0x3f80, "1.0");
    /* 1 + 2^-8 is exactly halfway between bf16 1.0 and 1 + 2^-7: to even (1.0) */
    CHECK(cllm_fp32_to_bf16(1.0f + 0x1p-8f) == 0x3f80, "tie to even down");
    CHECK(cllm_fp32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82, "tie to even up");
    CHECK(cllm_fp32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81, "above the tie");
    CHECK(isnan(cllm_bf16_to_fp32(cllm_fp32_to_bf16(NAN))), "NaN stays NaN");
    float x[40], ref[40];
    uint16_t y[40];
    cllm_rng rng;
    cllm_rng_seed(&rng, 3);
    fill(x, 40, &rng);
    x[7] = 1.0f + 0x1p-8f;
    for (int i = 0; i < 40; i++) ref[i] = cllm_bf16_to_fp32(cllm_fp32_to_bf16(x[i]));
    /* the product routes round through the quant table's SIMD kernel: same bits */
    const cllm_quant_kernels *k = cllm_quant_kernels_get();
    if (k->round_bf16) {
        k->round_bf16(x, y, 40);
        for (int i = 0; i < 40; i++) CHECK(cllm_bf16_to_fp32(y[i]) == ref[i], "SIMD rounding of x[%d]", i);
    }
}

/* Products from several threads at once (attention runs one per head). */
static void test_bf16_concurrent_products(void) {
    enum { P = 16, T = 48, HS = 32 };
    cllm_rng rng;
    cllm_rng_seed(&rng, 5);
    float *q = malloc(sizeof(float) * P * T * HS), *k = malloc(sizeof(float) * P * T * HS);
    float *got = malloc(sizeof(float) * P * T * T), *ref = malloc(sizeof(float) * P * T * T);
    fill(q, (size_t)P * T * HS, &rng);
    fill(k, (size_t)P * T * HS, &rng);
    for (int rep = 0; rep < 3; rep++) {
#pragma omp parallel for schedule(dynamic)
        for (int p = 0; p < P; p++)
            cllm_gemm_bf16(0, 1, T, T, HS, 0.25f, q + (size_t)p * T * HS, HS, k + (size_t)p * T * HS, HS, 0.0f,
                           got + (size_t)p * T * T, T);
        int mismatches = 0;
        for (int p = 0; p < P; p++) {
            cllm_gemm_bf16_reference(0, 1, T, T, HS, 0.25f, q + (size_t)p * T * HS, HS, k + (size_t)p * T * HS, HS,
                                     0.0f, ref + (size_t)p * T * T, T);
            for (int i = 0; i < T * T; i++)
                mismatches += fabsf(got[(size_t)p * T * T + i] - ref[(size_t)p * T * T + i]) > 1e-4f;
        }
        CHECK(mismatches == 0, "round %d: %d elements differ from the reference", rep, mismatches);
    }
    free(q);
    free(k);
    free(got);
    free(ref);
}

/* A registered weight is read from its copy until marked stale. */
static void test_bf16_mirror(void) {
    enum { M = 8, N = 40, K = 64 };
    cllm_rng rng;
    cllm_rng_seed(&rng, 9);
    float *x = malloc(sizeof(float) * M * K), *w = malloc(sizeof(float) * N * K);
    float *got = malloc(sizeof(float) * M * N), *ref = malloc(sizeof(float) * M * N);
    fill(x, (size_t)M * K, &rng);
    fill(w, (size_t)N * K, &rng);
    CHECK(cllm_bf16_mirror_add(w, (size_t)N * K), "mirror_add");
    CHECK(cllm_bf16_mirror_bytes() == (size_t)N * K * 2, "mirror bytes %zu", cllm_bf16_mirror_bytes());
    /* a view inside the tensor (rows 8..39) reads the copy at the same offset */
    cllm_gemm_bf16(0, 1, M, N - 8, K, 1.0f, x, K, w + 8 * K, K, 0.0f, got, N - 8);
    cllm_gemm_bf16_reference(0, 1, M, N - 8, K, 1.0f, x, K, w + 8 * K, K, 0.0f, ref, N - 8);
    int bad = 0;
    for (int i = 0; i < M * (N - 8); i++) bad += fabsf(got[i] - ref[i]) > 1e-4f * (1 + fabsf(ref[i]));
    CHECK(bad == 0, "view of a mirrored tensor: %d elements differ", bad);
    /* change the weights: without a stale mark the copy is what the product sees */
    for (int i = 0; i < N * K; i++) w[i] = -w[i];
    cllm_gemm_bf16(0, 1, M, N, K, 1.0f, x, K, w, K, 0.0f, got, N);
    cllm_gemm_bf16_reference(0, 1, M, N, K, 1.0f, x, K, w, K, 0.0f, ref, N);
    bad = 0;
    for (int i = 0; i < M * N; i++) bad += fabsf(got[i] + ref[i]) > 1e-4f * (1 + fabsf(ref[i])); /* old = -new */
    /* (the reference route reads the f32 weights and has no copy to keep) */
    CHECK(bad == 0 || cllm_kernels_get()->reference, "unmarked change: the product should still see the old copy (%d differ)",
          bad);
    cllm_bf16_mirror_stale(w + 5, 1); /* any overlap marks the whole tensor */
    cllm_gemm_bf16(0, 1, M, N, K, 1.0f, x, K, w, K, 0.0f, got, N);
    bad = 0;
    for (int i = 0; i < M * N; i++) bad += fabsf(got[i] - ref[i]) > 1e-4f * (1 + fabsf(ref[i]));
    CHECK(bad == 0, "after the stale mark the product sees the change (%d differ)", bad);
    /* AdamW keeps the copy current without a stale mark */
    float *m1 = calloc((size_t)N * K, sizeof *m1), *v1 = calloc((size_t)N * K, sizeof *v1), *g = malloc(sizeof(float) * N * K);
    fill(g, (size_t)N * K, &rng);
    cllm_adamw_params hp = cllm_adamw_default_params();
    hp.lr = 0.1f;
    cllm_adamw_update(w, g, m1, v1, (size_t)N * K, &hp, 1, 1);
    cllm_gemm_bf16(0, 1, M, N, K, 1.0f, x, K, w, K, 0.0f, got, N);
    cllm_gemm_bf16_reference(0, 1, M, N, K, 1.0f, x, K, w, K, 0.0f, ref, N);
    bad = 0;
    for (int i = 0; i < M * N; i++) bad += fabsf(got[i] - ref[i]) > 1e-4f * (1 + fabsf(ref[i]));
    CHECK(bad == 0, "after an AdamW update the product sees the new weights (%d differ)", bad);
    /* an update of part of the tensor whose copy is stale cannot make it current */
    for (int i = 0; i < N * K; i++) w[i] *= 0.5f;
    cllm_bf16_mirror_stale(w, 1);
    cllm_adamw_update(w, g, m1, v1, (size_t)K, &hp, 2, 1); /* row 0 only */
    cllm_gemm_bf16(0, 1, M, N, K, 1.0f, x, K, w, K, 0.0f, got, N);
    cllm_gemm_bf16_reference(0, 1, M, N, K, 1.0f, x, K, w, K, 0.0f, ref, N);
    bad = 0;
    for (int i = 0; i < M * N; i++) bad += fabsf(got[i] - ref[i]) > 1e-4f * (1 + fabsf(ref[i]));
    CHECK(bad == 0, "a partial update of a stale tensor: the product still sees the whole change (%d differ)", bad);
    free(m1);
    free(v1);
    free(g);
    cllm_bf16_mirror_clear();
    CHECK(cllm_bf16_mirror_bytes() == 0, "cleared");
    free(x);
    free(w);
    free(got);
    free(ref);
}

/* oneDNN's kernel is the one this CPU (as cllm sees it) should get. */
static void test_bf16_kernel_path(void) {
    const unsigned f = cllm_kernels_get()->cpu_features;
    cllm_error err;
    const int can = cllm_precision_check(CLLM_PRECISION_BF16, &err) == CLLM_OK;
    CHECK(can == !!(f & (CLLM_CPU_AMX | CLLM_CPU_AVX512_BF16)) || cllm_kernels_get()->reference,
          "precision check disagrees with the CPU features");
    if (!can || cllm_kernels_get()->reference) {
        fprintf(stderr, "  bf16 refused here: %s\n", can ? "reference kernels" : err.msg);
        return;
    }
    float a[64 * 64], c[64 * 64];
    for (int i = 0; i < 64 * 64; i++) a[i] = (float)(i % 7) - 3.0f;
    cllm_gemm_bf16(0, 1, 64, 64, 64, 1.0f, a, 64, a, 64, 0.0f, c, 64);
    const char *impl = cllm_quant_bf16_onednn_impl();
    fprintf(stderr, "  cpu features allow %s; oneDNN ran %s; path: %s\n",
            (f & CLLM_CPU_AMX) ? "AMX" : "AVX512-BF16", impl, cllm_precision_bf16_path());
    if (f & CLLM_CPU_AMX)
        CHECK(strstr(impl, "amx") != NULL, "AMX CPU but oneDNN ran '%s'", impl);
    else
        CHECK(strstr(impl, "bf16") != NULL && !strstr(impl, "amx"), "AVX512-BF16 CPU but oneDNN ran '%s'", impl);
}

/* cllm_gemm follows the setting; fp32 stays exactly cllm_sgemm. */
static void test_bf16_gemm_follows_precision(void) {
    enum { M = 5, N = 7, K = 33 };
    cllm_rng rng;
    cllm_rng_seed(&rng, 2);
    float A[M * K], B[N * K], c1[M * N], c2[M * N];
    fill(A, M * K, &rng);
    fill(B, N * K, &rng);
    CHECK(cllm_matmul_get_precision() == CLLM_PRECISION_FP32, "fp32 by default");
    cllm_gemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, c1, N);
    cllm_sgemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, c2, N);
    CHECK(!memcmp(c1, c2, sizeof c1), "fp32 cllm_gemm == cllm_sgemm");
    cllm_matmul_set_precision(CLLM_PRECISION_BF16);
    cllm_gemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, c1, N);
    cllm_matmul_set_precision(CLLM_PRECISION_FP32);
    cllm_gemm_bf16(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, c2, N);
    CHECK(!memcmp(c1, c2, sizeof c1), "bf16 cllm_gemm == cllm_gemm_bf16");
    cllm_precision p;
    CHECK(cllm_precision_from_name("bf16", &p) && p == CLLM_PRECISION_BF16, "parse bf16");
    CHECK(!cllm_precision_from_name("fp16", &p), "fp16 is not a precision");
}

/* Whole model: one forward + backward at fp32 and at bf16 on the same weights. */
static void model_grads(const char *preset, double *loss_rel, double *worst_grad_rel) {
    cllm_model_config cfg;
    cllm_error err;
    CHECK(cllm_model_preset(preset, &cfg, &err) == CLLM_OK, "%s", err.msg);
    cllm_model_options o = cllm_model_default_options();
    enum { B = 4, T = 16 };
    o.max_batch = B;
    o.max_seq = T;
    o.training = 1;
    cllm_model *m = NULL;
    CHECK(cllm_model_create(&cfg, &o, &m, &err) == CLLM_OK, "%s", err.msg);
    if (!m) return;
    cllm_model_init_weights(m, 42);
    int32_t tok[B * T], tgt[B * T];
    cllm_rng rng;
    cllm_rng_seed(&rng, 8);
    for (int i = 0; i < B * T; i++) {
        tok[i] = (int32_t)cllm_rng_below(&rng, (uint64_t)cfg.vocab_size);
        tgt[i] = (int32_t)cllm_rng_below(&rng, (uint64_t)cfg.vocab_size);
    }
    const size_t np = cllm_model_num_params(m);
    float *g32 = malloc(np * sizeof *g32), *g16 = malloc(np * sizeof *g16), *again = malloc(np * sizeof *again);
    float l32 = 0, l16 = 0, l16b = 0;
    for (int run = 0; run < 3; run++) {
        cllm_matmul_set_precision(run == 0 ? CLLM_PRECISION_FP32 : CLLM_PRECISION_BF16);
        float loss;
        cllm_model_zero_grad(m);
        CHECK(cllm_model_forward(m, tok, tgt, B, T, &loss, &err) == CLLM_OK, "%s", err.msg);
        CHECK(cllm_model_backward(m, 1.0f / (B * T), &err) == CLLM_OK, "%s", err.msg);
        memcpy(run == 0 ? g32 : run == 1 ? g16 : again, cllm_model_grads(m), np * sizeof *g32);
        *(run == 0 ? &l32 : run == 1 ? &l16 : &l16b) = loss;
    }
    cllm_matmul_set_precision(CLLM_PRECISION_FP32);
    CHECK(!memcmp(g16, again, np * sizeof *g16) && l16 == l16b, "%s: bf16 rerun is not bit-identical", preset);
    *loss_rel = fabs((double)l16 - l32) / fabs((double)l32);
    *worst_grad_rel = 0;
    for (int i = 0; i < cllm_model_num_tensors(m); i++) {
        const cllm_tensor *t = cllm_model_tensor(m, i);
        double d2 = 0, r2 = 0;
        for (size_t j = 0; j < t->numel; j++) {
            const double d = (double)g16[t->offset + j] - g32[t->offset + j];
            d2 += d * d;
            r2 += (double)g32[t->offset + j] * g32[t->offset + j];
        }
        const double rel = sqrt(d2 / fmax(r2, 1e-300));
        /* bf16 keeps 8 significant bits (unit roundoff 2^-9 ~ 0.2%); through a
         * few layers of products the gradients move by ~1%: 5% per tensor */
        CHECK(rel <= 0.05, "%s: bf16 gradient of %s differs from fp32 by %.3g (relative L2)", preset, t->name, rel);
        *worst_grad_rel = fmax(*worst_grad_rel, rel);
    }
    /* the loss is a mean over B*T positions: errors average out, 0.5% */
    CHECK(*loss_rel <= 5e-3, "%s: bf16 loss %g vs fp32 %g", preset, l16, l32);
    free(g32);
    free(g16);
    free(again);
    cllm_model_destroy(m);
}

static void test_bf16_model_gradients(void) {
    static const char *const presets[] = {"tiny-gpt2", "tiny-llama"};
    for (int i = 0; i < 2; i++) {
        double loss_rel = 0, grad_rel = 0;
        model_grads(presets[i], &loss_rel, &grad_rel);
        fprintf(stderr, "  %s: bf16 vs fp32: loss %.2e relative, worst tensor gradient %.2e relative L2\n",
                presets[i], loss_rel, grad_rel);
    }
}

int main(void) {
    TEST_RUN(test_bf16_rounding);
    TEST_RUN(test_bf16_gemm_follows_precision);
    TEST_RUN(test_bf16_products_match_reference);
    TEST_RUN(test_bf16_concurrent_products);
    TEST_RUN(test_bf16_mirror);
    TEST_RUN(test_bf16_kernel_path);
    TEST_RUN(test_bf16_model_gradients);
    return test_finish();
}
