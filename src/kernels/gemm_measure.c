/*
 * gemm_measure.c: measures the layers' GEMM throughput at the current matmul
 * precision, the peak that training MFU is reported against.
 *
 * Does: time cllm_sgemm (fp32) or the bf16 product on operands rounded
 * beforehand (bf16: what a step's products cost with the weights mirrored)
 * on linear-layer shapes (C = A B^T) with the current or a given thread
 * count; best of several runs after a warm-up.
 * Does not: print anything (bench/bench_gemm.c and the CLI do), or decide
 * whether the machine was busy (the caller records the load).
 */
#include <stdlib.h>
#include <time.h>

#include "cllm/kernels/kernels.h"
#include "kernels_internal.h"

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
    /* bf16: the operands rounded once, before the timing */
    const int bf16 = cllm_matmul_get_precision() == CLLM_PRECISION_BF16 && !cllm_kernels_get()->reference;
    uint16_t *ab = bf16 ? malloc(na * sizeof *ab) : NULL, *bb = bf16 ? malloc(nb * sizeof *bb) : NULL;
    if (bf16 && (!ab || !bb)) {
        free(a), free(b), free(c), free(ab), free(bb);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "gemm measure: cannot allocate %dx%dx%d", M, N, K);
    }
    if (bf16) {
        cllm_bf16_round_span(a, ab, na);
        cllm_bf16_round_span(b, bb, nb);
    }
    double best = 1e300;
    for (int r = -1; r < reps; r++) { /* r = -1: warm-up (JIT, caches) */
        double t0 = measure_now();
        if (!bf16) cllm_sgemm(0, 1, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
        else if (!cllm_kernels_gemm_bf16_onednn(0, 1, M, N, K, 1.0f, ab, K, bb, K, 0.0f, c, N)) break;
        double dt = measure_now() - t0;
        if (r >= 0 && dt < best) best = dt;
    }
    free(a), free(b), free(c), free(ab), free(bb);
    if (best == 1e300) return cllm_error_set(err, CLLM_ERR_ARG, "gemm measure: no bf16 matmul on this CPU");
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
