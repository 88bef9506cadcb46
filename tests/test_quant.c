/*
 * test_quant.c: the quantized-inference kernels (cllm/kernels/quant.h) of every ISA
 * this CPU runs, against the scalar reference, on random data and ragged
 * sizes; the weight block layouts against hand-computed llama.cpp blocks;
 * the threaded matrix-vector and row-dequantization loops.
 *
 * Tolerances: integer block sums are exact in every path, so dot products
 * differ from the reference only by float summation order: bound
 * 1e-5 * sum |terms| (n <= 8192 terms, float epsilon 6e-8 per add). The
 * activation quantizer and the dequantizers must match bit for bit.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/formats/ggml_types.h"
#include "cllm/kernels/kernels.h"
#include "cllm/kernels/quant.h"
#include "cllm/core/rng.h"
#include "test.h"

static const int64_t q_sizes[] = {32, 64, 96, 160, 768, 800, 3072, 4096 + 32};
static const int64_t f_sizes[] = {1, 7, 15, 16, 17, 31, 33, 100, 767, 768, 1000, 4099};
#define NQ (sizeof q_sizes / sizeof q_sizes[0])
#define NF (sizeof f_sizes / sizeof f_sizes[0])

static void fill(cllm_rng *r, float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = scale * cllm_rng_normal(r);
    /* a few outliers, as real activations have */
    if (n > 8) x[cllm_rng_below(r, (uint64_t)n)] = 20.0f * scale;
}

/* Exact value of the quantized dot (double), and sum of |terms| for the tolerance. */
static double exact_dot(uint32_t wt, const uint8_t *w, const uint8_t *xq, int64_t n, double *mag) {
    float *a = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n);
    cllm_ggml_to_f32(wt, w, a, n);
    cllm_ggml_to_f32(CLLM_GGML_Q8_0, xq, b, n);
    double s = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        s += (double)a[i] * b[i];
        m += fabs((double)a[i] * b[i]);
    }
    free(a);
    free(b);
    *mag = m;
    return s;
}

static void test_quant_backends_listed(void) {
    const cllm_quant_kernels *ref = cllm_quant_kernels_backend(CLLM_QUANT_REFERENCE);
    CHECK(ref && ref->backend == CLLM_QUANT_REFERENCE, "reference always available");
    CHECK(cllm_quant_kernels_get() != NULL, "dispatched table");
    CHECK(cllm_quant_kernels_backend(CLLM_QUANT_COUNT) == NULL, "out of range backend");
    CHECK(cllm_quant_kernels_backend((cllm_quant_backend)-1) == NULL, "negative backend");
    const char *env = getenv("CLLM_KERNELS");
    if (env && !strcmp(env, "reference"))
        CHECK(cllm_quant_kernels_get()->backend == CLLM_QUANT_REFERENCE, "CLLM_KERNELS=reference honoured");
    for (int b = 0; b < CLLM_QUANT_COUNT; b++)
        if (cllm_quant_kernels_backend((cllm_quant_backend)b))
            fprintf(stderr, "  backend %s available\n", cllm_quant_kernels_backend((cllm_quant_backend)b)->name);
}

static void test_quant_q8_0_block_layout(void) {
    /* x[j] = j - 16: amax 16, d = 16/127, q = round(x * 127/16) */
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16);
    uint8_t blk[34];
    CHECK(cllm_ggml_from_f32(CLLM_GGML_Q8_0, x, blk, 32) == 0, "quantize q8_0");
    uint16_t d = (uint16_t)(blk[0] | blk[1] << 8);
    CHECK(d == cllm_fp32_to_fp16(16.0f / 127.0f), "q8_0 d is fp16(amax/127) little-endian: 0x%04x", d);
    for (int j = 0; j < 32; j++) {
        int want = (int)roundf((float)(j - 16) * (127.0f / 16.0f));
        CHECK((int8_t)blk[2 + j] == want, "q8_0 qs[%d] = %d, want %d", j, (int8_t)blk[2 + j], want);
    }
}

static void test_quant_q4_0_block_layout(void) {
    /* x[j] = j - 16: value of largest magnitude -16 (j = 0), d = -16/-8 = 2,
     * q = min(15, trunc(x/2 + 8.5)); byte j = q[j] | q[j+16] << 4 */
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16);
    uint8_t blk[18];
    CHECK(cllm_ggml_from_f32(CLLM_GGML_Q4_0, x, blk, 32) == 0, "quantize q4_0");
    CHECK(blk[0] == 0x00 && blk[1] == 0x40, "q4_0 d = fp16(2.0) = 0x4000, got %02x%02x", blk[1], blk[0]);
    CHECK(blk[2] == 0x80, "byte 0: low nibble q[0] = 0, high nibble q[16] = 8; got 0x%02x", blk[2]);
    for (int j = 0; j < 16; j++) {
        int lo = (int)((float)(j - 16) / 2.0f + 8.5f), hi = (int)((float)j / 2.0f + 8.5f);
        if (hi > 15) hi = 15;
        CHECK(blk[2 + j] == (uint8_t)(lo | hi << 4), "q4_0 byte %d = 0x%02x, want 0x%02x", j, blk[2 + j],
              lo | hi << 4);
    }
    float back[32];
    cllm_ggml_to_f32(CLLM_GGML_Q4_0, blk, back, 32);
    CHECK(back[0] == -16.0f && back[16] == 0.0f && back[31] == 14.0f, "value = (q - 8) * d: %g %g %g",
          back[0], back[16], back[31]);
}

static void test_quant_activation_quantizer_matches_reference(void) {
    const cllm_quant_kernels *ref = cllm_quant_kernels_backend(CLLM_QUANT_REFERENCE);
    cllm_rng r;
    cllm_rng_seed(&r, 11);
    for (int b = 1; b < CLLM_QUANT_COUNT; b++) {
        const cllm_quant_kernels *k = cllm_quant_kernels_backend((cllm_quant_backend)b);
        if (!k) continue;
        for (size_t s = 0; s < NQ; s++) {
            int64_t n = q_sizes[s];
            float *x = malloc(sizeof(float) * (size_t)n);
            fill(&r, x, n, 0.5f);
            for (int j = 0; j < 32 && j < n; j++) x[j] = 0.0f; /* an all-zero block: d = 0 */
            size_t nb = cllm_quant_q8_0_bytes(n);
            uint8_t *a = malloc(nb), *c = malloc(nb);
            ref->quantize_q8_0(x, a, n);
            k->quantize_q8_0(x, c, n);
            CHECK(memcmp(a, c, nb) == 0, "%s quantize_q8_0 n=%lld differs from the reference", k->name,
                  (long long)n);
            free(x);
            free(a);
            free(c);
        }
    }
}

