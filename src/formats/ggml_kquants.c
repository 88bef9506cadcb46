/*
 * ggml_kquants.c: the scalar reference encoders and decoders of ggml's
 * q4_1, q5_0, q5_1 and k-quant (q2_K .. q6_K) blocks, and of q8_K, the
 * activation type of the k-quant dot products (layouts in ggml_types.h).
 *
 * The encoders follow the algorithm of ggml's quantize_row_*_ref (ggml-quants.c)
 * step for step, in the same float operation order, so that on finite input
 * they produce the same bytes as llama-quantize without an importance
 * matrix (ggml compiles those functions without FMA contraction, as this file
 * is compiled). The k-quant encoders are searches: each sub-block gets a
 * least-squares scale (and min) chosen among a few candidate grids, then the
 * sub-block scales are themselves quantized against one fp16 super-scale and
 * the values are re-rounded against the quantized scales. Plain C, one
 * element at a time; these write files and are the ground truth of the
 * kernels in src/kernels/, not fast paths.
 *
 * Not here: importance-matrix weighting (llama-quantize --imatrix), the
 * i-quants, dot products (src/kernels/quant.c).
 */
#include <math.h>
#include <string.h>

#include "cllm/core/byteorder.h"
#include "cllm/core/status.h"
#include "cllm/formats/ggml_types.h"
#include "ggml_kquants.h"

