/*
 * dpo.c: `cllm dpo`: Direct Preference Optimization (Rafailov et al. 2023).
 *
 * The reference model (a frozen copy of the policy, or --ref) scores every
 * pair once before training; its sequence log-probabilities of the chosen
 * and rejected completions are kept. Each step runs the policy on a batch
 * (chosen rows, then rejected rows), computes
 *     loss = -log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r)))
 * (cllm_dpo_loss, stable for any margin), and differentiates it through
 * per-token log-prob gradients: every completion token of a row gets the
 * row's d loss / d seq_logp (cllm_model_backward_heads). With rpo_alpha > 0
 * the mean per-token NLL of the chosen replies, times rpo_alpha, is added
 * (TRL's rpo_alpha): it keeps the chosen replies likely, which plain DPO
 * does not (it may lower both sides, e.g. a turn-end shared by both). Logged: loss, the
 * implicit rewards beta*(pi - ref) of both sides, their margin, accuracy.
 *
 * The loop, checkpoints and resume are the training harness's (harness.h);
 * the checkpointed data position is the pair cursor (rl_cursor_snapshot).
 *
 * Does not: implement IPO/KTO variants or length normalisation.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "rl_internal.h"

/* Sequence log-probs of pairs idx[0..n) under m: lc[i], lr[i] indexed by pair id. */
static cllm_status score_pairs(cllm_model *m, const cllm_pref_data *d, const int *idx, int n, int bs, int max_T,
                               float *tok, double *lc, double *lr, cllm_error *err) {
    for (int i = 0; i < n; i += bs) {
        int k = n - i < bs ? n - i : bs;
        cllm_rl_batch b;
        cllm_status st = rl_pair_batch(d, idx + i, k, max_T, &b, err);
        if (st) return st;
        double s[2 * k];
        st = cllm_rl_logprobs(m, &b, tok, s, err);
        cllm_rl_batch_free(&b);
        if (st) return st;
        for (int j = 0; j < k; j++) {
            lc[idx[i + j]] = s[j];
            lr[idx[i + j]] = s[k + j];
        }
    }
    return CLLM_OK;
}

typedef struct {
    const cllm_rl_params *p;
    cllm_rl_model pol;
    cllm_pref_data data;
    int *idx;                 /* [data.n] shuffled pair ids: train ones, then held-out */
    int n_train, n_val, max_T;
    float *tok, *dlogp;       /* [2 batch * max_T] */
    double *ref_c, *ref_r;    /* [data.n] reference sequence log-probs, by pair id */
    cllm_rng rng;
    rl_cursor cursor;
    cllm_dpo_stats last;      /* the last step's statistics (log) */
    cllm_rl_result *res;
    th_run h;
} dpo_ctx;

