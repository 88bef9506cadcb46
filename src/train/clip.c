/*
 * clip.c: global L2 gradient norm and norm clipping (Pascanu et al. 2013),
 * as torch.nn.utils.clip_grad_norm_ does over the concatenation of all
 * gradients.
 *
 * The norm is accumulated in double (cllm_vsumsq, SIMD, a fixed order
 * within a chunk) over fixed 64 Ki-element chunks whose
 * partial sums are then added in chunk order, so the result is the same
 * whatever the thread count (needed for deterministic training). A NaN or
 * Inf gradient gives a non-finite norm, which callers use to skip a step.
 * Does not: decide whether to skip (the trainer does).
 */
#include <math.h>
#include <stdlib.h>

#include "cllm/kernels/kernels.h"
#include "cllm/train/optim.h"

#define CLIP_CHUNK 65536

double cllm_grad_norm(const float *grad, size_t n) {
    if (n == 0) return 0.0;
    size_t n_chunks = (n + CLIP_CHUNK - 1) / CLIP_CHUNK;
    double stack_parts[64];
    double *parts = n_chunks <= 64 ? stack_parts : malloc(n_chunks * sizeof *parts);
    if (!parts) { /* fall back to one serial pass over the same chunks; same value */
        double total = 0.0;
        for (size_t lo = 0; lo < n; lo += CLIP_CHUNK)
            total += cllm_vsumsq(grad + lo, n - lo < CLIP_CHUNK ? n - lo : CLIP_CHUNK);
        return sqrt(total);
    }
    const long long nc = (long long)n_chunks;
#pragma omp parallel for schedule(static) if (nc > 1)
    for (long long c = 0; c < nc; c++) {
        size_t lo = (size_t)c * CLIP_CHUNK, hi = lo + CLIP_CHUNK;
        if (hi > n) hi = n;
        parts[c] = cllm_vsumsq(grad + lo, hi - lo);
    }
    double total = 0.0;
    for (size_t c = 0; c < n_chunks; c++) total += parts[c];
    if (parts != stack_parts) free(parts);
    return sqrt(total);
}

float cllm_grad_clip_scale(double norm, float max_norm) {
    if (!(max_norm > 0.0f) || !isfinite(norm) || norm <= (double)max_norm) return 1.0f;
    return (float)((double)max_norm / norm);
}

float cllm_grad_clip(float *grad, size_t n, double norm, float max_norm) {
    const float scale = cllm_grad_clip_scale(norm, max_norm);
    if (scale == 1.0f) return 1.0f;
    const long long nn = (long long)n;
#pragma omp parallel for schedule(static) if (nn > 65536)
    for (long long i = 0; i < nn; i++) grad[i] *= scale;
    return scale;
}
