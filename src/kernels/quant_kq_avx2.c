/*
 * quant_kq_avx2.c: AVX2 dot products of the k-quant rows with q8_K
 * activations and of q4_1 / q5_0 / q5_1 rows with q8_0 activations
 * (cllm/kernels/quant.h); q4_K, q5_K and q6_K, the types of llama-quantize's
 * Q4_K_M and Q5_K_M mixes, decoded straight from their packed bytes. Compiled with AVX2 flags (file suffix); entered only
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
 * q2_K and q3_K expand their 2-bit planes (and q3_K's third bits) in
 * registers the same way; q4_1, q5_0, q5_1 (q8_0 activations) their
 * nibbles and fifth bits.
 * Dequantization of q4_K, q5_K and q6_K rows (prompt chunks) is here too,
 * bit-exact with the reference; the other types use the reference's.
 * Not here: threading.
 */
#include <immintrin.h>
#include <string.h>

#include "cllm/core/byteorder.h"
#include "cllm/formats/ggml_types.h"
#include "f16c_load.h"
#include "quant_internal.h"

/* Bytes ahead of the current block that the dots prefetch (rows are
 * streamed from memory when decoding; llama-110m Q4_K_M, 1 thread, tokens/s
 * without: 69; 512 B: 108; 1 KiB: 120; 2 KiB: 133; 4 KiB: 155; 8 KiB: 155). */
#define KQ_PREFETCH 4096

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float q8k_scale(const uint8_t *b) {
    float d;
    memcpy(&d, b, 4);
    return d;
}

/* q4_K/q5_K's 12 scale bytes as 8 scales and 8 mins (layout in
 * ggml_kquants.c), four bytes at a time: scales 0-3 are the low 6 bits of
 * word 0, mins 0-3 of word 1; scales 4-7 the low nibbles of word 2 with
 * the top 2 bits of word 0's bytes above them, mins 4-7 the high nibbles
 * with word 1's top bits. Returns the scales and mins as two u64s of bytes. */
static inline void k4_scales(const uint8_t *s, uint64_t *sc, uint64_t *mn) {
    uint32_t w0, w1, w2;
    memcpy(&w0, s, 4);
    memcpy(&w1, s + 4, 4);
    memcpy(&w2, s + 8, 4);
    const uint32_t lo6 = 0x3f3f3f3fu, lo4 = 0x0f0f0f0fu, top2 = 0x03030303u;
    const uint32_t s47 = (w2 & lo4) | (((w0 >> 6) & top2) << 4), m47 = ((w2 >> 4) & lo4) | (((w1 >> 6) & top2) << 4);
    *sc = (uint64_t)(w0 & lo6) | (uint64_t)s47 << 32;
    *mn = (uint64_t)(w1 & lo6) | (uint64_t)m47 << 32;
}

/* sum_j mins[j] * (q8_K bsums of sub-block j's two groups of 16), as 4 int32 lanes. */
static inline __m128i k4_min_sums(uint64_t mn, const uint8_t *bsums) {
    const __m256i bs = _mm256_loadu_si256((const __m256i *)bsums); /* 16 int16 */
    const __m128i pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1)); /* 8 sums */
    return _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)mn)), pairs);
}

/* q4_K (five = 0) and q5_K (five = 1): the same scales, q5_K's fifth bit
 * of element 32j + l is bit j of qh[l]. */
/* q4_K/q5_K levels of chunk c (64 elements) of a block's quants qs (and,
 * for q5_K, its high bits qh): *lo the first 32 (low nibbles), *hi the next
 * 32 (high nibbles), 16 added where the element's qh bit is set. */
static inline void k45_levels(const uint8_t *qs, __m256i qh, int c, int five, __m256i m4, __m256i *lo, __m256i *hi) {
    const __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
    *lo = _mm256_and_si256(q, m4);
    *hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    if (five) {
        const __m256i blo = _mm256_set1_epi8((char)(1 << (2 * c))), bhi = _mm256_set1_epi8((char)(2 << (2 * c)));
        const __m256i sixteen = _mm256_set1_epi8(16);
        *lo = _mm256_or_si256(*lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, blo), blo), sixteen));
        *hi = _mm256_or_si256(*hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bhi), bhi), sixteen));
    }
}

