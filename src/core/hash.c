/*
 * hash.c: FNV-1a over a buffer (hash.h).
 */
#include "cllm/core/hash.h"

uint64_t cllm_fnv1a64(const void *data, size_t len, uint64_t seed) {
    const uint8_t *p = data;
    uint64_t h = seed;
    for (size_t i = 0; i < len; i++) h = cllm_fnv1a64_mix(h, p[i]);
    return h;
}
