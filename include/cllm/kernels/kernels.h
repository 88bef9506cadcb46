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

#include "cllm/kernels/kv_attn.h"
#include "cllm/kernels/quant.h"
#include "cllm/core/status.h"

/* CPU feature bits, detected once with CPUID + XGETBV (OS support checked). */
enum {
    CLLM_CPU_AVX2 = 1u << 0,     /* AVX2 + FMA */
    CLLM_CPU_AVX512 = 1u << 1,   /* AVX-512 F/BW/VL/DQ */
    CLLM_CPU_AVX512_BF16 = 1u << 2,
    CLLM_CPU_AVX512_VNNI = 1u << 3,
    CLLM_CPU_AMX = 1u << 4,      /* AMX-TILE + AMX-BF16, tile data permitted by the OS */
    CLLM_CPU_AMX_INT8 = 1u << 5, /* AMX-TILE + AMX-INT8, same permission */
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

typedef enum {
    CLLM_VEC_REFERENCE = 0, /* scalar loops over libm expf/tanhf */
    CLLM_VEC_AVX2,
    CLLM_VEC_AVX512,
    CLLM_VEC_COUNT
} cllm_vec_backend;

struct cllm_adamw_coefs; /* AdamW coefficients, defined below */

/* The dispatch table: the one seam between the library and its kernels,
 * one entry per primitive (GEMM, elementwise math, the optimizer, quantized
 * inference, KV cache attention), filled once at first use from the CPU
 * features (dispatch.c). A future GPU backend plugs in here. The public
 * entry points (cllm_sgemm, cllm_vmax, cllm_vadamw, cllm_kv_attend_*, ...)
 * call through it. */
typedef struct {
    cllm_gemm_backend gemm_backend;
    cllm_sgemm_fn sgemm;
    cllm_vec_backend vec_backend;
    float (*vmax)(const float *x, size_t n);
    double (*vexp_shift_sum)(float *y, const float *x, float shift, size_t n);
    void (*vtanh)(float *y, const float *x, size_t n);
    /* optimizer (optim.c): one chunk of cllm_vadamw, single-threaded; cllm_vsumsq */
    void (*vadamw)(float *param, const float *grad, float *m, float *v, size_t n, const struct cllm_adamw_coefs *k);
    double (*vsumsq)(const float *x, size_t n);
    /* quantized inference (quant.h): the best table this CPU runs */
    const cllm_quant_kernels *quant;
    /* KV cache attention (kv_attn.h) and the ISA they were built for:
     * "reference", "avx2" or "avx512" */
    cllm_kv_attend_fn kv_attend_q8_0, kv_attend_f16;
    cllm_kv_attend_f32_fn kv_attend_f32;
    const char *kv_attend_name;
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

/* ---- mixed precision: the layers' matrix products ---------------------------
 * Every product in src/layers/ goes through cllm_gemm, which follows one
 * process-wide setting, like torch.set_float32_matmul_precision: fp32 runs
 * cllm_sgemm; bf16 rounds both f32 operands to bf16 (nearest even), multiplies
 * exactly and accumulates in f32 into the f32 C (cllm_gemm_bf16). Everything
 * else (softmax, norms, residuals, the loss, the optimizer) stays fp32; see
 * docs/PRECISION.md. Set it from the main thread, outside parallel regions. */
typedef enum {
    CLLM_PRECISION_FP32 = 0,
    CLLM_PRECISION_BF16,
    CLLM_PRECISION_COUNT
} cllm_precision;

/* "fp32" / "bf16"; and the reverse (1 when name is one of them). */
const char *cllm_precision_name(cllm_precision p);
int cllm_precision_from_name(const char *name, cllm_precision *out);
/* CLLM_OK when this CPU can run products at p (bf16: AVX512-BF16 or AMX, or
 * CLLM_KERNELS=reference); else CLLM_ERR_ARG naming what is missing. */
cllm_status cllm_precision_check(cllm_precision p, cllm_error *err);
/* Which kernel bf16 products run on here, in words (for `cllm version`). */
const char *cllm_precision_bf16_path(void);
void cllm_matmul_set_precision(cllm_precision p);
cllm_precision cllm_matmul_get_precision(void);

/* The layers' GEMM: cllm_sgemm or cllm_gemm_bf16 by the setting above. */
void cllm_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
               int ldb, float beta, float *C, int ldc);
/* The bf16 product on f32 operands, whatever the setting: oneDNN's bf16 matmul
 * (AMX tiles or AVX512-BF16, chosen by oneDNN at run time); the reference
 * under CLLM_KERNELS=reference. Callable inside parallel regions (one thread). */
void cllm_gemm_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                    const float *B, int ldb, float beta, float *C, int ldc);
/* Scalar reference: the same bf16-rounded operands, accumulated in double. */
void cllm_gemm_bf16_reference(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                              const float *B, int ldb, float beta, float *C, int ldc);

