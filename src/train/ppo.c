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
 * One harness step (harness.h) is one rollout batch; each of its epochs is
 * an optimizer update (th_update) of the policy, the value trunk and the
 * value head together, each clipped by its own norm. The rollout sampler
 * is seeded from (seed, step) so a resumed run samples the same.
 * Does not: adapt kl_coef, use mini-batches smaller than the rollout batch,
 * or share the policy's trunk with the value head. Log-probabilities use
 * the sampling temperature, as in grpo.c.
 */
#include <math.h>
#include <stdio.h>
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

typedef struct {
    const cllm_rl_params *p;
    cllm_rl_model pol, ref, rm, vm; /* policy, reference, reward model, value model */
    cllm_pref_data data;
    int *order;              /* [data.n] prompt ids, shuffled */
    int C, max_T;
    float *buf;              /* [9 n max_T] the per-token arrays below */
    float *hgrad, *dh;       /* [C+1] value-head gradients; [n max_T C] d loss / d hidden */
    cllm_rng rng;
    rl_cursor cursor;
    rl_turn_end end;
    double sample_s, mean_score, kl_seq, entropy;
    cllm_ppo_stats ps;
    cllm_rl_result *res;
    th_run h;
} ppo_ctx;

/* One rollout batch and `epochs` updates of the policy, the value model and
 * its head (through th_update). */
static cllm_status train_on(ppo_ctx *c, const rl_rollout *ro, double *loss, cllm_error *err) {
    const cllm_rl_params *p = c->p;
    const int n = p->batch, C = c->C;
    const cllm_rl_batch *b = &ro->batch;
    const size_t N = (size_t)n * c->max_T, BT = (size_t)b->B * b->T;
    /* all [B,T] layout; only completion positions are used */
    float *tok = c->buf, *old = c->buf + N, *refl = c->buf + 2 * N, *val_old = c->buf + 3 * N, *adv = c->buf + 4 * N,
          *ret = c->buf + 5 * N, *dlogp = c->buf + 6 * N, *val = c->buf + 7 * N, *dval = c->buf + 8 * N;
    cllm_status st = cllm_rl_logprobs(c->ref.model, b, refl, NULL, err);
    if (!st) st = cllm_rl_logprobs(c->pol.model, b, old, NULL, err);
    if (!st) st = cllm_model_forward(c->vm.model, b->tokens, NULL, b->B, b->T, NULL, err);
    if (st) return st;
    read_values(&c->vm, b, val_old);
    /* rewards, GAE per row, then whitening over every completion token */
    double a_sum = 0, a_sq = 0;
    int nt = 0;
    c->kl_seq = 0;
    for (int r = 0; r < b->B; r++) {
        int K = b->count[r];
        size_t o0 = (size_t)r * b->T + b->first[r];
        float rw[K];
        for (int k = 0; k < K; k++) {
            float kl = old[o0 + k] - refl[o0 + k];
            c->kl_seq += kl;
            rw[k] = -p->kl_coef * kl;
        }
        rw[K - 1] += ro->score[r];
        cllm_gae(rw, val_old + o0, K, p->gamma, p->lam, adv + o0, ret + o0);
        for (int k = 0; k < K; k++) a_sum += adv[o0 + k], a_sq += (double)adv[o0 + k] * adv[o0 + k];
        nt += K;
    }
    c->kl_seq /= n;
    double a_mean = a_sum / nt, a_sd = sqrt(fmax(a_sq / nt - a_mean * a_mean, 0.0));
    for (int r = 0; r < b->B; r++)
        for (int k = 0; k < b->count[r]; k++) {
            size_t o = (size_t)r * b->T + b->first[r] + k;
            adv[o] = (float)((adv[o] - a_mean) / (a_sd + 1e-8));
        }
    /* gather views: the loss functions take dense token arrays */
    float *g_lp = malloc((size_t)nt * 7 * sizeof(float));
    size_t *pos_of = malloc((size_t)nt * sizeof *pos_of);
    if (!g_lp || !pos_of) {
        free(g_lp);
        free(pos_of);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "ppo: out of memory");
    }
    float *g_old = g_lp + nt, *g_adv = g_lp + 2 * nt, *g_d = g_lp + 3 * nt, *g_v = g_lp + 4 * nt,
          *g_vold = g_lp + 5 * nt, *g_ret = g_lp + 6 * nt;
    for (int r = 0, k = 0; r < b->B; r++)
        for (int j = 0; j < b->count[r]; j++) pos_of[k++] = (size_t)r * b->T + b->first[r] + j;
    for (int k = 0; k < nt; k++) {
        g_old[k] = old[pos_of[k]];
        g_adv[k] = adv[pos_of[k]];
        g_vold[k] = val_old[pos_of[k]];
        g_ret[k] = ret[pos_of[k]];
    }
    memset(&c->ps, 0, sizeof c->ps);
    c->entropy = 0;
    for (int ep = 0; ep < p->epochs && !st; ep++) {
        /* policy gradients */
        cllm_model_zero_grad(c->pol.model);
        if ((st = cllm_rl_logprobs(c->pol.model, b, tok, NULL, err))) break;
        if (ep == 0) c->entropy = cllm_rl_entropy(c->pol.model, b);
        for (int k = 0; k < nt; k++) g_lp[k] = tok[pos_of[k]];
        cllm_ppo_policy_loss(g_lp, g_old, g_adv, nt, p->clip_eps, g_d, &c->ps);
        memset(dlogp, 0, BT * sizeof *dlogp);
        for (int k = 0; k < nt; k++) dlogp[pos_of[k]] = g_d[k];
        if ((st = cllm_model_backward_heads(c->pol.model, dlogp, NULL, err))) break;
        /* value model and head gradients (the value model does not depend on the policy) */
        cllm_model_zero_grad(c->vm.model);
        if ((st = cllm_model_forward(c->vm.model, b->tokens, NULL, b->B, b->T, NULL, err))) break;
        read_values(&c->vm, b, val);
        for (int k = 0; k < nt; k++) g_v[k] = val[pos_of[k]];
        cllm_ppo_value_loss(g_v, g_vold, g_ret, nt, p->vf_clip, g_d, &c->ps);
        memset(dval, 0, BT * sizeof *dval);
        for (int k = 0; k < nt; k++) dval[pos_of[k]] = p->vf_coef * g_d[k];
        memset(c->dh, 0, BT * C * sizeof *c->dh);
        memset(c->hgrad, 0, ((size_t)C + 1) * sizeof *c->hgrad);
        cllm_scalar_head_backward(c->dh, c->hgrad, c->hgrad + C, dval, cllm_model_hidden(c->vm.model), c->vm.head_w,
                                  (int)BT, C);
        if ((st = cllm_model_backward_heads(c->vm.model, NULL, c->dh, err))) break;
        *loss = c->ps.policy_loss + p->vf_coef * c->ps.value_loss;
        st = th_update(&c->h, *loss, err); /* policy, value trunk and head, each clipped by its own norm */
    }
    free(g_lp);
    free(pos_of);
    return st;
}

