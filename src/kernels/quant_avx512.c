/*
 * quant_avx512.c: AVX-512 (F/BW/VL/DQ, optionally VNNI) versions of the
 * cllm/kernels/quant.h primitives. Compiled with AVX-512 flags (file suffix);
 * entered only through quant.c's run-time dispatch, which fills the VNNI
 * table only when the CPU has avx512_vnni.
 *
 * Integer dots take two 32-element blocks per 512-bit register (low half
 * block i, high half block i+1) and end with per-half scales. Without VNNI:
 * vpmaddubsw + vpmaddwd as in quant_avx2.c. With VNNI: vpdpbusd (u8 x s8,
 * four products summed into each int32 lane) on |w| and sign(y, w) for
 * q8_0, and on the raw nibbles minus a second vpdpbusd of 8s for q4_0.
 * An odd last block uses the 256-bit form. f16/bf16/f32 rows are widened to
 * f32 16 at a time with masked loads for the tail. The batched product
 * (gemm_q8) is a 4-row x 4-token VNNI tile kernel (see the comment at
 * vnni_tile); without VNNI it is a loop of the row dots.
 * Not here: threading and the reference (quant.c).
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "cllm/formats/ggml_types.h"
#include "quant_internal.h"
#include "f16c_load.h"


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
    for (; i + 2 <= nb; i += 2, a += 2 * CLLM_Q8_0_BYTES, b += 2 * CLLM_Q8_0_BYTES) {
        const __m512i qa = load2(a + 2, a + CLLM_Q8_0_BYTES + 2), qb = load2(b + 2, b + CLLM_Q8_0_BYTES + 2);
        const __m512i ua = _mm512_abs_epi8(qa);
        /* sign(y, w): negate y where w < 0 (w == 0 gives |w| = 0 anyway) */
        const __mmask64 neg = _mm512_movepi8_mask(qa);
        const __m512i sb = _mm512_mask_sub_epi8(qb, neg, _mm512_setzero_si512(), qb);
        const __m512i s = i8dot512(ua, sb, vnni);
        const __m512 d = scales2(fp16_at(a) * fp16_at(b), fp16_at(a + CLLM_Q8_0_BYTES) * fp16_at(b + CLLM_Q8_0_BYTES));
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
    for (; i + 2 <= nb; i += 2, a += 2 * CLLM_Q4_0_BYTES, b += 2 * CLLM_Q8_0_BYTES) {
        const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(q4_bytes(a + 2)), q4_bytes(a + CLLM_Q4_0_BYTES + 2), 1);
        const __m512i y = load2(b + 2, b + CLLM_Q8_0_BYTES + 2);
        __m512i s;
        if (vnni) {
            s = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q, y),
                                 _mm512_dpbusd_epi32(_mm512_setzero_si512(), eight, y));
        } else {
            const __m512i p = _mm512_sub_epi16(_mm512_maddubs_epi16(q, y), _mm512_maddubs_epi16(eight, y));
            s = _mm512_madd_epi16(p, _mm512_set1_epi16(1));
        }
        const __m512 d = scales2(fp16_at(a) * fp16_at(b), fp16_at(a + CLLM_Q4_0_BYTES) * fp16_at(b + CLLM_Q8_0_BYTES));
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
    for (int64_t b = 0; b < n / 32; b++, x += 32, out += CLLM_Q8_0_BYTES) {
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
    for (int64_t b = 0; b < n / 32; b++, a += CLLM_Q8_0_BYTES, dst += 32) {
        const __m512 d = _mm512_set1_ps(fp16_at(a));
        const __m128i q0 = _mm_loadu_si128((const __m128i *)(a + 2));
        const __m128i q1 = _mm_loadu_si128((const __m128i *)(a + 18));
        _mm512_storeu_ps(dst, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q0))));
        _mm512_storeu_ps(dst + 16, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q1))));
    }
}

static void avx512_dequant_q4_0(const void *src, float *dst, int64_t n) {
    const uint8_t *a = src;
    for (int64_t b = 0; b < n / 32; b++, a += CLLM_Q4_0_BYTES, dst += 32) {
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

static void avx512_round_f16(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        _mm256_mask_storeu_epi16(y + i, m, _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT));
    }
}

static void avx512_dequant_bf16(const void *src, float *dst, int64_t n) {
    const uint8_t *a = src;
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, m, load16_bf16(a + 2 * i, m));
    }
}

