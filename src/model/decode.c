/*
 * decode.c: incremental decoding with the KV cache: every decode entry
 * point and the one pass over the blocks they share.
 *
 * A decode pass runs the same blocks as forward.c (same layer functions)
 * on n rows, row i being token tokens[i] of a KV slot at a position
 * (model_decode_rows): it appends each row's rotated key and value to its
 * slot's cache (kv_cache.c) before attention, and each row attends to its
 * slot's positions 0..its own, so later rows of a slot see earlier ones in
 * the same call. Logits are computed only for the rows asked for. So a
 * prompt can be fed in chunks and then one token at a time, and the logits
 * match a full forward pass up to float rounding (tests/test_model.c).
 *
 * The entry points differ only in the rows they accept:
 *   cllm_model_decode        a chunk of n consecutive positions of ONE slot
 *                            (a prompt chunk attends through GEMMs);
 *   cllm_model_decode_batch  one row per distinct slot (continuous batching
 *                            in the server): every projection is one
 *                            [n, IC] x [IC, OC] product, so each weight
 *                            matrix is read once per step instead of once
 *                            per slot, which is where batching wins on a
 *                            memory-bound decode (tests/test_server_batch.c);
 *   cllm_model_decode_rows   rows of several slots, a slot possibly on
 *                            consecutive positions: the prompts of a batch
 *                            of sequences prefilled together (RL rollouts).
 * Linear layers and the embedding go through model_infer_* (infer_linear.c),
 * on the f32 parameters or the weight views of a mapped GGUF. Embeddings
 * and RoPE run once per run of consecutive positions of a slot.
 * Not here: the cache layout and attention (kv_cache.c), sampling
 * (src/infer), dropout (inference only), more than max_seq rows per call.
 */
#include <string.h>

#include "cllm/layers/layers.h"
#include "model_internal.h"

/* End of the run of rows from i0: same slot, consecutive positions. */
static int run_end(const model_decode_rows *r, int i0) {
    int i = i0 + 1;
    while (i < r->n && model_row_slot(r, i) == model_row_slot(r, i0) &&
           model_row_pos(r, i) == model_row_pos(r, i - 1) + 1)
        i++;
    return i;
}

/* The pass over validated rows. Logits rows: those with want[i] set, in
 * order (want NULL: rows first_want..n-1). Leaves the final-norm output of
 * every row in m->kv.h (embed.c pools them) unless want gathers rows. */
