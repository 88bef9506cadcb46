/*
 * scale.c: `cllm scale`, the scaling-law ladder of scale.h.
 *
 * Sections: the ladder rule and the speed measurement; the plan (sizing
 * every run from the budget, written to and read back from plan.tsv); the
 * runs (cllm_pretrain_run each, in its own run directory, finished ones read
 * back from their scale.txt); the fits, the prediction, the pictures and
 * the report.
 * Does not: tune hyperparameters per size beyond the learning-rate rule, or
 * train two runs at once (each run uses every thread).
 */
#include "cllm/train/scale.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cllm/core/fileio.h"
#include "cllm/core/plot.h"
#include "cllm/core/progress.h"
#include "cllm/core/rng.h"
#include "cllm/kernels/kernels.h"
#include "cllm/train/checkpoint.h"
#include "cllm/train/dataloader.h"
#include "cllm/train/pretrain.h"

#define PLAN_VERSION "cllm scale plan v1"
#define PLAN_FRACTION 0.85   /* of the budget given to training; the rest: evaluation, saving, fits */
#define LADDER_SHARE 0.35    /* of the training time: the ladder; the rest: the isoFLOP sweep */
#define N_BUDGETS 3          /* isoFLOP budgets, ISO_FACTOR apart */
#define ISO_FACTOR 3.0
#define ISO_SIZES 4          /* fitted rungs per isoFLOP budget */
#define RUN_OVERHEAD_S 1.0   /* model creation, checkpoints and the final save, per run */
#define MAX_RUNS (CLLM_SCALE_MAX_RUNGS + N_BUDGETS * ISO_SIZES)
#define BOOT 200             /* bootstrap resamples for every interval */

cllm_scale_params cllm_scale_default_params(void) {
    cllm_scale_params p;
    memset(&p, 0, sizeof p);
    p.budget_minutes = 30;
    p.B = 16;
    p.T = 128;
    p.val_frac = 0.1;
    p.seed = 1337;
    p.progress = 1;
    return p;
}

static void logf_(const cllm_scale_params *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(const cllm_scale_params *p, const char *fmt, ...) {
    if (!p->log) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    p->log(p->log_ctx, line);
}

/* ---- the ladder rule and speed ------------------------------------------------ */

static int rung_width(int rung) { return 16 * (rung + 1); }

/* The learning-rate rule: 2e-3 at width 128, scaled by 1/sqrt(width). */
static double rung_lr(int rung) { return 2e-3 * sqrt(128.0 / rung_width(rung)); }

cllm_status cllm_scale_rung_config(int rung, int vocab, int context, cllm_model_config *cfg, cllm_error *err) {
    if (rung < 1 || rung > CLLM_SCALE_MAX_RUNGS)
        return cllm_error_set(err, CLLM_ERR_ARG, "rung %d is outside 1..%d", rung, CLLM_SCALE_MAX_RUNGS);
    cllm_model_config c = cllm_model_default_config();
    c.vocab_size = vocab;
    c.context_length = context;
    c.n_layer = rung;
    c.n_embd = rung_width(rung);
    c.n_head = c.n_kv_head = rung + 1;
    c.ffn_hidden = (int)lround(8.0 / 3.0 * c.n_embd / 8.0) * 8;
    c.pos = CLLM_POS_ROPE;
    c.norm = CLLM_NORM_RMSNORM;
    c.mlp = CLLM_MLP_SWIGLU;
    c.tied_embeddings = 1;
    c.bias = 0;
    *cfg = c;
    return cllm_model_config_validate(cfg, err);
}

cllm_status cllm_scale_measure_speed(const cllm_model_config *cfg, int B, int T, double *tokens_per_s,
                                     cllm_error *err) {
    cllm_model_options o = cllm_model_default_options();
    o.max_batch = B;
    o.max_seq = T;
    o.training = 1;
    cllm_model *m = NULL;
    int32_t *tok = malloc(sizeof *tok * (size_t)B * (size_t)T * 2);
    if (!tok) return cllm_error_set(err, CLLM_ERR_NOMEM, "speed measure: out of memory");
    cllm_status st = cllm_model_create(cfg, &o, &m, err);
    if (st == CLLM_OK) {
        cllm_model_init_weights(m, 1);
        cllm_rng rng;
        cllm_rng_seed(&rng, 7);
        for (size_t i = 0; i < (size_t)B * T * 2; i++) tok[i] = (int32_t)cllm_rng_below(&rng, (uint64_t)cfg->vocab_size);
        double t[4];
        for (int k = 0; k < 4 && st == CLLM_OK; k++) {
            double t0 = cllm_now_seconds();
            float loss;
            cllm_model_zero_grad(m);
            st = cllm_model_forward(m, tok, tok + (size_t)B * T, B, T, &loss, err);
            if (st == CLLM_OK) st = cllm_model_backward(m, 1.0f / ((float)B * T), err);
            t[k] = cllm_now_seconds() - t0;
        }
        /* the median of the last 3: the first step warms caches and page tables */
        if (st == CLLM_OK) *tokens_per_s = (double)B * T / fmax(cllm_scale_quantile(t + 1, 3, 0.5), 1e-9);
    }
    cllm_model_destroy(m);
    free(tok);
    return st;
}

/* ---- the plan --------------------------------------------------------------------- */

typedef struct {
    char name[48];            /* run directory under OUT/runs/ */
    int rung;
    int64_t steps;
    double lr;
    int ladder;               /* 1: a ladder run (D_L tokens) */
    int budget;               /* isoFLOP budget index, or -1 */
    int holdout;              /* 1: the held-out largest rung */
    double est_s;             /* planned seconds */
    /* derived from the rung and steps */
    cllm_model_config cfg;
    double N, D;              /* non-embedding parameters; training tokens */
    /* results */
    int done;
    double loss, seconds;
} scale_run;

typedef struct {
    int rungs[CLLM_SCALE_MAX_RUNGS], n_rungs;
    double tps[CLLM_SCALE_MAX_RUNGS]; /* measured tokens/s per rung */
    double N[CLLM_SCALE_MAX_RUNGS];   /* non-embedding parameters per rung */
    double budgets[N_BUDGETS];        /* isoFLOP compute budgets, FLOPs (6 N D) */
    scale_run runs[MAX_RUNS];
    int n_runs;
    int vocab, eval_batches;
    double eval_tokens;
    char settings[1024];
} scale_plan;

static double rung_n(int rung, int vocab, int T) {
    cllm_model_config c;
    if (cllm_scale_rung_config(rung, vocab, T, &c, NULL) != CLLM_OK) return 0;
    return (double)cllm_model_config_num_params_non_embedding(&c);
}

static double run_seconds(const scale_plan *pl, int ri, int64_t steps, int BT) {
    return (double)steps * BT / pl->tps[ri] + pl->eval_tokens / (3.0 * pl->tps[ri]) + RUN_OVERHEAD_S;
}

/* Adds a run (or marks the existing one with the same rung and steps). */
static scale_run *plan_add(scale_plan *pl, int ri, int64_t steps, const cllm_scale_params *p) {
    int rung = pl->rungs[ri];
    for (int i = 0; i < pl->n_runs; i++)
        if (pl->runs[i].rung == rung && pl->runs[i].steps == steps) return &pl->runs[i];
    scale_run *r = &pl->runs[pl->n_runs++];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "r%d-s%" PRId64, rung, steps);
    r->rung = rung;
    r->steps = steps;
    r->budget = -1;
    r->lr = rung_lr(rung);
    r->est_s = run_seconds(pl, ri, steps, p->B * p->T);
    return r;
}

