/*
 * pretrain.c: the pre-training step loop of train/pretrain.h.
 *
 * Order of one optimizer step (also the order resume must reproduce):
 *   lr = schedule(step); zero grads; for each of accum micro-batches: next
 *   batch (loader RNG), forward in train mode (dropout stream), backward with
 *   scale 1/(B*T*accum); norm = global grad norm; if loss or norm is not
 *   finite: skip; else clip and AdamW per tensor (decay per the model's
 *   flags); CSV row; maybe evaluate (eval mode, fixed validation batches,
 *   early-stop bookkeeping); maybe checkpoint.
 * Everything that influences later steps is in the checkpoint (weights,
 * moments, Adam step, loader state, dropout seed, early-stop counters), and
 * every setting that does is in the state's config text, compared on resume.
 *
 * The run directory, checkpoints, resume, CSV, AdamW, non-finite steps and
 * stopping are the harness's (harness.h); this file supplies the batches
 * (dataloader.h), the loss, validation and the weights file.
 * Weights are written as f32 GGUF (model/gguf_io.h), which round-trips bit-exactly.
 * The tokenizer travels inside every weights file (see train/pretrain.h).
 * Does not: parse command lines (tools/cmd_pretrain.c).
 */
#include "cllm/train/pretrain.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/formats/gguf.h"
#include "cllm/kernels/kernels.h"
#include "cllm/model/gguf_io.h"
#include "cllm/train/shard.h"
#include "cllm/tokenizer/tokenizer.h"
#include "harness.h"

#define WEIGHTS_EXT "gguf"

cllm_pretrain_params cllm_pretrain_default_params(void) {
    cllm_pretrain_params p;
    memset(&p, 0, sizeof p);
    p.val_frac = 0.1;
    p.order = CLLM_DATA_RANDOM;
    cllm_error err;
    if (cllm_model_preset("nanogpt-shakespeare", &p.model, &err) != CLLM_OK)
        p.model = cllm_model_default_config();
    p.B = 12;
    p.T = 64;
    p.total_batch = 12 * 64;
    p.steps = 2000;
    p.schedule = CLLM_SCHEDULE_COSINE;
    p.lr = 1e-3f;
    p.min_lr = 1e-4f;
    p.warmup = 100;
    p.wsd_decay_frac = 0.2f;
    p.weight_decay = 0.1f;
    p.beta1 = 0.9f;
    p.beta2 = 0.99f;
    p.eps = 1e-8f;
    p.clip = 1.0f;
    p.eval_every = 250;
    p.eval_batches = 20;
    p.patience = 0;
    p.max_nonfinite = 10;
    p.seed = 1337;
    p.threads = 0;
    p.save_every = 0;
    p.keep = 2;
    p.peak_gflops = 0;
    p.progress = 1;
    return p;
}

