/*
 * rng.h: a small, explicit, serialisable random number generator.
 *
 * xoshiro256** (Blackman & Vigna, 2018) seeded through splitmix64. The whole
 * state is four words, so training checkpoints store it and resume draws the
 * exact same sequence. Tests always pass explicit seeds; nothing seeds from
 * the clock.
 */
#ifndef CLLM_RNG_H
#define CLLM_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} cllm_rng;

void cllm_rng_seed(cllm_rng *rng, uint64_t seed);
uint64_t cllm_rng_u64(cllm_rng *rng);
/* Uniform in [0, n) without modulo bias; n > 0. */
uint64_t cllm_rng_below(cllm_rng *rng, uint64_t n);
/* Uniform float in [0, 1) with 24 random bits. */
float cllm_rng_float(cllm_rng *rng);
/* Standard normal (Box-Muller, one value per call). */
float cllm_rng_normal(cllm_rng *rng);

#endif
