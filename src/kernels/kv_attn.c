/*
 * kv_attn.c: dispatch and scalar references of single-query attention over
 * a q8_0, f16 or f32 KV cache (cllm/kernels/kv_attn.h).
 *
 * Does: the references (one set of plain loops over per-type row dot and
 * row axpy, the definition the versions in kv_attn_avx512.c and
 * kv_attn_avx2.c are tested against) and the entry points, which call the
 * implementation dispatch.c chose (cllm_kernels_get()).
 * Does not: thread, or know the cache layout beyond one row stride.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cllm/formats/ggml_types.h"
#include "cllm/kernels/kernels.h"
#include "cllm/kernels/kv_attn.h"


static float scale_at(const uint8_t *blk) {
    uint16_t h;
    memcpy(&h, blk, sizeof h);
    return cllm_fp16_to_fp32(h);
}

/* What the reference needs of a cache type: the dot product of the query
 * with one cached key row, and out[HS] += w * one cached value row. */
typedef float (*row_dot_fn)(const void *q, const uint8_t *row, int HS);
typedef void (*row_axpy_fn)(float *out, float w, const uint8_t *row, int HS);

static float dot_q8_0(const void *q, const uint8_t *row, int HS) {
    const uint8_t *qb = q;
    float s = 0.0f;
    for (int b = 0; b < HS / 32; b++) {
        const int8_t *kq = (const int8_t *)(row + b * CLLM_Q8_0_BYTES + 2), *qq = (const int8_t *)(qb + b * CLLM_Q8_0_BYTES + 2);
        int32_t dot = 0;
        for (int t = 0; t < 32; t++) dot += (int32_t)kq[t] * (int32_t)qq[t];
        s += scale_at(row + b * CLLM_Q8_0_BYTES) * scale_at(qb + b * CLLM_Q8_0_BYTES) * (float)dot;
    }
    return s;
}

static void axpy_q8_0(float *out, float w, const uint8_t *row, int HS) {
    for (int b = 0; b < HS / 32; b++) {
        const float wd = w * scale_at(row + b * CLLM_Q8_0_BYTES);
        const int8_t *vq = (const int8_t *)(row + b * CLLM_Q8_0_BYTES + 2);
        for (int t = 0; t < 32; t++) out[b * 32 + t] += wd * (float)vq[t];
    }
}

static float dot_f16(const void *q, const uint8_t *row, int HS) {
    const float *qf = q;
    float s = 0.0f;
    for (int d = 0; d < HS; d++) s += qf[d] * scale_at(row + 2 * d);
    return s;
}

static void axpy_f16(float *out, float w, const uint8_t *row, int HS) {
    for (int d = 0; d < HS; d++) out[d] += w * scale_at(row + 2 * d);
}

static float dot_f32(const void *q, const uint8_t *row, int HS) {
    const float *qf = q, *kf = (const float *)(const void *)row;
    float s = 0.0f;
    for (int d = 0; d < HS; d++) s += qf[d] * kf[d];
    return s;
}

static void axpy_f32(float *out, float w, const uint8_t *row, int HS) {
    const float *vf = (const float *)(const void *)row;
    for (int d = 0; d < HS; d++) out[d] += w * vf[d];
}

/* The reference for any cache type: scores, softmax, value sum, in plain loops. */
static void attend_reference(float *out, float *scores, const void *q, const void *k, const void *v,
                             size_t row_bytes, int n, int HS, float scale, row_dot_fn dot, row_axpy_fn axpy) {
    float mx = -INFINITY;
    for (int j = 0; j < n; j++) {
        scores[j] = dot(q, (const uint8_t *)k + (size_t)j * row_bytes, HS) * scale;
        if (scores[j] > mx) mx = scores[j];
    }
    double sum = 0;
    for (int j = 0; j < n; j++) {
        scores[j] = expf(scores[j] - mx);
        sum += scores[j];
    }
    const float inv = (float)(1.0 / sum);
    for (int d = 0; d < HS; d++) out[d] = 0.0f;
    for (int j = 0; j < n; j++) axpy(out, scores[j] * inv, (const uint8_t *)v + (size_t)j * row_bytes, HS);
}

void cllm_kv_attend_q8_0_reference(float *out, float *scores, const void *q, const void *k, const void *v,
                                   size_t row_bytes, int n, int HS, float scale) {
    attend_reference(out, scores, q, k, v, row_bytes, n, HS, scale, dot_q8_0, axpy_q8_0);
}

void cllm_kv_attend_f16_reference(float *out, float *scores, const void *q, const void *k, const void *v,
                                  size_t row_bytes, int n, int HS, float scale) {
    attend_reference(out, scores, q, k, v, row_bytes, n, HS, scale, dot_f16, axpy_f16);
}

/* One query head at a time over the same plain loops. */
void cllm_kv_attend_f32_reference(float *out, float *scores, size_t ld_scores, const float *q, const float *k,
                                  const float *v, size_t row_stride, int n, int n_kv, int group, int HS, float scale) {
    const size_t row_bytes = row_stride * sizeof(float);
    for (int h = 0; h < n_kv * group; h++) {
        const size_t ko = (size_t)(h / group) * (size_t)HS;
        attend_reference(out + (size_t)h * HS, scores + (size_t)h * ld_scores, q + (size_t)h * HS, k + ko, v + ko,
                         row_bytes, n, HS, scale, dot_f32, axpy_f32);
    }
}

/* ---- entry points: through the dispatch table (dispatch.c) ---- */

void cllm_kv_attend_q8_0(float *out, float *scores, const void *q, const void *k, const void *v, size_t row_bytes,
                         int n, int HS, float scale) {
    cllm_kernels_get()->kv_attend_q8_0(out, scores, q, k, v, row_bytes, n, HS, scale);
}

void cllm_kv_attend_f16(float *out, float *scores, const float *q, const void *k, const void *v, size_t row_bytes,
                        int n, int HS, float scale) {
    cllm_kernels_get()->kv_attend_f16(out, scores, q, k, v, row_bytes, n, HS, scale);
}

void cllm_kv_attend_f32(float *out, float *scores, size_t ld_scores, const float *q, const float *k, const float *v,
                        size_t row_stride, int n, int n_kv, int group, int HS, float scale) {
    cllm_kernels_get()->kv_attend_f32(out, scores, ld_scores, q, k, v, row_stride, n, n_kv, group, HS, scale);
}

const char *cllm_kv_attend_name(void) { return cllm_kernels_get()->kv_attend_name; }
