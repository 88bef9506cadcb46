/*
 * hash.h: the non-cryptographic hashes cllm uses, one definition each.
 *
 * FNV-1a (64-bit, Fowler/Noll/Vo): fingerprints of tokenizers, data, configs
 * and checkpoint bodies. Chain calls through `seed`, starting from
 * CLLM_FNV_OFFSET; cllm_fnv1a64_mix folds one value in (a byte gives plain
 * FNV-1a; callers that fold whole words say so: that is FNV-1a over a
 * different alphabet, and its values are stored in checkpoints, so it stays).
 *
 * splitmix64 (Steele, Lea and Flood 2014): cllm_mix64 is its finaliser, a
 * bijective 64-bit mixer; cllm_splitmix64 advances a state by the golden
 * gamma and returns the mixed value (rng.c seeds xoshiro with it; dropout
 * masks, per-tensor init streams and the practice world derive seeds with it).
 *
 * Not for: anything an adversary chooses to collide (hash tables keyed by
 * user input use their own seeded hashes).
 */
#ifndef CLLM_HASH_H
#define CLLM_HASH_H

#include <stddef.h>
#include <stdint.h>

#define CLLM_FNV_OFFSET 0xcbf29ce484222325ull
#define CLLM_FNV_PRIME 0x100000001b3ull
#define CLLM_GOLDEN_GAMMA 0x9E3779B97F4A7C15ull

/* FNV-1a of data[len], continuing from seed. */
uint64_t cllm_fnv1a64(const void *data, size_t len, uint64_t seed);

/* One FNV-1a step: h with v folded in. */
static inline uint64_t cllm_fnv1a64_mix(uint64_t h, uint64_t v) {
    return (h ^ v) * CLLM_FNV_PRIME;
}

/* splitmix64's finaliser. */
static inline uint64_t cllm_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* splitmix64: *state += gamma, then the finaliser of the new state. */
static inline uint64_t cllm_splitmix64(uint64_t *state) {
    return cllm_mix64(*state += CLLM_GOLDEN_GAMMA);
}

#endif
