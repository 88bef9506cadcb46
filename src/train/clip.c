/*
 * clip.c: global L2 gradient norm and norm clipping (Pascanu et al. 2013),
 * as torch.nn.utils.clip_grad_norm_ does over the concatenation of all
 * gradients.
 *
 * The norm is accumulated in double over fixed 64 Ki-element chunks whose
 * partial sums are then added in chunk order, so the result is the same
 * whatever the thread count (needed for deterministic training). A NaN or
 * Inf gradient gives a non-finite norm, which callers use to skip a step.
 * Does not: decide whether to skip (the trainer does).
 */
#include <math.h>
#include <stdlib.h>

#include "cllm/optim.h"

#define CLIP_CHUNK 65536

double cllm_grad_norm(const float *grad, size_t n) {
    if (n == 0) return 0.0;
    size_t n_chunks = (n + CLIP_CHUNK - 1) / CLIP_CHUNK;
    double stack_parts[64];
    double *parts = n_chunks <= 64 ? stack_parts : malloc(n_chunks * sizeof *parts);
    if (!parts) { /* fall back to one serial pass; same value, just slower */
        double s = 0.0;
        for (size_t i = 0; i < n; i++) s += (double)grad[i] * (double)grad[i];
        return sqrt(s);
    }
    const long long nc = (long long)n_chunks;
#pragma omp parallel for schedule(static) if (nc > 1)
    for (long long c = 0; c < nc; c++) {
        size_t lo = (size_t)c * CLIP_CHUNK, hi = lo + CLIP_CHUNK;
        if (hi > n) hi = n;
        double s = 0.0;
        for (size_t i = lo; i < hi; i++) s += (double)grad[i] * (double)grad[i];
        parts[c] = s;
    }
    double total = 0.0;
    for (size_t c = 0; c < n_chunks; c++) total += parts[c];
    if (parts != stack_parts) free(parts);
    return sqrt(total);
}

float cllm_grad_clip(float *grad, size_t n, double norm, float max_norm) {
    if (!(max_norm > 0.0f) || !isfinite(norm) || norm <= (double)max_norm) return 1.0f;
    const float scale = (float)((double)max_norm / norm);
    const long long nn = (long long)n;
#pragma omp parallel for schedule(static) if (nn > 65536)
    for (long long i = 0; i < nn; i++) grad[i] *= scale;
    return scale;
}