/* ---- batched integer product ------------------------------------------------ */

/* Without VNNI: a loop of row dots (rows inner: one activation row stays in L1). */
static void bw_gemm_q8(uint32_t type, const void *W, size_t row_bytes, int rows, const void *xq, size_t xq_stride,
                       int n, int64_t K, float *out, size_t ld_out) {
    for (int t = 0; t < n; t++)
        for (int r = 0; r < rows; r++) {
            const uint8_t *w = (const uint8_t *)W + (size_t)r * row_bytes;
            const uint8_t *x = (const uint8_t *)xq + (size_t)t * xq_stride;
            out[(size_t)t * ld_out + (size_t)r] = type == CLLM_GGML_Q4_0 ? dot_q4_0(w, x, K, 0) : dot_q8_0(w, x, K, 0);
        }
}

/*
 * VNNI tile: TILE_R weight rows x TILE_T activation rows, one float
 * accumulator register per pair, two blocks per register (low half block i,
 * high half block i+1), so each weight load serves TILE_T tokens and each
 * activation load TILE_R rows. vpdpbusd wants unsigned x signed bytes, so the
 * weights become the unsigned side: q8_0 as w + 128 (flip the sign bit),
 * q4_0 as its raw nibbles q = w + 8; the offset comes back out through the
 * accumulator's start value, -c * (sum of each 4 activation bytes) with
 * c = 128 or 8. Integer block sums stay exact (|lane| <= 4 * 255 * 127).
 * The odd last block runs with a zero upper half (zero weights and
 * activations add nothing).
 *
 * Per block pair and token, the activation scales (as a 16-lane vector) and
 * the start values depend only on the token, so they are computed once per
 * block of VNNI_TOK_BLOCK tokens into a stack panel (vnni_pack) and loaded
 * by every row tile. Tokens go in blocks (outer), rows inner: the thread's
 * weight rows are re-read once per token block, from cache.
 */
#define TILE_R 4
#define TILE_T 4
#define VNNI_TOK_BLOCK 16
#define VNNI_PREFETCH_TILES 2
#define VNNI_PANEL_BYTES (96 * 1024) /* stack panel: 2 x 64 bytes per block pair and token */

typedef struct {
    __m512 acc[TILE_R][TILE_T];
} vnni_acc;

static inline __attribute__((always_inline)) __m512i wpair(const uint8_t *a, size_t bb, int q4, int two) {
    if (q4) {
        const __m128i lo = _mm_loadu_si128((const __m128i *)(a + 2));
        const __m128i hi = two ? _mm_loadu_si128((const __m128i *)(a + bb + 2)) : _mm_setzero_si128();
        const __m512i r = _mm512_castsi256_si512(_mm256_set_m128i(hi, lo));
        /* 128-bit lanes [qs_i, qs_i, qs_i+1, qs_i+1]; low nibbles from lanes 0, 2, high from 1, 3 */
        const __m512i z = _mm512_shuffle_i64x2(r, r, 0x50);
        const __m512i sh = _mm512_set_epi64(0x0004000400040004LL, 0x0004000400040004LL, 0, 0,
                                            0x0004000400040004LL, 0x0004000400040004LL, 0, 0);
        return _mm512_and_si512(_mm512_srlv_epi16(z, sh), _mm512_set1_epi8(0x0F));
    }
    const __m256i f = _mm256_set1_epi8((char)0x80);
    const __m256i lo = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(a + 2)), f);
    if (!two) return _mm512_zextsi256_si512(lo);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo),
                              _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(a + bb + 2)), f), 1);
}

/* [d_i x 8, d_i+1 x 8] from the two fp16 scales bb bytes apart (d_i+1 = 0 when !two). */
static inline __attribute__((always_inline)) __m512 spair(const uint8_t *a, size_t bb, int two) {
    uint16_t lo, hi = 0;
    memcpy(&lo, a, 2);
    if (two) memcpy(&hi, a + bb, 2);
    const __m128 d2 = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)lo | (uint32_t)hi << 16)));
    const __m512i idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(d2));
}

static inline __attribute__((always_inline)) __m512i ypair(const uint8_t *b, int two) {
    if (!two) return _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)(b + 2)));
    return load2(b + 2, b + CLLM_Q8_0_BYTES + 2);
}

