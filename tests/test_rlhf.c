/*
 * test_rlhf.c: preference-tuning pieces: finite-difference checks of the
 * scalar head (in double, the layer compiled with CLLM_LAYERS_DOUBLE), of
 * every loss's gradient (Bradley-Terry, DPO, PPO policy and value, GRPO),
 * and of the model's backward from log-prob and hidden-state gradients;
 * DPO stability on identical and very long pairs; GAE against a direct sum;
 * preference JSONL parsing and its errors; the reference shape check.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/train/rlhf.h"
#include "cllm/core/rng.h"
#include "test.h"

/* ---- scalar head in double -------------------------------------------------- */
#define CLLM_LAYERS_DOUBLE
#include "../src/layers/layer_real.h"
void cllm_scalar_head_forward_d(double *out, const double *h, const double *w, const double *b, int N, int C);
void cllm_scalar_head_backward_d(double *dh, double *dw, double *db, const double *dout, const double *h,
                                 const double *w, int N, int C);
#include "../src/layers/scalar_head.c"
/* layer_real.h declares the double GEMM; the head never calls it */
void cllm_layers_test_dgemm(int ta, int tb, int M, int N, int K, double alpha, const double *A, int lda,
                            const double *B, int ldb, double beta, double *C, int ldc) {
    (void)ta, (void)tb, (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda, (void)B, (void)ldb,
        (void)beta, (void)C, (void)ldc;
}

static double head_loss(const double *h, const double *w, const double *b, const double *coef, int N, int C) {
    double out[8], s = 0;
    cllm_scalar_head_forward_d(out, h, w, b, N, C);
    for (int n = 0; n < N; n++) s += coef[n] * out[n] + 0.5 * out[n] * out[n];
    return s;
}

static void test_rlhf_scalar_head_gradients(void) {
    enum { N = 3, C = 5 };
    double h[N * C], w[C], b[1] = {0.3}, coef[N];
    cllm_rng rng;
    cllm_rng_seed(&rng, 7);
    for (int i = 0; i < N * C; i++) h[i] = cllm_rng_normal(&rng);
    for (int i = 0; i < C; i++) w[i] = cllm_rng_normal(&rng);
    for (int i = 0; i < N; i++) coef[i] = cllm_rng_normal(&rng);
    double out[N], dout[N], dh[N * C] = {0}, dw[C] = {0}, db[1] = {0};
    cllm_scalar_head_forward_d(out, h, w, b, N, C);
    for (int n = 0; n < N; n++) dout[n] = coef[n] + out[n];
    cllm_scalar_head_backward_d(dh, dw, db, dout, h, w, N, C);
    const double eps = 1e-6;
    double *params[3] = {h, w, b}, *grads[3] = {dh, dw, db};
    int sizes[3] = {N * C, C, 1};
    const char *names[3] = {"dh", "dw", "db"};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < sizes[k]; i++) {
            double keep = params[k][i];
            params[k][i] = keep + eps;
            double lp = head_loss(h, w, b, coef, N, C);
            params[k][i] = keep - eps;
            double lm = head_loss(h, w, b, coef, N, C);
            params[k][i] = keep;
            /* central differences in double: error O(eps^2) + rounding ~1e-10 */
            CHECK_NEAR(grads[k][i], (lp - lm) / (2 * eps), 1e-7, 1e-6, names[k]);
        }
    /* accumulation: a second backward doubles the gradients */
    cllm_scalar_head_backward_d(dh, dw, db, dout, h, w, N, C);
    double db1 = db[0] / 2;
    CHECK_NEAR(db[0], 2 * db1, 1e-12, 0, "db accumulates");
}

/* ---- losses by central differences on float inputs (the loss is computed in
 * double; steps of 1e-2 on O(1) values keep float rounding ~1e-7 / 1e-2
 * = 1e-5 relative). ---- */
typedef double (*loss_of)(float *x, void *ctx);

static void fd_check(const char *what, loss_of f, void *ctx, float *x, int n, const float *grad) {
    for (int i = 0; i < n; i++) {
        float keep = x[i];
        const float h = 1e-2f;
        x[i] = keep + h;
        double lp = f(x, ctx);
        x[i] = keep - h;
        double lm = f(x, ctx);
        x[i] = keep;
        double fd = (lp - lm) / (2.0 * h);
        /* O(h^2) truncation on smooth losses: ~1e-4 absolute */
        CHECK_NEAR(grad[i], fd, 5e-4, 1e-3, what);
    }
}

