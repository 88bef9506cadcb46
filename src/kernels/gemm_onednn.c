/*
 * gemm_onednn.c: fp32 GEMM through oneDNN's dnnl_sgemm.
 *
 * Does: forward our row-major convention to dnnl_sgemm, which uses the same
 * row-major convention. oneDNN JITs a kernel for the CPU it finds (AVX2,
 * AVX-512) and threads with OpenMP, using the count set by
 * cllm_kernels_set_threads. One shape is rerouted: a linear layer's forward
 * over a few rows (see few_rows below). Measured on the project machine
 * (AMD EPYC, AVX-512, 2 cores): see bench/bench_gemm.c.
 * Does not: cache primitives (dnnl_sgemm has no per-shape setup worth
 * caching at these sizes) or handle bf16.
 */
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include "kernels_internal.h"

/* Products below this many multiply-adds run on one thread: oneDNN splits
 * even tiny GEMMs across all threads, and a fork/join costs milliseconds
 * when another process holds the second core (decoding and small prompt
 * chunks of small models were several times slower on 2 threads than on 1).
 * 2^22 is ~40 microseconds of work on one core. */
#ifndef SGEMM_PAR_MIN /* overridable at build time (EXTRA_CFLAGS) to re-measure the trade-off */
#define SGEMM_PAR_MIN (1 << 22)
#endif

/* A linear layer's forward C[M,N] = A[M,K] B[N,K]^T over 12..160 rows (a
 * batched decode step, a server step, an RL rollout step, a 128-token
 * prompt chunk) runs up to twice as fast when oneDNN computes the
 * transpose T[N,M] = B A^T instead, which we then transpose into C. Measured
 * with dnnl 2.7 on the project machine, GFLOP/s C-form / T-form:
 *   M=16, N=2304, K=768: 1 thread 71 / 76, 2 threads 65 / 144
 *   M=16, N=768, K=3072: 1 thread 35 / 74, 2 threads 22 / 137
 *   M=64, N=2304, K=768: 2 threads 143 / 177;  M=128: 174 / 188
 * Below 12 rows and from ~256 rows the C form is the faster one. */
#define FEW_ROWS_MIN 12
#define FEW_ROWS_MAX 160

/* C = alpha A B^T + beta C through T = alpha B A^T; 0 when no scratch. */
static int few_rows(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                    float *C, int ldc) {
    float *T = cllm_thread_scratch(CLLM_SCRATCH_GEMM_T, (size_t)M * (size_t)N * sizeof(float));
    if (!T) return 0;
    dnnl_status_t st = dnnl_sgemm('N', 'T', N, M, K, alpha, B, ldb, A, lda, 0.0f, T, M);
    CLLM_ASSERT(st == dnnl_success);
    const cllm_kernels_table *kt = cllm_kernels_get();
    if (beta == 0.0f && (kt->cpu_features & CLLM_CPU_AVX512) && !kt->reference) {
        cllm_kernels_transpose_avx512(C, (size_t)ldc, T, (size_t)M, N, M); /* in registers */
        return 1;
    }
    /* C = T^T + beta C in 16 x 16 tiles: a column-at-a-time copy strides
     * ldc floats per store and took 16% of a 128-token prompt on 1 thread */
    enum { TILE = 16 };
    for (int j0 = 0; j0 < N; j0 += TILE) {
        const int j1 = j0 + TILE < N ? j0 + TILE : N;
        for (int i0 = 0; i0 < M; i0 += TILE) {
            const int i1 = i0 + TILE < M ? i0 + TILE : M;
            for (int i = i0; i < i1; i++) {
                float *c = C + (size_t)i * (size_t)ldc;
                if (beta == 0.0f)
                    for (int j = j0; j < j1; j++) c[j] = T[(size_t)j * (size_t)M + (size_t)i];
                else
                    for (int j = j0; j < j1; j++) c[j] = T[(size_t)j * (size_t)M + (size_t)i] + beta * c[j];
            }
        }
    }
    return 1;
}

void cllm_kernels_sgemm_onednn(int trans_a, int trans_b, int M, int N, int K, float alpha,
                               const float *A, int lda, const float *B, int ldb, float beta,
                               float *C, int ldc) {
    const int threads = omp_get_max_threads();
    const int few = !trans_a && trans_b && M >= FEW_ROWS_MIN && M <= FEW_ROWS_MAX;
    /* the T form splits well even at 1M multiply-adds (16-row server steps of a 10M model:
     * 16 clients 3.0-3.5x one client's tokens/s at 1M, 2.6-3.6x at SGEMM_PAR_MIN) */
    const double par_min = few ? (double)(1 << 20) : (double)SGEMM_PAR_MIN;
    const int serial = threads > 1 && (double)M * N * K < par_min && !omp_in_parallel();
    if (serial) omp_set_num_threads(1); /* oneDNN reads the OpenMP thread count per call */
    if (!(few && few_rows(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))) {
        dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A,
                                      lda, B, ldb, beta, C, ldc);
        /* Arguments were validated by cllm_sgemm; a failure here is our bug. */
        CLLM_ASSERT(st == dnnl_success);
    }
    if (serial) omp_set_num_threads(threads);
}
