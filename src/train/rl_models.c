/*
 * rl_models.c: what every preference-tuning run shares: loading a model
 * together with its tokenizer, chat template and optional scalar head
 * (cls.weight / cls.bias) from GGUF and saving it back atomically; AdamW
 * over a model or a head; scoring completions with a reward model; logging.
 *
 * Does not: hold any method's loop (reward.c, dpo.c, ppo.c, grpo.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/gguf.h"
#include "cllm/model_file.h"
#include "cllm/model_io.h"
#include "harness.h"
#include "rl_internal.h"

cllm_status rl_adam_init(rl_adam *a, size_t n, cllm_error *err) {
    memset(a, 0, sizeof *a);
    a->m = calloc(n ? n : 1, sizeof(float));
    a->v = calloc(n ? n : 1, sizeof(float));
    a->n = n;
    if (!a->m || !a->v) {
        rl_adam_free(a);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "optimizer: out of memory for %zu moments", n);
    }
    return CLLM_OK;
}

void rl_adam_free(rl_adam *a) {
    if (!a) return;
    free(a->m);
    free(a->v);
    memset(a, 0, sizeof *a);
}

double rl_adam_step_model(rl_adam *a, cllm_model *m, float lr, float wd, float clip) {
    float *params = cllm_model_params(m), *grads = cllm_model_grads(m);
    double norm = cllm_grad_norm(grads, cllm_model_num_params(m));
    if (!isfinite(norm)) return NAN;
    cllm_adamw_params hp = cllm_adamw_default_params();
    hp.lr = lr;
    hp.weight_decay = wd;
    hp.grad_scale = clip > 0 ? cllm_grad_clip_scale(norm, clip) : 1.0f;
    a->step++;
    for (int i = 0; i < cllm_model_num_tensors(m); i++) {
        const cllm_tensor *t = cllm_model_tensor(m, i);
        if (!t->trainable) continue;
        cllm_adamw_update(params + t->offset, grads + t->offset, a->m + t->offset, a->v + t->offset, t->numel,
                          &hp, a->step, t->decay);
    }
    return norm;
}

void rl_adam_step_flat(rl_adam *a, float *p, const float *g, float lr, float clip) {
    double norm = cllm_grad_norm(g, a->n);
    if (!isfinite(norm)) return;
    cllm_adamw_params hp = cllm_adamw_default_params();
    hp.lr = lr;
    hp.weight_decay = 0;
    hp.grad_scale = clip > 0 ? cllm_grad_clip_scale(norm, clip) : 1.0f;
    a->step++;
    cllm_adamw_update(p, g, a->m, a->v, a->n, &hp, a->step, 0);
}

void rl_log(const cllm_rl_params *p, const char *fmt, ...) {
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
        c->pos = 0;
    }
    return c->idx[c->pos++];
}

void rl_turn_end_init(rl_turn_end *e, const cllm_tokenizer *tok, cllm_chat_template tmpl) {
    memset(e, 0, sizeof *e);
    e->n_ids = cllm_chat_end_tokens(tok, tmpl, e->ids);
    /* chat.h: PLAIN without an end-of-text special ends an assistant turn with "\n\n" */
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
    cllm_scalar_head_forward(&r, h, rm->head_w, &rm->head_b, 1, C);
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
    memcpy(&rm->head_b, b->data, sizeof(float));
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
        out->head_w = calloc((size_t)C, sizeof(float));
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
    return cllm_gguf_add_tensor(w, CLLM_REWARD_HEAD_B, 0, 1, &one, &rm->head_b, sizeof(float), err);
}

cllm_status cllm_rl_model_save(const cllm_rl_model *rm, const char *path, cllm_error *err) {
    cllm_model_save_params sp = cllm_model_save_default_params();
    sp.extra = save_extra;
    sp.extra_ctx = (void *)rm;
    return cllm_model_save_gguf(rm->model, path, &sp, err);
}
