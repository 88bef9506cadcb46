/*
 * backward.c: the model's backward pass, the forward list in reverse.
 *
 * Differentiates dloss_scale * (sum of unmasked token losses) of the last
 * forward and ACCUMULATES (+=) into the gradient block, so gradient
 * accumulation over micro-batches is a sum. One buffer, dres, carries the
 * gradient of the residual stream: each norm backward adds its input
 * gradient into it, which is exactly the residual identity path. Scratch
 * gradients that layers accumulate into are zeroed before each use.
 * The logits buffer receives dlogits (documented in model.h).
 * Not here: parameter updates (src/train/adamw.c), zeroing between steps is
 * cllm_model_zero_grad.
 */
#include <string.h>

#include "cllm/layers/layers.h"
#include "model_internal.h"

static void norm_backward(const cllm_model *m, float *dinp, float *dw, float *db, const float *dout,
                          const float *inp, const float *w, const float *mean, const float *rstd, int N) {
    if (m->cfg.norm == CLLM_NORM_LAYERNORM)
        cllm_layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, m->cfg.n_embd);
    else
        cllm_rmsnorm_backward(dinp, dw, dout, inp, w, rstd, N, m->cfg.n_embd);
}

static void zero(float *p, size_t n) { memset(p, 0, n * sizeof *p); }

/* Gradient reaching a branch output through its dropout (or dres itself). */
static const float *through_dropout(cllm_model *m, const uint8_t *mask, size_t n) {
    if (!m->last_dropout) return m->ga.dres;
    zero(m->ga.dproj, n);
    cllm_dropout_backward(m->ga.dproj, m->ga.dres, mask, n, m->cfg.dropout);
    return m->ga.dproj;
}

/* Zeroing half a gigabyte (GPT-2 124M) is memory-bound: both cores'
 * store bandwidth beats one, so threads take fixed 256 KiB blocks. */
#define ZERO_BLOCK 65536

void cllm_model_zero_grad(cllm_model *m) {
    if (!m->grads) return;
    const size_t n = m->n_params;
    const long long n_blocks = (long long)((n + ZERO_BLOCK - 1) / ZERO_BLOCK);
#pragma omp parallel for schedule(static) if (n_blocks > 4)
    for (long long b = 0; b < n_blocks; b++) {
        size_t lo = (size_t)b * ZERO_BLOCK;
        zero(m->grads + lo, n - lo < ZERO_BLOCK ? n - lo : ZERO_BLOCK);
    }
}

cllm_status cllm_model_backward(cllm_model *m, float dloss_scale, cllm_error *err) {
    if (!m->opts.training)
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "model backward: the model was created without training buffers");
    if (m->last_B == 0 || !m->last_has_targets)
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "model backward: no forward with targets to differentiate");
    const cllm_model_config *c = &m->cfg;
    const int B = m->last_B, T = m->last_T;
    const size_t N = (size_t)B * (size_t)T, C = (size_t)c->n_embd;
    model_global_acts *g = &m->ga;
    model_global_weights gw, gg;
    model_global_view(m, m->params, &gw);
    model_global_view(m, m->grads, &gg);

    /* loss -> logits -> final norm */
    cllm_crossentropy_backward(g->logits, g->logits, g->row_max, g->row_rsum, m->targets, B, T,
                               c->vocab_size, dloss_scale); /* in place */
    model_scale_dlogits(m, N);
    m->backward_done = 1;
    zero(g->dln, N * C);
    model_linear_backward(m, -1, LIN_OUTPUT, g->dln, gg.output, NULL, g->logits, g->lnf, gw.output, (int)N,
                          c->n_embd, c->vocab_size);
    model_backward_from_lnf(m);
    return CLLM_OK;
}

/* Everything below the output head: from g->dln (the gradient on the final
 * norm's output lnf[N,C]) down to the embeddings, accumulating (+=). Also
 * entered by heads.c for losses on hidden states (reward/value heads). */
