/*
 * sft.c: supervised fine-tuning (sft.h): rows of examples, the masked
 * next-token loss, full or LoRA training, validation, checkpoints, CSV and
 * the loss plot.
 *
 * The data is a stream of rows: each epoch shuffles the examples with a
 * permutation drawn from (seed, epoch), lays them into rows
 * (cllm_sft_fill_rows: one per row, or packed), and an optimizer step takes
 * the next accum x B rows of the stream, crossing into the next epoch when
 * one runs out. The stream position (epoch, row) is the checkpointed data
 * state. The step's loss is the mean over all its assistant tokens
 * (dloss_scale = 1 / their count), as TRL computes it.
 *
 * Reuses: checkpoint.h (files, lock, prune), optim.h (AdamW, schedules,
 * clipping scale), plot.h, progress.h, model/gguf_io.h. Does not: tokenize
 * (chat_data.c) or implement LoRA (src/model/lora.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cllm/core/hash.h"
#include "cllm/train/checkpoint.h"
#include "cllm/core/fileio.h"
#include "cllm/formats/gguf.h"
#include "cllm/kernels/kernels.h"
#include "cllm/load/model_file.h"
#include "cllm/model/gguf_io.h"
#include "cllm/model/lora.h"
#include "cllm/model/mapped.h"
#include "cllm/core/plot.h"
#include "cllm/core/progress.h"
#include "cllm/core/rng.h"
#include "cllm/train/sft.h"
#include "harness.h"


cllm_sft_params cllm_sft_default_params(void) {
    cllm_sft_params p;
    memset(&p, 0, sizeof p);
    p.B = 8;
    p.T = 256;
    p.accum = 1;
    p.epochs = 1;
    p.schedule = CLLM_SCHEDULE_COSINE;
    p.lr = 2e-5f;
    p.min_lr = 0;
    p.beta1 = 0.9f;
    p.beta2 = 0.999f;
    p.eps = 1e-8f;
    p.clip = 1.0f;
    p.lora = cllm_lora_default_config();
    p.lora.rank = 0;
    p.seed = 1337;
    p.keep = 1;
    p.max_nonfinite = 5;
    return p;
}

cllm_status cllm_sft_validate(const cllm_sft_params *p, cllm_error *err) {
#define BAD(...) return cllm_error_set(err, CLLM_ERR_ARG, __VA_ARGS__)
    if (!p->model_path) BAD("sft: no base model (--model)");
    if (!p->data_path) BAD("sft: no training data (--data)");
    if (!p->run_dir) BAD("sft: no run directory (--out)");
    if (p->B < 1 || p->B > 4096) BAD("sft: B = %d must be in [1, 4096]", p->B);
    if (p->T < 2) BAD("sft: T = %d must be at least 2", p->T);
    if (p->accum < 1) BAD("sft: accum = %d must be >= 1", p->accum);
    if (p->steps < 0 || (p->steps == 0 && p->epochs < 1)) BAD("sft: need steps > 0 or epochs >= 1");
    if (!(p->lr > 0) || !isfinite(p->lr)) BAD("sft: lr = %g must be positive", (double)p->lr);
    if (p->min_lr < 0 || p->min_lr > p->lr) BAD("sft: min_lr = %g must be in [0, lr]", (double)p->min_lr);
    if (p->warmup < 0) BAD("sft: warmup must be >= 0");
    if (p->weight_decay < 0) BAD("sft: weight decay must be >= 0");
    if (!(p->beta1 >= 0 && p->beta1 < 1 && p->beta2 >= 0 && p->beta2 < 1)) BAD("sft: betas must be in [0, 1)");
    if (!(p->eps > 0)) BAD("sft: eps must be positive");
    if (p->clip < 0) BAD("sft: clip must be >= 0");
    if (p->lora.rank < 0 || p->lora.rank > CLLM_LORA_MAX_RANK) BAD("sft: LoRA rank %d out of range", p->lora.rank);
    if (p->lora.rank > 0 && !(p->lora.alpha > 0)) BAD("sft: LoRA alpha must be positive");
    if (p->lora.rank > 0 && !p->lora.targets) BAD("sft: LoRA needs at least one target");
    if (p->keep < 1) BAD("sft: keep must be >= 1");
    if (p->max_nonfinite < 1) BAD("sft: max_nonfinite must be >= 1");
    if (p->eval_every < 0 || p->save_every < 0) BAD("sft: eval_every and save_every must be >= 0");
#undef BAD
    return CLLM_OK;
}

/* ---- rows ------------------------------------------------------------------------ */

