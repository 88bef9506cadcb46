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
 * float rounding; tests/test_server_batch.c). Not here: prompt chunks (use
 * cllm_model_decode), sampling.
 */
#include <math.h>
#include <string.h>

#include "cllm/layers.h"
#include "model_internal.h"

/* Attention of every row's query (row i: slot base offset bases[i] into the
 * layer's K/V caches, position pos[i]) against its own slot's cache.
 * out[n, NH*HS], qkv[n, QKV]. One parallel region over heads per layer (not
 * one per row): a fork/join costs microseconds, far more when the other core
 * is busy, and small models would spend their time there. */
void model_attention_rows(cllm_model *m, float *out, const float *qkv, const float *kcache, const float *vcache,
                          const size_t *bases, const int *pos, int n) {
    const int NH = m->cfg.n_head, NKV = m->cfg.n_kv_head, HS = m->HS, KVW = NKV * HS;
    const int group = NH / NKV;
    const size_t ctx = (size_t)m->opts.kv_context, QKV = (size_t)m->QKV;
    const float scale = 1.0f / sqrtf((float)HS);
    long work = 0;
    for (int i = 0; i < n; i++) work += (long)(pos[i] + 1) * NH * HS;
#pragma omp parallel for schedule(static) if (work >= 16384)
    for (int h = 0; h < NH; h++) {
        float *sc = m->kv.scores + (size_t)h * ctx;
        const int kvh = h / group;
        for (int i = 0; i < n; i++) {
            const int p = pos[i];
            const float *qh = qkv + (size_t)i * QKV + (size_t)h * HS;
            const float *kc = kcache + bases[i], *vc = vcache + bases[i];
            float mx = -INFINITY;
            for (int j = 0; j <= p; j++) {
                const float *k = kc + (size_t)j * KVW + (size_t)kvh * HS;
                float s = 0.0f;
                for (int d = 0; d < HS; d++) s += qh[d] * k[d];
                s *= scale;
                sc[j] = s;
                if (s > mx) mx = s;
            }
            float sum = 0.0f;
            for (int j = 0; j <= p; j++) {
                sc[j] = expf(sc[j] - mx);
                sum += sc[j];
            }
            const float inv = 1.0f / sum;
            float *o = out + (size_t)i * (size_t)(NH * HS) + (size_t)h * HS;
            for (int d = 0; d < HS; d++) o[d] = 0.0f;
            for (int j = 0; j <= p; j++) {
                const float *v = vc + (size_t)j * KVW + (size_t)kvh * HS;
                const float wgt = sc[j] * inv;
                for (int d = 0; d < HS; d++) o[d] += wgt * v[d];
            }
        }
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
    model_kv *kv = &m->kv;
    const size_t C = (size_t)c->n_embd, QKV = (size_t)m->QKV;
    model_global_weights gw;
    model_global_view(m, m->params, &gw);
    const float *pos_table = c->pos == CLLM_POS_LEARNED ? gw.pos_embd
                             : c->pos == CLLM_POS_SINUSOIDAL ? m->consts : NULL;
    for (int i = 0; i < n; i++) model_infer_embed(m, kv->x + (size_t)i * C, &tokens[i], gw.tok_embd, pos_table, 1, pos[i]);
    for (int l = 0; l < c->n_layer; l++) {
        model_layer_weights w;
        model_layer_view(m, m->params, l, &w);
        model_norm_forward(m, kv->h, kv->mean, kv->rstd, kv->x, w.attn_norm_w, w.attn_norm_b, n);
        model_infer_linear(m, l, QM_QKV, kv->qkv, kv->h, w.qkv_w, w.qkv_b, n, c->n_embd, m->QKV);
        for (int i = 0; i < n; i++) {
            float *row = kv->qkv + (size_t)i * QKV;
            if (c->pos == CLLM_POS_ROPE) {
                cllm_rope_forward(row, 1, 1, c->n_head, m->HS, QKV, pos[i], c->rope_theta);
                cllm_rope_forward(row + (size_t)c->n_head * m->HS, 1, 1, c->n_kv_head, m->HS, QKV, pos[i],
                                  c->rope_theta);
            }
            model_kv_store(m, l, slots[i], pos[i], row + (size_t)c->n_head * m->HS);
        }
        model_kv_attend_rows(m, l, kv->atty, kv->qkv, slots, pos, n); /* f32 or q8_0 cache (kv_cache.c) */
        model_infer_block_tail(m, l, &w, n);
    }
    model_norm_forward(m, kv->h, kv->mean, kv->rstd, kv->x, gw.out_norm_w, gw.out_norm_b, n);
    model_infer_linear(m, -1, QM_OUTPUT, kv->logits, kv->h, gw.output, NULL, n, c->n_embd, c->vocab_size);
    for (int i = 0; i < n; i++) m->kv_len[slots[i]] = pos[i] + 1;
    if (logits) *logits = kv->logits;
    return CLLM_OK;
}
