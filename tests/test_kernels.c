/*
 * test_kernels.c: the fp32 GEMM fast path (oneDNN) against the scalar
 * reference on random and ragged shapes, every transpose combination,
 * strided operands, alpha/beta, the beta = 0 and K = 0 corners; the
 * CLLM_KERNELS=reference switch; thread control; the peak measurement's
 * argument checks; the SIMD elementwise kernels (max, exp, tanh) of every ISA
 * the CPU has against their libm references, ragged lengths and NaN; the
 * AdamW and sum-of-squares kernels bit for bit against their references.
 */
#include <float.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cllm/kernels/kernels.h"
#include "cllm/core/rng.h"
#include "test.h"
/* The per-ISA entry points, to test every variant this CPU can run, not
 * only the dispatched one. */
#include "../src/kernels/kernels_internal.h"

/* Must run before anything else initialises the dispatch table in this
 * process: the child sets the variable, then asks for the table. */
static void test_kernels_env_forces_reference(void) {
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        setenv("CLLM_KERNELS", "reference", 1);
        const cllm_kernels_table *kt = cllm_kernels_get();
        int ok = kt->reference == 1 && kt->gemm_backend == CLLM_GEMM_REFERENCE &&
                 strcmp(cllm_kernels_gemm_name(), "reference") == 0;
        _exit(ok ? 0 : 3);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child saw the reference table (status %d)",
          status);
    /* This process dispatches to oneDNN unless the suite itself runs under
     * CLLM_KERNELS=reference (then every other test here checks the reference). */
    const char *env = getenv("CLLM_KERNELS");
    int forced = env && strcmp(env, "reference") == 0;
    CHECK(cllm_kernels_get()->reference == forced &&
              strcmp(cllm_kernels_gemm_name(), forced ? "reference" : "onednn") == 0,
          "backend is %s with CLLM_KERNELS=%s", cllm_kernels_gemm_name(), env ? env : "(unset)");
}

static void fill(cllm_rng *rng, float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = 2.0f * cllm_rng_float(rng) - 1.0f;
}

/* Runs one case through cllm_sgemm and the reference and checks the worst element. */
static void gemm_case(cllm_rng *rng, int ta, int tb, int M, int N, int K, int pad, float alpha,
                      float beta) {
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb,
           nc = (size_t)M * ldc;
    float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b);
    float *c = malloc(nc * sizeof *c), *r = malloc(nc * sizeof *r);
    fill(rng, a, na);
    fill(rng, b, nb);
    fill(rng, c, nc);
    memcpy(r, c, nc * sizeof *r);
    cllm_sgemm(ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
    cllm_sgemm_reference(ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, r, ldc);
    double worst = -1;
    int wi = 0, wj = 0;
    double wtol = 0;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            /* Error bound of a float dot product of length K: K * eps * sum|a||b|
             * (Higham, Accuracy and Stability, sec. 3.1), here with inputs in
             * [-1, 1] so sum|a||b| <= K; plus the beta*C rounding. */
            double tol = (double)(K + 2) * FLT_EPSILON * (fabs(alpha) * K + fabs(beta)) + 1e-7;
            double e = fabs((double)c[(size_t)i * ldc + j] - r[(size_t)i * ldc + j]) - tol;
            if (e > worst) worst = e, wi = i, wj = j, wtol = tol;
        }
        /* Padding columns past N must be untouched. */
        for (int j = N; j < ldc; j++)
            CHECK(c[(size_t)i * ldc + j] == r[(size_t)i * ldc + j], "padding written");
    }
    if (M && N) {
        char what[128];
        snprintf(what, sizeof what, "C[%d,%d] of %s%s %dx%dx%d pad %d", wi, wj, ta ? "T" : "N",
                 tb ? "T" : "N", M, N, K, pad);
        CHECK_NEAR(c[(size_t)wi * ldc + wj], r[(size_t)wi * ldc + wj], wtol, 0.0, what);
    }
    free(a), free(b), free(c), free(r);
}

/* Rows 12..160 of the A B^T form take oneDNN's transposed route (gemm_onednn.c). */
static void test_kernels_gemm_matches_reference(void) {
    cllm_rng rng;
    cllm_rng_seed(&rng, 42);
    static const int shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 33, 65}, {64, 48, 80},
                                    {1, 70, 9}, {40, 1, 3}, {5, 6, 300}, {12, 7, 5}, {160, 40, 24}, {161, 9, 3}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                gemm_case(&rng, ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 0, 1.0f, 0.0f);
                gemm_case(&rng, ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 3, 0.5f, 1.0f);
            }
    /* Random ragged shapes, alpha/beta and strides. */
    for (int it = 0; it < 20; it++) {
        int M = 1 + (int)cllm_rng_below(&rng, 50), N = 1 + (int)cllm_rng_below(&rng, 50);
        int K = 1 + (int)cllm_rng_below(&rng, 90), pad = (int)cllm_rng_below(&rng, 4);
        gemm_case(&rng, (int)cllm_rng_below(&rng, 2), (int)cllm_rng_below(&rng, 2), M, N, K, pad,
                  -1.5f, 0.25f);
    }
}