static void put_example(const cllm_sft_example *e, int32_t *tok, int32_t *tgt, int32_t *seg, int id) {
    for (size_t i = 0; i < e->n; i++) {
        tok[i] = e->ids[i];
        tgt[i] = i + 1 < e->n && e->mask[i + 1] ? e->ids[i + 1] : -1;
        if (seg) seg[i] = id;
    }
}

int cllm_sft_fill_rows(const cllm_sft_example *ex, const size_t *order, size_t n, int T, int pack, int max_rows,
                       int32_t *tokens, int32_t *targets, int32_t *seg, size_t *used) {
    int rows = 0, t = 0, in_row = 0;
    size_t k = 0;
    for (; k < n; k++) {
        const cllm_sft_example *e = &ex[order ? order[k] : k];
        if (e->n == 0 || e->n > (size_t)T) continue; /* callers guarantee 1 <= n <= T */
        if (!pack || t + (int)e->n > T || rows == 0) {
            if (rows == max_rows) break;
            rows++;
            t = 0;
            in_row = 0;
            size_t base = (size_t)(rows - 1) * T;
            for (int i = 0; i < T; i++) {
                tokens[base + i] = 0;
                targets[base + i] = -1;
                if (seg) seg[base + i] = -1;
            }
        }
        size_t base = (size_t)(rows - 1) * T + (size_t)t;
        put_example(e, tokens + base, targets + base, seg ? seg + base : NULL, in_row++);
        t += (int)e->n;
    }
    if (used) *used = k;
    return rows;
}

typedef struct {
    int32_t *tok, *tgt, *seg; /* [n_rows * T] */
    int n_rows, cap_rows;
} row_set;

static void rows_free(row_set *r) {
    free(r->tok);
    free(r->tgt);
    free(r->seg);
    memset(r, 0, sizeof *r);
}

/* All rows of one epoch: examples in the permutation of (seed, epoch), or in
 * file order when epoch < 0. */
static cllm_status build_rows(const cllm_sft_dataset *ds, int T, int pack, uint64_t seed, int64_t epoch,
                              row_set *r, cllm_error *err) {
    size_t n = ds->n;
    size_t *order = malloc(n * sizeof *order);
    if (!order) return cllm_error_set(err, CLLM_ERR_NOMEM, "sft: out of memory");
    for (size_t i = 0; i < n; i++) order[i] = i;
    if (epoch >= 0) {
        cllm_rng rng;
        cllm_rng_seed(&rng, seed ^ (0xA24BAED4963EE407ull * (uint64_t)(epoch + 1)));
        for (size_t i = n; i > 1; i--) {
            size_t j = (size_t)cllm_rng_below(&rng, i);
            size_t tmp = order[i - 1];
            order[i - 1] = order[j];
            order[j] = tmp;
        }
    }
    if (r->cap_rows < (int)n) {
        rows_free(r);
        r->tok = malloc(n * (size_t)T * sizeof *r->tok);
        r->tgt = malloc(n * (size_t)T * sizeof *r->tgt);
        r->seg = malloc(n * (size_t)T * sizeof *r->seg);
        if (!r->tok || !r->tgt || !r->seg) {
            free(order);
            rows_free(r);
            return cllm_error_set(err, CLLM_ERR_NOMEM, "sft: out of memory for %zu rows of %d tokens", n, T);
        }
        r->cap_rows = (int)n;
    }
    r->n_rows = cllm_sft_fill_rows(ds->ex, order, n, T, pack, (int)n, r->tok, r->tgt, r->seg, NULL);
    free(order);
    return CLLM_OK;
}

