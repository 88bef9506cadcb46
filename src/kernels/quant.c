/*
 * quant.c: the scalar reference of every quantized-inference primitive in
 * cllm/kernels/quant.h (the table dispatch.c chooses from, beside the SIMD ones of
 * quant_avx2.c, quant_avx512.c and quant_amx.c), and the threaded matrix-vector, batched
 * integer product (cllm_quant_gemm) and row-dequantization loops on top of
 * one implementation.
 *
 * The reference is plain C, one element at a time, with the integer block
 * sums in int32 and the float accumulation in block order; tests compare the
 * SIMD paths against it. Not here: intrinsics (only in the *_avx*.c files),
 * weight quantization for files (src/formats/ggml_types.c).
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/core/byteorder.h"
#include "cllm/formats/ggml_types.h"
#include "cllm/kernels/kernels.h"
#include "cllm/kernels/quant.h"
#include "cllm/core/status.h"
#include "kernels_internal.h"
#include "quant_internal.h"



/* ---- reference ---------------------------------------------------------- */

static void ref_quantize_q8_0(const float *x, void *y, int64_t n) {
    uint8_t *out = y;
    for (int64_t b = 0; b < n / 32; b++, x += 32, out += CLLM_Q8_0_BYTES) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        const uint16_t h = cllm_fp32_to_fp16(d);
        out[0] = (uint8_t)h;
        out[1] = (uint8_t)(h >> 8);
        /* |x * id| <= 127 up to rounding of id, so the clamp only guards that */
        for (int j = 0; j < 32; j++) {
            float q = nearbyintf(x[j] * id);
            q = q != q ? 0.0f : q > 127.0f ? 127.0f : q < -127.0f ? -127.0f : q; /* NaN: defined, meaningless */
            out[2 + j] = (uint8_t)(int8_t)q;
        }
    }
}

static float ref_dot_q8_0_q8_0(const void *w, const void *xq, int64_t n) {
    const uint8_t *a = w, *b = xq;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 32; i++, a += CLLM_Q8_0_BYTES, b += CLLM_Q8_0_BYTES) {
        int32_t s = 0;
        for (int j = 0; j < 32; j++) s += (int32_t)(int8_t)a[2 + j] * (int32_t)(int8_t)b[2 + j];
        sum += cllm_fp16_to_fp32(cllm_get_le16(a)) * cllm_fp16_to_fp32(cllm_get_le16(b)) * (float)s;
    }
    return sum;
}

static float ref_dot_q4_0_q8_0(const void *w, const void *xq, int64_t n) {
    const uint8_t *a = w, *b = xq;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 32; i++, a += CLLM_Q4_0_BYTES, b += CLLM_Q8_0_BYTES) {
        int32_t s = 0;
        for (int j = 0; j < 16; j++) {
            s += ((a[2 + j] & 0x0F) - 8) * (int32_t)(int8_t)b[2 + j];
            s += ((a[2 + j] >> 4) - 8) * (int32_t)(int8_t)b[2 + 16 + j];
        }
        sum += cllm_fp16_to_fp32(cllm_get_le16(a)) * cllm_fp16_to_fp32(cllm_get_le16(b)) * (float)s;
    }
    return sum;
}

static float ref_dot_f16_f32(const void *w, const float *x, int64_t n) {
    const uint8_t *a = w;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += cllm_fp16_to_fp32(cllm_get_le16(a + 2 * i)) * x[i];
    return sum;
}

static float ref_dot_bf16_f32(const void *w, const float *x, int64_t n) {
    const uint8_t *a = w;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += cllm_bf16_to_fp32(cllm_get_le16(a + 2 * i)) * x[i];
    return sum;
}

static float ref_dot_f32_f32(const void *w, const float *x, int64_t n) {
    const uint8_t *a = w;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float v;
        memcpy(&v, a + 4 * i, sizeof v); /* file rows need not be 4-byte aligned */
        sum += v * x[i];
    }
    return sum;
}

