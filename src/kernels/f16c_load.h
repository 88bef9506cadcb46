/*
 * f16c_load.h: the fp16 scale at the head of a q8_0 / q4_0 block as a float,
 * with the F16C instruction. Private to src/kernels/; include it only from
 * files built with -mf16c (the *_avx2.c / *_avx512.c ones), which are entered
 * through run-time dispatch.
 */
#ifndef CLLM_F16C_LOAD_H
#define CLLM_F16C_LOAD_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

static inline float fp16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2); /* blocks are byte-packed: no alignment to rely on */
    return _cvtsh_ss(h);
}

#endif
