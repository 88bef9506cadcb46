/*
 * forward.c: the model's training/evaluation forward pass over tokens[B,T].
 *
 * Reads like the math, one block at a time (pre-norm, as GPT-2 and Llama):
 *   x0  = drop(wte[tokens] + pos)                 (pos: learned, sinusoidal, or none for RoPE)
 *   h   = x + drop(W_o attn(rope(W_qkv norm1(x))))
 *   x'  = h + drop(W_down act(W_up norm2(h)))     (act: GELU, or SwiGLU on gate/up halves)
 *   logits = W_out normf(x_L)                     (W_out = wte when tied)
 *   loss = mean cross-entropy over targets != -1
 * Every activation backward needs is saved in the activation block
 * (model_internal.h). No allocation. Not here: backward (backward.c),
 * incremental decoding (kv_cache.c). Attention-probability dropout is not
 * applied (layers.h attention has none); residual and embedding dropout are.
 */
#include <string.h>

#include "cllm/core/hash.h"
#include "cllm/layers/layers.h"
#include "model_internal.h"

void model_norm_forward(const cllm_model *m, float *out, float *mean, float *rstd, const float *inp,
                        const float *w, const float *b, int N) {
    if (m->cfg.norm == CLLM_NORM_LAYERNORM)
        cllm_layernorm_forward(out, mean, rstd, inp, w, b, N, m->cfg.n_embd, m->cfg.norm_eps);
    else
        cllm_rmsnorm_forward(out, rstd, inp, w, N, m->cfg.n_embd, m->cfg.norm_eps);
}

void model_rope(const cllm_model *m, float *qkv, int B, int T, size_t stride, int pos0, int backward) {
    const cllm_model_config *c = &m->cfg;
    float *k = qkv + (size_t)c->n_head * m->HS;
    if (backward) {
        cllm_rope_backward(qkv, B, T, c->n_head, m->HS, stride, pos0, &m->rope);
        cllm_rope_backward(k, B, T, c->n_kv_head, m->HS, stride, pos0, &m->rope);
    } else {
        cllm_rope_forward(qkv, B, T, c->n_head, m->HS, stride, pos0, &m->rope);
        cllm_rope_forward(k, B, T, c->n_kv_head, m->HS, stride, pos0, &m->rope);
    }
}

/* Per-site dropout seeds from the model seed: one splitmix64 step (hash.h). */
static uint64_t mix64(uint64_t x) { return cllm_splitmix64(&x); }

/* out = res + drop(branch), branch in ga.proj. With dropout, mask is saved. */
static void add_branch(cllm_model *m, float *out, const float *res, const float *branch,
                       uint8_t *mask, size_t n, int drop, uint64_t seed) {
    if (drop) {
        cllm_dropout_forward(m->ga.drop, mask, branch, n, m->cfg.dropout, seed);
        branch = m->ga.drop;
    }
    cllm_residual_forward(out, res, branch, n);
}

static cllm_status check_ids(const int32_t *ids, size_t n, int V, int allow_masked, const char *what,
                             cllm_error *err) {
    for (size_t i = 0; i < n; i++) {
        int32_t t = ids[i];
        if (t >= V || t < (allow_masked ? -1 : 0))
            return cllm_error_set(err, CLLM_ERR_ARG,
                                  "model forward: %s[%zu] = %d is outside [%d, %d)", what, i, (int)t,
                                  allow_masked ? -1 : 0, V);
    }
    return CLLM_OK;
}

