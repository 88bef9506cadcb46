/*
 * generate.c: the prompt -> tokens -> text loop described in generate.h.
 */
#include "cllm/infer/generate.h"

#include <stdlib.h>
#include <string.h>

#include "cllm/core/progress.h"

cllm_generate_params cllm_generate_default_params(void) {
    cllm_generate_params p;
    memset(&p, 0, sizeof p);
    p.max_tokens = 128;
    return p;
}

void cllm_generate_add_default_eog(cllm_generate_params *p, const cllm_tokenizer *tok) {
    static const char *const names[] = {"<|endoftext|>", "<|im_end|>", "<|eot_id|>"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int64_t id = cllm_tokenizer_special_id(tok, names[i]);
        if (id < 0 || p->n_eog >= CLLM_GENERATE_MAX_EOG) continue;
        int dup = 0;
        for (int k = 0; k < p->n_eog; k++) dup |= p->eog[k] == (int32_t)id;
        if (!dup) p->eog[p->n_eog++] = (int32_t)id;
    }
    int64_t eot = cllm_tokenizer_eot_id(tok); /* a SentencePiece vocabulary's </s> */
    int dup = eot < 0;
    for (int k = 0; k < p->n_eog && !dup; k++) dup = p->eog[k] == (int32_t)eot;
    if (!dup && p->n_eog < CLLM_GENERATE_MAX_EOG) p->eog[p->n_eog++] = (int32_t)eot;
}

void cllm_generate_chat_ends(cllm_generate_params *p, const cllm_tokenizer *tok, cllm_chat_template tmpl) {
    int32_t ends[CLLM_CHAT_MAX_END_TOKENS];
    int n_end = cllm_chat_end_tokens(tok, tmpl, ends);
    for (int k = 0; k < n_end && p->n_eog < CLLM_GENERATE_MAX_EOG; k++) p->eog[p->n_eog++] = ends[k];
    cllm_generate_add_default_eog(p, tok);
    const char *const *stop = cllm_chat_stop_strings(tok, tmpl);
    if (stop) p->stop = stop, p->n_stop = 1;
}

const char *cllm_finish_reason_name(cllm_finish_reason r) {
    static const char *const names[CLLM_FINISH_COUNT] = {"length", "stop", "context", "cancelled"};
    return (int)r >= 0 && r < CLLM_FINISH_COUNT ? names[r] : "unknown";
}

int cllm_generate_is_eog(const cllm_generate_params *p, int32_t token) {
    for (int i = 0; i < p->n_eog; i++)
        if (p->eog[i] == token) return 1;
    return 0;
}

