/*
 * quant_avx2.c: AVX2 (+FMA, F16C) versions of the cllm/kernels/quant.h primitives.
 * Compiled with AVX2 flags (file suffix); entered only through quant.c's
 * run-time dispatch.
 *
 * Integer dots use the maddubs trick (llama.cpp does the same): vpmaddubsw
 * multiplies unsigned by signed bytes, so q8_0 x q8_0 takes |w| and y with
 * w's sign applied (|w|, |y| <= 127 keeps the int16 pair sums exact), and
 * q4_0 x q8_0 takes the raw nibbles (0..15) and subtracts 8 * sum(y) via a
 * second maddubs with a vector of 8s. Per block: 8 int32 lanes, converted to
 * float (exact) and accumulated with the product of the two fp16 scales.
 * Not here: threading (quant.c), the reference (quant.c).
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "cllm/formats/ggml_types.h"
#include "quant_internal.h"
#include "f16c_load.h"


static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static void avx2_quantize_q8_0(const float *x, void *y, int64_t n) {
    uint8_t *out = y;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t b = 0; b < n / 32; b++, x += 32, out += CLLM_Q8_0_BYTES) {
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        const uint16_t h = cllm_fp32_to_fp16(d);
        memcpy(out, &h, 2);
        const __m256 vid = _mm256_set1_ps(id);
        /* cvtps rounds to nearest even (MXCSR default), like nearbyintf */
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, vid));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, vid));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, vid));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, vid));
        __m256i p01 = _mm256_packs_epi32(i0, i1), p23 = _mm256_packs_epi32(i2, i3);
        __m256i p = _mm256_packs_epi16(p01, p23);
        p = _mm256_permutevar8x32_epi32(p, perm); /* undo the per-lane interleave of the packs */
        p = _mm256_max_epi8(p, _mm256_set1_epi8(-127));
        _mm256_storeu_si256((__m256i *)(out + 2), p);
    }
}

static inline __m256i dot_q8_block(__m256i qa, __m256i qb) {
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(qa, qa), _mm256_sign_epi8(qb, qa));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

static float avx2_dot_q8_0_q8_0(const void *w, const void *xq, int64_t n) {
    const uint8_t *a = w, *b = xq;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; i++, a += CLLM_Q8_0_BYTES, b += CLLM_Q8_0_BYTES) {
        __m256i s = dot_q8_block(_mm256_loadu_si256((const __m256i *)(a + 2)),
                                 _mm256_loadu_si256((const __m256i *)(b + 2)));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16_at(a) * fp16_at(b)), _mm256_cvtepi32_ps(s), acc);
    }
    return hsum256(acc);
}

/* 32 nibbles of a q4_0 block as bytes 0..15: first 16 values, then last 16. */
static inline __m256i q4_bytes(const uint8_t *qs) {
    const __m128i raw = _mm_loadu_si128((const __m128i *)qs);
    const __m128i lo = _mm_and_si128(raw, _mm_set1_epi8(0x0F));
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0F));
    return _mm256_set_m128i(hi, lo);
}

static float avx2_dot_q4_0_q8_0(const void *w, const void *xq, int64_t n) {
    const uint8_t *a = w, *b = xq;
    __m256 acc = _mm256_setzero_ps();
    const __m256i eight = _mm256_set1_epi8(8), ones = _mm256_set1_epi16(1);
    for (int64_t i = 0; i < n / 32; i++, a += CLLM_Q4_0_BYTES, b += CLLM_Q8_0_BYTES) {
        const __m256i q = q4_bytes(a + 2);
        const __m256i y = _mm256_loadu_si256((const __m256i *)(b + 2));
        /* pair sums: 15*127*2 and 8*128*2 fit int16 */
        __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q, y), _mm256_maddubs_epi16(eight, y));
        __m256i s = _mm256_madd_epi16(p, ones);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16_at(a) * fp16_at(b)), _mm256_cvtepi32_ps(s), acc);
    }
    return hsum256(acc);
}

static inline __m256 load8_bf16(const uint8_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

static float avx2_dot_f16_f32(const void *w, const float *x, int64_t n) {
    const uint8_t *a = w;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + 2 * i))),
                               _mm256_loadu_ps(x + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + 2 * i + 16))),
                               _mm256_loadu_ps(x + i + 8), acc1);
    }
    float sum = hsum256(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) sum += fp16_at(a + 2 * i) * x[i];
    return sum;
}

