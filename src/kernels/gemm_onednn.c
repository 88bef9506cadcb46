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
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include "kernels_internal.h"

/* Products below this many multiply-adds run on one thread: oneDNN splits
 * even tiny GEMMs across all threads, and a fork/join costs milliseconds
 * when another process holds the second core (decoding and small prompt
 * chunks of small models were several times slower on 2 threads than on 1).
 * 2^22 is ~40 microseconds of work on one core. */
#define SGEMM_PAR_MIN (1 << 22)

void cllm_kernels_sgemm_onednn(int trans_a, int trans_b, int M, int N, int K, float alpha,
                               const float *A, int lda, const float *B, int ldb, float beta,
                               float *C, int ldc) {
    const int threads = omp_get_max_threads();
    const int serial = threads > 1 && (double)M * N * K < (double)SGEMM_PAR_MIN && !omp_in_parallel();
    if (serial) omp_set_num_threads(1); /* oneDNN reads the OpenMP thread count per call */
    dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A,
                                  lda, B, ldb, beta, C, ldc);
    if (serial) omp_set_num_threads(threads);
    /* Arguments were validated by cllm_sgemm; a failure here is our bug. */
    CLLM_ASSERT(st == dnnl_success);
}