static void decode_pass(cllm_model *m, const model_decode_rows *rows, const int32_t *tokens,
                        const unsigned char *want, int first_want, const float **logits, int *n_logits) {
    const cllm_model_config *c = &m->cfg;
    model_kv *kv = &m->kv;
    const int n = rows->n, NH = c->n_head, HS = m->HS;
    const size_t C = (size_t)c->n_embd, QKV = (size_t)m->QKV;
    model_global_weights gw;
    model_global_view(m, m->params, &gw);
    const float *pos_table = c->pos == CLLM_POS_LEARNED ? gw.pos_embd
                             : c->pos == CLLM_POS_SINUSOIDAL ? m->consts : NULL;
    for (int i0 = 0, i1; i0 < n; i0 = i1) {
        i1 = run_end(rows, i0);
        model_infer_embed(m, kv->x + (size_t)i0 * C, tokens + i0, gw.tok_embd, pos_table, i1 - i0,
                          model_row_pos(rows, i0));
    }
    for (int l = 0; l < c->n_layer; l++) {
        model_layer_weights w;
        model_layer_view(m, m->params, l, &w);
        /* attention branch */
        model_norm_forward(m, kv->h, kv->mean, kv->rstd, kv->x, w.attn_norm_w, w.attn_norm_b, n);
        model_infer_linear(m, l, LIN_QKV, kv->qkv, kv->h, w.qkv_w, w.qkv_b, n, c->n_embd, m->QKV);
        for (int i0 = 0, i1; i0 < n && c->pos == CLLM_POS_ROPE; i0 = i1) {
            i1 = run_end(rows, i0);
            model_rope(m, kv->qkv + (size_t)i0 * QKV, 1, i1 - i0, QKV, model_row_pos(rows, i0), 0);
        }
        for (int i = 0; i < n; i++)
            model_kv_store(m, l, model_row_slot(rows, i), model_row_pos(rows, i),
                           kv->qkv + (size_t)i * QKV + (size_t)NH * HS);
        model_kv_attend(m, l, kv->atty, kv->qkv, rows);
        model_infer_linear(m, l, LIN_ATTN_OUT, kv->proj, kv->atty, w.attn_out_w, w.attn_out_b, n, c->n_embd,
                           c->n_embd);
        cllm_residual_forward(kv->x, kv->x, kv->proj, (size_t)n * C);
        /* MLP branch */
        model_norm_forward(m, kv->h, kv->mean, kv->rstd, kv->x, w.ffn_norm_w, w.ffn_norm_b, n);
        model_infer_linear(m, l, LIN_FFN_UP, kv->fch, kv->h, w.ffn_up_w, w.ffn_up_b, n, c->n_embd, m->Hu);
        if (c->mlp == CLLM_MLP_SWIGLU)
            cllm_swiglu_forward(kv->fact, kv->fch, n, c->ffn_hidden);
        else
            cllm_gelu_forward(kv->fact, kv->fch, (size_t)n * (size_t)c->ffn_hidden);
        model_infer_linear(m, l, LIN_FFN_DOWN, kv->proj, kv->fact, w.ffn_down_w, w.ffn_down_b, n, c->ffn_hidden,
                           c->n_embd);
        cllm_residual_forward(kv->x, kv->x, kv->proj, (size_t)n * C);
    }
    /* final norm on every row, the output head on the wanted ones (gathered in order) */
    model_norm_forward(m, kv->h, kv->mean, kv->rstd, kv->x, gw.out_norm_w, gw.out_norm_b, n);
    const float *head_in = kv->h + (size_t)first_want * C;
    int k = n - first_want;
    if (want) {
        k = 0;
        for (int i = 0; i < n; i++)
            if (want[i]) {
                if (k != i) memmove(kv->h + (size_t)k * C, kv->h + (size_t)i * C, C * sizeof(float));
                k++;
            }
        head_in = kv->h;
    }
    if (k > 0)
        model_infer_linear(m, -1, LIN_OUTPUT, kv->logits, head_in, gw.output, NULL, k, c->n_embd, c->vocab_size);
    for (int i = 0; i < n; i++) m->kv_len[model_row_slot(rows, i)] = model_row_pos(rows, i) + 1; /* last row is furthest */
    if (logits) *logits = kv->logits;
    if (n_logits) *n_logits = k;
}

cllm_status cllm_model_decode(cllm_model *m, int slot, const int32_t *tokens, int n, int pos,
                              int all_logits, const float **logits, cllm_error *err) {
    const cllm_model_config *c = &m->cfg;
    if (m->opts.kv_slots <= 0)
        return cllm_error_set(err, CLLM_ERR_ARG, "model decode: the model was created without a KV cache (kv_slots = 0)");
    if (slot < 0 || slot >= m->opts.kv_slots)
        return cllm_error_set(err, CLLM_ERR_ARG, "model decode: slot %d outside [0, %d)", slot,
                              m->opts.kv_slots);
    if (n < 1 || n > m->opts.max_seq)
        return cllm_error_set(err, CLLM_ERR_LIMIT, "model decode: chunk of %d tokens outside [1, max_seq = %d]",
                              n, m->opts.max_seq);
    if (pos < 0 || pos > m->kv_len[slot])
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "model decode: pos %d is beyond the %d cached positions of slot %d", pos,
                              m->kv_len[slot], slot);
    if ((int64_t)pos + n > m->opts.kv_context)
        return cllm_error_set(err, CLLM_ERR_LIMIT,
                              "model decode: positions %d..%d exceed the cache context of %d", pos,
                              pos + n - 1, m->opts.kv_context);
    if (!tokens) return cllm_error_set(err, CLLM_ERR_ARG, "model decode: tokens is NULL");
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return cllm_error_set(err, CLLM_ERR_ARG, "model decode: tokens[%d] = %d is outside [0, %d)",
                                  i, (int)tokens[i], c->vocab_size);
    const model_decode_rows rows = {.n = n, .slots = NULL, .pos = NULL, .slot = slot, .pos0 = pos};
    decode_pass(m, &rows, tokens, NULL, all_logits ? 0 : n - 1, logits, NULL);
    return CLLM_OK;
}

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
    const model_decode_rows rows = {.n = n, .slots = slots, .pos = pos};
    decode_pass(m, &rows, tokens, want, 0, logits, n_logits);
    return CLLM_OK;
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
    /* one row per distinct slot: the simplest case of decode rows (checked above, so no second check) */
    const model_decode_rows rows = {.n = n, .slots = slots, .pos = pos};
    decode_pass(m, &rows, tokens, NULL, 0, logits, NULL);
    return CLLM_OK;
}
