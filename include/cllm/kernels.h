/*
 * kernels.h: the compute kernels every layer stands on: fp32 GEMM, thread
 * control, CPU feature detection and the dispatch table.
 *
 * src/kernels/ is the only place with intrinsics or GEMM-library calls. Each
 * primitive has a plain scalar reference; the fast path (oneDNN's sgemm) is
 * chosen once, at the first call, from the CPU features. Setting the
 * environment variable CLLM_KERNELS=reference before that first call forces
 * the scalar reference everywhere (slow; for debugging and cross-checks).
 *
 * Threads: one count for OpenMP and oneDNN (this oneDNN build uses the OpenMP
 * runtime, so omp_set_num_threads governs both). Call
 * cllm_kernels_set_threads from the main thread, outside parallel regions.
 *
 * Spinning: libgomp reads OMP_WAIT_POLICY and GOMP_SPINCOUNT once, when the
 * library is loaded, so nothing in here can change how idle OpenMP threads
 * wait. On a shared 2-core machine an unbounded spin costs 5-14x; the CLI
 * sets a bounded spin (e.g. GOMP_SPINCOUNT=10000 or OMP_WAIT_POLICY=passive)
 * in the environment and re-executes itself before any parallel region runs.
 * cllm_kernels_wait_policy() reports what the process was started with.
 *
 * GEMM convention: row-major, C[M,N] = alpha * op(A)[M,K] op(B)[K,N] + beta*C,
 * op(X) = X or X^T; lda/ldb/ldc are the row strides (in floats) of A, B, C as
 * stored. beta == 0 overwrites C without reading it (NaN in C is ignored).
 */
#ifndef CLLM_KERNELS_H
#define CLLM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "cllm/status.h"

/* CPU feature bits, detected once with CPUID + XGETBV (OS support checked). */
enum {
    CLLM_CPU_AVX2 = 1u << 0,     /* AVX2 + FMA */
    CLLM_CPU_AVX512 = 1u << 1,   /* AVX-512 F/BW/VL/DQ */
    CLLM_CPU_AVX512_BF16 = 1u << 2,
    CLLM_CPU_AVX512_VNNI = 1u << 3,
    CLLM_CPU_AMX = 1u << 4,      /* AMX tile + bf16 (CPUID only; not requested) */
};

typedef enum {
    CLLM_GEMM_REFERENCE = 0, /* scalar loops, double accumulation */
    CLLM_GEMM_ONEDNN,        /* dnnl_sgemm */
    CLLM_GEMM_COUNT
} cllm_gemm_backend;

/* fp32 GEMM signature (see the convention above). trans_a/trans_b: 0 or 1. */
typedef void (*cllm_sgemm_fn)(int trans_a, int trans_b, int M, int N, int K, float alpha,
                              const float *A, int lda, const float *B, int ldb, float beta,
                              float *C, int ldc);

/* The dispatch table: one entry per primitive, filled once at first use.
 * A future GPU backend plugs in here. */
typedef struct {
    cllm_gemm_backend gemm_backend;
    cllm_sgemm_fn sgemm;
    unsigned cpu_features; /* CLLM_CPU_* bits */
    int reference;         /* 1 when CLLM_KERNELS=reference forced the scalar path */
} cllm_kernels_table;

/* Returns the table (borrowed, valid for the process), initialising it on the
 * first call. Thread-safe. */
const cllm_kernels_table *cllm_kernels_get(void);

/* "reference" or "onednn"; and a space-separated list of CPU features. */
const char *cllm_kernels_gemm_name(void);
void cllm_kernels_features_string(char *buf, size_t cap);

/* Threads for OpenMP loops and oneDNN. n <= 0 means the number of online CPUs.
 * Returns the count in effect. */
int cllm_kernels_set_threads(int n);
int cllm_kernels_threads(void);

/* The OpenMP wait settings in this process's environment, e.g.
 * "OMP_WAIT_POLICY=passive" or "GOMP_SPINCOUNT=10000" or "default (spins 300000)".
 * Borrowed static string. */
const char *cllm_kernels_wait_policy(void);

/* C = alpha op(A) op(B) + beta C through the dispatch table. M, N or K may be
 * 0 (K == 0 scales C by beta). Asserts on negative sizes or short strides. */
void cllm_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* The scalar reference, always available (tests compare against it). */
void cllm_sgemm_reference(int trans_a, int trans_b, int M, int N, int K, float alpha,
                          const float *A, int lda, const float *B, int ldb, float beta, float *C,
                          int ldc);

/* Measures the dispatched sgemm on C[M,N] = A[M,K] B[K,N]^T shapes (the
 * linear layer's forward form) with the current thread count: best of
 * `reps` timed runs after one warm-up. Writes GFLOP/s (2*M*N*K / seconds). */
cllm_status cllm_kernels_measure_gemm(int M, int N, int K, int reps, double *gflops,
                                      cllm_error *err);

/* The fp32 GEMM peak that MFU is computed against: the best GFLOP/s of the
 * GPT-2 124M training shapes (256x768x2304, 256x768x3072, 256x3072x768) with
 * `threads` threads (<= 0: current count; restored afterwards). Takes about
 * a second. */
cllm_status cllm_kernels_measure_gemm_peak(int threads, double *gflops, cllm_error *err);

#endif
