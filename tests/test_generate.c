/*
 * test_generate.c: the generation loop end to end on a tiny random model with
 * a byte-level vocabulary: greedy decoding with the KV cache equals argmax of
 * full forward passes, stop strings and end tokens end generation without
 * leaking, the context limit and cancellation are honoured.
 */
#include <stdlib.h>

#include "cllm/infer/generate.h"
#include "test.h"

static cllm_model *model;
static cllm_tokenizer *bytes_tok;

static void setup(void) {
    cllm_error err;
    cllm_model_config cfg;
    if (cllm_model_preset("tiny-llama", &cfg, &err) != CLLM_OK) {
        fprintf(stderr, "preset: %s\n", err.msg);
        exit(1);
    }
    cfg.vocab_size = 256;
    cfg.context_length = 48;
    cllm_model_options opt = cllm_model_default_options();
    opt.max_seq = 16; /* smaller than prompts below: chunked prompt processing */
    opt.kv_slots = 2;
    if (cllm_model_create(&cfg, &opt, &model, &err) != CLLM_OK) {
        fprintf(stderr, "create: %s\n", err.msg);
        exit(1);
    }
    cllm_model_init_weights(model, 7);
    /* Larger weights so greedy output is not one repeated byte. */
    float *w = cllm_model_params(model);
    for (size_t i = 0; i < cllm_model_num_params(model); i++) w[i] *= 8.0f;
    if (cllm_tokenizer_new(&bytes_tok, 256, CLLM_PRETOK_NONE, NULL, &err) != CLLM_OK) exit(1);
    for (uint32_t b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        if (cllm_tokenizer_set_token(bytes_tok, b, &c, 1, CLLM_TOKEN_NORMAL, &err) != CLLM_OK) exit(1);
    }
    if (cllm_tokenizer_finalize(bytes_tok, CLLM_BPE_RANKS, &err) != CLLM_OK) {
        fprintf(stderr, "finalize: %s\n", err.msg);
        exit(1);
    }
}

/* Greedy over printable ASCII only, so the output is readable text. */
static cllm_sampler *ascii_greedy(void) {
    cllm_sampler_params p = cllm_sampler_default_params();
    p.temperature = 0.0f;
    p.n_bias = 0;
    for (int b = 0; b < 256; b++)
        if (b < 32 || b > 126) p.bias[p.n_bias++] = (cllm_logit_bias){b, -INFINITY};
    cllm_error err;
    return cllm_sampler_create(&p, 256, &err);
}

typedef struct {
    char text[512];
    size_t len;
    int32_t tokens[64];
    int n_tokens;
    int cancel_after;
} collected;

static int collect(void *ctx, const cllm_generate_event *ev) {
    collected *c = ctx;
    memcpy(c->text + c->len, ev->text, ev->len);
    c->len += ev->len;
    c->text[c->len] = 0;
    if (ev->token >= 0) c->tokens[c->n_tokens++] = ev->token;
    return c->cancel_after > 0 && c->n_tokens >= c->cancel_after;
}

static void test_generate_greedy_matches_full_forward(void) {
    cllm_error err;
    uint32_t prompt[20];
    for (int i = 0; i < 20; i++) prompt[i] = (uint32_t)('a' + i % 26);
    cllm_sampler *s = ascii_greedy();
    cllm_generate_params p = cllm_generate_default_params();
    p.max_tokens = 12;
    collected c = {0};
    cllm_generate_result r;
    CHECK(cllm_generate(model, 1, bytes_tok, s, prompt, 20, &p, collect, &c, &r, &err) == CLLM_OK, "%s", err.msg);
    CHECK(r.n_generated == 12 && r.finish == CLLM_FINISH_LENGTH, "12 tokens, finish %s",
          cllm_finish_reason_name(r.finish));
    CHECK(c.len == 12, "12 ASCII bytes of text (%zu)", c.len);
    /* Recompute each token with a full forward pass over prompt + generated. */
    int32_t seq[48];
    for (int i = 0; i < 20; i++) seq[i] = (int32_t)prompt[i];
    cllm_model *full = NULL;
    cllm_model_config cfg = *cllm_model_get_config(model);
    cllm_model_options opt = cllm_model_default_options();
    opt.max_seq = 48;
    CHECK(cllm_model_create(&cfg, &opt, &full, &err) == CLLM_OK, "%s", err.msg);
    memcpy(cllm_model_params(full), cllm_model_params(model), cllm_model_num_params(model) * sizeof(float));
    int agree = 1;
    for (int k = 0; k < 12; k++) {
        int T = 20 + k;
        CHECK(cllm_model_forward(full, seq, NULL, 1, T, NULL, &err) == CLLM_OK, "%s", err.msg);
        const float *logits = cllm_model_logits(full) + (size_t)(T - 1) * 256;
        int best = -1;
        for (int b = 32; b <= 126; b++)
            if (best < 0 || logits[b] > logits[best]) best = b;
        agree &= best == c.tokens[k];
        seq[T] = c.tokens[k];
    }
    CHECK(agree, "KV-cached greedy tokens equal full-forward argmax: '%s'", c.text);
    cllm_model_destroy(full);
    cllm_sampler_destroy(s);
}

