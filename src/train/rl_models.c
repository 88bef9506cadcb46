/*
 * rl_models.c: what every preference-tuning run shares: loading a model
 * together with its tokenizer, chat template and optional scalar head
 * (cls.weight / cls.bias) from GGUF and saving it back atomically; the
 * harness settings, config and data identity every run has; the shuffled
 * data cursor and its checkpoint; scoring completions with a reward model;
 * logging.
 *
 * Does not: hold any method's loop (reward.c, dpo.c, ppo.c, grpo.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/core/hash.h"
#include "cllm/formats/gguf.h"
#include "cllm/load/model_file.h"
#include "cllm/model/gguf_io.h"
#include "harness.h"
#include "cllm/train/dist.h"
#include "rl_internal.h"

/* ---- the run on the harness ------------------------------------------------ */

cllm_status rl_run_begin(th_run *h, const char *name, const char *task, const cllm_rl_params *p,
                         cllm_ckpt_model_writer write_final, void *ctx, cllm_error *err) {
    if (!p->run_dir) return cllm_error_set(err, CLLM_ERR_ARG, "%s: no run directory (--out RUN_DIR)", name);
    if (p->keep < 1 || p->save_every < 0)
        return cllm_error_set(err, CLLM_ERR_ARG, "%s: keep must be >= 1 and save_every >= 0", name);
    h->name = name;
    h->run_dir = p->run_dir;
    th_describe(h, task, p->data_path, p->model_path);
    h->resume = p->resume;
    h->progress = p->progress;
    h->keep = p->keep;
    h->precision = p->precision;
    h->precision_change = p->precision_change;
    h->steps = p->steps;
    h->save_every = p->save_every;
    h->max_nonfinite = RL_MAX_NONFINITE;
    h->sched = (cllm_schedule){CLLM_SCHEDULE_CONSTANT, p->lr, p->lr, 0, p->steps, 0};
    h->write_weights = NULL; /* the optimizers' blocks */
    h->write_final = write_final;
    h->weights_ctx = ctx;
    h->stop_flag = p->stop_flag;
    h->log = p->log;
    h->log_ctx = p->log_ctx;
    return th_lock_existing(h, err);
}

cllm_adamw_params rl_adamw(const cllm_rl_params *p) {
    cllm_adamw_params hp = cllm_adamw_default_params();
    hp.weight_decay = p->weight_decay;
    return hp;
}

int rl_config_common(const char *name, const cllm_rl_params *p, char *out, size_t cap) {
    return snprintf(out, cap, "kind=%s\nsteps=%d\nbatch=%d\nlr=%a\nweight_decay=%a\nclip=%a\nseed=%llu\n", name,
                    p->steps, p->batch, (double)p->lr, (double)p->weight_decay, (double)p->clip_grad,
                    (unsigned long long)p->seed);
}

static uint64_t fnv(uint64_t h, const void *data, size_t n) { return cllm_fnv1a64(data, n, h); }

uint64_t rl_data_fingerprint(const cllm_pref_data *d) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < d->n; i++) {
        const cllm_pref_example *e = &d->items[i];
        int n[3] = {e->n_prompt, e->n_chosen, e->n_rejected};
        h = fnv(h, n, sizeof n);
        h = fnv(h, e->prompt, (size_t)e->n_prompt * sizeof *e->prompt);
        if (e->chosen) h = fnv(h, e->chosen, (size_t)e->n_chosen * sizeof *e->chosen);
        if (e->rejected) h = fnv(h, e->rejected, (size_t)e->n_rejected * sizeof *e->rejected);
        if (e->answer) h = fnv(h, e->answer, strlen(e->answer) + 1);
    }
    return h;
}

