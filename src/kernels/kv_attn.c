/*
 * kv_attn.c: dispatch and scalar references of single-query attention over
 * a q8_0 or f16 KV cache head (cllm/kv_attn.h).
 *
 * Does: the reference (plain loops, the definition the AVX-512 version in
 * kv_attn_avx512.c and kv_attn_avx2.c are tested against) and the choice
 * between them, made once from the CPU features of cllm_kernels_get().
 * Does not: thread, or know the cache layout beyond one row stride.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "cllm/ggml_types.h"
#include "cllm/kernels.h"
#include "cllm/kv_attn.h"


void cllm_kv_attend_q8_0_avx512(float *out, float *scores, const void *q, const void *k, const void *v,
                                size_t row_bytes, int n, int HS, float scale); /* kv_attn_avx512.c */
void cllm_kv_attend_q8_0_avx2(float *out, float *scores, const void *q, const void *k, const void *v,
                              size_t row_bytes, int n, int HS, float scale); /* kv_attn_avx2.c */
void cllm_kv_attend_f16_avx512(float *out, float *scores, const void *q, const void *k, const void *v,
                               size_t row_bytes, int n, int HS, float scale); /* kv_attn_avx512.c */
void cllm_kv_attend_f16_avx2(float *out, float *scores, const void *q, const void *k, const void *v,
                             size_t row_bytes, int n, int HS, float scale); /* kv_attn_avx2.c */

static float scale_at(const uint8_t *blk) {
    uint16_t h;
    memcpy(&h, blk, sizeof h);
    return cllm_fp16_to_fp32(h);
}

/* scores[j] = exp(scores[j] - max) for j < n; returns 1 / their sum. */
static float exp_scores(float *scores, int n) {
    float mx = -INFINITY;
    for (int j = 0; j < n; j++) mx = scores[j] > mx ? scores[j] : mx;
    double sum = 0;
    for (int j = 0; j < n; j++) {
        scores[j] = expf(scores[j] - mx);
        sum += scores[j];
    }
    return (float)(1.0 / sum);
}

void cllm_kv_attend_q8_0_reference(float *out, float *scores, const void *q, const void *k, const void *v,
                                   size_t row_bytes, int n, int HS, float scale) {
    const int nb = HS / 32;
    const uint8_t *qb = q;
    for (int j = 0; j < n; j++) {
        const uint8_t *kb = (const uint8_t *)k + (size_t)j * row_bytes;
        float s = 0.0f;
        for (int b = 0; b < nb; b++) {
            const int8_t *kq = (const int8_t *)(kb + b * CLLM_Q8_0_BYTES + 2), *qq = (const int8_t *)(qb + b * CLLM_Q8_0_BYTES + 2);
            int32_t dot = 0;
            for (int t = 0; t < 32; t++) dot += (int32_t)kq[t] * (int32_t)qq[t];
            s += scale_at(kb + b * CLLM_Q8_0_BYTES) * scale_at(qb + b * CLLM_Q8_0_BYTES) * (float)dot;
        }
        scores[j] = s * scale;
    }
    const float inv = exp_scores(scores, n);
    for (int d = 0; d < HS; d++) out[d] = 0.0f;
    for (int j = 0; j < n; j++) {
        const uint8_t *vb = (const uint8_t *)v + (size_t)j * row_bytes;
        const float p = scores[j] * inv;
        for (int b = 0; b < nb; b++) {
            const float w = p * scale_at(vb + b * CLLM_Q8_0_BYTES);
            const int8_t *vq = (const int8_t *)(vb + b * CLLM_Q8_0_BYTES + 2);
            for (int t = 0; t < 32; t++) out[b * 32 + t] += w * (float)vq[t];
        }
    }
}

void cllm_kv_attend_f16_reference(float *out, float *scores, const void *q, const void *k, const void *v,
                                  size_t row_bytes, int n, int HS, float scale) {
    const float *qf = q;
    for (int j = 0; j < n; j++) {
        const uint8_t *kb = (const uint8_t *)k + (size_t)j * row_bytes;
        float s = 0.0f;
        for (int d = 0; d < HS; d++) s += qf[d] * scale_at(kb + 2 * d);
        scores[j] = s * scale;
    }
    const float inv = exp_scores(scores, n);
    for (int d = 0; d < HS; d++) out[d] = 0.0f;
    for (int j = 0; j < n; j++) {
        const uint8_t *vb = (const uint8_t *)v + (size_t)j * row_bytes;
        const float p = scores[j] * inv;
        for (int d = 0; d < HS; d++) out[d] += p * scale_at(vb + 2 * d);
    }
}

/* The kernels this CPU runs, chosen once: [0] q8_0, [1] f16. */
static cllm_kv_attend_fn chosen[2];
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static int isa_allowed(unsigned feature) {
    const cllm_kernels_table *t = cllm_kernels_get();
    return !t->reference && (t->cpu_features & feature);
}

cllm_kv_attend_fn cllm_kv_attend_q8_0_avx512_get(void) {
    return isa_allowed(CLLM_CPU_AVX512) ? cllm_kv_attend_q8_0_avx512 : NULL;
}

cllm_kv_attend_fn cllm_kv_attend_q8_0_avx2_get(void) {
    return isa_allowed(CLLM_CPU_AVX2) ? cllm_kv_attend_q8_0_avx2 : NULL;
}

cllm_kv_attend_fn cllm_kv_attend_f16_avx512_get(void) {
    return isa_allowed(CLLM_CPU_AVX512) ? cllm_kv_attend_f16_avx512 : NULL;
}

cllm_kv_attend_fn cllm_kv_attend_f16_avx2_get(void) {
    return isa_allowed(CLLM_CPU_AVX2) ? cllm_kv_attend_f16_avx2 : NULL;
}

static void choose(void) {
    cllm_kv_attend_fn f = cllm_kv_attend_q8_0_avx512_get();
    if (!f) f = cllm_kv_attend_q8_0_avx2_get();
    chosen[0] = f ? f : cllm_kv_attend_q8_0_reference;
    f = cllm_kv_attend_f16_avx512_get();
    if (!f) f = cllm_kv_attend_f16_avx2_get();
    chosen[1] = f ? f : cllm_kv_attend_f16_reference;
}

void cllm_kv_attend_q8_0(float *out, float *scores, const void *q, const void *k, const void *v, size_t row_bytes,
                         int n, int HS, float scale) {
    pthread_once(&chosen_once, choose);
    chosen[0](out, scores, q, k, v, row_bytes, n, HS, scale);
}

void cllm_kv_attend_f16(float *out, float *scores, const float *q, const void *k, const void *v, size_t row_bytes,
                        int n, int HS, float scale) {
    pthread_once(&chosen_once, choose);
    chosen[1](out, scores, q, k, v, row_bytes, n, HS, scale);
}

const char *cllm_kv_attend_name(void) {
    pthread_once(&chosen_once, choose);
    return chosen[0] == cllm_kv_attend_q8_0_reference ? "reference"
           : chosen[0] == cllm_kv_attend_q8_0_avx2   ? "avx2"
                                                      : "avx512";
}