cllm_status cllm_pretrain_validate(const cllm_pretrain_params *p, cllm_error *err) {
#define BAD(...) return cllm_error_set(err, CLLM_ERR_ARG, __VA_ARGS__)
    if (!p->data_paths || p->n_data <= 0) BAD("no training data given");
    if (!p->run_dir || !*p->run_dir) BAD("no run directory given");
    if (p->B <= 0 || p->B > (1 << 20)) BAD("batch size B=%d must be in [1, 2^20]", p->B);
    if (p->T <= 0 || p->T > CLLM_MODEL_MAX_CONTEXT) BAD("sequence length T=%d must be in [1, %d]", p->T, CLLM_MODEL_MAX_CONTEXT);
    int64_t bt = (int64_t)p->B * p->T;
    if (p->total_batch <= 0 || p->total_batch % bt != 0)
        BAD("total batch %" PRId64 " tokens must be a positive multiple of B*T = %" PRId64, p->total_batch, bt);
    if (p->steps <= 0) BAD("steps %" PRId64 " must be > 0", p->steps);
    if ((int)p->schedule < 0 || p->schedule >= CLLM_SCHEDULE_COUNT) BAD("unknown schedule %d", (int)p->schedule);
    if (!(p->lr > 0) || !isfinite(p->lr)) BAD("lr %g must be > 0", (double)p->lr);
    if (!(p->min_lr >= 0) || p->min_lr > p->lr) BAD("min_lr %g must be in [0, lr=%g]", (double)p->min_lr, (double)p->lr);
    if (p->warmup < 0 || p->warmup > p->steps) BAD("warmup %" PRId64 " must be in [0, steps=%" PRId64 "]", p->warmup, p->steps);
    if (!(p->wsd_decay_frac >= 0 && p->wsd_decay_frac <= 1)) BAD("WSD decay fraction %g must be in [0, 1]", (double)p->wsd_decay_frac);
    if (!(p->weight_decay >= 0) || !isfinite(p->weight_decay)) BAD("weight decay %g must be >= 0", (double)p->weight_decay);
    if (!(p->beta1 >= 0 && p->beta1 < 1) || !(p->beta2 >= 0 && p->beta2 < 1)) BAD("betas must be in [0, 1)");
    if (!(p->eps > 0)) BAD("eps must be > 0");
    if (!(p->clip >= 0) || !isfinite(p->clip)) BAD("clip %g must be >= 0 (0 disables)", (double)p->clip);
    if (!(p->val_frac >= 0 && p->val_frac < 1)) BAD("val_frac %g must be in [0, 1)", p->val_frac);
    if (p->eval_every < 0) BAD("eval_every must be >= 0");
    if (p->eval_every > 0 && p->val_frac <= 0) BAD("evaluation every %" PRId64 " steps needs a validation split (val_frac > 0)", p->eval_every);
    if (p->eval_every > 0 && p->eval_batches <= 0) BAD("eval_batches %d must be > 0", p->eval_batches);
    if (p->patience < 0) BAD("patience must be >= 0");
    if (p->patience > 0 && p->eval_every == 0) BAD("early stopping (patience %d) needs evaluations (eval_every > 0)", p->patience);
    if (p->max_nonfinite <= 0) BAD("max_nonfinite must be > 0");
    if (p->threads < 0) BAD("threads must be >= 0");
    if (p->save_every < 0) BAD("save_every must be >= 0");
    if (p->keep < 1) BAD("keep %d must be >= 1", p->keep);
    if (!(p->model.dropout >= 0 && p->model.dropout < 1)) BAD("dropout %g must be in [0, 1)", (double)p->model.dropout);
    if (p->T > p->model.context_length)
        BAD("sequence length T=%d exceeds the model's context length %d", p->T, p->model.context_length);
#undef BAD
    return CLLM_OK;
}

/* ---- config text compared on resume ---------------------------------------- */

