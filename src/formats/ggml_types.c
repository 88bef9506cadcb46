/*
 * ggml_types.c: ggml's type table, fp16/bf16 scalar conversion and the scalar
 * reference (de)quantizers for q8_0 and q4_0 (layouts in ggml_types.h); the
 * other block types' are in ggml_kquants.c.
 *
 * These are the reference paths: plain C, one element at a time, used for
 * writing files and as the ground truth that SIMD kernels in src/kernels/
 * are tested against. They are not meant to be fast.
 */
#include "cllm/formats/ggml_types.h"

#include <math.h>
#include <string.h>
#include <strings.h>

#include "cllm/core/byteorder.h"
#include "ggml_kquants.h"

static const cllm_ggml_type_info type_table[CLLM_GGML_TYPE_COUNT] = {
    [CLLM_GGML_F32] = {"f32", 1, 4, true},
    [CLLM_GGML_F16] = {"f16", 1, 2, true},
    [CLLM_GGML_Q4_0] = {"q4_0", 32, 18, true},  /* fp16 d + 16 bytes of nibbles */
    [CLLM_GGML_Q4_1] = {"q4_1", 32, 20, true}, /* fp16 d, m + 16 bytes */
    [CLLM_GGML_Q5_0] = {"q5_0", 32, 22, true}, /* fp16 d + 4 high bits + 16 bytes */
    [CLLM_GGML_Q5_1] = {"q5_1", 32, 24, true},
    [CLLM_GGML_Q8_0] = {"q8_0", 32, 34, true},  /* fp16 d + 32 int8 */
    [CLLM_GGML_Q8_1] = {"q8_1", 32, 36, false}, /* fp16 d, s + 32 int8 */
    [CLLM_GGML_Q2_K] = {"q2_K", 256, 84, true},
    [CLLM_GGML_Q3_K] = {"q3_K", 256, 110, true},
    [CLLM_GGML_Q4_K] = {"q4_K", 256, 144, true},
    [CLLM_GGML_Q5_K] = {"q5_K", 256, 176, true},
    [CLLM_GGML_Q6_K] = {"q6_K", 256, 210, true},
    [CLLM_GGML_Q8_K] = {"q8_K", 256, 292, false},
    [CLLM_GGML_I8] = {"i8", 1, 1, false},
    [CLLM_GGML_I16] = {"i16", 1, 2, false},
    [CLLM_GGML_I32] = {"i32", 1, 4, false},
    [CLLM_GGML_I64] = {"i64", 1, 8, false},
    [CLLM_GGML_F64] = {"f64", 1, 8, false},
    [CLLM_GGML_BF16] = {"bf16", 1, 2, true},
};

const cllm_ggml_type_info *cllm_ggml_type_get(uint32_t id) {
    if (id >= CLLM_GGML_TYPE_COUNT || type_table[id].name == NULL) return NULL;
    return &type_table[id];
}

const char *cllm_ggml_type_name(uint32_t id) {
    const cllm_ggml_type_info *t = cllm_ggml_type_get(id);
    return t ? t->name : "unknown";
}

int cllm_ggml_type_parse(const char *name, cllm_ggml_type *out) {
    for (uint32_t i = 0; i < CLLM_GGML_TYPE_COUNT; i++) {
        if (type_table[i].name && type_table[i].has_kernels && strcasecmp(name, type_table[i].name) == 0) {
            *out = (cllm_ggml_type)i;
            return 0;
        }
    }
    return -1;
}

int cllm_ggml_row_size(uint32_t type, int64_t n, size_t *out) {
    const cllm_ggml_type_info *t = cllm_ggml_type_get(type);
    if (!t || n <= 0 || n % t->block_size != 0) return 0;
    uint64_t blocks = (uint64_t)n / t->block_size, bytes;
    if (__builtin_mul_overflow(blocks, (uint64_t)t->type_size, &bytes) || bytes > SIZE_MAX) return 0;
    *out = (size_t)bytes;
    return 1;
}

/* ---- fp16 / bf16 ----------------------------------------------------- */

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t cllm_fp32_to_fp16(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) /* NaN: quiet, keep the top payload bits */
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    if (ax >= 0x477ff000u) /* >= 65520 rounds (to even) past 65504: Inf */
        return (uint16_t)(sign | 0x7c00u);
    uint32_t e = ax >> 23;
    if (ax < 0x38800000u) { /* below 2^-14: fp16 subnormal or zero */
        if (e == 0) return sign; /* fp32 zero/subnormal is far below fp16's range */
        uint32_t m = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* result = m * 2^(e-126) units of 2^-24 */
        if (shift > 24) return sign;
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t h = ((e - 112) << 10) | ((ax & 0x7fffffu) >> 13);
    uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float cllm_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) {
        float v = ldexpf((float)m, -24); /* exact: m < 2^10 */
        return sign ? -v : v;
    }
    if (e == 31) return bits_f32(sign | 0x7f800000u | (m << 13));
    return bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

