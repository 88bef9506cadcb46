/*
 * inspect.c: read-only views of a model's internals after a forward pass,
 * for visualisation (`cllm attention`). Today: the attention probabilities
 * each layer saved for backward. Does not compute anything itself.
 */
#include "cllm/model/model.h"
#include "model_internal.h"

const float *cllm_model_attention(const cllm_model *m, int layer, int *B, int *T, int *NH) {
    if (!m || !m->opts.training || m->last_B <= 0 || layer < 0 || layer >= m->cfg.n_layer) return NULL;
    if (B) *B = m->last_B;
    if (T) *T = m->last_T;
    if (NH) *NH = m->cfg.n_head;
    return m->la[layer].att;
}
