/*
 * logprobs.c: prompt+completion sequences packed into a [B,T] batch whose
 * targets are the completion tokens only, the per-token and per-sequence
 * log-probabilities of those tokens under a model, the policy's entropy on
 * them, and the shape check between a policy and its reference.
 *
 * Row b holds prompt p[0..P) then completion c[0..K), right-padded with id 0.
 * Position t predicts token t+1, so the completion's tokens are the targets
 * at t = P-1 .. P+K-2; every other target is -1. Padding sits after the row
 * and causal attention never lets earlier positions see it.
 * Does not: sample (rollouts live in ppo.c / grpo.c) or compute any loss.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/train/rlhf.h"

void cllm_rl_batch_free(cllm_rl_batch *b) {
    if (!b) return;
    free(b->tokens);
    free(b->targets);
    free(b->first);
    free(b->count);
    free(b->last);
    memset(b, 0, sizeof *b);
}

cllm_status cllm_rl_batch_build(const cllm_rl_seq *seqs, int B, int max_T, cllm_rl_batch *out,
                                cllm_error *err) {
    memset(out, 0, sizeof *out);
    if (B < 1) return cllm_error_set(err, CLLM_ERR_ARG, "rl batch: no sequences");
    int T = 0;
    for (int b = 0; b < B; b++) {
        const cllm_rl_seq *s = &seqs[b];
        if (s->n_prompt < 1 || s->n_completion < 1)
            return cllm_error_set(err, CLLM_ERR_ARG, "rl batch: row %d has %d prompt and %d completion tokens "
                                  "(need at least 1 of each)", b, s->n_prompt, s->n_completion);
        int n = s->n_prompt + s->n_completion;
        if (n > max_T)
            return cllm_error_set(err, CLLM_ERR_LIMIT,
                                  "rl batch: row %d has %d tokens (prompt %d + completion %d), more than the "
                                  "model's %d positions", b, n, s->n_prompt, s->n_completion, max_T);
        if (n > T) T = n;
    }
    size_t N = (size_t)B * (size_t)T;
    out->tokens = calloc(N, sizeof *out->tokens);
    out->targets = malloc(N * sizeof *out->targets);
    out->first = malloc((size_t)B * sizeof *out->first);
    out->count = malloc((size_t)B * sizeof *out->count);
    out->last = malloc((size_t)B * sizeof *out->last);
    if (!out->tokens || !out->targets || !out->first || !out->count || !out->last) {
        cllm_rl_batch_free(out);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "rl batch: out of memory");
    }
    out->B = B;
    out->T = T;
    for (size_t i = 0; i < N; i++) out->targets[i] = -1;
    for (int b = 0; b < B; b++) {
        const cllm_rl_seq *s = &seqs[b];
        int32_t *row = out->tokens + (size_t)b * T, *tgt = out->targets + (size_t)b * T;
        memcpy(row, s->prompt, (size_t)s->n_prompt * sizeof *row);
        memcpy(row + s->n_prompt, s->completion, (size_t)s->n_completion * sizeof *row);
        for (int k = 0; k < s->n_completion; k++) tgt[s->n_prompt - 1 + k] = s->completion[k];
        out->first[b] = s->n_prompt - 1;
        out->count[b] = s->n_completion;
        out->last[b] = s->n_prompt + s->n_completion - 1;
    }
    return CLLM_OK;
}

cllm_status cllm_rl_logprobs(cllm_model *m, const cllm_rl_batch *b, float *tok_logp, double *seq_logp,
                             cllm_error *err) {
    cllm_status st = cllm_model_forward(m, b->tokens, b->targets, b->B, b->T, NULL, err);
    if (st) return st;
    if ((st = cllm_model_token_logprobs(m, tok_logp, err))) return st;
    if (seq_logp)
        for (int r = 0; r < b->B; r++) {
            double s = 0;
            const float *lp = tok_logp + (size_t)r * b->T + b->first[r];
            for (int k = 0; k < b->count[r]; k++) s += lp[k];
            seq_logp[r] = s;
        }
    return CLLM_OK;
}

double cllm_rl_entropy(const cllm_model *m, const cllm_rl_batch *b) {
    const int V = cllm_model_get_config(m)->vocab_size;
    const float *logits = cllm_model_logits(m);
    double total = 0;
    long n = 0;
    for (int r = 0; r < b->B; r++)
        for (int k = 0; k < b->count[r]; k++) {
            const float *l = logits + ((size_t)r * b->T + (size_t)(b->first[r] + k)) * V;
            double mx = l[0];
            for (int v = 1; v < V; v++) mx = l[v] > mx ? l[v] : mx;
            double z = 0, s = 0;
            for (int v = 0; v < V; v++) {
                double e = exp(l[v] - mx);
                z += e;
                s += e * (l[v] - mx);
            }
            total += log(z) - s / z; /* H = logZ - E[l - max] */
            n++;
        }
    return n ? total / n : 0.0;
}

static void describe(const cllm_model_config *c, char *buf, size_t cap) {
    snprintf(buf, cap, "L=%d C=%d NH=%d NKV=%d H=%d V=%d ctx=%d pos=%s norm=%s mlp=%s tied=%d bias=%d",
             c->n_layer, c->n_embd, c->n_head, c->n_kv_head, c->ffn_hidden, c->vocab_size, c->context_length,
             cllm_model_pos_name(c->pos), cllm_model_norm_name(c->norm), cllm_model_mlp_name(c->mlp),
             c->tied_embeddings, c->bias);
}

cllm_status cllm_rl_check_same_shape(const cllm_model_config *policy, const cllm_model_config *ref,
                                     const char *what, cllm_error *err) {
    char a[256], b[256];
    describe(policy, a, sizeof a);
    describe(ref, b, sizeof b);
    if (strcmp(a, b) == 0) return CLLM_OK;
    return cllm_error_set(err, CLLM_ERR_ARG, "%s (%s) does not match the policy (%s)", what, b, a);
}