static int64_t steps_for(double tokens, int BT) {
    int64_t s = (int64_t)llround(tokens / BT);
    return s < 1 ? 1 : s;
}

/* The first of the ISO_SIZES consecutive fitted rungs used at budget C: the
 * window nearest to starting one below the rung closest to 20 tokens per
 * parameter (Chinchilla's ratio, so the minimum is likely inside), among the
 * windows whose largest size still gets CLLM_SCALE_MIN_STEPS steps. */
static int iso_window(const scale_plan *pl, double C, int B, int T) {
    int nF = pl->n_rungs - 1, best = 0, lo = 0;
    double target = log(sqrt(C / 120.0)), bd = INFINITY; /* N with D = 20 N and C = 6 N D */
    for (int i = 0; i < nF; i++) {
        double d = fabs(log(pl->N[i]) - target);
        if (d < bd) bd = d, best = i;
    }
    int want = best - 1, dist = INT32_MAX;
    for (int s = 0; s + ISO_SIZES <= nF; s++) {
        if (steps_for(C / (6.0 * pl->N[s + ISO_SIZES - 1]), B * T) < CLLM_SCALE_MIN_STEPS) continue;
        if (abs(s - want) < dist) dist = abs(s - want), lo = s;
    }
    return lo;
}

static double iso_seconds(const scale_plan *pl, double C0, int B, int T) {
    double s = 0;
    for (int j = 0; j < N_BUDGETS; j++) {
        double C = C0 * pow(ISO_FACTOR, j);
        int lo = iso_window(pl, C, B, T);
        for (int i = lo; i < lo + ISO_SIZES; i++)
            s += run_seconds(pl, i, steps_for(C / (6.0 * pl->N[i]), B * T), B * T);
    }
    return s;
}

/* Lays out every run for a budget from the measured speeds; returns the
 * shortest run's steps (0 when the per-run costs alone exceed the budget)
 * and its name in *shortest. */
static int64_t plan_layout(scale_plan *pl, const cllm_scale_params *p, double budget_minutes, const char **shortest) {
    const int BT = p->B * p->T, n = pl->n_rungs;
    double S = budget_minutes * 60.0 * PLAN_FRACTION, inv = 0, fixed = 0;
    for (int i = 0; i < n; i++) {
        inv += 1.0 / pl->tps[i];
        fixed += pl->eval_tokens / (3.0 * pl->tps[i]) + RUN_OVERHEAD_S;
    }
    double D_L = (LADDER_SHARE * S - fixed) / inv;
    /* The largest C0 (a 2% grid) whose sweep fits the isoFLOP share. */
    double C0 = 0;
    for (double c = 1e6; c < 1e22; c *= 1.02)
        if (iso_seconds(pl, c, p->B, p->T) <= (1.0 - LADDER_SHARE) * S) C0 = c;
    pl->n_runs = 0;
    *shortest = "every run";
    if (D_L < BT || C0 <= 0) return 0;
    int64_t ladder_steps = steps_for(D_L, BT), worst = INT64_MAX;
    for (int i = 0; i < n; i++) {
        scale_run *r = plan_add(pl, i, ladder_steps, p);
        r->ladder = 1;
        r->holdout = i == n - 1;
    }
    for (int j = 0; j < N_BUDGETS; j++) {
        pl->budgets[j] = C0 * pow(ISO_FACTOR, j);
        int lo = iso_window(pl, pl->budgets[j], p->B, p->T);
        for (int i = lo; i < lo + ISO_SIZES; i++) {
            scale_run *r = plan_add(pl, i, steps_for(pl->budgets[j] / (6.0 * pl->N[i]), BT), p);
            r->budget = j;
        }
    }
    for (int i = 0; i < pl->n_runs; i++)
        if (pl->runs[i].steps < worst) worst = pl->runs[i].steps, *shortest = pl->runs[i].name;
    return worst;
}

/* Sizes every run from the measured speeds; CLLM_ERR_ARG when the budget
 * leaves a run under CLLM_SCALE_MIN_STEPS steps, naming the smallest budget
 * (in 5% steps) that would fit. */
static cllm_status plan_make(scale_plan *pl, const cllm_scale_params *p, cllm_error *err) {
    const char *shortest;
    int64_t worst = plan_layout(pl, p, p->budget_minutes, &shortest);
    if (worst >= CLLM_SCALE_MIN_STEPS) return CLLM_OK;
    char name[48];
    snprintf(name, sizeof name, "%s", shortest);
    double need = p->budget_minutes;
    const char *ignored;
    while (need < 1e6 && plan_layout(pl, p, need, &ignored) < CLLM_SCALE_MIN_STEPS) need *= 1.05;
    pl->n_runs = 0;
    char why[160];
    if (worst > 0) snprintf(why, sizeof why, "%s would get %" PRId64 " optimizer steps (at least %d needed)", name, worst, CLLM_SCALE_MIN_STEPS);
    else snprintf(why, sizeof why, "setting up and evaluating the %d runs alone would fill it", pl->n_rungs);
    return cllm_error_set(err, CLLM_ERR_ARG,
                          "budget %g minutes is too small for %d sizes at this machine's speed: %s; --budget %.1f would "
                          "fit, or give fewer or smaller --sizes (at least %d)",
                          p->budget_minutes, pl->n_rungs, why, ceil(need * 10) / 10, CLLM_SCALE_MIN_RUNGS);
}

static void plan_derive(scale_plan *pl, const cllm_scale_params *p) {
    for (int i = 0; i < pl->n_runs; i++) {
        scale_run *r = &pl->runs[i];
        cllm_scale_rung_config(r->rung, pl->vocab, p->T, &r->cfg, NULL);
        r->N = (double)cllm_model_config_num_params_non_embedding(&r->cfg);
        r->D = (double)r->steps * p->B * p->T;
        r->loss = NAN;
    }
}