uint16_t cllm_fp32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

float cllm_bf16_to_fp32(uint16_t b) { return bits_f32((uint32_t)b << 16); }

/* ---- q8_0 / q4_0 reference ------------------------------------------- */

static void put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* Float to int with saturation; NaN gives 0 (defined, meaningless). */
static int clamp_to_int(float v, int lo, int hi) {
    if (!(v >= (float)lo)) return v != v ? 0 : lo;
    if (v > (float)hi) return hi;
    return (int)v;
}

static void quantize_block_q8_0(const float *x, uint8_t *y) {
    float amax = 0.0f;
    for (int j = 0; j < CLLM_QK8_0; j++) {
        float a = fabsf(x[j]);
        if (a > amax) amax = a;
    }
    float d = amax / 127.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_u16(y, cllm_fp32_to_fp16(d));
    for (int j = 0; j < CLLM_QK8_0; j++)
        y[2 + j] = (uint8_t)(int8_t)clamp_to_int(roundf(x[j] * id), -127, 127);
}

static void quantize_block_q4_0(const float *x, uint8_t *y) {
    float amax = 0.0f, max = 0.0f; /* max keeps the sign of the largest magnitude */
    for (int j = 0; j < CLLM_QK4_0; j++) {
        float a = fabsf(x[j]);
        if (amax < a) {
            amax = a;
            max = x[j];
        }
    }
    float d = max / -8.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_u16(y, cllm_fp32_to_fp16(d));
    for (int j = 0; j < CLLM_QK4_0 / 2; j++) {
        /* ggml truncates x/d + 8.5 toward zero, then caps at 15 */
        int lo = clamp_to_int(x[j] * id + 8.5f, 0, 15);
        int hi = clamp_to_int(x[j + CLLM_QK4_0 / 2] * id + 8.5f, 0, 15);
        y[2 + j] = (uint8_t)(lo | (hi << 4));
    }
}

int cllm_ggml_from_f32(uint32_t type, const float *src, void *dst, int64_t n) {
    const cllm_ggml_type_info *t = cllm_ggml_type_get(type);
    if (!t || !t->has_kernels || n < 0 || n % t->block_size != 0) return -1;
    uint8_t *out = dst;
    switch (type) {
    case CLLM_GGML_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return 0;
    case CLLM_GGML_F16:
        for (int64_t i = 0; i < n; i++) put_u16(out + 2 * i, cllm_fp32_to_fp16(src[i]));
        return 0;
    case CLLM_GGML_BF16:
        for (int64_t i = 0; i < n; i++) put_u16(out + 2 * i, cllm_fp32_to_bf16(src[i]));
        return 0;
    case CLLM_GGML_Q8_0:
        for (int64_t b = 0; b < n / CLLM_QK8_0; b++) quantize_block_q8_0(src + b * CLLM_QK8_0, out + b * 34);
        return 0;
    case CLLM_GGML_Q4_0:
        for (int64_t b = 0; b < n / CLLM_QK4_0; b++) quantize_block_q4_0(src + b * CLLM_QK4_0, out + b * 18);
        return 0;
    default:
        return cllm_ggml_more_from_f32(type, src, dst, n); /* ggml_kquants.c */
    }
}

int cllm_ggml_to_f32(uint32_t type, const void *src, float *dst, int64_t n) {
    const cllm_ggml_type_info *t = cllm_ggml_type_get(type);
    if (!t || !t->has_kernels || n < 0 || n % t->block_size != 0) return -1;
    const uint8_t *in = src;
    switch (type) {
    case CLLM_GGML_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return 0;
    case CLLM_GGML_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = cllm_fp16_to_fp32(cllm_get_le16(in + 2 * i));
        return 0;
    case CLLM_GGML_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = cllm_bf16_to_fp32(cllm_get_le16(in + 2 * i));
        return 0;
    case CLLM_GGML_Q8_0:
        for (int64_t b = 0; b < n / CLLM_QK8_0; b++) {
            const uint8_t *blk = in + b * 34;
            float d = cllm_fp16_to_fp32(cllm_get_le16(blk));
            for (int j = 0; j < CLLM_QK8_0; j++) dst[b * CLLM_QK8_0 + j] = d * (float)(int8_t)blk[2 + j];
        }
        return 0;
    case CLLM_GGML_Q4_0:
        for (int64_t b = 0; b < n / CLLM_QK4_0; b++) {
            const uint8_t *blk = in + b * 18;
            float d = cllm_fp16_to_fp32(cllm_get_le16(blk));
            float *o = dst + b * CLLM_QK4_0;
            for (int j = 0; j < CLLM_QK4_0 / 2; j++) {
                o[j] = d * (float)((blk[2 + j] & 0x0f) - 8);
                o[j + CLLM_QK4_0 / 2] = d * (float)((blk[2 + j] >> 4) - 8);
            }
        }
        return 0;
    default:
        return cllm_ggml_more_to_f32(type, src, dst, n);
    }
}
