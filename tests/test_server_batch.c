/*
 * test_server_batch.c: the pieces of the server that are plain functions:
 * cllm_model_decode_batch equals cllm_model_decode slot by slot (learned
 * positions and RoPE/SwiGLU/GQA shapes), its argument checks, the embedding
 * accessor, and the UTF-8 boundary cut of SSE text.
 */
#include <stdlib.h>
#include <string.h>

#include "../src/server/server_internal.h"
#include "cllm/model/model.h"
#include "test.h"

static cllm_model *make(const char *preset, int slots) {
    cllm_model_config cfg;
    cllm_error err;
    if (cllm_model_preset(preset, &cfg, &err) != CLLM_OK) return NULL;
    cfg.vocab_size = 97;
    cfg.context_length = 64;
    cllm_model_options o = cllm_model_default_options();
    o.max_seq = 8;
    o.kv_slots = slots;
    cllm_model *m = NULL;
    if (cllm_model_create(&cfg, &o, &m, &err) != CLLM_OK) return NULL;
    cllm_model_init_weights(m, 7);
    return m;
}

static void batch_matches(const char *preset) {
    cllm_model *a = make(preset, 3), *b = make(preset, 3);
    CHECK(a && b, "create %s", preset);
    if (!a || !b) goto done;
    const int V = 97;
    cllm_error err;
    /* Slot k holds a prompt of 3 + 2k tokens (different lengths => different positions). */
    for (int k = 0; k < 3; k++) {
        int32_t p[8];
        for (int i = 0; i < 3 + 2 * k; i++) p[i] = (int32_t)((i * 13 + k * 7) % V);
        CHECK(cllm_model_decode(a, k, p, 3 + 2 * k, 0, 0, NULL, &err) == CLLM_OK, "%s", err.msg);
        CHECK(cllm_model_decode(b, k, p, 3 + 2 * k, 0, 0, NULL, &err) == CLLM_OK, "%s", err.msg);
    }
    /* Two steps batched over slots {2, 0, 1} vs one slot at a time. */
    for (int step = 0; step < 2; step++) {
        int slots[3] = {2, 0, 1}, pos[3];
        int32_t toks[3];
        for (int r = 0; r < 3; r++) {
            pos[r] = cllm_model_kv_length(a, slots[r]);
            toks[r] = (int32_t)((5 + r * 11 + step) % V);
        }
        const float *lb = NULL;
        CHECK(cllm_model_decode_batch(a, 3, slots, toks, pos, &lb, &err) == CLLM_OK, "%s", err.msg);
        float *copy = malloc(3 * (size_t)V * sizeof *copy);
        memcpy(copy, lb, 3 * (size_t)V * sizeof *copy);
        for (int r = 0; r < 3; r++) {
            const float *ls = NULL;
            CHECK(cllm_model_decode(b, slots[r], &toks[r], 1, pos[r], 0, &ls, &err) == CLLM_OK, "%s", err.msg);
            double md = 0;
            for (int v = 0; v < V; v++) md = fmax(md, fabs(copy[(size_t)r * V + v] - ls[v]));
            /* Same operations on the same data; only GEMM blocking over 3 rows vs 1 may reorder sums. */
            CHECK_NEAR(md, 0.0, 1e-4, 0, "max |batched - single| logit");
            CHECK(cllm_model_kv_length(a, slots[r]) == pos[r] + 1, "slot length advanced");
        }
        free(copy);
    }
done:
    cllm_model_destroy(a);
    cllm_model_destroy(b);
}

static void test_server_batch_equals_single_gpt2(void) { batch_matches("tiny-gpt2"); }
static void test_server_batch_equals_single_llama(void) { batch_matches("tiny-llama"); }

/* Batched decode against the full forward pass (no cache) of each row's
 * sequence: an independent check of the batched attention. Row r starts
 * with a prompt of p0 + 2r tokens, then all rows step together to T. */
static void batch_vs_forward(int C, int NH, int NKV, int R, int T, int p0) {
    enum { V = 61 };
    cllm_model_config c;
    cllm_error err;
    if (cllm_model_preset("tiny-llama", &c, &err) != CLLM_OK) abort();
    c.vocab_size = V;
    c.context_length = T;
    c.n_embd = C;
    c.n_head = NH;
    c.n_kv_head = NKV;
    cllm_model_options o = cllm_model_default_options();
    o.max_batch = 1;
    o.max_seq = T;
    o.kv_slots = R;
    cllm_model *m = NULL;
    CHECK(cllm_model_create(&c, &o, &m, &err) == CLLM_OK, "%s", err.msg);
    if (!m) return;
    cllm_model_init_weights(m, 5);
    float *P = cllm_model_params(m);
    for (size_t i = 0; i < cllm_model_num_params(m); i++) P[i] *= 4.0f; /* sharper attention */
    int32_t *tok = malloc((size_t)R * T * sizeof *tok);
    float *full = malloc((size_t)R * T * V * sizeof *full);
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) tok[(size_t)r * T + t] = (int32_t)((t * 17 + r * 29 + t * t * r) % V);
    for (int r = 0; r < R; r++) {
        CHECK(cllm_model_forward(m, tok + (size_t)r * T, NULL, 1, T, NULL, &err) == CLLM_OK, "%s", err.msg);
        memcpy(full + (size_t)r * T * V, cllm_model_logits(m), (size_t)T * V * sizeof *full);
    }
    for (int r = 0; r < R; r++)
        CHECK(cllm_model_decode(m, r, tok + (size_t)r * T, p0 + 2 * r, 0, 0, NULL, &err) == CLLM_OK, "%s", err.msg);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < (size_t)R * T * V; i++) scale = fmax(scale, fabs(full[i]));
    int slots[R], pos[R];
    int32_t tk[R];
    for (int step = 0; step < T - p0 - 2 * (R - 1); step++) {
        for (int r = 0; r < R; r++) {
            slots[r] = (r + step) % R; /* rows in a changing slot order */
            pos[r] = cllm_model_kv_length(m, slots[r]);
            tk[r] = tok[(size_t)slots[r] * T + pos[r]];
        }
        const float *lg = NULL;
        CHECK(cllm_model_decode_batch(m, R, slots, tk, pos, &lg, &err) == CLLM_OK, "%s", err.msg);
        if (!lg) break;
        for (int r = 0; r < R; r++)
            for (int v = 0; v < V; v++)
                worst = fmax(worst, fabs(lg[(size_t)r * V + v] - full[((size_t)slots[r] * T + (size_t)pos[r]) * V + v]));
    }
    /* Same math, different summation order (GEMM blocking, vector lanes). */
    CHECK(worst <= 1e-4 * fmax(1.0, scale), "C %d NH %d R %d T %d: batched decode vs full forward: worst %.3g (logit scale %.3g)",
          C, NH, R, T, worst, scale);
    free(tok);
    free(full);
    cllm_model_destroy(m);
}