static void ref_dequant_q8_0(const void *src, float *dst, int64_t n) {
    cllm_ggml_to_f32(CLLM_GGML_Q8_0, src, dst, n);
}
static void ref_dequant_q4_0(const void *src, float *dst, int64_t n) {
    cllm_ggml_to_f32(CLLM_GGML_Q4_0, src, dst, n);
}
static void ref_dequant_f16(const void *src, float *dst, int64_t n) {
    cllm_ggml_to_f32(CLLM_GGML_F16, src, dst, n);
}
static void ref_dequant_bf16(const void *src, float *dst, int64_t n) {
    cllm_ggml_to_f32(CLLM_GGML_BF16, src, dst, n);
}

static void ref_round_f16(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = cllm_fp32_to_fp16(x[i]);
}

static void ref_gemm_q8(uint32_t type, const void *W, size_t row_bytes, int rows, const void *xq,
                        size_t xq_stride, int n, int64_t K, float *out, size_t ld_out) {
    float (*dot)(const void *, const void *, int64_t) =
        type == CLLM_GGML_Q4_0 ? ref_dot_q4_0_q8_0 : ref_dot_q8_0_q8_0;
    for (int t = 0; t < n; t++)
        for (int r = 0; r < rows; r++)
            out[(size_t)t * ld_out + (size_t)r] =
                dot((const uint8_t *)W + (size_t)r * row_bytes, (const uint8_t *)xq + (size_t)t * xq_stride, K);
}

/* ---- the other block types: reference dots -------------------------------- */

/* q4_1 / q5_0 / q5_1 x q8_0: the block's levels (offset 16 taken off for
 * q5_0) dotted with the activations, times both scales, plus the min times
 * the activation scale times the activations' sum. */
static float ref_dot_q5_like(uint32_t type, const void *w, const void *xq, int64_t n) {
    const size_t bytes = cllm_ggml_type_get(type)->type_size;
    const uint8_t *a = w, *b = xq;
    float sum = 0.0f, vals[32];
    for (int64_t i = 0; i < n / 32; i++, a += bytes, b += CLLM_Q8_0_BYTES) {
        /* the levels are exact small integers: decode with d = 1, m = 0 */
        uint8_t blk[24];
        memcpy(blk, a, bytes);
        blk[0] = 0x00, blk[1] = 0x3c; /* fp16 1.0 */
        if (type != CLLM_GGML_Q5_0) blk[2] = blk[3] = 0;
        cllm_ggml_to_f32(type, blk, vals, 32);
        int32_t s = 0, sy = 0;
        for (int j = 0; j < 32; j++) {
            s += (int32_t)vals[j] * (int8_t)b[2 + j];
            sy += (int8_t)b[2 + j];
        }
        const float dy = cllm_fp16_to_fp32(cllm_get_le16(b));
        sum += cllm_fp16_to_fp32(cllm_get_le16(a)) * dy * (float)s;
        if (type != CLLM_GGML_Q5_0) sum += cllm_fp16_to_fp32(cllm_get_le16(a + 2)) * dy * (float)sy;
    }
    return sum;
}
static float ref_dot_q4_1_q8_0(const void *w, const void *xq, int64_t n) { return ref_dot_q5_like(CLLM_GGML_Q4_1, w, xq, n); }
static float ref_dot_q5_0_q8_0(const void *w, const void *xq, int64_t n) { return ref_dot_q5_like(CLLM_GGML_Q5_0, w, xq, n); }
static float ref_dot_q5_1_q8_0(const void *w, const void *xq, int64_t n) { return ref_dot_q5_like(CLLM_GGML_Q5_1, w, xq, n); }

/* k-quant x q8_K: per super-block d * dy * sum_g sc[g] * (levels . y over
 * group g of 16) - dmin * dy * sum_g mn[g] * bsums[g]. */