static float avx2_dot_bf16_f32(const void *w, const float *x, int64_t n) {
    const uint8_t *a = w;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(load8_bf16(a + 2 * i), _mm256_loadu_ps(x + i), acc0);
        acc1 = _mm256_fmadd_ps(load8_bf16(a + 2 * i + 16), _mm256_loadu_ps(x + i + 8), acc1);
    }
    float sum = hsum256(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, a + 2 * i, 2);
        sum += cllm_bf16_to_fp32(h) * x[i];
    }
    return sum;
}

static float avx2_dot_f32_f32(const void *w, const float *x, int64_t n) {
    const uint8_t *a = w;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps((const float *)(const void *)(a + 4 * i)), _mm256_loadu_ps(x + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps((const float *)(const void *)(a + 4 * i + 32)),
                               _mm256_loadu_ps(x + i + 8), acc1);
    }
    float sum = hsum256(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) {
        float v;
        memcpy(&v, a + 4 * i, 4);
        sum += v * x[i];
    }
    return sum;
}

static void avx2_dequant_q8_0(const void *src, float *dst, int64_t n) {
    const uint8_t *a = src;
    for (int64_t b = 0; b < n / 32; b++, a += CLLM_Q8_0_BYTES, dst += 32) {
        const __m256 d = _mm256_set1_ps(fp16_at(a));
        for (int j = 0; j < 32; j += 8) {
            __m128i q = _mm_loadl_epi64((const __m128i *)(a + 2 + j));
            _mm256_storeu_ps(dst + j, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q))));
        }
    }
}

static void avx2_dequant_q4_0(const void *src, float *dst, int64_t n) {
    const uint8_t *a = src;
    for (int64_t b = 0; b < n / 32; b++, a += CLLM_Q4_0_BYTES, dst += 32) {
        const __m256 d = _mm256_set1_ps(fp16_at(a));
        const __m256i q = _mm256_sub_epi8(q4_bytes(a + 2), _mm256_set1_epi8(8));
        const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
        _mm256_storeu_ps(dst, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo))));
        _mm256_storeu_ps(dst + 8, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)))));
        _mm256_storeu_ps(dst + 16, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi))));
        _mm256_storeu_ps(dst + 24, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)))));
    }
}

static void avx2_dequant_f16(const void *src, float *dst, int64_t n) {
    const uint8_t *a = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + 2 * i))));
    for (; i < n; i++) dst[i] = fp16_at(a + 2 * i);
}

static void avx2_round_f16(const float *x, uint16_t *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(void *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = cllm_fp32_to_fp16(x[i]);
}

static void avx2_dequant_bf16(const void *src, float *dst, int64_t n) {
    const uint8_t *a = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load8_bf16(a + 2 * i));
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, a + 2 * i, 2);
        dst[i] = cllm_bf16_to_fp32(h);
    }
}

/* Batched product as a loop of row dots (rows inner, so one activation row
 * stays in L1 while the weight rows stream). */
static void avx2_gemm_q8(uint32_t type, const void *W, size_t row_bytes, int rows, const void *xq,
                         size_t xq_stride, int n, int64_t K, float *out, size_t ld_out) {
    float (*dot)(const void *, const void *, int64_t) =
        type == CLLM_GGML_Q4_0 ? avx2_dot_q4_0_q8_0 : avx2_dot_q8_0_q8_0;
    for (int t = 0; t < n; t++)
        for (int r = 0; r < rows; r++)
            out[(size_t)t * ld_out + (size_t)r] =
                dot((const uint8_t *)W + (size_t)r * row_bytes, (const uint8_t *)xq + (size_t)t * xq_stride, K);
}

void cllm_quant_fill_avx2(cllm_quant_kernels *t) {
    cllm_quant_fill_reference(t); /* entries without an AVX2 version */
    cllm_quant_fill_kq_avx2(t);
    t->backend = CLLM_QUANT_AVX2;
    t->name = "avx2";
    t->quantize_q8_0 = avx2_quantize_q8_0;
    t->dot_q8_0_q8_0 = avx2_dot_q8_0_q8_0;
    t->dot_q4_0_q8_0 = avx2_dot_q4_0_q8_0;
    t->dot_f16_f32 = avx2_dot_f16_f32;
    t->dot_bf16_f32 = avx2_dot_bf16_f32;
    t->dot_f32_f32 = avx2_dot_f32_f32;
    t->dequant_q8_0 = avx2_dequant_q8_0;
    t->dequant_q4_0 = avx2_dequant_q4_0;
    t->dequant_f16 = avx2_dequant_f16;
    t->dequant_bf16 = avx2_dequant_bf16;
    t->round_f16 = avx2_round_f16;
    t->gemm_q8 = avx2_gemm_q8;
}
