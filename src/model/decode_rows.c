/*
 * decode_rows.c: one forward pass over rows of several KV slots where a slot
 * may appear on several consecutive positions (cllm_model_decode_rows): the
 * prompts of a batch of sequences prefilled together (RL rollouts), so every
 * projection is one GEMM over all the prompts' tokens instead of one per
 * prompt. Each row's key/value is stored in its slot before attention, and
 * each row attends to its slot's positions 0..pos, so a prompt's later
 * tokens see its earlier ones in the same call. Logits are computed only
 * for the rows asked for (a prefill needs each prompt's last one).
 *
 * Works with either cache type (through model_kv_store / model_kv_attend_rows).
 * Does not: sample, or chunk more than max_seq rows (the caller does).
 */
#include <string.h>

#include "cllm/layers.h"
#include "model_internal.h"

cllm_status cllm_model_decode_rows(cllm_model *m, int n, const int *slots, const int32_t *tokens, const int *pos,
                                   const unsigned char *want, const float **logits, int *n_logits, cllm_error *err) {
    const cllm_model_config *c = &m->cfg;
    if (m->opts.kv_slots <= 0 || !m->kv_len)
        return cllm_error_set(err, CLLM_ERR_ARG, "model decode rows: the model was created without a KV cache");
    if (n < 1 || n > m->opts.max_seq)
        return cllm_error_set(err, CLLM_ERR_LIMIT, "model decode rows: %d rows outside [1, max_seq = %d]", n,
                              m->opts.max_seq);
    if (!slots || !tokens || !pos) return cllm_error_set(err, CLLM_ERR_ARG, "model decode rows: NULL argument");
    for (int i = 0; i < n; i++) {
        const int s = slots[i];
        if (s < 0 || s >= m->opts.kv_slots)
            return cllm_error_set(err, CLLM_ERR_ARG, "model decode rows: slots[%d] = %d outside [0, %d)", i, s,
                                  m->opts.kv_slots);
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return cllm_error_set(err, CLLM_ERR_ARG, "model decode rows: tokens[%d] = %d is outside [0, %d)", i,
                                  (int)tokens[i], c->vocab_size);
        if (pos[i] < 0 || pos[i] >= m->opts.kv_context)
            return cllm_error_set(err, CLLM_ERR_LIMIT, "model decode rows: pos[%d] = %d outside the %d-position cache",
                                  i, pos[i], m->opts.kv_context);
        /* the slot's previous row in this call, if any, must be the position just before */
        int prev = -1;
        for (int k = i - 1; k >= 0 && prev < 0; k--)
            if (slots[k] == s) prev = k;
        if (prev >= 0 ? pos[i] != pos[prev] + 1 : pos[i] > m->kv_len[s])
            return cllm_error_set(err, CLLM_ERR_ARG,
                                  "model decode rows: pos[%d] = %d for slot %d does not continue its %s (%d)", i,
                                  pos[i], s, prev >= 0 ? "previous row" : "cache", prev >= 0 ? pos[prev] : m->kv_len[s]);
    }
    model_kv *kv = &m->kv;
    const size_t C = (size_t)c->n_embd, QKV = (size_t)m->QKV;
    model_global_weights gw;
    model_global_view(m, m->params, &gw);
    const float *pos_table = c->pos == CLLM_POS_LEARNED ? gw.pos_embd
                             : c->pos == CLLM_POS_SINUSOIDAL ? m->consts : NULL;
    for (int i = 0; i < n; i++)
        model_infer_embed(m, kv->x + (size_t)i * C, &tokens[i], gw.tok_embd, pos_table, 1, pos[i]);
    for (int l = 0; l < c->n_layer; l++) {
        model_layer_weights w;
        model_layer_view(m, m->params, l, &w);
        model_norm_forward(m, kv->h, kv->mean, kv->rstd, kv->x, w.attn_norm_w, w.attn_norm_b, n);
        model_infer_linear(m, l, LIN_QKV, kv->qkv, kv->h, w.qkv_w, w.qkv_b, n, c->n_embd, m->QKV);
        for (int i = 0; i < n; i++) {
            float *row = kv->qkv + (size_t)i * QKV;
            if (c->pos == CLLM_POS_ROPE) {
                cllm_rope_forward(row, 1, 1, c->n_head, m->HS, QKV, pos[i], c->rope_theta);
                cllm_rope_forward(row + (size_t)c->n_head * m->HS, 1, 1, c->n_kv_head, m->HS, QKV, pos[i],
                                  c->rope_theta);
            }
            model_kv_store(m, l, slots[i], pos[i], row + (size_t)c->n_head * m->HS);
        }
        model_kv_attend_rows(m, l, kv->atty, kv->qkv, slots, pos, n);
        model_infer_block_tail(m, l, &w, n);
    }
    /* final norm and output head on the wanted rows only, gathered in order */
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!want || want[i]) {
            if (k != i) memmove(kv->x + (size_t)k * C, kv->x + (size_t)i * C, C * sizeof(float));
            k++;
        }
    if (k > 0) {
        model_norm_forward(m, kv->h, kv->mean, kv->rstd, kv->x, gw.out_norm_w, gw.out_norm_b, k);
        model_infer_linear(m, -1, LIN_OUTPUT, kv->logits, kv->h, gw.output, NULL, k, c->n_embd, c->vocab_size);
    }
    for (int i = 0; i < n; i++) m->kv_len[slots[i]] = pos[i] + 1; /* a slot's last row is its furthest */
    if (logits) *logits = kv->logits;
    if (n_logits) *n_logits = k;
    return CLLM_OK;
}
