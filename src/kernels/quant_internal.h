/*
 * quant_internal.h: how dispatch.c fills the quantized-inference tables
 * from quant.c (the reference) and the per-ISA files (quant_avx2.c,
 * quant_avx512.c, quant_amx.c). Private to src/kernels/.
 */
#ifndef CLLM_QUANT_INTERNAL_H
#define CLLM_QUANT_INTERNAL_H

#include "cllm/kernels/quant.h"

/* Fill t with the scalar reference (quant.c). */
void cllm_quant_fill_reference(cllm_quant_kernels *t);
/* Fill t with the AVX2 implementation, the reference for entries it lacks (call only when the CPU has AVX2+FMA+F16C). */
void cllm_quant_fill_avx2(cllm_quant_kernels *t);
/* Set t's dots of q4_1, q5_0, q5_1 and q2_K..q6_K to the AVX2 ones
 * (quant_kq_avx2.c; the AVX2 and AVX-512 tables both use them). */
void cllm_quant_fill_kq_avx2(cllm_quant_kernels *t);
/* Fill t with the AVX-512 implementation; vnni = 1 uses vpdpbusd for the
 * integer dots (call only when the CPU has those features). */
void cllm_quant_fill_avx512(cllm_quant_kernels *t, int vnni);
/* The bf16 x16 product (quant.h's gemm_x16_bf16), AVX512-BF16 (vdpbf16ps):
 * set in a table only when the CPU has it. */
void cllm_quant_gemm_x16_bf16_avx512(const void *P, int groups, int64_t K, const uint16_t *xb, int n, float *out,
                                     size_t ld_out);
void cllm_quant_round_bf16_avx512(const float *x, uint16_t *y, int64_t n);
/* quant.h's gemm_x16 on VNNI (quant_avx512.c), and on AMX-INT8 tiles for
 * full 16-token tiles with the VNNI kernel for the rest (quant_amx.c; only
 * on CPUs with AMX-INT8 and the OS permission). Same results, same contract. */
void cllm_quant_gemm_x16_vnni_avx512(uint32_t type, const void *P, int groups, int64_t K, const void *xq,
                                     size_t xq_stride, const float *dy, const int32_t *corr, int n, float *out,
                                     size_t ld_out);
void cllm_quant_gemm_x16_amx(uint32_t type, const void *P, int groups, int64_t K, const void *xq, size_t xq_stride,
                             const float *dy, const int32_t *corr, int n, float *out, size_t ld_out);

#endif
