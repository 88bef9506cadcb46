/*
 * byteorder.h: little-endian encoding of fixed-width integers, for the file
 * formats cllm writes (token shards, checkpoint files). Independent of the
 * host's byte order and of alignment.
 */
#ifndef CLLM_BYTEORDER_H
#define CLLM_BYTEORDER_H

#include <stdint.h>

static inline void cllm_put_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void cllm_put_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t cllm_get_le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t cllm_get_le64(const uint8_t *p) {
    return (uint64_t)cllm_get_le32(p) | ((uint64_t)cllm_get_le32(p + 4) << 32);
}

#endif
