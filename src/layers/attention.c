/*
 * attention.c: causal multi-head self-attention with grouped-query heads
 * (Vaswani et al. 2017; GQA: Ainslie et al. 2023), forward and backward.
 *
 * Layout (cllm/layers/layers.h): qkv[B,T,(NH+2*NKV)*HS] packs per token NH query
 * heads, then NKV key heads, then NKV value heads; query head h reads kv head
 * h / (NH/NKV). att[B,NH,T,T] holds the softmax probabilities (upper triangle
 * zero). Scores are scaled by 1/sqrt(HS).
 *
 * Each head's products are GEMMs on strided views of qkv (row stride
 * (NH+2*NKV)*HS), so the heavy work runs in the GEMM kernel and nothing is
 * copied; the causal upper triangle is computed and then zeroed, wasting up
 * to half of the score FLOPs, which still beats scalar loops by far
 * (bench/bench_layers.c). Per head:
 *   forward:  att = softmax_causal(scale Q K^T);  out = att V
 *   backward: dP = dO V^T;  dV += att^T dO;  dS = att * (dP - rowsum(att*dP));
 *             dQ += scale dS K;  dK += scale dS^T Q      (dS stored in datt)
 * Forward parallelises over (b, h); backward over (b, kv head), because all
 * query heads of a group add into the same dK/dV rows: one thread owns a
 * group, so no two threads write the same element and the result does not
 * depend on the thread count. The GEMMs inside run single-threaded (OpenMP
 * nesting is off).
 * Segments (packed sequences): the _seg variants take seg[B,T] (NULL = none);
 * position t then attends only to t2 <= t in the same contiguous run of
 * equal ids, so several examples share a row without seeing each other.
 * Sliding window (Mistral; window > 0): position t attends only to
 * t2 > t - window as well (llama.cpp's standard SWA mask: masked when
 * t - t2 >= window).
 * Does not: use a KV cache (incremental decoding lives in the model) or
 * flash-style tiling; T x T scores per head are fine for T <= 1024.
 */
#include "cllm/layers/layers.h"
#include "cllm/core/status.h"
#include "layer_real.h"

/* First position of the run of equal segment ids that contains t (0 without segments). */
static inline int seg_start(const int32_t *sg, int t, int prev_start) {
    if (!sg || t == 0) return 0;
    return sg[t] == sg[t - 1] ? prev_start : t;
}

/* First key position query t sees: its run's start, or later inside a window. */
static inline int key_start(int s0, int t, int window) {
    return window > 0 && t - window + 1 > s0 ? t - window + 1 : s0;
}

void LAYER_FN(cllm_attention_forward_seg)(real *out, real *att, const real *qkv, const int32_t *seg, int window,
                                          int B, int T, int NH, int NKV, int HS) {
    CLLM_ASSERT(NKV > 0 && NH % NKV == 0);
    int S = (NH + 2 * NKV) * HS; /* qkv row stride */
    int group = NH / NKV;
    real scale = R(1) / R_SQRT((real)HS);
#pragma omp parallel for collapse(2) schedule(dynamic) if ((long)B * NH * T * T * HS >= LAYER_PAR_MIN)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            int g = h / group;
            const real *base = qkv + (size_t)b * T * S;
            const real *q = base + (size_t)h * HS, *k = base + (size_t)(NH + g) * HS;
            const real *v = base + (size_t)(NH + NKV + g) * HS;
            real *a = att + ((size_t)b * NH + h) * T * T;
            /* a[T,T] = scale * q[T,HS] k[T,HS]^T (upper triangle discarded below) */
            LAYER_GEMM(0, 1, T, T, HS, scale, q, S, k, S, R(0), a, T);
            const int32_t *sg = seg ? seg + (size_t)b * T : NULL;
            for (int t = 0, s0 = 0; t < T; t++) {
                s0 = seg_start(sg, t, s0);
                const int k0 = key_start(s0, t, window);
                real *row = a + (size_t)t * T;
                real maxv = LAYER_VMAX(row + k0, (size_t)(t - k0) + 1);
                real inv = (real)(1.0 / LAYER_VEXP_SHIFT_SUM(row + k0, row + k0, maxv, (size_t)(t - k0) + 1));
                for (int t2 = 0; t2 < k0; t2++) row[t2] = 0;
                for (int t2 = k0; t2 <= t; t2++) row[t2] *= inv;
                for (int t2 = t + 1; t2 < T; t2++) row[t2] = 0;
            }
            /* out[T,HS] (row stride NH*HS) = a[T,T] v[T,HS] */
            LAYER_GEMM(0, 0, T, HS, T, R(1), a, T, v, S, R(0),
                       out + (size_t)b * T * NH * HS + (size_t)h * HS, NH * HS);
        }
    }
}