/* HS = 24: the vectorized 16-wide part of the dot product and its remainder;
 * GQA 4/2 shares each cached K/V head between two query heads. */
static void test_server_batch_equals_full_forward(void) { batch_vs_forward(96, 4, 2, 3, 10, 2); }

/* Enough work for the threaded attention paths (on a machine with more than
 * one core): 16 rows split by row, then one long row split by K/V head. */
static void test_server_batch_threaded_attention_equals_full_forward(void) {
    batch_vs_forward(256, 8, 4, 16, 96, 40);
    batch_vs_forward(256, 8, 4, 1, 1040, 1030);
}

static void test_server_batch_rejects_bad_rows(void) {
    cllm_model *m = make("tiny-gpt2", 2);
    CHECK(m != NULL, "create");
    if (!m) return;
    cllm_error err;
    int slots[2] = {0, 0}, pos[2] = {0, 0};
    int32_t toks[2] = {1, 2};
    CHECK(cllm_model_decode_batch(m, 2, slots, toks, pos, NULL, &err) == CLLM_ERR_ARG, "duplicate slot");
    int s1[1] = {5};
    CHECK(cllm_model_decode_batch(m, 1, s1, toks, pos, NULL, &err) == CLLM_ERR_ARG, "slot out of range");
    int s0[1] = {0}, p9[1] = {9};
    CHECK(cllm_model_decode_batch(m, 1, s0, toks, p9, NULL, &err) == CLLM_ERR_ARG, "pos beyond the cache");
    int32_t bad[1] = {97};
    CHECK(cllm_model_decode_batch(m, 1, s0, bad, pos, NULL, &err) == CLLM_ERR_ARG, "token >= V");
    CHECK(cllm_model_decode_batch(m, 9, s0, toks, pos, NULL, &err) == CLLM_ERR_LIMIT, "n > max_seq");
    cllm_model_destroy(m);
}

static void test_server_embed_unit_and_deterministic(void) {
    cllm_model *m = make("tiny-gpt2", 1);
    CHECK(m != NULL, "create");
    if (!m) return;
    const int C = cllm_model_get_config(m)->n_embd;
    float *e1 = malloc((size_t)C * sizeof *e1), *e2 = malloc((size_t)C * sizeof *e2);
    int32_t t[20];
    for (int i = 0; i < 20; i++) t[i] = (int32_t)(i * 3 % 97); /* 20 > max_seq 8: several chunks */
    cllm_error err;
    CHECK(cllm_model_embed(m, 0, t, 20, e1, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_embed(m, 0, t, 20, e2, &err) == CLLM_OK, "%s", err.msg);
    double ss = 0, diff = 0;
    for (int k = 0; k < C; k++) ss += (double)e1[k] * e1[k], diff = fmax(diff, fabs(e1[k] - e2[k]));
    CHECK_NEAR(ss, 1.0, 1e-5, 0, "unit L2 norm (float accumulation)");
    CHECK(diff == 0, "same input, same embedding");
    CHECK(cllm_model_embed(m, 0, t, 0, e1, &err) == CLLM_ERR_ARG, "empty input refused");
    CHECK(cllm_model_embed(m, 0, t, 65, e1, &err) == CLLM_ERR_LIMIT, "longer than the context refused");
    free(e1);
    free(e2);
    cllm_model_destroy(m);
}

static void test_server_utf8_cut(void) {
    CHECK(srv_utf8_complete("abc", 3) == 3, "ascii");
    CHECK(srv_utf8_complete("a\xC3\xA9", 3) == 3, "whole 2-byte char");
    CHECK(srv_utf8_complete("a\xC3", 2) == 1, "dangling lead byte cut");
    CHECK(srv_utf8_complete("a\xE2\x82", 3) == 1, "2 of 3 bytes cut");
    CHECK(srv_utf8_complete("\xF0\x9F\x98\x80", 4) == 4, "whole 4-byte char");
    CHECK(srv_utf8_complete("\xF0\x9F\x98", 3) == 0, "3 of 4 bytes cut");
    CHECK(srv_utf8_complete("", 0) == 0, "empty");
}

int main(void) {
    TEST_RUN(test_server_batch_equals_single_gpt2);
    TEST_RUN(test_server_batch_equals_single_llama);
    TEST_RUN(test_server_batch_equals_full_forward);
    TEST_RUN(test_server_batch_threaded_attention_equals_full_forward);
    TEST_RUN(test_server_batch_rejects_bad_rows);
    TEST_RUN(test_server_embed_unit_and_deterministic);
    TEST_RUN(test_server_utf8_cut);
    return test_finish();
}