static void config_text(const cllm_pretrain_params *p, const cllm_model_config *c, char *out, size_t cap) {
    size_t n = 0;
#define ADD(...) n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, __VA_ARGS__)
    ADD("model.vocab_size=%d\nmodel.context_length=%d\nmodel.n_layer=%d\nmodel.n_head=%d\n", c->vocab_size,
        c->context_length, c->n_layer, c->n_head);
    ADD("model.n_kv_head=%d\nmodel.n_embd=%d\nmodel.ffn_hidden=%d\nmodel.pos=%s\nmodel.rope_theta=%a\n", c->n_kv_head,
        c->n_embd, c->ffn_hidden, cllm_model_pos_name(c->pos), (double)c->rope_theta);
    ADD("model.norm=%s\nmodel.norm_eps=%a\nmodel.mlp=%s\nmodel.tied_embeddings=%d\nmodel.bias=%d\nmodel.dropout=%a\n",
        cllm_model_norm_name(c->norm), (double)c->norm_eps, cllm_model_mlp_name(c->mlp), c->tied_embeddings, c->bias,
        (double)c->dropout);
    if (c->sliding_window) ADD("model.sliding_window=%d\n", c->sliding_window); /* older runs lack it */
    if (c->qkv_bias || c->rope_neox || c->rope_scaling != CLLM_ROPE_SCALING_NONE) { /* older runs lack them */
        ADD("model.qkv_bias=%d\nmodel.rope_neox=%d\nmodel.rope_scaling=%s\nmodel.rope_factor=%a\n", c->qkv_bias,
            c->rope_neox, cllm_model_rope_scaling_name(c->rope_scaling), (double)c->rope_factor);
        ADD("model.rope_low_freq_factor=%a\nmodel.rope_high_freq_factor=%a\nmodel.rope_orig_context=%d\n",
            (double)c->rope_low_freq_factor, (double)c->rope_high_freq_factor, c->rope_orig_context);
    }
    ADD("batch=%d\nseq=%d\ntotal_batch=%" PRId64 "\nsteps=%" PRId64 "\n", p->B, p->T, p->total_batch, p->steps);
    ADD("schedule=%s\nlr=%a\nmin_lr=%a\nwarmup=%" PRId64 "\nwsd_decay_frac=%a\n", cllm_schedule_name(p->schedule),
        (double)p->lr, (double)p->min_lr, p->warmup, (double)p->wsd_decay_frac);
    ADD("weight_decay=%a\nbeta1=%a\nbeta2=%a\neps=%a\nclip=%a\n", (double)p->weight_decay, (double)p->beta1,
        (double)p->beta2, (double)p->eps, (double)p->clip);
    ADD("val_frac=%a\norder=%s\neval_every=%" PRId64 "\neval_batches=%d\npatience=%d\nmax_nonfinite=%d\n",
        p->val_frac, p->order == CLLM_DATA_RANDOM ? "random" : "sequential", p->eval_every, p->eval_batches,
        p->patience, p->max_nonfinite);
    ADD("seed=%" PRIu64 "\nthreads=%d\n", p->seed, p->threads);
#undef ADD
}

static uint64_t layout_hash(cllm_model *m, const char *cfg_text) {
    uint64_t h = cllm_fnv1a64(cfg_text, strlen(cfg_text), CLLM_FNV_OFFSET);
    for (int i = 0; i < cllm_model_num_tensors(m); i++) {
        const cllm_tensor *t = cllm_model_tensor(m, i);
        h = cllm_fnv1a64(t->name, strlen(t->name), h);
        uint64_t facts[4] = {(uint64_t)t->shape[0], (uint64_t)t->shape[1], (uint64_t)t->offset, (uint64_t)t->decay};
        h = cllm_fnv1a64(facts, sizeof facts, h);
    }
    return h;
}

/* ---- weights I/O: GGUF f32 through model/gguf_io.h ------------------------------ */

typedef struct {
    cllm_model *model;
    uint64_t layout;
    uint64_t tokenizer_hash; /* recorded as cllm.tokenizer_hash in the file */
    const cllm_tokenizer *tokenizer; /* written as tokenizer.ggml.* keys */
    const th_run *h;                 /* the file's name and description (th_save_params) */
} weights_ctx;

static cllm_status add_train_keys(cllm_gguf_writer *w, void *ctx, cllm_error *err) {
    const weights_ctx *wc = ctx;
    cllm_status st = cllm_gguf_set_u64(w, "cllm.tokenizer_hash", wc->tokenizer_hash, err);
    if (st == CLLM_OK) st = cllm_tokenizer_gguf_set(wc->tokenizer, w, NULL, err);
    return st;
}

/* The tokenizer the weights files carry: the caller's (checked against the
 * data), or the byte vocabulary for byte-level data (owned in *own). */
