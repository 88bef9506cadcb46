/*
 * ppo.c: `cllm ppo`: RLHF with PPO (Ouyang et al. 2022; Schulman et al.
 * 2017), in the shape of TRL's PPOTrainer.
 *
 * Models: the policy (trained), a frozen reference (the policy's starting
 * weights, or --ref), the reward model (frozen, `cllm reward`), and a value
 * model initialised from the reward model (trunk + head, trained).
 * One step: sample one completion per prompt (batched KV-cache decoding);
 * score it with the reward model; per-token rewards are
 *     r_t = -kl_coef * (logp_old_t - logp_ref_t)   (+ the score on the last token);
 * values V_t come from the value head on the hidden state that predicts
 * token t; GAE gives advantages (whitened over the batch) and returns; then
 * `epochs` passes of the clipped policy loss and the clipped value loss.
 * Logged: mean score, KL to the reference (per sequence), policy entropy,
 * clip fraction, value loss.
 * Does not: adapt kl_coef, use mini-batches smaller than the rollout batch,
 * or share the policy's trunk with the value head. Log-probabilities use
 * the sampling temperature, as in grpo.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rl_internal.h"

/* values[B*T] at completion positions of the last forward of vm (0 elsewhere). */
static void read_values(const cllm_rl_model *vm, const cllm_rl_batch *b, float *values) {
    memset(values, 0, (size_t)b->B * b->T * sizeof *values);
    for (int r = 0; r < b->B; r++)
        for (int k = 0; k < b->count[r]; k++) {
            int t = b->first[r] + k;
            values[(size_t)r * b->T + t] = rl_head_at(vm, b->T, r, t);
        }
}