cllm_status cllm_model_forward(cllm_model *m, const int32_t *tokens, const int32_t *targets, int B,
                               int T, float *loss, cllm_error *err) {
    const cllm_model_config *c = &m->cfg;
    m->last_B = 0; /* any call invalidates the previous pass, even one that fails */
    const int32_t *seg = m->seg_pending ? m->seg : NULL; /* packed rows (segments.c) */
    m->seg_pending = 0;
    m->last_seg = seg != NULL;
    if (m->views && !m->opts.training) /* a mapped model loaded for QLoRA (training, frozen base) runs here */
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "model forward: this model keeps its matrices in a mapped GGUF (decode only); "
                              "use cllm_model_decode or load it with cllm_model_load_gguf");
    if (B < 1 || B > m->opts.max_batch || T < 1 || T > m->opts.max_seq)
        return cllm_error_set(err, CLLM_ERR_LIMIT,
                              "model forward: B = %d, T = %d outside the model's limits "
                              "(max_batch %d, max_seq %d set at creation)",
                              B, T, m->opts.max_batch, m->opts.max_seq);
    if (!tokens) return cllm_error_set(err, CLLM_ERR_ARG, "model forward: tokens is NULL");
    const size_t N = (size_t)B * (size_t)T, C = (size_t)c->n_embd;
    cllm_status st = check_ids(tokens, N, c->vocab_size, 0, "tokens", err);
    if (st == CLLM_OK && targets) st = check_ids(targets, N, c->vocab_size, 1, "targets", err);
    if (st != CLLM_OK) return st;

    memcpy(m->tokens, tokens, N * sizeof *tokens);
    const int drop = m->opts.training && m->train_mode && c->dropout > 0.0f;
    const uint64_t seed = m->dropout_seed;
    model_global_weights gw;
    model_global_view(m, m->params, &gw);
    model_global_acts *g = &m->ga;
    const float *pos_table = c->pos == CLLM_POS_LEARNED ? gw.pos_embd
                             : c->pos == CLLM_POS_SINUSOIDAL ? m->consts : NULL;

    if (m->views) /* QLoRA: token rows dequantized from the mapped file, one sequence at a time */
        for (int b = 0; b < B; b++)
            model_infer_embed(m, g->emb + (size_t)b * T * C, tokens + (size_t)b * T, gw.tok_embd, seg ? NULL : pos_table,
                              T, 0);
    else
        cllm_embedding_forward(g->emb, tokens, gw.tok_embd, seg ? NULL : pos_table, B, T, c->n_embd, 0);
    if (seg && pos_table) model_seg_add_pos(m, g->emb, pos_table, B, T);
    if (drop) {
        cllm_dropout_forward(g->drop, g->mask_emb, g->emb, N * C, c->dropout, mix64(seed));
        memcpy(g->emb, g->drop, N * C * sizeof(float));
    }
    const float *x = g->emb;
    for (int l = 0; l < c->n_layer; l++) {
        model_layer_weights w;
        model_layer_view(m, m->params, l, &w);
        model_layer_acts *a = &m->la[l];
        /* attention branch */
        model_norm_forward(m, a->ln1, a->ln1_mean, a->ln1_rstd, x, w.attn_norm_w, w.attn_norm_b, (int)N);
        model_linear_forward(m, l, LIN_QKV, a->qkv, a->ln1, w.qkv_w, w.qkv_b, (int)N, c->n_embd, m->QKV);
        if (m->lora) model_lora_forward(m, l, LIN_QKV, a->qkv, a->ln1, (int)N, 1);
        if (c->pos == CLLM_POS_ROPE && seg) {
            model_seg_rope(m, a->qkv, B, T, 0);
        } else if (c->pos == CLLM_POS_ROPE) {
            model_rope(m, a->qkv, B, T, (size_t)m->QKV, 0, 0);
        }
        cllm_attention_forward_seg(a->atty, a->att, a->qkv, seg, c->sliding_window, B, T, c->n_head, c->n_kv_head,
                                   m->HS);
        model_linear_forward(m, l, LIN_ATTN_OUT, g->proj, a->atty, w.attn_out_w, w.attn_out_b, (int)N, c->n_embd,
                             c->n_embd);
        if (m->lora) model_lora_forward(m, l, LIN_ATTN_OUT, g->proj, a->atty, (int)N, 1);
        add_branch(m, a->res2, x, g->proj, a->mask_attn, N * C, drop, mix64(seed + 2 * (uint64_t)l + 1));
        /* MLP branch */
        model_norm_forward(m, a->ln2, a->ln2_mean, a->ln2_rstd, a->res2, w.ffn_norm_w, w.ffn_norm_b, (int)N);
        model_linear_forward(m, l, LIN_FFN_UP, a->fch, a->ln2, w.ffn_up_w, w.ffn_up_b, (int)N, c->n_embd, m->Hu);
        if (m->lora) model_lora_forward(m, l, LIN_FFN_UP, a->fch, a->ln2, (int)N, 1);
        if (c->mlp == CLLM_MLP_SWIGLU)
            cllm_swiglu_forward(a->fact, a->fch, (int)N, c->ffn_hidden);
        else
            cllm_gelu_forward(a->fact, a->fch, N * (size_t)c->ffn_hidden);
        model_linear_forward(m, l, LIN_FFN_DOWN, g->proj, a->fact, w.ffn_down_w, w.ffn_down_b, (int)N, c->ffn_hidden,
                             c->n_embd);
        if (m->lora) model_lora_forward(m, l, LIN_FFN_DOWN, g->proj, a->fact, (int)N, 1);
        add_branch(m, a->res3, a->res2, g->proj, a->mask_mlp, N * C, drop, mix64(seed + 2 * (uint64_t)l + 2));
        x = a->res3;
    }
    model_norm_forward(m, g->lnf, g->lnf_mean, g->lnf_rstd, x, gw.out_norm_w, gw.out_norm_b, (int)N);
    model_linear_forward(m, -1, LIN_OUTPUT, g->logits, g->lnf, gw.output, NULL, (int)N, c->n_embd, c->vocab_size);

    float mean_loss = 0.0f;
    m->last_num_targets = 0;
    if (targets) {
        if (m->logit_scale != 0.0f && m->logit_scale != 1.0f)
            for (size_t i = 0; i < N * (size_t)c->vocab_size; i++) g->logits[i] *= m->logit_scale;
        memcpy(m->targets, targets, N * sizeof *targets);
        for (size_t i = 0; i < N; i++) m->last_num_targets += targets[i] >= 0;
        mean_loss = cllm_crossentropy_forward(g->losses, g->row_max, g->row_rsum, g->logits, targets, B,
                                              T, c->vocab_size);
    }
    if (loss) *loss = mean_loss;
    if (drop) m->dropout_seed = mix64(seed ^ 0xD1B54A32D192ED03ull);
    m->last_dropout = drop;
    m->last_has_targets = targets != NULL;
    m->backward_done = 0;
    m->last_B = B;
    m->last_T = T;
    return CLLM_OK;
}

const float *cllm_model_logits(const cllm_model *m) { return m->ga.logits; }
int64_t cllm_model_num_targets(const cllm_model *m) { return m->last_num_targets; }

void cllm_model_set_train_mode(cllm_model *m, int train) { m->train_mode = train != 0; }
void cllm_model_set_dropout_seed(cllm_model *m, uint64_t seed) { m->dropout_seed = seed; }
uint64_t cllm_model_dropout_seed(const cllm_model *m) { return m->dropout_seed; }

void cllm_model_set_grad_ready_hook(cllm_model *m, void (*fn)(void *ctx, int layer), void *ctx) {
    m->grad_ready = fn;
    m->grad_ready_ctx = ctx;
}

void cllm_model_skip_dropout(cllm_model *m) {
    if (m->opts.training && m->train_mode && m->cfg.dropout > 0.0f)
        m->dropout_seed = mix64(m->dropout_seed ^ 0xD1B54A32D192ED03ull); /* as a train-mode forward does */
}
