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
 * Does not: filter all-equal groups (their advantages are 0 and add only the
 * KL term) or reuse rollouts across steps. Log-probabilities, ratios, KL
 * and gradients use softmax(logits / temperature), the distribution the
 * rollouts were sampled from (rl_load_run_models), so any sampling
 * temperature keeps the updates on-policy.
 */
#include <math.h>
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

cllm_status cllm_grpo_train(const cllm_rl_params *p, cllm_rl_result *res, cllm_error *err) {
    memset(res, 0, sizeof *res);
    res->val_accuracy = -1;
    if (p->steps < 1 || p->batch < 1 || p->group < 2 || p->epochs < 1 || p->max_new < 1 || !(p->lr > 0) ||
        !(p->beta >= 0) || !(p->clip_eps > 0))
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "grpo: steps, batch, epochs, max_new, lr, clip must be positive, group >= 2, beta >= 0");
    if (!p->vreward && !p->reward_path)
        return cllm_error_set(err, CLLM_ERR_ARG, "grpo: needs a reward model or a verifiable reward");
    const int n = p->batch * p->group;
    cllm_rl_model pol, ref, rm;
    cllm_status st = rl_load_run_models(p, n, 0, &pol, &ref, &rm, err);
    if (st) return st;
    cllm_pref_data data = {0};
    rl_adam opt = {0};
    cllm_sampler *smp = NULL;
    float *buf = NULL;
    int *order = NULL;
    const int max_T = cllm_model_get_options(pol.model)->max_seq;
    if ((st = rl_rollout_setup("grpo", p, &pol, max_T, &data, &smp, err))) goto done;
    size_t N = (size_t)n * max_T;
    buf = malloc(7 * N * sizeof *buf);
    order = malloc((size_t)data.n * sizeof *order);
    if (!buf || !order) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "grpo: out of memory");
        goto done;
    }
    float *tok = buf, *old_g = buf + N, *ref_g = buf + 2 * N, *adv_g = buf + 3 * N, *cur_g = buf + 4 * N,
          *dlogp = buf + 5 * N, *grad_g = buf + 6 * N;
    for (int i = 0; i < data.n; i++) order[i] = i;
    cllm_rng rng;
    cllm_rng_seed(&rng, p->seed ^ 0x6772706Full);
    rl_shuffle(order, data.n, &rng);
    if ((st = rl_adam_init(&opt, cllm_model_num_params(pol.model), err))) goto done;
    rl_turn_end end;
    rl_turn_end_init(&end, pol.tok, pol.tmpl);
    rl_cursor cursor = {order, data.n, 0, &rng};
    double sample_s = 0;
    for (int step = 1; step <= p->steps && !st; step++) {
        int ex[n];
        for (int i = 0; i < p->batch; i++) {
            int e = rl_cursor_next(&cursor);
            for (int g = 0; g < p->group; g++) ex[i * p->group + g] = e;
        }
        rl_rollout ro;
        if ((st = rl_rollout_run(p, &pol, smp, &end, &data, ex, n, &rm, &ro, &res->rollout_tokens, &sample_s, err)))
            break;
        float adv_seq[n];
        cllm_grpo_advantages(ro.score, p->batch, p->group, adv_seq);
        double mean_r = 0;
        for (int i = 0; i < n; i++) mean_r += ro.score[i];
        mean_r /= n;
        if (step == 1) res->first_metric = mean_r;
        res->last_metric = mean_r;
        const cllm_rl_batch *b = &ro.batch;
        int nt = 0;
        if (!(st = cllm_rl_logprobs(ref.model, b, tok, NULL, err))) nt = gather(b, tok, ref_g);
        if (!st && !(st = cllm_rl_logprobs(pol.model, b, tok, NULL, err))) gather(b, tok, old_g);
        for (int r = 0, k = 0; r < b->B; r++)
            for (int t = 0; t < b->count[r]; t++) adv_g[k++] = adv_seq[r];
        cllm_grpo_stats gs = {0};
        for (int ep = 0; ep < p->epochs && !st; ep++) {
            cllm_model_zero_grad(pol.model);
            if ((st = cllm_rl_logprobs(pol.model, b, tok, NULL, err))) break;
            gather(b, tok, cur_g);
            cllm_grpo_loss(cur_g, old_g, ref_g, adv_g, nt, p->clip_eps, p->beta, grad_g, &gs);
            scatter(b, grad_g, dlogp);
            if ((st = cllm_model_backward_heads(pol.model, dlogp, NULL, err))) break;
            rl_adam_step_model(&opt, pol.model, p->lr, p->weight_decay, p->clip_grad);
        }
        rl_rollout_free(&ro);
        if (st) break;
        res->steps_done = step;
        if (step == 1 || step == p->steps || step % 5 == 0)
            rl_log(p, "grpo step %d: reward %.3f  loss %.4f  kl %.4f  clip_frac %.3f  tokens %d", step, mean_r, gs.loss,
                   gs.kl, gs.clip_frac, nt);
    }
    res->rollout_tokens_per_s = sample_s > 0 ? res->rollout_tokens / sample_s : 0;
    if (!st && p->out_path) st = cllm_rl_model_save(&pol, p->out_path, err);
done:
    free(buf);
    free(order);
    cllm_sampler_destroy(smp);
    rl_adam_free(&opt);
    cllm_pref_data_free(&data);
    cllm_rl_model_free(&pol);
    cllm_rl_model_free(&ref);
    cllm_rl_model_free(&rm);
    return st;
}
