/*
 * harness.c: the training harness (harness.h): run directory, resume,
 * checkpoints, train.csv, loss curve, AdamW, non-finite steps, stopping.
 *
 * Does not: read data, run a model or know a loss (the trainer's hooks).
 */
#include "harness.h"
#include "dist_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cllm/core/fileio.h"
#include "cllm/model/lora.h"
#include "cllm/model/mapped.h"
#include "cllm/core/plot.h"

#define CSV_HEADER "step,loss,val_loss,lr,grad_norm,tokens_per_s,ranks,comm_s,rank_compute_s\n"

/* ---- AdamW ---------------------------------------------------------------------- */

static cllm_status optim_alloc(th_optim *o, const cllm_adamw_params *hp, float clip, cllm_error *err) {
    o->m = calloc(o->n ? o->n : 1, sizeof(float));
    o->v = calloc(o->n ? o->n : 1, sizeof(float));
    o->hp = *hp;
    o->clip = clip;
    if (!o->m || !o->v) {
        th_optim_free(o);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "optimizer: out of memory for %zu moments", o->n);
    }
    return CLLM_OK;
}

cllm_status th_optim_init_model(th_optim *o, cllm_model *m, int lora, const cllm_adamw_params *hp, float clip,
                                cllm_error *err) {
    memset(o, 0, sizeof *o);
    o->model = m;
    if (lora) {
        o->params = cllm_model_lora_params(m);
        o->grads = cllm_model_lora_grads(m);
        o->n = cllm_model_lora_num_params(m);
        o->tensor = cllm_model_lora_tensor;
        o->n_tensors = cllm_model_lora_num_tensors(m);
    } else {
        o->params = cllm_model_params(m);
        o->grads = cllm_model_grads(m);
        o->n = cllm_model_num_params(m);
        o->tensor = cllm_model_tensor;
        o->n_tensors = cllm_model_num_tensors(m);
    }
    return optim_alloc(o, hp, clip, err);
}

cllm_status th_optim_init_flat(th_optim *o, float *p, float *g, size_t n, const cllm_adamw_params *hp, float clip,
                               cllm_error *err) {
    memset(o, 0, sizeof *o);
    o->params = p;
    o->grads = g;
    o->n = n;
    return optim_alloc(o, hp, clip, err);
}

double th_optim_norm(const th_optim *o) { return cllm_grad_norm(o->grads, o->n); }

void th_optim_update(th_optim *o, float lr, double norm) { th_optim_update_range(o, lr, norm, 0, o->n); }

void th_optim_update_range(th_optim *o, float lr, double norm, size_t lo, size_t hi) {
    o->hp.grad_scale = cllm_grad_clip_scale(norm, o->clip); /* clipping fused into the update */
    o->hp.lr = lr;
    o->step++;
    if (!o->model) {
        if (hi > lo) cllm_adamw_update(o->params + lo, o->grads + lo, o->m + lo, o->v + lo, hi - lo, &o->hp, o->step, 0);
        return;
    }
    for (int i = 0; i < o->n_tensors; i++) { /* each tensor's part inside [lo, hi) */
        const cllm_tensor *t = o->tensor(o->model, i);
        size_t a = t->offset > lo ? t->offset : lo, b = t->offset + t->numel < hi ? t->offset + t->numel : hi;
        if (!t->trainable || a >= b) continue;
        cllm_adamw_update(o->params + a, o->grads + a, o->m + a, o->v + a, b - a, &o->hp, o->step, t->decay);
    }
}

