/*
 * rmsnorm.c: RMSNorm (Zhang & Sennrich 2019) over the last dimension.
 *
 * Forward: rstd = 1/sqrt(mean(x^2) + eps) (double accumulation), out = x *
 * rstd * weight; rstd[N] saved.
 * Backward (xhat = x rstd, g = dout * weight):
 *   dinp += rstd * (g - xhat * mean(g * xhat)),  dweight += sum_n dout * xhat.
 * Does not: add a bias (RMSNorm has none) or center the input.
 */
#include "cllm/layers/layers.h"
#include "layer_real.h"

void LAYER_FN(cllm_rmsnorm_forward)(real *out, real *rstd, const real *inp, const real *weight,
                                    int N, int C, real eps) {
#pragma omp parallel for schedule(static) if ((long)N * C >= LAYER_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * C;
        real *o = out + (size_t)n * C;
        double ss = 0;
#pragma omp simd reduction(+ : ss) /* several lanes: one chain of adds was the layer's cost */
        for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
        real rs = (real)(1.0 / sqrt(ss / C + (double)eps));
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] = x[c] * rs * weight[c];
        rstd[n] = rs;
    }
}

#define RMSNORM_COL_BLOCK 64

void LAYER_FN(cllm_rmsnorm_backward)(real *dinp, real *dweight, const real *dout,
                                     const real *inp, const real *weight, const real *rstd,
                                     int N, int C) {
    int par = (long)N * C >= LAYER_PAR_MIN;
    if (dinp) {
#pragma omp parallel for schedule(static) if (par)
        for (int n = 0; n < N; n++) {
            const real *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
            real rs = rstd[n];
            real *dx = dinp + (size_t)n * C;
            real sum_gx = 0;
            for (int c = 0; c < C; c++) sum_gx += d[c] * weight[c] * x[c] * rs;
            real mean_gx = sum_gx / (real)C;
            for (int c = 0; c < C; c++) dx[c] += rs * (d[c] * weight[c] - x[c] * rs * mean_gx);
        }
    }
    if (!dweight) return;
    int n_blocks = (C + RMSNORM_COL_BLOCK - 1) / RMSNORM_COL_BLOCK;
#pragma omp parallel for schedule(static) if (par)
    for (int blk = 0; blk < n_blocks; blk++) {
        int c0 = blk * RMSNORM_COL_BLOCK;
        int c1 = c0 + RMSNORM_COL_BLOCK < C ? c0 + RMSNORM_COL_BLOCK : C;
        for (int n = 0; n < N; n++) {
            const real *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
            for (int c = c0; c < c1; c++) dweight[c] += d[c] * x[c] * rstd[n];
        }
    }
}