static cllm_status resolve_tokenizer(const cllm_pretrain_params *p, const cllm_loader *loader,
                                     cllm_tokenizer **own, const cllm_tokenizer **out, cllm_error *err) {
    uint32_t vocab = cllm_loader_vocab_size(loader);
    uint64_t hash = cllm_loader_tokenizer_hash(loader);
    if (p->tokenizer) {
        if (cllm_tokenizer_n_vocab(p->tokenizer) != vocab && hash == 0 && vocab == 256)
            return cllm_error_set(err, CLLM_ERR_ARG,
                                  "the data is text, which pre-training reads as raw bytes (256 tokens), but the "
                                  "tokenizer has %u tokens: make token shards with `cllm tokenize --tokenizer TOK "
                                  "-o data.tok FILES` and pass those to --data (or drop --tokenizer to train on bytes)",
                                  cllm_tokenizer_n_vocab(p->tokenizer));
        if (cllm_tokenizer_n_vocab(p->tokenizer) != vocab)
            return cllm_error_set(err, CLLM_ERR_ARG, "the tokenizer has %u tokens but the data's vocab_size is %u",
                                  cllm_tokenizer_n_vocab(p->tokenizer), vocab);
        if (hash != 0 && cllm_tokenizer_hash(p->tokenizer) != hash)
            return cllm_error_set(err, CLLM_ERR_ARG,
                                  "the tokenizer (hash %016llx) is not the one the shards were made with (%016llx)",
                                  (unsigned long long)cllm_tokenizer_hash(p->tokenizer), (unsigned long long)hash);
        *out = p->tokenizer;
        return CLLM_OK;
    }
    if (hash == 0 && vocab == 256) {
        cllm_status st = cllm_tokenizer_new_bytes(own, err);
        *out = *own;
        return st;
    }
    return cllm_error_set(err, CLLM_ERR_ARG,
                          "the token shards were made with a tokenizer (hash %016llx, %u tokens); pass the same file "
                          "with --tokenizer so the model file carries it",
                          (unsigned long long)hash, vocab);
}

/* f32 GGUF round-trips bit-exactly (model/gguf_io.h), which exact resume needs. */
static cllm_status write_weights(const char *path, void *ctx, cllm_error *err) {
    weights_ctx *wc = ctx;
    cllm_model_save_params sp = th_save_params(wc->h);
    sp.extra = add_train_keys;
    sp.extra_ctx = wc;
    return cllm_model_save_gguf(wc->model, path, &sp, err);
}

static cllm_status read_weights(const char *path, void *ctx, cllm_error *err) {
    weights_ctx *wc = ctx;
    cllm_gguf *g = NULL;
    cllm_status st = cllm_gguf_open(&g, path, err);
    if (st != CLLM_OK) return st;
    /* every f32 weight must come back exactly; NaN/Inf weights are refused */
    for (uint64_t i = 0; i < cllm_gguf_n_tensors(g) && st == CLLM_OK; i++)
        if (cllm_gguf_tensor_at(g, i)->type != CLLM_GGML_F32)
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tensor %" PRIu64 " is not f32; a training checkpoint must be f32",
                                path, i);
    if (st == CLLM_OK) st = cllm_model_read_gguf(wc->model, g, 1, err);
    cllm_gguf_close(g);
    return st;
}

/* ---- the run ------------------------------------------------------------------ */

typedef struct {
    const cllm_pretrain_params *p;
    cllm_pretrain_result *res;
    cllm_model *model;
    cllm_loader *loader;
    cllm_tokenizer *own_tokenizer; /* the byte vocabulary for text data, else NULL */
    int32_t *inputs, *targets;    /* [B*T] */
    int accum;
    double flops_per_token, peak; /* MFU: model FLOPs per token, GEMM peak (GFLOP/s, <= 0 unknown) */
    double t0;
    th_run h;
} run_ctx;

static void run_free(run_ctx *r) {
    cllm_model_destroy(r->model);
    cllm_loader_free(r->loader);
    cllm_tokenizer_destroy(r->own_tokenizer);
    free(r->inputs);
    free(r->targets);
    th_free(&r->h);
}