static int64_t count_targets(const int32_t *tgt, size_t n) {
    int64_t c = 0;
    for (size_t i = 0; i < n; i++) c += tgt[i] >= 0;
    return c;
}

/* ---- the run ------------------------------------------------------------------------ */

typedef struct {
    const cllm_sft_params *p;      /* with T capped at the model's context */
    cllm_model *model;
    cllm_tokenizer *tok;
    cllm_chat_template chat_template; /* owned */
    int lora;
    int qlora;                     /* LoRA on a quantized base kept in its types (mapped) */
    const cllm_sft_dataset *train;
    row_set rows;                  /* current epoch */
    row_set vrows;                 /* validation rows (file order) */
    int64_t epoch, row;            /* stream position */
    int32_t *btok, *btgt, *bseg;   /* [B * T] an evaluation batch */
    int32_t *stok, *stgt, *sseg;   /* [accum * B * T] the step's rows */
    double loss_tokens;            /* assistant tokens trained on in this process */
    th_run h;
} sft_ctx;

static cllm_status add_keys(cllm_gguf_writer *w, void *ctx, cllm_error *err) {
    sft_ctx *c = ctx;
    cllm_status st = cllm_gguf_set_u64(w, "cllm.tokenizer_hash", cllm_tokenizer_hash(c->tok), err);
    if (st == CLLM_OK)
        st = cllm_tokenizer_gguf_set(c->tok, w, c->chat_template.text, err);
    return st;
}

static cllm_status write_weights(const char *path, void *ctx, cllm_error *err) {
    sft_ctx *c = ctx;
    if (c->lora) return cllm_model_lora_save_gguf(c->model, path, err);
    cllm_model_save_params sp = th_save_params(&c->h);
    sp.extra = add_keys;
    sp.extra_ctx = c;
    return cllm_model_save_gguf(c->model, path, &sp, err);
}

/* Resume: weights (full) or adapter values (LoRA, into the attached adapters). */
static cllm_status read_weights(const char *path, void *ctx, cllm_error *err) {
    sft_ctx *c = ctx;
    cllm_gguf *g = NULL;
    cllm_status st = cllm_gguf_open(&g, path, err);
    if (st != CLLM_OK) return st;
    if (!c->lora) {
        st = cllm_model_read_gguf(c->model, g, 1, err);
    } else {
        for (int i = 0; st == CLLM_OK && i < cllm_model_lora_num_tensors(c->model); i++) {
            const cllm_tensor *t = cllm_model_lora_tensor(c->model, i);
            const cllm_gguf_tensor *x = cllm_gguf_find_tensor(g, t->name);
            if (!x || x->type != CLLM_GGML_F32 || (size_t)x->n_elements != t->numel)
                st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: adapter tensor %s missing or of another shape/type", path,
                                    t->name);
            else
                memcpy(t->data, x->data, t->numel * sizeof(float));
        }
    }
    cllm_gguf_close(g);
    return st;
}

static void ctx_free(sft_ctx *c) {
    cllm_model_destroy(c->model);
    cllm_tokenizer_destroy(c->tok);
    cllm_chat_template_free(&c->chat_template);
    rows_free(&c->rows);
    rows_free(&c->vrows);
    free(c->btok);
    free(c->btgt);
    free(c->bseg);
    free(c->stok);
    free(c->stgt);
    free(c->sseg);
    th_free(&c->h);
}