cllm_status rl_run_start(th_run *h, const char *config, const cllm_pref_data *d, const cllm_tokenizer *tok,
                         rl_cursor *cursor, cllm_rl_result *res, cllm_error *err) {
    cllm_status st = th_begin(h, config, rl_data_fingerprint(d), cllm_tokenizer_hash(tok), 0, err);
    if (!st && h->resumed) st = rl_cursor_restore(cursor, &h->state, err);
    res->start_step = (int)h->state.step;
    return st;
}

cllm_status rl_run_finish(th_run *h, const char *title, cllm_rl_result *res,
                          cllm_error *err) {
    res->steps_done = (int)h->state.step;
    snprintf(res->reason_text, sizeof res->reason_text, "%s", h->reason_text);
    cllm_status st = th_finish(h, "model.gguf", title, "loss", 0, res->output_path, sizeof res->output_path, err);
    cllm_train_summary *s = &res->summary;
    th_summarize(h, res->output_path, s);
    const int rollouts = !strcmp(h->name, "ppo") || !strcmp(h->name, "grpo");
    snprintf(s->metric, sizeof s->metric, "%s", rollouts ? "mean reward of the rollouts" : "pair accuracy of the batch");
    s->metric_first = res->first_metric;
    s->metric_last = res->last_metric;
    if (res->val_accuracy_before >= 0) cllm_train_summary_add(s, "val_accuracy_before", res->val_accuracy_before);
    if (res->val_accuracy >= 0) cllm_train_summary_add(s, "val_accuracy", res->val_accuracy);
    if (rollouts) {
        cllm_train_summary_add(s, "rollout_tokens", (double)res->rollout_tokens);
        cllm_train_summary_add(s, "rollout_tokens_per_s", res->rollout_tokens_per_s);
    }
    return st;
}

void rl_log(const cllm_rl_params *p, const char *fmt, ...) {
    if (cllm_dist_rank() != 0) return; /* rank 0 speaks for a data-parallel job */
    va_list ap;
    va_start(ap, fmt);
    th_logv(p->log, p->log_ctx, fmt, ap);
    va_end(ap);
}

void rl_shuffle(int *idx, int n, cllm_rng *rng) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)cllm_rng_below(rng, (uint64_t)i + 1);
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

int *rl_order_new(int n, cllm_rng *rng) {
    int *idx = malloc((size_t)(n > 0 ? n : 1) * sizeof *idx);
    if (!idx) return NULL;
    for (int i = 0; i < n; i++) idx[i] = i;
    rl_shuffle(idx, n, rng);
    return idx;
}

cllm_status rl_pairs_load(const char *command, const cllm_rl_params *p, const cllm_rl_model *m, int max_T,
                          cllm_pref_data *data, int *n_train, int *n_val, cllm_error *err) {
    cllm_pref_load_params lp = {0, max_T};
    cllm_status st = cllm_pref_data_load(p->data_path, m->tok, m->tmpl, &lp, data, err);
    if (st) return st;
    *n_val = (int)(data->n * p->val_frac);
    *n_train = data->n - *n_val;
    if (*n_train < 1)
        return cllm_error_set(err, CLLM_ERR_ARG, "%s: %s has %d pairs, none left for training", command, p->data_path,
                              data->n);
    return CLLM_OK;
}

/* Rows: chosen of pairs idx[0..k), then their rejected. */
cllm_status rl_pair_batch(const cllm_pref_data *d, const int *idx, int k, int max_T, cllm_rl_batch *b,
                         cllm_error *err) {
    cllm_rl_seq seqs[2 * k];
    for (int i = 0; i < k; i++) {
        const cllm_pref_example *e = &d->items[idx[i]];
        seqs[i] = (cllm_rl_seq){e->prompt, e->chosen, e->n_prompt, e->n_chosen};
        seqs[k + i] = (cllm_rl_seq){e->prompt, e->rejected, e->n_prompt, e->n_rejected};
    }
    return cllm_rl_batch_build(seqs, 2 * k, max_T, b, err);
}