/* Per token t < nt and block pair p < np: dy[t * np + p] the scales,
 * corr[t * np + p] the accumulator start values for weight offset c. */
static void vnni_pack(const uint8_t *x, size_t xs, int nt, int64_t nb, int q4, __m512 *dy, __m512i *corr) {
    const int64_t np = (nb + 1) / 2;
    const __m512i cvec = _mm512_set1_epi8(q4 ? 8 : (char)0x80);
    for (int t = 0; t < nt; t++) {
        const uint8_t *b = x + (size_t)t * xs;
        for (int64_t p = 0; p < np; p++, b += 2 * CLLM_Q8_0_BYTES) {
            const int two = 2 * p + 1 < nb;
            dy[t * np + p] = spair(b, CLLM_Q8_0_BYTES, two);
            corr[t * np + p] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                                _mm512_dpbusd_epi32(_mm512_setzero_si512(), cvec, ypair(b, two)));
        }
    }
}

static inline __attribute__((always_inline)) void vnni_step(vnni_acc *A, const uint8_t *W, size_t rb,
                                                            const uint8_t *X, size_t xs, const __m512 *dy,
                                                            const __m512i *corr, int64_t np, int q4, int R, int T,
                                                            int two) {
    const size_t bb = q4 ? CLLM_Q4_0_BYTES : CLLM_Q8_0_BYTES;
    __m512i w[TILE_R];
    __m512 dw[TILE_R];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        w[r] = wpair(W + (size_t)r * rb, bb, q4, two);
        dw[r] = spair(W + (size_t)r * rb, bb, two);
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) {
        const __m512i y = ypair(X + (size_t)t * xs, two);
        const __m512 d = dy[t * np];
        const __m512i c = corr[t * np];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const __m512i s = _mm512_dpbusd_epi32(c, w[r], y);
            A->acc[r][t] = _mm512_fmadd_ps(_mm512_mul_ps(dw[r], d), _mm512_cvtepi32_ps(s), A->acc[r][t]);
        }
    }
}

static inline __attribute__((always_inline)) void vnni_tile(const uint8_t *W, size_t rb, const uint8_t *X,
                                                            size_t xs, const __m512 *dy, const __m512i *corr,
                                                            int64_t nb, float *out, size_t ldo, int q4, int R,
                                                            int T) {
    const size_t bb = q4 ? CLLM_Q4_0_BYTES : CLLM_Q8_0_BYTES;
    const int64_t np = (nb + 1) / 2;
    vnni_acc A;
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) A.acc[r][t] = _mm512_setzero_ps();
    /* The tile reads R short row streams at once, a pattern the hardware
     * prefetcher follows poorly (decode streams every row from DRAM): fetch
     * the tile VNNI_PREFETCH_TILES ahead (rows are contiguous) as one
     * sequential stream, its lines spread evenly over this tile's steps. */
    const char *pf = (const char *)W + (size_t)VNNI_PREFETCH_TILES * TILE_R * rb;
    const int64_t lines = (int64_t)(R * rb + 63) / 64;
    int64_t p = 0, l = 0;
    for (; 2 * p + 2 <= nb; p++) {
        for (const int64_t l1 = lines * (p + 1) / np; l < l1; l++) _mm_prefetch(pf + 64 * l, _MM_HINT_T0);
        vnni_step(&A, W + 2 * p * bb, rb, X + 2 * p * CLLM_Q8_0_BYTES, xs, dy + p, corr + p, np, q4, R, T, 1);
    }
    if (2 * p < nb) vnni_step(&A, W + 2 * p * bb, rb, X + 2 * p * CLLM_Q8_0_BYTES, xs, dy + p, corr + p, np, q4, R, T, 0);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) out[(size_t)t * ldo + (size_t)r] = _mm512_reduce_add_ps(A.acc[r][t]);
}

/* One instantiation per weight type and tile shape: full tiles, and the
 * ragged edges one row or one token wide. */
#define VNNI_TILE_FN(name, q4, R, T)                                                                              \
    static void name(const uint8_t *W, size_t rb, const uint8_t *X, size_t xs, const __m512 *dy, const __m512i *c, \
                     int64_t nb, float *out, size_t ldo) {                                                         \
        vnni_tile(W, rb, X, xs, dy, c, nb, out, ldo, q4, R, T);                                                    \
    }
