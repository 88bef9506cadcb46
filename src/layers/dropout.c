/*
 * dropout.c: inverted dropout (Srivastava et al. 2014): keep each element
 * with probability 1-p and scale it by 1/(1-p), so evaluation needs no
 * rescaling.
 *
 * The keep/drop decision for element i is a pure function of (seed, i): a
 * splitmix64 hash of seed + i * golden-ratio constant, compared with p in
 * 32-bit fixed point. So the mask is the same for any thread count and a
 * resumed run redraws it exactly. mask[N] (1 keep, 0 drop) is saved.
 * p = 0 copies (mask all ones; mask may be NULL then). Requires 0 <= p < 1.
 * Does not: keep a random state of its own (the caller derives a fresh seed
 * per layer and step).
 */
#include <string.h>

#include "cllm/core/hash.h"
#include "cllm/layers/layers.h"
#include "cllm/core/status.h"
#include "layer_real.h"

/* Element i's draw: the (i+1)-th splitmix64 output from seed, computed directly. */
static uint64_t dropout_hash(uint64_t seed, uint64_t i) {
    return cllm_mix64(seed + (i + 1) * CLLM_GOLDEN_GAMMA);
}

void LAYER_FN(cllm_dropout_forward)(real *out, uint8_t *mask, const real *inp, size_t N, real p,
                                    uint64_t seed) {
    CLLM_ASSERT(p >= 0 && p < 1);
    if (p == 0) {
        if (out != inp) memmove(out, inp, N * sizeof *out);
        if (mask) memset(mask, 1, N);
        return;
    }
    /* drop when the hash's top 32 bits fall below p * 2^32 */
    uint64_t threshold = (uint64_t)((double)p * 4294967296.0);
    real scale = R(1) / (R(1) - p);
#pragma omp parallel for schedule(static) if (N >= LAYER_PAR_MIN)
    for (size_t i = 0; i < N; i++) {
        uint8_t keep = (dropout_hash(seed, i) >> 32) >= threshold;
        mask[i] = keep;
        out[i] = keep ? inp[i] * scale : R(0);
    }
}

void LAYER_FN(cllm_dropout_backward)(real *dinp, const real *dout, const uint8_t *mask, size_t N,
                                     real p) {
    CLLM_ASSERT(p >= 0 && p < 1);
    real scale = R(1) / (R(1) - p);
#pragma omp parallel for schedule(static) if (N >= LAYER_PAR_MIN)
    for (size_t i = 0; i < N; i++) {
        if (p == 0)
            dinp[i] += dout[i];
        else if (mask[i])
            dinp[i] += dout[i] * scale;
    }
}