static void test_generate_stops_on_string_and_eog(void) {
    cllm_error err;
    uint32_t prompt[5] = {'h', 'e', 'l', 'l', 'o'};
    cllm_generate_params p = cllm_generate_default_params();
    p.max_tokens = 10;
    collected ref = {0};
    cllm_generate_result r;
    cllm_sampler *s = ascii_greedy();
    CHECK(cllm_generate(model, 0, bytes_tok, s, prompt, 5, &p, collect, &ref, &r, &err) == CLLM_OK, "%s", err.msg);
    cllm_sampler_destroy(s);
    /* Stop at the 2-byte string starting at offset 4 of the reference output. */
    char stop[3] = {ref.text[4], ref.text[5], 0};
    const char *stops[] = {stop};
    p.stop = stops;
    p.n_stop = 1;
    collected c = {0};
    s = ascii_greedy();
    CHECK(cllm_generate(model, 0, bytes_tok, s, prompt, 5, &p, collect, &c, &r, &err) == CLLM_OK, "%s", err.msg);
    cllm_sampler_destroy(s);
    char *first = strstr(ref.text, stop);
    size_t expect = (size_t)(first - ref.text);
    CHECK(r.finish == CLLM_FINISH_STOP, "finish %s", cllm_finish_reason_name(r.finish));
    CHECK(c.len == expect && !memcmp(c.text, ref.text, expect), "text before the stop only: '%s' vs '%s'", c.text,
          ref.text);
    /* The third generated token declared end-of-generation: two tokens of text. */
    p.n_stop = 0;
    p.n_eog = 1;
    p.eog[0] = ref.tokens[2];
    int first_eog = 0;
    while (ref.tokens[first_eog] != ref.tokens[2]) first_eog++;
    collected e = {0};
    s = ascii_greedy();
    CHECK(cllm_generate(model, 0, bytes_tok, s, prompt, 5, &p, collect, &e, &r, &err) == CLLM_OK, "%s", err.msg);
    cllm_sampler_destroy(s);
    CHECK(r.finish == CLLM_FINISH_STOP && e.len == (size_t)first_eog, "eog ends generation, not emitted (%zu)", e.len);
}

static void test_generate_limits_and_cancel(void) {
    cllm_error err;
    uint32_t prompt[48];
    for (int i = 0; i < 48; i++) prompt[i] = 'x';
    cllm_generate_params p = cllm_generate_default_params();
    cllm_generate_result r;
    cllm_sampler *s = ascii_greedy();
    CHECK(cllm_generate(model, 0, bytes_tok, s, prompt, 48, &p, NULL, NULL, &r, &err) == CLLM_ERR_LIMIT &&
              strstr(err.msg, "48"), "prompt as long as the context refused: %s", err.msg);
    p.max_tokens = 100;
    collected c = {0};
    CHECK(cllm_generate(model, 0, bytes_tok, s, prompt, 40, &p, collect, &c, &r, &err) == CLLM_OK, "%s", err.msg);
    CHECK(r.finish == CLLM_FINISH_CONTEXT && r.n_generated == 9, "context end after 9 tokens: %s %d",
          cllm_finish_reason_name(r.finish), r.n_generated);
    collected k = {.cancel_after = 3};
    CHECK(cllm_generate(model, 0, bytes_tok, s, prompt, 4, &p, collect, &k, &r, &err) == CLLM_OK, "%s", err.msg);
    CHECK(r.finish == CLLM_FINISH_CANCELLED && k.n_tokens == 3, "cancelled after 3");
    CHECK(cllm_generate(model, 5, bytes_tok, s, prompt, 4, &p, NULL, NULL, &r, &err) == CLLM_ERR_ARG, "bad slot");
    cllm_sampler_destroy(s);
}

int main(void) {
    setup();
    TEST_RUN(test_generate_greedy_matches_full_forward);
    TEST_RUN(test_generate_stops_on_string_and_eog);
    TEST_RUN(test_generate_limits_and_cancel);
    cllm_model_destroy(model);
    cllm_tokenizer_destroy(bytes_tok);
    return test_finish();
}
