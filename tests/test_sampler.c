/*
 * test_sampler.c: each stage of the sampler chain, its order, determinism,
 * log-probabilities and parameter validation.
 */
#include <stdlib.h>

#include "cllm/infer/sampler.h"
#include "test.h"

static cllm_sampler_params plain_params(void) {
    /* Pure sampling from softmax(logits): every truncation stage off. */
    cllm_sampler_params p = cllm_sampler_default_params();
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = 42;
    return p;
}

/* Draws n samples and fills freq[V] with observed frequencies. */
static void draw(cllm_sampler_params p, const float *logits, int V, int n, double *freq) {
    cllm_error err;
    cllm_sampler *s = cllm_sampler_create(&p, V, &err);
    CHECK(s != NULL, "create: %s", err.msg);
    if (!s) return;
    for (int i = 0; i < V; i++) freq[i] = 0;
    for (int i = 0; i < n; i++) freq[cllm_sampler_sample(s, logits, NULL, NULL, 0)] += 1.0 / n;
    cllm_sampler_destroy(s);
}

static void test_sampler_greedy_picks_argmax(void) {
    float logits[5] = {0.1f, 2.0f, -1.0f, 1.99f, 0.0f};
    cllm_sampler_params p = plain_params();
    p.temperature = 0.0f;
    double f[5];
    draw(p, logits, 5, 50, f);
    CHECK(f[1] > 0.9999, "greedy always picks token 1 (freq %g)", f[1]);
    p = plain_params();
    p.temperature = 5.0f;
    p.top_k = 1;
    draw(p, logits, 5, 50, f);
    CHECK(f[1] > 0.9999, "top_k=1 is greedy whatever the temperature (freq %g)", f[1]);
}

static void test_sampler_matches_softmax_distribution(void) {
    float logits[4] = {1.0f, 0.0f, -0.5f, 2.0f};
    double expect[4], total = 0, f[4];
    for (int i = 0; i < 4; i++) total += exp(logits[i]);
    for (int i = 0; i < 4; i++) expect[i] = exp(logits[i]) / total;
    draw(plain_params(), logits, 4, 200000, f);
    /* 200k draws: standard error <= 0.0012; allow 5 sigma. */
    for (int i = 0; i < 4; i++) CHECK_NEAR(f[i], expect[i], 0.006, 0.0, "softmax frequency");
    /* Temperature 2 flattens: p ~ exp(l/2). */
    cllm_sampler_params p = plain_params();
    p.temperature = 2.0f;
    total = 0;
    for (int i = 0; i < 4; i++) total += exp(logits[i] / 2);
    draw(p, logits, 4, 200000, f);
    for (int i = 0; i < 4; i++) CHECK_NEAR(f[i], exp(logits[i] / 2) / total, 0.006, 0.0, "tempered frequency");
}