typedef struct {
    int n;
} bt_ctx;
static double bt_f(float *x, void *c) {
    int n = ((bt_ctx *)c)->n;
    return cllm_bt_loss(x, x + n, n, NULL, NULL, NULL);
}

static void test_rlhf_bt_loss_gradient_and_accuracy(void) {
    float x[8] = {0.5f, -1.0f, 2.0f, 0.0f, 0.1f, 0.3f, -2.0f, 0.0f}, g[8];
    int correct = -1;
    double loss = cllm_bt_loss(x, x + 4, 4, g, g + 4, &correct);
    CHECK(correct == 2, "pairs with rc > rr: got %d, expected 2", correct);
    double want = (log1p(exp(-0.4)) + log1p(exp(1.3)) + log1p(exp(-4.0)) + log(2.0)) / 4;
    CHECK_NEAR(loss, want, 1e-6, 1e-6, "BT loss value (float inputs)");
    bt_ctx c = {4};
    fd_check("BT gradient", bt_f, &c, x, 8, g);
}

typedef struct {
    int n;
    double beta;
    const double *ref;
} dpo_ctx;
static double dpo_f(float *x, void *cv) {
    dpo_ctx *c = cv;
    double pc[4], pr[4];
    for (int i = 0; i < c->n; i++) pc[i] = x[i], pr[i] = x[c->n + i];
    return cllm_dpo_loss(pc, pr, c->ref, c->ref + c->n, c->n, c->beta, NULL, NULL, NULL);
}

static void test_rlhf_dpo_loss_gradient_and_stats(void) {
    float x[8] = {-3.0f, -10.0f, -2.5f, -7.0f, -4.0f, -9.0f, -2.5f, -1.0f};
    double ref[8] = {-3.5f, -9.0f, -2.0f, -8.0f, -3.8f, -9.5f, -2.0f, -1.5f};
    double pc[4], pr[4], dc[4], dr[4];
    for (int i = 0; i < 4; i++) pc[i] = x[i], pr[i] = x[4 + i];
    cllm_dpo_stats st;
    cllm_dpo_loss(pc, pr, ref, ref + 4, 4, 0.5, dc, dr, &st);
    float g[8];
    for (int i = 0; i < 4; i++) g[i] = (float)dc[i], g[4 + i] = (float)dr[i];
    dpo_ctx c = {4, 0.5, ref};
    fd_check("DPO gradient", dpo_f, &c, x, 8, g);
    double rc0 = 0.5 * (-3.0 + 3.5);
    double want_rc = (rc0 + 0.5 * (-10 + 9) + 0.5 * (-2.5 + 2.0) + 0.5 * (-7 + 8)) / 4;
    CHECK_NEAR(st.reward_chosen, want_rc, 1e-9, 1e-9, "mean chosen reward");
    CHECK_NEAR(st.margin, st.reward_chosen - st.reward_rejected, 1e-12, 0, "margin = chosen - rejected");
    CHECK(st.accuracy >= 0 && st.accuracy <= 1, "accuracy %g in [0,1]", st.accuracy);
}

static void test_rlhf_dpo_no_nan_identical_and_long(void) {
    /* identical pairs: z = 0 exactly, loss log 2, gradient -beta/2/n */
    double a[2] = {-50.0, -50.0}, r[2] = {-60.0, -60.0}, dc[2], dr[2];
    cllm_dpo_stats st;
    double loss = cllm_dpo_loss(a, a, r, r, 2, 0.1, dc, dr, &st);
    CHECK_NEAR(loss, log(2.0), 1e-12, 0, "identical pairs give log 2");
    CHECK_NEAR(dc[0], -0.1 * 0.5 / 2, 1e-12, 0, "identical-pair gradient");
    CHECK(st.accuracy == 0, "ties are not counted as correct");
    /* sums of ~1e5 tokens: margins of thousands, either sign */
    double pc[2] = {-1.0e5, -3.0e5}, pr[2] = {-3.0e5, -1.0e5}, rc[2] = {-2.0e5, -2.0e5}, rr[2] = {-2.0e5, -2.0e5};
    loss = cllm_dpo_loss(pc, pr, rc, rr, 2, 1.0, dc, dr, &st);
    CHECK(isfinite(loss) && isfinite(dc[0]) && isfinite(dc[1]) && isfinite(dr[0]) && isfinite(dr[1]),
          "long pairs stay finite: loss %g", loss);
    /* one pair at z = +2e5 (loss ~0), one at z = -2e5 (loss 2e5): mean 1e5 */
    CHECK_NEAR(loss, 1.0e5, 1e-6, 1e-9, "softplus of huge margins is exact");
}