#define QK 256              /* elements per k-quant super-block */
#define GROUP_EPS 1e-15f    /* ggml's GROUP_MAX_EPS: a sub-block below this magnitude is all zero */

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static float get_half(const uint8_t *p) { return cllm_fp16_to_fp32(cllm_get_le16(p)); }
static int imin(int a, int b) { return a < b ? a : b; }
static int iclamp(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Round to nearest, ties to even, by adding 1.5 * 2^23: the float sum has
 * a unit last place, and its low 23 mantissa bits minus 2^22 are the
 * rounded value for |v| < 2^22. ggml's nearest_int computes the same thing,
 * and outside that domain (fp16 scales that overflowed to Inf, NaN) this
 * gives its same defined-but-meaningless values, so blocks stay identical. */
static int round_even(float v) {
    const float t = v + 12582912.0f;
    uint32_t u;
    memcpy(&u, &t, 4);
    return (int)(u & 0x7fffffu) - 0x400000;
}

/* Float to int toward zero, as ggml's (int8_t)(float) casts of in-range
 * values; NaN and out-of-range give the nearest bound (defined, meaningless). */
static int trunc_to(float v, int lo, int hi) {
    if (!(v >= (float)lo)) return lo;
    if (v > (float)hi) return hi;
    return (int)v;
}

/* ---- 32-element blocks with a min or a fifth bit ----------------------------- */

static void min_max(const float *x, int n, float *mn, float *mx) {
    float lo = INFINITY, hi = -INFINITY; /* ggml starts from +-FLT_MAX: same result on finite input */
    for (int j = 0; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

static void encode_q4_1(const float *x, uint8_t *y) {
    float lo, hi;
    min_max(x, 32, &lo, &hi);
    const float d = (hi - lo) / 15.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    put16(y, cllm_fp32_to_fp16(d));
    put16(y + 2, cllm_fp32_to_fp16(lo));
    for (int j = 0; j < 16; j++) {
        const int a = imin(15, trunc_to((x[j] - lo) * id + 0.5f, -128, 127));
        const int b = imin(15, trunc_to((x[j + 16] - lo) * id + 0.5f, -128, 127));
        y[4 + j] = (uint8_t)((a & 15) | (b << 4));
    }
}

/* The fifth bits of 32 five-bit values v[]: bit j of the u32 is v[j] >> 4. */
static void put_high_bits(uint8_t *qh, const int *v) {
    uint32_t h = 0;
    for (int j = 0; j < 32; j++) h |= (uint32_t)((v[j] >> 4) & 1) << j;
    cllm_put_le32(qh, h);
}

static void encode_q5_0(const float *x, uint8_t *y) {
    float amax = 0.0f, max = 0.0f; /* max keeps the sign of the largest magnitude */
    for (int j = 0; j < 32; j++)
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    const float d = max / -16.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    int v[32];
    for (int j = 0; j < 32; j++) v[j] = imin(31, trunc_to(x[j] * id + 16.5f, -128, 127)) & 31;
    put16(y, cllm_fp32_to_fp16(d));
    put_high_bits(y + 2, v);
    for (int j = 0; j < 16; j++) y[6 + j] = (uint8_t)((v[j] & 15) | ((v[j + 16] & 15) << 4));
}

static void encode_q5_1(const float *x, uint8_t *y) {
    float lo, hi;
    min_max(x, 32, &lo, &hi);
    const float d = (hi - lo) / 31.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    int v[32];
    for (int j = 0; j < 32; j++) v[j] = trunc_to((x[j] - lo) * id + 0.5f, 0, 255) & 31;
    put16(y, cllm_fp32_to_fp16(d));
    put16(y + 2, cllm_fp32_to_fp16(lo));
    put_high_bits(y + 4, v);
    for (int j = 0; j < 16; j++) y[8 + j] = (uint8_t)((v[j] & 15) | ((v[j + 16] & 15) << 4));
}

/* ---- sub-block fits of the k-quants ------------------------------------------ */

/* The value of largest magnitude in x[n] (the first of equal ones). */
static float signed_amax(int n, const float *x) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    return max;
}

/* The levels l = round(iscale x) in [-nmax, nmax - 1] of x[n] and their
 * weighted (x^2) sums of l x and l^2; L[i] = l + offset when L is given. */
static void grid_sums(int n, int nmax, float iscale, const float *x, int8_t *L, int offset, float *sumlx,
                      float *suml2) {
    *sumlx = *suml2 = 0.0f;
    for (int i = 0; i < n; i++) {
        const int l = iclamp(round_even(iscale * x[i]), -nmax, nmax - 1);
        const float w = x[i] * x[i];
        if (L) L[i] = (int8_t)(l + offset);
        *sumlx += w * x[i] * (float)l;
        *suml2 += w * (float)l * (float)l;
    }
}

/* Symmetric fit of n values to levels l in [-nmax, nmax - 1], weights x^2
 * (q6_K): start from the grid through the value of largest magnitude, then
 * try 18 nearby grids and keep the one with the best weighted least-squares
 * scale. L[i] = l + nmax. Returns the scale (0 for an all-zero group). */
static float fit_symmetric(int n, int nmax, const float *x, int8_t *L) {
    const float max = signed_amax(n, x);
    if (fabsf(max) < GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float sumlx, suml2;
    grid_sums(n, nmax, (float)-nmax / max, x, L, nmax, &sumlx, &suml2);
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f, best = scale * sumlx;
    for (int step = -9; step <= 9; step++) {
        if (step == 0) continue;
        const float iscale = -((float)nmax + 0.1f * (float)step) / max;
        grid_sums(n, nmax, iscale, x, NULL, 0, &sumlx, &suml2);
        if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
            grid_sums(n, nmax, iscale, x, L, nmax, &sumlx, &suml2);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Symmetric fit for q3_K: levels in [-nmax, nmax - 1] through the largest
 * magnitude, then up to 5 passes of coordinate descent moving one level at
 * a time while the weighted (x^2) fit improves. L[i] = l + nmax. */
static float fit_symmetric_descent(int n, int nmax, const float *x, int8_t *L) {
    const float max = signed_amax(n, x);
    if (fabsf(max) < GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float sumlx, suml2;
    grid_sums(n, nmax, (float)-nmax / max, x, L, 0, &sumlx, &suml2);
    for (int pass = 0; pass < 5; pass++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            if (!(slx > 0.0f)) continue;
            float sl2 = suml2 - w * (float)L[i] * (float)L[i];
            const int nl = iclamp(round_even(x[i] * sl2 / slx), -nmax, nmax - 1);
            if (nl == L[i]) continue;
            slx += w * x[i] * (float)nl;
            sl2 += w * (float)nl * (float)nl;
            if (sl2 > 0.0f && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (int8_t)nl;
                sumlx = slx;
                suml2 = sl2;
                changed++;
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Affine fit x ~ scale * l - min_out, l in [0, nmax], for q2_K/q4_K/q5_K:
 * the grid from min(x, 0) to max(x) first, then nstep + 1 grids of
 * (nmax + rmin + rdelta * k) levels, each solved for the weighted
 * least-squares scale and offset (offset clamped to <= 0), keeping the one
 * with the lowest weighted error (|e| when use_abs, else e^2). Writes the
 * levels to L (aux: scratch of n), *min_out >= 0; returns the scale. */
static float fit_affine(int n, int nmax, const float *x, const float *w, uint8_t *L, float *min_out, uint8_t *aux,
                        float rmin, float rdelta, int nstep, int use_abs) {
    float lo = x[0], hi = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (lo > 0.0f) lo = 0.0f;
    if (hi == lo) {
        memset(L, 0, (size_t)n);
        *min_out = -lo;
        return 0.0f;
    }
    float iscale = (float)nmax / (hi - lo), scale = 1.0f / iscale, best = 0.0f;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)iclamp(round_even(iscale * (x[i] - lo)), 0, nmax);
        float e = scale * (float)L[i] + lo - x[i];
        e = use_abs ? fabsf(e) : e * e;
        best += w[i] * e;
    }
    for (int k = 0; k <= nstep; k++) {
        iscale = (rmin + rdelta * (float)k + (float)nmax) / (hi - lo);
        float sl = 0.0f, sl2 = 0.0f, sxl = 0.0f;
        for (int i = 0; i < n; i++) {
            const int l = iclamp(round_even(iscale * (x[i] - lo)), 0, nmax);
            aux[i] = (uint8_t)l;
            sl += w[i] * (float)l;
            sl2 += w[i] * (float)l * (float)l;
            sxl += w[i] * (float)l * x[i];
        }
        const float D = sum_w * sl2 - sl * sl;
        if (!(D > 0.0f)) continue;
        float s = (sum_w * sxl - sum_x * sl) / D, m = (sl2 * sum_x - sl * sxl) / D;
        if (m > 0.0f) {
            m = 0.0f;
            s = sxl / sl2;
        }
        float err = 0.0f;
        for (int i = 0; i < n; i++) {
            float e = s * (float)aux[i] + m - x[i];
            e = use_abs ? fabsf(e) : e * e;
            err += w[i] * e;
        }
        if (err < best) {
            memcpy(L, aux, (size_t)n);
            best = err;
            scale = s;
            lo = m;
        }
    }
    *min_out = -lo;
    return scale;
}

/* The 6-bit scale and min of sub-block j < 8 from q4_K/q5_K's 12 scale
 * bytes: sub-blocks 0-3 in the low 6 bits of bytes j and j + 4, 4-7 in the
 * nibbles of byte j + 4 with their top 2 bits in bytes j - 4 and j. */
static void k4_scale_min(int j, const uint8_t *s, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* ---- q2_K -------------------------------------------------------------------- */

/* Packs 256 two-bit levels: byte l of each 32-byte quarter holds the levels
 * of elements 128h + l, +32, +64, +96 in bits 0-1, 2-3, 4-5, 6-7. */
static void pack_2bit(const uint8_t *L, uint8_t *qs) {
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *p = L + 128 * h + l;
            qs[32 * h + l] = (uint8_t)(p[0] | (p[32] << 2) | (p[64] << 4) | (p[96] << 6));
        }
}

static void encode_q2_K(const float *x, uint8_t *y) {
    uint8_t L[QK], aux[16], *sc = y, *qs = y + 16;
    float w[16], mins[16], scales[16], max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 16; j++) {
        for (int l = 0; l < 16; l++) w[l] = fabsf(x[16 * j + l]);
        scales[j] = fit_affine(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], aux, -0.5f, 0.1f, 15, 1);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    memset(sc, 0, 16);
    if (max_scale > 0.0f) {
        const float is = 15.0f / max_scale;
        for (int j = 0; j < 16; j++) sc[j] = (uint8_t)round_even(is * scales[j]);
    }
    put16(y + 80, cllm_fp32_to_fp16(max_scale > 0.0f ? max_scale / 15.0f : 0.0f));
    if (max_min > 0.0f) {
        const float im = 15.0f / max_min;
        for (int j = 0; j < 16; j++) sc[j] = (uint8_t)(sc[j] | (round_even(im * mins[j]) << 4));
    }
    put16(y + 82, cllm_fp32_to_fp16(max_min > 0.0f ? max_min / 15.0f : 0.0f));
    const float d = get_half(y + 80), dmin = get_half(y + 82);
    for (int j = 0; j < 16; j++) {
        const float dj = d * (float)(sc[j] & 15);
        if (dj == 0.0f) continue; /* keep the fit's levels */
        const float mj = dmin * (float)(sc[j] >> 4);
        for (int l = 0; l < 16; l++) L[16 * j + l] = (uint8_t)iclamp(round_even((x[16 * j + l] + mj) / dj), 0, 3);
    }
    pack_2bit(L, qs);
}

/* ---- q3_K -------------------------------------------------------------------- */

static void encode_q3_K(const float *x, uint8_t *y) {
    int8_t L[QK];
    float scales[16], max_scale = 0.0f, amax = 0.0f;
    uint8_t *hmask = y, *qs = y + 32, *sc = y + 96;
    for (int j = 0; j < 16; j++) {
        scales[j] = fit_symmetric_descent(16, 4, x + 16 * j, L + 16 * j);
        if (fabsf(scales[j]) > amax) {
            amax = fabsf(scales[j]);
            max_scale = scales[j];
        }
    }
    memset(sc, 0, 12);
    if (max_scale != 0.0f) {
        const float is = -32.0f / max_scale;
        for (int j = 0; j < 16; j++) {
            /* 6-bit scale + 32: low nibble in byte j % 8 (high nibble for j >= 8), top 2 bits in byte 8 + j % 4 */
            const int l = iclamp((int8_t)round_even(is * scales[j]), -32, 31) + 32;
            sc[j % 8] = (uint8_t)(sc[j % 8] | ((l & 15) << (j < 8 ? 0 : 4)));
            sc[8 + j % 4] = (uint8_t)(sc[8 + j % 4] | ((l >> 4) << (2 * (j / 4))));
        }
        put16(y + 108, cllm_fp32_to_fp16(1.0f / is));
    } else {
        put16(y + 108, cllm_fp32_to_fp16(0.0f));
    }
    const float d = get_half(y + 108);
    for (int j = 0; j < 16; j++) {
        const int s = (((sc[j % 8] >> (j < 8 ? 0 : 4)) & 15) | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
        const float dj = d * (float)s;
        if (dj == 0.0f) continue;
        for (int l = 0; l < 16; l++) L[16 * j + l] = (int8_t)(iclamp(round_even(x[16 * j + l] / dj), -4, 3) + 4);
    }
    /* the third bit of element j goes to bit j / 32 of hmask[j % 32]; the low two bits pack like q2_K */
    memset(hmask, 0, 32);
    uint8_t low[QK];
    for (int j = 0; j < QK; j++) {
        if (L[j] > 3) hmask[j % 32] = (uint8_t)(hmask[j % 32] | (1 << (j / 32)));
        low[j] = (uint8_t)(L[j] > 3 ? L[j] - 4 : L[j]);
    }
    pack_2bit(low, qs);
}

/* ---- q4_K / q5_K ------------------------------------------------------------- */

/* The fits and 12 scale bytes shared by q4_K (nmax 15) and q5_K (31); then
 * the levels re-rounded against the quantized scales into L. */
static void encode_k4_scales(const float *x, uint8_t *y, int nmax, float rmin, int nstep, uint8_t *L) {
    uint8_t aux[32], *s = y + 4;
    float w[32], mins[8], scales[8], max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 8; j++) {
        const float *xj = x + 32 * j;
        float sum_x2 = 0.0f;
        for (int l = 0; l < 32; l++) sum_x2 += xj[l] * xj[l];
        const float av = sqrtf(sum_x2 / 32.0f);
        for (int l = 0; l < 32; l++) w[l] = av + fabsf(xj[l]);
        scales[j] = fit_affine(32, nmax, xj, w, L + 32 * j, &mins[j], aux, rmin, 0.1f, nstep, 0);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float is = max_scale > 0.0f ? 63.0f / max_scale : 0.0f, im = max_min > 0.0f ? 63.0f / max_min : 0.0f;
    memset(s, 0, 12);
    for (int j = 0; j < 8; j++) {
        const int ls = imin(63, (uint8_t)round_even(is * scales[j])), lm = imin(63, (uint8_t)round_even(im * mins[j]));
        if (j < 4) {
            s[j] = (uint8_t)(s[j] | ls);
            s[j + 4] = (uint8_t)(s[j + 4] | lm);
        } else {
            s[j + 4] = (uint8_t)((ls & 15) | ((lm & 15) << 4));
            s[j - 4] = (uint8_t)(s[j - 4] | ((ls >> 4) << 6));
            s[j] = (uint8_t)(s[j] | ((lm >> 4) << 6));
        }
    }
    put16(y, cllm_fp32_to_fp16(max_scale / 63.0f));
    put16(y + 2, cllm_fp32_to_fp16(max_min / 63.0f));
    const float d = get_half(y), dmin = get_half(y + 2);
    for (int j = 0; j < 8; j++) {
        int sc, mn;
        k4_scale_min(j, s, &sc, &mn);
        const float dj = d * (float)sc;
        if (dj == 0.0f) continue;
        const float mj = dmin * (float)mn;
        for (int l = 0; l < 32; l++) L[32 * j + l] = (uint8_t)iclamp(round_even((x[32 * j + l] + mj) / dj), 0, nmax);
    }
}

static void encode_q4_K(const float *x, uint8_t *y) {
    uint8_t L[QK];
    encode_k4_scales(x, y, 15, -1.0f, 20, L);
    /* each 32-byte run of qs holds 64 elements: the low nibbles the first 32, the high ones the next */
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) y[16 + 32 * c + l] = (uint8_t)(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
}

static void encode_q5_K(const float *x, uint8_t *y) {
    uint8_t L[QK], *qh = y + 16, *qs = y + 48;
    encode_k4_scales(x, y, 31, -0.5f, 15, L);
    /* low nibbles as q4_K; the fifth bit of element 32 * j + l is bit j of qh[l] */
    memset(qh, 0, 32);
    for (int j = 0; j < 8; j++)
        for (int l = 0; l < 32; l++) qh[l] = (uint8_t)(qh[l] | ((L[32 * j + l] >> 4) << j));
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) qs[32 * c + l] = (uint8_t)((L[64 * c + l] & 15) | ((L[64 * c + 32 + l] & 15) << 4));
}

/* ---- q6_K -------------------------------------------------------------------- */

static void encode_q6_K(const float *x, uint8_t *y) {
    int8_t L[QK];
    float scales[16], max_scale = 0.0f, amax = 0.0f;
    uint8_t *ql = y, *qh = y + 128, *sc = y + 192;
    for (int j = 0; j < 16; j++) {
        scales[j] = fit_symmetric(16, 32, x + 16 * j, L + 16 * j);
        if (fabsf(scales[j]) > amax) {
            amax = fabsf(scales[j]);
            max_scale = scales[j];
        }
    }
    if (amax < GROUP_EPS) {
        memset(y, 0, 210);
        return;
    }
    const float is = -128.0f / max_scale;
    put16(y + 208, cllm_fp32_to_fp16(1.0f / is));
    for (int j = 0; j < 16; j++) sc[j] = (uint8_t)(int8_t)imin(127, round_even(is * scales[j]));
    const float d = get_half(y + 208);
    for (int j = 0; j < 16; j++) {
        const float dj = d * (float)(int8_t)sc[j];
        if (dj == 0.0f) continue;
        for (int l = 0; l < 16; l++) L[16 * j + l] = (int8_t)(iclamp(round_even(x[16 * j + l] / dj), -32, 31) + 32);
    }
    /* per 128 elements: 64 bytes of low nibbles (elements l and l + 64 in byte l, l + 32 and l + 96 in
     * byte 32 + l) and 32 bytes of high 2-bit pairs (elements l, +32, +64, +96 in bits 0-1 .. 6-7) */
    for (int h = 0; h < 2; h++) {
        const int8_t *p = L + 128 * h;
        for (int l = 0; l < 32; l++) {
            ql[64 * h + l] = (uint8_t)((p[l] & 15) | ((p[l + 64] & 15) << 4));
            ql[64 * h + 32 + l] = (uint8_t)((p[l + 32] & 15) | ((p[l + 96] & 15) << 4));
            qh[32 * h + l] = (uint8_t)((p[l] >> 4) | ((p[l + 32] >> 4) << 2) | ((p[l + 64] >> 4) << 4) | ((p[l + 96] >> 4) << 6));
        }
    }
}

/* ---- q8_K -------------------------------------------------------------------- */

void cllm_ggml_quantize_q8_K(const float *x, void *dst, int64_t n) {
    uint8_t *y = dst;
    for (int64_t b = 0; b < n / QK; b++, x += QK, y += CLLM_Q8_K_BYTES) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        if (amax == 0.0f) {
            memset(y, 0, CLLM_Q8_K_BYTES);
            continue;
        }
        const float is = -127.0f / max, d = 1.0f / is;
        memcpy(y, &d, 4);
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) {
                const int q = iclamp(round_even(is * x[16 * g + l]), -127, 127);
                y[4 + 16 * g + l] = (uint8_t)(int8_t)q;
                sum += q;
            }
            put16(y + 260 + 2 * g, (uint16_t)(int16_t)sum);
        }
    }
}

/* ---- unpacking --------------------------------------------------------------- */

void cllm_ggml_kq_unpack(uint32_t type, const uint8_t *b, cllm_ggml_kq_block *u) {
    memset(u->mn, 0, sizeof u->mn);
    u->dmin = 0.0f;
    int8_t *q = u->q;
    /* the loops run over whole 32-byte runs of the packed bytes, so they vectorize */
    switch (type) {
    case CLLM_GGML_Q2_K:
    case CLLM_GGML_Q3_K: {
        /* 2-bit planes as pack_2bit wrote them: element 128h + 32k + l in bits 2k of byte 32h + l;
         * q3_K: minus 4 unless the element's bit (k + 4h of hmask[l]) is set */
        const int three = type == CLLM_GGML_Q3_K;
        const uint8_t *qs = b + (three ? 32 : 16);
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 4; k++)
                for (int l = 0; l < 32; l++) {
                    int v = (qs[32 * h + l] >> (2 * k)) & 3;
                    if (three) v -= (b[l] >> (4 * h + k)) & 1 ? 0 : 4;
                    q[128 * h + 32 * k + l] = (int8_t)v;
                }
        if (three) {
            const uint8_t *sc = b + 96;
            u->d = get_half(b + 108);
            for (int g = 0; g < 16; g++)
                u->sc[g] = (int16_t)((((sc[g % 8] >> (g < 8 ? 0 : 4)) & 15) | (((sc[8 + g % 4] >> (2 * (g / 4))) & 3) << 4)) - 32);
        } else {
            u->d = get_half(b + 80);
            u->dmin = get_half(b + 82);
            for (int g = 0; g < 16; g++) {
                u->sc[g] = (int16_t)(b[g] & 15);
                u->mn[g] = (int16_t)(b[g] >> 4);
            }
        }
        break;
    }
    case CLLM_GGML_Q4_K:
    case CLLM_GGML_Q5_K: {
        const int five = type == CLLM_GGML_Q5_K;
        const uint8_t *qs = b + (five ? 48 : 16), *qh = b + 16;
        u->d = get_half(b);
        u->dmin = get_half(b + 2);
        for (int j = 0; j < 8; j++) {
            int sc, mn;
            k4_scale_min(j, b + 4, &sc, &mn);
            u->sc[2 * j] = u->sc[2 * j + 1] = (int16_t)sc;
            u->mn[2 * j] = u->mn[2 * j + 1] = (int16_t)mn;
        }
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                int lo = qs[32 * c + l] & 15, hi = qs[32 * c + l] >> 4;
                if (five) {
                    lo |= ((qh[l] >> (2 * c)) & 1) << 4;
                    hi |= ((qh[l] >> (2 * c + 1)) & 1) << 4;
                }
                q[64 * c + l] = (int8_t)lo;
                q[64 * c + 32 + l] = (int8_t)hi;
            }
        break;
    }
    case CLLM_GGML_Q6_K:
        u->d = get_half(b + 208);
        for (int g = 0; g < 16; g++) u->sc[g] = (int8_t)b[192 + g];
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const uint8_t l0 = b[64 * h + l], l1 = b[64 * h + 32 + l], hb = b[128 + 32 * h + l];
                q[128 * h + l] = (int8_t)(((l0 & 15) | ((hb & 3) << 4)) - 32);
                q[128 * h + 32 + l] = (int8_t)(((l1 & 15) | (((hb >> 2) & 3) << 4)) - 32);
                q[128 * h + 64 + l] = (int8_t)(((l0 >> 4) | (((hb >> 4) & 3) << 4)) - 32);
                q[128 * h + 96 + l] = (int8_t)(((l1 >> 4) | (((hb >> 6) & 3) << 4)) - 32);
            }
        break;
    default:
        CLLM_ASSERT(0 && "not a k-quant");
    }
}

