/*
 * kv_attn_f32.h: the body of cllm_kv_attend_f32 (cllm/kernels/kv_attn.h), written
 * once in plain C with an OpenMP simd hint and compiled per ISA by
 * kv_attn_avx512.c and kv_attn_avx2.c (their -m flags make the compiler
 * vectorize the loops over HS), each passing its own vector exponential.
 * Private to src/kernels/; included only from files entered through the
 * run-time dispatch. The scalar reference is kv_attn.c's.
 *
 * Positions are the outer loop, so the cached rows stream through memory
 * once, in order (reading one head's slice of every row was bound by memory
 * latency). The dot product keeps 16 partial sums folded as a tree (not a
 * serial chain of 16 adds), so it differs from the reference by float
 * summation order only.
 */
#ifndef CLLM_KV_ATTN_F32_H
#define CLLM_KV_ATTN_F32_H

#include <math.h>
#include <stddef.h>

#define KV_F32_PREFETCH_ROWS 8 /* cached positions read ahead (as the q8_0 / f16 kernels do) */

static inline void kv_attend_f32_body(float *out, float *sc, size_t ctx, const float *q, const float *kc,
                                      const float *vc, size_t stride, int n, int nk, int G, int HS, float scale,
                                      double (*vexp_shift_sum)(float *, const float *, float, size_t)) {
    const int H = nk * G, p = n - 1;
    /* a slice of each cached row (some heads, rows a whole position apart): the hardware
     * prefetcher does not follow, so read KV_F32_PREFETCH_ROWS rows ahead (2 threads at depth
     * 512: +20%); whole rows stream and need no help (prefetching them cost 10% on 1 thread) */
    const size_t span = (size_t)nk * (size_t)HS * sizeof(float);
    const int ahead = span < stride * sizeof(float) ? KV_F32_PREFETCH_ROWS : 0;
    for (int j = 0; j <= p; j++) {
        const float *krow = kc + (size_t)j * stride;
        if (ahead && j + ahead <= p)
            for (size_t l = 0; l < span; l += 64) __builtin_prefetch((const char *)(krow + ahead * stride) + l);
        for (int h = 0; h < H; h++) {
            const float *qh = q + (size_t)h * HS, *k = krow + (size_t)(h / G) * HS;
            float acc[16] = {0};
            int d = 0;
            for (; d + 16 <= HS; d += 16)
                for (int l = 0; l < 16; l++) acc[l] += qh[d + l] * k[d + l];
            for (int w = 8; w > 0; w /= 2)
                for (int l = 0; l < w; l++) acc[l] += acc[l + w];
            float s = acc[0];
            for (; d < HS; d++) s += qh[d] * k[d];
            sc[(size_t)h * ctx + (size_t)j] = s * scale;
        }
    }
    /* softmax per head; the normalizer is applied to the scores here (the
     * same product p_j * inv the value loop used to form per weight) */
    for (int h = 0; h < H; h++) {
        float *sh = sc + (size_t)h * ctx;
        float mx = -INFINITY;
        for (int j = 0; j <= p; j++) mx = sh[j] > mx ? sh[j] : mx;
        const float inv = (float)(1.0 / vexp_shift_sum(sh, sh, mx, (size_t)p + 1));
        for (int j = 0; j <= p; j++) sh[j] *= inv;
    }
    for (int d = 0; d < H * HS; d++) out[d] = 0.0f;
    for (int j = 0; j <= p; j++) {
        const float *vrow = vc + (size_t)j * stride;
        if (ahead && j + ahead <= p)
            for (size_t l = 0; l < span; l += 64) __builtin_prefetch((const char *)(vrow + ahead * stride) + l);
        for (int h = 0; h < H; h++) {
            const float wgt = sc[(size_t)h * ctx + (size_t)j], *v = vrow + (size_t)(h / G) * HS;
            float *o = out + (size_t)h * HS;
#pragma omp simd
            for (int d = 0; d < HS; d++) o[d] += wgt * v[d];
        }
    }
}

#endif
