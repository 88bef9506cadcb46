/*
 * kv_attn_avx512.c: single-query attention over a q8_0 or f16 KV cache head with
 * AVX-512 F/BW (cllm/kernels/kv_attn.h). Entered only through the dispatch in
 * kv_attn.c, after checking the CPU has AVX-512.
 *
 * Scores: the query's blocks are widened to int16 once; per key row each
 * block is widened the same way and multiplied with vpmaddwd (32 int8 x
 * int8 products summed in pairs into 16 int32, exact), scaled by the two
 * fp16 scales into one f32 accumulator, reduced once per row. Softmax uses
 * the library's vector max / exp. Values: blocks in pairs (4 zmm
 * accumulators in registers across the rows; an array indexed by a
 * run-time block count was kept on the stack, a store/load chain per row),
 * each row's block widened int8 -> f32 and added with weight p_j * d_j.
 * Rows are one KV position apart (all heads), so the next rows are
 * prefetched explicitly.
 * Head sizes above 256 (more than 8 blocks) go to the reference.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cllm/formats/ggml_types.h"
#include "cllm/kernels/kernels.h"
#include "cllm/kernels/kv_attn.h"
#include "f16c_load.h"
#include "kernels_internal.h"
#include "kv_attn_f32.h"

#define MAX_BLOCKS 8
#define PREFETCH_ROWS 8 /* rows ahead; a row is a whole KV position (all heads) */

void cllm_kv_attend_q8_0_avx512(float *out, float *scores, const void *q, const void *k, const void *v,
                                size_t row_bytes, int n, int HS, float scale);

static inline __m512 cvt16(const uint8_t *qs) { /* 16 int8 -> 16 f32 */
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)qs)));
}

static inline __m512i widen32(const uint8_t *qs) { /* 32 int8 -> 32 int16 */
    return _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)qs));
}

void cllm_kv_attend_q8_0_avx512(float *out, float *scores, const void *q, const void *k, const void *v,
                                size_t row_bytes, int n, int HS, float scale) {
    const int nb = HS / 32;
    if (nb > MAX_BLOCKS) {
        cllm_kv_attend_q8_0_reference(out, scores, q, k, v, row_bytes, n, HS, scale);
        return;
    }
    const uint8_t *qb = q;
    __m512i qv[MAX_BLOCKS];
    float qd[MAX_BLOCKS];
    for (int b = 0; b < nb; b++) {
        qv[b] = widen32(qb + b * CLLM_Q8_0_BYTES + 2);
        qd[b] = fp16_at(qb + b * CLLM_Q8_0_BYTES) * scale;
    }
    for (int j = 0; j < n; j++) {
        const uint8_t *kb = (const uint8_t *)k + (size_t)j * row_bytes;
        if (j + PREFETCH_ROWS < n) { /* rows are row_bytes apart: help the prefetcher */
            _mm_prefetch((const char *)(kb + PREFETCH_ROWS * row_bytes), _MM_HINT_T0);
            _mm_prefetch((const char *)(kb + PREFETCH_ROWS * row_bytes + 64), _MM_HINT_T0);
        }
        __m512 acc = _mm512_setzero_ps();
        for (int b = 0; b < nb; b++, kb += CLLM_Q8_0_BYTES) {
            const __m512i prod = _mm512_madd_epi16(widen32(kb + 2), qv[b]);
            acc = _mm512_fmadd_ps(_mm512_set1_ps(fp16_at(kb) * qd[b]), _mm512_cvtepi32_ps(prod), acc);
        }
        scores[j] = _mm512_reduce_add_ps(acc);
    }
    const float mx = cllm_vmax(scores, (size_t)n);
    const float inv = (float)(1.0 / cllm_vexp_shift_sum(scores, scores, mx, (size_t)n));
    /* Values: two blocks (4 accumulators, kept in registers) per sweep over
     * the rows, then a last single block when nb is odd. */
    int b = 0;
    for (; b + 2 <= nb; b += 2) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        const uint8_t *vb = (const uint8_t *)v + (size_t)b * CLLM_Q8_0_BYTES;
        for (int j = 0; j < n; j++, vb += row_bytes) {
            if (j + PREFETCH_ROWS < n) _mm_prefetch((const char *)(vb + PREFETCH_ROWS * row_bytes), _MM_HINT_T0);
            const float p = scores[j] * inv;
            const __m512 w0 = _mm512_set1_ps(p * fp16_at(vb)), w1 = _mm512_set1_ps(p * fp16_at(vb + CLLM_Q8_0_BYTES));
            a0 = _mm512_fmadd_ps(w0, cvt16(vb + 2), a0);
            a1 = _mm512_fmadd_ps(w0, cvt16(vb + 18), a1);
            a2 = _mm512_fmadd_ps(w1, cvt16(vb + CLLM_Q8_0_BYTES + 2), a2);
            a3 = _mm512_fmadd_ps(w1, cvt16(vb + CLLM_Q8_0_BYTES + 18), a3);
        }
        _mm512_storeu_ps(out + b * 32, a0);
        _mm512_storeu_ps(out + b * 32 + 16, a1);
        _mm512_storeu_ps(out + b * 32 + 32, a2);
        _mm512_storeu_ps(out + b * 32 + 48, a3);
    }
    if (b < nb) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0;
        const uint8_t *vb = (const uint8_t *)v + (size_t)b * CLLM_Q8_0_BYTES;
        for (int j = 0; j < n; j++, vb += row_bytes) {
            const __m512 w = _mm512_set1_ps(scores[j] * inv * fp16_at(vb));
            a0 = _mm512_fmadd_ps(w, cvt16(vb + 2), a0);
            a1 = _mm512_fmadd_ps(w, cvt16(vb + 18), a1);
        }
        _mm512_storeu_ps(out + b * 32, a0);
        _mm512_storeu_ps(out + b * 32 + 16, a1);
    }
}