VNNI_TILE_FN(q8_tile_4x4, 0, 4, 4)
VNNI_TILE_FN(q8_tile_4x1, 0, 4, 1)
VNNI_TILE_FN(q8_tile_1x4, 0, 1, 4)
VNNI_TILE_FN(q8_tile_1x1, 0, 1, 1)
VNNI_TILE_FN(q4_tile_4x4, 1, 4, 4)
VNNI_TILE_FN(q4_tile_4x1, 1, 4, 1)
VNNI_TILE_FN(q4_tile_1x4, 1, 1, 4)
VNNI_TILE_FN(q4_tile_1x1, 1, 1, 1)

typedef void (*vnni_tile_fn)(const uint8_t *, size_t, const uint8_t *, size_t, const __m512 *, const __m512i *,
                             int64_t, float *, size_t);

static void vnni_gemm_q8(uint32_t type, const void *W, size_t row_bytes, int rows, const void *xq, size_t xq_stride,
                         int n, int64_t K, float *out, size_t ld_out) {
    const int q4 = type == CLLM_GGML_Q4_0;
    const int64_t nb = K / 32, np = (nb + 1) / 2;
    /* tokens per panel: as many as fit, at most VNNI_TOK_BLOCK, a multiple of TILE_T */
    int tb = (int)(VNNI_PANEL_BYTES / (2 * sizeof(__m512) * (size_t)(np ? np : 1)));
    tb = tb > VNNI_TOK_BLOCK ? VNNI_TOK_BLOCK : tb / TILE_T * TILE_T;
    if (tb < TILE_T) { /* rows longer than the panel allows (K > 12288): row dots */
        bw_gemm_q8(type, W, row_bytes, rows, xq, xq_stride, n, K, out, ld_out);
        return;
    }
    _Alignas(64) uint8_t panel[VNNI_PANEL_BYTES];
    __m512 *dy = (__m512 *)(void *)panel;
    __m512i *corr = (__m512i *)(void *)(panel + (size_t)tb * (size_t)np * sizeof(__m512));
    const vnni_tile_fn f44 = q4 ? q4_tile_4x4 : q8_tile_4x4, f41 = q4 ? q4_tile_4x1 : q8_tile_4x1;
    const vnni_tile_fn f14 = q4 ? q4_tile_1x4 : q8_tile_1x4, f11 = q4 ? q4_tile_1x1 : q8_tile_1x1;
    const uint8_t *w = W, *x = xq;
    for (int t0 = 0; t0 < n; t0 += tb) {
        const int nt = n - t0 < tb ? n - t0 : tb;
        const uint8_t *xb = x + (size_t)t0 * xq_stride;
        vnni_pack(xb, xq_stride, nt, nb, q4, dy, corr);
        for (int r = 0; r < rows; r += TILE_R) {
            const uint8_t *wr = w + (size_t)r * row_bytes;
            const int nr = rows - r < TILE_R ? rows - r : TILE_R;
            for (int t = 0; t < nt; t += TILE_T) {
                const int full_t = nt - t >= TILE_T;
                const uint8_t *xt = xb + (size_t)t * xq_stride;
                const int64_t po = (int64_t)t * np;
                float *o = out + (size_t)(t0 + t) * ld_out + (size_t)r;
                if (nr == TILE_R && full_t) {
                    f44(wr, row_bytes, xt, xq_stride, dy + po, corr + po, nb, o, ld_out);
                } else if (nr == TILE_R) {
                    for (int tt = t; tt < nt; tt++)
                        f41(wr, row_bytes, xb + (size_t)tt * xq_stride, xq_stride, dy + tt * np, corr + tt * np, nb,
                            out + (size_t)(t0 + tt) * ld_out + (size_t)r, ld_out);
                } else {
                    for (int rr = 0; rr < nr; rr++) {
                        if (full_t)
                            f14(wr + (size_t)rr * row_bytes, row_bytes, xt, xq_stride, dy + po, corr + po, nb, o + rr,
                                ld_out);
                        else
                            for (int tt = t; tt < nt; tt++)
                                f11(wr + (size_t)rr * row_bytes, row_bytes, xb + (size_t)tt * xq_stride, xq_stride,
                                    dy + tt * np, corr + tt * np, nb, out + (size_t)(t0 + tt) * ld_out + (size_t)r + rr,
                                    ld_out);
                    }
                }
                if (!full_t) break;
            }
        }
    }
}

