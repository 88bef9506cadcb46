/*
 * perplexity.h: perplexity of a model on a token sequence, and the damage
 * report of a (quantized) model against a base model on the same tokens:
 * mean KL divergence, top-1 agreement, perplexity ratio (llama.cpp's
 * `llama-perplexity --kl-divergence` check).
 *
 * Method (llama.cpp's): the tokens are cut into consecutive chunks of `ctx`
 * tokens (a shorter tail is dropped; text longer than the model's context is
 * therefore simply more chunks). Each chunk is decoded from position 0 with
 * a fresh KV cache, in pieces of the model's max_seq; the logits at
 * positions ctx/2 .. ctx-2 predict the next token and are scored, so every
 * scored token sees at least ctx/2 tokens of context. PPL = exp(mean NLL).
 * KL(base || model) = sum_v p_base(v) (log p_base(v) - log p_model(v)) per
 * scored position, in nats, averaged. The standard error of the mean NLL is
 * reported too.
 */
#ifndef CLLM_PERPLEXITY_H
#define CLLM_PERPLEXITY_H

#include <stddef.h>
#include <stdint.h>

#include "cllm/model/model.h"
#include "cllm/core/status.h"

typedef struct {
    int n_chunks;          /* chunks evaluated */
    int64_t n_scored;      /* positions scored */
    double nll;            /* mean negative log-likelihood (nats) of the model */
    double nll_stderr;     /* its standard error */
    double ppl;            /* exp(nll) */
    /* with a base model only (else 0): */
    double base_nll, base_ppl;
    double kl_mean;        /* mean KL(base || model), nats */
    double kl_max;         /* largest per-position KL */
    double top1_agree;     /* fraction of positions where both argmaxes agree */
    double ppl_ratio;      /* ppl / base_ppl */
} cllm_perplexity_result;

/* Evaluates `m` (and `base` when not NULL: same vocabulary required) on
 * tokens[n] (ids in [0, V)). Both models need a KV cache (kv_slots >= 1,
 * slot 0 is used and reset) with kv_context >= ctx; 2 <= ctx <= context.
 * CLLM_ERR_ARG when n < ctx (fewer tokens than one chunk). */
cllm_status cllm_perplexity_eval(cllm_model *m, cllm_model *base, const int32_t *tokens, size_t n, int ctx,
                                 cllm_perplexity_result *out, cllm_error *err);

#endif
