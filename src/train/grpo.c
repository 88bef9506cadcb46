/*
 * grpo.c: `cllm grpo`: Group Relative Policy Optimization (Shao et al. 2024,
 * DeepSeekMath). Each step takes `batch` prompts, samples `group`
 * completions of each with the policy (batched KV-cache decoding), scores
 * them (a verifiable reward or the reward model), normalises rewards within
 * each group into advantages (no value model), and runs `epochs` passes of
 * the per-token objective: the clipped surrogate with the sequence's
 * advantage on every token, plus beta * k3 KL to the frozen reference
 * (cllm_grpo_loss). Losses are a mean over all completion tokens of the
 * batch (token-level normalisation, as DAPO and TRL's default).
 * One harness step (harness.h) is one rollout batch; each epoch is an
 * optimizer update (th_update). The rollout sampler is seeded from (seed,
 * step) so a resumed run samples the same.
 * Does not: filter all-equal groups (their advantages are 0 and add only the
 * KL term) or reuse rollouts across steps. Log-probabilities, ratios, KL
 * and gradients use softmax(logits / temperature), the distribution the
 * rollouts were sampled from (rl_load_run), so any sampling
 * temperature keeps the updates on-policy.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rl_internal.h"

/* Gathers per-token values of the batch's completion tokens into dst (row order). */
static int gather(const cllm_rl_batch *b, const float *src, float *dst) {
    int k = 0;
    for (int r = 0; r < b->B; r++)
        for (int t = 0; t < b->count[r]; t++) dst[k++] = src[(size_t)r * b->T + b->first[r] + t];
    return k;
}

static void scatter(const cllm_rl_batch *b, const float *src, float *dst) {
    memset(dst, 0, (size_t)b->B * b->T * sizeof *dst);
    int k = 0;
    for (int r = 0; r < b->B; r++)
        for (int t = 0; t < b->count[r]; t++) dst[(size_t)r * b->T + b->first[r] + t] = src[k++];
}

typedef struct {
    const cllm_rl_params *p;
    cllm_rl_model pol, ref, rm; /* policy, reference, reward model (rm.model NULL with a vreward) */
    cllm_pref_data data;
    int *order;              /* [data.n] prompt ids, shuffled */
    int max_T;
    float *buf;              /* [7 n max_T] the per-token arrays of train_on */
    cllm_rng rng;
    rl_cursor cursor;
    rl_turn_end end;
    double sample_s, mean_r;
    int nt;                  /* completion tokens of the last batch */
    cllm_grpo_stats gs;
    cllm_rl_result *res;
    th_run h;
} grpo_ctx;

/* hooks.step: sample the groups, score, then the epochs of updates. */
static cllm_status step_hook(void *ctx, int64_t step, double *loss, double *tokens, cllm_error *err) {
    grpo_ctx *c = ctx;
    const cllm_rl_params *p = c->p;
    const int n = p->batch * p->group;
    const size_t N = (size_t)n * c->max_T;
    float *tok = c->buf, *old_g = c->buf + N, *ref_g = c->buf + 2 * N, *adv_g = c->buf + 3 * N, *cur_g = c->buf + 4 * N,
          *dlogp = c->buf + 5 * N, *grad_g = c->buf + 6 * N;
    int ex[n];
    for (int i = 0; i < p->batch; i++) {
        int e = rl_cursor_next(&c->cursor);
        for (int g = 0; g < p->group; g++) ex[i * p->group + g] = e;
    }
    rl_rollout ro;
    cllm_status st = rl_rollout_step(p, &c->pol, &c->end, &c->data, ex, n, &c->rm, step, c->res, &ro, &c->mean_r,
                                     tokens, &c->sample_s, err);
    if (st) return st;
    float adv_seq[n];
    cllm_grpo_advantages(ro.score, p->batch, p->group, adv_seq);
    const cllm_rl_batch *b = &ro.batch;
    if (!(st = cllm_rl_logprobs(c->ref.model, b, tok, NULL, err))) c->nt = gather(b, tok, ref_g);
    if (!st && !(st = cllm_rl_logprobs(c->pol.model, b, tok, NULL, err))) gather(b, tok, old_g);
    for (int r = 0, k = 0; r < b->B; r++)
        for (int t = 0; t < b->count[r]; t++) adv_g[k++] = adv_seq[r];
    memset(&c->gs, 0, sizeof c->gs);
    for (int ep = 0; ep < p->epochs && !st; ep++) {
        cllm_model_zero_grad(c->pol.model);
        if ((st = cllm_rl_logprobs(c->pol.model, b, tok, NULL, err))) break;
        gather(b, tok, cur_g);
        *loss = cllm_grpo_loss(cur_g, old_g, ref_g, adv_g, c->nt, p->clip_eps, p->beta, grad_g, &c->gs);
        scatter(b, grad_g, dlogp);
        if ((st = cllm_model_backward_heads(c->pol.model, dlogp, NULL, err))) break;
        st = th_update(&c->h, *loss, err);
    }
    rl_rollout_free(&ro);
    return st;
}

