/*
 * attention.c: causal multi-head self-attention with grouped-query heads
 * (Vaswani et al. 2017; GQA: Ainslie et al. 2023), forward and backward.
 *
 * Layout (cllm/layers.h): qkv[B,T,(NH+2*NKV)*HS] packs per token NH query
 * heads, then NKV key heads, then NKV value heads; query head h reads kv head
 * h / (NH/NKV). att[B,NH,T,T] holds the softmax probabilities (upper triangle
 * zero). Scores are scaled by 1/sqrt(HS).
 * Forward parallelises over (b, h). Backward parallelises over (b, kv head):
 * every query head of a group adds into the same dk/dv rows, so one thread
 * owns a whole group and no two threads write the same element.
 * Does not: use a KV cache (incremental decoding lives in the model) or
 * flash-style tiling; plain loops are enough for T <= 1024.
 */
#include "cllm/layers.h"
#include "cllm/status.h"
#include "layer_real.h"

void LAYER_FN(cllm_attention_forward)(real *out, real *att, const real *qkv, int B, int T,
                                      int NH, int NKV, int HS) {
    size_t S = (size_t)(NH + 2 * NKV) * HS; /* qkv row stride */
    CLLM_ASSERT(NKV > 0 && NH % NKV == 0);
    int group = NH / NKV;
    real scale = R(1) / R_SQRT((real)HS);
#pragma omp parallel for collapse(2) schedule(dynamic) if ((long)B * NH * T * T * HS >= LAYER_PAR_MIN)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            int g = h / group;
            const real *base = qkv + (size_t)b * T * S;
            for (int t = 0; t < T; t++) {
                const real *q = base + (size_t)t * S + (size_t)h * HS;
                real *a = att + (((size_t)b * NH + h) * T + t) * T;
                real maxv = -INFINITY;
                for (int t2 = 0; t2 <= t; t2++) {
                    const real *k = base + (size_t)t2 * S + (size_t)(NH + g) * HS;
                    real dot = 0;
                    for (int i = 0; i < HS; i++) dot += q[i] * k[i];
                    a[t2] = dot * scale;
                    if (a[t2] > maxv) maxv = a[t2];
                }
                real sum = 0;
                for (int t2 = 0; t2 <= t; t2++) {
                    a[t2] = R_EXP(a[t2] - maxv);
                    sum += a[t2];
                }
                real inv = R(1) / sum;
                for (int t2 = 0; t2 <= t; t2++) a[t2] *= inv;
                for (int t2 = t + 1; t2 < T; t2++) a[t2] = 0;
                real *o = out + ((size_t)b * T + t) * NH * HS + (size_t)h * HS;
                for (int i = 0; i < HS; i++) o[i] = 0;
                for (int t2 = 0; t2 <= t; t2++) {
                    const real *v = base + (size_t)t2 * S + (size_t)(NH + NKV + g) * HS;
                    real w = a[t2];
                    for (int i = 0; i < HS; i++) o[i] += w * v[i];
                }
            }
        }
    }
}

void LAYER_FN(cllm_attention_backward)(real *dqkv, real *datt, const real *dout,
                                       const real *att, const real *qkv, int B, int T, int NH,
                                       int NKV, int HS) {
    size_t S = (size_t)(NH + 2 * NKV) * HS;
    CLLM_ASSERT(NKV > 0 && NH % NKV == 0);
    int group = NH / NKV;
    real scale = R(1) / R_SQRT((real)HS);
#pragma omp parallel for collapse(2) schedule(dynamic) if ((long)B * NH * T * T * HS >= LAYER_PAR_MIN)
    for (int b = 0; b < B; b++) {
        for (int g = 0; g < NKV; g++) {
            const real *base = qkv + (size_t)b * T * S;
            real *dbase = dqkv + (size_t)b * T * S;
            for (int h = g * group; h < (g + 1) * group; h++) {
                for (int t = 0; t < T; t++) {
                    const real *a = att + (((size_t)b * NH + h) * T + t) * T;
                    real *da = datt + (((size_t)b * NH + h) * T + t) * T;
                    const real *d = dout + ((size_t)b * T + t) * NH * HS + (size_t)h * HS;
                    /* out = att @ v: datt = dout . v, dv += att * dout. */
                    for (int t2 = 0; t2 <= t; t2++) {
                        const real *v = base + (size_t)t2 * S + (size_t)(NH + NKV + g) * HS;
                        real *dv = dbase + (size_t)t2 * S + (size_t)(NH + NKV + g) * HS;
                        real dot = 0, w = a[t2];
                        for (int i = 0; i < HS; i++) {
                            dot += d[i] * v[i];
                            dv[i] += w * d[i];
                        }
                        da[t2] = dot;
                    }
                    for (int t2 = t + 1; t2 < T; t2++) da[t2] = 0;
                    /* softmax backward: dpre = att * (datt - sum(att * datt)),
                     * stored back into datt. */
                    real s = 0;
                    for (int t2 = 0; t2 <= t; t2++) s += a[t2] * da[t2];
                    for (int t2 = 0; t2 <= t; t2++) da[t2] = a[t2] * (da[t2] - s);
                    /* pre = scale * q . k: dq += scale dpre k, dk += scale dpre q. */
                    const real *q = base + (size_t)t * S + (size_t)h * HS;
                    real *dq = dbase + (size_t)t * S + (size_t)h * HS;
                    for (int t2 = 0; t2 <= t; t2++) {
                        const real *k = base + (size_t)t2 * S + (size_t)(NH + g) * HS;
                        real *dk = dbase + (size_t)t2 * S + (size_t)(NH + g) * HS;
                        real w = da[t2] * scale;
                        for (int i = 0; i < HS; i++) {
                            dq[i] += w * k[i];
                            dk[i] += w * q[i];
                        }
                    }
                }
            }
        }
    }
}