static void test_kernels_gemm_beta_zero_ignores_nan(void) {
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1}; /* A[2,3], B[3,2] */
    float c[4] = {NAN, NAN, INFINITY, NAN};
    cllm_sgemm(0, 0, 2, 2, 3, 1.0f, a, 3, b, 2, 0.0f, c, 2);
    /* Hand-computed: [1 2 3; 4 5 6] [1 0; 0 1; 1 1] = [4 5; 10 11] (exact in float). */
    CHECK(c[0] == 4 && c[1] == 5 && c[2] == 10 && c[3] == 11, "got %g %g %g %g", c[0], c[1], c[2],
          c[3]);
    float r[4] = {NAN, NAN, NAN, NAN};
    cllm_sgemm_reference(0, 0, 2, 2, 3, 1.0f, a, 3, b, 2, 0.0f, r, 2);
    CHECK(r[0] == 4 && r[1] == 5 && r[2] == 10 && r[3] == 11, "reference got %g %g %g %g", r[0],
          r[1], r[2], r[3]);
}

static void test_kernels_gemm_k_zero_scales_c(void) {
    float c[4] = {1, 2, 3, 4}, z[4] = {NAN, 1, 2, 3};
    cllm_sgemm(0, 0, 2, 2, 0, 1.0f, NULL, 1, NULL, 2, 0.5f, c, 2);
    CHECK(c[0] == 0.5f && c[1] == 1 && c[2] == 1.5f && c[3] == 2, "K=0 gives beta*C");
    cllm_sgemm(0, 0, 2, 2, 0, 1.0f, NULL, 1, NULL, 2, 0.0f, z, 2);
    CHECK(z[0] == 0 && z[1] == 0 && z[2] == 0 && z[3] == 0, "K=0, beta=0 zeroes C (even NaN)");
}