static float ref_dot_kq(uint32_t type, const void *w, const void *xq, int64_t n) {
    const size_t bytes = cllm_ggml_type_get(type)->type_size;
    const uint8_t *a = w, *b = xq;
    cllm_ggml_kq_block u;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / CLLM_QK_K; i++, a += bytes, b += CLLM_Q8_K_BYTES) {
        cllm_ggml_kq_unpack(type, a, &u);
        float dy;
        memcpy(&dy, b, 4);
        int32_t isum = 0, msum = 0;
        for (int g = 0; g < 16; g++) {
            int32_t s = 0;
            for (int l = 0; l < 16; l++) s += u.q[16 * g + l] * (int8_t)b[4 + 16 * g + l];
            isum += u.sc[g] * s;
            msum += u.mn[g] * (int16_t)cllm_get_le16(b + 260 + 2 * g);
        }
        sum += u.d * dy * (float)isum - u.dmin * dy * (float)msum;
    }
    return sum;
}
static float ref_dot_q2_K_q8_K(const void *w, const void *xq, int64_t n) { return ref_dot_kq(CLLM_GGML_Q2_K, w, xq, n); }
static float ref_dot_q3_K_q8_K(const void *w, const void *xq, int64_t n) { return ref_dot_kq(CLLM_GGML_Q3_K, w, xq, n); }
static float ref_dot_q4_K_q8_K(const void *w, const void *xq, int64_t n) { return ref_dot_kq(CLLM_GGML_Q4_K, w, xq, n); }
static float ref_dot_q5_K_q8_K(const void *w, const void *xq, int64_t n) { return ref_dot_kq(CLLM_GGML_Q5_K, w, xq, n); }
static float ref_dot_q6_K_q8_K(const void *w, const void *xq, int64_t n) { return ref_dot_kq(CLLM_GGML_Q6_K, w, xq, n); }

static void ref_dequant_other(uint32_t type, const void *src, float *dst, int64_t n) {
    cllm_ggml_to_f32(type, src, dst, n);
}

void cllm_quant_fill_reference(cllm_quant_kernels *t) {
    const cllm_quant_kernels reference_table = {
        CLLM_QUANT_REFERENCE, "reference", ref_quantize_q8_0, ref_dot_q8_0_q8_0, ref_dot_q4_0_q8_0,
        ref_dot_f16_f32, ref_dot_bf16_f32, ref_dot_f32_f32, ref_dequant_q8_0, ref_dequant_q4_0,
        ref_dequant_f16, ref_dequant_bf16, ref_gemm_q8, NULL, NULL, NULL /* no x16 kernels: the reference keeps the file layout */,
        ref_round_f16, cllm_ggml_quantize_q8_K, ref_dot_q4_1_q8_0, ref_dot_q5_0_q8_0, ref_dot_q5_1_q8_0,
        ref_dot_q2_K_q8_K, ref_dot_q3_K_q8_K, ref_dot_q4_K_q8_K, ref_dot_q5_K_q8_K, ref_dot_q6_K_q8_K,
        ref_dequant_other};
    *t = reference_table;
}

int cllm_quant_type_supported(uint32_t type) {
    switch (type) {
    case CLLM_GGML_F32: case CLLM_GGML_F16: case CLLM_GGML_BF16: case CLLM_GGML_Q8_0: case CLLM_GGML_Q4_0:
    case CLLM_GGML_Q4_1: case CLLM_GGML_Q5_0: case CLLM_GGML_Q5_1: case CLLM_GGML_Q2_K: case CLLM_GGML_Q3_K:
    case CLLM_GGML_Q4_K: case CLLM_GGML_Q5_K: case CLLM_GGML_Q6_K:
        return 1;
    default:
        return 0;
    }
}

