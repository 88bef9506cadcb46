/*
 * lora.c: the low-rank adapter layer (LoRA, Hu et al. 2021), forward and
 * backward, on top of an existing linear map's output.
 *
 *   forward:  xa[N,r] = inp[N,IC] A[r,IC]^T;   out[N,OC] += scale * xa B[OC,r]^T
 *   backward: dxa = scale * dout B;  dB += scale * dout^T xa;
 *             dA += dxa^T inp;       dinp += dxa A
 * out/dout rows may have a larger stride than OC, so an adapter can act on
 * a row block of a fused projection (q, k or v inside attn_qkv). All four
 * products are GEMMs through the kernel layer. Does not: hold weights, pick
 * targets or initialise A and B (src/model/lora.c does).
 */
#include "cllm/core/status.h"
#include "cllm/layers/layers.h"
#include "layer_real.h"

void LAYER_FN(cllm_lora_forward)(real *out, int out_stride, real *xa, const real *inp, const real *A,
                                 const real *B, int N, int IC, int OC, int r, real scale) {
    CLLM_ASSERT(out_stride >= OC && r >= 1);
    LAYER_GEMM(0, 1, N, r, IC, R(1), inp, IC, A, IC, R(0), xa, r);
    LAYER_GEMM(0, 1, N, OC, r, scale, xa, r, B, r, R(1), out, out_stride);
}

void LAYER_FN(cllm_lora_backward)(real *dinp, real *dA, real *dB, real *dxa, const real *dout, int dout_stride,
                                  const real *xa, const real *inp, const real *A, const real *B, int N, int IC,
                                  int OC, int r, real scale) {
    CLLM_ASSERT(dout_stride >= OC && r >= 1);
    LAYER_GEMM(0, 0, N, r, OC, scale, dout, dout_stride, B, r, R(0), dxa, r);
    if (dB) LAYER_GEMM(1, 0, OC, r, N, scale, dout, dout_stride, xa, r, R(1), dB, r);
    if (dA) LAYER_GEMM(1, 0, r, IC, N, R(1), dxa, r, inp, IC, R(1), dA, IC);
    if (dinp) LAYER_GEMM(0, 0, N, IC, r, R(1), dxa, r, A, IC, R(1), dinp, IC);
}