static void test_kernels_threads_and_features(void) {
    CHECK(cllm_kernels_set_threads(1) == 1, "one thread");
    CHECK(cllm_kernels_threads() == 1, "threads reads back");
    CHECK(cllm_kernels_set_threads(2) == 2, "two threads");
    CHECK(cllm_kernels_set_threads(0) >= 1, "0 means all CPUs");
    char buf[128];
    cllm_kernels_features_string(buf, sizeof buf);
    CHECK(buf[0] != '\0', "feature string");
    /* The feature bits must agree with the compiler's own CPUID reading. */
    __builtin_cpu_init();
    unsigned f = cllm_kernels_get()->cpu_features;
    CHECK(!!(f & CLLM_CPU_AVX2) == (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")),
          "avx2 bit (%s)", buf);
    CHECK(!!(f & CLLM_CPU_AVX512) <= !!__builtin_cpu_supports("avx512f"), "avx512 bit (%s)", buf);
    CHECK(cllm_kernels_wait_policy()[0] != '\0', "wait policy string");
}

static void test_kernels_measure_rejects_bad_sizes(void) {
    cllm_error err;
    double g = -1;
    CHECK(cllm_kernels_measure_gemm(0, 4, 4, 1, &g, &err) == CLLM_ERR_ARG, "M = 0 rejected");
    CHECK(strstr(err.msg, "M=0") != NULL, "message names the size: %s", err.msg);
    CHECK(cllm_kernels_measure_gemm(8, 8, 8, 0, &g, &err) == CLLM_ERR_ARG, "reps = 0 rejected");
    CHECK(cllm_kernels_measure_gemm(16, 16, 16, 2, &g, &err) == CLLM_OK && g > 0,
          "a small measurement gives a positive rate");
}

typedef struct {
    const char *name;
    unsigned need; /* CLLM_CPU_* bits */
    float (*vmax)(const float *, size_t);
    double (*vexp)(float *, const float *, float, size_t);
    void (*vtanh)(float *, const float *, size_t);
} vec_impl;

static const vec_impl vec_impls[] = {
    {"dispatched", 0, cllm_vmax, cllm_vexp_shift_sum, cllm_vtanh},
    {"avx2", CLLM_CPU_AVX2, cllm_kernels_vmax_avx2, cllm_kernels_vexp_shift_sum_avx2,
     cllm_kernels_vtanh_avx2},
    {"avx512", CLLM_CPU_AVX512, cllm_kernels_vmax_avx512, cllm_kernels_vexp_shift_sum_avx512,
     cllm_kernels_vtanh_avx512},
};

static void test_kernels_vecmath_matches_reference(void) {
    static const size_t lens[] = {0, 1, 7, 15, 16, 17, 33, 255, 256, 257, 1000};
    enum { MAXN = 1000 };
    static float x[MAXN], y[MAXN], r[MAXN];
    cllm_rng rng;
    cllm_rng_seed(&rng, 7);
    unsigned feat = cllm_kernels_get()->cpu_features;
    int tested = 0;
    for (size_t v = 0; v < sizeof vec_impls / sizeof vec_impls[0]; v++) {
        const vec_impl *im = &vec_impls[v];
        if ((feat & im->need) != im->need) continue;
        tested++;
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            size_t n = lens[li];
            /* exp over [-100, 88]: the whole normal range plus the denormal tail. */
            for (size_t i = 0; i < n; i++) x[i] = -100.0f + 188.0f * cllm_rng_float(&rng);
            double sum = im->vexp(y, x, 0.0f, n);
            double rsum = cllm_vexp_shift_sum_reference(r, x, 0.0f, n);
            for (size_t i = 0; i < n; i++) {
                /* about 2 ulp (2.4e-7) relative; below the smallest normal float
                 * (exp(-87.3) = 1.2e-38) AVX2 returns 0, hence the absolute term. */
                if (!(fabs((double)y[i] - r[i]) <= 4e-7 * r[i] + 1.2e-38)) {
                    CHECK_NEAR(y[i], r[i], 1.2e-38, 4e-7, im->name);
                    break;
                }
            }
            /* the sum: float partial sums of <= 256 terms, rounding ~1e-6 relative */
            CHECK_NEAR(sum, rsum, 1e-30, 2e-6, "exp sum");
            /* shifted softmax-style input: all <= 0 after the shift */
            for (size_t i = 0; i < n; i++) x[i] = 20.0f * cllm_rng_float(&rng) - 10.0f;
            float m = im->vmax(x, n);
            CHECK(m == cllm_vmax_reference(x, n), "%s vmax n=%zu", im->name, n);
            sum = im->vexp(y, x, m, n);
            rsum = cllm_vexp_shift_sum_reference(r, x, m, n);
            CHECK_NEAR(sum, rsum, 1e-30, 2e-6, "shifted exp sum");
            /* tanh over [-12, 12], saturation included: 3e-7 absolute */
            for (size_t i = 0; i < n; i++) x[i] = 24.0f * cllm_rng_float(&rng) - 12.0f;
            if (n > 2) x[0] = 1e-6f, x[1] = -40.0f;
            im->vtanh(y, x, n);
            cllm_vtanh_reference(r, x, n);
            for (size_t i = 0; i < n; i++)
                if (!(fabs((double)y[i] - r[i]) <= 3e-7)) {
                    CHECK_NEAR(y[i], r[i], 3e-7, 0, im->name);
                    break;
                }
        }
        /* NaN in, NaN out; in place allowed. */
        float nan_in[20];
        for (int i = 0; i < 20; i++) nan_in[i] = (float)i * 0.1f;
        nan_in[3] = NAN, nan_in[18] = NAN;
        float out[20];
        double s = im->vexp(out, nan_in, 0.0f, 20);
        CHECK(isnan(out[3]) && isnan(out[18]) && isnan(s), "%s exp propagates NaN", im->name);
        CHECK(out[4] == out[4] && fabs(out[4] - expf(0.4f)) < 1e-6, "%s exp beside NaN", im->name);
        im->vtanh(nan_in, nan_in, 20);
        CHECK(isnan(nan_in[3]) && isnan(nan_in[18]), "%s tanh propagates NaN", im->name);
        CHECK(fabs(nan_in[5] - tanhf(0.5f)) < 3e-7, "%s tanh in place", im->name);
    }
    CHECK(tested >= 1, "at least the dispatched variant ran");
}


/* AdamW and the sum of squares: every ISA variant the CPU has gives the
 * reference's exact bits (same IEEE operations in the same order), on
 * ragged lengths, with and without decay, clipping scale and NaN. */
typedef struct {
    const char *name;
    unsigned need;
    void (*adamw)(float *, const float *, float *, float *, size_t, const cllm_adamw_coefs *);
    double (*sumsq)(const float *, size_t);
} optim_impl;

static const optim_impl optim_impls[] = {
    {"avx2", CLLM_CPU_AVX2, cllm_kernels_vadamw_avx2, cllm_kernels_vsumsq_avx2},
    {"avx512", CLLM_CPU_AVX512, cllm_kernels_vadamw_avx512, cllm_kernels_vsumsq_avx512},
};

static int same_bits(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof *a) == 0;
}