uint32_t cllm_quant_act_type(uint32_t type) {
    switch (type) {
    case CLLM_GGML_Q8_0: case CLLM_GGML_Q4_0: case CLLM_GGML_Q4_1: case CLLM_GGML_Q5_0: case CLLM_GGML_Q5_1:
        return CLLM_GGML_Q8_0;
    case CLLM_GGML_Q2_K: case CLLM_GGML_Q3_K: case CLLM_GGML_Q4_K: case CLLM_GGML_Q5_K: case CLLM_GGML_Q6_K:
        return CLLM_GGML_Q8_K;
    default:
        return CLLM_GGML_F32;
    }
}

float (*cllm_quant_dot_fn(const cllm_quant_kernels *k, uint32_t type))(const void *, const void *, int64_t) {
    switch (type) {
    case CLLM_GGML_Q8_0: return k->dot_q8_0_q8_0;
    case CLLM_GGML_Q4_0: return k->dot_q4_0_q8_0;
    case CLLM_GGML_Q4_1: return k->dot_q4_1_q8_0;
    case CLLM_GGML_Q5_0: return k->dot_q5_0_q8_0;
    case CLLM_GGML_Q5_1: return k->dot_q5_1_q8_0;
    case CLLM_GGML_Q2_K: return k->dot_q2_K_q8_K;
    case CLLM_GGML_Q3_K: return k->dot_q3_K_q8_K;
    case CLLM_GGML_Q4_K: return k->dot_q4_K_q8_K;
    case CLLM_GGML_Q5_K: return k->dot_q5_K_q8_K;
    case CLLM_GGML_Q6_K: return k->dot_q6_K_q8_K;
    default: return NULL;
    }
}

size_t cllm_quant_q8_0_bytes(int64_t n) { return (size_t)(n / 32) * CLLM_Q8_0_BYTES; }

size_t cllm_quant_q8_K_bytes(int64_t n) { return (size_t)(n / CLLM_QK_K) * CLLM_Q8_K_BYTES; }

/* ---- threaded loops ----------------------------------------------------- */

/* Below this many weight elements a matrix-vector product stays on one
 * thread. A fork/join costs a few microseconds on an idle machine but up to
 * milliseconds when another process holds the second core (the worker waits
 * to be scheduled), and decoding runs ~5 of them per layer per token: with
 * the old 2^15 a 10M-parameter model decoded at 9.6 tokens/s on 2 threads
 * of a busy machine against 347 on 1. At 2^20 (a 1024 x 1024 matrix) small
 * models decode on one thread and large ones, memory-bound, still split. */
#define QUANT_PAR_MIN (1 << 20)

/* Rows go to the threads in GEMM_CHUNKS_PER_THREAD chunks per thread
 * (multiples of the 4-row VNNI tile, at least GEMM_MIN_CHUNK_ROWS), handed
 * out dynamically in one parallel region per call: on a shared machine a
 * thread that loses its core for a while leaves its remaining chunks to the
 * others instead of stalling the product, while chunks stay long enough for
 * decode to stream each one sequentially. Every output element is computed
 * by the same code whichever thread takes it, so results do not depend on
 * the thread count. */
#define GEMM_CHUNKS_PER_THREAD 4
#define GEMM_MIN_CHUNK_ROWS 32

static void gemm_split(const cllm_quant_kernels *k, uint32_t type, const uint8_t *W, size_t row_bytes, int rows,
                       int cols, const void *xq, size_t xq_stride, int n, float *out, size_t ld_out, int par) {
    int chunk = par ? (rows + GEMM_CHUNKS_PER_THREAD * omp_get_max_threads() - 1) /
                          (GEMM_CHUNKS_PER_THREAD * omp_get_max_threads())
                    : rows;
    chunk = chunk < GEMM_MIN_CHUNK_ROWS ? GEMM_MIN_CHUNK_ROWS : (chunk + 3) / 4 * 4;
    const int chunks = (rows + chunk - 1) / chunk;
#pragma omp parallel for schedule(dynamic, 1) if (par && chunks > 1)
    for (int c = 0; c < chunks; c++) {
        const int r0 = c * chunk, nr = rows - r0 < chunk ? rows - r0 : chunk;
        k->gemm_q8(type, W + (size_t)r0 * row_bytes, row_bytes, nr, xq, xq_stride, n, cols, out + r0, ld_out);
    }
}

