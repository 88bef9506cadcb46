/*
 * kv_cache.c: incremental decoding with a key/value cache.
 *
 * cllm_model_decode runs the same blocks as forward.c (same layer
 * functions) on a chunk of n tokens of one sequence at positions
 * pos..pos+n-1, appends their rotated keys and values to the slot's cache,
 * and attends each new query to cache positions 0..its own position. So a
 * prompt can be fed in chunks and then one token at a time, and the logits
 * match a full forward pass up to float rounding (tests/test_model.c).
 *
 * Cache layout: k, v [L, slots, kv_context, NKV*HS]; buffers are sized at
 * creation, nothing allocates per token. No dropout here (inference only).
 * Linear layers and the embedding go through model_infer_* (quantized.c),
 * which use the f32 parameters, or the weight views of a mapped GGUF.
 * Not here: sampling (src/infer), batching several slots in one call.
 */
#include <math.h>
#include <string.h>

#include "cllm/kernels.h"
#include "cllm/layers.h"
#include "model_internal.h"

/* Causal attention of a chunk of n > 1 queries through GEMMs, one head at a
 * time: S = scale * Q K^T over the cached positions 0..pos+n-1, a masked
 * softmax per row, then O = P V. The scalar loop below would make prompt
 * processing quadratic in scalar code (most of a 512-token prompt's time).
 * Uses m->kv.scores as [n, kv_context] (sized max(NH, max_seq) rows). */
static void chunk_attention(cllm_model *m, float *out, const float *qkv, const float *kc, const float *vc,
                            int n, int pos) {
    const int NH = m->cfg.n_head, NKV = m->cfg.n_kv_head, HS = m->HS, KVW = NKV * HS;
    const int group = NH / NKV, total = pos + n, C = NH * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    float *S = m->kv.scores; /* [n, total], row stride total */
    for (int h = 0; h < NH; h++) {
        const int kvh = h / group;
        cllm_sgemm(0, 1, n, total, HS, scale, qkv + (size_t)h * HS, m->QKV, kc + (size_t)kvh * HS, KVW, 0.0f, S,
                   total);
#pragma omp parallel for schedule(static) if ((long)n * total >= 16384)
        for (int i = 0; i < n; i++) {
            float *row = S + (size_t)i * total;
            const int valid = pos + i + 1; /* causal: keys 0..pos+i */
            const float mx = cllm_vmax(row, (size_t)valid);
            const float inv = (float)(1.0 / cllm_vexp_shift_sum(row, row, mx, (size_t)valid));
            for (int j = 0; j < valid; j++) row[j] *= inv;
            for (int j = valid; j < total; j++) row[j] = 0.0f;
        }
        cllm_sgemm(0, 0, n, HS, total, 1.0f, S, total, vc + (size_t)kvh * HS, KVW, 0.0f, out + (size_t)h * HS, C);
    }
}

/* The rest of block l after attention, on the n rows in m->kv: output
 * projection + residual, norm, MLP + residual (kv->atty in, kv->x updated).
 * Shared by cllm_model_decode and cllm_model_decode_batch. */