/* Copies the next B rows of the stream into dst (advancing epochs as needed). */
static cllm_status next_rows(sft_ctx *c, int32_t *tok, int32_t *tgt, int32_t *seg, cllm_error *err) {
    const int T = c->p->T;
    for (int b = 0; b < c->p->B; b++) {
        while (c->row >= c->rows.n_rows) {
            c->epoch++;
            c->row = 0;
            cllm_status st = build_rows(c->train, T, c->p->pack, c->p->seed, c->epoch, &c->rows, err);
            if (st != CLLM_OK) return st;
        }
        size_t src = (size_t)c->row * T, dst = (size_t)b * T;
        memcpy(tok + dst, c->rows.tok + src, (size_t)T * sizeof *tok);
        memcpy(tgt + dst, c->rows.tgt + src, (size_t)T * sizeof *tgt);
        memcpy(seg + dst, c->rows.seg + src, (size_t)T * sizeof *seg);
        c->row++;
    }
    return CLLM_OK;
}

/* hooks.evaluate: token-weighted mean loss over every validation row. */
static cllm_status evaluate_hook(void *ctx, double *out, cllm_error *err) {
    sft_ctx *c = ctx;
    const row_set *val = &c->vrows;
    const int B = c->p->B, T = c->p->T;
    double sum = 0;
    int64_t count = 0;
    int32_t *tok = c->btok, *tgt = c->btgt, *seg = c->bseg;
    cllm_model_set_train_mode(c->model, 0);
    for (int r0 = 0; r0 < val->n_rows; r0 += B) {
        int nb = val->n_rows - r0 < B ? val->n_rows - r0 : B;
        size_t off = (size_t)r0 * T, len = (size_t)nb * T;
        memcpy(tok, val->tok + off, len * sizeof *tok);
        memcpy(tgt, val->tgt + off, len * sizeof *tgt);
        memcpy(seg, val->seg + off, len * sizeof *seg);
        float loss = 0;
        cllm_status st = c->p->pack ? cllm_model_forward_packed(c->model, tok, tgt, seg, nb, T, &loss, err)
                                    : cllm_model_forward(c->model, tok, tgt, nb, T, &loss, err);
        if (st != CLLM_OK) return st;
        int64_t k = cllm_model_num_targets(c->model);
        sum += (double)loss * (double)k;
        count += k;
    }
    *out = count ? sum / (double)count : NAN;
    return CLLM_OK;
}

/* FNV-1a over whole ids and mask bytes (one value per step, hash.h), from
 * the offset basis this file has always used (FNV's with a digit lost): the
 * fingerprint is stored in checkpoints, so it keeps its values. */
static uint64_t data_fingerprint(const cllm_sft_dataset *ds) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < ds->n; i++)
        for (size_t j = 0; j < ds->ex[i].n; j++) {
            h = cllm_fnv1a64_mix(h, (uint32_t)ds->ex[i].ids[j]);
            h = cllm_fnv1a64_mix(h, ds->ex[i].mask[j]);
        }
    return h;
}

/* Config, tokenizer and chat template of the base (model_file.h); the
 * weights are read once the batch shape is known (build_model). */
static cllm_status load_base(sft_ctx *c, cllm_model_file *f, cllm_error *err) {
    cllm_model_file_params fp = cllm_model_file_default_params();
    fp.load_model = 0;
    fp.chat_template = c->p->chat_template;
    cllm_status st = cllm_model_file_open(c->p->model_path, &fp, f, err);
    if (st != CLLM_OK) return st;
    c->tok = f->tok;
    f->tok = NULL;
    c->chat_template = f->chat_template;
    f->chat_template = cllm_chat_template_builtin(CLLM_CHAT_TEMPLATE_PLAIN);
    return CLLM_OK;
}