int rl_cursor_next(rl_cursor *c) {
    if (c->pos >= c->n) {
        rl_shuffle(c->idx, c->n, c->rng);
        c->shuffles++;
        c->pos = 0;
    }
    return c->idx[c->pos++];
}

void rl_cursor_snapshot(const rl_cursor *c, cllm_train_state *s) {
    s->loader.epoch = c->shuffles;
    s->loader.position = (uint64_t)c->pos;
    s->loader.rng = *c->rng;
}

cllm_status rl_cursor_restore(rl_cursor *c, const cllm_train_state *s, cllm_error *err) {
    if (s->loader.position > (uint64_t)c->n)
        return cllm_error_set(err, CLLM_ERR_FORMAT, "checkpoint data position %llu is past the %d examples",
                              (unsigned long long)s->loader.position, c->n);
    for (; c->shuffles < s->loader.epoch; c->shuffles++) rl_shuffle(c->idx, c->n, c->rng);
    c->pos = (int)s->loader.position;
    if (memcmp(c->rng, &s->loader.rng, sizeof *c->rng) != 0)
        return cllm_error_set(err, CLLM_ERR_FORMAT,
                              "checkpoint data order does not replay (%llu reshuffles); start a new run directory",
                              (unsigned long long)s->loader.epoch);
    return CLLM_OK;
}

void rl_turn_end_init(rl_turn_end *e, const cllm_tokenizer *tok, cllm_chat_template tmpl) {
    memset(e, 0, sizeof *e);
    e->n_ids = cllm_chat_end_tokens(tok, tmpl, e->ids);
    /* chat_template.h: PLAIN without an end-of-text special ends an assistant turn with "\n\n" */
    if (e->n_ids == 0) e->text = "\n\n";
}

int rl_at_turn_end(const cllm_tokenizer *tok, const rl_turn_end *e, const int32_t *out, int n) {
    if (e->n_ids > 0) return out[n - 1] == e->ids[e->n_ids - 1];
    size_t tl = strlen(e->text), have = 0;
    char tail[16];
    /* decode backwards until the tail is at least as long as the text */
    for (int i = n - 1; i >= 0 && have < tl; i--) {
        const uint8_t *bytes;
        size_t len;
        if (cllm_tokenizer_token_bytes(tok, (uint32_t)out[i], &bytes, &len, NULL) != CLLM_OK) return 0;
        if (have + len > sizeof tail) return 0;
        memmove(tail + len, tail, have);
        memcpy(tail, bytes, len);
        have += len;
    }
    return have >= tl && memcmp(tail + have - tl, e->text, tl) == 0;
}

float rl_head_at(const cllm_rl_model *rm, int T, int row, int t) {
    const int C = cllm_model_get_config(rm->model)->n_embd;
    const float *h = cllm_model_hidden(rm->model) + ((size_t)row * T + (size_t)t) * C;
    float r;
    cllm_scalar_head_forward(&r, h, rm->head_w, rm->head_w + C, 1, C);
    return r;
}

cllm_status rl_reward_scores(cllm_rl_model *rm, const cllm_rl_batch *b, float *r, cllm_error *err) {
    cllm_status st = cllm_model_forward(rm->model, b->tokens, NULL, b->B, b->T, NULL, err);
    if (st) return st;
    for (int i = 0; i < b->B; i++) r[i] = rl_head_at(rm, b->T, i, b->last[i]);
    return CLLM_OK;
}

/* ---- load / save ----------------------------------------------------------- */

