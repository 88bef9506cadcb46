/*
 * sampler.h: turning a row of logits into the next token.
 *
 * A sampler is a chain of stages applied to the candidate list in a
 * configurable order (default: penalties, logit bias, top-k, top-p, min-p,
 * temperature), then one draw from the remaining distribution with the
 * sampler's own seeded RNG. temperature == 0 means greedy (argmax after
 * penalties and bias). The sampler keeps the recent history of chosen tokens
 * (cllm_sampler_accept) for the repetition/presence/frequency penalties.
 *
 * Penalties follow the two common conventions:
 *   repeat_penalty (llama.cpp / CTRL, Keskar et al. 2019): a logit l of a
 *     token seen in the window becomes l / p when l > 0, l * p otherwise;
 *   presence/frequency (OpenAI): l -= presence * [count > 0] + frequency * count.
 *
 * Log-probabilities reported with a sample are those of the model itself:
 * log-softmax of the raw logits, before any stage (as OpenAI's API reports).
 *
 * A grammar (grammar.h), when set, constrains the draw to tokens that keep
 * the output valid: the chain runs unconstrained first and its token stands
 * when valid; otherwise the invalid tokens are removed before the chain
 * runs again (sampler.c says why this is exact for greedy and for plain
 * sampling; with top-k/top-p/min-p the first try truncates among all tokens,
 * as llama.cpp's does).
 */
#ifndef CLLM_SAMPLER_H
#define CLLM_SAMPLER_H

#include <stdint.h>

#include "cllm/core/status.h"
#include "cllm/infer/grammar.h"
#include "cllm/tokenizer/tokenizer.h"

typedef enum {
    CLLM_SAMPLER_STAGE_PENALTIES = 0,
    CLLM_SAMPLER_STAGE_LOGIT_BIAS,
    CLLM_SAMPLER_STAGE_TOP_K,
    CLLM_SAMPLER_STAGE_TOP_P,
    CLLM_SAMPLER_STAGE_MIN_P,
    CLLM_SAMPLER_STAGE_TEMPERATURE,
    CLLM_SAMPLER_STAGE_COUNT
} cllm_sampler_stage;

typedef struct {
    int32_t token;
    float bias; /* added to the logit; -INFINITY bans the token */
} cllm_logit_bias;

#define CLLM_SAMPLER_MAX_BIAS 1024

typedef struct {
    float temperature;       /* [0, 100]; 0 = greedy */
    int top_k;               /* >= 0; 0 = off */
    float top_p;             /* (0, 1]; 1 = off */
    float min_p;             /* [0, 1); 0 = off */
    float repeat_penalty;    /* [0.01, 100]; 1 = off */
    float presence_penalty;  /* [-2, 2]; 0 = off */
    float frequency_penalty; /* [-2, 2]; 0 = off */
    int penalty_window;      /* last N accepted tokens the penalties look at; >= 0 */
    uint64_t seed;
    int n_stages;            /* entries used in order[] (a stage may be left out) */
    cllm_sampler_stage order[CLLM_SAMPLER_STAGE_COUNT];
    int n_bias;
    cllm_logit_bias bias[CLLM_SAMPLER_MAX_BIAS];
} cllm_sampler_params;

/* temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, penalties off,
 * window 64, seed 0, the default order. */
cllm_sampler_params cllm_sampler_default_params(void);

/* Checks every field's range against vocab size V; the message names the field. */
cllm_status cllm_sampler_params_validate(const cllm_sampler_params *p, int V, cllm_error *err);

/* Parses a comma-separated stage list such as "penalties,top_k,temperature"
 * into p->order / p->n_stages. */
cllm_status cllm_sampler_parse_order(cllm_sampler_params *p, const char *list, cllm_error *err);

typedef struct cllm_sampler cllm_sampler;

/* Owned result; NULL with err filled on invalid params or no memory. */
cllm_sampler *cllm_sampler_create(const cllm_sampler_params *p, int V, cllm_error *err);
void cllm_sampler_destroy(cllm_sampler *s);
/* Forget the history (new conversation) and restart the grammar, if any;
 * the RNG stream continues. */
void cllm_sampler_reset(cllm_sampler *s);
/* Record a token as generated (or as part of the prompt) for the penalties. */
void cllm_sampler_accept(cllm_sampler *s, int32_t token);

/* Leaves the ids that tok has no text for (CLLM_TOKEN_UNUSED: placeholder
 * and padding rows such as Qwen2's spare embedding rows, and ids at or past
 * tok's size) out of every later sample, as if their logits were -inf: a
 * model whose head still gives them weight (random or briefly trained
 * weights) can then not produce an id that detokenizing refuses. */
cllm_status cllm_sampler_exclude_unused(cllm_sampler *s, const cllm_tokenizer *tok, cllm_error *err);

/* Constrains the following samples to grammar g over vocabulary v (both
 * borrowed: they must outlive the sampler or the next call; v's size must be
 * the sampler's V). The grammar starts at its beginning; NULL g removes it. */
cllm_status cllm_sampler_set_grammar(cllm_sampler *s, const cllm_grammar *g, const cllm_grammar_vocab *v,
                                     cllm_error *err);

/* Records a token the sampler chose: cllm_sampler_accept plus advancing the
 * grammar, if any. Returns 1, or 0 when the grammar refuses the token (only
 * for a token the sampler did not offer; the grammar is then unchanged). */
int cllm_sampler_advance(cllm_sampler *s, int32_t token);

/* 1 when a grammar is set, the output so far completes it and nothing may
 * follow: generation ends here (as at an end-of-generation token). */
int cllm_sampler_grammar_finished(const cllm_sampler *s);

typedef struct {
    int32_t token;
    float logprob;
} cllm_token_logprob;

/* Chooses the next token from logits[V] (not modified). If n_top > 0 the
 * n_top most likely tokens of the model's own distribution and their
 * log-probabilities are written to top[n_top] (most likely first); if
 * chosen_logprob is non-NULL it receives the chosen token's log-probability.
 * Does not call accept: the caller decides what enters the history.
 *
 * Non-finite logits (NaN, +inf, -inf) are never candidates, and their
 * tokens' log-probabilities are -inf; the log-softmax is taken over the
 * finite ones, so no reported number is NaN. Returns a token id in [0, V),
 * or CLLM_SAMPLER_NO_FINITE_LOGIT (-1) when no logit of the row is finite
 * (a diverged or corrupt model): that step is an error for the caller
 * (generate returns CLLM_ERR_NUMERIC, the server fails the request with a
 * 500 / SSE error event), and chosen_logprob and top are left untouched. */
#define CLLM_SAMPLER_NO_FINITE_LOGIT (-1)
/* With a grammar: no token with a finite logit keeps the output valid (the
 * vocabulary cannot spell what the grammar needs next). */
#define CLLM_SAMPLER_GRAMMAR_DEAD_END (-2)
int32_t cllm_sampler_sample(cllm_sampler *s, const float *logits, float *chosen_logprob,
                            cllm_token_logprob *top, int n_top);

const char *cllm_sampler_stage_name(cllm_sampler_stage stage);

#endif