static void progress_hook(void *ctx, const th_run *h, double loss, float lr, char *out, size_t cap) {
    (void)lr;
    grpo_ctx *c = ctx;
    const int64_t step = h->state.step;
    char line[256];
    snprintf(line, sizeof line, "grpo step %lld: reward %.3f  loss %.4f  kl %.4f  clip_frac %.3f  tokens %d",
             (long long)step, c->mean_r, loss, c->gs.kl, c->gs.clip_frac, c->nt);
    if (!h->progress && (step == h->start_step + 1 || step == h->steps || step % 5 == 0)) th_log(h, "%s", line);
    snprintf(out, cap, "%s", line);
}

static void snapshot_hook(void *ctx, cllm_train_state *s) { rl_cursor_snapshot(&((grpo_ctx *)ctx)->cursor, s); }

static cllm_status write_final(const char *path, void *ctx, cllm_error *err) {
    const grpo_ctx *c = ctx;
    return rl_model_save(&c->h, &c->pol, path, err);
}

cllm_status cllm_grpo_train(const cllm_rl_params *p, cllm_rl_result *res, cllm_error *err) {
    memset(res, 0, sizeof *res);
    res->val_accuracy = res->val_accuracy_before = -1;
    res->first_metric = res->last_metric = NAN;
    if (p->steps < 1 || p->batch < 1 || p->group < 2 || p->epochs < 1 || p->max_new < 1 || !(p->lr > 0) ||
        !(p->beta >= 0) || !(p->clip_eps > 0))
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "grpo: steps, batch, epochs, max_new, lr, clip must be positive, group >= 2, beta >= 0");
    if (!p->vreward && !p->reward_path)
        return cllm_error_set(err, CLLM_ERR_ARG, "grpo: needs a reward model or a verifiable reward");
    const int n = p->batch * p->group;
    grpo_ctx c;
    memset(&c, 0, sizeof c);
    c.p = p;
    c.res = res;
    th_init(&c.h);
    cllm_status st = rl_run_begin(&c.h, "grpo", "raising the reward of its replies (GRPO)", p, write_final, &c, err);
    if (st) goto done;
    if ((st = rl_load_run("grpo", p, n, &c.pol, &c.ref, &c.rm, &c.data, &c.max_T, err))) goto done;
    if ((st = th_open(&c.h, err))) goto done; /* the run directory, before any training work */
    size_t N = (size_t)n * c.max_T;
    c.buf = malloc(7 * N * sizeof *c.buf);
    cllm_rng_seed(&c.rng, p->seed ^ 0x6772706Full);
    c.order = rl_order_new(c.data.n, &c.rng);
    if (!c.buf || !c.order) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "grpo: out of memory");
        goto done;
    }
    cllm_adamw_params hp = rl_adamw(p);
    if ((st = th_optim_init_model(&c.h.opt, c.pol.model, 0, &hp, p->clip_grad, err))) goto done;
    rl_turn_end_init(&c.end, c.pol.tok, c.pol.tmpl);
    c.cursor = (rl_cursor){c.order, c.data.n, 0, &c.rng, 0};
    char config[CLLM_CKPT_CONFIG_MAX];
    int len = rl_config_common("grpo", p, config, sizeof config);
    snprintf(config + len, sizeof config - (size_t)len,
             "group=%d\nmax_new=%d\ntemperature=%a\nepochs=%d\nclip_eps=%a\nbeta=%a\nmissing_eos_penalty=%a\n"
             "reward=%s\n",
             p->group, p->max_new, (double)p->temperature, p->epochs, (double)p->clip_eps, (double)p->beta,
             (double)p->missing_eos_penalty, p->vreward ? "verifiable" : "model");
    if ((st = rl_run_start(&c.h, config, &c.data, c.pol.tok, &c.cursor, res, err))) goto done;
    const th_hooks hooks = {step_hook, NULL, snapshot_hook, progress_hook, 1};
    st = th_loop(&c.h, &hooks, &c, err);
    res->rollout_tokens_per_s = c.sample_s > 0 ? res->rollout_tokens / c.sample_s : 0;
    if (!st) st = rl_run_finish(&c.h, "GRPO loss", res, err);
done:
    free(c.buf);
    free(c.order);
    th_free(&c.h);
    cllm_pref_data_free(&c.data);
    cllm_rl_model_free(&c.pol);
    cllm_rl_model_free(&c.ref);
    cllm_rl_model_free(&c.rm);
    return st;
}