static void test_sampler_top_k_top_p_min_p_truncate(void) {
    /* probabilities 0.5, 0.3, 0.15, 0.05 */
    float logits[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    double f[4];
    cllm_sampler_params p = plain_params();
    p.top_k = 2;
    draw(p, logits, 4, 100000, f);
    CHECK(f[2] == 0 && f[3] == 0, "top_k=2 never picks tokens 2, 3");
    CHECK_NEAR(f[0], 0.5 / 0.8, 0.01, 0.0, "top_k renormalises");
    p = plain_params();
    p.top_p = 0.75f; /* 0.5 < 0.75 <= 0.8: keeps two */
    draw(p, logits, 4, 100000, f);
    CHECK(f[2] == 0 && f[3] == 0 && f[1] > 0.3, "top_p=0.75 keeps exactly two (f1 %g)", f[1]);
    p = plain_params();
    p.top_p = 0.85f; /* needs three */
    draw(p, logits, 4, 100000, f);
    CHECK(f[2] > 0.1 && f[3] == 0, "top_p=0.85 keeps three");
    p = plain_params();
    p.min_p = 0.2f; /* keep p >= 0.1 */
    draw(p, logits, 4, 100000, f);
    CHECK(f[2] > 0.1 && f[3] == 0, "min_p=0.2 drops only the 0.05 token");
}

static void test_sampler_top_p_on_large_vocab(void) {
    /* 50k tokens, a long flat tail: top_p must grow its sorted prefix past 64. */
    enum { V = 50257 };
    float *logits = malloc(V * sizeof *logits);
    for (int i = 0; i < V; i++) logits[i] = (float)(i % 97) * 0.01f;
    cllm_sampler_params p = plain_params();
    p.top_p = 0.5f;
    cllm_error err;
    cllm_sampler *s = cllm_sampler_create(&p, V, &err);
    int below = 0;
    for (int i = 0; i < 200; i++) {
        int32_t t = cllm_sampler_sample(s, logits, NULL, NULL, 0);
        /* kept set is the highest logits: residues >= about 47 of 97 */
        if (t % 97 < 40) below++;
    }
    CHECK(below == 0, "%d samples came from the excluded low half", below);
    cllm_sampler_destroy(s);
    p = plain_params();
    p.top_k = 40;
    p.temperature = 1.0f;
    s = cllm_sampler_create(&p, V, &err);
    for (int i = 0; i < V; i++) logits[i] = (float)((i * 7919) % V) / V;
    int ok = 1;
    for (int i = 0; i < 500; i++) {
        int32_t t = cllm_sampler_sample(s, logits, NULL, NULL, 0);
        ok &= logits[t] >= (float)(V - 40) / V;
    }
    CHECK(ok, "top_k=40 only draws from the 40 best of 50257");
    cllm_sampler_destroy(s);
    free(logits);
}

static void test_sampler_penalties_use_the_window(void) {
    cllm_error err;
    float logits[2] = {2.0f, 1.9f};
    cllm_sampler_params p = plain_params();
    p.temperature = 0.0f;
    p.repeat_penalty = 1.2f; /* 2.0 / 1.2 = 1.67 < 1.9 */
    p.penalty_window = 2;
    cllm_sampler *s = cllm_sampler_create(&p, 2, &err);
    CHECK(cllm_sampler_sample(s, logits, NULL, NULL, 0) == 0, "no history: argmax");
    cllm_sampler_accept(s, 0);
    CHECK(cllm_sampler_sample(s, logits, NULL, NULL, 0) == 1, "repeat penalty demotes token 0");
    cllm_sampler_accept(s, 1);
    cllm_sampler_accept(s, 1); /* token 0 has left the window of 2 */
    CHECK(cllm_sampler_sample(s, logits, NULL, NULL, 0) == 0, "outside the window: no penalty");
    cllm_sampler_destroy(s);

    float l2[2] = {1.0f, 0.5f};
    p = plain_params();
    p.temperature = 0.0f;
    p.frequency_penalty = 0.3f; /* seen twice: 1.0 - 0.6 = 0.4 < 0.5 */
    s = cllm_sampler_create(&p, 2, &err);
    cllm_sampler_accept(s, 0);
    CHECK(cllm_sampler_sample(s, l2, NULL, NULL, 0) == 0, "once: 0.7 > 0.5");
    cllm_sampler_accept(s, 0);
    CHECK(cllm_sampler_sample(s, l2, NULL, NULL, 0) == 1, "twice: 0.4 < 0.5");
    cllm_sampler_reset(s);
    CHECK(cllm_sampler_sample(s, l2, NULL, NULL, 0) == 0, "reset clears history");
    cllm_sampler_destroy(s);
    p.frequency_penalty = 0;
    p.presence_penalty = 0.6f; /* 1.0 - 0.6 = 0.4 */
    s = cllm_sampler_create(&p, 2, &err);
    cllm_sampler_accept(s, 0);
    CHECK(cllm_sampler_sample(s, l2, NULL, NULL, 0) == 1, "presence penalty applies once seen");
    cllm_sampler_destroy(s);
}

static void test_sampler_logit_bias_bans_and_promotes(void) {
    float logits[3] = {3.0f, 1.0f, 0.0f};
    cllm_sampler_params p = plain_params();
    p.n_bias = 2;
    p.bias[0] = (cllm_logit_bias){0, -INFINITY};
    p.bias[1] = (cllm_logit_bias){2, 5.0f};
    double f[3];
    draw(p, logits, 3, 20000, f);
    CHECK(f[0] == 0, "banned token never drawn");
    CHECK(f[2] > 0.95, "promoted token dominates (%g)", f[2]);
}

static void test_sampler_order_changes_result(void) {
    /* Temperature 10 before top_p flattens the distribution so top_p keeps more. */
    float logits[4] = {3.0f, 2.0f, 1.0f, 0.0f};
    double f[4];
    cllm_error err;
    cllm_sampler_params p = plain_params();
    p.temperature = 10.0f;
    p.top_p = 0.7f;
    CHECK(cllm_sampler_parse_order(&p, "top_p,temperature", &err) == CLLM_OK, "%s", err.msg);
    draw(p, logits, 4, 20000, f);
    CHECK(f[2] == 0 && f[3] == 0, "top_p first keeps two (p 0.64, 0.24)");
    CHECK(cllm_sampler_parse_order(&p, "temperature,top_p", &err) == CLLM_OK, "%s", err.msg);
    draw(p, logits, 4, 20000, f);
    CHECK(f[2] > 0.1, "temperature first keeps three or more");
    CHECK(cllm_sampler_parse_order(&p, "top_p,bogus", &err) == CLLM_ERR_ARG && strstr(err.msg, "bogus"),
          "unknown stage named: %s", err.msg);
    CHECK(cllm_sampler_parse_order(&p, "top_p,top_p", &err) == CLLM_ERR_ARG, "duplicate refused");
}

static void test_sampler_is_deterministic_per_seed(void) {
    float logits[6] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
    cllm_error err;
    cllm_sampler_params p = plain_params();
    cllm_sampler *a = cllm_sampler_create(&p, 6, &err), *b = cllm_sampler_create(&p, 6, &err);
    p.seed = 43;
    cllm_sampler *c = cllm_sampler_create(&p, 6, &err);
    int same = 1, differs = 0;
    for (int i = 0; i < 200; i++) {
        int32_t x = cllm_sampler_sample(a, logits, NULL, NULL, 0);
        same &= x == cllm_sampler_sample(b, logits, NULL, NULL, 0);
        differs |= x != cllm_sampler_sample(c, logits, NULL, NULL, 0);
    }
    CHECK(same, "same seed, same tokens");
    CHECK(differs, "another seed gives another sequence");
    cllm_sampler_destroy(a);
    cllm_sampler_destroy(b);
    cllm_sampler_destroy(c);
}

static void test_sampler_reports_model_logprobs(void) {
    float logits[5] = {0.0f, 1.0f, 2.0f, 3.0f, -1.0f};
    double lse = 0;
    for (int i = 0; i < 5; i++) lse += exp(logits[i]);
    lse = log(lse);
    cllm_sampler_params p = plain_params();
    p.temperature = 0.0f;
    p.repeat_penalty = 2.0f;
    cllm_error err;
    cllm_sampler *s = cllm_sampler_create(&p, 5, &err);
    cllm_sampler_accept(s, 3);
    cllm_token_logprob top[3];
    float lp = 0;
    int32_t t = cllm_sampler_sample(s, logits, &lp, top, 3);
    CHECK(t == 2, "penalised greedy choice is token 2 (got %d)", t);
    /* Log-probabilities are the model's, untouched by the penalty: float math, atol 1e-5. */
    CHECK_NEAR(lp, 2.0 - lse, 1e-5, 0, "chosen logprob");
    CHECK(top[0].token == 3 && top[1].token == 2 && top[2].token == 1, "top tokens in order");
    CHECK_NEAR(top[0].logprob, 3.0 - lse, 1e-5, 0, "top logprob");
    cllm_sampler_destroy(s);
}

static void test_sampler_rejects_out_of_range_params(void) {
    cllm_error err;
    struct { const char *field; cllm_sampler_params p; } cases[8];
    for (int i = 0; i < 8; i++) cases[i].p = cllm_sampler_default_params();
    cases[0].field = "temperature"; cases[0].p.temperature = NAN;
    cases[1].field = "temperature"; cases[1].p.temperature = 1e6f;
    cases[2].field = "top_p"; cases[2].p.top_p = 2.0f;
    cases[3].field = "top_p"; cases[3].p.top_p = -1.0f;
    cases[4].field = "top_k"; cases[4].p.top_k = -5;
    cases[5].field = "min_p"; cases[5].p.min_p = 1.5f;
    cases[6].field = "logit_bias"; cases[6].p.n_bias = 1; cases[6].p.bias[0] = (cllm_logit_bias){100, 1.0f};
    cases[7].field = "presence_penalty"; cases[7].p.presence_penalty = 3.0f;
    for (int i = 0; i < 8; i++) {
        cllm_sampler *s = cllm_sampler_create(&cases[i].p, 10, &err);
        CHECK(s == NULL && strstr(err.msg, cases[i].field), "case %d: expected an error naming %s, got '%s'", i,
              cases[i].field, s ? "(accepted)" : err.msg);
        cllm_sampler_destroy(s);
    }
}

/* A step with no finite logit is an error (-1), never a read past the
 * candidate list: every truncation stage and greedy, with and without
 * log-probabilities; the outputs are left untouched. A partly-NaN row
 * samples only among the finite logits, and its log-probabilities are finite
 * (or -inf for the NaN tokens), never NaN. */
static void test_sampler_no_finite_logit_is_an_error(void) {
    enum { V = 6 };
    float nan_row[V], inf_row[V], mixed[V];
    for (int i = 0; i < V; i++) nan_row[i] = NAN, inf_row[i] = i % 2 ? INFINITY : -INFINITY, mixed[i] = NAN;
    mixed[4] = 1.0f;
    struct { const char *name; float temperature, top_p, min_p; int top_k; } cases[] = {
        {"min_p 0.05", 1.0f, 1.0f, 0.05f, 0}, {"min_p 0.5", 1.0f, 1.0f, 0.5f, 0},
        {"top_p 0.9", 1.0f, 0.9f, 0.0f, 0},   {"temperature 0", 0.0f, 1.0f, 0.0f, 0},
        {"top_k 2", 0.7f, 1.0f, 0.0f, 2},     {"defaults", 0.8f, 0.95f, 0.05f, 40},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        cllm_sampler_params p = plain_params();
        p.temperature = cases[c].temperature, p.top_p = cases[c].top_p, p.min_p = cases[c].min_p;
        p.top_k = cases[c].top_k;
        cllm_error err;
        cllm_sampler *s = cllm_sampler_create(&p, V, &err);
        CHECK(s != NULL, "create: %s", err.msg);
        if (!s) continue;
        for (int with_lp = 0; with_lp < 2; with_lp++) {
            cllm_token_logprob top[3] = {{77, 7.0f}, {77, 7.0f}, {77, 7.0f}};
            float lp = 7.0f;
            int32_t t = cllm_sampler_sample(s, nan_row, with_lp ? &lp : NULL, with_lp ? top : NULL, with_lp ? 3 : 0);
            CHECK(t == -1, "%s: all-NaN row must return -1, got %d", cases[c].name, t);
            CHECK(lp == 7.0f && top[0].token == 77, "%s: outputs untouched on -1", cases[c].name);
            t = cllm_sampler_sample(s, inf_row, NULL, NULL, 0);
            CHECK(t == -1, "%s: all-inf row must return -1, got %d", cases[c].name, t);
            t = cllm_sampler_sample(s, mixed, with_lp ? &lp : NULL, with_lp ? top : NULL, with_lp ? 3 : 0);
            CHECK(t == 4, "%s: the only finite logit wins, got %d", cases[c].name, t);
            if (with_lp)
                CHECK(lp == 0.0f && top[0].token == 4 && top[0].logprob == 0.0f && !isnan(top[1].logprob),
                      "%s: logprobs over the finite logits (lp %g, top1 %g)", cases[c].name, lp, top[1].logprob);
        }
        cllm_sampler_destroy(s);
    }
}

/* A vocabulary's unused ids (placeholders, padding rows) and ids past its
 * size are never sampled once excluded, whatever their logits: greedy takes
 * the best used id, and sampling at temperature 1 never draws an excluded
 * one although they hold nearly all the probability. */
static void test_sampler_excludes_unused_ids(void) {
    enum { NV = 300, V = 310 }; /* ids 256..299 unused, 300..309 past the tokenizer */
    cllm_error err = {0};
    cllm_tokenizer *tok = NULL;
    cllm_status st = cllm_tokenizer_new(&tok, NV, CLLM_PRETOK_GPT2, NULL, &err);
    for (uint32_t b = 0; st == CLLM_OK && b < 256; b++) {
        const uint8_t byte = (uint8_t)b;
        st = cllm_tokenizer_set_token(tok, b, &byte, 1, CLLM_TOKEN_NORMAL, &err);
    }
    if (st == CLLM_OK) st = cllm_tokenizer_finalize(tok, CLLM_BPE_RANKS, &err);
    CHECK(st == CLLM_OK, "tokenizer: %s", err.msg);
    float logits[V];
    for (int i = 0; i < V; i++) logits[i] = i >= 256 ? 12.0f : 0.0f;
    logits[65] = 5.0f;
    for (int greedy = 0; st == CLLM_OK && greedy < 2; greedy++) {
        cllm_sampler_params p = plain_params();
        if (greedy) p.temperature = 0.0f;
        cllm_sampler *s = cllm_sampler_create(&p, V, &err);
        CHECK(s != NULL && cllm_sampler_exclude_unused(s, tok, &err) == CLLM_OK, "exclude: %s", err.msg);
        if (!s) continue;
        int bad = 0, saw65 = 0;
        for (int i = 0; i < 2000; i++) {
            const int32_t t = cllm_sampler_sample(s, logits, NULL, NULL, 0);
            bad += t < 0 || t >= 256;
            saw65 += t == 65;
        }
        CHECK(bad == 0, "%s: %d of 2000 samples were excluded ids", greedy ? "greedy" : "temperature 1", bad);
        /* softmax over the 256 byte ids alone: p(65) = e^5 / (e^5 + 255) = 0.368 */
        if (greedy) CHECK(saw65 == 2000, "greedy takes the best used id 65 (%d of 2000)", saw65);
        else CHECK(saw65 > 600 && saw65 < 880, "temperature 1: id 65 drawn %d of 2000 (expect ~736)", saw65);
        cllm_sampler_destroy(s);
    }
    cllm_tokenizer_destroy(tok);
}

int main(void) {
    TEST_RUN(test_sampler_greedy_picks_argmax);
    TEST_RUN(test_sampler_matches_softmax_distribution);
    TEST_RUN(test_sampler_top_k_top_p_min_p_truncate);
    TEST_RUN(test_sampler_top_p_on_large_vocab);
    TEST_RUN(test_sampler_penalties_use_the_window);
    TEST_RUN(test_sampler_logit_bias_bans_and_promotes);
    TEST_RUN(test_sampler_order_changes_result);
    TEST_RUN(test_sampler_is_deterministic_per_seed);
    TEST_RUN(test_sampler_reports_model_logprobs);
    TEST_RUN(test_sampler_rejects_out_of_range_params);
    TEST_RUN(test_sampler_no_finite_logit_is_an_error);
    TEST_RUN(test_sampler_excludes_unused_ids);
    return test_finish();
}
