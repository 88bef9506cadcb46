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
 * Does not: implement IPO/KTO variants or length normalisation.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

cllm_status cllm_dpo_train(const cllm_rl_params *p, cllm_rl_result *res, cllm_error *err) {
    memset(res, 0, sizeof *res);
    res->val_accuracy = -1;
    if (p->steps < 1 || p->batch < 1 || !(p->lr > 0) || !(p->beta > 0) || !(p->val_frac >= 0 && p->val_frac < 1))
        return cllm_error_set(err, CLLM_ERR_ARG, "dpo: steps, batch, lr and beta must be positive, val_frac in [0,1)");
    cllm_rl_model pol = {0}, ref = {0};
    cllm_pref_data data = {0};
    rl_adam opt = {0};
    int *idx = NULL;
    float *tok = NULL, *dlogp = NULL;
    double *ref_c = NULL, *ref_r = NULL, *pc = NULL, *pr = NULL;
    cllm_model_options o = cllm_model_default_options();
    o.max_batch = 2 * p->batch;
    o.max_seq = 0; /* the policy's context */
    o.training = 1;
    cllm_status st = cllm_rl_model_load(p->model_path, &o, 0, &pol, err);
    if (st) return st;
    const int max_T = cllm_model_get_config(pol.model)->context_length;
    o.max_seq = max_T;
    o.training = 0;
    if ((st = cllm_rl_model_load(p->ref_path ? p->ref_path : p->model_path, &o, 0, &ref, err))) goto done;
    if ((st = cllm_rl_check_same_shape(cllm_model_get_config(pol.model), cllm_model_get_config(ref.model),
                                       "reference model", err)))
        goto done;
    cllm_pref_load_params lp = {0, max_T};
    if ((st = cllm_pref_data_load(p->data_path, pol.tok, pol.tmpl, &lp, &data, err))) goto done;
    int n_val = (int)(data.n * p->val_frac), n_train = data.n - n_val;
    if (n_train < 1) {
        st = cllm_error_set(err, CLLM_ERR_ARG, "dpo: %s has %d pairs, none left for training", p->data_path, data.n);
        goto done;
    }
    size_t N = (size_t)o.max_batch * max_T;
    idx = malloc((size_t)data.n * sizeof *idx);
    tok = malloc(N * sizeof *tok);
    dlogp = malloc(N * sizeof *dlogp);
    ref_c = malloc((size_t)data.n * sizeof *ref_c);
    ref_r = malloc((size_t)data.n * sizeof *ref_r);
    pc = malloc((size_t)data.n * sizeof *pc);
    pr = malloc((size_t)data.n * sizeof *pr);
    if (!idx || !tok || !dlogp || !ref_c || !ref_r || !pc || !pr) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "dpo: out of memory");
        goto done;
    }
    for (int i = 0; i < data.n; i++) idx[i] = i;
    cllm_rng rng;
    cllm_rng_seed(&rng, p->seed);
    rl_shuffle(idx, data.n, &rng);
    /* reference log-probabilities, once */
    if ((st = score_pairs(ref.model, &data, idx, data.n, p->batch, max_T, tok, ref_c, ref_r, err))) goto done;
    cllm_rl_model_free(&ref);
    if ((st = rl_adam_init(&opt, cllm_model_num_params(pol.model), err))) goto done;
    rl_cursor cursor = {idx, n_train, n_train, &rng};
    double first_acc = -1;
    for (int step = 1; step <= p->steps; step++) {
        int k = p->batch < n_train ? p->batch : n_train;
        int sel[k];
        for (int j = 0; j < k; j++) sel[j] = rl_cursor_next(&cursor);
        cllm_rl_batch b;
        if ((st = rl_pair_batch(&data, sel, k, max_T, &b, err))) break;
        double s[2 * k], rc[k], rr[k], ds[2 * k];
        cllm_model_zero_grad(pol.model);
        st = cllm_rl_logprobs(pol.model, &b, tok, s, err);
        if (st == CLLM_OK) {
            for (int j = 0; j < k; j++) {
                rc[j] = ref_c[sel[j]];
                rr[j] = ref_r[sel[j]];
            }
            cllm_dpo_stats ds_st;
            cllm_dpo_loss(s, s + k, rc, rr, k, p->beta, ds, ds + k, &ds_st);
            if (!isfinite(ds_st.loss)) {
                st = cllm_error_set(err, CLLM_ERR_NUMERIC, "dpo step %d: loss is not finite", step);
            } else {
                memset(dlogp, 0, (size_t)b.B * b.T * sizeof *dlogp);
                for (int r = 0; r < b.B; r++) {
                    /* d/dlogp of rpo_alpha * mean over pairs of -(1/count) sum_t logp, chosen rows */
                    double nll = r < k ? -p->rpo_alpha / ((double)k * b.count[r]) : 0.0;
                    for (int t = 0; t < b.count[r]; t++) dlogp[(size_t)r * b.T + b.first[r] + t] = (float)(ds[r] + nll);
                }
                st = cllm_model_backward_heads(pol.model, dlogp, NULL, err);
            }
            if (st == CLLM_OK) {
                double gn = rl_adam_step_model(&opt, pol.model, p->lr, p->weight_decay, p->clip_grad);
                if (step == 1) first_acc = ds_st.accuracy;
                if (step == 1 || step == p->steps || step % 10 == 0)
                    rl_log(p, "dpo step %d: loss %.4f  rewards chosen %.4f rejected %.4f  margin %.4f  accuracy %.3f  grad_norm %.3g",
                           step, ds_st.loss, ds_st.reward_chosen, ds_st.reward_rejected, ds_st.margin, ds_st.accuracy, gn);
                res->last_metric = ds_st.accuracy;
            }
        }
        cllm_rl_batch_free(&b);
        if (st) break;
        res->steps_done = step;
    }
    res->first_metric = first_acc;
    if (st) goto done;
    if (n_val) {
        if ((st = score_pairs(pol.model, &data, idx + n_train, n_val, p->batch, max_T, tok, pc, pr, err))) goto done;
        int correct = 0;
        for (int j = n_train; j < data.n; j++) {
            int i = idx[j];
            correct += (pc[i] - ref_c[i]) - (pr[i] - ref_r[i]) > 0;
        }
        res->val_accuracy = (double)correct / n_val;
        rl_log(p, "dpo: held-out preference accuracy %.3f (%d pairs)", res->val_accuracy, n_val);
    }
    if (p->out_path) st = cllm_rl_model_save(&pol, p->out_path, err);
done:
    free(idx);
    free(tok);
    free(dlogp);
    free(ref_c);
    free(ref_r);
    free(pc);
    free(pr);
    rl_adam_free(&opt);
    cllm_pref_data_free(&data);
    cllm_rl_model_free(&pol);
    cllm_rl_model_free(&ref);
    return st;
}
