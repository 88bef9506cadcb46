/*
 * scalar_head.c: the reward / value head, one scalar per row:
 * out[n] = h[n,:] . w + b, on the model's final hidden states.
 *
 * Forward OVERWRITES out[N]; backward ACCUMULATES (+=) into dh[N,C], dw[C]
 * and db[1] (each may be NULL). Dot products accumulate in double so a long
 * C does not lose the small differences a reward margin lives on.
 * Compiled in float for the library and in double inside the gradient-check
 * test (layer_real.h). Does not: pick which rows are scored (the caller
 * passes the hidden state of the last token, or of every completion token).
 */
#include "cllm/layers/layers.h"
#include "layer_real.h"

void LAYER_FN(cllm_scalar_head_forward)(real *out, const real *h, const real *w, const real *b, int N,
                                        int C) {
    for (int n = 0; n < N; n++) {
        const real *x = h + (size_t)n * C;
        double s = b ? (double)b[0] : 0.0;
        for (int c = 0; c < C; c++) s += (double)x[c] * (double)w[c];
        out[n] = (real)s;
    }
}

void LAYER_FN(cllm_scalar_head_backward)(real *dh, real *dw, real *db, const real *dout, const real *h,
                                         const real *w, int N, int C) {
    for (int n = 0; n < N; n++) {
        const real g = dout[n];
        if (dh) {
            real *d = dh + (size_t)n * C;
            for (int c = 0; c < C; c++) d[c] += g * w[c];
        }
        if (dw) {
            const real *x = h + (size_t)n * C;
            for (int c = 0; c < C; c++) dw[c] += g * x[c];
        }
        if (db) db[0] += g;
    }
}
