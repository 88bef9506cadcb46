/*
 * kv_attn.h: the attention of ONE query head against one head of a q8_0 or
 * f16 KV cache (decode: a single new token), the kernels behind those cache
 * types (cllm_model_options.kv_type; src/model/kv_cache.c).
 *
 *   out[HS] = sum_{j<n} p_j v_j,  p = softmax(scale * (q . k_j)),
 *
 * where the key and value rows k_j, v_j are HS/32 q8_0 blocks each (ggml's
 * layout, ggml_types.h: fp16 scale + 32 int8), row j at byte offset
 * j * row_bytes from k (and from v), and the query q is HS/32 q8_0 blocks
 * too (quantized by cllm_quant_kernels quantize_q8_0). Scores are integer
 * dots per block times the two scales (exact inside a block), the value sum
 * widens int8 to f32. HS must be a positive multiple of 32, n >= 1.
 * scores[n] is scratch (overwritten with the probabilities).
 *
 * Implementations: a plain scalar reference (ground truth for tests),
 * AVX-512 (F/BW) and AVX2, chosen once at run time from cllm_kernels_get()
 * (CLLM_KERNELS=reference forces the reference). They differ by float
 * summation order only (tests: test_kv_cache.c).
 *
 * The f32 cache has its own kernel, cllm_kv_attend_f32 below: several
 * query heads of one row at once, positions outer.
 *
 * Not here: the cache layout and writes (src/model/kv_cache.c), prompt
 * chunks (those run GEMMs), threading (callers split rows and heads).
 */
#ifndef CLLM_KV_ATTN_H
#define CLLM_KV_ATTN_H

#include <stddef.h>

typedef void (*cllm_kv_attend_fn)(float *out, float *scores, const void *q, const void *k, const void *v,
                                  size_t row_bytes, int n, int HS, float scale);

/* Dispatched (AVX-512 when the CPU has it, else the reference). */
void cllm_kv_attend_q8_0(float *out, float *scores, const void *q, const void *k, const void *v, size_t row_bytes,
                         int n, int HS, float scale);
void cllm_kv_attend_q8_0_reference(float *out, float *scores, const void *q, const void *k, const void *v,
                                   size_t row_bytes, int n, int HS, float scale);
/* The same over an f16 cache (llama.cpp's default cache type): k, v rows
 * of HS fp16 values, row j at byte offset j * row_bytes; q is HS floats
 * (the query is not rounded). Scores and the value sum widen fp16 to f32
 * (exact) and accumulate in f32. Any HS >= 1. Same dispatch as q8_0. */
void cllm_kv_attend_f16(float *out, float *scores, const float *q, const void *k, const void *v, size_t row_bytes,
                        int n, int HS, float scale);
void cllm_kv_attend_f16_reference(float *out, float *scores, const void *q, const void *k, const void *v,
                                  size_t row_bytes, int n, int HS, float scale);
/* The AVX-512 / AVX2 version, or NULL when this CPU (or
 * CLLM_KERNELS=reference) rules it out; "avx512", "avx2" or "reference" for
 * the dispatched one. */
cllm_kv_attend_fn cllm_kv_attend_q8_0_avx512_get(void);
cllm_kv_attend_fn cllm_kv_attend_q8_0_avx2_get(void);
cllm_kv_attend_fn cllm_kv_attend_f16_avx512_get(void);
cllm_kv_attend_fn cllm_kv_attend_f16_avx2_get(void);
const char *cllm_kv_attend_name(void);

/* The f32 cache (the default kv_type): the H = n_kv * group query heads of
 * one row against n_kv heads of its cache, query head h using KV head
 * h / group:
 *   out[h, HS] = sum_{j<n} p_hj v_j,kh,  p_h = softmax_j(scale * q_h . k_j,kh),  kh = h / group
 * q[H, HS] contiguous; key head kh of position j at k + j * row_stride +
 * kh * HS floats (v likewise). scores[H, ld_scores] (ld_scores >= n) is
 * scratch, overwritten with the probabilities. Any HS >= 1, n >= 1.
 * Positions are the outer loop, so the cached rows stream through memory
 * once. The reference sums in plain order with libm expf; the SIMD versions
 * (the same C compiled for AVX-512 and AVX2, kv_attn_f32.h) use 16 partial
 * sums and the vector exponential: they differ by float rounding only. */
typedef void (*cllm_kv_attend_f32_fn)(float *out, float *scores, size_t ld_scores, const float *q, const float *k,
                                      const float *v, size_t row_stride, int n, int n_kv, int group, int HS,
                                      float scale);
void cllm_kv_attend_f32(float *out, float *scores, size_t ld_scores, const float *q, const float *k, const float *v,
                        size_t row_stride, int n, int n_kv, int group, int HS, float scale);
void cllm_kv_attend_f32_reference(float *out, float *scores, size_t ld_scores, const float *q, const float *k,
                                  const float *v, size_t row_stride, int n, int n_kv, int group, int HS, float scale);
cllm_kv_attend_f32_fn cllm_kv_attend_f32_avx512_get(void);
cllm_kv_attend_f32_fn cllm_kv_attend_f32_avx2_get(void);

#endif
