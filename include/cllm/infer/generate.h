/*
 * generate.h: autoregressive generation with the KV cache.
 *
 * One call runs a whole completion for one sequence (a KV-cache slot): the
 * prompt is processed in chunks of up to the model's max_seq tokens (batched
 * GEMMs), then tokens are decoded one at a time, sampled with the caller's
 * sampler chain, and turned into text by a text stream (stop.h: whole UTF-8
 * characters, stop strings held back) before the callback sees them. Generation ends at
 * max_tokens, an end-of-generation token (not emitted as text), a stop string
 * (not emitted), the end of the context window, when the sampler's grammar is
 * complete and admits nothing more (finish "stop"), or when the callback asks.
 *
 * Not here: chat templates (they produce the prompt ids), batching several
 * sequences (the server does that).
 */
#ifndef CLLM_GENERATE_H
#define CLLM_GENERATE_H

#include <stdint.h>

#include "cllm/infer/chat_template.h"
#include "cllm/model/model.h"
#include "cllm/infer/sampler.h"
#include "cllm/core/status.h"
#include "cllm/infer/stop.h"
#include "cllm/tokenizer/tokenizer.h"

#define CLLM_GENERATE_MAX_EOG 8
#define CLLM_GENERATE_MAX_TOP 20

typedef struct {
    int max_tokens;                        /* >= 1 */
    const char *const *stop;               /* [n_stop] stop strings (see stop.h limits) */
    int n_stop;
    int n_eog;                             /* end-of-generation token ids */
    int32_t eog[CLLM_GENERATE_MAX_EOG];
    int n_top_logprobs;                    /* 0..CLLM_GENERATE_MAX_TOP alternatives per token */
} cllm_generate_params;

/* max_tokens 128, no stops, no eog ids, no logprobs. */
cllm_generate_params cllm_generate_default_params(void);

/* Adds the tokenizer's usual end tokens (<|endoftext|>, <|im_end|>, <|eot_id|>
 * when present) to p->eog. */
void cllm_generate_add_default_eog(cllm_generate_params *p, const cllm_tokenizer *tok);

/* The ends of an assistant reply under a chat template: the template's
 * end-of-turn tokens, the tokenizer's usual end tokens, and the template's
 * text stop (a static string) when it has one. */
void cllm_generate_chat_ends(cllm_generate_params *p, const cllm_tokenizer *tok, cllm_chat_template tmpl);

/* 1 when token is one of p->eog (ends generation; not emitted as text). */
int cllm_generate_is_eog(const cllm_generate_params *p, int32_t token);

typedef enum {
    CLLM_FINISH_LENGTH = 0, /* max_tokens reached */
    CLLM_FINISH_STOP,       /* a stop string or an end-of-generation token */
    CLLM_FINISH_CONTEXT,    /* the context window is full */
    CLLM_FINISH_CANCELLED,  /* the callback returned non-zero */
    CLLM_FINISH_COUNT
} cllm_finish_reason;

const char *cllm_finish_reason_name(cllm_finish_reason r); /* "length", "stop", ... */

typedef struct {
    const char *text;    /* released text for this token (may be empty while held back) */
    size_t len;
    int32_t token;       /* the sampled token; -1 for a final text-only event that
                            releases text held back at the end */
    float logprob;       /* its log-probability under the model */
    const cllm_token_logprob *top; /* [n_top] alternatives, most likely first */
    int n_top;
} cllm_generate_event;

/* Return non-zero to stop generating (client went away, user pressed stop). */
typedef int (*cllm_generate_callback)(void *ctx, const cllm_generate_event *ev);

typedef struct {
    int n_prompt;
    int n_generated;          /* tokens sampled (the eog token included) */
    cllm_finish_reason finish;
    double prompt_seconds;    /* prompt processing wall time */
    double generate_seconds;  /* decoding wall time */
} cllm_generate_result;

/* Runs one completion in `slot` (the slot's cache is reset first). The model
 * must have been created with kv_slots > slot, and tok's vocabulary size must
 * equal the model's. A prompt of kv_context tokens or more is refused with
 * CLLM_ERR_LIMIT naming both counts. */
cllm_status cllm_generate(cllm_model *m, int slot, const cllm_tokenizer *tok, cllm_sampler *sampler,
                          const uint32_t *prompt, int n_prompt, const cllm_generate_params *p,
                          cllm_generate_callback cb, void *ctx, cllm_generate_result *result,
                          cllm_error *err);

#endif
