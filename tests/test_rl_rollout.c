/*
 * test_rl_rollout.c: the pieces that make RL rollouts cheap:
 * cllm_model_kv_copy (a copied slot continues exactly like the slot it was
 * copied from, for f32 and q8_0 caches; the source is left alone; bad
 * arguments are refused), cllm_model_decode_rows (several prompts prefilled
 * in one pass give each slot the logits and cache of its own prefill; bad
 * row orders refused) and rl_sample_batch's prefill modes (sharing a
 * repeated prompt's cache samples exactly the same completions; the
 * one-pass prefill gives the same greedy completions).
 */
#include <stdlib.h>
#include <string.h>

#include "../src/train/rl_internal.h"
#include "cllm/formats/ggml_types.h"
#include "cllm/model/model.h"
#include "test.h"

#define V 61

/* tiny-llama (RoPE, SwiGLU, GQA 4/2) widened so a head is 32 values: a
 * q8_0 cache needs whole 32-value blocks per head. */
static cllm_model *make(int kv_type, int slots, int max_seq) {
    cllm_model_config c;
    cllm_error err;
    if (cllm_model_preset("tiny-llama", &c, &err) != CLLM_OK) return NULL;
    c.vocab_size = V;
    c.context_length = 48;
    c.n_embd = 128;
    c.n_head = 4;
    c.n_kv_head = 2;
    c.ffn_hidden = 96;
    cllm_model_options o = cllm_model_default_options();
    o.max_seq = max_seq;
    o.max_batch = 1;
    o.kv_slots = slots;
    o.kv_type = kv_type;
    cllm_model *m = NULL;
    if (cllm_model_create(&c, &o, &m, &err) != CLLM_OK) return NULL;
    cllm_model_init_weights(m, 11);
    return m;
}

static double max_diff(const float *a, const float *b, int n) {
    double d = 0;
    for (int i = 0; i < n; i++) {
        double x = a[i] > b[i] ? a[i] - b[i] : b[i] - a[i];
        if (x > d || x != x) d = x;
    }
    return d;
}

/* Prefill slot 0, copy all of it to slot 1 and its first 4 positions to slot
 * 2, then continue each: slot 1 must give slot 0's logits, slot 2 (fed the
 * two prompt tokens it lacks) slot 0's prefill logits. */