static void test_quant_integer_dots_match_reference(void) {
    cllm_rng r;
    cllm_rng_seed(&r, 12);
    const uint32_t types[2] = {CLLM_GGML_Q8_0, CLLM_GGML_Q4_0};
    const cllm_quant_kernels *ref = cllm_quant_kernels_backend(CLLM_QUANT_REFERENCE);
    for (size_t s = 0; s < NQ; s++) {
        int64_t n = q_sizes[s];
        float *w = malloc(sizeof(float) * (size_t)n), *x = malloc(sizeof(float) * (size_t)n);
        fill(&r, w, n, 0.05f);
        fill(&r, x, n, 1.0f);
        uint8_t *xq = malloc(cllm_quant_q8_0_bytes(n));
        ref->quantize_q8_0(x, xq, n);
        for (int t = 0; t < 2; t++) {
            size_t wb = 0;
            cllm_ggml_row_size(types[t], n, &wb);
            uint8_t *wq = malloc(wb);
            cllm_ggml_from_f32(types[t], w, wq, n);
            double mag;
            double want = exact_dot(types[t], wq, xq, n, &mag);
            for (int b = 0; b < CLLM_QUANT_COUNT; b++) {
                const cllm_quant_kernels *k = cllm_quant_kernels_backend((cllm_quant_backend)b);
                if (!k) continue;
                float got = types[t] == CLLM_GGML_Q8_0 ? k->dot_q8_0_q8_0(wq, xq, n) : k->dot_q4_0_q8_0(wq, xq, n);
                char what[96];
                snprintf(what, sizeof what, "%s dot %s x q8_0 n=%lld", k->name, cllm_ggml_type_name(types[t]),
                         (long long)n);
                CHECK_NEAR(got, want, 1e-5 * mag + 1e-30, 0, what); /* float summation order only */
            }
            free(wq);
        }
        free(w);
        free(x);
        free(xq);
    }
}

static void test_quant_float_dots_match_reference(void) {
    cllm_rng r;
    cllm_rng_seed(&r, 13);
    const uint32_t types[3] = {CLLM_GGML_F16, CLLM_GGML_BF16, CLLM_GGML_F32};
    for (size_t s = 0; s < NF; s++) {
        int64_t n = f_sizes[s];
        float *w = malloc(sizeof(float) * (size_t)n), *x = malloc(sizeof(float) * (size_t)n);
        float *wd = malloc(sizeof(float) * (size_t)n);
        fill(&r, w, n, 0.05f);
        fill(&r, x, n, 1.0f);
        for (int t = 0; t < 3; t++) {
            /* +1 byte and an odd start: rows in a file need not be aligned */
            uint8_t *buf = malloc((size_t)n * 4 + 1), *wq = buf + 1;
            cllm_ggml_from_f32(types[t], w, wq, n);
            cllm_ggml_to_f32(types[t], wq, wd, n);
            double want = 0, mag = 0;
            for (int64_t i = 0; i < n; i++) {
                want += (double)wd[i] * x[i];
                mag += fabs((double)wd[i] * x[i]);
            }
            for (int b = 0; b < CLLM_QUANT_COUNT; b++) {
                const cllm_quant_kernels *k = cllm_quant_kernels_backend((cllm_quant_backend)b);
                if (!k) continue;
                float got = types[t] == CLLM_GGML_F16 ? k->dot_f16_f32(wq, x, n)
                            : types[t] == CLLM_GGML_BF16 ? k->dot_bf16_f32(wq, x, n)
                                                         : k->dot_f32_f32(wq, x, n);
                char what[96];
                snprintf(what, sizeof what, "%s dot %s x f32 n=%lld", k->name, cllm_ggml_type_name(types[t]),
                         (long long)n);
                CHECK_NEAR(got, want, 1e-5 * mag + 1e-30, 0, what); /* float summation order only */
            }
            free(buf);
        }
        free(w);
        free(x);
        free(wd);
    }
}

static void test_quant_dequant_exact(void) {
    cllm_rng r;
    cllm_rng_seed(&r, 14);
    const uint32_t types[4] = {CLLM_GGML_Q8_0, CLLM_GGML_Q4_0, CLLM_GGML_F16, CLLM_GGML_BF16};
    for (size_t s = 0; s < NQ; s++) {
        int64_t n = q_sizes[s] + (s % 2 ? 0 : 0);
        float *w = malloc(sizeof(float) * (size_t)n), *a = malloc(sizeof(float) * (size_t)n),
              *b = malloc(sizeof(float) * (size_t)n);
        fill(&r, w, n, 0.1f);
        for (int t = 0; t < 4; t++) {
            size_t wb = 0;
            cllm_ggml_row_size(types[t], n, &wb);
            uint8_t *wq = malloc(wb);
            cllm_ggml_from_f32(types[t], w, wq, n);
            cllm_ggml_to_f32(types[t], wq, a, n);
            for (int bk = 0; bk < CLLM_QUANT_COUNT; bk++) {
                const cllm_quant_kernels *k = cllm_quant_kernels_backend((cllm_quant_backend)bk);
                if (!k) continue;
                void (*fn)(const void *, float *, int64_t) = t == 0 ? k->dequant_q8_0 : t == 1 ? k->dequant_q4_0
                                                             : t == 2 ? k->dequant_f16 : k->dequant_bf16;
                memset(b, 0xFF, sizeof(float) * (size_t)n);
                fn(wq, b, n);
                CHECK(memcmp(a, b, sizeof(float) * (size_t)n) == 0, "%s dequant %s n=%lld not bit-exact", k->name,
                      cllm_ggml_type_name(types[t]), (long long)n);
            }
            free(wq);
        }
        free(w);
        free(a);
        free(b);
    }
    /* ragged f16/bf16 lengths (masked tails) */
    for (size_t s = 0; s < NF; s++) {
        int64_t n = f_sizes[s];
        float *w = malloc(sizeof(float) * (size_t)n), *a = malloc(sizeof(float) * (size_t)n + 64),
              *b = malloc(sizeof(float) * (size_t)n + 64);
        uint16_t *h = malloc(2 * (size_t)n);
        fill(&r, w, n, 1.0f);
        cllm_ggml_from_f32(CLLM_GGML_F16, w, h, n);
        cllm_ggml_to_f32(CLLM_GGML_F16, h, a, n);
        a[n] = 12345.0f; /* sentinel past the end must survive */
        for (int bk = 0; bk < CLLM_QUANT_COUNT; bk++) {
            const cllm_quant_kernels *k = cllm_quant_kernels_backend((cllm_quant_backend)bk);
            if (!k) continue;
            b[n] = 12345.0f;
            k->dequant_f16(h, b, n);
            CHECK(memcmp(a, b, sizeof(float) * (size_t)(n + 1)) == 0, "%s dequant f16 n=%lld", k->name, (long long)n);
        }
        free(w);
        free(a);
        free(b);
        free(h);
    }
}