static void test_kernels_adamw_matches_reference_bitwise(void) {
    static const size_t lens[] = {0, 1, 7, 8, 15, 16, 17, 31, 33, 100, 1000, 40000};
    enum { MAXN = 40000 };
    static float p0[MAXN], g[MAXN], m0[MAXN], v0[MAXN];
    static float p[MAXN], m[MAXN], v[MAXN], rp[MAXN], rm[MAXN], rv[MAXN];
    cllm_rng rng;
    cllm_rng_seed(&rng, 11);
    unsigned feat = cllm_kernels_get()->cpu_features;
    /* step-3-like coefficients (bias corrections far from 1), two variants */
    cllm_adamw_coefs k = {1.0f, 1.0f - 3e-3f * 0.1f, 0.9f, 0.1f, 0.95f, 0.05f, -3e-3f / 0.271f, 0.3706f, 1e-8f, 1};
    int tested = 0;
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t n = lens[li];
        for (size_t i = 0; i < n; i++) {
            p0[i] = 2.0f * cllm_rng_float(&rng) - 1.0f;
            g[i] = (cllm_rng_float(&rng) - 0.5f) * (i % 3 ? 1e-2f : 1e-6f);
            m0[i] = (cllm_rng_float(&rng) - 0.5f) * 1e-2f;
            v0[i] = cllm_rng_float(&rng) * 1e-5f;
        }
        if (n > 5) g[5] = NAN;
        for (int variant = 0; variant < 2; variant++) {
            k.decay = variant == 0;
            k.grad_scale = variant == 0 ? 1.0f : 0.37f;
            memcpy(rp, p0, n * 4), memcpy(rm, m0, n * 4), memcpy(rv, v0, n * 4);
            cllm_vadamw_reference(rp, g, rm, rv, n, &k);
            for (size_t v_ = 0; v_ < sizeof optim_impls / sizeof optim_impls[0]; v_++) {
                const optim_impl *im = &optim_impls[v_];
                if ((feat & im->need) != im->need) continue;
                tested++;
                memcpy(p, p0, n * 4), memcpy(m, m0, n * 4), memcpy(v, v0, n * 4);
                im->adamw(p, g, m, v, n, &k);
                CHECK(same_bits(p, rp, n) && same_bits(m, rm, n) && same_bits(v, rv, n),
                      "%s adamw n=%zu variant %d differs from the reference", im->name, n, variant);
            }
            /* the threaded entry point (chunks) gives the same bits too */
            memcpy(p, p0, n * 4), memcpy(m, m0, n * 4), memcpy(v, v0, n * 4);
            cllm_vadamw(p, g, m, v, n, &k);
            CHECK(same_bits(p, rp, n) && same_bits(m, rm, n) && same_bits(v, rv, n),
                  "cllm_vadamw n=%zu variant %d", n, variant);
            if (n > 5) CHECK(isnan(rp[5]) && isnan(rm[5]), "NaN gradient propagates");
        }
        if (n > 5) g[5] = 1e-3f;
        double ref = cllm_vsumsq_reference(g, n), direct = 0;
        for (size_t i = 0; i < n; i++) direct += (double)g[i] * g[i];
        /* different summation order of n <= 40000 positive double terms:
         * within n * 2^-53 = 4.4e-12 relative */
        CHECK_NEAR(ref, direct, 1e-300, 5e-12, "sumsq reference vs serial sum");
        CHECK(cllm_vsumsq(g, n) == ref, "cllm_vsumsq n=%zu", n);
        for (size_t v_ = 0; v_ < sizeof optim_impls / sizeof optim_impls[0]; v_++) {
            const optim_impl *im = &optim_impls[v_];
            if ((feat & im->need) != im->need) continue;
            CHECK(im->sumsq(g, n) == ref, "%s sumsq n=%zu bits", im->name, n);
        }
    }
    float big[3] = {3e30f, -4e30f, 0.0f}; /* squares overflow float, not double */
    /* float inputs 3e30, 4e30 are not exactly representable: 1e-7 relative */
    CHECK_NEAR(cllm_vsumsq(big, 3), 25e60, 0, 1e-6, "sumsq accumulates in double");
    CHECK(tested >= 1 || (feat & CLLM_CPU_AVX2) == 0, "the CPU's SIMD variants ran");
}

int main(void) {
    TEST_RUN(test_kernels_env_forces_reference);
    TEST_RUN(test_kernels_gemm_matches_reference);
    TEST_RUN(test_kernels_gemm_beta_zero_ignores_nan);
    TEST_RUN(test_kernels_gemm_k_zero_scales_c);
    TEST_RUN(test_kernels_threads_and_features);
    TEST_RUN(test_kernels_measure_rejects_bad_sizes);
    TEST_RUN(test_kernels_vecmath_matches_reference);
    TEST_RUN(test_kernels_adamw_matches_reference_bitwise);
    return test_finish();
}
