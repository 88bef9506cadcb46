/*
 * gemm.c: the fp32 GEMM entry point (argument checks, dispatch) and its
 * scalar reference.
 *
 * Does: C[M,N] = alpha op(A) op(B) + beta C, row-major (cllm/kernels/kernels.h).
 * The reference accumulates each dot product in double, so it is the more
 * accurate side when tests compare it with the fast path.
 * Does not: tile, vectorise or cache anything; speed lives in gemm_onednn.c.
 */
#include <stddef.h>

#include "cllm/kernels/kernels.h"

static void gemm_check(int trans_a, int trans_b, int M, int N, int K, int lda, int ldb,
                       int ldc) {
    CLLM_ASSERT(M >= 0 && N >= 0 && K >= 0);
    CLLM_ASSERT((trans_a == 0 || trans_a == 1) && (trans_b == 0 || trans_b == 1));
    /* Stored A is [M,K] (or [K,M] when transposed); its rows need lda >= cols. */
    CLLM_ASSERT(lda >= (trans_a ? M : K) && lda >= 1);
    CLLM_ASSERT(ldb >= (trans_b ? K : N) && ldb >= 1);
    CLLM_ASSERT(ldc >= N && ldc >= 1);
}

void cllm_sgemm_reference(int trans_a, int trans_b, int M, int N, int K, float alpha,
                          const float *A, int lda, const float *B, int ldb, float beta, float *C,
                          int ldc) {
    gemm_check(trans_a, trans_b, M, N, K, lda, ldb, ldc);
#pragma omp parallel for schedule(static) if ((double)M * N * K > 1e5)
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double acc = 0.0;
            for (int k = 0; k < K; k++) {
                float a = trans_a ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = trans_b ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                acc += (double)a * b;
            }
            float *c = &C[(size_t)i * ldc + j];
            /* beta == 0 must not read C (it may hold NaN or garbage). */
            *c = (float)(alpha * acc + (beta == 0.0f ? 0.0 : (double)beta * *c));
        }
    }
}

void cllm_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    gemm_check(trans_a, trans_b, M, N, K, lda, ldb, ldc);
    if (M == 0 || N == 0) return;
    if (K == 0 || alpha == 0.0f) {
        /* Nothing to multiply: C = beta C (libraries differ on this corner). */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float *c = &C[(size_t)i * ldc + j];
                *c = beta == 0.0f ? 0.0f : beta * *c;
            }
        return;
    }
    cllm_kernels_get()->sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