/* ---- whole rows -------------------------------------------------------------- */

int cllm_ggml_more_from_f32(uint32_t type, const float *src, void *dst, int64_t n) {
    void (*enc)(const float *, uint8_t *) = NULL;
    int bs = 32, bytes = 0;
    switch (type) {
    case CLLM_GGML_Q4_1: enc = encode_q4_1, bytes = 20; break;
    case CLLM_GGML_Q5_0: enc = encode_q5_0, bytes = 22; break;
    case CLLM_GGML_Q5_1: enc = encode_q5_1, bytes = 24; break;
    case CLLM_GGML_Q2_K: enc = encode_q2_K, bs = QK, bytes = 84; break;
    case CLLM_GGML_Q3_K: enc = encode_q3_K, bs = QK, bytes = 110; break;
    case CLLM_GGML_Q4_K: enc = encode_q4_K, bs = QK, bytes = 144; break;
    case CLLM_GGML_Q5_K: enc = encode_q5_K, bs = QK, bytes = 176; break;
    case CLLM_GGML_Q6_K: enc = encode_q6_K, bs = QK, bytes = 210; break;
    default: return -1;
    }
    uint8_t *out = dst;
    for (int64_t b = 0; b < n / bs; b++) enc(src + b * bs, out + b * bytes);
    return 0;
}