/* hooks.step: the next accum x B rows, loss = mean over their assistant tokens. */
static cllm_status step_hook(void *ctx, int64_t step, double *loss, double *tokens, cllm_error *err) {
    (void)step;
    sft_ctx *c = ctx;
    const cllm_sft_params *p = c->p;
    const size_t bt = (size_t)p->B * p->T;
    cllm_status st = CLLM_OK;
    for (int a = 0; a < p->accum && st == CLLM_OK; a++)
        st = next_rows(c, c->stok + a * bt, c->stgt + a * bt, c->sseg + a * bt, err);
    if (st != CLLM_OK) return st;
    const int64_t n_tgt = count_targets(c->stgt, (size_t)p->accum * bt);
    if (c->lora) cllm_model_lora_zero_grad(c->model);
    else cllm_model_zero_grad(c->model);
    cllm_model_set_train_mode(c->model, 1);
    double loss_sum = 0;
    int mine = 0;
    for (int a = 0; a < p->accum && st == CLLM_OK; a++) {
        const size_t off = a * bt;
        if (!th_unit(&c->h, a, p->accum)) { /* another rank's micro-batch */
            if (count_targets(c->stgt + off, bt) != 0) cllm_model_skip_dropout(c->model);
            continue;
        }
        mine++;
        if (count_targets(c->stgt + off, bt) == 0) continue;
        float l = 0;
        st = p->pack ? cllm_model_forward_packed(c->model, c->stok + off, c->stgt + off, c->sseg + off, p->B, p->T, &l, err)
                     : cllm_model_forward(c->model, c->stok + off, c->stgt + off, p->B, p->T, &l, err);
        if (st == CLLM_OK) {
            loss_sum += (double)l * (double)cllm_model_num_targets(c->model);
            st = cllm_model_backward(c->model, 1.0f / (float)n_tgt, err);
        }
    }
    *loss = n_tgt ? loss_sum / (double)n_tgt : NAN;
    *tokens = (double)mine * (double)bt;
    c->loss_tokens += (double)n_tgt;
    return st;
}

static void snapshot_hook(void *ctx, cllm_train_state *s) {
    sft_ctx *c = ctx;
    s->loader.epoch = (uint64_t)c->epoch;
    s->loader.position = (uint64_t)c->row;
}

/* Every setting that changes the result, compared on resume. */
static void config_text(const sft_ctx *c, int64_t steps, char *out, size_t cap) {
    const cllm_sft_params *p = c->p;
    char targets[64] = "";
    cllm_lora_targets_format(p->lora.targets, targets, sizeof targets);
    snprintf(out, cap,
             "kind=sft\nB=%d\nT=%d\naccum=%d\npack=%d\nsteps=%" PRId64 "\nlr=%a\nmin_lr=%a\nwarmup=%" PRId64
             "\nschedule=%d\nwd=%a\nbeta1=%a\nbeta2=%a\neps=%a\nclip=%a\nlora_rank=%d\nlora_alpha=%a\nlora_targets=%s\n"
             "seed=%" PRIu64 "\ntemplate=%d\n",
             p->B, p->T, p->accum, p->pack, steps, (double)p->lr, (double)p->min_lr, p->warmup, (int)p->schedule,
             (double)p->weight_decay, (double)p->beta1, (double)p->beta2, (double)p->eps, (double)p->clip,
             p->lora.rank, (double)p->lora.alpha, c->lora ? targets : "", p->seed, (int)c->chat_template.kind);
}

/* Training and validation examples, tokenized with the model's template. */
static cllm_status load_data(sft_ctx *c, cllm_sft_dataset *train, cllm_sft_dataset *val, cllm_sft_result *res,
                             cllm_error *err) {
    const cllm_sft_params *p = c->p;
    cllm_chat_data_params dp = cllm_chat_data_default_params(c->tok);
    dp.chat_template = c->chat_template;
    dp.max_tokens = (size_t)p->T;
    dp.truncate = p->truncate;
    cllm_status st = cllm_chat_data_load(p->data_path, c->tok, &dp, train, err);
    if (st == CLLM_OK && p->val_path) st = cllm_chat_data_load(p->val_path, c->tok, &dp, val, err);
    if (st != CLLM_OK) return st;
    res->n_examples = train->n;
    res->n_val_examples = val->n;
    res->n_truncated = train->n_truncated + val->n_truncated;
    res->n_dropped = train->n_dropped + val->n_dropped;
    if (res->n_truncated || res->n_dropped)
        th_log(&c->h, "truncated %" PRId64 " examples to %d tokens; dropped %" PRId64 " left without assistant tokens",
               res->n_truncated, p->T, res->n_dropped);
    return CLLM_OK;
}