static cllm_status read_head(const cllm_gguf *g, int C, cllm_rl_model *rm, int *found, cllm_error *err) {
    const cllm_gguf_tensor *w = cllm_gguf_find_tensor(g, CLLM_REWARD_HEAD_W);
    const cllm_gguf_tensor *b = cllm_gguf_find_tensor(g, CLLM_REWARD_HEAD_B);
    *found = 0;
    if (!w && !b) return CLLM_OK;
    if (!w || !b || w->type != 0 /* f32 */ || b->type != 0 || w->n_elements != C || b->n_elements != 1)
        return cllm_error_set(err, CLLM_ERR_FORMAT,
                              "%s: reward head must be f32 %s [%d] and %s [1]", cllm_gguf_path(g),
                              CLLM_REWARD_HEAD_W, C, CLLM_REWARD_HEAD_B);
    memcpy(rm->head_w, w->data, (size_t)C * sizeof(float));
    memcpy(rm->head_w + C, b->data, sizeof(float));
    for (int i = 0; i < C; i++)
        if (!isfinite(rm->head_w[i]))
            return cllm_error_set(err, CLLM_ERR_NUMERIC, "%s: %s[%d] is not finite", cllm_gguf_path(g),
                                  CLLM_REWARD_HEAD_W, i);
    *found = 1;
    return CLLM_OK;
}

cllm_status cllm_rl_model_load(const char *path, const cllm_model_options *opts, int want_head,
                               cllm_rl_model *out, cllm_error *err) {
    memset(out, 0, sizeof *out);
    cllm_model_file_params fp = cllm_model_file_default_params();
    if (opts) fp.opts = *opts;
    cllm_model_file f;
    cllm_status st = cllm_model_file_open(path, &fp, &f, err);
    if (st) return st;
    out->model = f.model;
    out->tok = f.tok;
    out->tmpl = f.chat_template; /* owned from here */
    f.chat_template = cllm_chat_template_builtin(CLLM_CHAT_TEMPLATE_PLAIN);
    f.model = NULL;
    f.tok = NULL;
    const int C = f.config.n_embd;
    if (want_head) {
        int found = 0;
        out->head_w = calloc((size_t)C + 1, sizeof(float));
        if (!out->head_w) st = cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory for the scalar head", path);
        if (st == CLLM_OK) st = read_head(f.gguf, C, out, &found, err);
        if (st == CLLM_OK && !found && want_head == 2)
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: not a reward model (no %s tensor; train one with `cllm reward`)",
                                path, CLLM_REWARD_HEAD_W);
    }
    cllm_model_file_close(&f);
    if (st) cllm_rl_model_free(out);
    return st;
}

void cllm_rl_model_free(cllm_rl_model *rm) {
    if (!rm) return;
    cllm_model_destroy(rm->model);
    cllm_tokenizer_destroy(rm->tok);
    cllm_chat_template_free(&rm->tmpl);
    free(rm->head_w);
    memset(rm, 0, sizeof *rm);
}

static cllm_status save_extra(cllm_gguf_writer *w, void *ctx, cllm_error *err) {
    const cllm_rl_model *rm = ctx;
    cllm_status st = cllm_tokenizer_gguf_set(rm->tok, w, rm->tmpl.text, err);
    if (st || !rm->head_w) return st;
    int64_t C = cllm_model_get_config(rm->model)->n_embd, one = 1;
    if ((st = cllm_gguf_add_tensor(w, CLLM_REWARD_HEAD_W, 0, 1, &C, rm->head_w, (size_t)C * sizeof(float), err)))
        return st;
    return cllm_gguf_add_tensor(w, CLLM_REWARD_HEAD_B, 0, 1, &one, rm->head_w + C, sizeof(float), err);
}

static cllm_status model_save(const cllm_rl_model *rm, const char *path, cllm_model_save_params sp, cllm_error *err) {
    sp.extra = save_extra;
    sp.extra_ctx = (void *)rm;
    return cllm_model_save_gguf(rm->model, path, &sp, err);
}

cllm_status cllm_rl_model_save(const cllm_rl_model *rm, const char *path, cllm_error *err) {
    return model_save(rm, path, cllm_model_save_default_params(), err);
}

cllm_status rl_model_save(const th_run *h, const cllm_rl_model *rm, const char *path, cllm_error *err) {
    return model_save(rm, path, th_save_params(h), err);
}