/* ---- the x16 layout (quant.h): 16 rows per register ---------------------- */

#define X16_T 8 /* tokens per panel: 8 float accumulators + 8 weight registers */

/* The 8 weight vectors of one block of a group: w[v] lane j = row j's
 * values 4v..4v+3, unsigned (q8_0: stored +128; q4_0: nibbles 0..15). */
static inline __attribute__((always_inline)) void x16_weights(const uint8_t *q, int q4, __m512i w[8]) {
    if (q4) {
        const __m512i m = _mm512_set1_epi8(0x0F);
#pragma GCC unroll 4
        for (int h = 0; h < 4; h++) {
            const __m512i v = _mm512_load_si512((const void *)(q + 64 * h));
            w[h] = _mm512_and_si512(v, m);
            w[h + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m);
        }
    } else {
#pragma GCC unroll 8
        for (int v = 0; v < 8; v++) w[v] = _mm512_load_si512((const void *)(q + 64 * v));
    }
}

/* out[t * ldo + 0..15] for T tokens and one group of 16 rows: per block, the
 * 8 weight vectors are loaded (q4_0: 4 loads split into nibbles) once and
 * reused by every token; each token's block is 8 vpdpbusd on broadcast
 * groups of 4 activation bytes, started at the correction, then one
 * convert, scale and accumulate. */
static inline __attribute__((always_inline)) void x16_panel(const uint8_t *P, int64_t nb, int q4, const uint8_t *X,
                                                            size_t xs, const float *dy, const int32_t *corr, int T,
                                                            float *out, size_t ldo) {
    const size_t qb = q4 ? 256 : 512;
    const uint8_t *S = P;
    P += ((size_t)nb * 32 + 63) / 64 * 64; /* the quants follow the scales */
    __m512 f[X16_T];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) f[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m512i w[8];
        x16_weights(P + (size_t)b * qb, q4, w);
        const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)(S + 32 * b)));
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            const uint8_t *y = X + (size_t)t * xs + (size_t)b * CLLM_Q8_0_BYTES + 2;
            __m512i acc = _mm512_set1_epi32(corr[(size_t)t * nb + b]);
#pragma GCC unroll 8
            for (int v = 0; v < 8; v++) {
                int32_t y4;
                memcpy(&y4, y + 4 * v, 4);
                acc = _mm512_dpbusd_epi32(acc, w[v], _mm512_set1_epi32(y4));
            }
            f[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(dw, _mm512_set1_ps(dy[(size_t)t * nb + b])),
                                   f[t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) _mm512_storeu_ps(out + (size_t)t * ldo, f[t]);
}

/* One block of one group for one token: 16 int32 sums, two accumulators
 * (four vpdpbusd deep each) so that the chains overlap. */
static inline __attribute__((always_inline)) __m512i x16_block_sum(const uint8_t *q, int q4, const uint8_t *y,
                                                                   int32_t corr) {
    __m512i w[8];
    x16_weights(q, q4, w);
    __m512i a = _mm512_set1_epi32(corr), b = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int v = 0; v < 4; v++) {
        int32_t ya, yb;
        memcpy(&ya, y + 4 * v, 4);
        memcpy(&yb, y + 16 + 4 * v, 4);
        a = _mm512_dpbusd_epi32(a, w[v], _mm512_set1_epi32(ya));
        b = _mm512_dpbusd_epi32(b, w[v + 4], _mm512_set1_epi32(yb));
    }
    return _mm512_add_epi32(a, b);
}

/* One token (decode): X16_VEC_G groups (gs bytes apart) at once, each block
 * of each group prefetched into L2 X16_VEC_G groups ahead (the same offset
 * in the group that follows this pass), scales included. Without the
 * prefetch the kernel ran at about half the read bandwidth: its compute
 * (~35 GB/s from L2 on one core) and the DRAM reads did not overlap; with
 * it one core streams ~30 GB/s of q4_0 (a pure read loop: 35). The L1 hint
 * was slower: it holds the L1 miss buffers. */
#define X16_VEC_G 4