static cllm_status plan_write(const scale_plan *pl, const char *path, cllm_error *err) {
    cllm_atomic_file af;
    cllm_status st = cllm_atomic_begin(&af, path, err);
    if (st != CLLM_OK) return st;
    cllm_atomic_printf(&af, "# %s\nsettings\t%s\n", PLAN_VERSION, pl->settings);
    for (int i = 0; i < pl->n_rungs; i++) cllm_atomic_printf(&af, "speed\t%d\t%.17g\n", pl->rungs[i], pl->tps[i]);
    for (int j = 0; j < N_BUDGETS; j++) cllm_atomic_printf(&af, "budget\t%d\t%.17g\n", j, pl->budgets[j]);
    cllm_atomic_printf(&af, "# run\tname\trung\tsteps\tlr\tladder\tbudget\tholdout\test_seconds\n");
    for (int i = 0; i < pl->n_runs; i++) {
        const scale_run *r = &pl->runs[i];
        cllm_atomic_printf(&af, "run\t%s\t%d\t%" PRId64 "\t%.17g\t%d\t%d\t%d\t%.1f\n", r->name, r->rung, r->steps, r->lr,
                           r->ladder, r->budget, r->holdout, r->est_s);
    }
    return cllm_atomic_commit(&af, err);
}

/* Reads plan.tsv back: 1 when read, 0 when absent; CLLM_ERR_FORMAT (via st) when
 * it is malformed or was made with other settings. */
static int plan_read(scale_plan *pl, const char *path, cllm_status *st, cllm_error *err) {
    *st = CLLM_OK;
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[2048], settings[1024] = "";
    int lineno = 0, n_speed = 0, ok = 1;
    pl->n_runs = 0;
    while (ok && fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\n")] = 0;
        if (lineno == 1) {
            ok = !strcmp(line, "# " PLAN_VERSION);
        } else if (!strncmp(line, "settings\t", 9)) {
            snprintf(settings, sizeof settings, "%s", line + 9);
        } else if (!strncmp(line, "speed\t", 6)) {
            int rung;
            ok = n_speed < pl->n_rungs && sscanf(line + 6, "%d\t%lf", &rung, &pl->tps[n_speed]) == 2 &&
                 rung == pl->rungs[n_speed] && pl->tps[n_speed] > 0;
            n_speed++;
        } else if (!strncmp(line, "budget\t", 7)) {
            int j;
            double c;
            ok = sscanf(line + 7, "%d\t%lf", &j, &c) == 2 && j >= 0 && j < N_BUDGETS && c > 0;
            if (ok) pl->budgets[j] = c;
        } else if (!strncmp(line, "run\t", 4)) {
            scale_run *r = &pl->runs[pl->n_runs];
            memset(r, 0, sizeof *r);
            ok = pl->n_runs < MAX_RUNS &&
                 sscanf(line + 4, "%47s\t%d\t%" SCNd64 "\t%lf\t%d\t%d\t%d\t%lf", r->name, &r->rung, &r->steps, &r->lr,
                        &r->ladder, &r->budget, &r->holdout, &r->est_s) == 8 &&
                 r->rung >= 1 && r->rung <= CLLM_SCALE_MAX_RUNGS && r->steps >= 1 && r->lr > 0 &&
                 r->budget >= -1 && r->budget < N_BUDGETS && !strchr(r->name, '/') && r->name[0] != '.';
            if (ok) pl->n_runs++;
        } else if (line[0] != '#' && line[0] != 0) {
            ok = 0;
        }
    }
    fclose(f);
    if (!ok || n_speed != pl->n_rungs || pl->n_runs == 0) {
        *st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: line %d is not a plan line of this version (delete the file to plan again)",
                             path, lineno);
        return 1;
    }
    if (strcmp(settings, pl->settings)) {
        *st = cllm_error_set(err, CLLM_ERR_ARG,
                             "%s was planned with other settings (%s; now %s): give the same settings, another "
                             "--out, or delete the directory to start over",
                             path, settings, pl->settings);
        return 1;
    }
    return 1;
}

/* ---- the runs ------------------------------------------------------------------- */

static void run_dir(const cllm_scale_params *p, const scale_run *r, char *out, size_t cap) {
    snprintf(out, cap, "%s/runs/%s", p->out_dir, r->name);
}

static void run_result_read(const cllm_scale_params *p, scale_run *r) {
    char path[4200], dir[4096];
    run_dir(p, r, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/scale.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) return;
    double loss, secs;
    if (fscanf(f, "loss %lf\nseconds %lf\n", &loss, &secs) == 2 && loss > 0 && isfinite(loss)) {
        r->done = 1;
        r->loss = loss;
        r->seconds = secs;
    }
    fclose(f);
}

/* The trainer's settings for one run of the ladder (or a speed measurement). */
static cllm_pretrain_params run_params(const cllm_scale_params *p, const cllm_model_config *cfg, int64_t steps,
                                       double lr, const char *dir) {
    cllm_pretrain_params tp = cllm_pretrain_default_params();
    tp.data_paths = p->data_paths;
    tp.n_data = p->n_data;
    tp.val_frac = p->val_frac;
    tp.tokenizer = p->tokenizer;
    tp.model = *cfg;
    tp.B = p->B;
    tp.T = p->T;
    tp.total_batch = (int64_t)p->B * p->T;
    tp.steps = steps;
    tp.lr = (float)lr;
    tp.min_lr = (float)(lr / 10);
    tp.warmup = steps / 20 > 0 ? steps / 20 : 1;
    tp.eval_every = 0;
    tp.patience = 0;
    tp.seed = p->seed;
    tp.threads = p->threads;
    tp.run_dir = dir;
    tp.save_every = steps / 4 > 0 ? steps / 4 : 1;
    tp.keep = 1;
    tp.resume = 1;
    tp.peak_gflops = -1;
    tp.progress = p->progress;
    tp.stop_flag = p->stop_flag;
    return tp;
}

static cllm_status make_dir(const char *dir, cllm_error *err) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return cllm_error_set(err, CLLM_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
    return CLLM_OK;
}

static cllm_status run_one(const cllm_scale_params *p, const scale_plan *pl, scale_run *r, int *stopped,
                           cllm_error *err) {
    char dir[4096], path[4200];
    run_dir(p, r, dir, sizeof dir);
    cllm_status st = make_dir(dir, err);
    if (st != CLLM_OK) return st;
    cllm_pretrain_params tp = run_params(p, &r->cfg, r->steps, r->lr, dir);
    tp.eval_every = r->steps; /* one held-out loss, at the end */
    tp.eval_batches = pl->eval_batches;
    cllm_pretrain_result res;
    st = cllm_pretrain_run(&tp, &res, err);
    if (st != CLLM_OK) {
        cllm_error_prefix(err, "run %s", r->name);
        return st;
    }
    if (res.reason == CLLM_STOP_SIGNAL) {
        *stopped = 1;
        return CLLM_OK;
    }
    double loss = isfinite(res.last_val_loss) ? res.last_val_loss : res.best_val_loss;
    if (!(isfinite(loss) && loss > 0))
        return cllm_error_set(err, CLLM_ERR_NUMERIC, "run %s ended without a held-out loss (%s)", r->name, res.reason_text);
    snprintf(path, sizeof path, "%s/scale.txt", dir);
    char text[256];
    int len = snprintf(text, sizeof text, "loss %.17g\nseconds %.3f\n", loss, res.seconds);
    st = cllm_file_write_atomic(path, text, (size_t)len, err);
    /* The numbers as a rerun will read them, so this run's report and a rerun's are the same. */
    if (st == CLLM_OK) run_result_read(p, r);
    if (st == CLLM_OK && !r->done) st = cllm_error_set(err, CLLM_ERR_IO, "%s: cannot read back what was written", path);
    return st;
}

