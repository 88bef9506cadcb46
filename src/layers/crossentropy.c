/*
 * crossentropy.c: softmax over the vocabulary fused with the cross-entropy
 * loss, masked positions (target -1) excluded. No probability tensor is
 * stored: forward keeps two numbers per row, backward recomputes the
 * softmax from the logits and writes the gradient in their place.
 *
 * Forward per row: row_max = max(logits), sum = sum exp(logits - row_max)
 * (SIMD kernels of cllm/kernels/kernels.h; the exponentials go to a small stack
 * buffer and are dropped, the sum is in double); row_rsum = 1 / sum;
 * loss = logsumexp(logits) - logits[target] = log(sum) + row_max -
 * logits[target], from the log-sum-exp rather than -log(prob) so a tiny
 * probability does not underflow to inf. Returns the mean over unmasked
 * rows (double accumulation).
 * Backward OVERWRITES dlogits = (softmax - onehot(target)) * dloss_scale
 * with softmax = exp(logits - row_max) * row_rsum, and 0 on masked rows;
 * dlogits may be the logits buffer itself (the model does this, saving a
 * [B,T,V] tensor and a pass over it).
 * Does not: apply label smoothing or z-loss; does not validate targets
 * beyond an assert (the data loader checks token ids against V).
 */
#include <string.h>

#include "cllm/layers/layers.h"
#include "cllm/core/status.h"
#include "layer_real.h"

/* Exponentials of the forward pass are summed chunk by chunk through this
 * stack buffer (a multiple of the SIMD kernels' 256-element blocks). */
#define CE_CHUNK 2048

real LAYER_FN(cllm_crossentropy_forward)(real *losses, real *row_max, real *row_rsum,
                                         const real *logits, const int32_t *targets, int B, int T,
                                         int V) {
    long n_rows = (long)B * T;
    double total = 0;
    long counted = 0;
#pragma omp parallel for schedule(static) reduction(+ : total, counted) if (n_rows * V >= LAYER_PAR_MIN)
    for (long n = 0; n < n_rows; n++) {
        const real *l = logits + (size_t)n * V;
        int32_t tgt = targets[n];
        CLLM_ASSERT(tgt >= -1 && tgt < V);
        real maxv = LAYER_VMAX(l, (size_t)V);
        real scratch[CE_CHUNK];
        double sum = 0;
        for (int v0 = 0; v0 < V; v0 += CE_CHUNK) {
            size_t len = V - v0 < CE_CHUNK ? (size_t)(V - v0) : CE_CHUNK;
            sum += LAYER_VEXP_SHIFT_SUM(scratch, l + v0, maxv, len);
        }
        row_max[n] = maxv;
        row_rsum[n] = (real)(1.0 / sum);
        if (tgt < 0) {
            losses[n] = 0;
            continue;
        }
        double loss = log(sum) + (double)maxv - (double)l[tgt];
        losses[n] = (real)loss;
        total += loss;
        counted++;
    }
    return counted ? (real)(total / counted) : R(0);
}

void LAYER_FN(cllm_crossentropy_backward)(real *dlogits, const real *logits, const real *row_max,
                                          const real *row_rsum, const int32_t *targets, int B,
                                          int T, int V, real dloss_scale) {
    long n_rows = (long)B * T;
#pragma omp parallel for schedule(static) if (n_rows * V >= LAYER_PAR_MIN)
    for (long n = 0; n < n_rows; n++) {
        real *d = dlogits + (size_t)n * V;
        const real *l = logits + (size_t)n * V;
        int32_t tgt = targets[n];
        if (tgt < 0) {
            memset(d, 0, (size_t)V * sizeof *d);
            continue;
        }
        /* d = exp(l - max) (in place when d == l), then times rsum * scale */
        LAYER_VEXP_SHIFT_SUM(d, l, row_max[n], (size_t)V);
        const real k = row_rsum[n] * dloss_scale;
        for (int v = 0; v < V; v++) d[v] *= k;
        d[tgt] -= dloss_scale;
    }
}