static void kv_copy_continues(int kv_type) {
    cllm_model *m = make(kv_type, 3, 8);
    CHECK(m != NULL, "create (kv_type %d)", kv_type);
    if (!m) return;
    cllm_error err;
    const int32_t prompt[6] = {5, 17, 2, 40, 33, 9};
    float want_prefill[V], want_next[V];
    const float *lg = NULL;
    CHECK(cllm_model_decode(m, 0, prompt, 6, 0, 0, &lg, &err) == CLLM_OK, "%s", err.msg);
    memcpy(want_prefill, lg, sizeof want_prefill);
    CHECK(cllm_model_kv_copy(m, 1, 0, 6, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_kv_copy(m, 2, 0, 4, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_kv_length(m, 1) == 6 && cllm_model_kv_length(m, 2) == 4, "copied lengths %d %d",
          cllm_model_kv_length(m, 1), cllm_model_kv_length(m, 2));
    const int32_t t = 21;
    CHECK(cllm_model_decode(m, 0, &t, 1, 6, 0, &lg, &err) == CLLM_OK, "%s", err.msg);
    memcpy(want_next, lg, sizeof want_next);
    CHECK(cllm_model_decode(m, 1, &t, 1, 6, 0, &lg, &err) == CLLM_OK, "%s", err.msg);
    /* the copy holds the same bytes, and the step is the same computation */
    CHECK_NEAR(max_diff(lg, want_next, V), 0.0, 0.0, 0, "copied slot's next-token logits vs the source's");
    CHECK(cllm_model_decode(m, 2, prompt + 4, 2, 4, 0, &lg, &err) == CLLM_OK, "%s", err.msg);
    /* a 2-token chunk vs the 6-token prefill: same values, GEMM row blocking may reorder sums */
    CHECK_NEAR(max_diff(lg, want_prefill, V), 0.0, 1e-4, 0, "partial copy + rest of prompt vs full prefill");
    CHECK(cllm_model_kv_length(m, 0) == 7, "source slot untouched by the copies' decodes (%d)",
          cllm_model_kv_length(m, 0));
    cllm_model_destroy(m);
}

static void test_rl_rollout_kv_copy_f32(void) { kv_copy_continues(CLLM_GGML_F32); }
static void test_rl_rollout_kv_copy_q8_0(void) { kv_copy_continues(CLLM_GGML_Q8_0); }

static void test_rl_rollout_kv_copy_rejects_bad_args(void) {
    cllm_error err;
    cllm_model *m = make(CLLM_GGML_F32, 2, 8), *none = make(CLLM_GGML_F32, 0, 8);
    CHECK(m && none, "create");
    if (m && none) {
        const int32_t p[3] = {1, 2, 3};
        CHECK(cllm_model_decode(m, 0, p, 3, 0, 0, NULL, &err) == CLLM_OK, "%s", err.msg);
        CHECK(cllm_model_kv_copy(none, 1, 0, 1, &err) == CLLM_ERR_ARG, "no cache");
        CHECK(cllm_model_kv_copy(m, 2, 0, 1, &err) == CLLM_ERR_ARG, "dst slot out of range");
        CHECK(cllm_model_kv_copy(m, 1, -1, 1, &err) == CLLM_ERR_ARG, "src slot out of range");
        CHECK(cllm_model_kv_copy(m, 1, 0, 4, &err) == CLLM_ERR_ARG && strstr(err.msg, "holds 3"),
              "more positions than cached: %s", err.msg);
        CHECK(cllm_model_kv_length(m, 1) == 0, "a refused copy changes nothing");
    }
    cllm_model_destroy(m);
    cllm_model_destroy(none);
}

/* Three prompts (lengths 5, 3, 7) interleaved as rows of one
 * cllm_model_decode_rows call vs cllm_model_decode slot by slot: the last
 * rows' logits, then one more decoded token per slot (the caches). */
static void decode_rows_matches(int kv_type, double tol) {
    cllm_model *a = make(kv_type, 3, 16), *b = make(kv_type, 3, 16);
    CHECK(a && b, "create (kv_type %d)", kv_type);
    if (a && b) {
        cllm_error err;
        const int len[3] = {5, 3, 7};
        int32_t pr[3][7];
        for (int s = 0; s < 3; s++)
            for (int t = 0; t < len[s]; t++) pr[s][t] = (int32_t)((t * 19 + s * 5 + 1) % V);
        int slot[15], pos[15], r = 0;
        int32_t tok[15];
        unsigned char want[15];
        for (int t = 0; t < 7; t++) /* round robin: slot 0 t, slot 1 t, slot 2 t, ... */
            for (int s = 0; s < 3; s++)
                if (t < len[s]) {
                    slot[r] = s, pos[r] = t, tok[r] = pr[s][t], want[r] = t == len[s] - 1;
                    r++;
                }
        const float *lg = NULL;
        int nl = 0;
        CHECK(cllm_model_decode_rows(a, r, slot, tok, pos, want, &lg, &nl, &err) == CLLM_OK, "%s", err.msg);
        CHECK(nl == 3, "logits for the 3 wanted rows, got %d", nl);
        float got[3][V];
        if (nl == 3) memcpy(got, lg, sizeof got);
        /* wanted rows in row order: slot 1 (t = 2), slot 0 (t = 4), slot 2 (t = 6) */
        const int order[3] = {1, 0, 2};
        for (int k = 0; k < 3 && nl == 3; k++) {
            const int s = order[k];
            CHECK(cllm_model_decode(b, s, pr[s], len[s], 0, 0, &lg, &err) == CLLM_OK, "%s", err.msg);
            CHECK_NEAR(max_diff(got[k], lg, V), 0.0, tol, 0, "slot's prefill logits, rows vs one slot");
            CHECK(cllm_model_kv_length(a, s) == len[s], "slot %d length %d", s, cllm_model_kv_length(a, s));
        }
        for (int s = 0; s < 3; s++) {
            const int32_t t = 30;
            float want_lg[V];
            CHECK(cllm_model_decode(b, s, &t, 1, len[s], 0, &lg, &err) == CLLM_OK, "%s", err.msg);
            memcpy(want_lg, lg, sizeof want_lg);
            CHECK(cllm_model_decode(a, s, &t, 1, len[s], 0, &lg, &err) == CLLM_OK, "%s", err.msg);
            CHECK_NEAR(max_diff(lg, want_lg, V), 0.0, tol, 0, "next token over the rows-filled cache");
        }
    }
    cllm_model_destroy(a);
    cllm_model_destroy(b);
}

/* f32: the same values; GEMM blocking over 15 rows vs a few may reorder sums. */
static void test_rl_rollout_decode_rows_f32(void) { decode_rows_matches(CLLM_GGML_F32, 1e-4); }
/* q8_0: rows attend with q8_0 queries x q8_0 keys (integer dots), a prompt
 * chunk with f32 queries x dequantized keys: the query rounding (<= 1/254 of
 * each 32-value block's largest) moves these O(1) logits by ~3e-4 here. */
static void test_rl_rollout_decode_rows_q8_0(void) { decode_rows_matches(CLLM_GGML_Q8_0, 2e-3); }

static void test_rl_rollout_decode_rows_rejects_bad_rows(void) {
    cllm_error err;
    cllm_model *m = make(CLLM_GGML_F32, 2, 8), *none = make(CLLM_GGML_F32, 0, 8);
    CHECK(m && none, "create");
    if (m && none) {
        int slot[3] = {0, 0, 1}, pos[3] = {0, 2, 0};
        int32_t tok[3] = {1, 2, 3};
        CHECK(cllm_model_decode_rows(m, 3, slot, tok, pos, NULL, NULL, NULL, &err) == CLLM_ERR_ARG &&
                  strstr(err.msg, "previous row"),
              "a gap between a slot's rows: %s", err.msg);
        int pos2[3] = {1, 2, 0};
        CHECK(cllm_model_decode_rows(m, 3, slot, tok, pos2, NULL, NULL, NULL, &err) == CLLM_ERR_ARG &&
                  strstr(err.msg, "cache"),
              "a first row beyond the slot's cache: %s", err.msg);
        int pos3[3] = {0, 1, 0};
        tok[1] = V;
        CHECK(cllm_model_decode_rows(m, 3, slot, tok, pos3, NULL, NULL, NULL, &err) == CLLM_ERR_ARG, "token id >= V");
        tok[1] = 2;
        CHECK(cllm_model_decode_rows(m, 9, slot, tok, pos3, NULL, NULL, NULL, &err) == CLLM_ERR_LIMIT, "n > max_seq");
        CHECK(cllm_model_decode_rows(none, 3, slot, tok, pos3, NULL, NULL, NULL, &err) == CLLM_ERR_ARG, "no cache");
        CHECK(cllm_model_kv_length(m, 0) == 0 && cllm_model_kv_length(m, 1) == 0, "refused calls change nothing");
        const float *lg = NULL;
        int nl = 0;
        CHECK(cllm_model_decode_rows(m, 3, slot, tok, pos3, NULL, &lg, &nl, &err) == CLLM_OK && nl == 3,
              "want NULL: logits for every row (%d)", nl);
        CHECK(cllm_model_kv_length(m, 0) == 2 && cllm_model_kv_length(m, 1) == 1, "lengths after the rows");
    }
    cllm_model_destroy(m);
    cllm_model_destroy(none);
}

/* Runs rl_sample_batch on a fresh model (same weights every time) with a
 * fresh sampler (same seed); returns the tokens sampled. */
static int sample(int flags, float temperature, int n, const int32_t *const *prompts, const int *np, int max_new, int32_t *out,
                  int *count) {
    cllm_model *m = make(CLLM_GGML_F32, n, 8);
    cllm_error err;
    cllm_sampler_params sp = cllm_sampler_default_params();
    sp.temperature = temperature;
    sp.top_k = 0;
    sp.top_p = 1.0f;
    sp.min_p = 0.0f;
    sp.seed = 99;
    cllm_sampler *s = cllm_sampler_create(&sp, V, &err);
    int got = -1;
    if (m && s) {
        rl_turn_end end;
        memset(&end, 0, sizeof end);
        end.n_ids = 1;
        end.ids[0] = 7; /* some sequences stop early: the batch shrinks */
        got = rl_sample_batch(m, s, NULL, &end, n, prompts, np, max_new, flags, out, count, &err);
        CHECK(got > 0, "rl_sample_batch: %s", got < 0 ? err.msg : "nothing sampled");
    }
    cllm_sampler_destroy(s);
    cllm_model_destroy(m);
    return got;
}

static void test_rl_rollout_shared_prefill_same_samples(void) {
    enum { N = 6, MAX_NEW = 12 };
    /* a (3 times), b and an equal copy of b at another address, c (longer than max_seq = 8: chunked) */
    const int32_t a[5] = {3, 14, 15, 9, 26}, b[4] = {53, 5, 8, 9}, b2[4] = {53, 5, 8, 9};
    const int32_t c[11] = {2, 7, 1, 8, 28, 18, 28, 45, 9, 0, 4};
    const int32_t *prompts[N] = {a, b, a, b2, c, a};
    const int np[N] = {5, 4, 5, 4, 11, 5};
    int32_t out0[N * MAX_NEW], out1[N * MAX_NEW];
    int count0[N], count1[N];
    int g0 = sample(0, 1.0f, N, prompts, np, MAX_NEW, out0, count0);
    int g1 = sample(RL_PREFILL_SHARE, 1.0f, N, prompts, np, MAX_NEW, out1, count1);
    CHECK(g0 == g1, "tokens sampled: %d without sharing, %d with", g0, g1);
    int same = 1, sum = 0;
    for (int i = 0; i < N; i++) {
        sum += count0[i];
        if (count0[i] != count1[i] || memcmp(out0 + i * MAX_NEW, out1 + i * MAX_NEW, (size_t)count0[i] * 4))
            same = 0;
    }
    CHECK(same, "every completion is identical with and without the shared prefill");
    CHECK(sum == g0, "counts add up to the tokens sampled (%d vs %d)", sum, g0);
    /* the same prompt gives different samples (the sampler draws on), so equal outputs are not trivial */
    CHECK(count0[0] != count0[2] || memcmp(out0, out0 + 2 * MAX_NEW, (size_t)count0[0] * 4),
          "repeated prompts get their own samples");
}

/* The one-pass prefill (+ sharing) vs each slot prefilling its own, greedy:
 * the logits agree to float rounding, so the argmax paths agree unless two
 * logits tie within ~1e-5, which random weights do not produce here. */
static void test_rl_rollout_rows_prefill_same_greedy(void) {
    enum { N = 5, MAX_NEW = 10 };
    const int32_t a[6] = {3, 14, 15, 9, 26, 5}, b[3] = {35, 8, 9};
    const int32_t c[12] = {2, 7, 1, 8, 28, 18, 28, 45, 9, 0, 4, 52}; /* with a: 18 rows > max_seq 8: chunked */
    const int32_t *prompts[N] = {a, c, b, a, c};
    const int np[N] = {6, 12, 3, 6, 12};
    int32_t out0[N * MAX_NEW], out1[N * MAX_NEW];
    int count0[N], count1[N];
    int g0 = sample(0, 0.0f, N, prompts, np, MAX_NEW, out0, count0);
    int g1 = sample(RL_PREFILL_SHARE | RL_PREFILL_ROWS, 0.0f, N, prompts, np, MAX_NEW, out1, count1);
    CHECK(g0 == g1 && g0 > 0, "tokens sampled: %d per slot, %d in one pass", g0, g1);
    int same = 1;
    for (int i = 0; i < N; i++)
        if (count0[i] != count1[i] || memcmp(out0 + i * MAX_NEW, out1 + i * MAX_NEW, (size_t)count0[i] * 4)) same = 0;
    CHECK(same, "greedy completions identical with the one-pass prefill");
}

int main(void) {
    TEST_RUN(test_rl_rollout_kv_copy_f32);
    TEST_RUN(test_rl_rollout_kv_copy_q8_0);
    TEST_RUN(test_rl_rollout_kv_copy_rejects_bad_args);
    TEST_RUN(test_rl_rollout_decode_rows_f32);
    TEST_RUN(test_rl_rollout_decode_rows_q8_0);
    TEST_RUN(test_rl_rollout_decode_rows_rejects_bad_rows);
    TEST_RUN(test_rl_rollout_shared_prefill_same_samples);
    TEST_RUN(test_rl_rollout_rows_prefill_same_greedy);
    return test_finish();
}