/* A rung's training speed here, measured by the trainer itself (optimizer,
 * data and all: at these sizes the per-step costs outside the matrix
 * products are a large part of a step): SPEED_STEPS steps in
 * OUT/runs/speed-r<rung>, the median tokens/s of its train.csv rows after
 * the first (step 0, which also pays for first touches). A rerun after an interrupted planning reads the same rows. */
#define SPEED_STEPS 16
static cllm_status rung_speed(const cllm_scale_params *p, int rung, int vocab, double *tps, cllm_error *err) {
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/runs/speed-r%d", p->out_dir, rung);
    cllm_model_config cfg;
    cllm_status st = cllm_scale_rung_config(rung, vocab, p->T, &cfg, err);
    if (st == CLLM_OK) st = make_dir(dir, err);
    if (st != CLLM_OK) return st;
    cllm_pretrain_params tp = run_params(p, &cfg, SPEED_STEPS, 1e-3, dir);
    tp.save_every = 0;
    tp.progress = 0;
    cllm_pretrain_result res;
    st = cllm_pretrain_run(&tp, &res, err);
    if (st != CLLM_OK) return st;
    snprintf(path, sizeof path, "%s/train.csv", dir);
    FILE *f = fopen(path, "r");
    if (!f) return cllm_error_set(err, CLLM_ERR_IO, "%s: %s", path, strerror(errno));
    double v[SPEED_STEPS];
    int n = 0;
    char line[512];
    while (fgets(line, sizeof line, f) && n < SPEED_STEPS) {
        /* step,loss,val_loss,lr,grad_norm,tokens_per_s,...: the 6th field (val_loss is often empty) */
        const char *q = line;
        for (int k = 0; k < 5 && q; k++) q = (q = strchr(q, ',')) ? q + 1 : NULL;
        double tok_s = q ? strtod(q, NULL) : 0;
        if (atoll(line) >= 1 && tok_s > 0) v[n++] = tok_s;
    }
    fclose(f);
    if (n == 0) return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: no step rows to measure the speed from", path);
    *tps = cllm_scale_quantile(v, n, 0.5);
    return CLLM_OK;
}

/* ---- fits, prediction, report ------------------------------------------------------ */

typedef struct {
    double lo[5], hi[5];  /* 90% intervals of E, A, alpha, B, beta */
    int n_ok;
} law_ci;

/* What the finished ladder's fits give: the laws with intervals, the isoFLOP
 * minima and how N_opt and D_opt grow with compute. */
typedef struct {
    cllm_scale_law param_law, joint_law;
    law_ci param_ci, joint_ci;
    cllm_scale_isoflop iso[N_BUDGETS];
    int n_iso;
    double n_exp, d_exp; /* N_opt ~ C^n_exp, D_opt ~ C^d_exp */
} scale_fits;

static void law_intervals(const cllm_scale_law *s, int n, law_ci *ci) {
    double *v = malloc(sizeof *v * (size_t)(n > 0 ? n : 1));
    ci->n_ok = n;
    for (int k = 0; k < 5; k++) {
        for (int i = 0; i < n && v; i++)
            v[i] = k == 0 ? s[i].E : k == 1 ? s[i].A : k == 2 ? s[i].alpha : k == 3 ? s[i].B : s[i].beta;
        ci->lo[k] = v ? cllm_scale_quantile(v, n, 0.05) : NAN;
        ci->hi[k] = v ? cllm_scale_quantile(v, n, 0.95) : NAN;
    }
    free(v);
}

/* Fits a law over the chosen runs with its bootstrap; samples[BOOT] kept for predictions. */
static cllm_status fit_law(const scale_plan *pl, int joint, uint64_t seed, cllm_scale_law *law, cllm_scale_law *samples,
                          law_ci *ci, cllm_error *err) {
    cllm_scale_point pts[MAX_RUNS];
    int n = 0;
    for (int i = 0; i < pl->n_runs; i++) {
        const scale_run *r = &pl->runs[i];
        if (!r->done || r->holdout || (!joint && !r->ladder)) continue;
        pts[n++] = (cllm_scale_point){r->N, r->D, r->loss};
    }
    cllm_scale_fit_params fp = cllm_scale_fit_default_params();
    fp.n_boot = BOOT;
    fp.seed = seed;
    cllm_status st = cllm_scale_fit(pts, n, joint, &fp, law, err);
    if (st == CLLM_OK) st = cllm_scale_bootstrap(pts, n, law, &fp, samples, &ci->n_ok, err);
    if (st == CLLM_OK) law_intervals(samples, ci->n_ok, ci);
    return st;
}

static const scale_run *holdout_run(const scale_plan *pl) {
    for (int i = 0; i < pl->n_runs; i++)
        if (pl->runs[i].holdout) return &pl->runs[i];
    return NULL;
}

/* prediction.txt: written once, before the held-out rung trains; read back after. */
static cllm_status prediction_get(const cllm_scale_params *p, const scale_plan *pl, const cllm_scale_law *law,
                                  cllm_scale_law *samples, int n_ok, cllm_scale_result *res, cllm_error *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/prediction.txt", p->out_dir);
    FILE *f = fopen(path, "r");
    if (f) {
        int ok = fscanf(f, "predicted %lf\nlo %lf\nhi %lf\n", &res->predicted, &res->pred_lo, &res->pred_hi) == 3;
        fclose(f);
        if (!ok) return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: not a prediction written by cllm scale (delete it to predict again)", path);
        return CLLM_OK;
    }
    const scale_run *h = holdout_run(pl);
    double *v = malloc(sizeof *v * (size_t)(n_ok > 0 ? n_ok : 1));
    if (!v) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n_ok; i++) v[i] = cllm_scale_law_loss(&samples[i], h->N, h->D);
    res->predicted = cllm_scale_law_loss(law, h->N, h->D);
    res->pred_lo = cllm_scale_quantile(v, n_ok, 0.05);
    res->pred_hi = cllm_scale_quantile(v, n_ok, 0.95);
    free(v);
    char text[512];
    int len = snprintf(text, sizeof text,
                       "predicted %.6f\nlo %.6f\nhi %.6f\n"
                       "# the held-out loss of %s (N %.0f non-embedding parameters, D %.0f tokens) by the parameter law\n"
                       "# L(N) = %.4g + %.4g / N^%.4f fitted to the other ladder runs, before %s was trained\n",
                       res->predicted, res->pred_lo, res->pred_hi, h->name, h->N, h->D, law->E, law->A, law->alpha,
                       h->name);
    return cllm_file_write_atomic(path, text, (size_t)len, err);
}

