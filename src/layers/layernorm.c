/*
 * layernorm.c: LayerNorm (Ba, Kiros & Hinton 2016) over the last dimension,
 * forward and backward.
 *
 * Forward: mean and variance per row (two passes, double accumulation, so a
 * row with a large common offset keeps its precision; `omp simd` lets the
 * sums run in several lanes, a single chain was ~2% of a GPT-2 prompt),
 * out = (x - mean) * rstd * weight + bias; mean[N] and rstd[N] are saved.
 * Backward (xhat = (x - mean) rstd, g = dout * weight):
 *   dinp += rstd * (g - mean(g) - xhat * mean(g * xhat)),
 *   dweight += sum_n dout * xhat,  dbias += sum_n dout.
 * Does not: support normalising over more than one axis.
 */
#include "cllm/layers/layers.h"
#include "layer_real.h"

void LAYER_FN(cllm_layernorm_forward)(real *out, real *mean, real *rstd, const real *inp,
                                      const real *weight, const real *bias, int N, int C,
                                      real eps) {
#pragma omp parallel for schedule(static) if ((long)N * C >= LAYER_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * C;
        real *o = out + (size_t)n * C;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (int c = 0; c < C; c++) s += x[c];
        real m = (real)(s / C);
        double v = 0;
#pragma omp simd reduction(+ : v)
        for (int c = 0; c < C; c++) {
            double d = (double)(x[c] - m);
            v += d * d;
        }
        real rs = (real)(1.0 / sqrt(v / C + (double)eps));
        if (bias) {
#pragma omp simd
            for (int c = 0; c < C; c++) o[c] = (x[c] - m) * rs * weight[c] + bias[c];
        } else {
#pragma omp simd
            for (int c = 0; c < C; c++) o[c] = (x[c] - m) * rs * weight[c];
        }
        mean[n] = m;
        rstd[n] = rs;
    }
}

#define LAYERNORM_COL_BLOCK 64

void LAYER_FN(cllm_layernorm_backward)(real *dinp, real *dweight, real *dbias, const real *dout,
                                       const real *inp, const real *weight, const real *mean,
                                       const real *rstd, int N, int C) {
    int par = (long)N * C >= LAYER_PAR_MIN;
    if (dinp) {
#pragma omp parallel for schedule(static) if (par)
        for (int n = 0; n < N; n++) {
            const real *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
            real m = mean[n], rs = rstd[n];
            real *dx = dinp + (size_t)n * C;
            real sum_g = 0, sum_gx = 0;
            for (int c = 0; c < C; c++) {
                real g = d[c] * weight[c];
                sum_g += g;
                sum_gx += g * (x[c] - m) * rs;
            }
            real mean_g = sum_g / (real)C, mean_gx = sum_gx / (real)C;
            for (int c = 0; c < C; c++) {
                real xhat = (x[c] - m) * rs;
                dx[c] += rs * (d[c] * weight[c] - mean_g - xhat * mean_gx);
            }
        }
    }
    if (!dweight && !dbias) return;
    /* Parameter gradients sum over rows: threads own column blocks (no races,
     * no per-thread scratch), reading each row's block in order. */
    int n_blocks = (C + LAYERNORM_COL_BLOCK - 1) / LAYERNORM_COL_BLOCK;
#pragma omp parallel for schedule(static) if (par)
    for (int blk = 0; blk < n_blocks; blk++) {
        int c0 = blk * LAYERNORM_COL_BLOCK;
        int c1 = c0 + LAYERNORM_COL_BLOCK < C ? c0 + LAYERNORM_COL_BLOCK : C;
        for (int n = 0; n < N; n++) {
            const real *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
            real m = mean[n], rs = rstd[n];
            for (int c = c0; c < c1; c++) {
                if (dweight) dweight[c] += d[c] * (x[c] - m) * rs;
                if (dbias) dbias[c] += d[c];
            }
        }
    }
}