/* hooks.step: accum micro-batches of B x T, mean cross-entropy's gradient. */
static cllm_status step_hook(void *ctx, int64_t step, double *loss, double *tokens, cllm_error *err) {
    run_ctx *r = ctx;
    const cllm_pretrain_params *p = r->p;
    const float dloss_scale = 1.0f / (float)((double)p->B * p->T * r->accum);
    cllm_model_zero_grad(r->model);
    cllm_model_set_train_mode(r->model, 1);
    double loss_sum = 0;
    int mine = 0;
    for (int a = 0; a < r->accum; a++) {
        cllm_loader_next(r->loader, r->inputs, r->targets); /* every rank: the same data position */
        if (!th_unit(&r->h, a, r->accum)) {                  /* another rank's micro-batch */
            cllm_model_skip_dropout(r->model);
            continue;
        }
        mine++;
        float l = 0;
        cllm_status st = cllm_model_forward(r->model, r->inputs, r->targets, p->B, p->T, &l, err);
        if (st == CLLM_OK) st = cllm_model_backward(r->model, dloss_scale, err);
        if (st != CLLM_OK) return st;
        loss_sum += l;
    }
    if (p->fault_nonfinite_count > 0 && step >= p->fault_nonfinite_from &&
        step - p->fault_nonfinite_from < p->fault_nonfinite_count)
        cllm_model_grads(r->model)[0] = NAN;
    *loss = loss_sum / r->accum;
    *tokens = (double)mine * p->B * p->T;
    return CLLM_OK;
}

/* hooks.evaluate: mean loss over the fixed validation batches, in eval mode. */
static cllm_status evaluate_hook(void *ctx, double *val_loss, cllm_error *err) {
    run_ctx *r = ctx;
    const cllm_pretrain_params *p = r->p;
    cllm_model_set_train_mode(r->model, 0);
    double sum = 0;
    for (int k = 0; k < p->eval_batches; k++) {
        cllm_status st = cllm_loader_val_batch(r->loader, (uint64_t)k, r->inputs, r->targets, err);
        float loss = 0;
        if (st == CLLM_OK) st = cllm_model_forward(r->model, r->inputs, r->targets, p->B, p->T, &loss, err);
        if (st != CLLM_OK) return st;
        sum += loss;
    }
    *val_loss = sum / p->eval_batches;
    return CLLM_OK;
}

static void snapshot_hook(void *ctx, cllm_train_state *s) {
    run_ctx *r = ctx;
    cllm_loader_get_state(r->loader, &s->loader);
    s->dropout_seed = cllm_model_dropout_seed(r->model);
}

static void progress_hook(void *ctx, const th_run *h, double loss, float lr, char *out, size_t cap) {
    run_ctx *r = ctx;
    double elapsed = cllm_now_seconds() - r->t0;
    double mfu = (r->peak > 0 && elapsed > 0) ? r->flops_per_token * h->tokens_this_run / elapsed / (r->peak * 1e9) : NAN;
    r->res->mfu = mfu;
    if (isfinite(mfu))
        snprintf(out, cap, "step %" PRId64 "/%" PRId64 " loss %.4f lr %.2e MFU %.1f%%", h->state.step, h->steps, loss,
                 (double)lr, mfu * 100);
    else
        snprintf(out, cap, "step %" PRId64 "/%" PRId64 " loss %.4f lr %.2e", h->state.step, h->steps, loss, (double)lr);
}

static void harness_settings(run_ctx *r) {
    const cllm_pretrain_params *p = r->p;
    th_run *h = &r->h;
    h->name = "pretrain";
    h->run_dir = p->run_dir;
    h->resume = p->resume;
    h->keep = p->keep;
    h->precision = p->precision;
    h->precision_change = p->precision_change;
    h->steps = p->steps;
    h->save_every = p->save_every;
    h->eval_every = p->eval_every;
    h->patience = p->patience;
    h->max_nonfinite = p->max_nonfinite;
    h->nonfinite_hint = "lower --lr or raise --warmup / --clip";
    h->sched = (cllm_schedule){p->schedule, p->lr, p->min_lr, p->warmup, p->steps, p->wsd_decay_frac};
    h->progress = p->progress;
    h->progress_unit = "tok";
    h->progress_per_step = (double)p->total_batch;
    h->stop_flag = p->stop_flag;
    h->log = p->log;
    h->log_ctx = p->log_ctx;
    h->data_parallel = 1;
}