/* The fits of a finished ladder, the isoFLOP minima and the prediction
 * against the measurement (into f and res). samples[BOOT]: scratch. */
static cllm_status fit_all(const cllm_scale_params *p, const scale_plan *pl, cllm_scale_law *samples, scale_fits *f,
                           cllm_scale_result *res, cllm_error *err) {
    cllm_status st = fit_law(pl, 1, p->seed, &f->joint_law, samples, &f->joint_ci, err);
    if (st == CLLM_OK) st = fit_law(pl, 0, p->seed, &f->param_law, samples, &f->param_ci, err);
    if (st == CLLM_OK) st = prediction_get(p, pl, &f->param_law, samples, f->param_ci.n_ok, res, err);
    double Cs[N_BUDGETS], Ns[N_BUDGETS], Ds[N_BUDGETS], k;
    for (int j = 0; j < N_BUDGETS && st == CLLM_OK; j++) {
        double N[MAX_RUNS], L[MAX_RUNS];
        int m = 0;
        for (int i = 0; i < pl->n_runs; i++)
            if (pl->runs[i].budget == j) N[m] = pl->runs[i].N, L[m++] = pl->runs[i].loss;
        cllm_scale_isoflop *o = &f->iso[f->n_iso];
        st = cllm_scale_isoflop_min(N, L, m, pl->budgets[j], o, err);
        if (st == CLLM_OK) Cs[f->n_iso] = o->C, Ns[f->n_iso] = o->N_opt, Ds[f->n_iso] = o->D_opt, f->n_iso++;
    }
    if (st == CLLM_OK) st = cllm_scale_power_fit(Cs, Ns, f->n_iso, &k, &f->n_exp, err);
    if (st == CLLM_OK) st = cllm_scale_power_fit(Cs, Ds, f->n_iso, &k, &f->d_exp, err);
    if (st != CLLM_OK) return st;
    res->param_law = f->param_law;
    res->joint_law = f->joint_law;
    res->tokens_per_param = f->iso[f->n_iso / 2].D_opt / f->iso[f->n_iso / 2].N_opt;
    res->actual = holdout_run(pl)->loss;
    res->law_held = (res->actual >= res->pred_lo && res->actual <= res->pred_hi) ||
                    fabs(res->actual - res->predicted) <= 0.02 * res->predicted;
    return CLLM_OK;
}

/* Series helpers for the pictures. */
typedef struct {
    double x[256], y[256];
    size_t n;
} xy;

static void xy_add(xy *s, double x, double y) {
    if (s->n < 256) s->x[s->n] = x, s->y[s->n++] = y;
}

/* Every series of the three pictures (about 40 KB: on the heap, not the stack). */
typedef struct {
    xy ladder, held, curve, frontier, by_kind[3], budget_pts[N_BUDGETS], parab[N_BUDGETS], minima;
} plot_data;

static cllm_status plot_all(const cllm_scale_params *p, const scale_plan *pl, const scale_fits *f, plot_data *d,
                            cllm_error *err) {
    const cllm_scale_law *nl = &f->param_law, *jl = &f->joint_law;
    char path[4200];
    double nmin = INFINITY, nmax = 0, cmin = INFINITY, cmax = 0;
    for (int i = 0; i < pl->n_runs; i++) {
        const scale_run *r = &pl->runs[i];
        if (!r->done) continue;
        nmin = fmin(nmin, r->N), nmax = fmax(nmax, r->N);
        cmin = fmin(cmin, 6 * r->N * r->D), cmax = fmax(cmax, 6 * r->N * r->D);
        if (r->holdout) xy_add(&d->held, r->N, r->loss);
        else if (r->ladder) xy_add(&d->ladder, r->N, r->loss);
    }
    const scale_run *h = holdout_run(pl);
    for (int k = 0; k <= 60 && isfinite(nmin); k++) {
        double N = exp(log(nmin) + (log(fmax(nmax, h->N)) - log(nmin)) * k / 60.0);
        xy_add(&d->curve, N, cllm_scale_law_loss(nl, N, h->D));
        double C = exp(log(cmin) + (log(cmax) - log(cmin)) * k / 60.0), No = cllm_scale_law_optimal_n(jl, C);
        if (isfinite(No)) xy_add(&d->frontier, C, cllm_scale_law_loss(jl, No, C / (6 * No)));
    }
    char dlabel[96];
    snprintf(dlabel, sizeof dlabel, "fitted L(N) at D = %.3g tokens", h->D);
    cllm_plot_series s1[3] = {{"ladder runs (fitted)", d->ladder.x, d->ladder.y, d->ladder.n, NULL, 1, 1},
                              {dlabel, d->curve.x, d->curve.y, d->curve.n, NULL, 0, 0},
                              {"largest size (held out)", d->held.x, d->held.y, d->held.n, "#d62728", 1, 1}};
    cllm_plot_params pp = cllm_plot_default_params();
    pp.log_x = 1;
    pp.title = "Held-out loss against model size";
    pp.x_label = "non-embedding parameters N (log scale)";
    pp.y_label = "held-out loss (nats/token)";
    snprintf(path, sizeof path, "%s/loss_vs_params.svg", p->out_dir);
    cllm_status st = cllm_plot_svg_write(path, &pp, s1, 3, err);
    if (st != CLLM_OK) return st;

    /* loss against compute: every run, one colour per rung group, and the frontier */
    for (int i = 0; i < pl->n_runs; i++) {
        const scale_run *r = &pl->runs[i];
        if (r->done) xy_add(&d->by_kind[r->holdout ? 2 : r->budget >= 0 ? 1 : 0], 6 * r->N * r->D, r->loss);
    }
    cllm_plot_series s2[4] = {{"ladder runs", d->by_kind[0].x, d->by_kind[0].y, d->by_kind[0].n, NULL, 1, 1},
                              {"isoFLOP runs", d->by_kind[1].x, d->by_kind[1].y, d->by_kind[1].n, "#2ca02c", 1, 1},
                              {"held-out run", d->by_kind[2].x, d->by_kind[2].y, d->by_kind[2].n, "#d62728", 1, 1},
                              {"compute-optimal frontier of L(N, D)", d->frontier.x, d->frontier.y, d->frontier.n, "#333333", 0, 0}};
    pp.title = "Held-out loss against training compute";
    pp.x_label = "training compute C = 6 N D (FLOPs, log scale)";
    snprintf(path, sizeof path, "%s/loss_vs_compute.svg", p->out_dir);
    st = cllm_plot_svg_write(path, &pp, s2, 4, err);
    if (st != CLLM_OK) return st;

    /* isoFLOP curves: the runs of each budget, their parabola and its minimum */
    cllm_plot_series s3[2 * N_BUDGETS + 1];
    char labels[N_BUDGETS][64];
    static const char *const colors[N_BUDGETS] = {"#1f77b4", "#ff7f0e", "#2ca02c"};
    int ns = 0;
    for (int j = 0; j < f->n_iso; j++) {
        double lo = INFINITY, hi = 0;
        for (int i = 0; i < pl->n_runs; i++) {
            const scale_run *r = &pl->runs[i];
            if (r->done && r->budget == j) {
                xy_add(&d->budget_pts[j], r->N, r->loss);
                lo = fmin(lo, r->N), hi = fmax(hi, r->N);
            }
        }
        for (int k = 0; k <= 40 && isfinite(lo); k++) {
            double u = log(lo) + (log(hi) - log(lo)) * k / 40.0 - f->iso[j].u0;
            xy_add(&d->parab[j], exp(u + f->iso[j].u0), f->iso[j].c[0] + f->iso[j].c[1] * u + f->iso[j].c[2] * u * u);
        }
        xy_add(&d->minima, f->iso[j].N_opt, f->iso[j].loss_opt);
        snprintf(labels[j], sizeof labels[j], "C = %.2g FLOPs", f->iso[j].C);
        s3[ns++] = (cllm_plot_series){labels[j], d->budget_pts[j].x, d->budget_pts[j].y, d->budget_pts[j].n, colors[j], 1, 1};
        s3[ns++] = (cllm_plot_series){"", d->parab[j].x, d->parab[j].y, d->parab[j].n, colors[j], 0, 0};
    }
    s3[ns++] = (cllm_plot_series){"minimum of each budget", d->minima.x, d->minima.y, d->minima.n, "#000000", 1, 1};
    pp.title = "IsoFLOP curves: loss against size at fixed compute";
    pp.x_label = "non-embedding parameters N (log scale)";
    snprintf(path, sizeof path, "%s/isoflop.svg", p->out_dir);
    return cllm_plot_svg_write(path, &pp, s3, ns, err);
}