/* The model from the base file (frozen under LoRA, adapters attached), its
 * optimizer and the batch buffers. */
static cllm_status build_model(sft_ctx *c, const cllm_model_config *cfg, const cllm_gguf *g, cllm_sft_result *res,
                               cllm_error *err) {
    const cllm_sft_params *p = c->p;
    cllm_model_options mo = cllm_model_default_options();
    mo.max_batch = p->B;
    mo.max_seq = p->T;
    mo.training = 1;
    mo.freeze_base = c->lora;
    cllm_status st;
    if (c->lora && cllm_lora_base_is_quantized(g)) {
        /* QLoRA: the base's matrices stay in their ggml types, mapped from a
         * second open of the file (the model owns it; the first closes after this) */
        cllm_gguf *mg = NULL;
        st = cllm_gguf_open(&mg, p->model_path, err);
        if (st == CLLM_OK) st = cllm_model_from_gguf_mapped(mg, &mo, &c->model, err);
        c->qlora = st == CLLM_OK;
        if (st == CLLM_OK) th_log(&c->h, "sft: QLoRA: the quantized base stays in its own types (frozen, mapped)");
    } else {
        st = cllm_model_create(cfg, &mo, &c->model, err);
        if (st == CLLM_OK) st = cllm_model_read_gguf(c->model, g, 1, err);
    }
    if (st == CLLM_OK && c->lora) st = cllm_model_lora_attach(c->model, &p->lora, p->seed, err);
    cllm_adamw_params hp = cllm_adamw_default_params();
    hp.beta1 = p->beta1;
    hp.beta2 = p->beta2;
    hp.eps = p->eps;
    hp.weight_decay = p->weight_decay;
    if (st == CLLM_OK) st = th_optim_init_model(&c->h.opt, c->model, c->lora, &hp, p->clip, err);
    if (st != CLLM_OK) return st;
    res->total_params = cllm_model_num_params(c->model);
    res->trainable_params = 0;
    for (int i = 0; i < c->h.opt.n_tensors; i++) {
        const cllm_tensor *t = c->h.opt.tensor(c->model, i);
        res->trainable_params += t->trainable ? t->numel : 0;
    }
    res->grad_bytes = c->h.opt.n * sizeof(float);
    res->optimizer_bytes = 2 * c->h.opt.n * sizeof(float);
    const size_t bt = (size_t)p->B * p->T, st_rows = (size_t)p->accum * bt;
    c->btok = malloc(bt * sizeof(int32_t));
    c->btgt = malloc(bt * sizeof(int32_t));
    c->bseg = malloc(bt * sizeof(int32_t));
    c->stok = malloc(st_rows * sizeof(int32_t));
    c->stgt = malloc(st_rows * sizeof(int32_t));
    c->sseg = malloc(st_rows * sizeof(int32_t));
    if (!c->btok || !c->btgt || !c->bseg || !c->stok || !c->stgt || !c->sseg)
        return cllm_error_set(err, CLLM_ERR_NOMEM, "sft: out of memory for batches of %d x %d tokens", p->B, p->T);
    return CLLM_OK;
}