/* Data, then the run directory (created only once the data validated). */
static cllm_status open_data(run_ctx *r, const cllm_tokenizer **tokenizer, cllm_error *err) {
    const cllm_pretrain_params *p = r->p;
    cllm_loader_params lp = cllm_loader_default_params();
    lp.B = p->B;
    lp.T = p->T;
    lp.val_frac = p->val_frac;
    lp.order = p->order;
    lp.seed = p->seed ^ 0x5DEECE66Dull; /* the loader's stream, distinct from the init stream */
    cllm_status st = cllm_loader_open(&r->loader, p->data_paths, p->n_data, &lp, err);
    if (st == CLLM_OK) st = resolve_tokenizer(p, r->loader, &r->own_tokenizer, tokenizer, err);
    if (st != CLLM_OK) return st;
    if (p->eval_every > 0 && cllm_loader_n_val_windows(r->loader) == 0)
        return cllm_error_set(err, CLLM_ERR_ARG, "the validation split is too small for one window of T+1 = %d tokens",
                              p->T + 1);
    return th_open(&r->h, err);
}

/* The model (vocabulary from the data), its optimizer and the batch buffers. */
static cllm_status build_model(run_ctx *r, cllm_model_config *cfg, cllm_error *err) {
    const cllm_pretrain_params *p = r->p;
    *cfg = p->model;
    cfg->vocab_size = (int)cllm_loader_vocab_size(r->loader);
    cllm_status st = cllm_model_config_validate(cfg, err);
    if (st != CLLM_OK) return st;
    cllm_model_options mo = cllm_model_default_options();
    mo.max_batch = p->B;
    mo.max_seq = p->T;
    mo.training = 1;
    st = cllm_model_create(cfg, &mo, &r->model, err);
    if (st != CLLM_OK) return st;
    cllm_adamw_params hp = cllm_adamw_default_params();
    hp.beta1 = p->beta1;
    hp.beta2 = p->beta2;
    hp.eps = p->eps;
    hp.weight_decay = p->weight_decay;
    st = th_optim_init_model(&r->h.opt, r->model, 0, &hp, p->clip, err);
    if (st != CLLM_OK) return st;
    r->inputs = malloc((size_t)p->B * p->T * sizeof(int32_t));
    r->targets = malloc((size_t)p->B * p->T * sizeof(int32_t));
    if (!r->inputs || !r->targets)
        return cllm_error_set(err, CLLM_ERR_NOMEM, "cannot allocate batches of %d x %d tokens", p->B, p->T);
    cllm_model_init_weights(r->model, p->seed);
    return CLLM_OK;
}

static void log_start(run_ctx *r, const cllm_model_config *cfg) {
    const cllm_pretrain_params *p = r->p;
    r->accum = (int)(p->total_batch / ((int64_t)p->B * p->T));
    r->flops_per_token = 3.0 * cllm_model_flops_per_token(cfg, p->T);
    r->peak = p->peak_gflops;
    if (r->peak == 0) {
        cllm_error perr;
        cllm_matmul_set_precision(p->precision); /* MFU against the peak of the products the run uses */
        if (cllm_kernels_measure_gemm_peak(p->threads, &r->peak, &perr) != CLLM_OK) r->peak = -1;
        cllm_matmul_set_precision(CLLM_PRECISION_FP32);
    }
    th_log(&r->h, "model: %zu parameters, %d layers, %d heads, %d wide, vocab %d; data: %" PRIu64 " train / %" PRIu64
           " val tokens; %d x %d x %d = %" PRId64 " tokens per step; %d thread%s%s",
           cllm_model_num_params(r->model), cfg->n_layer, cfg->n_head, cfg->n_embd, cfg->vocab_size,
           cllm_loader_n_train(r->loader), cllm_loader_n_val(r->loader), p->B, p->T, r->accum, p->total_batch,
           cllm_kernels_threads(), cllm_kernels_threads() == 1 ? "" : "s", r->peak > 0 ? "" : " (MFU unknown)");
}