/* hooks.step: sample, score, then the epochs of updates. */
static cllm_status step_hook(void *ctx, int64_t step, double *loss, double *tokens, cllm_error *err) {
    ppo_ctx *c = ctx;
    const cllm_rl_params *p = c->p;
    const int n = p->batch;
    int ex[n];
    for (int i = 0; i < n; i++) ex[i] = rl_cursor_next(&c->cursor);
    rl_rollout ro;
    cllm_status st = rl_rollout_step(p, &c->pol, &c->end, &c->data, ex, n, &c->rm, step, c->res, &ro, &c->mean_score,
                                     tokens, &c->sample_s, err);
    if (st) return st;
    st = train_on(c, &ro, loss, err);
    rl_rollout_free(&ro);
    return st;
}

static void progress_hook(void *ctx, const th_run *h, double loss, float lr, char *out, size_t cap) {
    (void)loss;
    (void)lr;
    ppo_ctx *c = ctx;
    const int64_t step = h->state.step;
    char line[512];
    snprintf(line, sizeof line,
             "ppo step %lld: reward %.4f  kl %.4f  entropy %.3f  clip_frac %.3f  policy_loss %.4f  value_loss %.4f",
             (long long)step, c->mean_score, c->kl_seq, c->entropy, c->ps.clip_frac, c->ps.policy_loss,
             c->ps.value_loss);
    if (!h->progress && (step == h->start_step + 1 || step == h->steps || step % 5 == 0)) th_log(h, "%s", line);
    snprintf(out, cap, "%s", line);
}

static void snapshot_hook(void *ctx, cllm_train_state *s) { rl_cursor_snapshot(&((ppo_ctx *)ctx)->cursor, s); }

static cllm_status write_final(const char *path, void *ctx, cllm_error *err) {
    const ppo_ctx *c = ctx;
    return rl_model_save(&c->h, &c->pol, path, err);
}