static inline __attribute__((always_inline)) void x16_vecn(const uint8_t *P, size_t gs, int64_t nb, int q4,
                                                           const uint8_t *X, const float *dy, const int32_t *corr,
                                                           float *out, int G) {
    /* the last pass prefetches past the matrix: harmless (prefetches do not fault), and it is the next
     * matrix's start in the arena */
    const size_t qb = q4 ? 256 : 512, sb = ((size_t)nb * 32 + 63) / 64 * 64, ahead = (size_t)X16_VEC_G * gs;
    __m512 f[X16_VEC_G];
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) f[g] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *y = X + (size_t)b * CLLM_Q8_0_BYTES + 2;
        const __m512 dyb = _mm512_set1_ps(dy[b]);
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
            const uint8_t *Pg = P + (size_t)g * gs, *q = Pg + sb + (size_t)b * qb;
            if ((b & 1) == 0) _mm_prefetch((const char *)Pg + ahead + 32 * b, _MM_HINT_T1);
#pragma GCC unroll 8
            for (size_t l = 0; l < qb; l += 64) _mm_prefetch((const char *)q + ahead + l, _MM_HINT_T1);
            const __m512i sum = x16_block_sum(q, q4, y, corr[b]);
            const __m512 d = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)(Pg + 32 * b)));
            f[g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(d, dyb), f[g]);
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) _mm512_storeu_ps(out + 16 * g, f[g]);
}

#define X16_VEC_FN(name, q4, G)                                                                                    \
    static void name(const uint8_t *P, size_t gs, int64_t nb, const uint8_t *X, const float *dy,                    \
                     const int32_t *corr, float *out) {                                                             \
        x16_vecn(P, gs, nb, q4, X, dy, corr, out, G);                                                               \
    }
X16_VEC_FN(x16_vec_q8_g4, 0, X16_VEC_G)
X16_VEC_FN(x16_vec_q8_g1, 0, 1)
X16_VEC_FN(x16_vec_q4_g4, 1, X16_VEC_G)
X16_VEC_FN(x16_vec_q4_g1, 1, 1)

#define X16_PANEL_FN(name, q4, T)                                                                                  \
    static void name(const uint8_t *P, int64_t nb, const uint8_t *X, size_t xs, const float *dy,                    \
                     const int32_t *corr, float *out, size_t ldo) {                                                 \
        x16_panel(P, nb, q4, X, xs, dy, corr, T, out, ldo);                                                         \
    }
X16_PANEL_FN(x16_q8_t8, 0, 8)
X16_PANEL_FN(x16_q8_t4, 0, 4)
X16_PANEL_FN(x16_q8_t2, 0, 2)
X16_PANEL_FN(x16_q8_t1, 0, 1)
X16_PANEL_FN(x16_q4_t8, 1, 8)
X16_PANEL_FN(x16_q4_t4, 1, 4)
X16_PANEL_FN(x16_q4_t2, 1, 2)
X16_PANEL_FN(x16_q4_t1, 1, 1)

typedef void (*x16_panel_fn)(const uint8_t *, int64_t, const uint8_t *, size_t, const float *, const int32_t *,
                             float *, size_t);

/* Tokens in blocks of X16_TOK_BLOCK (their activations stay in L1/L2 while
 * every group of the chunk passes over them), panels of 8, 4, 2, 1. */
#define X16_TOK_BLOCK 64

/* One product's panels: panel(job, Pg, g, t, T) computes tokens t..t+T-1
 * of group g (at Pg), T in {8, 4, 2, 1} (index 0..3 of its table). */
typedef struct x16_job x16_job;
typedef void (*x16_panel_call)(const x16_job *job, const uint8_t *Pg, int g, int t, int ti);

static void x16_for_panels(const x16_job *job, x16_panel_call panel, const uint8_t *P, size_t gs, int groups, int n) {
    for (int t0 = 0; t0 < n; t0 += X16_TOK_BLOCK) {
        const int t1 = n - t0 < X16_TOK_BLOCK ? n : t0 + X16_TOK_BLOCK;
        for (int g = 0; g < groups; g++)
            for (int t = t0; t < t1;) {
                const int left = t1 - t, ti = left >= 8 ? 0 : left >= 4 ? 1 : left >= 2 ? 2 : 3;
                panel(job, P + (size_t)g * gs, g, t, ti);
                t += 8 >> ti;
            }
    }
}

