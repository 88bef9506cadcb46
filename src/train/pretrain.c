/*
 * pretrain.c: the pre-training step loop of trainer.h.
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
 * Weights are written as f32 GGUF (model_io.h), which round-trips bit-exactly.
 * The tokenizer travels inside every weights file (see trainer.h).
 * Does not: parse command lines (tools/cmd_pretrain.c).
 */
#include "cllm/trainer.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cllm/checkpoint.h"
#include "cllm/fileio.h"
#include "cllm/gguf.h"
#include "cllm/kernels.h"
#include "cllm/model_io.h"
#include "cllm/plot.h"
#include "cllm/progress.h"
#include "cllm/shard.h"
#include "cllm/tokenizer.h"

#define WEIGHTS_EXT "gguf"
#define CSV_HEADER "step,loss,val_loss,lr,grad_norm,tokens_per_s\n"

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

static void logf_(const cllm_pretrain_params *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(const cllm_pretrain_params *p, const char *fmt, ...) {
    if (!p->log) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    p->log(p->log_ctx, line);
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

/* First line that differs between two config texts, as an error. */
static cllm_status compare_config(const char *saved, const char *now, const char *state_path, cllm_error *err) {
    const char *a = saved, *b = now;
    while (*a || *b) {
        size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
        if (la != lb || memcmp(a, b, la) != 0) {
            char sa[256], sb[256];
            snprintf(sa, sizeof sa, "%.*s", (int)(la < 200 ? la : 200), a);
            snprintf(sb, sizeof sb, "%.*s", (int)(lb < 200 ? lb : 200), b);
            return cllm_error_set(err, CLLM_ERR_ARG,
                                  "cannot resume: the checkpoint (%s) was trained with '%s' but this run asks for "
                                  "'%s'; pass the same settings to resume, or start a new run directory",
                                  state_path, la ? sa : "(nothing)", lb ? sb : "(nothing)");
        }
        a += la + (a[la] == '\n');
        b += lb + (b[lb] == '\n');
    }
    return CLLM_OK;
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

/* ---- weights I/O: GGUF f32 through model_io.h ------------------------------ */

typedef struct {
    cllm_model *model;
    uint64_t layout;
    uint64_t tokenizer_hash; /* recorded as cllm.tokenizer_hash in the file */
    const cllm_tokenizer *tokenizer; /* written as tokenizer.ggml.* keys */
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

/* f32 GGUF round-trips bit-exactly (model_io.h), which exact resume needs. */
static cllm_status write_weights(const char *path, void *ctx, cllm_error *err) {
    weights_ctx *wc = ctx;
    cllm_model_save_params sp = cllm_model_save_default_params();
    sp.weight_type = CLLM_GGML_F32;
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

/* ---- CSV log ---------------------------------------------------------------- */

typedef struct {
    double *step, *loss, *val; /* [n] for the plot */
    size_t n, cap;
} curve;

static int curve_push(curve *c, double step, double loss, double val) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1024;
        double *s = realloc(c->step, cap * sizeof *s);
        if (s) c->step = s;
        double *l = realloc(c->loss, cap * sizeof *l);
        if (l) c->loss = l;
        double *v = realloc(c->val, cap * sizeof *v);
        if (v) c->val = v;
        if (!s || !l || !v) return 0;
        c->cap = cap;
    }
    c->step[c->n] = step;
    c->loss[c->n] = loss;
    c->val[c->n] = val;
    c->n++;
    return 1;
}

static void curve_free(curve *c) {
    free(c->step);
    free(c->loss);
    free(c->val);
}

/* Keeps the header and the rows of steps < keep_below (complete lines only),
 * rewrites the file atomically, and refills the curve from them. */
static cllm_status csv_cut_back(const char *path, int64_t keep_below, curve *c, cllm_error *err) {
    char *data = NULL;
    size_t len = 0;
    cllm_status st = cllm_file_read_all(path, 0, &data, &len, err);
    if (st != CLLM_OK) return st;
    char *out = malloc(len + sizeof CSV_HEADER);
    if (!out) {
        free(data);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t n = 0;
    memcpy(out, CSV_HEADER, strlen(CSV_HEADER));
    n = strlen(CSV_HEADER);
    char *line = data;
    while (line < data + len) {
        char *nl = memchr(line, '\n', (size_t)(data + len - line));
        if (!nl) break; /* a partial last line from a kill: dropped */
        *nl = '\0';
        char *end;
        errno = 0;
        long long step = strtoll(line, &end, 10);
        if (end != line && *end == ',' && !errno && step >= 0 && step < keep_below) {
            char *f2 = end + 1, *f3 = strchr(f2, ',');
            double loss = strtod(f2, NULL), val = NAN;
            if (f3 && f3[1] != ',') val = strtod(f3 + 1, NULL);
            if (!curve_push(c, (double)step, loss, val)) {
                st = cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            size_t l = (size_t)(nl - line);
            memcpy(out + n, line, l);
            out[n + l] = '\n';
            n += l + 1;
        }
        line = nl + 1;
    }
    if (st == CLLM_OK) st = cllm_file_write_atomic(path, out, n, err);
    free(out);
    free(data);
    return st;
}

/* ---- the run ------------------------------------------------------------------ */

typedef struct {
    cllm_model *model;
    cllm_loader *loader;
    cllm_tokenizer *own_tokenizer; /* the byte vocabulary for text data, else NULL */
    float *m, *v;                 /* AdamW moments [n_params] */
    int32_t *inputs, *targets;    /* [B*T] */
    FILE *csv;
    int lock_fd;
    curve curve;
} run_ctx;

static void run_free(run_ctx *r) {
    cllm_model_destroy(r->model);
    cllm_loader_free(r->loader);
    cllm_tokenizer_destroy(r->own_tokenizer);
    free(r->m);
    free(r->v);
    free(r->inputs);
    free(r->targets);
    if (r->csv) fclose(r->csv);
    cllm_ckpt_unlock(r->lock_fd);
    curve_free(&r->curve);
}

static cllm_status evaluate(run_ctx *r, const cllm_pretrain_params *p, double *val_loss, cllm_error *err) {
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

static cllm_status check_free_space(const char *dir, size_t n_params, int keep, cllm_error *err) {
    struct statvfs vfs;
    if (statvfs(dir, &vfs) != 0) return CLLM_OK; /* unknown: let the writes report */
    /* weights + two moments, for keep+1 checkpoints (the new one before pruning) */
    double need = (double)n_params * 12.0 * (keep + 1) + 1e6;
    double have = (double)vfs.f_bavail * (double)vfs.f_frsize;
    if (have < need)
        return cllm_error_set(err, CLLM_ERR_IO,
                              "%s: %.1f MB free, checkpoints need about %.1f MB (%d kept + 1 being written)",
                              dir, have / 1e6, need / 1e6, keep);
    return CLLM_OK;
}

static cllm_status save_checkpoint(run_ctx *r, const cllm_pretrain_params *p, cllm_train_state *state,
                                   weights_ctx *wctx, int64_t adam_step, cllm_error *err) {
    /* Never let non-finite weights replace a good checkpoint. */
    const float *w = cllm_model_params(r->model);
    size_t n = cllm_model_num_params(r->model);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(w[i]))
            return cllm_error_set(err, CLLM_ERR_NUMERIC,
                                  "parameter %zu is %g at step %" PRId64 "; not saving a checkpoint of non-finite weights",
                                  i, (double)w[i], state->step);
    if (r->csv && (fflush(r->csv) != 0 || fsync(fileno(r->csv)) != 0))
        return cllm_error_set(err, CLLM_ERR_IO, "%s/train.csv: cannot flush: %s", p->run_dir, strerror(errno));
    cllm_loader_get_state(r->loader, &state->loader);
    state->dropout_seed = cllm_model_dropout_seed(r->model);
    cllm_ckpt_io io = {WEIGHTS_EXT, write_weights, read_weights, wctx, r->m, r->v, NULL, NULL, n, adam_step};
    cllm_status st = cllm_ckpt_save(p->run_dir, &io, state, err);
    if (st != CLLM_OK) return st;
    return cllm_ckpt_prune(p->run_dir, p->keep, err);
}

static void format_suffix(char *out, size_t cap, int64_t step, int64_t steps, double loss, float lr, double mfu) {
    if (isfinite(mfu))
        snprintf(out, cap, "step %" PRId64 "/%" PRId64 " loss %.4f lr %.2e MFU %.1f%%", step, steps, loss, (double)lr,
                 mfu * 100);
    else
        snprintf(out, cap, "step %" PRId64 "/%" PRId64 " loss %.4f lr %.2e", step, steps, loss, (double)lr);
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
    r.lock_fd = -1;
    char path[4096];

    /* An existing run directory is locked before the data is read, so a
     * second trainer fails at once; a new one is created only after the data
     * validated, so bad input leaves nothing behind. */
    struct stat dir_st;
    int dir_exists = stat(p->run_dir, &dir_st) == 0;
    if (dir_exists) {
        st = cllm_dir_check_writable(p->run_dir, err);
        if (st == CLLM_OK) st = cllm_ckpt_lock(p->run_dir, &r.lock_fd, err);
        if (st != CLLM_OK) goto done;
    }
    cllm_kernels_set_threads(p->threads);

    /* data */
    cllm_loader_params lp = cllm_loader_default_params();
    lp.B = p->B;
    lp.T = p->T;
    lp.val_frac = p->val_frac;
    lp.order = p->order;
    lp.seed = p->seed ^ 0x5DEECE66Dull; /* the loader's stream, distinct from the init stream */
    st = cllm_loader_open(&r.loader, p->data_paths, p->n_data, &lp, err);
    if (st != CLLM_OK) goto done;
    const cllm_tokenizer *tokenizer = NULL;
    st = resolve_tokenizer(p, r.loader, &r.own_tokenizer, &tokenizer, err);
    if (st != CLLM_OK) goto done;
    if (p->eval_every > 0 && cllm_loader_n_val_windows(r.loader) == 0) {
        st = cllm_error_set(err, CLLM_ERR_ARG, "the validation split is too small for one window of T+1 = %d tokens", p->T + 1);
        goto done;
    }
    if (!dir_exists) {
        st = cllm_dir_ensure(p->run_dir, err);
        if (st == CLLM_OK) st = cllm_ckpt_lock(p->run_dir, &r.lock_fd, err);
        if (st != CLLM_OK) goto done;
    }
    int64_t latest = -1;
    st = cllm_ckpt_find_latest(p->run_dir, &latest, err);
    if (st == CLLM_OK && latest >= 0 && !p->resume)
        st = cllm_error_set(err, CLLM_ERR_ARG,
                            "%s already holds a checkpoint (step %" PRId64 "); pass --resume to continue it, or "
                            "choose a new --out",
                            p->run_dir, latest);
    if (st != CLLM_OK) goto done;

    /* model */
    cllm_model_config cfg = p->model;
    cfg.vocab_size = (int)cllm_loader_vocab_size(r.loader);
    st = cllm_model_config_validate(&cfg, err);
    if (st != CLLM_OK) goto done;
    cllm_model_options mo = cllm_model_default_options();
    mo.max_batch = p->B;
    mo.max_seq = p->T;
    mo.training = 1;
    st = cllm_model_create(&cfg, &mo, &r.model, err);
    if (st != CLLM_OK) goto done;
    const size_t n_params = cllm_model_num_params(r.model);
    res->n_params = n_params;
    r.m = calloc(n_params, sizeof(float));
    r.v = calloc(n_params, sizeof(float));
    r.inputs = malloc((size_t)p->B * p->T * sizeof(int32_t));
    r.targets = malloc((size_t)p->B * p->T * sizeof(int32_t));
    if (!r.m || !r.v || !r.inputs || !r.targets) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "cannot allocate optimizer state for %zu parameters", n_params);
        goto done;
    }
    st = check_free_space(p->run_dir, n_params, p->keep, err);
    if (st != CLLM_OK) goto done;

    cllm_train_state state;
    cllm_train_state_init(&state);
    config_text(p, &cfg, state.config, sizeof state.config);
    state.data_fingerprint = cllm_loader_fingerprint(r.loader);
    state.tokenizer_hash = cllm_loader_tokenizer_hash(r.loader);
    state.layout_hash = layout_hash(r.model, state.config);
    weights_ctx wctx = {r.model, state.layout_hash, state.tokenizer_hash, tokenizer};
    int64_t adam_step = 0;
    snprintf(path, sizeof path, "%s/train.csv", p->run_dir);

    if (latest >= 0) {
        cllm_train_state saved;
        cllm_ckpt_io io = {WEIGHTS_EXT, write_weights, read_weights, &wctx, NULL, NULL, r.m, r.v, n_params, 0};
        char state_path[4096];
        cllm_ckpt_path(state_path, sizeof state_path, p->run_dir, latest, "state");
        /* compare settings and data before reading the big files */
        st = cllm_train_state_read(state_path, &saved, err);
        if (st == CLLM_OK) st = compare_config(saved.config, state.config, state_path, err);
        if (st == CLLM_OK && saved.data_fingerprint != state.data_fingerprint)
            st = cllm_error_set(err, CLLM_ERR_ARG,
                                "cannot resume: the data differs from the checkpoint's (fingerprint %016" PRIx64
                                " now, %016" PRIx64 " in %s); pass the same --data files in the same order",
                                state.data_fingerprint, saved.data_fingerprint, state_path);
        if (st == CLLM_OK && saved.tokenizer_hash != state.tokenizer_hash)
            st = cllm_error_set(err, CLLM_ERR_ARG, "cannot resume: the tokenizer differs from the checkpoint's (%s)", state_path);
        if (st == CLLM_OK) st = cllm_ckpt_load(p->run_dir, latest, &io, &saved, err);
        if (st == CLLM_OK) st = cllm_loader_set_state(r.loader, &saved.loader, err);
        if (st != CLLM_OK) goto done;
        cllm_model_set_dropout_seed(r.model, saved.dropout_seed);
        adam_step = io.adam_step;
        char keep_config[CLLM_CKPT_CONFIG_MAX];
        memcpy(keep_config, state.config, sizeof keep_config);
        state = saved;
        memcpy(state.config, keep_config, sizeof keep_config);
        st = cllm_ckpt_prune(p->run_dir, p->keep, err); /* leftovers of the interrupted run */
        if (st == CLLM_OK) {
            uint64_t sz;
            if (cllm_file_check_regular(path, &sz, NULL) == CLLM_OK) st = csv_cut_back(path, state.step, &r.curve, err);
            else st = cllm_file_write_atomic(path, CSV_HEADER, strlen(CSV_HEADER), err);
        }
        if (st != CLLM_OK) goto done;
        logf_(p, "resumed from %s/ckpt-%010" PRId64 " (step %" PRId64 " of %" PRId64 ")", p->run_dir, latest, state.step,
              p->steps);
    } else {
        cllm_model_init_weights(r.model, p->seed);
        cllm_model_set_dropout_seed(r.model, p->seed ^ 0xD0D0D0D0ull);
        st = cllm_ckpt_prune(p->run_dir, p->keep, err); /* files of a run killed before its first checkpoint */
        if (st == CLLM_OK) st = cllm_file_write_atomic(path, CSV_HEADER, strlen(CSV_HEADER), err);
        if (st != CLLM_OK) goto done;
    }
    res->start_step = state.step;
    res->best_val_loss = state.best_val_loss;
    r.csv = fopen(path, "ab");
    if (!r.csv) {
        st = cllm_error_set(err, CLLM_ERR_IO, "%s: cannot open for appending: %s", path, strerror(errno));
        goto done;
    }

    const int accum = (int)(p->total_batch / ((int64_t)p->B * p->T));
    const cllm_schedule sched = {p->schedule, p->lr, p->min_lr, p->warmup, p->steps, p->wsd_decay_frac};
    const double flops_per_token = 3.0 * cllm_model_flops_per_token(&cfg, p->T);
    double peak = p->peak_gflops;
    if (peak == 0) {
        cllm_error perr;
        if (cllm_kernels_measure_gemm_peak(p->threads, &peak, &perr) != CLLM_OK) peak = -1;
    }
    logf_(p, "model: %zu parameters, %d layers, %d heads, %d wide, vocab %d; data: %" PRIu64 " train / %" PRIu64
          " val tokens; %d x %d x %d = %" PRId64 " tokens per step; %d threads%s",
          n_params, cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.vocab_size, cllm_loader_n_train(r.loader),
          cllm_loader_n_val(r.loader), p->B, p->T, accum, p->total_batch, cllm_kernels_threads(),
          peak > 0 ? "" : " (MFU unknown)");

    if (state.step >= p->steps) {
        res->reason = CLLM_STOP_ALREADY_DONE;
        snprintf(res->reason_text, sizeof res->reason_text, "the run already finished: its newest checkpoint is at step %" PRId64,
                 state.step);
    }
    cllm_progress bar;
    cllm_progress_begin(&bar, "pretrain", (double)(p->steps - state.step) * (double)p->total_batch, "tok");
    bar.enabled = p->progress;
    const double t0 = cllm_now_seconds();
    double tokens_this_run = 0;
    cllm_adamw_params hp = cllm_adamw_default_params();
    hp.beta1 = p->beta1;
    hp.beta2 = p->beta2;
    hp.eps = p->eps;
    hp.weight_decay = p->weight_decay;
    float *grads = cllm_model_grads(r.model);
    float *params_block = cllm_model_params(r.model);
    const int n_tensors = cllm_model_num_tensors(r.model);
    const float dloss_scale = 1.0f / (float)((double)p->B * p->T * accum);
    int stop = state.step >= p->steps;
    double last_val = NAN;

    while (!stop) {
        const int64_t step = state.step;
        const double ts = cllm_now_seconds();
        const float lr = cllm_schedule_lr(&sched, step);
        cllm_model_zero_grad(r.model);
        cllm_model_set_train_mode(r.model, 1);
        double loss_sum = 0;
        for (int a = 0; a < accum; a++) {
            cllm_loader_next(r.loader, r.inputs, r.targets);
            float loss = 0;
            st = cllm_model_forward(r.model, r.inputs, r.targets, p->B, p->T, &loss, err);
            if (st == CLLM_OK) st = cllm_model_backward(r.model, dloss_scale, err);
            if (st != CLLM_OK) goto done;
            loss_sum += loss;
        }
        const double train_loss = loss_sum / accum;
        if (p->fault_nonfinite_count > 0 && step >= p->fault_nonfinite_from &&
            step - p->fault_nonfinite_from < p->fault_nonfinite_count)
            grads[0] = NAN;
        const double norm = cllm_grad_norm(grads, n_params);
        if (!isfinite(train_loss) || !isfinite(norm)) {
            state.nonfinite_streak++;
            state.nonfinite_total++;
            if (state.nonfinite_streak >= p->max_nonfinite) {
                st = cllm_error_set(err, CLLM_ERR_NUMERIC,
                                    "stopping at step %" PRId64 ": %" PRId64 " steps in a row had a non-finite loss "
                                    "or gradient (loss %g, grad norm %g); lower --lr or raise --warmup / --clip",
                                    step, state.nonfinite_streak, train_loss, norm);
                goto done;
            }
        } else {
            state.nonfinite_streak = 0;
            /* clipping fused into the update: g * scale as it is read */
            hp.grad_scale = cllm_grad_clip_scale(norm, p->clip);
            adam_step++;
            hp.lr = lr;
            for (int i = 0; i < n_tensors; i++) {
                const cllm_tensor *t = cllm_model_tensor(r.model, i);
                if (!t->trainable) continue;
                cllm_adamw_update(params_block + t->offset, grads + t->offset, r.m + t->offset, r.v + t->offset,
                                  t->numel, &hp, adam_step, t->decay);
            }
        }
        state.step = step + 1;
        state.tokens_seen += (uint64_t)p->total_batch;
        tokens_this_run += (double)p->total_batch;
        res->last_train_loss = train_loss;
        const double step_s = cllm_now_seconds() - ts;
        const double tok_s = step_s > 0 ? (double)p->total_batch / step_s : 0;

        /* evaluation */
        double val = NAN;
        int is_last = state.step >= p->steps;
        if (p->eval_every > 0 && (state.step % p->eval_every == 0 || is_last)) {
            st = evaluate(&r, p, &val, err);
            if (st != CLLM_OK) goto done;
            last_val = val;
            res->last_val_loss = val;
            if (val < state.best_val_loss) {
                state.best_val_loss = val;
                state.evals_since_best = 0;
            } else {
                state.evals_since_best++;
            }
            res->best_val_loss = state.best_val_loss;
        }
        char val_s[32] = "";
        if (isfinite(val)) snprintf(val_s, sizeof val_s, "%.9g", val);
        fprintf(r.csv, "%" PRId64 ",%.9g,%s,%.9g,%.9g,%.1f\n", step, train_loss, val_s, (double)lr, norm, tok_s);
        if (fflush(r.csv) != 0) {
            st = cllm_error_set(err, CLLM_ERR_IO, "%s: write failed: %s", path, strerror(errno));
            goto done;
        }
        curve_push(&r.curve, (double)step, train_loss, val);

        /* progress */
        double elapsed = cllm_now_seconds() - t0;
        double mfu = (peak > 0 && elapsed > 0) ? flops_per_token * tokens_this_run / elapsed / (peak * 1e9) : NAN;
        res->mfu = mfu;
        char suffix[160];
        format_suffix(suffix, sizeof suffix, state.step, p->steps, train_loss, lr, mfu);
        if (isfinite(last_val)) {
            size_t l = strlen(suffix);
            snprintf(suffix + l, sizeof suffix - l, " val %.4f", last_val);
        }
        cllm_progress_update(&bar, tokens_this_run, suffix);

        /* stopping */
        if (is_last) {
            stop = 1;
            res->reason = CLLM_STOP_COMPLETED;
            snprintf(res->reason_text, sizeof res->reason_text, "completed %" PRId64 " steps", p->steps);
        } else if (p->patience > 0 && state.evals_since_best >= p->patience) {
            stop = 1;
            res->reason = CLLM_STOP_EARLY;
            snprintf(res->reason_text, sizeof res->reason_text,
                     "early stop at step %" PRId64 ": validation loss has not improved on %.4f for %d evaluations",
                     state.step, state.best_val_loss, p->patience);
        } else if (p->stop_flag && *p->stop_flag) {
            stop = 1;
            res->reason = CLLM_STOP_SIGNAL;
            snprintf(res->reason_text, sizeof res->reason_text, "stopped by a signal after step %" PRId64
                     "; continue with --resume", state.step);
        }
        state.elapsed_s += step_s;
        if (stop || (p->save_every > 0 && state.step % p->save_every == 0)) {
            st = save_checkpoint(&r, p, &state, &wctx, adam_step, err);
            if (st != CLLM_OK) goto done;
        }
    }
    res->seconds = cllm_now_seconds() - t0;
    res->tokens_per_s = res->seconds > 0 ? tokens_this_run / res->seconds : 0;
    res->steps_done = state.step;
    res->nonfinite_skipped = state.nonfinite_total;
    {
        char suffix[160];
        format_suffix(suffix, sizeof suffix, state.step, p->steps, res->last_train_loss, cllm_schedule_lr(&sched, state.step - 1),
                      res->mfu);
        if (p->progress && tokens_this_run > 0) cllm_progress_end(&bar, suffix);
    }
    /* final weights beside the checkpoints, and the loss curve */
    snprintf(res->weights_path, sizeof res->weights_path, "%s/model.%s", p->run_dir, WEIGHTS_EXT);
    st = write_weights(res->weights_path, &wctx, err);
    if (st != CLLM_OK) goto done;
    if (r.curve.n > 0) {
        cllm_plot_series series[2] = {{"train", r.curve.step, r.curve.loss, r.curve.n, NULL, 0},
                                      {"validation", r.curve.step, r.curve.val, r.curve.n, NULL, 1}};
        cllm_plot_params pp = cllm_plot_default_params();
        pp.title = "Training loss";
        pp.x_label = "step";
        pp.y_label = "cross-entropy (nats/token)";
        snprintf(path, sizeof path, "%s/loss.svg", p->run_dir);
        st = cllm_plot_svg_write(path, &pp, series, p->eval_every > 0 ? 2 : 1, err);
    }
done:
    run_free(&r);
    return st;
}