static void harness_settings(sft_ctx *c, int64_t steps) {
    const cllm_sft_params *p = c->p;
    th_run *h = &c->h;
    h->steps = steps;
    h->save_every = p->save_every;
    h->eval_every = p->eval_every;
    h->sched = (cllm_schedule){p->schedule, p->lr, p->min_lr, p->warmup, steps, 0.2f};
    h->weights_ext = "gguf";
    h->write_weights = write_weights;
    h->read_weights = read_weights;
    h->weights_ctx = c;
    h->progress = p->progress;
    h->data_parallel = 1;
}

cllm_status cllm_sft_run(const cllm_sft_params *pp, cllm_sft_result *res, cllm_error *err) {
    const double t_start = cllm_now_seconds();
    memset(res, 0, sizeof *res);
    res->first_train_loss = res->last_train_loss = res->last_val_loss = NAN;
    cllm_status st = cllm_sft_validate(pp, err);
    if (st != CLLM_OK) return st;
    cllm_sft_params P = *pp;
    sft_ctx c;
    memset(&c, 0, sizeof c);
    c.p = &P;
    c.lora = P.lora.rank > 0;
    th_init(&c.h);
    c.h.name = "sft";
    c.h.run_dir = P.run_dir;
    th_describe(&c.h, "answering as the assistant in chats", P.data_path, P.model_path);
    c.h.resume = P.resume;
    c.h.keep = P.keep;
    c.h.precision = P.precision;
    c.h.precision_change = P.precision_change;
    c.h.max_nonfinite = P.max_nonfinite;
    c.h.stop_flag = P.stop_flag;
    c.h.log = P.log;
    c.h.log_ctx = P.log_ctx;
    cllm_sft_dataset train, val;
    memset(&train, 0, sizeof train);
    memset(&val, 0, sizeof val);
    c.train = &train;
    cllm_model_file base;
    memset(&base, 0, sizeof base);

    /* an existing run directory is locked before anything is read */
    st = th_lock_existing(&c.h, err);
    if (st != CLLM_OK) goto done;
    cllm_kernels_set_threads(P.threads);
    st = load_base(&c, &base, err);
    if (st != CLLM_OK) goto done;
    if (P.T > base.config.context_length) P.T = base.config.context_length;
    if (!c.lora && cllm_lora_base_is_quantized(base.gguf)) {
        st = cllm_error_set(err, CLLM_ERR_ARG,
                            "sft: %s has quantized weight matrices; full fine-tuning needs f32/f16/bf16 weights: "
                            "add --lora-rank R to train adapters on the quantized base (QLoRA), or dequantize first "
                            "with `cllm quantize %s BASE-f32.gguf f32`",
                            P.model_path, P.model_path);
        goto done;
    }
    st = load_data(&c, &train, &val, res, err);
    if (st == CLLM_OK) st = th_open(&c.h, err);
    if (st == CLLM_OK) st = build_model(&c, &base.config, base.gguf, res, err);
    if (st == CLLM_OK) st = build_rows(&train, P.T, P.pack, P.seed, 0, &c.rows, err);
    if (st == CLLM_OK && val.n) st = build_rows(&val, P.T, P.pack, P.seed, -1, &c.vrows, err);
    if (st != CLLM_OK) goto done;
    cllm_model_file_close(&base);
    res->rows_per_epoch = (size_t)c.rows.n_rows;
    const int64_t rows_per_step = (int64_t)P.B * P.accum;
    const int64_t steps = P.steps > 0 ? P.steps : ((int64_t)c.rows.n_rows * P.epochs + rows_per_step - 1) / rows_per_step;
    harness_settings(&c, steps);

    char config[CLLM_CKPT_CONFIG_MAX];
    config_text(&c, steps, config, sizeof config);
    st = th_begin(&c.h, config, data_fingerprint(&train), cllm_tokenizer_hash(c.tok), 0, err);
    if (st == CLLM_OK && c.h.resumed) {
        c.epoch = (int64_t)c.h.state.loader.epoch;
        c.row = (int64_t)c.h.state.loader.position;
        st = build_rows(&train, P.T, P.pack, P.seed, c.epoch, &c.rows, err);
    }
    if (st != CLLM_OK) goto done;
    res->start_step = c.h.state.step;
    th_log(&c.h, "sft: %zu examples (%" PRIu64 " tokens, %" PRIu64 " assistant), %d rows of %d per epoch%s; %" PRId64
           " steps of %d x %d rows; %s: %zu trainable of %zu parameters; grads %.2f MB, AdamW %.2f MB",
           train.n, train.n_tokens, train.n_loss_tokens, c.rows.n_rows, P.T, P.pack ? " (packed)" : "", steps, P.accum,
           P.B, c.qlora ? "QLoRA" : c.lora ? "LoRA" : "full fine-tuning", res->trainable_params, res->total_params, res->grad_bytes / 1e6,
           res->optimizer_bytes / 1e6);
    if (!P.pack && c.rows.n_rows > 0)
        th_log(&c.h, "sft: unpacked, real tokens fill %.1f%% of each row (the rest is padding; packing fills them)",
               100.0 * (double)train.n_tokens / ((double)c.rows.n_rows * P.T));

    const th_hooks hooks = {step_hook, val.n ? evaluate_hook : NULL, snapshot_hook, NULL, 0};
    res->startup_seconds = cllm_now_seconds() - t_start;
    st = th_loop(&c.h, &hooks, &c, err);
    res->first_train_loss = c.h.first_loss;
    res->last_train_loss = c.h.last_loss;
    res->last_val_loss = c.h.last_val;
    res->step_seconds = c.h.step_seconds;
    res->step_seconds_median = th_median_step_seconds(&c.h);
    res->eval_seconds = c.h.eval_seconds;
    if (st != CLLM_OK) goto done;
    snprintf(res->reason_text, sizeof res->reason_text, "%s", c.h.reason_text);
    res->steps_done = c.h.state.step;
    res->nonfinite_skipped = c.h.state.nonfinite_total;
    res->seconds = c.h.seconds;
    res->tokens_per_s = res->step_seconds > 0 ? c.h.tokens_this_run / res->step_seconds : 0;
    res->loss_tokens_per_s = res->step_seconds > 0 ? c.loss_tokens / res->step_seconds : 0;
    st = th_finish(&c.h, c.lora ? "adapter.gguf" : "model.gguf", c.qlora ? "SFT loss (QLoRA)" : c.lora ? "SFT loss (LoRA)" : "SFT loss",
                   "cross-entropy on assistant tokens (nats)", val.n > 0, res->output_path, sizeof res->output_path, err);
    res->save_seconds = c.h.save_seconds;
    cllm_train_summary *sm = &res->summary;
    th_summarize(&c.h, res->output_path, sm);
    const struct { const char *name; double v; } extra[] = {
        {"examples", (double)res->n_examples}, {"val_examples", (double)res->n_val_examples},
        {"truncated", (double)res->n_truncated}, {"dropped", (double)res->n_dropped},
        {"rows_per_epoch", (double)res->rows_per_epoch}, {"trainable_params", (double)res->trainable_params},
        {"total_params", (double)res->total_params}, {"grad_bytes", (double)res->grad_bytes},
        {"optimizer_bytes", (double)res->optimizer_bytes}, {"step_tokens_per_s", res->tokens_per_s},
        {"assistant_tokens_per_s", res->loss_tokens_per_s}, {"ms_per_step_median", 1e3 * res->step_seconds_median},
        {"startup_seconds", res->startup_seconds}, {"step_seconds", res->step_seconds},
        {"eval_seconds", res->eval_seconds}, {"save_seconds", res->save_seconds}};
    for (size_t k = 0; k < sizeof extra / sizeof extra[0]; k++) cllm_train_summary_add(sm, extra[k].name, extra[k].v);
done:
    cllm_model_file_close(&base);
    cllm_sft_dataset_free(&train);
    cllm_sft_dataset_free(&val);
    ctx_free(&c);
    return st;
}