static cllm_status write_plots(const cllm_scale_params *p, const scale_plan *pl, const scale_fits *f, cllm_error *err) {
    plot_data *d = calloc(1, sizeof *d);
    if (!d) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory drawing the pictures");
    cllm_status st = plot_all(p, pl, f, d, err);
    free(d);
    return st;
}

static void human(char *buf, size_t cap, double v) {
    if (v >= 1e9) snprintf(buf, cap, "%.2fG", v / 1e9);
    else if (v >= 1e6) snprintf(buf, cap, "%.2fM", v / 1e6);
    else if (v >= 1e3) snprintf(buf, cap, "%.1fK", v / 1e3);
    else snprintf(buf, cap, "%.0f", v);
}

static cllm_status write_report(const cllm_scale_params *p, const scale_plan *pl, const scale_fits *f,
                                const cllm_scale_result *res, cllm_error *err) {
    const cllm_scale_law *nl = &f->param_law, *jl = &f->joint_law;
    const law_ci *nci = &f->param_ci, *jci = &f->joint_ci;
    const cllm_scale_isoflop *iso = f->iso;
    const int n_iso = f->n_iso;
    char path[4200];
    snprintf(path, sizeof path, "%s/runs.csv", p->out_dir);
    cllm_atomic_file af;
    cllm_status st = cllm_atomic_begin(&af, path, err);
    if (st != CLLM_OK) return st;
    cllm_atomic_printf(&af, "name,rung,n_layer,n_embd,n_params_non_embedding,n_params,tokens,tokens_per_param,flops,"
                            "ladder,isoflop_budget,holdout,lr,loss,seconds\n");
    for (int i = 0; i < pl->n_runs; i++) {
        const scale_run *r = &pl->runs[i];
        cllm_atomic_printf(&af, "%s,%d,%d,%d,%.0f,%zu,%.0f,%.3f,%.6g,%d,%d,%d,%.6g,%.6f,%.1f\n", r->name, r->rung,
                           r->cfg.n_layer, r->cfg.n_embd, r->N, cllm_model_config_num_params(&r->cfg), r->D, r->D / r->N,
                           6 * r->N * r->D, r->ladder, r->budget, r->holdout, r->lr, r->loss, r->seconds);
    }
    st = cllm_atomic_commit(&af, err);
    if (st != CLLM_OK) return st;

    snprintf(path, sizeof path, "%s/report.md", p->out_dir);
    st = cllm_atomic_begin(&af, path, err);
    if (st != CLLM_OK) return st;
    char data[1024] = "";
    for (int i = 0; i < p->n_data; i++)
        snprintf(data + strlen(data), sizeof data - strlen(data), "%s%s", i ? ", " : "", p->data_paths[i]);
    cllm_atomic_printf(&af, "# Scaling laws measured by `cllm scale`\n\n"
                            "Data: %s (vocabulary %d, %.0f%% held out). Budget %g minutes, %d threads; "
                            "the runs trained for %.1f minutes in all (planned %.1f).\n"
                            "Every run: Llama-style ladder rung (scale.h), batch %d x %d tokens, AdamW, cosine "
                            "schedule over its own tokens, one held-out loss over the whole validation split at its end.\n\n",
                       data, pl->vocab, p->val_frac * 100, p->budget_minutes, cllm_kernels_threads(), res->seconds / 60,
                       res->planned_seconds / 60, p->B, p->T);
    cllm_atomic_printf(&af, "## Runs\n\n| run | layers | width | N (non-emb.) | tokens D | D/N | compute 6ND | role | "
                            "held-out loss | time (s) |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < pl->n_runs; i++) {
        const scale_run *r = &pl->runs[i];
        char n[32], d[32], role[64];
        human(n, sizeof n, r->N);
        human(d, sizeof d, r->D);
        if (r->holdout) snprintf(role, sizeof role, "held out");
        else if (r->ladder && r->budget >= 0) snprintf(role, sizeof role, "ladder, isoFLOP %d", r->budget + 1);
        else if (r->ladder) snprintf(role, sizeof role, "ladder");
        else snprintf(role, sizeof role, "isoFLOP %d", r->budget + 1);
        cllm_atomic_printf(&af, "| %s | %d | %d | %s | %s | %.1f | %.3g | %s | %.4f | %.1f |\n", r->name, r->cfg.n_layer,
                           r->cfg.n_embd, n, d, r->D / r->N, 6 * r->N * r->D, role, r->loss, r->seconds);
    }
    cllm_atomic_printf(&af, "\n## The parameter law, without the largest size\n\n"
                            "L(N) = E + A / N^alpha over the %d ladder runs at D = %.3g tokens, Huber fit on log-loss; "
                            "90%% bootstrap intervals from %d resamples:\n\n"
                            "| | fit | 90%% interval |\n|---|---|---|\n"
                            "| E | %.4f | %.4f .. %.4f |\n| A | %.4g | %.4g .. %.4g |\n| alpha | %.4f | %.4f .. %.4f |\n\n",
                       pl->n_rungs - 1, holdout_run(pl)->D, nci->n_ok, nl->E, nci->lo[0], nci->hi[0], nl->A, nci->lo[1],
                       nci->hi[1], nl->alpha, nci->lo[2], nci->hi[2]);
    cllm_atomic_printf(&af, "## The joint law\n\nL(N, D) = E + A / N^alpha + B / D^beta over every run but the held-out "
                            "one (ladder and isoFLOP):\n\n| | fit | 90%% interval |\n|---|---|---|\n"
                            "| E | %.4f | %.4f .. %.4f |\n| A | %.4g | %.4g .. %.4g |\n| alpha | %.4f | %.4f .. %.4f |\n"
                            "| B | %.4g | %.4g .. %.4g |\n| beta | %.4f | %.4f .. %.4f |\n\n"
                            "Chinchilla (Hoffmann et al. 2022) found alpha 0.34 and beta 0.28 for large models on web text.\n\n",
                       jl->E, jci->lo[0], jci->hi[0], jl->A, jci->lo[1], jci->hi[1], jl->alpha, jci->lo[2], jci->hi[2],
                       jl->B, jci->lo[3], jci->hi[3], jl->beta, jci->lo[4], jci->hi[4]);
    cllm_atomic_printf(&af, "## IsoFLOP sweep\n\n| budget C (FLOPs) | N_opt | D_opt | D_opt / N_opt | loss at the minimum | "
                            "note |\n|---|---|---|---|---|---|\n");
    for (int j = 0; j < n_iso; j++) {
        char n[32], d[32];
        human(n, sizeof n, iso[j].N_opt);
        human(d, sizeof d, iso[j].D_opt);
        cllm_atomic_printf(&af, "| %.3g | %s | %s | %.1f | %.4f | %s |\n", iso[j].C, n, d, iso[j].D_opt / iso[j].N_opt,
                           iso[j].loss_opt, iso[j].at_edge ? "minimum at the edge of the sizes tried: the best run" : "parabola vertex");
    }
    double mid = n_iso > 0 ? iso[n_iso / 2].C : NAN, jn = cllm_scale_law_optimal_n(jl, mid);
    cllm_atomic_printf(&af, "\nAcross budgets N_opt grows as C^%.2f and D_opt as C^%.2f (Chinchilla: about 0.5 each). "
                            "Tokens per parameter at the middle budget: %.1f from the isoFLOP minimum, %.1f from the joint "
                            "law's compute-optimal size; Chinchilla's is about 20.\n\n",
                       f->n_exp, f->d_exp, res->tokens_per_param, isfinite(jn) ? mid / (6 * jn) / jn : NAN);
    const scale_run *h = holdout_run(pl);
    double e = (res->actual - res->predicted) / res->predicted * 100;
    cllm_atomic_printf(&af, "## Prediction of the largest size\n\n"
                            "Before %s (N %.0f, D %.3g) was trained, the parameter law predicted a held-out loss of "
                            "**%.4f** (90%% interval %.4f .. %.4f; prediction.txt). Measured: **%.4f**, an error of %+.2f%%.\n\n"
                            "%s\n\n",
                       h->name, h->N, h->D, res->predicted, res->pred_lo, res->pred_hi, res->actual, e,
                       res->law_held ? "**The law held**: the measured loss is inside the interval or within 2% of the prediction."
                                     : "**The law did not hold**: the measured loss is outside the interval and more than 2% "
                                       "from the prediction.");
    cllm_atomic_printf(&af, "## Pictures\n\n![loss against size](loss_vs_params.svg)\n\n"
                            "![loss against compute](loss_vs_compute.svg)\n\n![isoFLOP curves](isoflop.svg)\n\n"
                            "## Caveats\n\nThese are models of thousands to about a million parameters on one small "
                            "corpus, which the larger token counts read several times over: the exponents describe this "
                            "regime, not web-scale models, and repeated data makes extra tokens worth less than fresh ones "
                            "(Muennighoff et al. 2023).\n");
    return cllm_atomic_commit(&af, err);
}