typedef struct {
    int n;
    const float *old, *adv, *ref;
    float eps, beta;
    int grpo;
} ppo_ctx;
static double ppo_f(float *x, void *cv) {
    ppo_ctx *c = cv;
    if (c->grpo) return cllm_grpo_loss(x, c->old, c->ref, c->adv, c->n, c->eps, c->beta, NULL, NULL);
    return cllm_ppo_policy_loss(x, c->old, c->adv, c->n, c->eps, NULL, NULL);
}
static double value_f(float *x, void *cv) {
    ppo_ctx *c = cv;
    return cllm_ppo_value_loss(x, c->old, c->adv, c->n, c->eps, NULL, NULL);
}

static void test_rlhf_ppo_losses_gradients_and_clipping(void) {
    /* ratios chosen away from the clip edges (1 +- 0.2) so the loss is smooth
     * within +-h: r = exp(logp - old) in {1.05, 0.5, 1.6, 0.95, 1.1, 0.7} */
    float old[6] = {-1.0f, -2.0f, -0.5f, -3.0f, -1.5f, -0.7f};
    float dl[6] = {0.0488f, -0.693f, 0.47f, -0.0513f, 0.0953f, -0.357f};
    float adv[6] = {1.0f, 1.0f, 1.0f, -0.5f, -2.0f, -1.0f};
    float lp[6], g[6];
    for (int i = 0; i < 6; i++) lp[i] = old[i] + dl[i];
    cllm_ppo_stats st;
    cllm_ppo_policy_loss(lp, old, adv, 6, 0.2f, g, &st);
    /* clipped: r=1.6 with A>0 (pessimistic clip at 1.2) and r=0.7 with A<0 (clip at 0.8) */
    CHECK_NEAR(st.clip_frac, 2.0 / 6.0, 1e-12, 0, "clip fraction");
    CHECK(g[2] == 0.0f && g[5] == 0.0f, "clipped tokens have no gradient (%g, %g)", g[2], g[5]);
    ppo_ctx c = {6, old, adv, NULL, 0.2f, 0, 0};
    fd_check("PPO policy gradient", ppo_f, &c, lp, 6, g);
    CHECK(st.approx_kl >= 0, "approx KL >= 0: %g", st.approx_kl);
    /* value loss: v - v_old in {0.05, 0.5 (clipped), -0.6 (clipped), 0.1} */
    float v_old[4] = {0.0f, 1.0f, 0.5f, -1.0f}, ret[4] = {1.0f, 0.0f, 2.0f, -0.5f}, v[4], dv[4];
    float dvv[4] = {0.05f, 0.5f, -0.6f, 0.1f};
    for (int i = 0; i < 4; i++) v[i] = v_old[i] + dvv[i];
    cllm_ppo_value_loss(v, v_old, ret, 4, 0.2f, dv, &st);
    ppo_ctx cv = {4, v_old, ret, NULL, 0.2f, 0, 0};
    fd_check("PPO value gradient", value_f, &cv, v, 4, dv);
    /* GRPO = PPO surrogate + beta * k3 */
    float ref[6] = {-1.2f, -1.5f, -0.4f, -2.0f, -1.0f, -0.9f};
    cllm_grpo_stats gs;
    cllm_grpo_loss(lp, old, ref, adv, 6, 0.2f, 0.1f, g, &gs);
    ppo_ctx cg = {6, old, adv, ref, 0.2f, 0.1f, 1};
    fd_check("GRPO gradient", ppo_f, &cg, lp, 6, g);
    CHECK(gs.kl > 0, "k3 KL of different distributions > 0: %g", gs.kl);
}

