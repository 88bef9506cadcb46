/*
 * decode_batch.c: one decode step for several KV-cache slots at once
 * (continuous batching in the server).
 *
 * Row i feeds token tokens[i] of slot slots[i] at position pos[i]. The rows
 * share every weight: the QKV, attention-output, MLP and output-head
 * projections run as ONE [n, IC] x [IC, OC] product (model_infer_linear),
 * which reads each weight matrix once per step instead of once per slot:
 * that is where batching wins on a memory-bound decode. Positional
 * embeddings, RoPE, the cache write and attention are per row, each row
 * attending to its own slot's cached positions 0..pos[i].
 *
 * Gives the same logits as cllm_model_decode on each slot separately (up to
 * float rounding; tests/test_server_batch.c). The pass itself is
 * decode_rows.c's (this file checks the one-row-per-slot contract and holds
 * the f32 batched attention, model_attention_rows). Not here: prompt chunks
 * (use cllm_model_decode), sampling.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "cllm/kernels.h"
#include "cllm/layers.h"
#include "model_internal.h"

/* Heads of one row against its cached K/V: H = nk * G query heads, where
 * K/V head k (k < nk, at kc + k * HS of each cached row) serves query heads
 * [k * G, (k + 1) * G). out[H, HS] = softmax(q_h . k_j * scale, j <= p) v_j,
 * q[H, HS] contiguous, k_j = kc + j * stride (v_j likewise), sc[H, ctx]
 * scratch. Positions are the outer loop, so the cached rows stream through
 * memory once, in order (reading one head's slice of every row was bound
 * by memory latency). Compiled for AVX-512, AVX2 and the baseline, picked
 * at load time by the CPU (target_clones); the loops over HS vectorize (the
 * dot product's sum order differs from a scalar loop only by float
 * rounding) and the exponentials use the vector kernel. */
#define ATTN_PREFETCH_ROWS 8 /* cached positions read ahead (as the q8_0 / f16 kernels do) */