void cllm_quant_gemm(const cllm_quant_kernels *k, uint32_t type, const void *W, size_t row_bytes, int rows,
                     int cols, const void *xq, size_t xq_stride, int n, float *out, size_t ld_out) {
    if (!k) k = cllm_quant_kernels_get();
    gemm_split(k, type, W, row_bytes, rows, cols, xq, xq_stride, n, out, ld_out,
               (int64_t)rows * cols * n >= QUANT_PAR_MIN);
}

void cllm_quant_matvec(const cllm_quant_kernels *k, uint32_t type, const void *W, size_t row_bytes,
                       int rows, int cols, const float *x, const void *xq, float *out) {
    if (!k) k = cllm_quant_kernels_get();
    const uint8_t *base = W;
    const int par = (int64_t)rows * cols >= QUANT_PAR_MIN;
    switch (type) {
    case CLLM_GGML_Q8_0:
    case CLLM_GGML_Q4_0: /* several rows share each activation load */
        gemm_split(k, type, base, row_bytes, rows, cols, xq, 0, 1, out, 1, par);
        break;
    case CLLM_GGML_F16:
#pragma omp parallel for schedule(static) if (par)
        for (int r = 0; r < rows; r++) out[r] = k->dot_f16_f32(base + (size_t)r * row_bytes, x, cols);
        break;
    case CLLM_GGML_BF16:
#pragma omp parallel for schedule(static) if (par)
        for (int r = 0; r < rows; r++) out[r] = k->dot_bf16_f32(base + (size_t)r * row_bytes, x, cols);
        break;
    case CLLM_GGML_F32:
#pragma omp parallel for schedule(static) if (par)
        for (int r = 0; r < rows; r++) out[r] = k->dot_f32_f32(base + (size_t)r * row_bytes, x, cols);
        break;
    default: { /* the other block types: one dot per row on xq */
        float (*dot)(const void *, const void *, int64_t) = cllm_quant_dot_fn(k, type);
        CLLM_ASSERT(dot != NULL);
#pragma omp parallel for schedule(static) if (par)
        for (int r = 0; r < rows; r++) out[r] = dot(base + (size_t)r * row_bytes, xq, cols);
        break;
    }
    }
}

void cllm_quant_dequant_rows(const cllm_quant_kernels *k, uint32_t type, const void *W,
                             size_t row_bytes, int rows, int cols, float *dst, size_t ld_dst) {
    if (!k) k = cllm_quant_kernels_get();
    const uint8_t *base = W;
    void (*fn)(const void *, float *, int64_t) =
        type == CLLM_GGML_Q8_0 ? k->dequant_q8_0
        : type == CLLM_GGML_Q4_0 ? k->dequant_q4_0
        : type == CLLM_GGML_F16 ? k->dequant_f16
        : type == CLLM_GGML_BF16 ? k->dequant_bf16
                                 : NULL;
    const int other = !fn && type != CLLM_GGML_F32;
#pragma omp parallel for schedule(static) if ((int64_t)rows * cols >= QUANT_PAR_MIN)
    for (int r = 0; r < rows; r++) {
        if (other)
            k->dequant_other(type, base + (size_t)r * row_bytes, dst + (size_t)r * ld_dst, cols);
        else if (fn)
            fn(base + (size_t)r * row_bytes, dst + (size_t)r * ld_dst, cols);
        else
            memcpy(dst + (size_t)r * ld_dst, base + (size_t)r * row_bytes, (size_t)cols * sizeof(float));
    }
}