cllm_status cllm_generate(cllm_model *m, int slot, const cllm_tokenizer *tok, cllm_sampler *sampler,
                          const uint32_t *prompt, int n_prompt, const cllm_generate_params *p,
                          cllm_generate_callback cb, void *ctx, cllm_generate_result *result,
                          cllm_error *err) {
    memset(result, 0, sizeof *result);
    const cllm_model_config *cfg = cllm_model_get_config(m);
    const cllm_model_options *opt = cllm_model_get_options(m);
    int kv_context = opt->kv_context > 0 ? opt->kv_context : cfg->context_length;
    if (slot < 0 || slot >= opt->kv_slots)
        return cllm_error_set(err, CLLM_ERR_ARG, "generate: slot %d does not exist (model has %d KV slots)", slot,
                              opt->kv_slots);
    if ((int64_t)cllm_tokenizer_n_vocab(tok) != cfg->vocab_size)
        return cllm_error_set(err, CLLM_ERR_ARG, "generate: tokenizer has %u tokens but the model's vocabulary is %d",
                              cllm_tokenizer_n_vocab(tok), cfg->vocab_size);
    if (p->max_tokens < 1)
        return cllm_error_set(err, CLLM_ERR_ARG, "generate: max_tokens must be >= 1, got %d", p->max_tokens);
    if (p->n_top_logprobs < 0 || p->n_top_logprobs > CLLM_GENERATE_MAX_TOP)
        return cllm_error_set(err, CLLM_ERR_ARG, "generate: top_logprobs must be in [0, %d], got %d",
                              CLLM_GENERATE_MAX_TOP, p->n_top_logprobs);
    if (n_prompt < 1) return cllm_error_set(err, CLLM_ERR_ARG, "generate: the prompt is empty");
    if (n_prompt >= kv_context)
        return cllm_error_set(err, CLLM_ERR_LIMIT,
                              "generate: the prompt has %d tokens but the context window holds %d "
                              "(the prompt must leave room for at least one new token)",
                              n_prompt, kv_context);
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] >= (uint32_t)cfg->vocab_size)
            return cllm_error_set(err, CLLM_ERR_ARG, "generate: prompt token %d has id %u >= vocabulary %d", i,
                                  prompt[i], cfg->vocab_size);
    cllm_text_stream text;
    cllm_status st = cllm_text_stream_init(&text, p->stop, p->n_stop, err);
    if (st != CLLM_OK) return st;

    int chunk_max = opt->max_seq;
    int32_t *chunk = malloc((size_t)chunk_max * sizeof *chunk);
    char *released = malloc(CLLM_TEXT_STREAM_OUT_MAX);
    if (!chunk || !released) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "generate: out of memory");
        goto done;
    }
    cllm_model_kv_reset(m, slot);
    double t0 = cllm_now_seconds();
    const float *logits = NULL;
    for (int pos = 0; pos < n_prompt; pos += chunk_max) {
        int n = n_prompt - pos < chunk_max ? n_prompt - pos : chunk_max;
        for (int i = 0; i < n; i++) chunk[i] = (int32_t)prompt[pos + i];
        st = cllm_model_decode(m, slot, chunk, n, pos, 0, &logits, err);
        if (st != CLLM_OK) goto done;
    }
    for (int i = 0; i < n_prompt; i++) cllm_sampler_accept(sampler, (int32_t)prompt[i]);
    result->n_prompt = n_prompt;
    double t1 = cllm_now_seconds();
    result->prompt_seconds = t1 - t0;

    cllm_token_logprob top[CLLM_GENERATE_MAX_TOP];
    int pos = n_prompt;
    result->finish = CLLM_FINISH_LENGTH;
    for (int step = 0; step < p->max_tokens; step++) {
        float lp = 0;
        int32_t token = cllm_sampler_sample(sampler, logits, &lp, top, p->n_top_logprobs);
        if (token == CLLM_SAMPLER_GRAMMAR_DEAD_END) {
            st = cllm_error_set(err, CLLM_ERR_ARG,
                                "generate: at position %d no token keeps the output valid under the grammar (the "
                                "vocabulary cannot spell what it needs next)",
                                pos);
            goto done;
        }
        if (token < 0) {
            st = cllm_error_set(err, CLLM_ERR_NUMERIC,
                                "generate: no finite logit at position %d (every logit is NaN or infinite: the "
                                "model's weights or activations have diverged)",
                                pos);
            goto done;
        }
        cllm_sampler_advance(sampler, token);
        result->n_generated++;
        int end = cllm_generate_is_eog(p, token);
        size_t rlen = 0;
        if (end) {
            rlen = cllm_text_stream_end(&text, released);
        } else {
            st = cllm_text_stream_token(&text, tok, (uint32_t)token, released, &rlen, err);
            if (st != CLLM_OK) goto done;
        }
        cllm_generate_event ev = {released, rlen, token, lp, top, p->n_top_logprobs};
        if (cb && cb(ctx, &ev)) {
            result->finish = CLLM_FINISH_CANCELLED;
            break;
        }
        if (end || cllm_text_stream_stopped(&text)) {
            result->finish = CLLM_FINISH_STOP;
            break;
        }
        int grammar_done = cllm_sampler_grammar_finished(sampler); /* nothing may follow: as at an eog token */
        if (grammar_done || pos >= kv_context || step + 1 == p->max_tokens) {
            if (grammar_done) result->finish = CLLM_FINISH_STOP;
            else if (step + 1 < p->max_tokens) result->finish = CLLM_FINISH_CONTEXT;
            /* Release what the stream still holds, as a text-only event. */
            rlen = cllm_text_stream_end(&text, released);
            cllm_generate_event tail = {released, rlen, -1, 0, NULL, 0};
            if (rlen > 0 && cb) cb(ctx, &tail);
            break;
        }
        st = cllm_model_decode(m, slot, &token, 1, pos, 0, &logits, err);
        if (st != CLLM_OK) goto done;
        pos++;
    }
    result->generate_seconds = cllm_now_seconds() - t1;
done:
    free(chunk);
    free(released);
    return st;
}
