/*
 * gemm_measure.c: measures the dispatched fp32 GEMM's throughput, the peak
 * that training MFU is reported against.
 *
 * Does: time cllm_sgemm on linear-layer shapes (C = A B^T) with the current
 * or a given thread count; best of several runs after a warm-up.
 * Does not: print anything (bench/bench_gemm.c and the CLI do), or decide
 * whether the machine was busy (the caller records the load).
 */
#include <stdlib.h>
#include <time.h>

#include "cllm/kernels/kernels.h"

static double measure_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

cllm_status cllm_kernels_measure_gemm(int M, int N, int K, int reps, double *gflops,
                                      cllm_error *err) {
    if (M <= 0 || N <= 0 || K <= 0 || reps <= 0 || !gflops)
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "gemm measure: sizes M=%d N=%d K=%d and reps=%d must be positive", M,
                              N, K, reps);
    size_t na = (size_t)M * K, nb = (size_t)N * K, nc = (size_t)M * N;
    float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b), *c = malloc(nc * sizeof *c);
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "gemm measure: cannot allocate %dx%dx%d", M,
                              N, K);
    }
    /* Small deterministic values; denormals or NaN would distort timings. */
    for (size_t i = 0; i < na; i++) a[i] = (float)((i * 7 + 3) % 17) * 0.01f - 0.08f;
    for (size_t i = 0; i < nb; i++) b[i] = (float)((i * 5 + 1) % 13) * 0.01f - 0.06f;
    cllm_sgemm(0, 1, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N); /* warm-up: JIT, caches */
    double best = 1e300;
    for (int r = 0; r < reps; r++) {
        double t0 = measure_now();
        cllm_sgemm(0, 1, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
        double dt = measure_now() - t0;
        if (dt < best) best = dt;
    }
    free(a), free(b), free(c);
    if (best <= 0) best = 1e-9;
    *gflops = 2.0 * M * N * K / best * 1e-9;
    return CLLM_OK;
}

cllm_status cllm_kernels_measure_gemm_peak(int threads, double *gflops, cllm_error *err) {
    static const int shapes[][3] = {{256, 2304, 768}, {256, 3072, 768}, {256, 768, 3072}};
    int saved = cllm_kernels_threads();
    if (threads > 0) cllm_kernels_set_threads(threads);
    double best = 0;
    cllm_status st = CLLM_OK;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0] && st == CLLM_OK; i++) {
        double g = 0;
        st = cllm_kernels_measure_gemm(shapes[i][0], shapes[i][1], shapes[i][2], 10, &g, err);
        if (g > best) best = g;
    }
    if (threads > 0) cllm_kernels_set_threads(saved);
    if (st == CLLM_OK) *gflops = best;
    return st;
}