/* ---- the x16 layout (quant.h) ------------------------------------------- */

static size_t x16_quant_bytes(uint32_t type) { return type == CLLM_GGML_Q4_0 ? 256 : 512; }

static size_t x16_scale_bytes(int cols) { return ((size_t)cols / 32 * 32 + 63) / 64 * 64; }

static size_t x16_group_bytes(uint32_t type, int cols) {
    if (type == CLLM_GGML_BF16) return (size_t)cols / 2 * 64;
    return x16_scale_bytes(cols) + (size_t)cols / 32 * x16_quant_bytes(type);
}

size_t cllm_quant_x16_bytes(uint32_t type, int groups, int cols) {
    return (size_t)groups * x16_group_bytes(type, cols);
}

static void x16_pack_bf16(const uint8_t *W, size_t row_bytes, int groups, int cols, uint8_t *dst) {
    const size_t gs = x16_group_bytes(CLLM_GGML_BF16, cols);
#pragma omp parallel for schedule(static)
    for (int g = 0; g < groups; g++)
        for (int j = 0; j < CLLM_QUANT_X16_ROWS; j++) {
            const uint8_t *row = W + ((size_t)g * CLLM_QUANT_X16_ROWS + (size_t)j) * row_bytes;
            for (int p = 0; p < cols / 2; p++) memcpy(dst + (size_t)g * gs + 64 * (size_t)p + 4 * (size_t)j, row + 4 * (size_t)p, 4);
        }
}

void cllm_quant_x16_pack(uint32_t type, const void *W, size_t row_bytes, int groups, int cols, void *dst) {
    if (type == CLLM_GGML_BF16) {
        x16_pack_bf16(W, row_bytes, groups, cols, dst);
        return;
    }
    const int q4 = type == CLLM_GGML_Q4_0;
    const size_t bb = q4 ? CLLM_Q4_0_BYTES : CLLM_Q8_0_BYTES, qb = x16_quant_bytes(type);
    const size_t gs = x16_group_bytes(type, cols);
    const int nb = cols / 32;
#pragma omp parallel for schedule(static)
    for (int g = 0; g < groups; g++) {
        uint8_t *S = (uint8_t *)dst + (size_t)g * gs, *P = S + x16_scale_bytes(cols);
        memset(S, 0, gs);
        for (int j = 0; j < CLLM_QUANT_X16_ROWS; j++) {
            const uint8_t *row = (const uint8_t *)W + ((size_t)g * CLLM_QUANT_X16_ROWS + (size_t)j) * row_bytes;
            for (int b = 0; b < nb; b++) {
                const uint8_t *blk = row + (size_t)b * bb;
                memcpy(S + (size_t)b * 32 + 2 * (size_t)j, blk, 2); /* fp16 scale */
                uint8_t *q = P + (size_t)b * qb + 4 * (size_t)j;
                for (int v = 0; v < (q4 ? 4 : 8); v++)
                    for (int i = 0; i < 4; i++) q[64 * v + i] = q4 ? blk[2 + 4 * v + i] : (uint8_t)(blk[2 + 4 * v + i] ^ 0x80);
            }
        }
    }
}

/* How an x16 product splits over the threads: pieces of *chunk groups
 * (whole four-group passes of the decode kernels), GEMM_CHUNKS_PER_THREAD
 * per thread when the product is large enough; one piece inside a caller's
 * parallel region (model decoding splits views itself, and smaller pieces
 * would leave the decode kernels single groups). Returns the piece count. */
static int x16_split(int groups, int cols, int n, int *chunk) {
    const int par = !omp_in_parallel() && (int64_t)groups * CLLM_QUANT_X16_ROWS * cols * n >= QUANT_PAR_MIN;
    const int per = GEMM_CHUNKS_PER_THREAD * omp_get_max_threads();
    const int c = par ? (groups + per - 1) / per : groups;
    *chunk = (c + 3) / 4 * 4;
    return (groups + *chunk - 1) / *chunk;
}

