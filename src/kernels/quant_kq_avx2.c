/*
 * quant_kq_avx2.c: AVX2 dot products of q4_K, q5_K and q6_K rows with q8_K
 * activations (cllm/kernels/quant.h), the types of llama-quantize's Q4_K_M
 * and Q5_K_M mixes. Compiled with AVX2 flags (file suffix); entered only
 * through the tables dispatch.c fills (the AVX2 and AVX-512 ones alike: at
 * one super-block per step the 256-bit form is not the bottleneck).
 *
 * Per 32 weights: the levels as unsigned bytes (0..15, 0..31 or 0..63)
 * times the signed q8_K bytes with vpmaddubsw (pair sums at most 2 * 63 *
 * 127, exact in int16), times the sub-block's integer scale with vpmaddwd
 * into int32 lanes; per super-block one float multiply by d * dy. The
 * offsets come from q8_K's per-16 sums: q4_K/q5_K subtract dmin * dy *
 * sum(min * bsum), q6_K's levels are stored + 32 and 32 * sum(scale * bsum)
 * comes off the integer total. Integer sums are exact, so results differ
 * from the reference only by float summation order.
 * Not here: q2_K, q3_K, q4_1, q5_0, q5_1 (the reference serves them), threading.
 */
#include <immintrin.h>
#include <string.h>

#include "cllm/core/byteorder.h"
#include "cllm/formats/ggml_types.h"
#include "f16c_load.h"
#include "quant_internal.h"

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

static inline float q8k_scale(const uint8_t *b) {
    float d;
    memcpy(&d, b, 4);
    return d;
}

/* q4_K/q5_K's 8 six-bit scales and mins (layout in ggml_kquants.c) and
 * sum_j mins[j] * (bsums of sub-block j's two groups of 16). */
static inline int32_t k4_scales(const uint8_t *s, const uint8_t *bsums, int16_t sc[8]) {
    int32_t msum = 0;
    for (int j = 0; j < 8; j++) {
        int m;
        if (j < 4) {
            sc[j] = (int16_t)(s[j] & 63);
            m = s[j + 4] & 63;
        } else {
            sc[j] = (int16_t)((s[j + 4] & 15) | ((s[j - 4] >> 6) << 4));
            m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
        }
        msum += m * ((int16_t)cllm_get_le16(bsums + 4 * j) + (int16_t)cllm_get_le16(bsums + 4 * j + 2));
    }
    return msum;
}

/* q4_K (five = 0) and q5_K (five = 1): the same scales, q5_K's fifth bit
 * of element 32j + l is bit j of qh[l]. */
static inline float dot_k45(const uint8_t *a, const uint8_t *b, int64_t n, int five) {
    const size_t bytes = five ? 176 : 144;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    float macc = 0.0f;
    for (int64_t i = 0; i < n / CLLM_QK_K; i++, a += bytes, b += CLLM_Q8_K_BYTES) {
        const float dy = q8k_scale(b), d = fp16_at(a) * dy, dmin = fp16_at(a + 2) * dy;
        int16_t sc[8];
        const int32_t msum = k4_scales(a + 4, b + 260, sc);
        const uint8_t *qs = a + (five ? 48 : 16), *y = b + 4;
        const __m256i qh = five ? _mm256_loadu_si256((const __m256i *)(a + 16)) : _mm256_setzero_si256();
        __m256i isum = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
            __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            if (five) {
                const __m256i blo = _mm256_set1_epi8((char)(1 << (2 * c))), bhi = _mm256_set1_epi8((char)(2 << (2 * c)));
                const __m256i sixteen = _mm256_set1_epi8(16);
                lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, blo), blo), sixteen));
                hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bhi), bhi), sixteen));
            }
            const __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(y + 64 * c)));
            const __m256i phi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(y + 64 * c + 32)));
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(plo, _mm256_set1_epi16(sc[2 * c])));
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(phi, _mm256_set1_epi16(sc[2 * c + 1])));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(isum), acc);
        macc += dmin * (float)msum;
    }
    return hsum_ps(acc) - macc;
}

static float avx2_dot_q4_K_q8_K(const void *w, const void *xq, int64_t n) { return dot_k45(w, xq, n, 0); }
static float avx2_dot_q5_K_q8_K(const void *w, const void *xq, int64_t n) { return dot_k45(w, xq, n, 1); }

static float avx2_dot_q6_K_q8_K(const void *w, const void *xq, int64_t n) {
    const uint8_t *a = w, *b = xq;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / CLLM_QK_K; i++, a += 210, b += CLLM_Q8_K_BYTES) {
        const int8_t *sc = (const int8_t *)(a + 192);
        int32_t corr = 0;
        for (int g = 0; g < 16; g++) corr += sc[g] * (int16_t)cllm_get_le16(b + 260 + 2 * g);
        __m256i isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i ql0 = _mm256_loadu_si256((const __m256i *)(a + 64 * h));
            const __m256i ql1 = _mm256_loadu_si256((const __m256i *)(a + 64 * h + 32));
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(a + 128 + 32 * h));
            for (int k = 0; k < 4; k++) {
                /* elements 128h + 32k + l: nibble (k >> 1) of ql[32 * (k & 1) + l], bits 2k, 2k+1 of qh[l] */
                const __m256i ql = k & 1 ? ql1 : ql0;
                const __m256i lo = k < 2 ? _mm256_and_si256(ql, m4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), m4);
                const __m256i hi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), m2), 4);
                const __m256i p = _mm256_maddubs_epi16(_mm256_or_si256(lo, hi),
                                                       _mm256_loadu_si256((const __m256i *)(b + 4 + 128 * h + 32 * k)));
                const int g = 8 * h + 2 * k; /* the low 128 bits are group g, the high ones g + 1 */
                const __m256i s = _mm256_set_m128i(_mm_set1_epi16(sc[g + 1]), _mm_set1_epi16(sc[g]));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, s));
            }
        }
        sum += fp16_at(a + 208) * q8k_scale(b) * (float)(hsum_epi32(isum) - 32 * corr);
    }
    return sum;
}

void cllm_quant_fill_kq_avx2(cllm_quant_kernels *t) {
    t->dot_q4_K_q8_K = avx2_dot_q4_K_q8_K;
    t->dot_q5_K_q8_K = avx2_dot_q5_K_q8_K;
    t->dot_q6_K_q8_K = avx2_dot_q6_K_q8_K;
}