/* The bf16 mirror of the weights: an operand of cllm_gemm_bf16 that lies
 * inside a registered tensor w[n] is read from a bf16 copy made at its first
 * use after the tensor last changed, instead of being rounded per product.
 * cllm_vadamw keeps the copy current itself (it rounds each chunk into it
 * as it updates the chunk); whoever changes a registered tensor any other
 * way marks it stale. add: 0 when out of memory (products then round per
 * call). Not thread-safe: call from the main thread, outside products. */
int cllm_bf16_mirror_add(const float *w, size_t n);
void cllm_bf16_mirror_stale(const float *block, size_t n);
void cllm_bf16_mirror_clear(void);
size_t cllm_bf16_mirror_bytes(void);

/* ---- elementwise math for the layers (softmax, GELU) ----------------------
 * SIMD versions (AVX-512, AVX2) behind the dispatch table, each with a scalar
 * reference over libm (the *_reference functions, which tests compare with).
 * Accuracy of the SIMD paths: exp within about 2 ulp relative; tanh within
 * about 3e-7 absolute. NaN inputs give NaN outputs. y may alias x. */
/* Largest element of x[0..n); -inf when n == 0. */
float cllm_vmax(const float *x, size_t n);
float cllm_vmax_reference(const float *x, size_t n);
/* y[i] = exp(x[i] - shift); returns the sum of the y[i] (accumulated in double). */
double cllm_vexp_shift_sum(float *y, const float *x, float shift, size_t n);
double cllm_vexp_shift_sum_reference(float *y, const float *x, float shift, size_t n);
/* y[i] = tanh(x[i]). */
void cllm_vtanh(float *y, const float *x, size_t n);
void cllm_vtanh_reference(float *y, const float *x, size_t n);
/* "reference", "avx2" or "avx512". */
const char *cllm_kernels_vec_name(void);

/* ---- AdamW update (the optimizer's elementwise pass) ----------------------
 * Coefficients of one step, computed by src/train/adamw.c. Per element, in
 * this order, in fp32 (torch.optim.AdamW's order; see adamw.c):
 *   g = grad * grad_scale             (global-norm clipping fused in; 1 = none)
 *   p = decay ? p * decay_mul : p
 *   m = fma(g, one_m_b1, m * b1);  v = fma(one_m_b2 * g, g, v * b2)
 *   p = p + (neg_step * m) / (sqrt(v) / bias2_sqrt + eps)
 * grad is read only. Every SIMD variant gives the reference's bits. */
typedef struct cllm_adamw_coefs {
    float grad_scale, decay_mul;
    float b1, one_m_b1, b2, one_m_b2;
    float neg_step, bias2_sqrt, eps;
    int decay;
} cllm_adamw_coefs;
/* Threads over chunks of the arrays (OpenMP, current thread count). */
void cllm_vadamw(float *param, const float *grad, float *m, float *v, size_t n,
                 const cllm_adamw_coefs *k);
void cllm_vadamw_reference(float *param, const float *grad, float *m, float *v, size_t n,
                           const cllm_adamw_coefs *k);
/* Sum of x[i]^2 in double (single-threaded), for the global gradient norm.
 * A fixed summation order (16 lanes, element i in lane i % 16, lanes added
 * 0..15), so every ISA returns the reference's bits. */
double cllm_vsumsq(const float *x, size_t n);
double cllm_vsumsq_reference(const float *x, size_t n);

/* Measures the layers' GEMM at the current matmul precision (bf16: the
 * product on operands rounded beforehand) on C[M,N] = A[M,K] B[K,N]^T shapes
 * (the linear layer's forward form) with the current thread count: best of
 * `reps` timed runs after one warm-up. Writes GFLOP/s (2*M*N*K / seconds). */
cllm_status cllm_kernels_measure_gemm(int M, int N, int K, int reps, double *gflops,
                                      cllm_error *err);

/* The GEMM peak that MFU is computed against, at the current matmul
 * precision (fp32 or bf16): the best GFLOP/s of the
 * GPT-2 124M training shapes (256x768x2304, 256x768x3072, 256x3072x768) with
 * `threads` threads (<= 0: current count; restored afterwards). Takes about
 * a second. */
cllm_status cllm_kernels_measure_gemm_peak(int threads, double *gflops, cllm_error *err);

#endif
