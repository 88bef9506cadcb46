/*
 * kernels_internal.h: entry points shared between files of src/kernels/ only.
 */
#ifndef CLLM_KERNELS_INTERNAL_H
#define CLLM_KERNELS_INTERNAL_H

#include "cllm/kernels/kernels.h"

/* dnnl_sgemm behind the cllm_sgemm_fn signature (gemm_onednn.c). */
void cllm_kernels_sgemm_onednn(int trans_a, int trans_b, int M, int N, int K, float alpha,
                               const float *A, int lda, const float *B, int ldb, float beta,
                               float *C, int ldc);

/* C = alpha op(A) op(B) + beta C on bf16 operands through oneDNN's matmul
 * (gemm_bf16_onednn.c; kernels.h's convention, strides in elements); 0 when
 * oneDNN has no bf16 matmul here. Callable from inside a parallel region. */
int cllm_kernels_gemm_bf16_onednn(int trans_a, int trans_b, int M, int N, int K, float alpha, const uint16_t *A,
                                  int lda, const uint16_t *B, int ldb, float beta, float *C, int ldc);
/* For an update about to rewrite x[0..n) (matmul_bf16.c): the bf16 copy of
 * the registered tensor holding that range, to be rewritten along with it
 * (the entry then counts as current), when the range is the whole tensor
 * or the tensor's copy is current; else NULL, having marked every tensor
 * overlapping the range stale. Main thread, outside products. */
uint16_t *cllm_bf16_mirror_claim(const float *x, size_t n);
/* y[0..n) = x rounded to bf16 (the quant table's SIMD kernel when there is one). */
void cllm_bf16_round_span(const float *x, uint16_t *y, size_t n);
/* Elementwise kernels per ISA (vecmath_avx2.c, vecmath_avx512.c). */
float cllm_kernels_vmax_avx2(const float *x, size_t n);
double cllm_kernels_vexp_shift_sum_avx2(float *y, const float *x, float shift, size_t n);
void cllm_kernels_vtanh_avx2(float *y, const float *x, size_t n);
float cllm_kernels_vmax_avx512(const float *x, size_t n);
double cllm_kernels_vexp_shift_sum_avx512(float *y, const float *x, float shift, size_t n);
void cllm_kernels_vtanh_avx512(float *y, const float *x, size_t n);

/* Per-thread scratch (thread_scratch.c): a buffer of at least `bytes` for
 * this thread and purpose, valid until the next call with the same slot on
 * this thread; NULL when out of memory. GEMM_T: gemm_onednn.c's transposed
 * product; PRODUCT_ACT: activations in the form a weight product takes
 * (q8_0 scales and corrections, or bf16). */
typedef enum {
    CLLM_SCRATCH_GEMM_T = 0,
    CLLM_SCRATCH_PRODUCT_ACT,
    CLLM_SCRATCH_BF16_A, /* matmul_bf16.c: the operands of a bf16 product, rounded */
    CLLM_SCRATCH_BF16_B,
    CLLM_SCRATCH_ONEDNN, /* gemm_bf16_onednn.c: a oneDNN primitive's scratchpad */
    CLLM_SCRATCH_COUNT
} cllm_scratch_slot;
void *cllm_thread_scratch(cllm_scratch_slot slot, size_t bytes);

/* dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols (transpose_avx512.c). */
void cllm_kernels_transpose_avx512(float *dst, size_t ldd, const float *src, size_t lds, int rows, int cols);

/* AdamW per ISA (optim_avx2.c, optim_avx512.c); single-threaded. */
void cllm_kernels_vadamw_avx2(float *param, const float *grad, float *m, float *v, size_t n,
                              const cllm_adamw_coefs *k);
void cllm_kernels_vadamw_avx512(float *param, const float *grad, float *m, float *v, size_t n,
                                const cllm_adamw_coefs *k);
double cllm_kernels_vsumsq_avx2(const float *x, size_t n);
double cllm_kernels_vsumsq_avx512(const float *x, size_t n);

/* KV cache attention per ISA (kv_attn_avx512.c, kv_attn_avx2.c); contracts in kv_attn.h. */
void cllm_kv_attend_q8_0_avx512(float *out, float *scores, const void *q, const void *k, const void *v,
                                size_t row_bytes, int n, int HS, float scale);
void cllm_kv_attend_q8_0_avx2(float *out, float *scores, const void *q, const void *k, const void *v,
                              size_t row_bytes, int n, int HS, float scale);
void cllm_kv_attend_f16_avx512(float *out, float *scores, const void *q, const void *k, const void *v,
                               size_t row_bytes, int n, int HS, float scale);
void cllm_kv_attend_f16_avx2(float *out, float *scores, const void *q, const void *k, const void *v,
                             size_t row_bytes, int n, int HS, float scale);
void cllm_kv_attend_f32_avx512(float *out, float *scores, size_t ld_scores, const float *q, const float *k,
                               const float *v, size_t row_stride, int n, int n_kv, int group, int HS, float scale);
void cllm_kv_attend_f32_avx2(float *out, float *scores, size_t ld_scores, const float *q, const float *k,
                             const float *v, size_t row_stride, int n, int n_kv, int group, int HS, float scale);

#endif
