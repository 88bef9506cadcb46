/*
 * quant_avx512.c: AVX-512 (F/BW/VL/DQ, optionally VNNI) versions of the
 * cllm/quant.h primitives. Compiled with AVX-512 flags (file suffix);
 * entered only through quant.c's run-time dispatch, which fills the VNNI
 * table only when the CPU has avx512_vnni.
 *
 * Integer dots take two 32-element blocks per 512-bit register (low half
 * block i, high half block i+1) and end with per-half scales. Without VNNI:
 * vpmaddubsw + vpmaddwd as in quant_avx2.c. With VNNI: vpdpbusd (u8 x s8,
 * four products summed into each int32 lane) on |w| and sign(y, w) for
 * q8_0, and on the raw nibbles minus a second vpdpbusd of 8s for q4_0.
 * An odd last block uses the 256-bit form. f16/bf16/f32 rows are widened to
 * f32 16 at a time with masked loads for the tail.
 * Not here: threading and the reference (quant.c).
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "cllm/ggml_types.h"
#include "quant_internal.h"

#define Q8_BYTES 34
#define Q4_BYTES 18

static inline float fp16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

static inline __m512i load2(const uint8_t *lo, const uint8_t *hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)lo)),
                              _mm256_loadu_si256((const __m256i *)hi), 1);
}

static inline __m512 scales2(float lo, float hi) {
    return _mm512_insertf32x8(_mm512_set1_ps(lo), _mm256_set1_ps(hi), 1);
}

static inline __m256i q4_bytes(const uint8_t *qs) {
    const __m128i raw = _mm_loadu_si128((const __m128i *)qs);
    const __m128i lo = _mm_and_si128(raw, _mm_set1_epi8(0x0F));
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0F));
    return _mm256_set_m128i(hi, lo);
}

/* ---- integer dots, parameterised on VNNI ------------------------------- */

static inline __m512i i8dot512(__m512i u, __m512i s, int vnni) {
    if (vnni) return _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s);
    return _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1));
}

static inline __m256i i8dot256(__m256i u, __m256i s, int vnni) {
    if (vnni) return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

static inline float dot_q8_0(const void *w, const void *xq, int64_t n, int vnni) {
    const uint8_t *a = w, *b = xq;
    const int64_t nb = n / 32;
    __m512 acc = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2, a += 2 * Q8_BYTES, b += 2 * Q8_BYTES) {
        const __m512i qa = load2(a + 2, a + Q8_BYTES + 2), qb = load2(b + 2, b + Q8_BYTES + 2);
        const __m512i ua = _mm512_abs_epi8(qa);
        /* sign(y, w): negate y where w < 0 (w == 0 gives |w| = 0 anyway) */
        const __mmask64 neg = _mm512_movepi8_mask(qa);
        const __m512i sb = _mm512_mask_sub_epi8(qb, neg, _mm512_setzero_si512(), qb);
        const __m512i s = i8dot512(ua, sb, vnni);
        const __m512 d = scales2(fp16_at(a) * fp16_at(b), fp16_at(a + Q8_BYTES) * fp16_at(b + Q8_BYTES));
        acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(s), acc);
    }
    float sum = _mm512_reduce_add_ps(acc);
    if (i < nb) {
        const __m256i qa = _mm256_loadu_si256((const __m256i *)(a + 2));
        const __m256i qb = _mm256_loadu_si256((const __m256i *)(b + 2));
        const __m256i s = i8dot256(_mm256_sign_epi8(qa, qa), _mm256_sign_epi8(qb, qa), vnni);
        const __m256 f = _mm256_mul_ps(_mm256_set1_ps(fp16_at(a) * fp16_at(b)), _mm256_cvtepi32_ps(s));
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(f), _mm256_extractf128_ps(f, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        sum += _mm_cvtss_f32(h);
    }
    return sum;
}

static inline float dot_q4_0(const void *w, const void *xq, int64_t n, int vnni) {
    const uint8_t *a = w, *b = xq;
    const int64_t nb = n / 32;
    __m512 acc = _mm512_setzero_ps();
    const __m512i eight = _mm512_set1_epi8(8);
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2, a += 2 * Q4_BYTES, b += 2 * Q8_BYTES) {
        const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(q4_bytes(a + 2)), q4_bytes(a + Q4_BYTES + 2), 1);
        const __m512i y = load2(b + 2, b + Q8_BYTES + 2);
        __m512i s;
        if (vnni) {
            s = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q, y),
                                 _mm512_dpbusd_epi32(_mm512_setzero_si512(), eight, y));
        } else {
            const __m512i p = _mm512_sub_epi16(_mm512_maddubs_epi16(q, y), _mm512_maddubs_epi16(eight, y));
            s = _mm512_madd_epi16(p, _mm512_set1_epi16(1));
        }
        const __m512 d = scales2(fp16_at(a) * fp16_at(b), fp16_at(a + Q4_BYTES) * fp16_at(b + Q8_BYTES));
        acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(s), acc);
    }
    float sum = _mm512_reduce_add_ps(acc);
    if (i < nb) {
        const __m256i q = q4_bytes(a + 2);
        const __m256i y = _mm256_loadu_si256((const __m256i *)(b + 2));
        const __m256i s = _mm256_sub_epi32(i8dot256(q, y, vnni), i8dot256(_mm256_set1_epi8(8), y, vnni));
        const __m256 f = _mm256_mul_ps(_mm256_set1_ps(fp16_at(a) * fp16_at(b)), _mm256_cvtepi32_ps(s));
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(f), _mm256_extractf128_ps(f, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        sum += _mm_cvtss_f32(h);
    }
    return sum;
}

