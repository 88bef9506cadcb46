/*
 * embedding.c: token (+ learned position) embedding lookup and its backward,
 * and the fixed sinusoidal position table.
 *
 * Does: out[B,T,C] = wte[tokens] (+ wpe[pos0 + t]); scatter-add backward.
 * Does not: validate token ids (the caller does, before the step) or apply
 * RoPE (rope.c).
 */
#include <string.h>

#include "cllm/layers/layers.h"
#include "layer_real.h"

void LAYER_FN(cllm_embedding_forward)(real *out, const int32_t *tokens, const real *wte,
                                      const real *wpe, int B, int T, int C, int pos0) {
    long n_rows = (long)B * T;
#pragma omp parallel for schedule(static) if (n_rows * C >= LAYER_PAR_MIN)
    for (long n = 0; n < n_rows; n++) {
        int t = (int)(n % T);
        const real *e = wte + (size_t)tokens[n] * C;
        real *o = out + (size_t)n * C;
        if (wpe) {
            const real *p = wpe + (size_t)(pos0 + t) * C;
            for (int c = 0; c < C; c++) o[c] = e[c] + p[c];
        } else {
            memcpy(o, e, (size_t)C * sizeof *o);
        }
    }
}

/* Repeated tokens scatter into the same dwte row, so threads split the
 * channels, not the rows: each owns a block of columns of every row. */
#define EMBEDDING_COL_BLOCK 64

void LAYER_FN(cllm_embedding_backward)(real *dwte, real *dwpe, const real *dout,
                                       const int32_t *tokens, int B, int T, int C, int pos0) {
    long n_rows = (long)B * T;
    int n_blocks = (C + EMBEDDING_COL_BLOCK - 1) / EMBEDDING_COL_BLOCK;
#pragma omp parallel for schedule(static) if (n_rows * C >= LAYER_PAR_MIN)
    for (int blk = 0; blk < n_blocks; blk++) {
        int c0 = blk * EMBEDDING_COL_BLOCK;
        int c1 = c0 + EMBEDDING_COL_BLOCK < C ? c0 + EMBEDDING_COL_BLOCK : C;
        for (long n = 0; n < n_rows; n++) {
            const real *d = dout + (size_t)n * C;
            real *w = dwte + (size_t)tokens[n] * C;
            for (int c = c0; c < c1; c++) w[c] += d[c];
            if (dwpe) {
                real *p = dwpe + (size_t)(pos0 + (int)(n % T)) * C;
                for (int c = c0; c < c1; c++) p[c] += d[c];
            }
        }
    }
}

void LAYER_FN(cllm_sinusoidal_table)(real *table, int max_T, int C) {
    for (int pos = 0; pos < max_T; pos++) {
        for (int i = 0; 2 * i < C; i++) {
            /* Angles in double: pos/10000^(2i/C) reaches ~1e3 rad, where float
             * argument rounding alone would cost 1e-4. */
            double angle = pos / pow(10000.0, (2.0 * i) / C);
            table[(size_t)pos * C + 2 * i] = (real)sin(angle);
            if (2 * i + 1 < C) table[(size_t)pos * C + 2 * i + 1] = (real)cos(angle);
        }
    }
}