cllm_status cllm_ppo_train(const cllm_rl_params *p, cllm_rl_result *res, cllm_error *err) {
    memset(res, 0, sizeof *res);
    res->val_accuracy = res->val_accuracy_before = -1;
    res->first_metric = res->last_metric = NAN;
    if (p->steps < 1 || p->batch < 1 || p->epochs < 1 || p->max_new < 1 || !(p->lr > 0) || !(p->clip_eps > 0) ||
        !(p->kl_coef >= 0) || !(p->vf_clip > 0))
        return cllm_error_set(err, CLLM_ERR_ARG, "ppo: steps, batch, epochs, max_new, lr, clip-eps, vf-clip must be positive");
    if (!p->reward_path) return cllm_error_set(err, CLLM_ERR_ARG, "ppo: needs a reward model");
    const int n = p->batch;
    ppo_ctx c;
    memset(&c, 0, sizeof c);
    c.p = p;
    c.res = res;
    th_init(&c.h);
    cllm_status st = rl_run_begin(&c.h, "ppo", "raising a reward model's score of its replies (PPO)", p, write_final, &c, err);
    if (st) goto done;
    if ((st = rl_load_run("ppo", p, n, &c.pol, &c.ref, &c.rm, &c.data, &c.max_T, err))) goto done;
    cllm_model_options vo = cllm_model_default_options();
    vo.max_batch = n;
    vo.max_seq = c.max_T;
    vo.training = 1;
    if ((st = cllm_rl_model_load(p->reward_path, &vo, 2, &c.vm, err))) goto done;
    const int C = c.C = cllm_model_get_config(c.vm.model)->n_embd;
    if ((st = th_open(&c.h, err))) goto done; /* the run directory, before any training work */
    size_t N = (size_t)n * c.max_T;
    c.buf = malloc(9 * N * sizeof *c.buf);
    c.hgrad = malloc(((size_t)C + 1) * sizeof *c.hgrad);
    c.dh = malloc(N * C * sizeof *c.dh);
    cllm_rng_seed(&c.rng, p->seed ^ 0x70706Full);
    c.order = rl_order_new(c.data.n, &c.rng);
    if (!c.buf || !c.hgrad || !c.dh || !c.order) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "ppo: out of memory");
        goto done;
    }
    /* the policy (opt), the value trunk and its head (extras), updated together */
    cllm_adamw_params hp = rl_adamw(p);
    if ((st = th_optim_init_model(&c.h.opt, c.pol.model, 0, &hp, p->clip_grad, err))) goto done;
    if ((st = th_optim_init_model(&c.h.extra[0], c.vm.model, 0, &hp, p->clip_grad, err))) goto done;
    c.h.n_extra = 1;
    if ((st = th_optim_init_flat(&c.h.extra[1], c.vm.head_w, c.hgrad, (size_t)C + 1, &hp, p->clip_grad, err)))
        goto done;
    c.h.n_extra = 2;
    rl_turn_end_init(&c.end, c.pol.tok, c.pol.tmpl);
    c.cursor = (rl_cursor){c.order, c.data.n, 0, &c.rng, 0};
    char config[CLLM_CKPT_CONFIG_MAX];
    int len = rl_config_common("ppo", p, config, sizeof config);
    snprintf(config + len, sizeof config - (size_t)len,
             "max_new=%d\ntemperature=%a\nepochs=%d\nclip_eps=%a\nkl_coef=%a\ngamma=%a\nlam=%a\nvf_coef=%a\n"
             "vf_clip=%a\nmissing_eos_penalty=%a\n",
             p->max_new, (double)p->temperature, p->epochs, (double)p->clip_eps, (double)p->kl_coef, (double)p->gamma,
             (double)p->lam, (double)p->vf_coef, (double)p->vf_clip, (double)p->missing_eos_penalty);
    if ((st = rl_run_start(&c.h, config, &c.data, c.pol.tok, &c.cursor, res, err))) goto done;
    const th_hooks hooks = {step_hook, NULL, snapshot_hook, progress_hook, 1};
    st = th_loop(&c.h, &hooks, &c, err);
    res->rollout_tokens_per_s = c.sample_s > 0 ? res->rollout_tokens / c.sample_s : 0;
    if (!st) st = rl_run_finish(&c.h, "PPO loss (policy + vf_coef x value)", res, err);
done:
    free(c.buf);
    free(c.hgrad);
    free(c.dh);
    free(c.order);
    th_free(&c.h);
    cllm_pref_data_free(&c.data);
    cllm_rl_model_free(&c.pol);
    cllm_rl_model_free(&c.ref);
    cllm_rl_model_free(&c.rm);
    cllm_rl_model_free(&c.vm);
    return st;
}