/* round_f16 (the f16 KV cache's writer) of every backend equals the scalar
 * cllm_fp32_to_fp16 bit for bit: ties to even, fp16 subnormals, overflow to
 * Inf, Inf, NaN (stays NaN), negative zero; ragged lengths (masked tails). */
static void test_quant_round_f16_matches_scalar(void) {
    enum { N = 333 };
    float x[N];
    cllm_rng r;
    cllm_rng_seed(&r, 23);
    for (int i = 0; i < N; i++) x[i] = (cllm_rng_float(&r) * 2.0f - 1.0f) * ldexpf(1.0f, (int)(i % 40) - 26);
    const float special[] = {65504.0f, 65520.0f, 1e9f, -INFINITY, INFINITY, NAN, -0.0f, 5.96e-8f, 2.98e-8f,
                             1.0f + 1.0f / 2048.0f, 1.0f + 3.0f / 2048.0f, 6.1e-5f};
    memcpy(x, special, sizeof special);
    uint16_t want[N], got[N];
    for (int i = 0; i < N; i++) want[i] = cllm_fp32_to_fp16(x[i]);
    int tested = 0;
    for (int b = 0; b < CLLM_QUANT_COUNT; b++) {
        const cllm_quant_kernels *k = cllm_quant_kernels_backend((cllm_quant_backend)b);
        if (!k) continue;
        tested++;
        for (int n = 1; n <= N; n += 37) {
            memset(got, 0xA5, sizeof got);
            k->round_f16(x, got, n);
            int bad = 0, past = 0;
            for (int i = 0; i < n; i++) bad += got[i] != want[i] && !(isnan(x[i]) && (got[i] & 0x7C00) == 0x7C00 && (got[i] & 0x3FF));
            for (int i = n; i < N; i++) past += got[i] != 0xA5A5;
            CHECK(bad == 0 && past == 0, "round_f16 %s n=%d: %d differ from the scalar, %d written past n", k->name, n,
                  bad, past);
        }
    }
    CHECK(tested >= 1, "no backend");
}

static void test_quant_matvec_all_types(void) {
    cllm_rng r;
    cllm_rng_seed(&r, 15);
    const uint32_t types[5] = {CLLM_GGML_F32, CLLM_GGML_F16, CLLM_GGML_BF16, CLLM_GGML_Q8_0, CLLM_GGML_Q4_0};
    const int shapes[3][2] = {{1, 64}, {37, 96}, {1000, 800}};
    const cllm_quant_kernels *ref = cllm_quant_kernels_backend(CLLM_QUANT_REFERENCE);
    const cllm_quant_kernels *fast = cllm_quant_kernels_get();
    for (int sh = 0; sh < 3; sh++) {
        const int rows = shapes[sh][0], cols = shapes[sh][1];
        float *w = malloc(sizeof(float) * (size_t)rows * cols), *x = malloc(sizeof(float) * (size_t)cols);
        float *o1 = malloc(sizeof(float) * (size_t)rows), *o2 = malloc(sizeof(float) * (size_t)rows);
        float *deq = malloc(sizeof(float) * (size_t)rows * cols);
        fill(&r, w, (int64_t)rows * cols, 0.05f);
        fill(&r, x, cols, 1.0f);
        uint8_t *xq = malloc(cllm_quant_q8_0_bytes(cols));
        ref->quantize_q8_0(x, xq, cols);
        for (int t = 0; t < 5; t++) {
            size_t rb = 0;
            cllm_ggml_row_size(types[t], cols, &rb);
            uint8_t *wq = malloc(rb * (size_t)rows);
            for (int i = 0; i < rows; i++) cllm_ggml_from_f32(types[t], w + (size_t)i * cols, wq + (size_t)i * rb, cols);
            cllm_quant_matvec(ref, types[t], wq, rb, rows, cols, x, xq, o1);
            cllm_quant_matvec(fast, types[t], wq, rb, rows, cols, x, xq, o2);
            int bad = 0;
            for (int i = 0; i < rows; i++) {
                double mag = 0;
                for (int j = 0; j < cols; j++) mag += fabs(0.05 * 4 * x[j]); /* |w| < 4 sigma except outliers */
                if (!(fabs(o1[i] - o2[i]) <= 1e-5 * mag + 1e-3 * fabs(o1[i]))) bad++;
            }
            CHECK(bad == 0, "matvec %s %dx%d: %d rows differ between %s and reference", cllm_ggml_type_name(types[t]),
                  rows, cols, bad, fast->name);
            /* dequant_rows with a padded destination stride */
            cllm_quant_dequant_rows(fast, types[t], wq, rb, rows, cols, deq, (size_t)cols);
            float *row = malloc(sizeof(float) * (size_t)cols);
            int diff = 0;
            for (int i = 0; i < rows; i++) {
                cllm_ggml_to_f32(types[t], wq + (size_t)i * rb, row, cols);
                diff += memcmp(row, deq + (size_t)i * cols, sizeof(float) * (size_t)cols) != 0;
            }
            CHECK(diff == 0, "dequant_rows %s: %d rows differ", cllm_ggml_type_name(types[t]), diff);
            free(row);
            free(wq);
        }
        free(w);
        free(x);
        free(o1);
        free(o2);
        free(deq);
        free(xq);
    }
}