/* ---- the whole ladder ---------------------------------------------------------------- */

static cllm_status validate(const cllm_scale_params *p, cllm_error *err) {
#define BAD(...) return cllm_error_set(err, CLLM_ERR_ARG, __VA_ARGS__)
    if (!p->data_paths || p->n_data <= 0) BAD("no data files");
    if (!p->out_dir || !*p->out_dir) BAD("no output directory");
    if (!(p->budget_minutes > 0 && p->budget_minutes <= 1e6)) BAD("budget %g minutes must be in (0, 1e6]", p->budget_minutes);
    if (p->B < 1 || p->T < 2) BAD("batch %d x %d: B must be >= 1 and T >= 2", p->B, p->T);
    if (!(p->val_frac > 0 && p->val_frac < 1)) BAD("val_frac %g must be in (0, 1): the losses are held-out losses", p->val_frac);
    int n = p->rungs ? p->n_rungs : CLLM_SCALE_MIN_RUNGS;
    if (n < CLLM_SCALE_MIN_RUNGS || n > CLLM_SCALE_MAX_RUNGS)
        BAD("%d sizes: give %d to %d (the largest is held out for the prediction)", n, CLLM_SCALE_MIN_RUNGS, CLLM_SCALE_MAX_RUNGS);
    for (int i = 0; p->rungs && i < n; i++) {
        if (p->rungs[i] < 1 || p->rungs[i] > CLLM_SCALE_MAX_RUNGS) BAD("size %d is outside 1..%d", p->rungs[i], CLLM_SCALE_MAX_RUNGS);
        if (i > 0 && p->rungs[i] <= p->rungs[i - 1]) BAD("sizes must increase (%d after %d)", p->rungs[i], p->rungs[i - 1]);
    }
#undef BAD
    return CLLM_OK;
}

