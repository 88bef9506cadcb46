/*
 * reward.c: `cllm reward`: a Bradley-Terry reward model (Ouyang et al. 2022,
 * InstructGPT section 3.5). A scalar head on the final hidden state of a
 * sequence's last token gives r(prompt, completion); the loss is
 * -log sigmoid(r(chosen) - r(rejected)), averaged over pairs. The trunk and
 * the head are trained together with AdamW; pairwise accuracy is reported on
 * a held-out split (the last val_frac of the shuffled pairs). The result is
 * the base GGUF plus cls.weight [C] / cls.bias [1].
 *
 * The loop, checkpoints and resume are the training harness's (harness.h):
 * the trunk is its optimizer, the head (w then b, no decay) a second one
 * clipped by its own norm, as before the port.
 *
 * Does not: normalise rewards (PPO whitens advantages instead), or pack
 * pairs (each batch holds its chosen rows, then its rejected rows).
 */
#include <math.h>
#include <stdio.h>
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
    p.keep = 1;
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

typedef struct {
    const cllm_rl_params *p;
    cllm_rl_model rm;
    cllm_pref_data data;
    int *idx;               /* [data.n] shuffled pair ids: train ones, then held-out */
    int n_train, n_val, max_T, C;
    float *dh;              /* [2 batch * max_T * C] d loss / d hidden */
    float *hgrad;           /* [C+1] head gradients (w, then b) */
    cllm_rng rng;
    rl_cursor cursor;
    double batch_acc;       /* the last step's pairwise accuracy (log) */
    cllm_rl_result *res;    /* first_metric / last_metric: the batch accuracy of this run's first and last step */
    th_run h;
} reward_ctx;

/* hooks.step: one batch of pairs, the Bradley-Terry loss, trunk and head gradients. */
static cllm_status step_hook(void *ctx, int64_t step, double *loss, double *tokens, cllm_error *err) {
    reward_ctx *c = ctx;
    const int C = c->C;
    int k = c->p->batch < c->n_train ? c->p->batch : c->n_train;
    int sel[k];
    for (int j = 0; j < k; j++) sel[j] = rl_cursor_next(&c->cursor);
    cllm_model_zero_grad(c->rm.model);
    memset(c->hgrad, 0, ((size_t)C + 1) * sizeof *c->hgrad);
    cllm_status st = CLLM_OK;
    int correct_all = 0, seen = 0;
    *loss = 0;
    *tokens = 0;
    /* the pairs in gradient groups (one per rank, th_group); one group: the whole batch */
    for (int g = 0, lo, hi; g < th_groups(&c->h) && st == CLLM_OK; g++) {
        if (!th_group(&c->h, g, k, &lo, &hi) || lo == hi) continue;
        const int kg = hi - lo;
        cllm_rl_batch b;
        st = rl_pair_batch(&c->data, sel + lo, kg, c->max_T, &b, err);
        if (st) return st;
        float r[2 * kg], dr[2 * kg];
        st = rl_reward_scores(&c->rm, &b, r, err);
        if (st == CLLM_OK) {
            int correct = 0;
            const double l = cllm_bt_loss(r, r + kg, kg, dr, dr + kg, &correct);
            if (kg != k) { /* a share of the batch mean */
                for (int i = 0; i < 2 * kg; i++) dr[i] *= (float)kg / (float)k;
                *loss += l * kg / k;
            } else {
                *loss += l;
            }
            *tokens += (double)b.B * b.T;
            correct_all += correct;
            seen += kg;
            const float *h = cllm_model_hidden(c->rm.model);
            memset(c->dh, 0, (size_t)b.B * b.T * C * sizeof *c->dh);
            for (int i = 0; i < b.B; i++) {
                size_t off = ((size_t)i * b.T + (size_t)b.last[i]) * C;
                cllm_scalar_head_backward(c->dh + off, c->hgrad, c->hgrad + C, &dr[i], h + off, c->rm.head_w, 1, C);
            }
            st = cllm_model_backward_heads(c->rm.model, NULL, c->dh, err);
        }
        cllm_rl_batch_free(&b);
    }
    c->batch_acc = seen ? (double)correct_all / seen : NAN; /* this rank's pairs */
    if (step == c->res->start_step) c->res->first_metric = c->batch_acc;
    c->res->last_metric = c->batch_acc;
    return st;
}

static void progress_hook(void *ctx, const th_run *h, double loss, float lr, char *out, size_t cap) {
    reward_ctx *c = ctx;
    const int64_t step = h->state.step;
    char line[256];
    snprintf(line, sizeof line, "reward step %lld: loss %.4f  batch accuracy %.3f  grad_norm %.3g  lr %.2e",
             (long long)step, loss, c->batch_acc, h->norm, (double)lr);
    if (!h->progress && (step == h->start_step + 1 || step == h->steps || step % 10 == 0)) th_log(h, "%s", line);
    snprintf(out, cap, "%s", line);
}