/* ---- f16 cache ---------------------------------------------------------
 * Scores: the query (times the scale) held in up to 16 zmm, each key row
 * widened 16 values at a time (vcvtph2ps) into one f32 accumulator, reduced
 * once per row. Values: 64 outputs (4 accumulators in registers) per sweep
 * over the rows. Head sizes that are not a multiple of 16 or above 256 go
 * to the reference. */
#define F16_MAX_VEC 16

void cllm_kv_attend_f16_avx512(float *out, float *scores, const void *q, const void *k, const void *v,
                               size_t row_bytes, int n, int HS, float scale);

static inline __m512 load16_h(const uint8_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }

void cllm_kv_attend_f16_avx512(float *out, float *scores, const void *q, const void *k, const void *v,
                               size_t row_bytes, int n, int HS, float scale) {
    const int nv = HS / 16;
    if (HS % 16 || nv > F16_MAX_VEC) {
        cllm_kv_attend_f16_reference(out, scores, q, k, v, row_bytes, n, HS, scale);
        return;
    }
    __m512 qv[F16_MAX_VEC];
    for (int i = 0; i < nv; i++) qv[i] = _mm512_mul_ps(_mm512_loadu_ps((const float *)q + 16 * i), _mm512_set1_ps(scale));
    for (int j = 0; j < n; j++) {
        const uint8_t *kb = (const uint8_t *)k + (size_t)j * row_bytes;
        if (j + PREFETCH_ROWS < n) {
            _mm_prefetch((const char *)(kb + PREFETCH_ROWS * row_bytes), _MM_HINT_T0);
            _mm_prefetch((const char *)(kb + PREFETCH_ROWS * row_bytes + 64), _MM_HINT_T0);
        }
        __m512 acc = _mm512_setzero_ps();
        for (int i = 0; i < nv; i++) acc = _mm512_fmadd_ps(load16_h(kb + 32 * i), qv[i], acc);
        scores[j] = _mm512_reduce_add_ps(acc);
    }
    const float mx = cllm_vmax(scores, (size_t)n);
    const float inv = (float)(1.0 / cllm_vexp_shift_sum(scores, scores, mx, (size_t)n));
    for (int d0 = 0; d0 < HS; d0 += 64) {
        const int w = HS - d0 < 64 ? (HS - d0) / 16 : 4; /* vectors in this sweep */
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        const uint8_t *vb = (const uint8_t *)v + 2 * (size_t)d0;
        for (int j = 0; j < n; j++, vb += row_bytes) {
            if (j + PREFETCH_ROWS < n) _mm_prefetch((const char *)(vb + PREFETCH_ROWS * row_bytes), _MM_HINT_T0);
            const __m512 p = _mm512_set1_ps(scores[j] * inv);
            a0 = _mm512_fmadd_ps(p, load16_h(vb), a0);
            if (w > 1) a1 = _mm512_fmadd_ps(p, load16_h(vb + 32), a1);
            if (w > 2) a2 = _mm512_fmadd_ps(p, load16_h(vb + 64), a2);
            if (w > 3) a3 = _mm512_fmadd_ps(p, load16_h(vb + 96), a3);
        }
        _mm512_storeu_ps(out + d0, a0);
        if (w > 1) _mm512_storeu_ps(out + d0 + 16, a1);
        if (w > 2) _mm512_storeu_ps(out + d0 + 32, a2);
        if (w > 3) _mm512_storeu_ps(out + d0 + 48, a3);
    }
}

/* The f32 cache kernel: kv_attn_f32.h's loops compiled for this ISA. */
void cllm_kv_attend_f32_avx512(float *out, float *scores, size_t ld_scores, const float *q, const float *k,
                              const float *v, size_t row_stride, int n, int n_kv, int group, int HS, float scale) {
    kv_attend_f32_body(out, scores, ld_scores, q, k, v, row_stride, n, n_kv, group, HS, scale,
                       cllm_kernels_vexp_shift_sum_avx512);
}