cllm_status cllm_ppo_train(const cllm_rl_params *p, cllm_rl_result *res, cllm_error *err) {
    memset(res, 0, sizeof *res);
    res->val_accuracy = -1;
    if (p->steps < 1 || p->batch < 1 || p->epochs < 1 || p->max_new < 1 || !(p->lr > 0) || !(p->clip_eps > 0) ||
        !(p->kl_coef >= 0) || !(p->vf_clip > 0))
        return cllm_error_set(err, CLLM_ERR_ARG, "ppo: steps, batch, epochs, max_new, lr, clip-eps, vf-clip must be positive");
    if (!p->reward_path) return cllm_error_set(err, CLLM_ERR_ARG, "ppo: needs a reward model");
    const int n = p->batch;
    cllm_rl_model pol, ref, rm, vm = {0};
    cllm_status st = rl_load_run_models(p, n, 0, &pol, &ref, &rm, err);
    if (st) return st;
    cllm_pref_data data = {0};
    rl_adam opt = {0}, vopt = {0}, hopt = {0};
    cllm_sampler *smp = NULL;
    float *buf = NULL, *head = NULL, *hgrad = NULL, *dh = NULL;
    int *order = NULL;
    const int max_T = cllm_model_get_options(pol.model)->max_seq;
    cllm_model_options vo = cllm_model_default_options();
    vo.max_batch = n;
    vo.max_seq = max_T;
    vo.training = 1;
    if ((st = cllm_rl_model_load(p->reward_path, &vo, 2, &vm, err))) goto done;
    const int C = cllm_model_get_config(vm.model)->n_embd;
    if ((st = rl_rollout_setup("ppo", p, &pol, max_T, &data, &smp, err))) goto done;
    size_t N = (size_t)n * max_T;
    buf = malloc(9 * N * sizeof *buf);
    head = malloc(((size_t)C + 1) * sizeof *head);
    hgrad = malloc(((size_t)C + 1) * sizeof *hgrad);
    dh = malloc(N * C * sizeof *dh);
    order = malloc((size_t)data.n * sizeof *order);
    if (!buf || !head || !hgrad || !dh || !order) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "ppo: out of memory");
        goto done;
    }
    /* all [B,T] layout; only completion positions are used */
    float *tok = buf, *old = buf + N, *refl = buf + 2 * N, *val_old = buf + 3 * N, *adv = buf + 4 * N,
          *ret = buf + 5 * N, *dlogp = buf + 6 * N, *val = buf + 7 * N, *dval = buf + 8 * N;
    for (int i = 0; i < data.n; i++) order[i] = i;
    cllm_rng rng;
    cllm_rng_seed(&rng, p->seed ^ 0x70706Full);
    rl_shuffle(order, data.n, &rng);
    if ((st = rl_adam_init(&opt, cllm_model_num_params(pol.model), err))) goto done;
    if ((st = rl_adam_init(&vopt, cllm_model_num_params(vm.model), err))) goto done;
    if ((st = rl_adam_init(&hopt, (size_t)C + 1, err))) goto done;
    rl_turn_end end;
    rl_turn_end_init(&end, pol.tok, pol.tmpl);
    rl_cursor cursor = {order, data.n, 0, &rng};
    double sample_s = 0;
    for (int step = 1; step <= p->steps && !st; step++) {
        int ex[n];
        for (int i = 0; i < n; i++) ex[i] = rl_cursor_next(&cursor);
        rl_rollout ro;
        if ((st = rl_rollout_run(p, &pol, smp, &end, &data, ex, n, &rm, &ro, &res->rollout_tokens, &sample_s, err)))
            break;
        const cllm_rl_batch *b = &ro.batch;
        const size_t BT = (size_t)b->B * b->T;
        double mean_score = 0, kl_seq = 0;
        for (int i = 0; i < n; i++) mean_score += ro.score[i];
        mean_score /= n;
        if (step == 1) res->first_metric = mean_score;
        res->last_metric = mean_score;
        if (!st) st = cllm_rl_logprobs(ref.model, b, refl, NULL, err);
        if (!st) st = cllm_rl_logprobs(pol.model, b, old, NULL, err);
        if (!st) st = cllm_model_forward(vm.model, b->tokens, NULL, b->B, b->T, NULL, err);
        if (st) {
            rl_rollout_free(&ro);
            break;
        }
        read_values(&vm, b, val_old);
        /* rewards, GAE per row, then whitening over every completion token */
        double a_sum = 0, a_sq = 0;
        int nt = 0;
        for (int r = 0; r < b->B; r++) {
            int K = b->count[r];
            size_t o0 = (size_t)r * b->T + b->first[r];
            float rw[K];
            for (int k = 0; k < K; k++) {
                float kl = old[o0 + k] - refl[o0 + k];
                kl_seq += kl;
                rw[k] = -p->kl_coef * kl;
            }
            rw[K - 1] += ro.score[r];
            cllm_gae(rw, val_old + o0, K, p->gamma, p->lam, adv + o0, ret + o0);
            for (int k = 0; k < K; k++) a_sum += adv[o0 + k], a_sq += (double)adv[o0 + k] * adv[o0 + k];
            nt += K;
        }
        kl_seq /= n;
        double a_mean = a_sum / nt, a_sd = sqrt(fmax(a_sq / nt - a_mean * a_mean, 0.0));
        for (int r = 0; r < b->B; r++)
            for (int k = 0; k < b->count[r]; k++) {
                size_t o = (size_t)r * b->T + b->first[r] + k;
                adv[o] = (float)((adv[o] - a_mean) / (a_sd + 1e-8));
            }
        /* gather views: the loss functions take dense token arrays */
        float *g_lp = malloc((size_t)nt * 7 * sizeof(float));
        if (!g_lp) {
            st = cllm_error_set(err, CLLM_ERR_NOMEM, "ppo: out of memory");
            rl_rollout_free(&ro);
            break;
        }
        float *g_old = g_lp + nt, *g_adv = g_lp + 2 * nt, *g_d = g_lp + 3 * nt, *g_v = g_lp + 4 * nt,
              *g_vold = g_lp + 5 * nt, *g_ret = g_lp + 6 * nt;
        size_t pos_of[nt];
        for (int r = 0, k = 0; r < b->B; r++)
            for (int j = 0; j < b->count[r]; j++) pos_of[k++] = (size_t)r * b->T + b->first[r] + j;
        for (int k = 0; k < nt; k++) {
            g_old[k] = old[pos_of[k]];
            g_adv[k] = adv[pos_of[k]];
            g_vold[k] = val_old[pos_of[k]];
            g_ret[k] = ret[pos_of[k]];
        }
        cllm_ppo_stats ps = {0};
        double entropy = 0;
        for (int ep = 0; ep < p->epochs && !st; ep++) {
            /* policy */
            cllm_model_zero_grad(pol.model);
            if ((st = cllm_rl_logprobs(pol.model, b, tok, NULL, err))) break;
            if (ep == 0) entropy = cllm_rl_entropy(pol.model, b);
            for (int k = 0; k < nt; k++) g_lp[k] = tok[pos_of[k]];
            cllm_ppo_policy_loss(g_lp, g_old, g_adv, nt, p->clip_eps, g_d, &ps);
            memset(dlogp, 0, BT * sizeof *dlogp);
            for (int k = 0; k < nt; k++) dlogp[pos_of[k]] = g_d[k];
            if ((st = cllm_model_backward_heads(pol.model, dlogp, NULL, err))) break;
            rl_adam_step_model(&opt, pol.model, p->lr, p->weight_decay, p->clip_grad);
            /* value model */
            cllm_model_zero_grad(vm.model);
            if ((st = cllm_model_forward(vm.model, b->tokens, NULL, b->B, b->T, NULL, err))) break;
            read_values(&vm, b, val);
            for (int k = 0; k < nt; k++) g_v[k] = val[pos_of[k]];
            cllm_ppo_value_loss(g_v, g_vold, g_ret, nt, p->vf_clip, g_d, &ps);
            memset(dval, 0, BT * sizeof *dval);
            for (int k = 0; k < nt; k++) dval[pos_of[k]] = p->vf_coef * g_d[k];
            memset(dh, 0, BT * C * sizeof *dh);
            memset(hgrad, 0, ((size_t)C + 1) * sizeof *hgrad);
            const float *h = cllm_model_hidden(vm.model);
            cllm_scalar_head_backward(dh, hgrad, hgrad + C, dval, h, vm.head_w, (int)BT, C);
            if ((st = cllm_model_backward_heads(vm.model, NULL, dh, err))) break;
            rl_adam_step_model(&vopt, vm.model, p->lr, p->weight_decay, p->clip_grad);
            memcpy(head, vm.head_w, (size_t)C * sizeof *head);
            head[C] = vm.head_b;
            rl_adam_step_flat(&hopt, head, hgrad, p->lr, p->clip_grad);
            memcpy(vm.head_w, head, (size_t)C * sizeof *head);
            vm.head_b = head[C];
        }
        free(g_lp);
        rl_rollout_free(&ro);
        if (st) break;
        res->steps_done = step;
        if (step == 1 || step == p->steps || step % 5 == 0)
            rl_log(p, "ppo step %d: reward %.4f  kl %.4f  entropy %.3f  clip_frac %.3f  policy_loss %.4f  value_loss %.4f",
                   step, mean_score, kl_seq, entropy, ps.clip_frac, ps.policy_loss, ps.value_loss);
    }
    res->rollout_tokens_per_s = sample_s > 0 ? res->rollout_tokens / sample_s : 0;
    if (!st && p->out_path) st = cllm_rl_model_save(&pol, p->out_path, err);
done:
    free(buf);
    free(head);
    free(hgrad);
    free(dh);
    free(order);
    cllm_sampler_destroy(smp);
    rl_adam_free(&opt);
    rl_adam_free(&vopt);
    rl_adam_free(&hopt);
    cllm_pref_data_free(&data);
    cllm_rl_model_free(&pol);
    cllm_rl_model_free(&ref);
    cllm_rl_model_free(&rm);
    cllm_rl_model_free(&vm);
    return st;
}