/* hooks.step: one batch of pairs, the DPO (+ RPO) loss, its gradients. */
static cllm_status step_hook(void *ctx, int64_t step, double *loss, double *tokens, cllm_error *err) {
    dpo_ctx *c = ctx;
    const cllm_rl_params *p = c->p;
    int k = p->batch < c->n_train ? p->batch : c->n_train;
    int sel[k];
    for (int j = 0; j < k; j++) sel[j] = rl_cursor_next(&c->cursor);
    cllm_model_zero_grad(c->pol.model);
    cllm_status st = CLLM_OK;
    *loss = 0;
    *tokens = 0;
    /* the pairs in gradient groups (one per rank, th_group); one group: the whole batch */
    for (int g = 0, lo, hi; g < th_groups(&c->h) && st == CLLM_OK; g++) {
        if (!th_group(&c->h, g, k, &lo, &hi) || lo == hi) continue;
        const int kg = hi - lo;
        cllm_rl_batch b;
        st = rl_pair_batch(&c->data, sel + lo, kg, c->max_T, &b, err);
        if (st) return st;
        double s[2 * kg], rc[kg], rr[kg], ds[2 * kg], l = NAN;
        st = cllm_rl_logprobs(c->pol.model, &b, c->tok, s, err);
        if (st == CLLM_OK) {
            for (int j = 0; j < kg; j++) {
                rc[j] = c->ref_c[sel[lo + j]];
                rr[j] = c->ref_r[sel[lo + j]];
            }
            l = cllm_dpo_loss(s, s + kg, rc, rr, kg, p->beta, ds, ds + kg, &c->last);
            if (kg != k) { /* a share of the batch mean */
                for (int i = 0; i < 2 * kg; i++) ds[i] *= (double)kg / k;
                l *= (double)kg / k;
            }
            *loss += l;
            *tokens += (double)b.B * b.T;
            if (step == c->res->start_step) c->res->first_metric = c->last.accuracy;
            c->res->last_metric = c->last.accuracy;
        }
        if (st == CLLM_OK && isfinite(l)) { /* else the harness skips the step */
            memset(c->dlogp, 0, (size_t)b.B * b.T * sizeof *c->dlogp);
            for (int r = 0; r < b.B; r++) {
                /* d/dlogp of rpo_alpha * mean over pairs of -(1/count) sum_t logp, chosen rows */
                double nll = r < kg ? -p->rpo_alpha / ((double)k * b.count[r]) : 0.0;
                for (int t = 0; t < b.count[r]; t++) c->dlogp[(size_t)r * b.T + b.first[r] + t] = (float)(ds[r] + nll);
            }
            st = cllm_model_backward_heads(c->pol.model, c->dlogp, NULL, err);
        }
        cllm_rl_batch_free(&b);
    }
    return st;
}

static void progress_hook(void *ctx, const th_run *h, double loss, float lr, char *out, size_t cap) {
    dpo_ctx *c = ctx;
    const int64_t step = h->state.step; /* 1-based: steps done */
    char line[512];
    snprintf(line, sizeof line, "dpo step %lld: loss %.4f  rewards chosen %.4f rejected %.4f  margin %.4f  accuracy %.3f  "
             "grad_norm %.3g  lr %.2e", (long long)step, loss, c->last.reward_chosen, c->last.reward_rejected,
             c->last.margin, c->last.accuracy, h->norm, (double)lr);
    if (!h->progress && (step == h->start_step + 1 || step == h->steps || step % 10 == 0)) th_log(h, "%s", line);
    snprintf(out, cap, "%s", line);
}

static void snapshot_hook(void *ctx, cllm_train_state *s) { rl_cursor_snapshot(&((dpo_ctx *)ctx)->cursor, s); }

static cllm_status write_final(const char *path, void *ctx, cllm_error *err) {
    const dpo_ctx *c = ctx;
    return rl_model_save(&c->h, &c->pol, path, err);
}

