/*
 * gemm_onednn.c: fp32 GEMM through oneDNN's dnnl_sgemm.
 *
 * Does: forward our row-major convention to dnnl_sgemm, which uses the same
 * row-major convention, so no transposition trick is needed. oneDNN JITs a
 * kernel for the CPU it finds (AVX2, AVX-512) and threads with OpenMP, using
 * the count set by cllm_kernels_set_threads. Measured on the project machine
 * (AMD EPYC, AVX-512, 2 cores): see bench/bench_gemm.c.
 * Does not: cache primitives (dnnl_sgemm has no per-shape setup worth
 * caching at these sizes) or handle bf16.
 */
#include <oneapi/dnnl/dnnl.h>

#include "kernels_internal.h"

void cllm_kernels_sgemm_onednn(int trans_a, int trans_b, int M, int N, int K, float alpha,
                               const float *A, int lda, const float *B, int ldb, float beta,
                               float *C, int ldc) {
    dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A,
                                  lda, B, ldb, beta, C, ldc);
    /* Arguments were validated by cllm_sgemm; a failure here is our bug. */
    CLLM_ASSERT(st == dnnl_success);
}