void model_infer_block_tail(cllm_model *m, int l, const model_layer_weights *lw, int n) {
    const cllm_model_config *c = &m->cfg;
    model_kv *kv = &m->kv;
    const model_layer_weights w = *lw;
    const size_t C = (size_t)c->n_embd;
    model_infer_linear(m, l, QM_ATTN_OUT, kv->proj, kv->atty, w.attn_out_w, w.attn_out_b, n, c->n_embd,
               c->n_embd);
    cllm_residual_forward(kv->x, kv->x, kv->proj, (size_t)n * C);
    model_norm_forward(m, kv->h, kv->mean, kv->rstd, kv->x, w.ffn_norm_w, w.ffn_norm_b, n);
    model_infer_linear(m, l, QM_FFN_UP, kv->fch, kv->h, w.ffn_up_w, w.ffn_up_b, n, c->n_embd, m->Hu);
    if (c->mlp == CLLM_MLP_SWIGLU)
        cllm_swiglu_forward(kv->fact, kv->fch, n, c->ffn_hidden);
    else
        cllm_gelu_forward(kv->fact, kv->fch, (size_t)n * (size_t)c->ffn_hidden);
    model_infer_linear(m, l, QM_FFN_DOWN, kv->proj, kv->fact, w.ffn_down_w, w.ffn_down_b, n, c->ffn_hidden,
               c->n_embd);
    cllm_residual_forward(kv->x, kv->x, kv->proj, (size_t)n * C);
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

    model_kv *kv = &m->kv;
    const size_t C = (size_t)c->n_embd, KVW = (size_t)c->n_kv_head * m->HS;
    const size_t ctx = (size_t)m->opts.kv_context;
    model_global_weights gw;
    model_global_view(m, m->params, &gw);
    const float *pos_table = c->pos == CLLM_POS_LEARNED ? gw.pos_embd
                             : c->pos == CLLM_POS_SINUSOIDAL ? m->consts : NULL;
    model_infer_embed(m, kv->x, tokens, gw.tok_embd, pos_table, n, pos);
    for (int l = 0; l < c->n_layer; l++) {
        model_layer_weights w;
        model_layer_view(m, m->params, l, &w);
        float *kc = kv->k + ((size_t)l * (size_t)m->opts.kv_slots + (size_t)slot) * ctx * KVW;
        float *vc = kv->v + ((size_t)l * (size_t)m->opts.kv_slots + (size_t)slot) * ctx * KVW;
        model_norm_forward(m, kv->h, kv->mean, kv->rstd, kv->x, w.attn_norm_w, w.attn_norm_b, n);
        model_infer_linear(m, l, QM_QKV, kv->qkv, kv->h, w.qkv_w, w.qkv_b, n, c->n_embd, m->QKV);
        if (c->pos == CLLM_POS_ROPE) {
            cllm_rope_forward(kv->qkv, 1, n, c->n_head, m->HS, (size_t)m->QKV, pos, c->rope_theta);
            cllm_rope_forward(kv->qkv + (size_t)c->n_head * m->HS, 1, n, c->n_kv_head, m->HS,
                              (size_t)m->QKV, pos, c->rope_theta);
        }
        for (int i = 0; i < n; i++) {
            const float *row = kv->qkv + (size_t)i * m->QKV + (size_t)c->n_head * m->HS;
            memcpy(kc + (size_t)(pos + i) * KVW, row, KVW * sizeof(float));
            memcpy(vc + (size_t)(pos + i) * KVW, row + KVW, KVW * sizeof(float));
        }
        if (n > 1) {
            chunk_attention(m, kv->atty, kv->qkv, kc, vc, n, pos);
        } else {
            const size_t base = 0; /* kc, vc already point at this slot's layer cache */
            model_attention_rows(m, kv->atty, kv->qkv, kc, vc, &base, &pos, 1);
        }
        model_infer_block_tail(m, l, &w, n);
    }
    model_norm_forward(m, kv->h, kv->mean, kv->rstd, kv->x, gw.out_norm_w, gw.out_norm_b, n);
    if (all_logits)
        model_infer_linear(m, -1, QM_OUTPUT, kv->logits, kv->h, gw.output, NULL, n, c->n_embd, c->vocab_size);
    else
        model_infer_linear(m, -1, QM_OUTPUT, kv->logits, kv->h + (size_t)(n - 1) * C, gw.output, NULL, 1,
                           c->n_embd, c->vocab_size);
    m->kv_len[slot] = pos + n;
    if (logits) *logits = kv->logits;
    return CLLM_OK;
}

int cllm_model_kv_length(const cllm_model *m, int slot) {
    return m->kv_len && slot >= 0 && slot < m->opts.kv_slots ? m->kv_len[slot] : 0;
}

void cllm_model_kv_reset(cllm_model *m, int slot) {
    if (m->kv_len && slot >= 0 && slot < m->opts.kv_slots) m->kv_len[slot] = 0;
}