static float bw_dot_q8_0_q8_0(const void *w, const void *xq, int64_t n) { return dot_q8_0(w, xq, n, 0); }
static float vnni_dot_q8_0_q8_0(const void *w, const void *xq, int64_t n) { return dot_q8_0(w, xq, n, 1); }
static float bw_dot_q4_0_q8_0(const void *w, const void *xq, int64_t n) { return dot_q4_0(w, xq, n, 0); }
static float vnni_dot_q4_0_q8_0(const void *w, const void *xq, int64_t n) { return dot_q4_0(w, xq, n, 1); }

/* ---- activation quantizer ------------------------------------------------ */

static void avx512_quantize_q8_0(const float *x, void *y, int64_t n) {
    uint8_t *out = y;
    for (int64_t b = 0; b < n / 32; b++, x += 32, out += Q8_BYTES) {
        const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        const uint16_t h = cllm_fp32_to_fp16(d);
        memcpy(out, &h, 2);
        const __m512 vid = _mm512_set1_ps(id);
        /* round to nearest even (MXCSR default), then saturate to int8 */
        __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid));
        __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
        __m128i q0 = _mm512_cvtsepi32_epi8(i0), q1 = _mm512_cvtsepi32_epi8(i1);
        q0 = _mm_max_epi8(q0, _mm_set1_epi8(-127));
        q1 = _mm_max_epi8(q1, _mm_set1_epi8(-127));
        _mm_storeu_si128((__m128i *)(out + 2), q0);
        _mm_storeu_si128((__m128i *)(out + 18), q1);
    }
}

/* ---- float rows ----------------------------------------------------------- */

static inline __m512 load16_f16(const uint8_t *p, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}
static inline __m512 load16_bf16(const uint8_t *p, __mmask16 m) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}

#define FLOAT_DOT(fname, LOAD, esz)                                                        \
    static float fname(const void *w, const float *x, int64_t n) {                         \
        const uint8_t *a = w;                                                              \
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();                     \
        int64_t i = 0;                                                                     \
        for (; i + 32 <= n; i += 32) {                                                     \
            acc0 = _mm512_fmadd_ps(LOAD(a + (esz) * i, 0xFFFF), _mm512_loadu_ps(x + i), acc0); \
            acc1 = _mm512_fmadd_ps(LOAD(a + (esz) * (i + 16), 0xFFFF), _mm512_loadu_ps(x + i + 16), acc1); \
        }                                                                                  \
        for (; i < n; i += 16) {                                                           \
            const __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);    \
            acc0 = _mm512_fmadd_ps(LOAD(a + (esz) * i, m), _mm512_maskz_loadu_ps(m, x + i), acc0); \
        }                                                                                  \
        return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));                            \
    }

static inline __m512 load16_f32(const uint8_t *p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }

FLOAT_DOT(avx512_dot_f16_f32, load16_f16, 2)
FLOAT_DOT(avx512_dot_bf16_f32, load16_bf16, 2)
FLOAT_DOT(avx512_dot_f32_f32, load16_f32, 4)

/* ---- dequantization --------------------------------------------------------- */

static void avx512_dequant_q8_0(const void *src, float *dst, int64_t n) {
    const uint8_t *a = src;
    for (int64_t b = 0; b < n / 32; b++, a += Q8_BYTES, dst += 32) {
        const __m512 d = _mm512_set1_ps(fp16_at(a));
        const __m128i q0 = _mm_loadu_si128((const __m128i *)(a + 2));
        const __m128i q1 = _mm_loadu_si128((const __m128i *)(a + 18));
        _mm512_storeu_ps(dst, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q0))));
        _mm512_storeu_ps(dst + 16, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q1))));
    }
}

static void avx512_dequant_q4_0(const void *src, float *dst, int64_t n) {
    const uint8_t *a = src;
    for (int64_t b = 0; b < n / 32; b++, a += Q4_BYTES, dst += 32) {
        const __m512 d = _mm512_set1_ps(fp16_at(a));
        const __m128i raw = _mm_loadu_si128((const __m128i *)(a + 2));
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(raw, _mm_set1_epi8(0x0F)), _mm_set1_epi8(8));
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0F)), _mm_set1_epi8(8));
        _mm512_storeu_ps(dst, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(lo))));
        _mm512_storeu_ps(dst + 16, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(hi))));
    }
}

static void avx512_dequant_f16(const void *src, float *dst, int64_t n) {
    const uint8_t *a = src;
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, m, load16_f16(a + 2 * i, m));
    }
}

static void avx512_dequant_bf16(const void *src, float *dst, int64_t n) {
    const uint8_t *a = src;
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, m, load16_bf16(a + 2 * i, m));
    }
}

void cllm_quant_fill_avx512(cllm_quant_kernels *t, int vnni) {
    t->backend = vnni ? CLLM_QUANT_AVX512_VNNI : CLLM_QUANT_AVX512;
    t->name = vnni ? "avx512_vnni" : "avx512";
    t->quantize_q8_0 = avx512_quantize_q8_0;
    t->dot_q8_0_q8_0 = vnni ? vnni_dot_q8_0_q8_0 : bw_dot_q8_0_q8_0;
    t->dot_q4_0_q8_0 = vnni ? vnni_dot_q4_0_q8_0 : bw_dot_q4_0_q8_0;
    t->dot_f16_f32 = avx512_dot_f16_f32;
    t->dot_bf16_f32 = avx512_dot_bf16_f32;
    t->dot_f32_f32 = avx512_dot_f32_f32;
    t->dequant_q8_0 = avx512_dequant_q8_0;
    t->dequant_q4_0 = avx512_dequant_q4_0;
    t->dequant_f16 = avx512_dequant_f16;
    t->dequant_bf16 = avx512_dequant_bf16;
}
