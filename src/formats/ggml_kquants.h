/*
 * ggml_kquants.h: the row converters of ggml_kquants.c (q4_1, q5_0, q5_1,
 * q2_K .. q6_K) that ggml_types.c's cllm_ggml_from_f32 / cllm_ggml_to_f32
 * hand those types to. Private to src/formats/.
 */
#ifndef CLLM_GGML_KQUANTS_H
#define CLLM_GGML_KQUANTS_H

#include <stdint.h>

/* Same contracts as cllm_ggml_from_f32 / cllm_ggml_to_f32 for the types
 * above (n a multiple of the block size, checked by the caller); -1 for any
 * other type. */
int cllm_ggml_more_from_f32(uint32_t type, const float *src, void *dst, int64_t n);
int cllm_ggml_more_to_f32(uint32_t type, const void *src, float *dst, int64_t n);

#endif
