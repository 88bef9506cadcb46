/*
 * reward.c: `cllm reward`: a Bradley-Terry reward model (Ouyang et al. 2022,
 * InstructGPT section 3.5). A scalar head on the final hidden state of a
 * sequence's last token gives r(prompt, completion); the loss is
 * -log sigmoid(r(chosen) - r(rejected)), averaged over pairs. The trunk and
 * the head are trained together with AdamW; pairwise accuracy is reported on
 * a held-out split (the last val_frac of the shuffled pairs). The result is
 * the base GGUF plus cls.weight [C] / cls.bias [1].
 *
 * Does not: normalise rewards (PPO whitens advantages instead), or pack
 * pairs (each batch holds its chosen rows, then its rejected rows).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rl_internal.h"

cllm_rl_params cllm_rl_default_params(void) {
    cllm_rl_params p;
    memset(&p, 0, sizeof p);
    p.steps = 100;
    p.batch = 8;
    p.lr = 1e-4f;
    p.weight_decay = 0.0f;
    p.clip_grad = 1.0f;
    p.seed = 1337;
    p.val_frac = 0.1f;
    p.beta = 0.1f;
    p.max_new = 32;
    p.temperature = 1.0f;
    p.group = 4;
    p.epochs = 2;
    p.clip_eps = 0.2f;
    p.kl_coef = 0.05f;
    p.gamma = 1.0f;
    p.lam = 0.95f;
    p.vf_coef = 0.1f;
    p.vf_clip = 0.2f;
    return p;
}

/* Held-out pairwise accuracy: the fraction of pairs idx[0..n) scored
 * r(chosen) > r(rejected); -1 when n is 0. */
static cllm_status eval_accuracy(cllm_rl_model *rm, const cllm_pref_data *d, const int *idx, int n, int bs,
                                 int max_T, double *acc, cllm_error *err) {
    int correct = 0;
    for (int i = 0; i < n; i += bs) {
        int k = n - i < bs ? n - i : bs;
        cllm_rl_batch b;
        cllm_status st = rl_pair_batch(d, idx + i, k, max_T, &b, err);
        if (st) return st;
        float r[2 * k];
        st = rl_reward_scores(rm, &b, r, err);
        cllm_rl_batch_free(&b);
        if (st) return st;
        for (int j = 0; j < k; j++) correct += r[j] > r[k + j];
    }
    *acc = n ? (double)correct / n : -1.0;
    return CLLM_OK;
}