void LAYER_FN(cllm_attention_forward)(real *out, real *att, const real *qkv, int B, int T,
                                      int NH, int NKV, int HS) {
    LAYER_FN(cllm_attention_forward_seg)(out, att, qkv, NULL, 0, B, T, NH, NKV, HS);
}

void LAYER_FN(cllm_attention_backward_seg)(real *dqkv, real *datt, const real *dout, const real *att,
                                           const real *qkv, const int32_t *seg, int window, int B, int T,
                                           int NH, int NKV, int HS) {
    CLLM_ASSERT(NKV > 0 && NH % NKV == 0);
    int S = (NH + 2 * NKV) * HS;
    int group = NH / NKV;
    real scale = R(1) / R_SQRT((real)HS);
#pragma omp parallel for collapse(2) schedule(dynamic) if ((long)B * NH * T * T * HS >= LAYER_PAR_MIN)
    for (int b = 0; b < B; b++) {
        for (int g = 0; g < NKV; g++) {
            const real *base = qkv + (size_t)b * T * S;
            real *dbase = dqkv + (size_t)b * T * S;
            const real *k = base + (size_t)(NH + g) * HS, *v = base + (size_t)(NH + NKV + g) * HS;
            real *dk = dbase + (size_t)(NH + g) * HS, *dv = dbase + (size_t)(NH + NKV + g) * HS;
            for (int h = g * group; h < (g + 1) * group; h++) {
                const real *a = att + ((size_t)b * NH + h) * T * T;
                real *da = datt + ((size_t)b * NH + h) * T * T;
                const real *dO = dout + (size_t)b * T * NH * HS + (size_t)h * HS;
                const real *q = base + (size_t)h * HS;
                real *dq = dbase + (size_t)h * HS;
                /* out = att v:  datt = dO v^T,  dv += att^T dO */
                LAYER_GEMM(0, 1, T, T, HS, R(1), dO, NH * HS, v, S, R(0), da, T);
                LAYER_GEMM(1, 0, T, HS, T, R(1), a, T, dO, NH * HS, R(1), dv, S);
                /* softmax backward, in place: dS = att * (datt - sum(att * datt)) */
                const int32_t *sg = seg ? seg + (size_t)b * T : NULL;
                for (int t = 0, s0 = 0; t < T; t++) {
                    s0 = seg_start(sg, t, s0);
                    const int k0 = key_start(s0, t, window);
                    const real *arow = a + (size_t)t * T;
                    real *drow = da + (size_t)t * T;
                    real s = 0;
                    for (int t2 = k0; t2 <= t; t2++) s += arow[t2] * drow[t2];
                    for (int t2 = 0; t2 < k0; t2++) drow[t2] = 0;
                    for (int t2 = k0; t2 <= t; t2++) drow[t2] = arow[t2] * (drow[t2] - s);
                    for (int t2 = t + 1; t2 < T; t2++) drow[t2] = 0;
                }
                /* scores = scale q k^T:  dq += scale dS k,  dk += scale dS^T q */
                LAYER_GEMM(0, 0, T, HS, T, scale, da, T, k, S, R(1), dq, S);
                LAYER_GEMM(1, 0, T, HS, T, scale, da, T, q, S, R(1), dk, S);
            }
        }
    }
}

void LAYER_FN(cllm_attention_backward)(real *dqkv, real *datt, const real *dout,
                                       const real *att, const real *qkv, int B, int T, int NH,
                                       int NKV, int HS) {
    LAYER_FN(cllm_attention_backward_seg)(dqkv, datt, dout, att, qkv, NULL, 0, B, T, NH, NKV, HS);
}