static void test_rlhf_gae_matches_direct_sum(void) {
    float r[5] = {0.1f, -0.2f, 0.0f, 0.3f, 1.0f}, v[5] = {0.5f, 0.4f, -0.1f, 0.2f, 0.6f}, adv[5], ret[5];
    const double gamma = 0.9, lam = 0.8;
    cllm_gae(r, v, 5, (float)gamma, (float)lam, adv, ret);
    for (int t = 0; t < 5; t++) {
        double a = 0, w = 1;
        for (int k = t; k < 5; k++) {
            double vn = k + 1 < 5 ? v[k + 1] : 0.0;
            a += w * (r[k] + gamma * vn - v[k]);
            w *= gamma * lam;
        }
        CHECK_NEAR(adv[t], a, 1e-6, 1e-6, "GAE advantage (float storage)");
        CHECK_NEAR(ret[t], a + v[t], 1e-6, 1e-6, "GAE return");
    }
}

static void test_rlhf_grpo_advantages_normalised(void) {
    float r[8] = {1, 0, 0, 1, 0.5f, 0.5f, 0.5f, 0.5f}, a[8];
    cllm_grpo_advantages(r, 2, 4, a);
    /* group 1: mean 0.5, std 0.5 -> +-1 (minus the 1e-4 guard) */
    CHECK_NEAR(a[0], 0.5 / (0.5 + 1e-4), 1e-6, 0, "advantage of a winner");
    CHECK_NEAR(a[1], -0.5 / (0.5 + 1e-4), 1e-6, 0, "advantage of a loser");
    for (int i = 4; i < 8; i++) CHECK(a[i] == 0.0f, "all-equal group has zero advantages (%g)", a[i]);
}

/* ---- the model's backward from log-prob and hidden gradients ---------------- */
/* At temperature T the log-probs are of softmax(logits / T) and the
 * backward must match their finite differences (RL scores rollouts at the
 * temperature they were sampled with). */
