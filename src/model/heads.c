/*
 * heads.c: what preference tuning needs from the model beyond the
 * next-token loss: the final hidden states (input of the reward and value
 * heads), per-token log-probabilities of the targets, and a backward that
 * starts from a gradient on those log-probabilities and/or on the hidden
 * states.
 *
 * For one row with target y and logits l, logp = l[y] - logsumexp(l), so
 * d logp / d l = onehot(y) - softmax(l). A gradient g on logp therefore
 * gives dlogits = -g * (softmax - onehot), which is the cross-entropy
 * backward of that row with dloss_scale = -g (reused, not rewritten).
 * Then dlnf = dlogits W_out (+ dhidden), and backward.c continues below
 * the head (model_backward_from_lnf).
 *
 * Not here: the scalar heads themselves (src/layers/scalar_head.c) or any
 * loss (src/train/).
 */
#include <string.h>

#include "cllm/layers/layers.h"
#include "model_internal.h"

const float *cllm_model_hidden(const cllm_model *m) { return m->last_B ? m->ga.lnf : NULL; }

cllm_status cllm_model_token_logprobs(const cllm_model *m, float *logp, cllm_error *err) {
    if (m->last_B == 0 || !m->last_has_targets)
        return cllm_error_set(err, CLLM_ERR_ARG, "model log-probs: no forward with targets");
    if (m->backward_done)
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "model log-probs: the logits were overwritten by a backward");
    const size_t N = (size_t)m->last_B * (size_t)m->last_T;
    for (size_t i = 0; i < N; i++) logp[i] = m->targets[i] >= 0 ? -m->ga.losses[i] : 0.0f;
    return CLLM_OK;
}

cllm_status cllm_model_set_logit_temperature(cllm_model *m, float temperature, cllm_error *err) {
    if (!(temperature > 0.0f && temperature <= 100.0f))
        return cllm_error_set(err, CLLM_ERR_ARG, "logit temperature %g: must be in (0, 100]", (double)temperature);
    m->logit_scale = 1.0f / temperature;
    return CLLM_OK;
}

/* The forward scaled the logits by s = 1/T before the cross-entropy, so
 * the gradient on the raw logits is s times the one on the scaled ones. */
void model_scale_dlogits(cllm_model *m, size_t rows) {
    const float s = m->logit_scale;
    if (s == 0.0f || s == 1.0f) return;
    float *d = m->ga.logits;
    const size_t n = rows * (size_t)m->cfg.vocab_size;
    for (size_t i = 0; i < n; i++) d[i] *= s;
}

cllm_status cllm_model_backward_heads(cllm_model *m, const float *dlogp, const float *dhidden,
                                      cllm_error *err) {
    if (!m->opts.training)
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "model backward: the model was created without training buffers");
    if (m->last_B == 0)
        return cllm_error_set(err, CLLM_ERR_ARG, "model backward: no forward to differentiate");
    if (dlogp && !m->last_has_targets)
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "model backward: a log-prob gradient needs a forward with targets");
    if (m->backward_done)
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "model backward: this forward was already differentiated");
    const cllm_model_config *c = &m->cfg;
    const size_t N = (size_t)m->last_B * (size_t)m->last_T, C = (size_t)c->n_embd;
    const int V = c->vocab_size;
    model_global_acts *g = &m->ga;
    memset(g->dln, 0, N * C * sizeof(float));
    if (dlogp) {
        model_global_weights gw, gg;
        model_global_view(m, m->params, &gw);
        model_global_view(m, m->grads, &gg);
        for (size_t i = 0; i < N; i++) {
            float *row = g->logits + i * (size_t)V; /* dlogits in place */
            if (m->targets[i] < 0) {
                memset(row, 0, (size_t)V * sizeof(float));
                continue;
            }
            cllm_crossentropy_backward(row, row, g->row_max + i, g->row_rsum + i, m->targets + i, 1, 1,
                                       V, -dlogp[i]);
        }
        model_scale_dlogits(m, N);
        model_linear_backward(m, -1, LIN_OUTPUT, g->dln, gg.output, NULL, g->logits, g->lnf, gw.output, (int)N,
                              c->n_embd, V);
    }
    m->backward_done = 1;
    if (dhidden)
        for (size_t i = 0; i < N * C; i++) g->dln[i] += dhidden[i];
    model_backward_from_lnf(m);
    return CLLM_OK;
}
