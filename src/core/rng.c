/*
 * rng.c: xoshiro256** with splitmix64 seeding; see rng.h.
 */
#include "cllm/core/rng.h"

#include "cllm/core/hash.h"

#include <math.h>

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void cllm_rng_seed(cllm_rng *rng, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) rng->s[i] = cllm_splitmix64(&x);
}

uint64_t cllm_rng_u64(cllm_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t cllm_rng_below(cllm_rng *rng, uint64_t n) {
    /* Rejection sampling: discard the top partial bucket. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do r = cllm_rng_u64(rng);
    while (r >= limit);
    return r % n;
}

float cllm_rng_float(cllm_rng *rng) {
    return (float)(cllm_rng_u64(rng) >> 40) * (1.0f / 16777216.0f);
}

float cllm_rng_normal(cllm_rng *rng) {
    /* u1 in (0, 1] so the log is finite. */
    double u1 = ((double)(cllm_rng_u64(rng) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    double u2 = (double)(cllm_rng_u64(rng) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