int cllm_ggml_more_to_f32(uint32_t type, const void *src, float *dst, int64_t n) {
    const uint8_t *in = src;
    switch (type) {
    case CLLM_GGML_Q4_1:
    case CLLM_GGML_Q5_0:
    case CLLM_GGML_Q5_1: {
        const int bytes = type == CLLM_GGML_Q4_1 ? 20 : type == CLLM_GGML_Q5_0 ? 22 : 24;
        for (int64_t b = 0; b < n / 32; b++, in += bytes, dst += 32) {
            const float d = get_half(in);
            if (type == CLLM_GGML_Q4_1) {
                const float m = get_half(in + 2);
                for (int j = 0; j < 16; j++) {
                    dst[j] = (float)(in[4 + j] & 15) * d + m;
                    dst[j + 16] = (float)(in[4 + j] >> 4) * d + m;
                }
                continue;
            }
            const int q51 = type == CLLM_GGML_Q5_1;
            const uint32_t qh = cllm_get_le32(in + (q51 ? 4 : 2));
            const uint8_t *qs = in + (q51 ? 8 : 6);
            const float m = q51 ? get_half(in + 2) : 0.0f;
            for (int j = 0; j < 16; j++) {
                const int a = (qs[j] & 15) | (int)((qh >> j) & 1) << 4;
                const int c = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
                if (q51) {
                    dst[j] = (float)a * d + m;
                    dst[j + 16] = (float)c * d + m;
                } else {
                    dst[j] = (float)(a - 16) * d;
                    dst[j + 16] = (float)(c - 16) * d;
                }
            }
        }
        return 0;
    }
    case CLLM_GGML_Q2_K:
    case CLLM_GGML_Q3_K:
    case CLLM_GGML_Q4_K:
    case CLLM_GGML_Q5_K:
    case CLLM_GGML_Q6_K: {
        const size_t bytes = cllm_ggml_type_get(type)->type_size;
        cllm_ggml_kq_block u;
        for (int64_t b = 0; b < n / QK; b++, in += bytes, dst += QK) {
            cllm_ggml_kq_unpack(type, in, &u);
            for (int g = 0; g < 16; g++) {
                /* ggml's order: (d * scale) * level - (dmin * min) */
                const float dg = u.d * (float)u.sc[g], mg = u.dmin * (float)u.mn[g];
                for (int l = 0; l < 16; l++) dst[16 * g + l] = dg * (float)u.q[16 * g + l] - mg;
            }
        }
        return 0;
    }
    default:
        return -1;
    }
}