cllm_status cllm_dpo_train(const cllm_rl_params *p, cllm_rl_result *res, cllm_error *err) {
    memset(res, 0, sizeof *res);
    res->val_accuracy = res->val_accuracy_before = -1;
    res->first_metric = res->last_metric = NAN;
    if (p->steps < 1 || p->batch < 1 || !(p->lr > 0) || !(p->beta > 0) || !(p->val_frac >= 0 && p->val_frac < 1))
        return cllm_error_set(err, CLLM_ERR_ARG, "dpo: steps, batch, lr and beta must be positive, val_frac in [0,1)");
    dpo_ctx c;
    memset(&c, 0, sizeof c);
    c.p = p;
    c.res = res;
    th_init(&c.h);
    cllm_rl_model ref = {0};
    double *pc = NULL, *pr = NULL;
    c.h.data_parallel = 1;
    cllm_status st = rl_run_begin(&c.h, "dpo", "preferring the chosen replies (DPO)", p, write_final, &c, err);
    if (st) goto done;
    cllm_model_options o = cllm_model_default_options();
    o.max_batch = 2 * p->batch;
    o.max_seq = 0; /* the policy's context */
    o.training = 1;
    if ((st = cllm_rl_model_load(p->model_path, &o, 0, &c.pol, err))) goto done;
    c.max_T = cllm_model_get_config(c.pol.model)->context_length;
    o.max_seq = c.max_T;
    o.training = 0;
    if ((st = cllm_rl_model_load(p->ref_path ? p->ref_path : p->model_path, &o, 0, &ref, err))) goto done;
    if ((st = cllm_rl_check_same_shape(cllm_model_get_config(c.pol.model), cllm_model_get_config(ref.model),
                                       "reference model", err)))
        goto done;
    if ((st = rl_pairs_load("dpo", p, &c.pol, c.max_T, &c.data, &c.n_train, &c.n_val, err))) goto done;
    const int n = c.data.n;
    if ((st = th_open(&c.h, err))) goto done; /* the run directory, before any training work */
    size_t N = (size_t)o.max_batch * c.max_T;
    cllm_rng_seed(&c.rng, p->seed);
    c.idx = rl_order_new(n, &c.rng);
    c.tok = malloc(N * sizeof *c.tok);
    c.dlogp = malloc(N * sizeof *c.dlogp);
    c.ref_c = malloc((size_t)n * sizeof *c.ref_c);
    c.ref_r = malloc((size_t)n * sizeof *c.ref_r);
    pc = malloc((size_t)n * sizeof *pc);
    pr = malloc((size_t)n * sizeof *pr);
    if (!c.idx || !c.tok || !c.dlogp || !c.ref_c || !c.ref_r || !pc || !pr) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "dpo: out of memory");
        goto done;
    }
    /* reference log-probabilities, once (a resumed run recomputes the same) */
    if ((st = score_pairs(ref.model, &c.data, c.idx, n, p->batch, c.max_T, c.tok, c.ref_c, c.ref_r, err))) goto done;
    cllm_rl_model_free(&ref);
    cllm_adamw_params hp = rl_adamw(p);
    if ((st = th_optim_init_model(&c.h.opt, c.pol.model, 0, &hp, p->clip_grad, err))) goto done;
    c.cursor = (rl_cursor){c.idx, c.n_train, c.n_train, &c.rng, 0};
    char config[CLLM_CKPT_CONFIG_MAX];
    int len = rl_config_common("dpo", p, config, sizeof config);
    snprintf(config + len, sizeof config - (size_t)len, "beta=%a\nrpo_alpha=%a\nval_frac=%a\n", (double)p->beta,
             (double)p->rpo_alpha, (double)p->val_frac);
    if ((st = rl_run_start(&c.h, config, &c.data, c.pol.tok, &c.cursor, res, err))) goto done;
    const th_hooks hooks = {step_hook, NULL, snapshot_hook, progress_hook, 0};
    if ((st = th_loop(&c.h, &hooks, &c, err))) goto done;
    if (c.n_val) {
        if ((st = score_pairs(c.pol.model, &c.data, c.idx + c.n_train, c.n_val, p->batch, c.max_T, c.tok, pc, pr, err)))
            goto done;
        int correct = 0;
        for (int j = c.n_train; j < n; j++) {
            int i = c.idx[j];
            correct += (pc[i] - c.ref_c[i]) - (pr[i] - c.ref_r[i]) > 0;
        }
        res->val_accuracy = (double)correct / c.n_val;
        rl_log(p, "dpo: held-out preference accuracy %.3f (%d pair%s)", res->val_accuracy, c.n_val, c.n_val == 1 ? "" : "s");
    }
    st = rl_run_finish(&c.h, "DPO loss", res, err);
done:
    free(c.idx);
    free(c.tok);
    free(c.dlogp);
    free(c.ref_c);
    free(c.ref_r);
    free(pc);
    free(pr);
    th_free(&c.h);
    cllm_pref_data_free(&c.data);
    cllm_rl_model_free(&c.pol);
    cllm_rl_model_free(&ref);
    return st;
}
