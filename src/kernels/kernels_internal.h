/*
 * kernels_internal.h: entry points shared between files of src/kernels/ only.
 */
#ifndef CLLM_KERNELS_INTERNAL_H
#define CLLM_KERNELS_INTERNAL_H

#include "cllm/kernels.h"

/* dnnl_sgemm behind the cllm_sgemm_fn signature (gemm_onednn.c). */
void cllm_kernels_sgemm_onednn(int trans_a, int trans_b, int M, int N, int K, float alpha,
                               const float *A, int lda, const float *B, int ldb, float beta,
                               float *C, int ldc);

#endif
