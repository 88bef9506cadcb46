/*
 * embed.c: a sequence embedding from the model's final hidden states
 * (the server's /v1/embeddings).
 *
 * The tokens are decoded through a KV slot in chunks (cllm_model_decode),
 * and the FINAL-NORM outputs of every position (the rows the output head
 * reads) are mean-pooled over the sequence, then scaled to unit L2 norm.
 * Mean pooling over a causal model weights early tokens by what they saw
 * only; it is the common choice for decoder embeddings without a trained
 * pooling head. The slot's cache is overwritten.
 */
#include <math.h>
#include <string.h>

#include "model_internal.h"

cllm_status cllm_model_embed(cllm_model *m, int slot, const int32_t *tokens, int n, float *out, cllm_error *err) {
    const size_t C = (size_t)m->cfg.n_embd;
    if (n < 1) return cllm_error_set(err, CLLM_ERR_ARG, "model embed: the input is empty");
    if (n > m->opts.kv_context)
        return cllm_error_set(err, CLLM_ERR_LIMIT, "model embed: %d tokens but the context holds %d", n,
                              m->opts.kv_context);
    for (size_t k = 0; k < C; k++) out[k] = 0.0f;
    for (int p = 0; p < n; p += m->opts.max_seq) {
        int len = n - p < m->opts.max_seq ? n - p : m->opts.max_seq;
        cllm_status st = cllm_model_decode(m, slot, tokens + p, len, p, 0, NULL, err);
        if (st != CLLM_OK) return st;
        for (int i = 0; i < len; i++)
            for (size_t k = 0; k < C; k++) out[k] += m->kv.h[(size_t)i * C + k];
    }
    double ss = 0.0;
    for (size_t k = 0; k < C; k++) {
        out[k] /= (float)n;
        ss += (double)out[k] * out[k];
    }
    float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
    for (size_t k = 0; k < C; k++) out[k] *= inv;
    return CLLM_OK;
}
