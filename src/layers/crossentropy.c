/*
 * crossentropy.c: softmax over the vocabulary fused with the cross-entropy
 * loss, masked positions (target -1) excluded.
 *
 * Forward per row: probs = softmax(logits) (max-subtracted, exp and sum by
 * the SIMD kernels of cllm/kernels.h, sum in double);
 * loss = logsumexp(logits) - logits[target], computed from the log-sum-exp
 * rather than -log(prob) so a tiny probability does not underflow to inf.
 * Returns the mean over unmasked rows (double accumulation).
 * Backward OVERWRITES dlogits = (probs - onehot(target)) * dloss_scale, and 0
 * on masked rows.
 * Does not: apply label smoothing or z-loss; does not validate targets
 * beyond an assert (the data loader checks token ids against V).
 */
#include <string.h>

#include "cllm/layers.h"
#include "cllm/status.h"
#include "layer_real.h"

real LAYER_FN(cllm_crossentropy_forward)(real *losses, real *probs, const real *logits,
                                         const int32_t *targets, int B, int T, int V) {
    long n_rows = (long)B * T;
    double total = 0;
    long counted = 0;
#pragma omp parallel for schedule(static) reduction(+ : total, counted) if (n_rows * V >= LAYER_PAR_MIN)
    for (long n = 0; n < n_rows; n++) {
        const real *l = logits + (size_t)n * V;
        real *p = probs + (size_t)n * V;
        int32_t tgt = targets[n];
        CLLM_ASSERT(tgt >= -1 && tgt < V);
        real maxv = LAYER_VMAX(l, (size_t)V);
        double sum = LAYER_VEXP_SHIFT_SUM(p, l, maxv, (size_t)V);
        real inv = (real)(1.0 / sum);
        for (int v = 0; v < V; v++) p[v] *= inv;
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

void LAYER_FN(cllm_crossentropy_backward)(real *dlogits, const real *probs,
                                          const int32_t *targets, int B, int T, int V,
                                          real dloss_scale) {
    long n_rows = (long)B * T;
#pragma omp parallel for schedule(static) if (n_rows * V >= LAYER_PAR_MIN)
    for (long n = 0; n < n_rows; n++) {
        real *d = dlogits + (size_t)n * V;
        const real *p = probs + (size_t)n * V;
        int32_t tgt = targets[n];
        if (tgt < 0) {
            memset(d, 0, (size_t)V * sizeof *d);
            continue;
        }
        for (int v = 0; v < V; v++) d[v] = p[v] * dloss_scale;
        d[tgt] -= dloss_scale;
    }
}