__attribute__((target_clones("avx512f", "avx2", "default"))) static void
attend_heads(float *out, const float *q, const float *kc, const float *vc, float *sc, int nk, int G, int p, int HS,
             size_t stride, size_t ctx, float scale) {
    const int H = nk * G;
    /* a slice of each cached row (some heads, rows a whole position apart): the hardware
     * prefetcher does not follow, so read ATTN_PREFETCH_ROWS rows ahead (2 threads at depth
     * 512: +20%); whole rows stream and need no help (prefetching them cost 10% on 1 thread) */
    const size_t span = (size_t)nk * (size_t)HS * sizeof(float);
    const int ahead = span < stride * sizeof(float) ? ATTN_PREFETCH_ROWS : 0;
    for (int j = 0; j <= p; j++) {
        const float *krow = kc + (size_t)j * stride;
        if (ahead && j + ahead <= p)
            for (size_t l = 0; l < span; l += 64) __builtin_prefetch((const char *)(krow + ahead * stride) + l);
        for (int h = 0; h < H; h++) {
            const float *qh = q + (size_t)h * HS, *k = krow + (size_t)(h / G) * HS;
            /* 16 partial sums folded as a tree, not a serial chain of 16 adds */
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
    float inv[H];
    for (int h = 0; h < H; h++) {
        float *sh = sc + (size_t)h * ctx;
        float mx = -INFINITY;
        for (int j = 0; j <= p; j++) mx = sh[j] > mx ? sh[j] : mx;
        inv[h] = (float)(1.0 / cllm_vexp_shift_sum(sh, sh, mx, (size_t)p + 1));
    }
    for (int d = 0; d < H * HS; d++) out[d] = 0.0f;
    for (int j = 0; j <= p; j++) {
        const float *vrow = vc + (size_t)j * stride;
        if (ahead && j + ahead <= p)
            for (size_t l = 0; l < span; l += 64) __builtin_prefetch((const char *)(vrow + ahead * stride) + l);
        for (int h = 0; h < H; h++) {
            const float wgt = sc[(size_t)h * ctx + (size_t)j] * inv[h], *v = vrow + (size_t)(h / G) * HS;
            float *o = out + (size_t)h * HS;
#pragma omp simd
            for (int d = 0; d < HS; d++) o[d] += wgt * v[d];
        }
    }
}

/* Attention of every row's query (row i: slot base offset bases[i] into the
 * layer's K/V caches, position pos[i]) against its own slot's cache.
 * out[n, NH*HS], qkv[n, QKV]. Work items are whole rows when there are at
 * least as many rows as threads, else (row, K/V head) pairs, so one row's
 * attention still spreads over the threads. One parallel region per layer
 * (a fork/join costs microseconds, far more when the other core is busy).
 * Thread t uses its own rows of m->kv.scores ([max(NH, max_seq), ctx]),
 * which bounds the thread count. */
/* Below this many query x cached-position x head-dim products (a few
 * microseconds vectorized) attention stays on the calling thread: a
 * fork/join costs microseconds when the other core is idle and much more
 * when it is busy. At 2^18 one decoded token of a 768-wide model attended
 * on one thread up to position 341, 7% of a 2-thread q4_0 decode step with
 * the other thread waiting; at 2^14 it splits from position ~21 (Llama
 * 110M q4_0, 2 threads: ~460 -> ~500 tokens/s). */
#define ATTN_PAR_MIN (1L << 14)

void model_attention_rows(cllm_model *m, float *out, const float *qkv, const float *kcache, const float *vcache,
                          const size_t *bases, const int *pos, int n) {
    const int NH = m->cfg.n_head, NKV = m->cfg.n_kv_head, HS = m->HS, KVW = NKV * HS;
    const int G = NH / NKV;
    const size_t ctx = (size_t)m->opts.kv_context, QKV = (size_t)m->QKV;
    const float scale = 1.0f / sqrtf((float)HS);
    const int scratch_rows = NH > m->opts.max_seq ? NH : m->opts.max_seq;
    int threads = omp_get_max_threads();
    const int nk = n >= threads ? NKV : 1; /* K/V heads per item */
    if (threads > scratch_rows / (nk * G)) threads = scratch_rows / (nk * G);
    long work = 0;
    for (int i = 0; i < n; i++) work += (long)(pos[i] + 1) * NH * HS;
    const int per_row = NKV / nk, items = n * per_row;
#pragma omp parallel for schedule(static) num_threads(threads) if (work >= ATTN_PAR_MIN && threads > 1)
    for (int it = 0; it < items; it++) {
        const int i = it / per_row, k0 = (it % per_row) * nk;
        float *sc = m->kv.scores + (size_t)omp_get_thread_num() * (size_t)(nk * G) * ctx;
        const size_t kvo = (size_t)k0 * (size_t)HS, qo = (size_t)k0 * (size_t)G * (size_t)HS;
        attend_heads(out + (size_t)i * (size_t)(NH * HS) + qo, qkv + (size_t)i * QKV + qo, kcache + bases[i] + kvo,
                     vcache + bases[i] + kvo, sc, nk, G, pos[i], HS, (size_t)KVW, ctx, scale);
    }
}

cllm_status cllm_model_decode_batch(cllm_model *m, int n, const int *slots, const int32_t *tokens,
                                    const int *pos, const float **logits, cllm_error *err) {
    const cllm_model_config *c = &m->cfg;
    if (m->opts.kv_slots <= 0)
        return cllm_error_set(err, CLLM_ERR_ARG, "model decode batch: the model was created without a KV cache");
    if (n < 1 || n > m->opts.max_seq)
        return cllm_error_set(err, CLLM_ERR_LIMIT, "model decode batch: %d rows outside [1, max_seq = %d]", n,
                              m->opts.max_seq);
    if (!slots || !tokens || !pos) return cllm_error_set(err, CLLM_ERR_ARG, "model decode batch: NULL argument");
    for (int i = 0; i < n; i++) {
        int s = slots[i];
        if (s < 0 || s >= m->opts.kv_slots)
            return cllm_error_set(err, CLLM_ERR_ARG, "model decode batch: slots[%d] = %d outside [0, %d)", i, s,
                                  m->opts.kv_slots);
        for (int k = 0; k < i; k++)
            if (slots[k] == s)
                return cllm_error_set(err, CLLM_ERR_ARG, "model decode batch: slot %d appears twice (rows %d and %d)",
                                      s, k, i);
        if (pos[i] < 0 || pos[i] > m->kv_len[s] || pos[i] >= m->opts.kv_context)
            return cllm_error_set(err, CLLM_ERR_ARG,
                                  "model decode batch: pos[%d] = %d invalid for slot %d (%d cached, context %d)", i,
                                  pos[i], s, m->kv_len[s], m->opts.kv_context);
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return cllm_error_set(err, CLLM_ERR_ARG, "model decode batch: tokens[%d] = %d is outside [0, %d)", i,
                                  (int)tokens[i], c->vocab_size);
    }
    /* one row per distinct slot is the simplest case of decode_rows */
    return cllm_model_decode_rows(m, n, slots, tokens, pos, NULL, logits, NULL, err);
}