struct x16_job { /* the arguments every panel of one product shares */
    int64_t nb, K;
    const uint8_t *xq;
    size_t xq_stride, ld_out;
    const float *dy;
    const int32_t *corr;
    const uint16_t *xb;
    float *out;
    const x16_panel_fn *fn;
};

static void x16_q8_panel(const x16_job *j, const uint8_t *Pg, int g, int t, int ti) {
    j->fn[ti](Pg, j->nb, j->xq + (size_t)t * j->xq_stride, j->xq_stride, j->dy + (size_t)t * j->nb,
              j->corr + (size_t)t * j->nb, j->out + (size_t)t * j->ld_out + (size_t)g * 16, j->ld_out);
}

void cllm_quant_gemm_x16_vnni_avx512(uint32_t type, const void *P, int groups, int64_t K, const void *xq,
                                     size_t xq_stride, const float *dy, const int32_t *corr, int n, float *out,
                                     size_t ld_out) {
    const int q4 = type == CLLM_GGML_Q4_0;
    const int64_t nb = K / 32;
    const size_t gs = ((size_t)nb * 32 + 63) / 64 * 64 + (size_t)nb * (q4 ? 256 : 512);
    const x16_panel_fn fn[4] = {q4 ? x16_q4_t8 : x16_q8_t8, q4 ? x16_q4_t4 : x16_q8_t4, q4 ? x16_q4_t2 : x16_q8_t2,
                                q4 ? x16_q4_t1 : x16_q8_t1};
    if (n == 1) { /* decode */
        int g = 0;
        for (; g + X16_VEC_G <= groups; g += X16_VEC_G)
            (q4 ? x16_vec_q4_g4 : x16_vec_q8_g4)((const uint8_t *)P + (size_t)g * gs, gs, nb, xq, dy, corr,
                                                 out + (size_t)g * 16);
        for (; g < groups; g++)
            (q4 ? x16_vec_q4_g1 : x16_vec_q8_g1)((const uint8_t *)P + (size_t)g * gs, gs, nb, xq, dy, corr,
                                                 out + (size_t)g * 16);
        return;
    }
    const x16_job job = {nb, K, xq, xq_stride, ld_out, dy, corr, NULL, out, fn};
    x16_for_panels(&job, x16_q8_panel, P, gs, groups, n);
}

/* ---- bf16 in the x16 layout: vdpbf16ps, 16 rows x 2 values per instruction ---- */

/* out[t * ldo + 0..15] for T tokens of one group: per pair p, one weight
 * vector reused by every token against its broadcast activation pair. One
 * token (decode) keeps four accumulators so the vdpbf16ps chains overlap,
 * and prefetches the next group into L2 (the group is one 32*K-byte
 * stream; as for q8_0/q4_0, without it compute and DRAM reads did not
 * overlap). */
static inline __attribute__((always_inline)) void x16_bf16_panel(const uint8_t *P, int64_t K, const uint16_t *X,
                                                                 int64_t xs, float *out, size_t ldo, int T) {
    const int A = T == 1 ? 4 : 1;
    const size_t gs = (size_t)K / 2 * 64;
    __m512 f[X16_T][4];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++)
#pragma GCC unroll 4
        for (int a = 0; a < A; a++) f[t][a] = _mm512_setzero_ps();
    for (int64_t p = 0; p < K / 2; p += A) {
#pragma GCC unroll 4
        for (int a = 0; a < A; a++) {
            const uint8_t *w = P + 64 * (size_t)(p + a);
            if (T == 1) _mm_prefetch((const char *)w + gs, _MM_HINT_T1);
            const __m512bh wv = (__m512bh)_mm512_load_si512((const void *)w);
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                int32_t pair;
                memcpy(&pair, X + (size_t)t * (size_t)xs + 2 * (size_t)(p + a), 4);
                f[t][a] = _mm512_dpbf16_ps(f[t][a], wv, (__m512bh)_mm512_set1_epi32(pair));
            }
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
        __m512 s = f[t][0];
#pragma GCC unroll 4
        for (int a = 1; a < A; a++) s = _mm512_add_ps(s, f[t][a]);
        _mm512_storeu_ps(out + (size_t)t * ldo, s);
    }
}