void cllm_quant_gemm_x16(const cllm_quant_kernels *k, uint32_t type, const void *P, int groups, int cols,
                         const void *xq, size_t xq_stride, int n, float *out, size_t ld_out) {
    if (!k) k = cllm_quant_kernels_get();
    CLLM_ASSERT(k->gemm_x16 != NULL);
    const int nb = cols / 32;
    /* per-call activation scales, then corrections (a few hundred KiB at most: 256 tokens x 96 blocks x 8) */
    float *dy = cllm_thread_scratch(CLLM_SCRATCH_PRODUCT_ACT, 2 * (size_t)n * (size_t)nb * sizeof(float));
    CLLM_ASSERT(dy != NULL);
    int32_t *corr = (int32_t *)(void *)(dy + (size_t)n * nb);
    const int32_t c = type == CLLM_GGML_Q4_0 ? 8 : 128;
    const size_t gs = x16_group_bytes(type, cols);
    int chunk;
    const int chunks = x16_split(groups, cols, n, &chunk), par = chunks > 1;
    /* one region: the per-block scales and corrections by token rows, then the products
     * (run serially, the prepass cost ~2% of a 2-thread Llama prompt chunk) */
#pragma omp parallel if (par)
    {
#pragma omp for schedule(static)
        for (int t = 0; t < n; t++) {
            const uint8_t *blk = (const uint8_t *)xq + (size_t)t * xq_stride;
            for (int b = 0; b < nb; b++, blk += CLLM_Q8_0_BYTES) {
                int32_t sum = 0;
                for (int i = 0; i < 32; i++) sum += (int8_t)blk[2 + i];
                dy[(size_t)t * nb + b] = cllm_fp16_to_fp32(cllm_get_le16(blk));
                corr[(size_t)t * nb + b] = -c * sum;
            }
        }
#pragma omp for schedule(dynamic, 1)
        for (int ci = 0; ci < chunks; ci++) {
            const int g0 = ci * chunk, ng = groups - g0 < chunk ? groups - g0 : chunk;
            k->gemm_x16(type, (const uint8_t *)P + (size_t)g0 * gs, ng, cols, xq, xq_stride, dy, corr, n,
                        out + (size_t)g0 * CLLM_QUANT_X16_ROWS, ld_out);
        }
    }
}

void cllm_quant_gemm_x16_bf16(const cllm_quant_kernels *k, const void *P, int groups, int cols, const float *x,
                              int n, float *out, size_t ld_out) {
    if (!k) k = cllm_quant_kernels_get();
    CLLM_ASSERT(k->gemm_x16_bf16 != NULL);
    uint16_t *xb = cllm_thread_scratch(CLLM_SCRATCH_PRODUCT_ACT, (size_t)n * (size_t)cols * sizeof(uint16_t));
    CLLM_ASSERT(xb != NULL);
    const size_t gs = x16_group_bytes(CLLM_GGML_BF16, cols);
    int chunk;
    const int chunks = x16_split(groups, cols, n, &chunk), par = chunks > 1;
    /* one region: the activations rounded by token rows, then the products (a serial
     * rounding loop was a quarter of a 2-thread prompt chunk) */
#pragma omp parallel if (par)
    {
#pragma omp for schedule(static)
        for (int t = 0; t < n; t++) k->round_bf16(x + (size_t)t * cols, xb + (size_t)t * cols, cols);
#pragma omp for schedule(dynamic, 1)
        for (int ci = 0; ci < chunks; ci++) {
            const int g0 = ci * chunk, ng = groups - g0 < chunk ? groups - g0 : chunk;
            k->gemm_x16_bf16((const uint8_t *)P + (size_t)g0 * gs, ng, cols, xb, n,
                             out + (size_t)g0 * CLLM_QUANT_X16_ROWS, ld_out);
        }
    }
}