/* ---- the other block types (q4_1, q5_0, q5_1, q2_K .. q6_K) ---------------- */

static const uint32_t other_types[8] = {CLLM_GGML_Q4_1, CLLM_GGML_Q5_0, CLLM_GGML_Q5_1, CLLM_GGML_Q2_K,
                                        CLLM_GGML_Q3_K, CLLM_GGML_Q4_K, CLLM_GGML_Q5_K, CLLM_GGML_Q6_K};
/* rms(dequant(quant(x)) - x) / rms(x) on Gaussian rows with two outliers
 * per 256 (seed 21): measured 0.0867 0.0581 0.0422 0.3214 0.1709 0.0797
 * 0.0402 0.0218 (in this order); bounds about 1.25x that, so a broken
 * search (e.g. plain max-scaling) fails while the data stay the same */
static const double other_rel_rmse[8] = {0.11, 0.072, 0.053, 0.40, 0.21, 0.10, 0.05, 0.027};

static int64_t other_block(uint32_t type) { return cllm_ggml_type_get(type)->block_size; }

/* The activations a row of `type` is multiplied with, and their values. */
static void other_activations(const cllm_quant_kernels *k, uint32_t type, const float *x, uint8_t *xq, float *xv,
                              int64_t n) {
    if (cllm_quant_act_type(type) == CLLM_GGML_Q8_K) {
        k->quantize_q8_K(x, xq, n);
        for (int64_t b = 0; b < n / CLLM_QK_K; b++) {
            float d;
            memcpy(&d, xq + b * CLLM_Q8_K_BYTES, 4);
            for (int j = 0; j < CLLM_QK_K; j++) xv[b * CLLM_QK_K + j] = d * (float)(int8_t)xq[b * CLLM_Q8_K_BYTES + 4 + j];
        }
    } else {
        k->quantize_q8_0(x, xq, n);
        cllm_ggml_to_f32(CLLM_GGML_Q8_0, xq, xv, n);
    }
}

static void test_quant_other_types_roundtrip(void) {
    cllm_rng r;
    cllm_rng_seed(&r, 21);
    const int64_t n = 256 * 64;
    float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n);
    uint8_t *q = malloc((size_t)n * 2);
    fill(&r, x, n, 1.0f);
    for (int64_t b = 0; b < n / 256; b++) x[b * 256 + cllm_rng_below(&r, 256)] = 8.0f * cllm_rng_normal(&r);
    double sx = 0;
    for (int64_t i = 0; i < n; i++) sx += (double)x[i] * x[i];
    for (int t = 0; t < 8; t++) {
        CHECK(cllm_quant_type_supported(other_types[t]), "%s supported", cllm_ggml_type_name(other_types[t]));
        cllm_ggml_type parsed;
        CHECK(cllm_ggml_type_parse(cllm_ggml_type_name(other_types[t]), &parsed) == 0 && parsed == other_types[t],
              "%s parses", cllm_ggml_type_name(other_types[t]));
        CHECK(cllm_ggml_from_f32(other_types[t], x, q, n) == 0 && cllm_ggml_to_f32(other_types[t], q, y, n) == 0,
              "%s converts", cllm_ggml_type_name(other_types[t]));
        double se = 0;
        for (int64_t i = 0; i < n; i++) se += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
        const double rel = sqrt(se / sx);
        fprintf(stderr, "  %s relative rms error %.4f (bound %.3f)\n", cllm_ggml_type_name(other_types[t]), rel,
                other_rel_rmse[t]);
        CHECK(rel <= other_rel_rmse[t], "%s round trip error %.4f > %.3f", cllm_ggml_type_name(other_types[t]), rel,
              other_rel_rmse[t]);
        CHECK(cllm_ggml_from_f32(other_types[t], x, q, other_block(other_types[t]) + 16) == -1,
              "%s: a partial block is refused", cllm_ggml_type_name(other_types[t]));
    }
    /* all-zero and constant rows: exact zeros back, no NaN */
    memset(x, 0, sizeof(float) * 512);
    for (int t = 0; t < 8; t++) {
        cllm_ggml_from_f32(other_types[t], x, q, 512);
        cllm_ggml_to_f32(other_types[t], q, y, 512);
        int bad = 0;
        for (int i = 0; i < 512; i++) bad += y[i] != 0.0f;
        CHECK(bad == 0, "%s: zeros come back as zeros (%d differ)", cllm_ggml_type_name(other_types[t]), bad);
    }
    free(x);
    free(y);
    free(q);
}

/* q8_K: every table's quantizer equals cllm_ggml_quantize_q8_K bit for bit,
 * and the bsums are the sums of each 16 quants. */
static void test_quant_q8_K_activations(void) {
    cllm_rng r;
    cllm_rng_seed(&r, 22);
    const int64_t n = 256 * 5;
    float x[256 * 5];
    fill(&r, x, n, 2.0f);
    memset(x + 256, 0, 256 * sizeof(float)); /* an all-zero block */
    uint8_t want[5 * CLLM_Q8_K_BYTES], got[5 * CLLM_Q8_K_BYTES];
    cllm_ggml_quantize_q8_K(x, want, n);
    int bad = 0;
    for (int b = 0; b < 5; b++)
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += (int8_t)want[b * CLLM_Q8_K_BYTES + 4 + 16 * g + l];
            bad += (int16_t)(want[b * CLLM_Q8_K_BYTES + 260 + 2 * g] | want[b * CLLM_Q8_K_BYTES + 261 + 2 * g] << 8) != s;
        }
    CHECK(bad == 0, "q8_K bsums: %d wrong", bad);
    float d;
    memcpy(&d, want, 4);
    CHECK(d != 0.0f, "q8_K scale set");
    memcpy(&d, want + CLLM_Q8_K_BYTES, 4);
    CHECK(d == 0.0f, "q8_K zero block has scale 0");
    for (int b = 0; b < CLLM_QUANT_COUNT; b++) {
        const cllm_quant_kernels *k = cllm_quant_kernels_backend((cllm_quant_backend)b);
        if (!k) continue;
        memset(got, 0xAB, sizeof got);
        k->quantize_q8_K(x, got, n);
        CHECK(memcmp(got, want, sizeof want) == 0, "%s quantize_q8_K bit-exact", k->name);
    }
}