static void check_backward_heads(float temperature) {
    cllm_model_config cfg;
    cllm_error err;
    CHECK(cllm_model_preset("tiny-gpt2", &cfg, &err) == CLLM_OK, "%s", err.msg);
    cfg.vocab_size = 11;
    cfg.context_length = 8;
    cfg.dropout = 0;
    cllm_model_options o = cllm_model_default_options();
    o.max_batch = 2;
    o.max_seq = 6;
    o.training = 1;
    cllm_model *m = NULL;
    if (cllm_model_create(&cfg, &o, &m, &err) != CLLM_OK) {
        CHECK(0, "%s", err.msg);
        return;
    }
    cllm_model_init_weights(m, 3);
    const int C = cfg.n_embd, B = 2, T = 6, V = cfg.vocab_size;
    int32_t tokens[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 1};
    int32_t targets[12] = {-1, 3, 4, 5, -1, -1, -1, -1, 10, 0, 1, 2};
    CHECK(cllm_model_set_logit_temperature(m, 0.0f, &err) != CLLM_OK, "temperature 0 refused");
    CHECK(cllm_model_set_logit_temperature(m, temperature, &err) == CLLM_OK, "%s", err.msg);
    {   /* tempered log-probs == log softmax(raw logits / T), raw from a forward without targets */
        float raw[12 * 11], lp[12];
        CHECK(cllm_model_forward(m, tokens, NULL, B, T, NULL, &err) == CLLM_OK, "%s", err.msg);
        memcpy(raw, cllm_model_logits(m), sizeof raw);
        CHECK(cllm_model_forward(m, tokens, targets, B, T, NULL, &err) == CLLM_OK, "%s", err.msg);
        cllm_model_token_logprobs(m, lp, &err);
        for (int i = 0; i < 12; i++) {
            if (targets[i] < 0) continue;
            double mx = -1e30, z = 0;
            for (int v = 0; v < V; v++) mx = fmax(mx, raw[i * V + v] / temperature);
            for (int v = 0; v < V; v++) z += exp(raw[i * V + v] / temperature - mx);
            CHECK_NEAR(lp[i], raw[i * V + targets[i]] / temperature - mx - log(z), 1e-5, 1e-5,
                       "tempered log-prob (float softmax)");
        }
    }
    float coef[12], *hw = malloc((size_t)C * sizeof *hw);
    cllm_rng rng;
    cllm_rng_seed(&rng, 11);
    for (int i = 0; i < 12; i++) coef[i] = cllm_rng_normal(&rng);
    for (int i = 0; i < C; i++) hw[i] = cllm_rng_normal(&rng);
    /* loss = sum_t coef_t logp_t + sum_t 0.1 * (hw . h_t) at positions 2 and 9 */
    float logp[12];
    const int hpos[2] = {2, 9};
#define EVAL_LOSS(out)                                                                    \
    do {                                                                                  \
        CHECK(cllm_model_forward(m, tokens, targets, B, T, NULL, &err) == CLLM_OK, "%s", err.msg); \
        cllm_model_token_logprobs(m, logp, &err);                                         \
        double s_ = 0;                                                                    \
        for (int i_ = 0; i_ < 12; i_++) s_ += coef[i_] * logp[i_];                        \
        const float *h_ = cllm_model_hidden(m);                                           \
        for (int k_ = 0; k_ < 2; k_++) {                                                  \
            float r_;                                                                     \
            cllm_scalar_head_forward(&r_, h_ + (size_t)hpos[k_] * C, hw, NULL, 1, C);     \
            s_ += 0.1 * r_;                                                               \
        }                                                                                 \
        out = s_;                                                                         \
    } while (0)
    double base;
    EVAL_LOSS(base);
    (void)base;
    float *dh = calloc((size_t)B * T * C, sizeof *dh);
    float dr[2] = {0.1f, 0.1f};
    for (int k = 0; k < 2; k++) cllm_scalar_head_backward(dh + (size_t)hpos[k] * C, NULL, NULL, &dr[k], NULL, hw, 1, C);
    cllm_model_zero_grad(m);
    CHECK(cllm_model_backward_heads(m, coef, dh, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_model_backward_heads(m, coef, dh, &err) != CLLM_OK, "a second backward of one forward is refused");
    /* compare a few parameters of several tensors */
    int checked = 0;
    for (int ti = 0; ti < cllm_model_num_tensors(m); ti += 3) {
        const cllm_tensor *t = cllm_model_tensor(m, ti);
        for (size_t j = 0; j < t->numel; j += t->numel / 3 + 1) {
            float keep = t->data[j];
            const float h = 1e-2f;
            double lp, lm;
            t->data[j] = keep + h;
            EVAL_LOSS(lp);
            t->data[j] = keep - h;
            EVAL_LOSS(lm);
            t->data[j] = keep;
            /* float forward: differences of O(1) losses over 2e-2, ~1e-4 noise */
            CHECK_NEAR(t->grad[j], (lp - lm) / (2 * h), 2e-3, 2e-2, t->name);
            checked++;
        }
    }
    CHECK(checked > 10, "checked %d parameters", checked);
#undef EVAL_LOSS
    free(dh);
    free(hw);
    cllm_model_destroy(m);
}

static void test_rlhf_model_backward_heads_matches_finite_differences(void) { check_backward_heads(1.0f); }
static void test_rlhf_model_backward_heads_tempered(void) { check_backward_heads(0.7f); }

/* ---- preference data ------------------------------------------------------- */
static cllm_status parse(const char *text, int prompt_only, int max_tokens, cllm_pref_data *d, cllm_error *err) {
    cllm_tokenizer *tok = NULL;
    cllm_status st = cllm_tokenizer_new_bytes(&tok, err);
    if (st) return st;
    cllm_pref_load_params p = {prompt_only, max_tokens};
    st = cllm_pref_data_parse(text, strlen(text), "t.jsonl", tok, cllm_chat_template_builtin(CLLM_CHAT_TEMPLATE_PLAIN), &p, d, err);
    cllm_tokenizer_destroy(tok);
    return st;
}

static void test_rlhf_pref_data_formats(void) {
    cllm_pref_data d = {0};
    cllm_error err;
    const char *text = "\xEF\xBB\xBF{\"prompt\":\"1+1\",\"chosen\":\"2\",\"rejected\":\"3\"}\r\n\n"
                       "{\"prompt\":[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"2+2\"}],"
                       "\"chosen\":[{\"role\":\"assistant\",\"content\":\"4\"}],\"rejected\":[{\"role\":\"assistant\",\"content\":\"5\"}]}\n";
    CHECK(parse(text, 0, 256, &d, &err) == CLLM_OK, "%s", err.msg);
    CHECK(d.n == 2, "examples: %d", d.n);
    if (d.n == 2) {
        const char *want = "### User:\n1+1\n\n### Assistant:\n";
        int ok = d.items[0].n_prompt == (int)strlen(want);
        for (int i = 0; ok && i < d.items[0].n_prompt; i++) ok = d.items[0].prompt[i] == (unsigned char)want[i];
        CHECK(ok, "prompt ids are the PLAIN rendering with the generation header");
        /* "2" then the PLAIN turn end "\n\n" (bytes vocabulary has no end-of-text) */
        CHECK(d.items[0].n_chosen == 3 && d.items[0].chosen[0] == '2' && d.items[0].chosen[1] == '\n',
              "chosen ids: n=%d", d.items[0].n_chosen);
        CHECK(d.items[1].line == 3, "line numbers count blank lines: %d", d.items[1].line);
        CHECK(d.items[1].n_prompt > d.items[0].n_prompt, "system turn rendered into the prompt");
    }
    cllm_pref_data_free(&d);
    CHECK(parse("{\"prompt\":\"5+3\",\"answer\":8}\n", 1, 256, &d, &err) == CLLM_OK, "%s", err.msg);
    CHECK(d.n == 1 && d.items[0].answer && strcmp(d.items[0].answer, "8") == 0, "numeric answer kept as text");
    cllm_pref_data_free(&d);
}

static void expect_error(const char *text, int prompt_only, int max_tokens, const char *needle) {
    cllm_pref_data d = {0};
    cllm_error err = {0};
    cllm_status st = parse(text, prompt_only, max_tokens, &d, &err);
    CHECK(st != CLLM_OK, "accepted bad input: %s", text);
    CHECK(strstr(err.msg, needle) != NULL, "error '%s' lacks '%s'", err.msg, needle);
    CHECK(d.items == NULL && d.n == 0, "nothing returned on error");
}

static void test_rlhf_pref_data_errors(void) {
    expect_error("{\"prompt\":\"a\",\"chosen\":\"b\",\"rejected\":\"c\"}\n{\"prompt\": \"a\", \"chosen\" \"b\"}\n", 0, 256,
                 "t.jsonl:2:");
    expect_error("{\"prompt\":\"a\",\"rejected\":\"c\"}\n", 0, 256, "t.jsonl:1: field \"chosen\": missing");
    expect_error("{\"prompt\":7,\"chosen\":\"b\",\"rejected\":\"c\"}\n", 0, 256, "field \"prompt\": must be a string");
    expect_error("{\"prompt\":\"a\",\"chosen\":\"\",\"rejected\":\"c\"}\n", 0, 256, "field \"chosen\": empty completion");
    expect_error("{\"prompt\":\"a\",\"chosen\":[{\"role\":\"user\",\"content\":\"x\"}],\"rejected\":\"c\"}\n", 0, 256,
                 "assistant messages only");
    expect_error("{\"prompt\":[{\"role\":\"wizard\",\"content\":\"x\"}],\"chosen\":\"b\",\"rejected\":\"c\"}\n", 0, 256,
                 "unknown role");
    expect_error("{\"prompt\":\"a long prompt here\",\"chosen\":\"b\",\"rejected\":\"c\"}\n", 0, 20, "exceed the 20-token");
    expect_error("{\"prompt\":\"a long prompt here\"}\n", 1, 20, "leave no room");
    expect_error("{\"prompt\":\"a\",\"answer\":[1]}\n", 1, 256, "field \"answer\"");
    expect_error("\n\n", 0, 256, "no examples");
    expect_error("[1,2]\n", 0, 256, "t.jsonl:1:1: each line must be a JSON object");
}

static void test_rlhf_reference_shape_mismatch_names_both(void) {
    cllm_model_config a, b;
    cllm_error err;
    cllm_model_preset("tiny-gpt2", &a, &err);
    b = a;
    b.n_layer = a.n_layer + 1;
    CHECK(cllm_rl_check_same_shape(&a, &a, "reference model", &err) == CLLM_OK, "same shapes accepted");
    CHECK(cllm_rl_check_same_shape(&a, &b, "reference model", &err) != CLLM_OK, "different depth rejected");
    char la[32], lb[32];
    snprintf(la, sizeof la, "L=%d ", a.n_layer);
    snprintf(lb, sizeof lb, "L=%d ", b.n_layer);
    CHECK(strstr(err.msg, la) && strstr(err.msg, lb) && strstr(err.msg, "reference model"), "message: %s", err.msg);
}

static void test_rlhf_verifiable_rewards(void) {
    cllm_vreward *ex = NULL, *num = NULL, *re = NULL;
    cllm_error err;
    CHECK(cllm_vreward_create(CLLM_VREWARD_EXACT, NULL, &ex, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_vreward_create(CLLM_VREWARD_NUMBER, NULL, &num, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_vreward_create(CLLM_VREWARD_REGEX, "^[0-9]+$", &re, &err) == CLLM_OK, "%s", err.msg);
    cllm_vreward *bad = NULL;
    CHECK(cllm_vreward_create(CLLM_VREWARD_REGEX, "([", &bad, &err) != CLLM_OK && strstr(err.msg, "offset") && !bad,
          "bad regex names the offset: %s", err.msg);
    if (ex && num && re) {
        CHECK(cllm_vreward_score(ex, " 7 ", 3, "7") == 1.0f, "exact after trimming");
        CHECK(cllm_vreward_score(ex, "77", 2, "7") == 0.0f, "exact rejects 77");
        CHECK(cllm_vreward_score(num, "it is -12.5!", 12, "-12.50") == 1.0f, "number match");
        CHECK(cllm_vreward_score(num, "it is 12", 8, "-12") == 0.0f, "number sign matters");
        CHECK(cllm_vreward_score(num, "none", 4, "3") == 0.0f, "no number, no reward");
        CHECK(cllm_vreward_score(re, "123", 3, NULL) == 1.0f && cllm_vreward_score(re, "12a", 3, NULL) == 0.0f,
              "regex match");
    }
    cllm_vreward *tc = NULL;
    CHECK(cllm_vreward_create(CLLM_VREWARD_TOOL_CALL, NULL, &tc, &err) == CLLM_OK, "%s", err.msg);
    if (tc) {
        const char *want = "{\"name\": \"calculator\", \"arguments\": \"{\\\"expression\\\": \\\"4821 + 377\\\"}\"}";
        const char *good = "<tool_call>\n{\"name\":\"calculator\",\"arguments\":{\"expression\":\"4821 + 377\"}}\n</tool_call>";
        const char *wrong = "<tool_call>\n{\"name\":\"calculator\",\"arguments\":{\"expression\":\"4821 + 378\"}}\n</tool_call>";
        const char *other = "<tool_call>\n{\"name\":\"stock\",\"arguments\":{\"expression\":\"4821 + 377\"}}\n</tool_call>";
        CHECK(cllm_vreward_score(tc, good, strlen(good), want) == 1.0f, "the expected call (arguments as a string or object)");
        CHECK(cllm_vreward_score(tc, wrong, strlen(wrong), want) == 0.0f, "a wrong argument");
        CHECK(cllm_vreward_score(tc, other, strlen(other), want) == 0.0f, "another tool");
        CHECK(cllm_vreward_score(tc, "5198", 4, want) == 0.0f, "no call");
        CHECK(cllm_vreward_score(tc, good, strlen(good) - 3, want) == 0.0f, "an unfinished call");
    }
    cllm_vreward_destroy(tc);
    cllm_vreward_destroy(ex);
    cllm_vreward_destroy(num);
    cllm_vreward_destroy(re);
}


/* ---- PyTorch parity (tests/reference/rlhf_reference.py, python3-torch) ---- */
static void test_rlhf_losses_match_pytorch(void) {
    enum { n = 6 };
    const double beta = 0.3, eps = 0.2, vf_eps = 0.25;
    double pc[n] = {-12.5, -3.0, -40.0, -7.25, -1.0, -20.0}, pr[n] = {-11.0, -8.0, -41.0, -7.25, -30.0, -19.0};
    double rc[n] = {-12.0, -3.5, -39.0, -7.0, -2.0, -20.5}, rr[n] = {-11.5, -7.0, -40.0, -7.5, -29.0, -18.0};
    float lp[n] = {-1.0f, -2.2f, -0.3f, -4.0f, -0.9f, -1.7f}, old[n] = {-1.1f, -1.6f, -0.8f, -3.9f, -1.3f, -1.2f};
    float adv[n] = {0.5f, -1.0f, 1.5f, -0.2f, 2.0f, -0.7f};
    float v[n] = {0.3f, -0.5f, 1.2f, 0.0f, 2.5f, -1.0f}, vo[n] = {0.2f, -0.1f, 0.8f, 0.05f, 2.0f, -1.5f};
    float ret[n] = {1.0f, -1.0f, 0.5f, 0.1f, 3.5f, -0.8f};
    char dir[] = "/tmp/test_rlhf_ref_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return;
    }
    char fn[128];
    snprintf(fn, sizeof fn, "%s/in.txt", dir);
    FILE *f = fopen(fn, "w");
    fprintf(f, "%d %.17g %.17g %.17g\n", n, beta, eps, vf_eps);
    const double *dd[4] = {pc, pr, rc, rr};
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < n; i++) fprintf(f, "%.17g ", dd[k][i]);
    const float *ff[6] = {lp, old, adv, v, vo, ret};
    for (int k = 0; k < 6; k++)
        for (int i = 0; i < n; i++) fprintf(f, "%.9g ", (double)ff[k][i]);
    fclose(f);
    const char *src = getenv("CLLM_SOURCE_DIR");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/reference/rlhf_reference.py %s", src ? src : ".", dir);
    int rc_ = system(cmd);
    CHECK(rc_ == 0, "'%s' failed (status %d): python3-torch is required", cmd, rc_);
    snprintf(fn, sizeof fn, "%s/out.txt", dir);
    double ref[1 + 2 * n + 1 + n + 1 + 1 + n];
    int got = 0;
    f = fopen(fn, "r");
    if (f) {
        while (got < (int)(sizeof ref / sizeof ref[0]) && fscanf(f, "%lf", &ref[got]) == 1) got++;
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    CHECK(got == (int)(sizeof ref / sizeof ref[0]), "read %d reference values", got);
    if (got != (int)(sizeof ref / sizeof ref[0])) return;
    double dc[n], dr[n];
    double loss = cllm_dpo_loss(pc, pr, rc, rr, n, beta, dc, dr, NULL);
    /* both sides in float64: agreement to rounding */
    CHECK_NEAR(loss, ref[0], 1e-12, 1e-10, "DPO loss vs torch");
    for (int i = 0; i < n; i++) {
        CHECK_NEAR(dc[i], ref[1 + i], 1e-12, 1e-9, "DPO d pi_c vs torch");
        CHECK_NEAR(dr[i], ref[1 + n + i], 1e-12, 1e-9, "DPO d pi_r vs torch");
    }
    float g[n];
    cllm_ppo_stats st;
    int o = 1 + 2 * n;
    double pl = cllm_ppo_policy_loss(lp, old, adv, n, (float)eps, g, &st);
    /* float gradients out of double math: float rounding, ~1e-7 relative */
    CHECK_NEAR(pl, ref[o], 1e-7, 1e-6, "PPO policy loss vs torch");
    for (int i = 0; i < n; i++) CHECK_NEAR(g[i], ref[o + 1 + i], 1e-7, 1e-5, "PPO d logp vs torch");
    CHECK_NEAR(st.clip_frac, ref[o + 1 + n], 1e-12, 0, "PPO clip fraction vs torch");
    CHECK(st.clip_frac > 0 && st.clip_frac < 1, "the fixture clips some tokens, not all (%g)", st.clip_frac);
    o += 2 + n;
    double vl = cllm_ppo_value_loss(v, vo, ret, n, (float)vf_eps, g, &st);
    CHECK_NEAR(vl, ref[o], 1e-7, 1e-6, "PPO value loss vs torch");
    for (int i = 0; i < n; i++) CHECK_NEAR(g[i], ref[o + 1 + i], 1e-7, 1e-5, "PPO d v vs torch");
}

int main(void) {
    TEST_RUN(test_rlhf_scalar_head_gradients);
    TEST_RUN(test_rlhf_bt_loss_gradient_and_accuracy);
    TEST_RUN(test_rlhf_dpo_loss_gradient_and_stats);
    TEST_RUN(test_rlhf_dpo_no_nan_identical_and_long);
    TEST_RUN(test_rlhf_ppo_losses_gradients_and_clipping);
    TEST_RUN(test_rlhf_gae_matches_direct_sum);
    TEST_RUN(test_rlhf_grpo_advantages_normalised);
    TEST_RUN(test_rlhf_model_backward_heads_matches_finite_differences);
    TEST_RUN(test_rlhf_model_backward_heads_tempered);
    TEST_RUN(test_rlhf_pref_data_formats);
    TEST_RUN(test_rlhf_pref_data_errors);
    TEST_RUN(test_rlhf_reference_shape_mismatch_names_both);
    TEST_RUN(test_rlhf_verifiable_rewards);
    TEST_RUN(test_rlhf_losses_match_pytorch);
    return test_finish();
}
