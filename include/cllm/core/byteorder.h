/*
 * byteorder.h: little-endian encoding of fixed-width integers, for the file
 * formats cllm reads and writes (GGUF, ggml blocks, token shards, checkpoint
 * files). Independent of the host's byte order and of alignment. The one
 * place for these: formats and kernels use it instead of their own.
 */
#ifndef CLLM_BYTEORDER_H
#define CLLM_BYTEORDER_H

#include <stdint.h>

#include <stddef.h>

/* The low n bytes of v (n <= 8), least significant first. */
static inline void cllm_put_le(uint8_t *p, uint64_t v, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}
/* An n-byte (n <= 8) little-endian unsigned value. */
static inline uint64_t cllm_get_le(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t k = n; k-- > 0;) v = (v << 8) | p[k];
    return v;
}
static inline void cllm_put_le32(uint8_t *p, uint32_t v) { cllm_put_le(p, v, 4); }
static inline void cllm_put_le64(uint8_t *p, uint64_t v) { cllm_put_le(p, v, 8); }
static inline uint16_t cllm_get_le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t cllm_get_le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t cllm_get_le64(const uint8_t *p) {
    return (uint64_t)cllm_get_le32(p) | ((uint64_t)cllm_get_le32(p + 4) << 32);
}

#endif