static inline float dot_k45(const uint8_t *a, const uint8_t *b, int64_t n, int five) {
    const size_t bytes = five ? 176 : 144;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    __m128 macc = _mm_setzero_ps();
    for (int64_t i = 0; i < n / CLLM_QK_K; i++, a += bytes, b += CLLM_Q8_K_BYTES) {
        /* rows lie one after another: fetch ahead into the next row too (decoding streams the
         * matrix from memory; without this a row of a few blocks left the loads unoverlapped) */
        _mm_prefetch((const char *)(a + KQ_PREFETCH), _MM_HINT_T0);
        _mm_prefetch((const char *)(a + KQ_PREFETCH + 64), _MM_HINT_T0);
        _mm_prefetch((const char *)(a + KQ_PREFETCH + 128), _MM_HINT_T0);
        const float dy = q8k_scale(b), d = fp16_at(a) * dy, dmin = fp16_at(a + 2) * dy;
        uint64_t scw, mnw;
        k4_scales(a + 4, &scw, &mnw);
        macc = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(k4_min_sums(mnw, b + 260)), macc);
        const uint8_t *qs = a + (five ? 48 : 16), *y = b + 4;
        const __m256i qh = five ? _mm256_loadu_si256((const __m256i *)(a + 16)) : _mm256_setzero_si256();
        __m256i isum = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            __m256i lo, hi;
            k45_levels(qs, qh, c, five, m4, &lo, &hi);
            const __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(y + 64 * c)));
            const __m256i phi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(y + 64 * c + 32)));
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(plo, _mm256_set1_epi16((short)((scw >> (16 * c)) & 0xff))));
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(phi, _mm256_set1_epi16((short)((scw >> (16 * c + 8)) & 0xff))));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(isum), acc);
    }
    __m128 m = _mm_add_ps(macc, _mm_movehl_ps(macc, macc));
    m = _mm_add_ss(m, _mm_movehdup_ps(m));
    return hsum_ps(acc) - _mm_cvtss_f32(m);
}

static float avx2_dot_q4_K_q8_K(const void *w, const void *xq, int64_t n) { return dot_k45(w, xq, n, 0); }
static float avx2_dot_q5_K_q8_K(const void *w, const void *xq, int64_t n) { return dot_k45(w, xq, n, 1); }

/* q6_K's unsigned 6-bit levels of elements 128h + 32k + l (h: which half
 * of the block ql0/ql1/qh were loaded from): nibble (k >> 1) of
 * ql[32 * (k & 1) + l], bits 2k, 2k+1 of qh[l]. */
static inline __m256i q6k_levels(__m256i ql0, __m256i ql1, __m256i qh, int k, __m256i m4, __m256i m2) {
    const __m256i ql = k & 1 ? ql1 : ql0;
    const __m256i lo = k < 2 ? _mm256_and_si256(ql, m4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), m4);
    const __m256i hi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), m2), 4);
    return _mm256_or_si256(lo, hi);
}

static float avx2_dot_q6_K_q8_K(const void *w, const void *xq, int64_t n) {
    const uint8_t *a = w, *b = xq;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps(); /* per-lane float sums across blocks, as dot_k23 */
    for (int64_t i = 0; i < n / CLLM_QK_K; i++, a += 210, b += CLLM_Q8_K_BYTES) {
        for (int f = 0; f < 4; f++) _mm_prefetch((const char *)(a + KQ_PREFETCH + 64 * f), _MM_HINT_T0);
        const int8_t *sc = (const int8_t *)(a + 192);
        /* sum_g scale[g] * bsum[g]: the levels' offset 32 times the activations, per group */
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
        __m256i isum = _mm256_slli_epi32(_mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)(b + 260))), 5);
        isum = _mm256_sub_epi32(_mm256_setzero_si256(), isum); /* starts at -32 * sum(scale * bsum) */
        for (int h = 0; h < 2; h++) {
            const __m256i ql0 = _mm256_loadu_si256((const __m256i *)(a + 64 * h));
            const __m256i ql1 = _mm256_loadu_si256((const __m256i *)(a + 64 * h + 32));
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(a + 128 + 32 * h));
            for (int k = 0; k < 4; k++) {
                const __m256i p = _mm256_maddubs_epi16(q6k_levels(ql0, ql1, qh, k, m4, m2),
                                                       _mm256_loadu_si256((const __m256i *)(b + 4 + 128 * h + 32 * k)));
                const int g = 8 * h + 2 * k; /* the low 128 bits are group g, the high ones g + 1 */
                const __m256i s = _mm256_set_m128i(_mm_set1_epi16(sc[g + 1]), _mm_set1_epi16(sc[g]));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, s));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16_at(a + 208) * q8k_scale(b)), _mm256_cvtepi32_ps(isum), acc);
    }
    return hsum_ps(acc);
}

