/*
 * kv_attn_avx2.c: single-query attention over a q8_0 or f16 KV cache head with
 * AVX2 + FMA + F16C (cllm/kernels/kv_attn.h), for CPUs without AVX-512. Entered
 * only through the dispatch in kv_attn.c after checking the CPU.
 *
 * Same scheme as kv_attn_avx512.c at half the width: the query's blocks are
 * widened to int16 once (two ymm per block); each key block is widened the
 * same way and multiplied with vpmaddwd (exact int32 pair sums), scaled by
 * the two fp16 scales into one f32 accumulator, reduced once per row. Values:
 * blocks in pairs (8 ymm accumulators live across the rows). Head sizes
 * above 256 go to the reference.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "cllm/formats/ggml_types.h"
#include "cllm/kernels/kernels.h"
#include "cllm/kernels/kv_attn.h"
#include "f16c_load.h"
#include "kernels_internal.h"
#include "kv_attn_f32.h"

#define MAX_BLOCKS 8

void cllm_kv_attend_q8_0_avx2(float *out, float *scores, const void *q, const void *k, const void *v,
                              size_t row_bytes, int n, int HS, float scale);

static inline __m256i widen16(const uint8_t *qs) { /* 16 int8 -> 16 int16 */
    return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)qs));
}

static inline __m256 cvt8(const uint8_t *qs) { /* 8 int8 -> 8 f32 */
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)qs)));
}

static inline float hsum(__m256 x) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

void cllm_kv_attend_q8_0_avx2(float *out, float *scores, const void *q, const void *k, const void *v,
                              size_t row_bytes, int n, int HS, float scale) {
    const int nb = HS / 32;
    if (nb > MAX_BLOCKS) {
        cllm_kv_attend_q8_0_reference(out, scores, q, k, v, row_bytes, n, HS, scale);
        return;
    }
    const uint8_t *qb = q;
    __m256i qlo[MAX_BLOCKS], qhi[MAX_BLOCKS];
    float qd[MAX_BLOCKS];
    for (int b = 0; b < nb; b++) {
        qlo[b] = widen16(qb + b * CLLM_Q8_0_BYTES + 2);
        qhi[b] = widen16(qb + b * CLLM_Q8_0_BYTES + 18);
        qd[b] = fp16_at(qb + b * CLLM_Q8_0_BYTES) * scale;
    }
    for (int j = 0; j < n; j++) {
        const uint8_t *kb = (const uint8_t *)k + (size_t)j * row_bytes;
        __m256 acc = _mm256_setzero_ps();
        for (int b = 0; b < nb; b++, kb += CLLM_Q8_0_BYTES) {
            const __m256i prod = _mm256_add_epi32(_mm256_madd_epi16(widen16(kb + 2), qlo[b]),
                                                  _mm256_madd_epi16(widen16(kb + 18), qhi[b]));
            acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16_at(kb) * qd[b]), _mm256_cvtepi32_ps(prod), acc);
        }
        scores[j] = hsum(acc);
    }
    const float mx = cllm_vmax(scores, (size_t)n);
    const float inv = (float)(1.0 / cllm_vexp_shift_sum(scores, scores, mx, (size_t)n));
    for (int b0 = 0; b0 < nb; b0 += 2) {
        const int nbb = nb - b0 < 2 ? nb - b0 : 2;
        __m256 acc[8];
        for (int a = 0; a < 8; a++) acc[a] = _mm256_setzero_ps();
        const uint8_t *vb = (const uint8_t *)v + (size_t)b0 * CLLM_Q8_0_BYTES;
        for (int j = 0; j < n; j++, vb += row_bytes) {
            const float p = scores[j] * inv;
            for (int bb = 0; bb < 2; bb++) {
                if (bb >= nbb) break;
                const uint8_t *blk = vb + bb * CLLM_Q8_0_BYTES;
                const __m256 w = _mm256_set1_ps(p * fp16_at(blk));
                for (int c = 0; c < 4; c++) acc[4 * bb + c] = _mm256_fmadd_ps(w, cvt8(blk + 2 + 8 * c), acc[4 * bb + c]);
            }
        }
        for (int bb = 0; bb < nbb; bb++)
            for (int c = 0; c < 4; c++) _mm256_storeu_ps(out + (b0 + bb) * 32 + 8 * c, acc[4 * bb + c]);
    }
}

/* ---- f16 cache: the AVX-512 scheme at 8 lanes (query in up to 32 ymm,
 * 32 outputs = 4 accumulators per value sweep); head sizes that are not a
 * multiple of 8 or above 256 go to the reference. */
#define F16_MAX_VEC 32

void cllm_kv_attend_f16_avx2(float *out, float *scores, const void *q, const void *k, const void *v,
                             size_t row_bytes, int n, int HS, float scale);

static inline __m256 load8_h(const uint8_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

void cllm_kv_attend_f16_avx2(float *out, float *scores, const void *q, const void *k, const void *v,
                             size_t row_bytes, int n, int HS, float scale) {
    const int nv = HS / 8;
    if (HS % 8 || nv > F16_MAX_VEC) {
        cllm_kv_attend_f16_reference(out, scores, q, k, v, row_bytes, n, HS, scale);
        return;
    }
    __m256 qv[F16_MAX_VEC];
    for (int i = 0; i < nv; i++) qv[i] = _mm256_mul_ps(_mm256_loadu_ps((const float *)q + 8 * i), _mm256_set1_ps(scale));
    for (int j = 0; j < n; j++) {
        const uint8_t *kb = (const uint8_t *)k + (size_t)j * row_bytes;
        __m256 acc = _mm256_setzero_ps();
        for (int i = 0; i < nv; i++) acc = _mm256_fmadd_ps(load8_h(kb + 16 * i), qv[i], acc);
        scores[j] = hsum(acc);
    }
    const float mx = cllm_vmax(scores, (size_t)n);
    const float inv = (float)(1.0 / cllm_vexp_shift_sum(scores, scores, mx, (size_t)n));
    for (int d0 = 0; d0 < HS; d0 += 32) {
        const int w = HS - d0 < 32 ? (HS - d0) / 8 : 4; /* vectors in this sweep */
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        const uint8_t *vb = (const uint8_t *)v + 2 * (size_t)d0;
        for (int j = 0; j < n; j++, vb += row_bytes) {
            const __m256 p = _mm256_set1_ps(scores[j] * inv);
            a0 = _mm256_fmadd_ps(p, load8_h(vb), a0);
            if (w > 1) a1 = _mm256_fmadd_ps(p, load8_h(vb + 16), a1);
            if (w > 2) a2 = _mm256_fmadd_ps(p, load8_h(vb + 32), a2);
            if (w > 3) a3 = _mm256_fmadd_ps(p, load8_h(vb + 48), a3);
        }
        _mm256_storeu_ps(out + d0, a0);
        if (w > 1) _mm256_storeu_ps(out + d0 + 8, a1);
        if (w > 2) _mm256_storeu_ps(out + d0 + 16, a2);
        if (w > 3) _mm256_storeu_ps(out + d0 + 24, a3);
    }
}

/* The f32 cache kernel: kv_attn_f32.h's loops compiled for this ISA. */
void cllm_kv_attend_f32_avx2(float *out, float *scores, size_t ld_scores, const float *q, const float *k,
                            const float *v, size_t row_stride, int n, int n_kv, int group, int HS, float scale) {
    kv_attend_f32_body(out, scores, ld_scores, q, k, v, row_stride, n, n_kv, group, HS, scale,
                       cllm_kernels_vexp_shift_sum_avx2);
}