/* One token, four groups (gs bytes apart) at once: four memory streams,
 * each pair vector prefetched into L2 one group ahead, two accumulators
 * per group (one stream ran ~15% below the file layout's row dots; a bf16
 * group is 32 x K bytes, 24 KiB at K = 768, and prefetching four groups
 * ahead as the q8_0/q4_0 kernel does was ~8% slower than one). */
static void x16_bf16_vec4(const uint8_t *P, int64_t K, const uint16_t *X, float *out) {
    const size_t gs = (size_t)K / 2 * 64, ahead = gs;
    __m512 f[4][2];
    for (int g = 0; g < 4; g++) f[g][0] = f[g][1] = _mm512_setzero_ps();
    for (int64_t p = 0; p < K / 2; p += 2) {
        int32_t x0, x1;
        memcpy(&x0, X + 2 * p, 4);
        memcpy(&x1, X + 2 * p + 2, 4);
        const __m512bh b0 = (__m512bh)_mm512_set1_epi32(x0), b1 = (__m512bh)_mm512_set1_epi32(x1);
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++) {
            const uint8_t *w = P + (size_t)g * gs + 64 * (size_t)p;
            _mm_prefetch((const char *)w + ahead, _MM_HINT_T1);
            _mm_prefetch((const char *)w + ahead + 64, _MM_HINT_T1);
            f[g][0] = _mm512_dpbf16_ps(f[g][0], (__m512bh)_mm512_load_si512((const void *)w), b0);
            f[g][1] = _mm512_dpbf16_ps(f[g][1], (__m512bh)_mm512_load_si512((const void *)(w + 64)), b1);
        }
    }
    for (int g = 0; g < 4; g++) _mm512_storeu_ps(out + 16 * g, _mm512_add_ps(f[g][0], f[g][1]));
}

#define X16_BF16_FN(name, T)                                                                                       \
    static void name(const uint8_t *P, int64_t K, const uint16_t *X, int64_t xs, float *out, size_t ldo) {          \
        x16_bf16_panel(P, K, X, xs, out, ldo, T);                                                                   \
    }
X16_BF16_FN(x16_bf16_t8, 8)
X16_BF16_FN(x16_bf16_t4, 4)
X16_BF16_FN(x16_bf16_t2, 2)
X16_BF16_FN(x16_bf16_t1, 1)

static void x16_bf16_panel_call(const x16_job *j, const uint8_t *Pg, int g, int t, int ti) {
    static void (*const fn[4])(const uint8_t *, int64_t, const uint16_t *, int64_t, float *, size_t) = {
        x16_bf16_t8, x16_bf16_t4, x16_bf16_t2, x16_bf16_t1};
    fn[ti](Pg, j->K, j->xb + (size_t)t * (size_t)j->K, j->K, j->out + (size_t)t * j->ld_out + (size_t)g * 16,
           j->ld_out);
}

void cllm_quant_round_bf16_avx512(const float *x, uint16_t *y, int64_t n) {
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        _mm512_storeu_si512((void *)(y + i),
                            (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i)));
    for (; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        _mm256_mask_storeu_epi16(y + i, m, (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

void cllm_quant_gemm_x16_bf16_avx512(const void *P, int groups, int64_t K, const uint16_t *xb, int n, float *out,
                                     size_t ld_out) {
    const size_t gs = (size_t)K / 2 * 64;
    if (n == 1) { /* decode */
        int g = 0;
        for (; g + 4 <= groups; g += 4) x16_bf16_vec4((const uint8_t *)P + (size_t)g * gs, K, xb, out + (size_t)g * 16);
        for (; g < groups; g++) x16_bf16_t1((const uint8_t *)P + (size_t)g * gs, K, xb, K, out + (size_t)g * 16, ld_out);
        return;
    }
    const x16_job job = {0, K, NULL, 0, ld_out, NULL, NULL, xb, out, NULL};
    x16_for_panels(&job, x16_bf16_panel_call, P, gs, groups, n);
}

void cllm_quant_fill_avx512(cllm_quant_kernels *t, int vnni) {
    cllm_quant_fill_reference(t); /* entries without an AVX-512 version */
    cllm_quant_fill_kq_avx2(t);
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
    t->round_f16 = avx512_round_f16;
    t->gemm_q8 = vnni ? vnni_gemm_q8 : bw_gemm_q8;
    t->gemm_x16 = vnni ? cllm_quant_gemm_x16_vnni_avx512 : NULL;
}