cllm_status cllm_pretrain_run(const cllm_pretrain_params *p, cllm_pretrain_result *res, cllm_error *err) {
    memset(res, 0, sizeof *res);
    res->last_train_loss = NAN;
    res->last_val_loss = NAN;
    res->best_val_loss = INFINITY;
    res->mfu = NAN;
    cllm_status st = cllm_pretrain_validate(p, err);
    if (st != CLLM_OK) return st;
    run_ctx r;
    memset(&r, 0, sizeof r);
    r.p = p;
    r.res = res;
    th_init(&r.h);
    harness_settings(&r);
    /* an existing run directory is locked before the data is read */
    st = th_lock_existing(&r.h, err);
    if (st != CLLM_OK) goto done;
    cllm_kernels_set_threads(p->threads);
    const cllm_tokenizer *tokenizer = NULL;
    cllm_model_config cfg;
    st = open_data(&r, &tokenizer, err);
    if (st == CLLM_OK) st = build_model(&r, &cfg, err);
    if (st != CLLM_OK) goto done;
    res->n_params = cllm_model_num_params(r.model);
    char config[CLLM_CKPT_CONFIG_MAX];
    config_text(p, &cfg, config, sizeof config);
    const uint64_t tok_hash = cllm_loader_tokenizer_hash(r.loader), layout = layout_hash(r.model, config);
    weights_ctx wctx = {r.model, layout, tok_hash, tokenizer, &r.h};
    th_describe(&r.h, "next-token prediction", p->data_paths[0], NULL);
    r.h.weights_ext = "gguf";
    r.h.write_weights = write_weights;
    r.h.read_weights = read_weights;
    r.h.weights_ctx = &wctx;
    st = th_begin(&r.h, config, cllm_loader_fingerprint(r.loader), tok_hash, layout, err);
    if (st == CLLM_OK && r.h.resumed) st = cllm_loader_set_state(r.loader, &r.h.state.loader, err);
    if (st != CLLM_OK) goto done;
    cllm_model_set_dropout_seed(r.model, r.h.resumed ? r.h.state.dropout_seed : p->seed ^ 0xD0D0D0D0ull);
    res->start_step = r.h.state.step;
    log_start(&r, &cfg);

    const th_hooks hooks = {step_hook, p->eval_every > 0 ? evaluate_hook : NULL, snapshot_hook, progress_hook, 0};
    r.t0 = cllm_now_seconds();
    st = th_loop(&r.h, &hooks, &r, err);
    res->last_train_loss = r.h.last_loss;
    res->last_val_loss = r.h.last_val;
    res->best_val_loss = r.h.state.best_val_loss;
    if (st != CLLM_OK) goto done;
    res->reason = r.h.reason;
    snprintf(res->reason_text, sizeof res->reason_text, "%s", r.h.reason_text);
    res->seconds = r.h.seconds;
    res->tokens_per_s = res->seconds > 0 ? r.h.tokens_this_run / res->seconds : 0;
    res->steps_done = r.h.state.step;
    res->nonfinite_skipped = r.h.state.nonfinite_total;
    /* final weights beside the checkpoints, and the loss curve */
    st = th_finish(&r.h, "model.gguf", "Training loss", "cross-entropy (nats/token)", p->eval_every > 0,
                   res->weights_path, sizeof res->weights_path, err);
    th_summarize(&r.h, res->weights_path, &res->summary);
    cllm_train_summary_add(&res->summary, "params", (double)res->n_params);
    if (isfinite(res->mfu)) cllm_train_summary_add(&res->summary, "mfu", res->mfu);
done:
    run_free(&r);
    return st;
}
