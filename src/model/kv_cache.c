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
 *
 * Optional q8_0 cache (opts.kv_type, llama.cpp's --cache-type-k/-v q8_0):
 * kq, vq hold the same rows as llama.cpp's q8_0 blocks (fp16 scale + 32
 * int8, so one head of HS values is HS/32 blocks), quantized by the kernels'
 * activation quantizer when a position is stored. Single-token attention
 * quantizes the query to q8_0 too and scores with exact integer dots per
 * block (cllm_kv_attend_q8_0, kv_attn.h, AVX-512): the same choice as
 * llama.cpp's CPU flash attention (the query takes the key type's
 * vec_dot_type). Why q8_0 x q8_0 rather than f32 x q8_0: no key is ever
 * converted to float (one int16 multiply-add per pair, scales applied once
 * per block), and the query's own rounding (at most 1/254 of its block max)
 * is the same size as the key's, so it adds no new kind of error. Values
 * are summed in f32 as o += (p_j * d_j) * q_j. A prompt chunk dequantizes
 * one KV head at a time into f32 scratch and keeps the GEMM path, so it
 * sees exactly the stored values (tests/test_kv_cache.c checks the two agree).
 * Optional f16 cache (llama.cpp's default type): kq, vq hold the rows as
 * fp16 (round to nearest even), half the f32 bytes; single-token attention
 * multiplies the f32 query with the widened rows (cllm_kv_attend_f16), a
 * prompt chunk widens one KV head at a time like the q8_0 path.
 * Rewinding only moves the slot length: stale rows are overwritten.
 * Linear layers and the embedding go through model_infer_* (infer_linear.c),
 * which use the f32 parameters, or the weight views of a mapped GGUF.
 * Not here: sampling (src/infer), batching several slots in one call.
 */
#include <math.h>
#include <string.h>

#include "cllm/ggml_types.h"
#include "cllm/kernels.h"
#include "cllm/kv_attn.h"
#include "cllm/quant.h"
#include "cllm/layers.h"
#include "model_internal.h"

/* Causal attention of a chunk of n > 1 queries through GEMMs for the query
 * heads of KV head kvh: S = scale * Q K^T over the cached positions
 * 0..pos+n-1, a masked softmax per row, then O = P V. K and V are f32 rows
 * [pos+n, HS] with row stride ld. The scalar loop would make prompt
 * processing quadratic in scalar code (most of a 512-token prompt's time).
 * Uses m->kv.scores as [n, kv_context] (sized max(NH, max_seq) rows). */
static void chunk_group(cllm_model *m, float *out, const float *qkv, const float *K, const float *V, int ld, int kvh,
                        int n, int pos) {
    const int NH = m->cfg.n_head, HS = m->HS, group = NH / m->cfg.n_kv_head, total = pos + n, C = NH * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    float *S = m->kv.scores; /* [n, total], row stride total */
    for (int h = kvh * group; h < (kvh + 1) * group; h++) {
        cllm_sgemm(0, 1, n, total, HS, scale, qkv + (size_t)h * HS, m->QKV, K, ld, 0.0f, S, total);
#pragma omp parallel for schedule(static) if ((long)n * total >= 16384)
        for (int i = 0; i < n; i++) {
            float *row = S + (size_t)i * total;
            const int valid = pos + i + 1; /* causal: keys 0..pos+i */
            const float mx = cllm_vmax(row, (size_t)valid);
            const float inv = (float)(1.0 / cllm_vexp_shift_sum(row, row, mx, (size_t)valid));
            for (int j = 0; j < valid; j++) row[j] *= inv;
            for (int j = valid; j < total; j++) row[j] = 0.0f;
        }
        cllm_sgemm(0, 0, n, HS, total, 1.0f, S, total, V, ld, 0.0f, out + (size_t)h * HS, C);
    }
}

/* A chunk against one slot's f32 cache kc, vc [kv_context, NKV*HS]: the
 * GEMMs read each KV head's columns in place. */
static void chunk_attention(cllm_model *m, float *out, const float *qkv, const float *kc, const float *vc,
                            int n, int pos) {
    const int NKV = m->cfg.n_kv_head, HS = m->HS;
    for (int kvh = 0; kvh < NKV; kvh++)
        chunk_group(m, out, qkv, kc + (size_t)kvh * HS, vc + (size_t)kvh * HS, NKV * HS, kvh, n, pos);
}

/* Bytes of one KV head's values in a q8_0 or f16 cache row (a row holds NKV heads). */
static size_t packed_head_bytes(const cllm_model *m) { return model_kv_row_bytes(m) / (size_t)m->cfg.n_kv_head; }

/* The same against a q8_0 or f16 cache: each KV head's rows 0..pos+n-1 are
 * widened into kv.kdq / kv.vdq [total, HS] first (exactly the stored values). */
static void chunk_attention_packed(cllm_model *m, float *out, const float *qkv, const uint8_t *kc,
                                   const uint8_t *vc, int n, int pos) {
    const int NKV = m->cfg.n_kv_head, HS = m->HS, total = pos + n;
    const size_t headb = packed_head_bytes(m), rowb = (size_t)NKV * headb;
    const cllm_quant_kernels *qk = cllm_quant_kernels_get();
    void (*widen)(const void *, float *, int64_t) =
        m->opts.kv_type == CLLM_GGML_Q8_0 ? qk->dequant_q8_0 : qk->dequant_f16;
    float *K = m->kv.kdq, *V = m->kv.vdq;
    for (int kvh = 0; kvh < NKV; kvh++) {
#pragma omp parallel for schedule(static) if ((long)total * HS >= 65536)
        for (int j = 0; j < total; j++) {
            widen(kc + (size_t)j * rowb + (size_t)kvh * headb, K + (size_t)j * HS, HS);
            widen(vc + (size_t)j * rowb + (size_t)kvh * headb, V + (size_t)j * HS, HS);
        }
        chunk_group(m, out, qkv, K, V, HS, kvh, n, pos);
    }
}

/* Single-token attention on a q8_0 or f16 cache: each (row, head) runs
 * cllm_kv_attend_q8_0 (the row's query heads quantized to q8_0 in kv.qq
 * first; integer score dots) or cllm_kv_attend_f16 (the f32 query against
 * widened fp16 rows), softmax and an f32 value sum, over its slot's
 * positions 0..pos[i]. Row i reads slot base byte offsets bases[i] of the
 * layer's kq / vq. out[n, NH*HS]. */
static void attention_rows_packed(cllm_model *m, float *out, const float *qkv, const uint8_t *kcache,
                                  const uint8_t *vcache, const size_t *bases, const int *pos, int n) {
    const int NH = m->cfg.n_head, NKV = m->cfg.n_kv_head, HS = m->HS, group = NH / NKV;
    const size_t ctx = (size_t)m->opts.kv_context, QKV = (size_t)m->QKV;
    const size_t headb = packed_head_bytes(m), rowb = (size_t)NKV * headb;
    const float scale = 1.0f / sqrtf((float)HS);
    const int q8 = m->opts.kv_type == CLLM_GGML_Q8_0;
    const cllm_quant_kernels *qk = cllm_quant_kernels_get();
    if (q8)
        for (int i = 0; i < n; i++)
            for (int h = 0; h < NH; h++)
                qk->quantize_q8_0(qkv + (size_t)i * QKV + (size_t)h * HS, m->kv.qq + ((size_t)i * NH + h) * headb, HS);
    long work = 0;
    for (int i = 0; i < n; i++) work += (long)(pos[i] + 1) * NH * HS;
#pragma omp parallel for schedule(static) if (work >= 16384)
    for (int h = 0; h < NH; h++) {
        const size_t hoff = (size_t)(h / group) * headb;
        for (int i = 0; i < n; i++) {
            float *o = out + (size_t)i * (size_t)(NH * HS) + (size_t)h * HS, *sc = m->kv.scores + (size_t)h * ctx;
            if (q8)
                cllm_kv_attend_q8_0(o, sc, m->kv.qq + ((size_t)i * NH + h) * headb, kcache + bases[i] + hoff,
                                    vcache + bases[i] + hoff, rowb, pos[i] + 1, HS, scale);
            else
                cllm_kv_attend_f16(o, sc, qkv + (size_t)i * QKV + (size_t)h * HS, kcache + bases[i] + hoff,
                                   vcache + bases[i] + hoff, rowb, pos[i] + 1, HS, scale);
        }
    }
}

void model_kv_store(cllm_model *m, int l, int slot, int pos, const float *kvrow) {
    const size_t KVW = (size_t)m->cfg.n_kv_head * (size_t)m->HS, ctx = (size_t)m->opts.kv_context;
    const size_t cell = ((size_t)l * (size_t)m->opts.kv_slots + (size_t)slot) * ctx + (size_t)pos;
    if (m->opts.kv_type == CLLM_GGML_F32) {
        memcpy(m->kv.k + cell * KVW, kvrow, KVW * sizeof(float));
        memcpy(m->kv.v + cell * KVW, kvrow + KVW, KVW * sizeof(float));
        return;
    }
    const size_t rowb = model_kv_row_bytes(m);
    uint8_t *kd = m->kv.kq + cell * rowb, *vd = m->kv.vq + cell * rowb;
    const cllm_quant_kernels *qk = cllm_quant_kernels_get();
    if (m->opts.kv_type == CLLM_GGML_Q8_0) {
        qk->quantize_q8_0(kvrow, kd, (int64_t)KVW);
        qk->quantize_q8_0(kvrow + KVW, vd, (int64_t)KVW);
    } else { /* f16 */
        qk->round_f16(kvrow, (uint16_t *)(void *)kd, (int64_t)KVW);
        qk->round_f16(kvrow + KVW, (uint16_t *)(void *)vd, (int64_t)KVW);
    }
}

void model_kv_attend_rows(cllm_model *m, int l, float *out, const float *qkv, const int *slots, const int *pos,
                          int n) {
    const size_t KVW = (size_t)m->cfg.n_kv_head * (size_t)m->HS, ctx = (size_t)m->opts.kv_context;
    const int packed = m->opts.kv_type != CLLM_GGML_F32;
    const size_t rowb = packed ? model_kv_row_bytes(m) : KVW; /* bytes or floats */
    size_t bases[n]; /* n <= max_seq, checked by the callers */
    for (int i = 0; i < n; i++) bases[i] = ((size_t)l * (size_t)m->opts.kv_slots + (size_t)slots[i]) * ctx * rowb;
    if (packed)
        attention_rows_packed(m, out, qkv, m->kv.kq, m->kv.vq, bases, pos, n);
    else
        model_attention_rows(m, out, qkv, m->kv.k, m->kv.v, bases, pos, n);
}

/* The rest of block l after attention, on the n rows in m->kv: output
 * projection + residual, norm, MLP + residual (kv->atty in, kv->x updated).
 * Shared by cllm_model_decode and cllm_model_decode_batch. */
void model_infer_block_tail(cllm_model *m, int l, const model_layer_weights *lw, int n) {
    const cllm_model_config *c = &m->cfg;
    model_kv *kv = &m->kv;
    const model_layer_weights w = *lw;
    const size_t C = (size_t)c->n_embd;
    model_infer_linear(m, l, LIN_ATTN_OUT, kv->proj, kv->atty, w.attn_out_w, w.attn_out_b, n, c->n_embd,
               c->n_embd);
    cllm_residual_forward(kv->x, kv->x, kv->proj, (size_t)n * C);
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
    const int packed = m->opts.kv_type != CLLM_GGML_F32; /* q8_0 or f16 rows in kq / vq */
    const size_t rowb = model_kv_row_bytes(m); /* bytes per cached position */
    model_global_weights gw;
    model_global_view(m, m->params, &gw);
    const float *pos_table = c->pos == CLLM_POS_LEARNED ? gw.pos_embd
                             : c->pos == CLLM_POS_SINUSOIDAL ? m->consts : NULL;
    model_infer_embed(m, kv->x, tokens, gw.tok_embd, pos_table, n, pos);
    for (int l = 0; l < c->n_layer; l++) {
        model_layer_weights w;
        model_layer_view(m, m->params, l, &w);
        const size_t cell0 = ((size_t)l * (size_t)m->opts.kv_slots + (size_t)slot) * ctx; /* position 0 */
        model_norm_forward(m, kv->h, kv->mean, kv->rstd, kv->x, w.attn_norm_w, w.attn_norm_b, n);
        model_infer_linear(m, l, LIN_QKV, kv->qkv, kv->h, w.qkv_w, w.qkv_b, n, c->n_embd, m->QKV);
        if (c->pos == CLLM_POS_ROPE) {
            cllm_rope_forward(kv->qkv, 1, n, c->n_head, m->HS, (size_t)m->QKV, pos, c->rope_theta);
            cllm_rope_forward(kv->qkv + (size_t)c->n_head * m->HS, 1, n, c->n_kv_head, m->HS,
                              (size_t)m->QKV, pos, c->rope_theta);
        }
        for (int i = 0; i < n; i++)
            model_kv_store(m, l, slot, pos + i, kv->qkv + (size_t)i * m->QKV + (size_t)c->n_head * m->HS);
        if (n == 1)
            model_kv_attend_rows(m, l, kv->atty, kv->qkv, &slot, &pos, 1);
        else if (packed)
            chunk_attention_packed(m, kv->atty, kv->qkv, kv->kq + cell0 * rowb, kv->vq + cell0 * rowb, n, pos);
        else
            chunk_attention(m, kv->atty, kv->qkv, kv->k + cell0 * KVW, kv->v + cell0 * KVW, n, pos);
        model_infer_block_tail(m, l, &w, n);
    }
    model_norm_forward(m, kv->h, kv->mean, kv->rstd, kv->x, gw.out_norm_w, gw.out_norm_b, n);
    if (all_logits)
        model_infer_linear(m, -1, LIN_OUTPUT, kv->logits, kv->h, gw.output, NULL, n, c->n_embd, c->vocab_size);
    else
        model_infer_linear(m, -1, LIN_OUTPUT, kv->logits, kv->h + (size_t)(n - 1) * C, gw.output, NULL, 1,
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
