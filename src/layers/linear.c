/*
 * linear.c: the fully connected layer, out = inp @ weight^T + bias, and its
 * backward, each a single GEMM per product straight on the caller's buffers
 * (no copies, no scratch).
 *
 * Does: forward 1 GEMM + bias rows; backward up to 2 GEMMs (beta = 1 gives
 * the += contract for free) + a column sum for the bias.
 * Does not: fuse activations or handle bf16/quantized weights.
 */
#include "cllm/layers/layers.h"
#include "layer_real.h"

void LAYER_FN(cllm_linear_forward)(real *out, const real *inp, const real *weight,
                                   const real *bias, int N, int IC, int OC) {
    /* out[N,OC] = inp[N,IC] @ weight[OC,IC]^T */
    LAYER_GEMM(0, 1, N, OC, IC, R(1), inp, IC, weight, IC, R(0), out, OC);
    if (!bias) return;
#pragma omp parallel for schedule(static) if ((long)N * OC >= LAYER_PAR_MIN)
    for (int n = 0; n < N; n++) {
        real *o = out + (size_t)n * OC;
        for (int j = 0; j < OC; j++) o[j] += bias[j];
    }
}

#define LINEAR_COL_BLOCK 128

void LAYER_FN(cllm_linear_backward)(real *dinp, real *dweight, real *dbias, const real *dout,
                                    const real *inp, const real *weight, int N, int IC, int OC) {
    /* dinp[N,IC] += dout[N,OC] @ weight[OC,IC] */
    if (dinp) LAYER_GEMM(0, 0, N, IC, OC, R(1), dout, OC, weight, IC, R(1), dinp, IC);
    /* dweight[OC,IC] += dout[N,OC]^T @ inp[N,IC] */
    if (dweight) LAYER_GEMM(1, 0, OC, IC, N, R(1), dout, OC, inp, IC, R(1), dweight, IC);
    if (!dbias) return;
    /* Column sums: threads own blocks of output channels, rows stream in order. */
    int n_blocks = (OC + LINEAR_COL_BLOCK - 1) / LINEAR_COL_BLOCK;
#pragma omp parallel for schedule(static) if ((long)N * OC >= LAYER_PAR_MIN)
    for (int blk = 0; blk < n_blocks; blk++) {
        int j0 = blk * LINEAR_COL_BLOCK;
        int j1 = j0 + LINEAR_COL_BLOCK < OC ? j0 + LINEAR_COL_BLOCK : OC;
        for (int n = 0; n < N; n++) {
            const real *d = dout + (size_t)n * OC;
            for (int j = j0; j < j1; j++) dbias[j] += d[j];
        }
    }
}