/* Every table's dot of every other type equals the exact (double) dot of
 * the dequantized weights and activations within float summation error,
 * on 1 to 17 blocks; dequant_other is bit-exact. */
static void test_quant_other_dots_match_exact(void) {
    cllm_rng r;
    cllm_rng_seed(&r, 23);
    const int nblocks[] = {1, 2, 3, 5, 12, 17};
    const cllm_quant_kernels *ref = cllm_quant_kernels_backend(CLLM_QUANT_REFERENCE);
    for (int t = 0; t < 8; t++) {
        const uint32_t type = other_types[t];
        for (size_t s = 0; s < sizeof nblocks / sizeof nblocks[0]; s++) {
            const int64_t n = nblocks[s] * other_block(type) * (other_block(type) == 32 ? 8 : 1) + 0;
            float *w = malloc(sizeof(float) * (size_t)n), *x = malloc(sizeof(float) * (size_t)n);
            float *wv = malloc(sizeof(float) * (size_t)n), *xv = malloc(sizeof(float) * (size_t)n);
            float *dq = malloc(sizeof(float) * (size_t)n);
            uint8_t *wq = malloc((size_t)n * 2), *xq = malloc((size_t)n * 2);
            fill(&r, w, n, 0.05f);
            fill(&r, x, n, 1.0f);
            if (s == 2) for (int64_t i = 0; i < n; i++) w[i] += 0.03f; /* an offset: the mins matter */
            cllm_ggml_from_f32(type, w, wq, n);
            cllm_ggml_to_f32(type, wq, wv, n);
            other_activations(ref, type, x, xq, xv, n);
            double want = 0, mag = 0;
            for (int64_t i = 0; i < n; i++) {
                want += (double)wv[i] * xv[i];
                mag += fabs((double)wv[i] * xv[i]);
            }
            for (int b = 0; b < CLLM_QUANT_COUNT; b++) {
                const cllm_quant_kernels *k = cllm_quant_kernels_backend((cllm_quant_backend)b);
                if (!k) continue;
                const float got = cllm_quant_dot_fn(k, type)(wq, xq, n);
                /* float summation order only; the k-quants' min term is a separate product, whose
                 * rounding (6e-8 relative) counts against the magnitude of both terms */
                CHECK(fabs(got - want) <= 2e-5 * mag + 1e-30, "%s dot %s n=%lld: %g vs %.9g", k->name,
                      cllm_ggml_type_name(type), (long long)n, (double)got, want);
                memset(dq, 0xFF, sizeof(float) * (size_t)n);
                k->dequant_other(type, wq, dq, n);
                CHECK(memcmp(dq, wv, sizeof(float) * (size_t)n) == 0, "%s dequant %s n=%lld bit-exact", k->name,
                      cllm_ggml_type_name(type), (long long)n);
            }
            free(w), free(x), free(wv), free(xv), free(dq), free(wq), free(xq);
        }
    }
}

/* cllm_quant_matvec and cllm_quant_dequant_rows on the other types: the
 * dispatched table against the reference, threaded, on ragged row counts. */
static void test_quant_matvec_other_types(void) {
    cllm_rng r;
    cllm_rng_seed(&r, 24);
    const int shapes[3][2] = {{1, 256}, {37, 768}, {1100, 1024}};
    const cllm_quant_kernels *ref = cllm_quant_kernels_backend(CLLM_QUANT_REFERENCE);
    const cllm_quant_kernels *fast = cllm_quant_kernels_get();
    for (int sh = 0; sh < 3; sh++) {
        const int rows = shapes[sh][0], cols = shapes[sh][1];
        float *w = malloc(sizeof(float) * (size_t)rows * cols), *x = malloc(sizeof(float) * (size_t)cols);
        float *xv = malloc(sizeof(float) * (size_t)cols), *row = malloc(sizeof(float) * (size_t)cols);
        float *o1 = malloc(sizeof(float) * (size_t)rows), *o2 = malloc(sizeof(float) * (size_t)rows);
        float *deq = malloc(sizeof(float) * (size_t)rows * cols);
        uint8_t *xq = malloc((size_t)cols * 2);
        fill(&r, w, (int64_t)rows * cols, 0.05f);
        fill(&r, x, cols, 1.0f);
        for (int t = 0; t < 8; t++) {
            size_t rb = 0;
            CHECK(cllm_ggml_row_size(other_types[t], cols, &rb), "row size");
            uint8_t *wq = malloc(rb * (size_t)rows);
            for (int i = 0; i < rows; i++)
                cllm_ggml_from_f32(other_types[t], w + (size_t)i * cols, wq + (size_t)i * rb, cols);
            other_activations(ref, other_types[t], x, xq, xv, cols);
            cllm_quant_matvec(ref, other_types[t], wq, rb, rows, cols, x, xq, o1);
            cllm_quant_matvec(fast, other_types[t], wq, rb, rows, cols, x, xq, o2);
            int bad = 0;
            for (int i = 0; i < rows; i++) {
                double mag = 0;
                for (int j = 0; j < cols; j++) mag += fabs(0.05 * 4 * xv[j]); /* |w| < 4 sigma except outliers */
                if (!(fabs(o1[i] - o2[i]) <= 2e-5 * mag + 1e-3 * fabs(o1[i]))) bad++;
            }
            CHECK(bad == 0, "matvec %s %dx%d: %d rows differ between %s and reference",
                  cllm_ggml_type_name(other_types[t]), rows, cols, bad, fast->name);
            cllm_quant_dequant_rows(fast, other_types[t], wq, rb, rows, cols, deq, (size_t)cols);
            int diff = 0;
            for (int i = 0; i < rows; i++) {
                cllm_ggml_to_f32(other_types[t], wq + (size_t)i * rb, row, cols);
                diff += memcmp(row, deq + (size_t)i * cols, sizeof(float) * (size_t)cols) != 0;
            }
            CHECK(diff == 0, "dequant_rows %s: %d rows differ", cllm_ggml_type_name(other_types[t]), diff);
            free(wq);
        }
        free(w), free(x), free(xv), free(row), free(o1), free(o2), free(deq), free(xq);
    }
}