cllm_status cllm_reward_train(const cllm_rl_params *p, cllm_rl_result *res, cllm_error *err) {
    memset(res, 0, sizeof *res);
    res->val_accuracy = -1;
    cllm_rl_model rm = {0};
    cllm_pref_data data = {0};
    rl_adam opt = {0}, hopt = {0};
    int *idx = NULL;
    float *dh = NULL, *hgrad = NULL;
    if (p->steps < 1 || p->batch < 1 || !(p->lr > 0) || !(p->val_frac >= 0 && p->val_frac < 1))
        return cllm_error_set(err, CLLM_ERR_ARG, "reward: steps, batch and lr must be positive, val_frac in [0,1)");
    cllm_model_options o = cllm_model_default_options();
    o.training = 1;
    o.max_batch = 2 * p->batch;
    o.max_seq = 0; /* the model's context */
    cllm_status st = cllm_rl_model_load(p->model_path, &o, 1, &rm, err);
    if (st) return st;
    const int C = cllm_model_get_config(rm.model)->n_embd, max_T = cllm_model_get_config(rm.model)->context_length;
    cllm_rng rng;
    cllm_rng_seed(&rng, p->seed);
    int have_head = 0;
    for (int i = 0; i < C; i++) have_head |= rm.head_w[i] != 0.0f;
    if (!have_head) /* small random head so the trunk gets a gradient from step 0 */
        for (int i = 0; i < C; i++) rm.head_w[i] = cllm_rng_normal(&rng) / sqrtf((float)C);

    cllm_pref_load_params lp = {0, max_T};
    if ((st = cllm_pref_data_load(p->data_path, rm.tok, rm.tmpl, &lp, &data, err))) goto done;
    int n_val = (int)(data.n * p->val_frac), n_train = data.n - n_val;
    if (n_train < 1) {
        st = cllm_error_set(err, CLLM_ERR_ARG, "reward: %s has %d pairs, none left for training", p->data_path, data.n);
        goto done;
    }
    idx = malloc((size_t)data.n * sizeof *idx);
    dh = malloc((size_t)o.max_batch * max_T * C * sizeof *dh);
    hgrad = malloc(((size_t)C + 1) * sizeof *hgrad);
    if (!idx || !dh || !hgrad) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "reward: out of memory");
        goto done;
    }
    for (int i = 0; i < data.n; i++) idx[i] = i;
    rl_shuffle(idx, data.n, &rng);
    if ((st = rl_adam_init(&opt, cllm_model_num_params(rm.model), err))) goto done;
    if ((st = rl_adam_init(&hopt, (size_t)C + 1, err))) goto done;
    float *head = malloc(((size_t)C + 1) * sizeof *head); /* w then b, for the flat optimizer */
    if (!head) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "reward: out of memory");
        goto done;
    }
    double acc0 = -1;
    if (n_val && (st = eval_accuracy(&rm, &data, idx + n_train, n_val, p->batch, max_T, &acc0, err))) {
        free(head);
        goto done;
    }
    res->first_metric = acc0;
    if (n_val) rl_log(p, "reward: %d train / %d held-out pairs; held-out accuracy before training %.3f", n_train, n_val, acc0);
    rl_cursor cursor = {idx, n_train, n_train, &rng};
    for (int step = 1; step <= p->steps; step++) {
        int sel[p->batch];
        int k = p->batch < n_train ? p->batch : n_train;
        for (int j = 0; j < k; j++) sel[j] = rl_cursor_next(&cursor);
        cllm_rl_batch b;
        if ((st = rl_pair_batch(&data, sel, k, max_T, &b, err))) break;
        float r[2 * k], dr[2 * k];
        cllm_model_zero_grad(rm.model);
        st = rl_reward_scores(&rm, &b, r, err);
        int correct = 0;
        double loss = cllm_bt_loss(r, r + k, k, dr, dr + k, &correct);
        if (st == CLLM_OK) {
            const float *h = cllm_model_hidden(rm.model);
            memset(dh, 0, (size_t)b.B * b.T * C * sizeof *dh);
            memset(hgrad, 0, ((size_t)C + 1) * sizeof *hgrad);
            for (int i = 0; i < b.B; i++) {
                size_t off = ((size_t)i * b.T + (size_t)b.last[i]) * C;
                cllm_scalar_head_backward(dh + off, hgrad, hgrad + C, &dr[i], h + off, rm.head_w, 1, C);
            }
            st = cllm_model_backward_heads(rm.model, NULL, dh, err);
        }
        cllm_rl_batch_free(&b);
        if (st) break;
        double gn = rl_adam_step_model(&opt, rm.model, p->lr, p->weight_decay, p->clip_grad);
        memcpy(head, rm.head_w, (size_t)C * sizeof *head);
        head[C] = rm.head_b;
        rl_adam_step_flat(&hopt, head, hgrad, p->lr, p->clip_grad);
        memcpy(rm.head_w, head, (size_t)C * sizeof *head);
        rm.head_b = head[C];
        res->steps_done = step;
        if (step == 1 || step == p->steps || step % 10 == 0)
            rl_log(p, "reward step %d: loss %.4f  batch accuracy %.3f  grad_norm %.3g", step, loss,
                   (double)correct / k, gn);
    }
    free(head);
    if (st) goto done;
    if (n_val) {
        if ((st = eval_accuracy(&rm, &data, idx + n_train, n_val, p->batch, max_T, &res->val_accuracy, err)))
            goto done;
        rl_log(p, "reward: held-out pairwise accuracy %.3f (%d pairs)", res->val_accuracy, n_val);
    }
    res->last_metric = res->val_accuracy;
    if (p->out_path) st = cllm_rl_model_save(&rm, p->out_path, err);
done:
    free(idx);
    free(dh);
    free(hgrad);
    rl_adam_free(&opt);
    rl_adam_free(&hopt);
    cllm_pref_data_free(&data);
    cllm_rl_model_free(&rm);
    return st;
}