/* q2_K (three = 0) and q3_K (three = 1): per 32 elements 128h + 32k + l
 * the 2-bit plane k of bytes 32h + l as unsigned levels, q3_K adding 4
 * where its third bit (bit 4h + k of hmask[l]) is set; vpmaddubsw with the
 * activations, vpmaddwd with the two groups' scales. The offsets come off
 * through q8_K's group sums: q2_K dmin * sum(min * bsum), q3_K
 * 4 * sum(scale * bsum) (its stored levels are value + 4). */
static inline float dot_k23(const uint8_t *a, const uint8_t *b, int64_t n, int three) {
    const size_t bytes = three ? 110 : 84;
    const __m256i m2 = _mm256_set1_epi8(3);
    /* per-lane float sums across blocks (a horizontal integer sum per block cost q2_K/q3_K decoding
     * about a tenth); macc: q2_K's dmin * min terms */
    __m256 acc = _mm256_setzero_ps(), macc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / CLLM_QK_K; i++, a += bytes, b += CLLM_Q8_K_BYTES) {
        _mm_prefetch((const char *)(a + KQ_PREFETCH), _MM_HINT_T0);
        _mm_prefetch((const char *)(a + KQ_PREFETCH + 64), _MM_HINT_T0);
        int16_t sc[16];
        __m256i mn16;
        if (three) {
            /* the 16 six-bit scales four at a time: low nibbles of bytes 0-3, 4-7, then their high
             * nibbles, each with 2 bits of bytes 8-11 above them (layout in ggml_kquants.c) */
            uint32_t w0, w1, w2;
            memcpy(&w0, a + 96, 4);
            memcpy(&w1, a + 100, 4);
            memcpy(&w2, a + 104, 4);
            const uint32_t lo4 = 0x0f0f0f0fu, two = 0x03030303u;
            const __m128i s8 = _mm_setr_epi32((int)((w0 & lo4) | ((w2 & two) << 4)), (int)((w1 & lo4) | (((w2 >> 2) & two) << 4)),
                                              (int)(((w0 >> 4) & lo4) | (((w2 >> 4) & two) << 4)),
                                              (int)(((w1 >> 4) & lo4) | (((w2 >> 6) & two) << 4)));
            _mm256_storeu_si256((__m256i *)sc, _mm256_sub_epi16(_mm256_cvtepu8_epi16(s8), _mm256_set1_epi16(32)));
            mn16 = _mm256_setzero_si256();
        } else {
            const __m128i s = _mm_loadu_si128((const __m128i *)a);
            _mm256_storeu_si256((__m256i *)sc, _mm256_cvtepu8_epi16(_mm_and_si128(s, _mm_set1_epi8(15))));
            mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), _mm_set1_epi8(15)));
        }
        const uint8_t *qs = a + (three ? 32 : 16), *y = b + 4;
        const __m256i hm = three ? _mm256_loadu_si256((const __m256i *)a) : _mm256_setzero_si256();
        __m256i isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * h));
            for (int k = 0; k < 4; k++) {
                __m256i lv = _mm256_and_si256(_mm256_srli_epi16(q, 2 * k), m2);
                if (three) {
                    const __m256i bit = _mm256_set1_epi8((char)(1 << (4 * h + k)));
                    lv = _mm256_or_si256(lv, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit),
                                                              _mm256_set1_epi8(4)));
                }
                const __m256i p = _mm256_maddubs_epi16(lv, _mm256_loadu_si256((const __m256i *)(y + 128 * h + 32 * k)));
                const int g = 8 * h + 2 * k;
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, _mm256_set_m128i(_mm_set1_epi16(sc[g + 1]), _mm_set1_epi16(sc[g]))));
            }
        }
        const __m256i bs = _mm256_loadu_si256((const __m256i *)(b + 260));
        const float dy = q8k_scale(b);
        if (three) {
            /* lanes of the offset 4 * sum(scale * bsum) line up with nothing in isum: only the totals
             * are equal, and both are summed across lanes once, at the end */
            isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(_mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)sc), bs), 2));
            acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16_at(a + 108) * dy), _mm256_cvtepi32_ps(isum), acc);
        } else {
            acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16_at(a + 80) * dy), _mm256_cvtepi32_ps(isum), acc);
            macc = _mm256_fmadd_ps(_mm256_set1_ps(fp16_at(a + 82) * dy), _mm256_cvtepi32_ps(_mm256_madd_epi16(mn16, bs)), macc);
        }
    }
    return hsum_ps(acc) - hsum_ps(macc);
}