/* A batched-product case: rows x K weights in one quantized type, n
 * activation rows quantized to q8_0 with a stride that is not a block
 * multiple, an output with padding columns, and the exact product. */
typedef struct {
    int rows, n, K;
    size_t xs, ldo, rb;
    float *w, *x, *want, *got;
    uint8_t *xq, *wq;
    double *mag;
} gemm_fixture;

static void fixture_init(gemm_fixture *f, cllm_rng *r, int rows, int n, int K, int pad) {
    f->rows = rows, f->n = n, f->K = K;
    f->xs = cllm_quant_q8_0_bytes(K) + 6;
    f->ldo = (size_t)rows + (size_t)pad;
    f->w = malloc(sizeof(float) * (size_t)rows * K), f->x = malloc(sizeof(float) * (size_t)n * K);
    f->xq = calloc((size_t)n, f->xs);
    f->want = malloc(sizeof(float) * (size_t)n * f->ldo), f->got = malloc(sizeof(float) * (size_t)n * f->ldo);
    f->mag = calloc((size_t)n * rows, sizeof(double));
    f->wq = NULL;
    fill(r, f->w, (int64_t)rows * K, 0.05f);
    fill(r, f->x, (int64_t)n * K, 1.0f);
    const cllm_quant_kernels *ref = cllm_quant_kernels_backend(CLLM_QUANT_REFERENCE);
    for (int t = 0; t < n; t++) ref->quantize_q8_0(f->x + (size_t)t * K, f->xq + (size_t)t * f->xs, K);
}

/* Quantizes the weights to `type` (f->wq, rows f->rb apart) and computes the exact products. */
static void fixture_weights(gemm_fixture *f, uint32_t type) {
    free(f->wq);
    cllm_ggml_row_size(type, f->K, &f->rb);
    f->wq = malloc(f->rb * (size_t)f->rows);
    for (int i = 0; i < f->rows; i++)
        cllm_ggml_from_f32(type, f->w + (size_t)i * f->K, f->wq + (size_t)i * f->rb, f->K);
    for (int t = 0; t < f->n; t++)
        for (int i = 0; i < f->rows; i++)
            f->want[(size_t)t * f->ldo + i] = (float)exact_dot(type, f->wq + (size_t)i * f->rb,
                                                               f->xq + (size_t)t * f->xs, f->K,
                                                               &f->mag[(size_t)t * f->rows + i]);
}

static void fixture_poison(gemm_fixture *f) {
    for (size_t i = 0; i < (size_t)f->n * f->ldo; i++) f->got[i] = -12345.0f; /* padding must stay untouched */
}

/* Wrong outputs (beyond float summation order) in f->got; *pad: padding written. */
static int fixture_wrong(const gemm_fixture *f, int *pad) {
    int bad = 0;
    *pad = 0;
    for (int t = 0; t < f->n; t++) {
        for (int i = 0; i < f->rows; i++)
            bad += !(fabs(f->got[(size_t)t * f->ldo + i] - f->want[(size_t)t * f->ldo + i]) <=
                     1e-5 * f->mag[(size_t)t * f->rows + i] + 1e-30);
        for (size_t i = (size_t)f->rows; i < f->ldo; i++) *pad += f->got[(size_t)t * f->ldo + i] != -12345.0f;
    }
    return bad;
}

static void fixture_free(gemm_fixture *f) {
    free(f->w), free(f->x), free(f->xq), free(f->wq), free(f->want), free(f->got), free(f->mag);
}

/* The batched product of every backend against the reference dots, on
 * ragged shapes: rows and tokens not multiples of the 4 x 4 VNNI tile, an odd
 * block count (K = 800), several token panels, rows too long for the panel,
 * strided activations and output; plus the threaded cllm_quant_gemm. */
static void test_quant_gemm_matches_reference(void) {
    cllm_rng r;
    cllm_rng_seed(&r, 16);
    const uint32_t types[2] = {CLLM_GGML_Q8_0, CLLM_GGML_Q4_0};
    /* rows, n, K: n = 21 spans two VNNI token panels, K = 12352 is past the panel (row-dot fallback) */
    const int shapes[6][3] = {{1, 1, 32}, {5, 9, 96}, {37, 4, 800}, {64, 13, 256}, {9, 21, 160}, {3, 2, 12352}};
    for (int sh = 0; sh < 6; sh++) {
        gemm_fixture f;
        fixture_init(&f, &r, shapes[sh][0], shapes[sh][1], shapes[sh][2], 3);
        for (int ty = 0; ty < 2; ty++) {
            fixture_weights(&f, types[ty]);
            for (int b = 0; b <= CLLM_QUANT_COUNT; b++) {
                /* b == CLLM_QUANT_COUNT: the threaded wrapper on the dispatched table */
                const cllm_quant_kernels *k =
                    b < CLLM_QUANT_COUNT ? cllm_quant_kernels_backend((cllm_quant_backend)b) : cllm_quant_kernels_get();
                if (!k) continue;
                fixture_poison(&f);
                if (b < CLLM_QUANT_COUNT)
                    k->gemm_q8(types[ty], f.wq, f.rb, f.rows, f.xq, f.xs, f.n, f.K, f.got, f.ldo);
                else
                    cllm_quant_gemm(k, types[ty], f.wq, f.rb, f.rows, f.K, f.xq, f.xs, f.n, f.got, f.ldo);
                int pad, bad = fixture_wrong(&f, &pad);
                CHECK(bad == 0 && pad == 0, "gemm %s%s %s rows=%d n=%d K=%d: %d wrong, %d padding written", k->name,
                      b < CLLM_QUANT_COUNT ? "" : " (threaded)", cllm_ggml_type_name(types[ty]), f.rows, f.n, f.K,
                      bad, pad);
            }
        }
        fixture_free(&f);
    }
}