cllm_status cllm_scale_run(const cllm_scale_params *p, cllm_scale_result *res, cllm_error *err) {
    memset(res, 0, sizeof *res);
    res->actual = res->predicted = NAN;
    cllm_status st = validate(p, err);
    if (st != CLLM_OK) return st;
    scale_plan *pl = calloc(1, sizeof *pl);
    cllm_scale_law *samples = malloc(sizeof *samples * BOOT);
    cllm_loader *loader = NULL;
    int lock_fd = -1;
    if (!pl || !samples) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
        goto done;
    }
    pl->n_rungs = p->rungs ? p->n_rungs : CLLM_SCALE_MIN_RUNGS;
    for (int i = 0; i < pl->n_rungs; i++) pl->rungs[i] = p->rungs ? p->rungs[i] : i + 1;

    /* The data: vocabulary, validation windows, fingerprint for the settings line. */
    cllm_loader_params lp = cllm_loader_default_params();
    lp.B = p->B;
    lp.T = p->T;
    lp.val_frac = p->val_frac;
    lp.seed = p->seed;
    for (int i = 0; i < p->n_data; i++) {
        struct stat sb;
        if (stat(p->data_paths[i], &sb) == 0 && sb.st_size == 0) {
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: the file is empty: give text to train on", p->data_paths[i]);
            goto done;
        }
    }
    st = cllm_loader_open(&loader, p->data_paths, p->n_data, &lp, err);
    if (st != CLLM_OK) { /* a data problem, whatever the loader calls it: exit 1, not a usage error */
        cllm_error_prefix(err, "%s%s", p->data_paths[0], p->n_data > 1 ? " (and the other --data files)" : "");
        if (st == CLLM_ERR_ARG) st = CLLM_ERR_FORMAT;
        goto done;
    }
    if (cllm_loader_n_train(loader) < (uint64_t)p->T + 1 || cllm_loader_n_val_windows(loader) == 0) {
        st = cllm_error_set(err, CLLM_ERR_ARG,
                            "%s: %" PRIu64 " training and %" PRIu64 " held-out tokens: each needs at least --seq + 1 = %d "
                            "(give more text or a larger --val-frac)",
                            p->data_paths[0], cllm_loader_n_train(loader), cllm_loader_n_val(loader), p->T + 1);
        goto done;
    }
    pl->vocab = (int)cllm_loader_vocab_size(loader);
    uint64_t windows = cllm_loader_n_val_windows(loader);
    pl->eval_batches = (int)((windows + (uint64_t)p->B - 1) / (uint64_t)p->B);
    if (pl->eval_batches > 1000) pl->eval_batches = 1000;
    pl->eval_tokens = (double)pl->eval_batches * p->B * p->T;
    int off = snprintf(pl->settings, sizeof pl->settings, "data=%016" PRIx64 " vocab=%d budget=%g B=%d T=%d val_frac=%g seed=%" PRIu64 " sizes=",
                       cllm_loader_fingerprint(loader), pl->vocab, p->budget_minutes, p->B, p->T, p->val_frac, p->seed);
    for (int i = 0; i < pl->n_rungs && off < (int)sizeof pl->settings; i++)
        off += snprintf(pl->settings + off, sizeof pl->settings - (size_t)off, "%s%d", i ? "," : "", pl->rungs[i]);
    cllm_loader_free(loader);
    loader = NULL;
    for (int i = 0; i < pl->n_rungs; i++) pl->N[i] = rung_n(pl->rungs[i], pl->vocab, p->T);
    /* The fitted rungs must span CLLM_SCALE_MIN_SPAN in N. */
    double span = pl->N[pl->n_rungs - 2] / pl->N[0];
    if (!(span >= CLLM_SCALE_MIN_SPAN)) {
        st = cllm_error_set(err, CLLM_ERR_ARG,
                            "the fitted sizes (all but the largest) span %.1fx in non-embedding parameters; at least %.0fx "
                            "is needed: widen --sizes (e.g. 1,2,3,4,5,6,7)", span, CLLM_SCALE_MIN_SPAN);
        goto done;
    }

    char path[4200];
    snprintf(path, sizeof path, "%s/runs", p->out_dir);
    st = make_dir(p->out_dir, err);
    if (st == CLLM_OK) st = cllm_ckpt_lock(p->out_dir, &lock_fd, err);
    if (st == CLLM_OK) st = make_dir(path, err);
    if (st != CLLM_OK) goto done;
    cllm_kernels_set_threads(p->threads);
    snprintf(path, sizeof path, "%s/plan.tsv", p->out_dir);
    if (plan_read(pl, path, &st, err)) {
        if (st != CLLM_OK) goto done;
        logf_(p, "scale: continuing the plan in %s", path);
    } else {
        for (int i = 0; i < pl->n_rungs && st == CLLM_OK; i++) {
            st = rung_speed(p, pl->rungs[i], pl->vocab, &pl->tps[i], err);
            if (st == CLLM_OK)
                logf_(p, "scale: size %d (%d layer%s x %d wide, %.0f non-embedding parameters): %.0f tokens/s here",
                      pl->rungs[i], pl->rungs[i], pl->rungs[i] == 1 ? "" : "s", rung_width(pl->rungs[i]), pl->N[i],
                      pl->tps[i]);
        }
        if (st == CLLM_OK) st = plan_make(pl, p, err);
        if (st == CLLM_OK) st = plan_write(pl, path, err);
        if (st != CLLM_OK) goto done;
    }
    plan_derive(pl, p);
    res->n_runs = pl->n_runs;
    for (int i = 0; i < pl->n_runs; i++) res->planned_seconds += pl->runs[i].est_s;
    logf_(p, "scale: %d runs planned, about %.1f minutes of training (plan in %s)", pl->n_runs, res->planned_seconds / 60, path);
    if (p->plan_only) goto done;

    /* Every run but the held-out one, smallest compute first within each group. */
    double left = res->planned_seconds; /* planned seconds of the runs not yet passed */
    int stopped = 0;
    for (int pass = 0; pass < 2 && st == CLLM_OK && !stopped; pass++) {
        for (int i = 0; i < pl->n_runs && st == CLLM_OK && !stopped; i++) {
            scale_run *r = &pl->runs[i];
            if (r->holdout != pass) continue;
            run_result_read(p, r);
            if (!r->done) {
                if (pass == 1) {
                    /* The prediction is made (and written) before the held-out size trains. */
                    cllm_scale_law law;
                    law_ci ci;
                    st = fit_law(pl, 0, p->seed, &law, samples, &ci, err);
                    if (st == CLLM_OK) st = prediction_get(p, pl, &law, samples, ci.n_ok, res, err);
                    if (st != CLLM_OK) break;
                    logf_(p, "scale: predicted held-out loss of %s: %.4f (90%% interval %.4f .. %.4f), written before training it",
                          r->name, res->predicted, res->pred_lo, res->pred_hi);
                }
                logf_(p, "scale: run %s: %d layer%s x %d wide, %.0f tokens (%.1f per parameter), about %.0f s; "
                         "about %.1f minutes of training to go",
                      r->name, r->cfg.n_layer, r->cfg.n_layer == 1 ? "" : "s", r->cfg.n_embd, r->D, r->D / r->N,
                      r->est_s, left / 60);
                st = run_one(p, pl, r, &stopped, err);
            }
            left -= r->est_s;
            if (r->done) res->seconds += r->seconds, res->n_done++;
        }
    }
    if (st != CLLM_OK) goto done;
    if (stopped) {
        res->stopped = 1;
        logf_(p, "scale: stopped after %d of %d runs; rerun the same command to continue", res->n_done, pl->n_runs);
        goto done;
    }

    scale_fits *f = calloc(1, sizeof *f);
    st = f ? fit_all(p, pl, samples, f, res, err) : cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    if (st == CLLM_OK) st = write_plots(p, pl, f, err);
    if (st == CLLM_OK) st = write_report(p, pl, f, res, err);
    free(f);
done:
    if (lock_fd >= 0) cllm_ckpt_unlock(lock_fd, p->out_dir);
    cllm_loader_free(loader);
    free(samples);
    free(pl);
    return st;
}