static float avx2_dot_q2_K_q8_K(const void *w, const void *xq, int64_t n) { return dot_k23(w, xq, n, 0); }
static float avx2_dot_q3_K_q8_K(const void *w, const void *xq, int64_t n) { return dot_k23(w, xq, n, 1); }

/* The 32 bits of x as 32 bytes, 0xFF where the bit is set (bit j -> byte j). */
static inline __m256i bits_to_mask(uint32_t x) {
    const __m256i spread = _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL, 0x0303030303030303LL);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    const __m256i v = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)x), spread), bit);
    return _mm256_cmpeq_epi8(v, bit);
}

/* q4_1 / q5_0 / q5_1 x q8_0: the 32 levels as unsigned bytes (nibbles, plus
 * 16 where the fifth bit is set), one vpmaddubsw with the activations and
 * one with a vector of 1s for their sum; per block
 * d * dy * (levels . y) + (m or -16 d) * dy * sum(y). */
static inline float dot_q5_like(const uint8_t *a, const uint8_t *b, int64_t n, int five, int has_min) {
    const size_t bytes = has_min ? (five ? 24 : 20) : 22;
    const int qs_at = has_min ? (five ? 8 : 4) : 6;
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; i++, a += bytes, b += CLLM_Q8_0_BYTES) {
        if (i % 2 == 0) _mm_prefetch((const char *)(a + KQ_PREFETCH), _MM_HINT_T0);
        const __m128i raw = _mm_loadu_si128((const __m128i *)(a + qs_at));
        __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), m4);
        if (five) {
            uint32_t qh;
            memcpy(&qh, a + (has_min ? 4 : 2), 4);
            q = _mm256_or_si256(q, _mm256_and_si256(bits_to_mask(qh), _mm256_set1_epi8(16)));
        }
        const __m256i y = _mm256_loadu_si256((const __m256i *)(b + 2));
        const __m256 dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(q, y), ones16));
        const __m256 sy = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(ones, y), ones16));
        const float d = fp16_at(a), dy = fp16_at(b), off = has_min ? fp16_at(a + 2) : -16.0f * d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * dy), dot, acc);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(off * dy), sy, acc);
    }
    return hsum_ps(acc);
}

static float avx2_dot_q4_1_q8_0(const void *w, const void *xq, int64_t n) { return dot_q5_like(w, xq, n, 0, 1); }
static float avx2_dot_q5_0_q8_0(const void *w, const void *xq, int64_t n) { return dot_q5_like(w, xq, n, 1, 0); }
static float avx2_dot_q5_1_q8_0(const void *w, const void *xq, int64_t n) { return dot_q5_like(w, xq, n, 1, 1); }

/* ---- dequantization (prompt chunks multiply dequantized rows) ------------- */

/* 8 levels (bytes, signed or not) as floats times dg minus mg: the
 * reference's (d * sc) * q - dmin * m, the same two roundings. */
static inline void put8(__m128i bytes8, int is_signed, float dg, float mg, float *out) {
    const __m256i w = is_signed ? _mm256_cvtepi8_epi32(bytes8) : _mm256_cvtepu8_epi32(bytes8);
    _mm256_storeu_ps(out, _mm256_sub_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(w), _mm256_set1_ps(dg)), _mm256_set1_ps(mg)));
}