/* Packed bytes of x16 layout P (groups of 16 rows of wq, rb bytes per row)
 * that differ from quant.h's definition: group g, block b, value e of row j. */
static int x16_layout_wrong(uint32_t type, const uint8_t *wq, size_t rb, int groups, int K, const uint8_t *P,
                            size_t gs) {
    const int q4 = type == CLLM_GGML_Q4_0;
    const size_t qb = q4 ? 256 : 512, bb = q4 ? 18 : 34;
    const size_t sb = ((size_t)(K / 32) * 32 + 63) / 64 * 64; /* scales, then quants */
    int bad = 0;
    for (int g = 0; g < groups; g++)
        for (int j = 0; j < 16; j++)
            for (int b = 0; b < K / 32; b++) {
                const uint8_t *blk = wq + (size_t)(16 * g + j) * rb + (size_t)b * bb;
                const uint8_t *pq = P + (size_t)g * gs + sb + (size_t)b * qb;
                const uint8_t *ps = P + (size_t)g * gs + (size_t)b * 32 + 2 * (size_t)j;
                bad += ps[0] != blk[0] || ps[1] != blk[1];
                for (int e = 0; e < 32; e++) {
                    int val, packed;
                    if (q4) {
                        val = e < 16 ? (blk[2 + e] & 0x0F) : (blk[2 + e - 16] >> 4);
                        const uint8_t byte = pq[64 * ((e % 16) / 4) + 4 * j + e % 4];
                        packed = e < 16 ? (byte & 0x0F) : (byte >> 4);
                    } else {
                        val = (int8_t)blk[2 + e] + 128;
                        packed = pq[64 * (e / 4) + 4 * j + e % 4];
                    }
                    bad += val != packed;
                }
            }
    return bad;
}

/* The x16 repacked product (quant.h) of every backend that has one, against
 * exact dots of the file-layout rows: one group, an odd block count
 * (K = 800), token counts that leave 4-, 2- and 1-token panels (13) and
 * span two 64-token blocks (70), one token over 6 groups (the decode path,
 * four groups at a time plus two alone), a strided output whose padding
 * must stay untouched; and the packed bytes against the layout's definition. */
static void test_quant_gemm_x16_matches_reference(void) {
    cllm_rng r;
    cllm_rng_seed(&r, 17);
    const uint32_t types[2] = {CLLM_GGML_Q8_0, CLLM_GGML_Q4_0};
    const int shapes[6][3] = {{1, 1, 32}, {3, 13, 800}, {4, 70, 256}, {2, 9, 3072}, {5, 2, 96}, {6, 1, 800}}; /* groups, n, K */
    int tested = 0;
    for (int sh = 0; sh < 6; sh++) {
        const int groups = shapes[sh][0];
        gemm_fixture f;
        fixture_init(&f, &r, 16 * groups, shapes[sh][1], shapes[sh][2], 5);
        for (int ty = 0; ty < 2; ty++) {
            fixture_weights(&f, types[ty]);
            const size_t pb = cllm_quant_x16_bytes(types[ty], groups, f.K);
            uint8_t *P = aligned_alloc(64, (pb + 63) / 64 * 64);
            cllm_quant_x16_pack(types[ty], f.wq, f.rb, groups, f.K, P);
            const int layout_bad = x16_layout_wrong(types[ty], f.wq, f.rb, groups, f.K, P, pb / (size_t)groups);
            CHECK(layout_bad == 0, "x16 %s groups=%d K=%d: %d packed bytes off the layout",
                  cllm_ggml_type_name(types[ty]), groups, f.K, layout_bad);
            for (int b = 0; b < CLLM_QUANT_COUNT; b++) {
                const cllm_quant_kernels *k = cllm_quant_kernels_backend((cllm_quant_backend)b);
                if (!k || !k->gemm_x16) continue;
                tested++;
                fixture_poison(&f);
                cllm_quant_gemm_x16(k, types[ty], P, groups, f.K, f.xq, f.xs, f.n, f.got, f.ldo);
                int pad, bad = fixture_wrong(&f, &pad);
                CHECK(bad == 0 && pad == 0, "gemm_x16 %s %s groups=%d n=%d K=%d: %d wrong, %d padding written", k->name,
                      cllm_ggml_type_name(types[ty]), groups, f.n, f.K, bad, pad);
            }
            free(P);
        }
        fixture_free(&f);
    }
    if (cllm_quant_kernels_backend(CLLM_QUANT_AVX512_VNNI))
        CHECK(tested > 0, "this CPU has VNNI but no backend ran the x16 product");
    else
        printf("  (no VNNI on this CPU: the x16 kernel is not exercised, the layout is)\n");
}

/* bf16 weights in the x16 layout (vdpbf16ps) against exact products of the
 * bf16 weights and the activations rounded to bf16 (what the kernel
 * multiplies; bf16 x bf16 is exact in f32, so only the f32 summation order
 * differs): panels of 8/4/2/1 tokens, one token (the decode path with four
 * accumulators), a strided output; and the packed bytes. The same for
 * oneDNN's bf16 matmul on the file layout (the AMX route), with rows
 * further apart than their bytes. */
/* Outputs of the first `run` rows (of `rows` in want/mag) off the exact
 * products beyond f32 summation order; *pad: cells past them written. */
static int bf16_wrong(const float *got, const float *want, const double *mag, int n, int run, int rows, size_t ldo,
                      int *pad) {
    int bad = 0;
    *pad = 0;
    for (int t = 0; t < n; t++) {
        for (int i = 0; i < run; i++)
            bad += !(fabs(got[(size_t)t * ldo + i] - want[(size_t)t * ldo + i]) <= 1e-5 * mag[(size_t)t * rows + i] + 1e-30);
        for (size_t i = (size_t)run; i < ldo; i++) *pad += got[(size_t)t * ldo + i] != -12345.0f;
    }
    return bad;
}