static void snapshot_hook(void *ctx, cllm_train_state *s) { rl_cursor_snapshot(&((reward_ctx *)ctx)->cursor, s); }

static cllm_status write_final(const char *path, void *ctx, cllm_error *err) {
    const reward_ctx *c = ctx;
    return rl_model_save(&c->h, &c->rm, path, err);
}

cllm_status cllm_reward_train(const cllm_rl_params *p, cllm_rl_result *res, cllm_error *err) {
    memset(res, 0, sizeof *res);
    res->val_accuracy = res->val_accuracy_before = -1;
    res->first_metric = res->last_metric = NAN;
    if (p->steps < 1 || p->batch < 1 || !(p->lr > 0) || !(p->val_frac >= 0 && p->val_frac < 1))
        return cllm_error_set(err, CLLM_ERR_ARG, "reward: steps, batch and lr must be positive, val_frac in [0,1)");
    reward_ctx c;
    memset(&c, 0, sizeof c);
    c.p = p;
    c.res = res;
    th_init(&c.h);
    c.h.data_parallel = 1;
    cllm_status st = rl_run_begin(&c.h, "reward", "scoring replies (a reward model trained on preference pairs)", p, write_final, &c, err);
    if (st) goto done;
    cllm_model_options o = cllm_model_default_options();
    o.training = 1;
    o.max_batch = 2 * p->batch;
    o.max_seq = 0; /* the model's context */
    if ((st = cllm_rl_model_load(p->model_path, &o, 1, &c.rm, err))) goto done;
    const int C = c.C = cllm_model_get_config(c.rm.model)->n_embd;
    c.max_T = cllm_model_get_config(c.rm.model)->context_length;
    cllm_rng_seed(&c.rng, p->seed);
    int have_head = 0;
    for (int i = 0; i < C; i++) have_head |= c.rm.head_w[i] != 0.0f;
    if (!have_head) /* small random head so the trunk gets a gradient from step 0 */
        for (int i = 0; i < C; i++) c.rm.head_w[i] = cllm_rng_normal(&c.rng) / sqrtf((float)C);

    if ((st = rl_pairs_load("reward", p, &c.rm, c.max_T, &c.data, &c.n_train, &c.n_val, err))) goto done;
    const int n = c.data.n;
    if ((st = th_open(&c.h, err))) goto done; /* the run directory, before any training work */
    c.idx = rl_order_new(n, &c.rng);
    c.dh = malloc((size_t)o.max_batch * c.max_T * C * sizeof *c.dh);
    c.hgrad = malloc(((size_t)C + 1) * sizeof *c.hgrad);
    if (!c.idx || !c.dh || !c.hgrad) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "reward: out of memory");
        goto done;
    }
    /* the trunk (opt) and the head (extra[0], no decay), updated together */
    cllm_adamw_params hp = rl_adamw(p);
    if ((st = th_optim_init_model(&c.h.opt, c.rm.model, 0, &hp, p->clip_grad, err))) goto done;
    if ((st = th_optim_init_flat(&c.h.extra[0], c.rm.head_w, c.hgrad, (size_t)C + 1, &hp, p->clip_grad, err)))
        goto done;
    c.h.n_extra = 1;
    c.cursor = (rl_cursor){c.idx, c.n_train, c.n_train, &c.rng, 0};
    char config[CLLM_CKPT_CONFIG_MAX];
    int len = rl_config_common("reward", p, config, sizeof config);
    snprintf(config + len, sizeof config - (size_t)len, "val_frac=%a\n", (double)p->val_frac);
    if ((st = rl_run_start(&c.h, config, &c.data, c.rm.tok, &c.cursor, res, err))) goto done;
    double acc0 = -1;
    if (c.n_val && (st = eval_accuracy(&c.rm, &c.data, c.idx + c.n_train, c.n_val, p->batch, c.max_T, &acc0, err)))
        goto done;
    res->val_accuracy_before = acc0;
    if (c.n_val)
        rl_log(p, "reward: %d train / %d held-out pairs; held-out accuracy at step %d %.3f", c.n_train, c.n_val,
               res->start_step, acc0);
    const th_hooks hooks = {step_hook, NULL, snapshot_hook, progress_hook, 0};
    if ((st = th_loop(&c.h, &hooks, &c, err))) goto done;
    if (c.n_val) {
        if ((st = eval_accuracy(&c.rm, &c.data, c.idx + c.n_train, c.n_val, p->batch, c.max_T, &res->val_accuracy,
                                err)))
            goto done;
        rl_log(p, "reward: held-out pairwise accuracy %.3f (%d pair%s)", res->val_accuracy, c.n_val, c.n_val == 1 ? "" : "s");
    }
    st = rl_run_finish(&c.h, "reward model loss", res, err);
done:
    free(c.idx);
    free(c.dh);
    free(c.hgrad);
    th_free(&c.h);
    cllm_pref_data_free(&c.data);
    cllm_rl_model_free(&c.rm);
    return st;
}