/* 32 levels: the first 16 with (dg0, mg0), the last 16 with (dg1, mg1). */
static inline void put32(__m256i v, int is_signed, float dg0, float mg0, float dg1, float mg1, float *out) {
    const __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
    put8(lo, is_signed, dg0, mg0, out);
    put8(_mm_srli_si128(lo, 8), is_signed, dg0, mg0, out + 8);
    put8(hi, is_signed, dg1, mg1, out + 16);
    put8(_mm_srli_si128(hi, 8), is_signed, dg1, mg1, out + 24);
}

static void avx2_dequant_other(uint32_t type, const void *src, float *dst, int64_t n) {
    const uint8_t *a = src;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    if (type == CLLM_GGML_Q4_K || type == CLLM_GGML_Q5_K) {
        const int five = type == CLLM_GGML_Q5_K;
        const size_t bytes = five ? 176 : 144;
        for (int64_t i = 0; i < n / CLLM_QK_K; i++, a += bytes, dst += CLLM_QK_K) {
            const float d = fp16_at(a), dmin = fp16_at(a + 2);
            uint64_t scw, mnw;
            k4_scales(a + 4, &scw, &mnw);
            const uint8_t *qs = a + (five ? 48 : 16);
            const __m256i qh = five ? _mm256_loadu_si256((const __m256i *)(a + 16)) : _mm256_setzero_si256();
            for (int c = 0; c < 4; c++) {
                __m256i lo, hi;
                k45_levels(qs, qh, c, five, m4, &lo, &hi);
                const float d0 = d * (float)((scw >> (16 * c)) & 0xff), m0 = dmin * (float)((mnw >> (16 * c)) & 0xff);
                const float d1 = d * (float)((scw >> (16 * c + 8)) & 0xff), m1 = dmin * (float)((mnw >> (16 * c + 8)) & 0xff);
                put32(lo, 0, d0, m0, d0, m0, dst + 64 * c);
                put32(hi, 0, d1, m1, d1, m1, dst + 64 * c + 32);
            }
        }
        return;
    }
    if (type == CLLM_GGML_Q6_K) {
        const __m256i m2 = _mm256_set1_epi8(3), off = _mm256_set1_epi8(32);
        for (int64_t i = 0; i < n / CLLM_QK_K; i++, a += 210, dst += CLLM_QK_K) {
            const float d = fp16_at(a + 208);
            const int8_t *sc = (const int8_t *)(a + 192);
            for (int h = 0; h < 2; h++) {
                const __m256i ql0 = _mm256_loadu_si256((const __m256i *)(a + 64 * h));
                const __m256i ql1 = _mm256_loadu_si256((const __m256i *)(a + 64 * h + 32));
                const __m256i qh = _mm256_loadu_si256((const __m256i *)(a + 128 + 32 * h));
                for (int k = 0; k < 4; k++) {
                    const __m256i q = _mm256_sub_epi8(q6k_levels(ql0, ql1, qh, k, m4, m2), off);
                    const int g = 8 * h + 2 * k;
                    put32(q, 1, d * (float)sc[g], 0.0f, d * (float)sc[g + 1], 0.0f, dst + 128 * h + 32 * k);
                }
            }
        }
        return;
    }
    cllm_ggml_to_f32(type, src, dst, n);
}

void cllm_quant_fill_kq_avx2(cllm_quant_kernels *t) {
    t->dequant_other = avx2_dequant_other;
    t->dot_q2_K_q8_K = avx2_dot_q2_K_q8_K;
    t->dot_q3_K_q8_K = avx2_dot_q3_K_q8_K;
    t->dot_q4_1_q8_0 = avx2_dot_q4_1_q8_0;
    t->dot_q5_0_q8_0 = avx2_dot_q5_0_q8_0;
    t->dot_q5_1_q8_0 = avx2_dot_q5_1_q8_0;
    t->dot_q4_K_q8_K = avx2_dot_q4_K_q8_K;
    t->dot_q5_K_q8_K = avx2_dot_q5_K_q8_K;
    t->dot_q6_K_q8_K = avx2_dot_q6_K_q8_K;
}