static void test_quant_bf16_products_match_reference(void) {
    cllm_rng r;
    cllm_rng_seed(&r, 18);
    const int shapes[4][3] = {{1, 1, 32}, {3, 13, 96}, {2, 70, 800}, {5, 1, 768}}; /* groups, n, K */
    int tested = 0, onednn_ran = 0;
    for (int sh = 0; sh < 4; sh++) {
        const int groups = shapes[sh][0], rows = 16 * groups, n = shapes[sh][1], K = shapes[sh][2];
        const size_t ldo = (size_t)rows + 3, rb = (size_t)K * 2 + 64 * (size_t)(sh % 2);
        float *w = malloc(sizeof(float) * (size_t)rows * K), *x = malloc(sizeof(float) * (size_t)n * K);
        float *want = malloc(sizeof(float) * (size_t)n * ldo), *got = malloc(sizeof(float) * (size_t)n * ldo);
        double *mag = malloc(sizeof(double) * (size_t)n * rows);
        uint8_t *wb = malloc(rb * (size_t)rows);
        fill(&r, w, (int64_t)rows * K, 0.05f);
        fill(&r, x, (int64_t)n * K, 1.0f);
        for (int i = 0; i < rows; i++) cllm_ggml_from_f32(CLLM_GGML_BF16, w + (size_t)i * K, wb + (size_t)i * rb, K);
        for (int t = 0; t < n; t++)
            for (int i = 0; i < rows; i++) {
                double sum = 0, m = 0;
                for (int e = 0; e < K; e++) {
                    uint16_t h;
                    memcpy(&h, wb + (size_t)i * rb + 2 * (size_t)e, 2);
                    const double term = (double)cllm_bf16_to_fp32(h) *
                                        cllm_bf16_to_fp32(cllm_fp32_to_bf16(x[(size_t)t * K + e]));
                    sum += term, m += fabs(term);
                }
                want[(size_t)t * ldo + i] = (float)sum, mag[(size_t)t * rows + i] = m;
            }
        const size_t pb = cllm_quant_x16_bytes(CLLM_GGML_BF16, groups, K);
        uint8_t *P = aligned_alloc(64, (pb + 63) / 64 * 64);
        cllm_quant_x16_pack(CLLM_GGML_BF16, wb, rb, groups, K, P);
        int layout_bad = 0;
        for (int g = 0; g < groups; g++)
            for (int j = 0; j < 16; j++)
                for (int e = 0; e < K; e++)
                    layout_bad += memcmp(P + (size_t)g * (pb / (size_t)groups) + 64 * (size_t)(e / 2) + 4 * (size_t)j +
                                             2 * (size_t)(e % 2),
                                         wb + (size_t)(16 * g + j) * rb + 2 * (size_t)e, 2) != 0;
        CHECK(layout_bad == 0, "x16 bf16 groups=%d K=%d: %d values off the layout", groups, K, layout_bad);
        for (int b = 0; b < CLLM_QUANT_COUNT; b++) {
            const cllm_quant_kernels *k = cllm_quant_kernels_backend((cllm_quant_backend)b);
            if (!k || !k->gemm_x16_bf16) continue;
            tested++;
            for (size_t i = 0; i < (size_t)n * ldo; i++) got[i] = -12345.0f;
            cllm_quant_gemm_x16_bf16(k, P, groups, K, x, n, got, ldo);
            int pad, bad = bf16_wrong(got, want, mag, n, rows, rows, ldo, &pad);
            CHECK(bad == 0 && pad == 0, "gemm_x16_bf16 %s groups=%d n=%d K=%d: %d wrong, %d padding written", k->name,
                  groups, n, K, bad, pad);
        }
        for (int b = 0; b < CLLM_QUANT_COUNT; b++) { /* oneDNN, each backend's activation rounding */
            const cllm_quant_kernels *k = cllm_quant_kernels_backend((cllm_quant_backend)b);
            if (!k) continue;
            for (size_t i = 0; i < (size_t)n * ldo; i++) got[i] = -12345.0f;
            const int rows_run = rows - (sh == 1); /* not a multiple of 16 */
            if (!cllm_quant_gemm_bf16_onednn(k, wb, rb, rows_run, K, x, n, got, ldo)) continue;
            onednn_ran++;
            int pad, bad = bf16_wrong(got, want, mag, n, rows_run, rows, ldo, &pad);
            CHECK(bad == 0 && pad == 0, "bf16 oneDNN (%s rounding) rows=%d n=%d K=%d: %d wrong, %d past the rows written",
                  k->name, rows_run, n, K, bad, pad);
        }
        free(P), free(w), free(x), free(want), free(got), free(mag), free(wb);
    }
    printf("  oneDNN bf16 matmul: %s (%d products checked)\n", cllm_quant_bf16_onednn_impl(), onednn_ran);
    if (cllm_kernels_get()->cpu_features & CLLM_CPU_AVX512_BF16)
        CHECK(onednn_ran > 0, "this CPU has AVX512-BF16 but oneDNN ran no bf16 matmul");
    if (cllm_kernels_get()->cpu_features & CLLM_CPU_AVX512_BF16)
        CHECK(tested > 0, "this CPU has AVX512-BF16 but no backend ran the bf16 x16 product");
    else
        printf("  (no AVX512-BF16 on this CPU: the bf16 x16 kernel is not exercised, the layout is)\n");
}

int main(void) {
    TEST_RUN(test_quant_backends_listed);
    TEST_RUN(test_quant_q8_0_block_layout);
    TEST_RUN(test_quant_q4_0_block_layout);
    TEST_RUN(test_quant_activation_quantizer_matches_reference);
    TEST_RUN(test_quant_integer_dots_match_reference);
    TEST_RUN(test_quant_float_dots_match_reference);
    TEST_RUN(test_quant_dequant_exact);
    TEST_RUN(test_quant_round_f16_matches_scalar);
    TEST_RUN(test_quant_matvec_all_types);
    TEST_RUN(test_quant_other_types_roundtrip);
    TEST_RUN(test_quant_q8_K_activations);
    TEST_RUN(test_quant_other_dots_match_exact);
    TEST_RUN(test_quant_matvec_other_types);
    TEST_RUN(test_quant_gemm_matches_reference);
    TEST_RUN(test_quant_gemm_x16_matches_reference);
    TEST_RUN(test_quant_bf16_products_match_reference);
    return test_finish();
}