void th_optim_free(th_optim *o) {
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

/* ---- run ---------------------------------------------------------------------------- */

void th_init(th_run *h) {
    memset(h, 0, sizeof *h);
    h->lock_fd = -1;
    h->latest = -1;
    h->keep = 1;
    h->max_nonfinite = 1;
    h->weights_ext = "gguf";
    h->progress_unit = "step";
    h->progress_per_step = 1;
    h->first_loss = h->last_loss = h->last_val = h->norm = NAN;
    cllm_train_state_init(&h->state);
}

/* ---- the optimizers' blocks as one array (checkpoints) ------------------------------ */

static th_optim *optim_at(th_run *h, int i) { return i == 0 ? &h->opt : &h->extra[i - 1]; }

static size_t total_n(const th_run *h) {
    size_t n = h->opt.n;
    for (int i = 0; i < h->n_extra; i++) n += h->extra[i].n;
    return n;
}

enum { BLOCK_PARAMS, BLOCK_M, BLOCK_V };

static float *block_of(th_optim *o, int which) {
    return which == BLOCK_PARAMS ? o->params : which == BLOCK_M ? o->m : o->v;
}

/* Array `which` of every optimizer, laid end to end: borrowed when there is
 * one optimizer, else a malloc'ed copy (*owned = 1; NULL without memory). */
static float *blocks_join(th_run *h, int which, int *owned) {
    *owned = h->n_extra > 0;
    if (!*owned) return block_of(&h->opt, which);
    float *out = malloc(total_n(h) * sizeof *out), *p = out;
    for (int i = 0; out && i <= h->n_extra; i++) {
        th_optim *o = optim_at(h, i);
        memcpy(p, block_of(o, which), o->n * sizeof *p);
        p += o->n;
    }
    return out;
}

static void blocks_split(th_run *h, int which, const float *src) {
    for (int i = 0; i <= h->n_extra; i++) {
        th_optim *o = optim_at(h, i);
        if (block_of(o, which) != src) memcpy(block_of(o, which), src, o->n * sizeof *src);
        src += o->n;
    }
}

/* Default checkpoint weights: every optimizer's parameter block, one float file. */
static cllm_status params_write(const char *path, void *ctx, cllm_error *err) {
    th_run *h = ctx;
    int owned;
    const float *all = blocks_join(h, BLOCK_PARAMS, &owned);
    if (!all) return cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory", path);
    cllm_status st = cllm_ckpt_write_floats(path, &all, 1, total_n(h), h->state.layout_hash, 0, err);
    if (owned) free((float *)all);
    return st;
}

static cllm_status params_read(const char *path, void *ctx, cllm_error *err) {
    th_run *h = ctx;
    int owned;
    float *all = blocks_join(h, BLOCK_PARAMS, &owned);
    if (!all) return cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory", path);
    cllm_status st = cllm_ckpt_read_floats(path, &all, 1, total_n(h), h->state.layout_hash, NULL, err);
    if (st == CLLM_OK) blocks_split(h, BLOCK_PARAMS, all);
    if (owned) free(all);
    return st;
}

/* The checkpoint's weights callbacks: the trainer's, or the parameter blocks. */
static cllm_ckpt_io ckpt_io(th_run *h) {
    cllm_ckpt_io io = {h->weights_ext, h->write_weights, h->read_weights, h->weights_ctx, NULL, NULL, NULL, NULL,
                       total_n(h), 0};
    if (!h->write_weights) io = (cllm_ckpt_io){"params", params_write, params_read, h, NULL, NULL, NULL, NULL,
                                               total_n(h), 0};
    return io;
}

void th_free(th_run *h) {
    if (h->csv) fclose(h->csv);
    cllm_ckpt_unlock(h->lock_fd, h->run_dir);
    th_optim_free(&h->opt);
    for (int i = 0; i < h->n_extra; i++) th_optim_free(&h->extra[i]);
    free(h->curve_step);
    free(h->curve_loss);
    free(h->curve_val);
    free(h->step_times);
    th_dist_free(h);
    h->csv = NULL;
    h->lock_fd = -1;
    h->curve_step = h->curve_loss = h->curve_val = h->step_times = NULL;
}

/* The last component of path ("a/b.jsonl" -> "b.jsonl"). */
static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

void th_describe(th_run *h, const char *task, const char *data_path, const char *base_path) {
    snprintf(h->model_name, sizeof h->model_name, "cllm-%s", h->name);
    int k = snprintf(h->model_description, sizeof h->model_description, "%s; %s on %s", task, h->name,
                     data_path ? base_name(data_path) : "?");
    if (base_path && k > 0 && (size_t)k < sizeof h->model_description)
        snprintf(h->model_description + k, sizeof h->model_description - (size_t)k, ", from %s", base_path);
}

cllm_model_save_params th_save_params(const th_run *h) {
    cllm_model_save_params sp = cllm_model_save_default_params();
    if (h->model_name[0]) sp.name = h->model_name;
    if (h->model_description[0]) sp.description = h->model_description;
    return sp;
}

void cllm_train_summary_init(cllm_train_summary *s) {
    memset(s, 0, sizeof *s);
    s->loss_first = s->loss_last = s->val_loss = s->val_loss_best = s->metric_first = s->metric_last = NAN;
    s->seconds = s->tokens_per_s = NAN;
}

void cllm_train_summary_add(cllm_train_summary *s, const char *name, double value) {
    int i = 0;
    while (i < s->n_extra && strcmp(s->extra[i].name, name) != 0) i++;
    if (i == CLLM_SUMMARY_MAX_EXTRA) return;
    if (i == s->n_extra) s->n_extra++;
    snprintf(s->extra[i].name, sizeof s->extra[i].name, "%s", name);
    s->extra[i].value = value;
}

void th_summarize(const th_run *h, const char *weights, cllm_train_summary *s) {
    cllm_train_summary_init(s);
    snprintf(s->command, sizeof s->command, "%s", h->name);
    snprintf(s->reason, sizeof s->reason, "%s", h->reason_text);
    snprintf(s->run_dir, sizeof s->run_dir, "%s", h->run_dir);
    snprintf(s->weights, sizeof s->weights, "%s", weights);
    s->steps = h->state.step;
    s->start_step = h->start_step;
    s->skipped = h->state.nonfinite_total;
    s->loss_first = h->first_loss;
    s->loss_last = h->last_loss;
    s->val_loss = h->last_val;
    if (isfinite(h->state.best_val_loss)) s->val_loss_best = h->state.best_val_loss;
    s->seconds = h->seconds;
    s->tokens_per_s = h->seconds > 0 ? h->tokens_this_run / h->seconds : NAN;
}

void th_logv(void (*log)(void *ctx, const char *line), void *ctx, const char *fmt, va_list ap) {
    if (!log) return;
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    log(ctx, line);
}

int th_is_writer(const th_run *h) { return th_dist_writer(h); }

void th_log(const th_run *h, const char *fmt, ...) {
    if (!th_dist_writer(h)) return; /* rank 0 speaks for the job */
    va_list ap;
    va_start(ap, fmt);
    th_logv(h->log, h->log_ctx, fmt, ap);
    va_end(ap);
}

cllm_status th_lock_existing(th_run *h, cllm_error *err) {
    struct stat st;
    cllm_status ds = th_dist_open(h, err);
    if (ds != CLLM_OK) return ds;
    h->dir_existed = stat(h->run_dir, &st) == 0;
    if (!th_dist_writer(h)) return CLLM_OK; /* the run directory is rank 0's */
    if (!h->dir_existed) {
        /* created only once the inputs are valid (th_open), but its parent
         * must take it: a missing or read-only parent fails before any work */
        char parent[4096];
        snprintf(parent, sizeof parent, "%s", h->run_dir);
        char *slash = strrchr(parent, '/');
        while (slash && slash > parent && slash[1] == '\0') *slash = '\0', slash = strrchr(parent, '/');
        if (!slash) snprintf(parent, sizeof parent, ".");
        else if (slash == parent) parent[1] = '\0';
        else *slash = '\0';
        cllm_status s = cllm_dir_check_writable(parent, err);
        if (s != CLLM_OK) cllm_error_prefix(err, "cannot create the run directory %s", h->run_dir);
        return s;
    }
    cllm_status s = cllm_dir_check_writable(h->run_dir, err);
    if (s == CLLM_OK) s = cllm_ckpt_lock(h->run_dir, &h->lock_fd, err);
    return s;
}

cllm_status th_open(th_run *h, cllm_error *err) {
    cllm_status st = th_dist_open(h, err);
    if (st != CLLM_OK) return st;
    if (!th_dist_writer(h)) return th_dist_share_open(h, CLLM_OK, err);
    if (h->lock_fd < 0) {
        st = cllm_dir_ensure(h->run_dir, err);
        if (st == CLLM_OK) st = cllm_dir_check_writable(h->run_dir, err);
        if (st == CLLM_OK) st = cllm_ckpt_lock(h->run_dir, &h->lock_fd, err);
        if (st != CLLM_OK) return th_dist_share_open(h, st, err);
    }
    st = cllm_ckpt_find_latest(h->run_dir, &h->latest, err);
    if (st == CLLM_OK && h->latest >= 0 && !h->resume)
        st = cllm_error_set(err, CLLM_ERR_ARG,
                            "%s already holds a checkpoint (step %" PRId64 "); pass --resume to continue it, or "
                            "choose a new --out",
                            h->run_dir, h->latest);
    return th_dist_share_open(h, st, err);
}

/* ---- loss curve and CSV -------------------------------------------------------------- */

static int curve_push(th_run *h, double step, double loss, double val) {
    if (h->curve_n == h->curve_cap) {
        size_t cap = h->curve_cap ? h->curve_cap * 2 : 1024;
        double *s = realloc(h->curve_step, cap * sizeof *s);
        if (s) h->curve_step = s;
        double *l = realloc(h->curve_loss, cap * sizeof *l);
        if (l) h->curve_loss = l;
        double *v = realloc(h->curve_val, cap * sizeof *v);
        if (v) h->curve_val = v;
        if (!s || !l || !v) return 0;
        h->curve_cap = cap;
    }
    h->curve_step[h->curve_n] = step;
    h->curve_loss[h->curve_n] = loss;
    h->curve_val[h->curve_n] = val;
    h->curve_n++;
    return 1;
}

/* Keeps the header and the complete rows of steps < keep_below, rewrites the
 * file atomically, and refills the curve from them. */
static cllm_status csv_cut_back(th_run *h, int64_t keep_below, cllm_error *err) {
    const char *path = h->csv_path;
    char *data = NULL;
    size_t len = 0;
    cllm_status st = cllm_file_read_all(path, 0, &data, &len, err);
    if (st != CLLM_OK) return st;
    char *out = malloc(len + sizeof CSV_HEADER);
    if (!out) {
        free(data);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t n = strlen(CSV_HEADER);
    memcpy(out, CSV_HEADER, n);
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
            if (!curve_push(h, (double)step, loss, val)) {
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

/* ---- resume --------------------------------------------------------------------------- */

#define PRECISION_LINE "precision="

#define GRAD_GROUPS_LINE "grad_groups=" /* not a setting: dist.c's note of how gradients were summed */

/* The next line of a config text at *p (advancing *p), skipping the
 * grad_groups line, and the precision line when skip_precision; its length. */
static size_t config_line(const char **p, int skip_precision) {
    for (;;) {
        const char *line = *p;
        size_t len = strcspn(line, "\n");
        if (!strncmp(line, GRAD_GROUPS_LINE, strlen(GRAD_GROUPS_LINE)) ||
            (skip_precision && !strncmp(line, PRECISION_LINE, strlen(PRECISION_LINE)))) {
            *p = line + len + (line[len] == '\n');
            continue;
        }
        return len;
    }
}

/* First line that differs between two config texts, as an error naming it;
 * the precision line is not compared when skip_precision. */
static cllm_status compare_config(const char *saved, const char *now, int skip_precision, const char *state_path,
                                  cllm_error *err) {
    const char *a = saved, *b = now;
    for (;;) {
        size_t la = config_line(&a, skip_precision), lb = config_line(&b, skip_precision);
        if (!*a && !*b) break;
        if (la != lb || memcmp(a, b, la) != 0) {
            char sa[256], sb[256];
            snprintf(sa, sizeof sa, "%.*s", (int)(la < 200 ? la : 200), a);
            snprintf(sb, sizeof sb, "%.*s", (int)(lb < 200 ? lb : 200), b);
            const int precision = !strncmp(sa, PRECISION_LINE, strlen(PRECISION_LINE)) ||
                                  !strncmp(sb, PRECISION_LINE, strlen(PRECISION_LINE));
            return cllm_error_set(err, CLLM_ERR_ARG,
                                  "cannot resume: the checkpoint (%s) was trained with '%s' but this run asks for "
                                  "'%s'; %s",
                                  state_path, la ? sa : precision ? PRECISION_LINE "fp32" : "(nothing)",
                                  lb ? sb : precision ? PRECISION_LINE "fp32" : "(nothing)",
                                  precision ? "pass the same --precision, or add --precision-change to switch"
                                            : "pass the same settings to resume, or start a new run directory");
        }
        a += la + (a[la] == '\n');
        b += lb + (b[lb] == '\n');
    }
    return CLLM_OK;
}

static cllm_status check_free_space(const th_run *h, cllm_error *err) {
    struct statvfs vfs;
    if (statvfs(h->run_dir, &vfs) != 0) return CLLM_OK; /* unknown: let the writes report */
    /* Room for the next checkpoint (weights + two moments): the older ones
     * are already on disk, and a save that runs out of space fails cleanly,
     * keeping the last complete one, so asking for keep+1 of them refused to
     * resume after a disk-full stop that one more checkpoint would fit. */
    double need = (double)total_n(h) * 12.0 + 65536;
    double have = (double)vfs.f_bavail * (double)vfs.f_frsize;
    if (have < need)
        return cllm_error_set(err, CLLM_ERR_IO, "%s: %.2f MB free, the next checkpoint needs about %.2f MB; free some "
                              "space (older checkpoints: --keep)",
                              h->run_dir, have / 1e6, need / 1e6);
    return CLLM_OK;
}

static cllm_status resume(th_run *h, cllm_error *err) {
    cllm_train_state saved;
    cllm_ckpt_io io = ckpt_io(h);
    int own_m, own_v;
    io.m_out = blocks_join(h, BLOCK_M, &own_m);
    io.v_out = blocks_join(h, BLOCK_V, &own_v);
    char state_path[4096];
    cllm_ckpt_path(state_path, sizeof state_path, h->run_dir, h->latest, "state");
    /* settings, data and tokenizer before the big files */
    cllm_status st = cllm_train_state_read(state_path, &saved, err);
    if (st == CLLM_OK) st = compare_config(saved.config, h->state.config, h->precision_change, state_path, err);
    if (st == CLLM_OK && h->precision_change && compare_config(saved.config, h->state.config, 0, state_path, NULL))
        th_log(h, "note: resuming at %s from a checkpoint trained at another precision (--precision-change)",
               cllm_precision_name(h->precision));
    if (st == CLLM_OK) th_dist_resume_note(h, saved.config);
    if (st == CLLM_OK && saved.data_fingerprint != h->state.data_fingerprint)
        st = cllm_error_set(err, CLLM_ERR_ARG,
                            "cannot resume: the data differs from the checkpoint's (fingerprint %016" PRIx64
                            " now, %016" PRIx64 " in %s); pass the same data files in the same order",
                            h->state.data_fingerprint, saved.data_fingerprint, state_path);
    if (st == CLLM_OK && saved.tokenizer_hash != h->state.tokenizer_hash)
        st = cllm_error_set(err, CLLM_ERR_ARG, "cannot resume: the tokenizer differs from the checkpoint's (%s)",
                            state_path);
    if (st == CLLM_OK && (!io.m_out || !io.v_out)) st = cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory", h->name);
    if (st == CLLM_OK) st = cllm_ckpt_load(h->run_dir, h->latest, &io, &saved, err);
    if (st == CLLM_OK) {
        blocks_split(h, BLOCK_M, io.m_out);
        blocks_split(h, BLOCK_V, io.v_out);
    }
    if (own_m) free(io.m_out);
    if (own_v) free(io.v_out);
    if (st != CLLM_OK) return st;
    for (int i = 0; i <= h->n_extra; i++) optim_at(h, i)->step = io.adam_step; /* updated together */
    memcpy(saved.config, h->state.config, sizeof saved.config);
    h->state = saved;
    h->resumed = 1;
    st = cllm_ckpt_prune(h->run_dir, h->keep, err); /* leftovers of the interrupted run */
    if (st != CLLM_OK) return st;
    uint64_t size;
    if (cllm_file_check_regular(h->csv_path, &size, NULL) == CLLM_OK) st = csv_cut_back(h, h->state.step, err);
    else st = cllm_file_write_atomic(h->csv_path, CSV_HEADER, strlen(CSV_HEADER), err);
    if (st == CLLM_OK)
        th_log(h, "resumed from %s/ckpt-%010" PRId64 " (step %" PRId64 " of %" PRId64 ")", h->run_dir, h->latest,
               h->state.step, h->steps);
    return st;
}

cllm_status th_begin(th_run *h, const char *config, uint64_t data_fingerprint, uint64_t tokenizer_hash,
                     uint64_t layout_hash, cllm_error *err) {
    if (h->precision == CLLM_PRECISION_FP32) /* no line: fp32 runs of every version compare equal */
        snprintf(h->state.config, sizeof h->state.config, "%s", config);
    else
        snprintf(h->state.config, sizeof h->state.config, "%s%s" PRECISION_LINE "%s", config,
                 config[0] && config[strlen(config) - 1] != '\n' ? "\n" : "", cllm_precision_name(h->precision));
    h->state.data_fingerprint = data_fingerprint;
    h->state.tokenizer_hash = tokenizer_hash;
    h->state.layout_hash = layout_hash;
    snprintf(h->csv_path, sizeof h->csv_path, "%s/train.csv", h->run_dir);
    cllm_status st = th_dist_open(h, err);
    if (st == CLLM_OK) st = th_dist_check_same(h, err);
    if (st != CLLM_OK) return st;
    th_dist_config_line(h);
    if (!th_dist_writer(h)) { /* rank 0 reads the checkpoint and sends it */
        if (h->latest >= 0) st = th_dist_share_resume(h, CLLM_OK, err);
        h->start_step = h->state.step;
        return st;
    }
    st = check_free_space(h, err);
    if (st != CLLM_OK) return st;
    if (h->latest >= 0) {
        st = th_dist_share_resume(h, resume(h, err), err);
    } else {
        st = cllm_ckpt_prune(h->run_dir, h->keep, err); /* files of a run killed before its first checkpoint */
        if (st == CLLM_OK) st = cllm_file_write_atomic(h->csv_path, CSV_HEADER, strlen(CSV_HEADER), err);
    }
    if (st != CLLM_OK) return st;
    h->start_step = h->state.step;
    h->csv = fopen(h->csv_path, "ab");
    if (!h->csv) return cllm_error_set(err, CLLM_ERR_IO, "%s: cannot open for appending: %s", h->csv_path, strerror(errno));
    return CLLM_OK;
}

/* ---- the step loop ------------------------------------------------------------------------ */

static cllm_status save_checkpoint(th_run *h, const th_hooks *hk, void *ctx, cllm_error *err) {
    /* Never let non-finite weights replace a good checkpoint. */
    for (int k = 0; k <= h->n_extra; k++) {
        const th_optim *o = optim_at(h, k);
        for (size_t i = 0; i < o->n; i++)
            if (!isfinite(o->params[i]))
                return cllm_error_set(err, CLLM_ERR_NUMERIC,
                                      "parameter %zu of block %d is %g at step %" PRId64
                                      "; not saving a checkpoint of non-finite weights",
                                      i, k, (double)o->params[i], h->state.step);
    }
    th_dist_gather_moments(h); /* ZeRO-1: the moments' slices to rank 0 */
    if (!th_dist_writer(h)) return CLLM_OK;
    if (h->csv && (fflush(h->csv) != 0 || fsync(fileno(h->csv)) != 0))
        return cllm_error_set(err, CLLM_ERR_IO, "%s: cannot flush: %s", h->csv_path, strerror(errno));
    if (hk->snapshot) hk->snapshot(ctx, &h->state);
    const double t = cllm_now_seconds();
    cllm_ckpt_io io = ckpt_io(h);
    int own_m, own_v;
    io.m = blocks_join(h, BLOCK_M, &own_m);
    io.v = blocks_join(h, BLOCK_V, &own_v);
    io.adam_step = h->opt.step;
    cllm_status st = io.m && io.v ? cllm_ckpt_save(h->run_dir, &io, &h->state, err)
                                  : cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory", h->name);
    if (own_m) free((float *)io.m);
    if (own_v) free((float *)io.v);
    if (st == CLLM_OK) st = cllm_ckpt_prune(h->run_dir, h->keep, err);
    h->save_seconds += cllm_now_seconds() - t;
    return st;
}

/* Skips or applies the update; the error when too many steps in a row were not finite. */
static cllm_status update(th_run *h, int64_t step, double loss, float lr, double *norm, cllm_error *err) {
    double norms[TH_MAX_EXTRA + 1];
    int finite = isfinite(loss);
    th_dist_reduce(h); /* the ranks' gradients summed (rank order) */
    for (int i = 0; i <= h->n_extra; i++) finite &= isfinite(norms[i] = th_dist_norm(h, i));
    *norm = norms[0];
    if (finite) {
        h->state.nonfinite_streak = 0;
        for (int i = 0; i <= h->n_extra; i++) th_dist_update(h, i, lr, norms[i]);
        return CLLM_OK;
    }
    h->state.nonfinite_streak++;
    h->state.nonfinite_total++;
    if (h->state.nonfinite_streak < h->max_nonfinite) return CLLM_OK;
    return cllm_error_set(err, CLLM_ERR_NUMERIC,
                          "stopping at step %" PRId64 ": %" PRId64 " steps in a row had a non-finite loss or gradient "
                          "(loss %g, grad norm %g); %s",
                          step, h->state.nonfinite_streak, loss, *norm, h->nonfinite_hint ? h->nonfinite_hint : "lower --lr");
}

cllm_status th_update(th_run *h, double loss, cllm_error *err) {
    return update(h, h->state.step, loss, h->lr, &h->norm, err);
}

/* Validation when due, with the early-stop bookkeeping; *val NaN when not due. */
static cllm_status maybe_evaluate(th_run *h, const th_hooks *hk, void *ctx, double *val, cllm_error *err) {
    *val = NAN;
    const int last = h->state.step >= h->steps;
    if (!hk->evaluate || !((h->eval_every > 0 && h->state.step % h->eval_every == 0) || last)) return CLLM_OK;
    const double t = cllm_now_seconds();
    cllm_status st = hk->evaluate(ctx, val, err);
    h->eval_seconds += cllm_now_seconds() - t;
    if (st != CLLM_OK) return st;
    h->last_val = *val;
    if (*val < h->state.best_val_loss) {
        h->state.best_val_loss = *val;
        h->state.evals_since_best = 0;
        if (h->patience > 0) { /* early stopping keeps the best evaluated weights */
            char path[4096];
            snprintf(path, sizeof path, "%s/best.gguf", h->run_dir);
            const double tw = cllm_now_seconds();
            st = (h->write_final ? h->write_final : h->write_weights)(path, h->weights_ctx, err);
            h->save_seconds += cllm_now_seconds() - tw;
            if (st != CLLM_OK) return st;
            h->best_step = h->state.step;
        }
    } else {
        h->state.evals_since_best++;
    }
    return CLLM_OK;
}

static cllm_status csv_row(th_run *h, int64_t step, double loss, double val, float lr, double norm, double tok_s,
                           cllm_error *err) {
    char val_s[32] = "", dist_s[512];
    if (!h->csv) return CLLM_OK; /* not rank 0 */
    if (isfinite(val)) snprintf(val_s, sizeof val_s, "%.9g", val);
    th_dist_csv_columns(h, dist_s, sizeof dist_s);
    fprintf(h->csv, "%" PRId64 ",%.9g,%s,%.9g,%.9g,%.1f%s\n", step, loss, val_s, (double)lr, norm, tok_s, dist_s);
    if (fflush(h->csv) != 0)
        return cllm_error_set(err, CLLM_ERR_IO, "%s: write failed: %s", h->csv_path, strerror(errno));
    curve_push(h, (double)step, loss, val); /* the plot is best effort */
    return CLLM_OK;
}

/* 1 when the run stops after this step, with the reason. */
static int stop_after_step(th_run *h) {
    if (h->state.step >= h->steps) {
        h->reason = CLLM_STOP_COMPLETED;
        snprintf(h->reason_text, sizeof h->reason_text, "completed %" PRId64 " step%s", h->steps, h->steps == 1 ? "" : "s");
    } else if (h->patience > 0 && h->state.evals_since_best >= h->patience) {
        h->reason = CLLM_STOP_EARLY;
        snprintf(h->reason_text, sizeof h->reason_text,
                 "early stop at step %" PRId64 ": validation loss has not improved on %.4f for %d evaluations",
                 h->state.step, h->state.best_val_loss, h->patience);
    } else if (th_dist_stop_requested(h)) {
        h->reason = CLLM_STOP_SIGNAL;
        snprintf(h->reason_text, sizeof h->reason_text,
                 "stopped by a signal after step %" PRId64 "; continue with --resume", h->state.step);
    } else {
        return 0;
    }
    return 1;
}

static void progress_text(th_run *h, const th_hooks *hk, void *ctx, double loss, float lr, char *out, size_t cap) {
    if (hk->progress) hk->progress(ctx, h, loss, lr, out, cap);
    else snprintf(out, cap, "step %" PRId64 "/%" PRId64 " loss %.4f lr %.2e", h->state.step, h->steps, loss, (double)lr);
    if (isfinite(h->last_val)) {
        size_t l = strlen(out);
        snprintf(out + l, cap - l, " val %.4f", h->last_val);
    }
}

static cllm_status loop(th_run *h, const th_hooks *hk, void *ctx, cllm_error *err);

/* The step's matrix products at h->precision: bf16 mirrors the weight
 * tensors of every optimizer's model (LoRA: the frozen base too, which then
 * is rounded once for the whole run); AdamW (cllm_vadamw) rewrites the
 * copies of the tensors it updates as it goes. */
static cllm_status precision_begin(th_run *h, cllm_error *err) {
    cllm_status st = cllm_precision_check(h->precision, err);
    if (st != CLLM_OK) return st;
    cllm_matmul_set_precision(h->precision);
    if (h->precision != CLLM_PRECISION_BF16) return CLLM_OK;
    for (int i = 0; i <= h->n_extra; i++) {
        cllm_model *m = optim_at(h, i)->model;
        if (m && cllm_model_is_mapped(m)) continue; /* QLoRA: the base's blocks are dequantized per product */
        for (int k = 0; m && k < cllm_model_num_tensors(m); k++) {
            const cllm_tensor *t = cllm_model_tensor(m, k);
            if (!cllm_bf16_mirror_add(cllm_model_params(m) + t->offset, t->numel)) break; /* no memory: round per product */
        }
    }
    th_log(h, "precision: bf16 matrix products (%s), fp32 weights, gradients and AdamW; bf16 weight copies %.1f MB",
           cllm_precision_bf16_path(), (double)cllm_bf16_mirror_bytes() / 1e6);
    return CLLM_OK;
}

static void precision_end(void) {
    cllm_matmul_set_precision(CLLM_PRECISION_FP32);
    cllm_bf16_mirror_clear();
}

cllm_status th_loop(th_run *h, const th_hooks *hk, void *ctx, cllm_error *err) {
    cllm_status st = precision_begin(h, err);
    if (st == CLLM_OK) st = loop(h, hk, ctx, err);
    precision_end();
    return st;
}

static cllm_status loop(th_run *h, const th_hooks *hk, void *ctx, cllm_error *err) {
    const double t0 = cllm_now_seconds();
    int64_t todo = h->steps - h->state.step;
    h->step_times = malloc((size_t)(todo > 0 ? todo : 1) * sizeof *h->step_times);
    if (!h->step_times) return cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory", h->name);
    snprintf(h->reason_text, sizeof h->reason_text, "completed %" PRId64 " step%s", h->steps, h->steps == 1 ? "" : "s");
    if (todo <= 0) {
        h->reason = CLLM_STOP_ALREADY_DONE;
        snprintf(h->reason_text, sizeof h->reason_text,
                 "the run already finished: its newest checkpoint is at step %" PRId64, h->state.step);
    }
    cllm_progress bar;
    cllm_progress_begin(&bar, h->name, (double)(todo > 0 ? todo : 0) * h->progress_per_step, h->progress_unit);
    bar.enabled = h->progress && th_dist_writer(h);
    char text[192] = "";
    cllm_status st = CLLM_OK;
    for (int stop = todo <= 0; !stop && st == CLLM_OK;) {
        const int64_t step = h->state.step;
        const double ts = cllm_now_seconds();
        const float lr = h->lr = cllm_schedule_lr(&h->sched, step);
        double loss = NAN, tokens = 0, norm = NAN, val = NAN;
        h->norm = NAN;
        th_dist_step_begin(h);
        st = hk->step(ctx, step, &loss, &tokens, err);
        if (st == CLLM_OK) st = th_dist_step_end(h, &loss, &tokens, cllm_now_seconds() - ts, err);
        if (st == CLLM_OK && !hk->own_updates) st = update(h, step, loss, lr, &norm, err);
        if (hk->own_updates) norm = h->norm;
        else h->norm = norm;
        if (st != CLLM_OK) break;
        const double dt = cllm_now_seconds() - ts;
        h->step_seconds += dt;
        h->step_times[h->n_step_times++] = dt;
        h->state.step = step + 1;
        h->state.tokens_seen += (uint64_t)tokens;
        h->state.elapsed_s += dt;
        h->tokens_this_run += tokens;
        if (isnan(h->first_loss)) h->first_loss = loss;
        h->last_loss = loss;
        st = maybe_evaluate(h, hk, ctx, &val, err);
        if (st == CLLM_OK) st = csv_row(h, step, loss, val, lr, norm, dt > 0 ? tokens / dt : 0, err);
        if (st != CLLM_OK) break;
        progress_text(h, hk, ctx, loss, lr, text, sizeof text);
        cllm_progress_update(&bar, (double)(h->state.step - h->start_step) * h->progress_per_step, text);
        stop = stop_after_step(h);
        if (stop || (h->save_every > 0 && h->state.step % h->save_every == 0)) st = save_checkpoint(h, hk, ctx, err);
    }
    h->seconds = cllm_now_seconds() - t0;
    if (st == CLLM_OK && bar.enabled && h->n_step_times > 0) cllm_progress_end(&bar, text);
    return st;
}

cllm_status th_finish(th_run *h, const char *file, const char *title, const char *y_label, int with_val, char *out,
                      size_t cap, cllm_error *err) {
    snprintf(out, cap, "%s/%s", h->run_dir, file);
    if (!th_dist_writer(h)) return CLLM_OK;
    const double t = cllm_now_seconds();
    cllm_status st;
    char best[4096];
    snprintf(best, sizeof best, "%s/best.gguf", h->run_dir);
    if (h->best_step > 0 && h->best_step < h->state.step && h->reason != CLLM_STOP_SIGNAL) {
        /* early stopping: the best evaluated weights are the result, not the last ones */
        if (rename(best, out) != 0)
            return cllm_error_set(err, CLLM_ERR_IO, "%s -> %s: %s", best, out, strerror(errno));
        th_log(h, "%s: %s holds the best evaluated weights, step %" PRId64 " (validation loss %.4f; the last, step %" PRId64
               ", had %.4f)", h->name, out, h->best_step, h->state.best_val_loss, h->state.step, h->last_val);
        st = CLLM_OK;
    } else {
        st = (h->write_final ? h->write_final : h->write_weights)(out, h->weights_ctx, err);
        if (st == CLLM_OK && h->best_step > 0) unlink(best); /* the final weights are the best */
    }
    h->save_seconds += cllm_now_seconds() - t;
    if (st != CLLM_OK || h->curve_n == 0) return st;
    cllm_plot_series series[2] = {{"train", h->curve_step, h->curve_loss, h->curve_n, NULL, 0, 0},
                                  {"validation", h->curve_step, h->curve_val, h->curve_n, NULL, 1, 0}};
    cllm_plot_params pp = cllm_plot_default_params();
    pp.title = title;
    pp.x_label = "step";
    pp.y_label = y_label;
    char path[4096];
    snprintf(path, sizeof path, "%s/loss.svg", h->run_dir);
    return cllm_plot_svg_write(path, &pp, series, with_val ? 2 : 1, err);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double th_median_step_seconds(th_run *h) {
    size_t n = h->n_step_times;
    if (n == 0) return 0;
    double *v = h->step_times;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