void model_backward_from_lnf(cllm_model *m) {
    const cllm_model_config *c = &m->cfg;
    const int B = m->last_B, T = m->last_T, L = c->n_layer;
    const size_t N = (size_t)B * (size_t)T, C = (size_t)c->n_embd;
    const int32_t *seg = m->last_seg ? m->seg : NULL; /* packed rows (segments.c) */
    model_global_acts *g = &m->ga;
    model_global_weights gw, gg;
    model_global_view(m, m->params, &gw);
    model_global_view(m, m->grads, &gg);
    zero(g->dres, N * C);
    norm_backward(m, g->dres, gg.out_norm_w, gg.out_norm_b, g->dln, m->la[L - 1].res3, gw.out_norm_w,
                  g->lnf_mean, g->lnf_rstd, (int)N);

    for (int l = L - 1; l >= 0; l--) {
        model_layer_weights w, dw;
        model_layer_view(m, m->params, l, &w);
        model_layer_view(m, m->grads, l, &dw);
        const model_layer_acts *a = &m->la[l];
        const float *x = l == 0 ? g->emb : m->la[l - 1].res3;
        /* MLP branch: res3 = res2 + drop(W_down act(W_up ln2)) */
        const float *dbranch = through_dropout(m, a->mask_mlp, N * C);
        zero(g->dfact, N * (size_t)c->ffn_hidden);
        model_linear_backward(m, l, LIN_FFN_DOWN, g->dfact, dw.ffn_down_w, dw.ffn_down_b, dbranch, a->fact,
                              w.ffn_down_w, (int)N, c->ffn_hidden, c->n_embd);
        if (m->lora) model_lora_backward(m, l, LIN_FFN_DOWN, dbranch, a->fact, g->dfact, (int)N);
        zero(g->dfch, N * (size_t)m->Hu);
        if (c->mlp == CLLM_MLP_SWIGLU)
            cllm_swiglu_backward(g->dfch, a->fch, g->dfact, (int)N, c->ffn_hidden);
        else
            cllm_gelu_backward(g->dfch, a->fch, g->dfact, N * (size_t)c->ffn_hidden);
        zero(g->dln, N * C);
        model_linear_backward(m, l, LIN_FFN_UP, g->dln, dw.ffn_up_w, dw.ffn_up_b, g->dfch, a->ln2, w.ffn_up_w,
                              (int)N, c->n_embd, m->Hu);
        if (m->lora) model_lora_backward(m, l, LIN_FFN_UP, g->dfch, a->ln2, g->dln, (int)N);
        norm_backward(m, g->dres, dw.ffn_norm_w, dw.ffn_norm_b, g->dln, a->res2, w.ffn_norm_w,
                      a->ln2_mean, a->ln2_rstd, (int)N);
        /* attention branch: res2 = x + drop(W_o attn(rope(W_qkv ln1))) */
        dbranch = through_dropout(m, a->mask_attn, N * C);
        zero(g->datty, N * C);
        model_linear_backward(m, l, LIN_ATTN_OUT, g->datty, dw.attn_out_w, dw.attn_out_b, dbranch, a->atty,
                              w.attn_out_w, (int)N, c->n_embd, c->n_embd);
        if (m->lora) model_lora_backward(m, l, LIN_ATTN_OUT, dbranch, a->atty, g->datty, (int)N);
        zero(g->dqkv, N * (size_t)m->QKV);
        cllm_attention_backward_seg(g->dqkv, g->datt, g->datty, a->att, a->qkv, seg, c->sliding_window, B, T, c->n_head,
                                    c->n_kv_head, m->HS);
        if (c->pos == CLLM_POS_ROPE && seg) {
            model_seg_rope(m, g->dqkv, B, T, 1);
        } else if (c->pos == CLLM_POS_ROPE) {
            model_rope(m, g->dqkv, B, T, (size_t)m->QKV, 0, 1);
        }
        zero(g->dln, N * C);
        model_linear_backward(m, l, LIN_QKV, g->dln, dw.qkv_w, dw.qkv_b, g->dqkv, a->ln1, w.qkv_w, (int)N,
                              c->n_embd, m->QKV);
        if (m->lora) model_lora_backward(m, l, LIN_QKV, g->dqkv, a->ln1, g->dln, (int)N);
        norm_backward(m, g->dres, dw.attn_norm_w, dw.attn_norm_b, g->dln, x, w.attn_norm_w,
                      a->ln1_mean, a->ln1_rstd, (int)N);
        if (m->grad_ready) m->grad_ready(m->grad_ready_ctx, l); /* block l's gradients are final */
    }
    /* embeddings (the sinusoidal table is a constant: no gradient) */
    const float *demb = through_dropout(m, m->ga.mask_emb, N * C);
    if (gg.tok_embd) /* absent with a frozen base (no gradient block) */
        cllm_embedding_backward(gg.tok_embd, c->pos == CLLM_POS_LEARNED && !seg ? gg.pos_embd : NULL, demb,
                                m->tokens, B, T, c->n_embd, 0);
    if (seg && c->pos == CLLM_POS_LEARNED && gg.pos_embd) model_seg_pos_backward(m, gg.pos_embd, demb, B, T);
    if (m->grad_ready) m->grad_ready(m->grad_ready_ctx, -1);
}
