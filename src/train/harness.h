/*
 * harness.h: the training harness every trainer in src/train/ runs on
 * (pretrain.c, sft.c, dpo.c, reward.c, ppo.c, grpo.c); not public API.
 *
 * It owns what does not depend on the method: the run directory (checked
 * writable and locked before the first step), exact resume (settings, data
 * and tokenizer compared first, then weights, AdamW moments and the training
 * state read back), checkpoints every save_every steps, at the end and on a
 * stop request (SIGINT/SIGTERM raise stop_flag: the step finishes, a
 * checkpoint is saved, the loop returns), train.csv (appended and flushed
 * every step, fsync'ed before each checkpoint, cut back to the checkpoint's
 * step on resume: never emptied), the loss curve and its plot, AdamW over
 * the trainable tensors with global-norm clipping fused into the update,
 * the non-finite-step streak, evaluation cadence, early stopping and the
 * progress bar.
 *
 * A trainer plugs in its batch source and loss as th_hooks.step (fill the
 * gradients of one optimizer step), optionally a validation loss, the data
 * position to checkpoint, and a progress line; its weights file through the
 * checkpoint callbacks (checkpoint.h).
 *
 * Order of one step (also the order resume reproduces): lr = schedule(step);
 * hooks.step (zero grads, batches, forward, backward); norm = global grad
 * norm; loss or norm not finite: skip and count (max_nonfinite in a row is
 * CLLM_ERR_NUMERIC), else AdamW; maybe evaluate; CSV row; stop checks;
 * maybe checkpoint. A trainer that takes several updates per step (PPO and
 * GRPO: epochs over one rollout) sets hooks.own_updates and calls th_update
 * after filling each update's gradients instead.
 *
 * Precision: th_loop runs every matrix product of the step at h->precision
 * (kernels.h's matmul precision; bf16 keeps the weights of every optimizer's
 * model mirrored in bf16, rewritten by each AdamW update), then restores fp32.
 * Master weights, gradients and moments stay fp32 either way, so a
 * checkpoint does not depend on it; the run's config records it, and a
 * resume at another precision is refused unless precision_change is set.
 *
 * Besides h->opt, a run may train up to TH_MAX_EXTRA more blocks (a value
 * model, a scalar head), each an optimizer of its own, clipped by its own
 * norm, updated (or skipped) together with opt and checkpointed with it.
 * Without write_weights the checkpoint's weights are every optimizer's
 * parameter block in one float file (ext "params"), and write_final writes
 * the model at the end.
 */
#ifndef CLLM_TRAIN_HARNESS_H
#define CLLM_TRAIN_HARNESS_H

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>

#include "cllm/train/checkpoint.h"
#include "cllm/model/gguf_io.h"
#include "cllm/model/model.h"
#include "cllm/train/optim.h"
#include "cllm/core/progress.h"
#include "cllm/core/status.h"
#include "cllm/train/pretrain.h"
#include "cllm/train/summary.h"

/* ---- AdamW over a set of trainable tensors ------------------------------------ */

typedef struct {
    float *params, *grads;     /* [n] the trainable block and its gradients (borrowed) */
    float *m, *v;              /* [n] AdamW moments (owned) */
    size_t n;
    cllm_model *model;         /* tensor table source; NULL: one flat tensor without decay */
    const cllm_tensor *(*tensor)(const cllm_model *m, int i);
    int n_tensors;
    int64_t step;              /* Adam's step count (checkpointed) */
    cllm_adamw_params hp;      /* betas, eps, weight decay; lr and grad_scale set per step */
    float clip;                /* max global grad norm; 0 = off */
} th_optim;

/* Over the model's trainable tensors (lora = 0) or its LoRA adapters (lora = 1). */
cllm_status th_optim_init_model(th_optim *o, cllm_model *m, int lora, const cllm_adamw_params *hp, float clip,
                                cllm_error *err);
/* Over a flat array p[n] with gradients g[n] (a scalar head), no decay. */
cllm_status th_optim_init_flat(th_optim *o, float *p, float *g, size_t n, const cllm_adamw_params *hp, float clip,
                               cllm_error *err);
/* Global L2 norm of the gradients. */
double th_optim_norm(const th_optim *o);
/* One AdamW step at lr with the gradients scaled to clip (norm from th_optim_norm). */
void th_optim_update(th_optim *o, float lr, double norm);
/* The same step for the elements [lo, hi) only (ZeRO-1's slice); counts one step. */
void th_optim_update_range(th_optim *o, float lr, double norm, size_t lo, size_t hi);
void th_optim_free(th_optim *o);

/* ---- the run ---------------------------------------------------------------- */

typedef struct th_run th_run;
typedef struct th_dist th_dist; /* data parallelism over MPI (dist_internal.h) */

#define TH_MAX_EXTRA 2

typedef struct {
    /* Fills the gradients of optimizer step `step` (zero them, take the
     * step's batches, forward, backward). *loss: the step's training loss
     * (NaN/Inf skips the update); *tokens: tokens processed (CSV rate). */
    cllm_status (*step)(void *ctx, int64_t step, double *loss, double *tokens, cllm_error *err);
    /* Validation loss, or NULL for none. Due every eval_every steps and at the end. */
    cllm_status (*evaluate)(void *ctx, double *val, cllm_error *err);
    /* Writes the data position (and RNG streams) into s before a checkpoint; may be NULL. */
    void (*snapshot)(void *ctx, cllm_train_state *s);
    /* Progress text after a step; NULL: "step s/S loss x lr y". */
    void (*progress)(void *ctx, const th_run *h, double loss, float lr, char *out, size_t cap);
    /* 1: step updates through th_update itself (any number of times) */
    int own_updates;
} th_hooks;

struct th_run {
    /* settings, filled by the trainer before th_open */
    const char *name;          /* "pretrain", "sft", ...: messages and the progress label */
    const char *run_dir;
    int resume;                /* 1: continue from the newest checkpoint */
    int keep;                  /* complete checkpoints kept (>= 1) */
    cllm_precision precision;  /* the matrix products of th_loop (a config line when not fp32) */
    int precision_change;      /* 1: resume from a checkpoint of another precision (noted) */
    int64_t steps;             /* length of the whole run */
    int64_t save_every;        /* 0: at the end and on stop only */
    int64_t eval_every;        /* 0: at the end only (when hooks.evaluate) */
    int patience;              /* evaluations without improvement before stopping; 0 = off. When on,
                                  each better evaluation writes RUN_DIR/best.gguf and th_finish makes
                                  the best evaluated weights RUN_DIR/<file> (and says so) */
    int max_nonfinite;         /* non-finite steps in a row before giving up */
    const char *nonfinite_hint; /* appended to that error, e.g. "lower --lr" */
    cllm_schedule sched;
    th_optim opt;              /* trainer initialises it (th_optim_init_*) */
    th_optim extra[TH_MAX_EXTRA]; /* [n_extra] more trained blocks (th_optim_init_*) */
    int n_extra;
    const char *weights_ext;   /* checkpoint weights: extension and callbacks (checkpoint.h); */
    cllm_ckpt_model_writer write_weights; /* NULL: the optimizers' blocks as one "params" file */
    cllm_ckpt_model_reader read_weights;
    cllm_ckpt_model_writer write_final; /* th_finish's file; NULL: write_weights */
    void *weights_ctx;
    int progress;              /* 1: progress bar on stderr */
    const char *progress_unit; /* "tok" or "step" */
    double progress_per_step;  /* progress units per step */
    volatile sig_atomic_t *stop_flag;
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
    int data_parallel;         /* 1: hooks.step computes only the units th_unit gives this rank */
    char model_name[128];      /* general.name of the weights files: "cllm-<name>" (th_describe) */
    char model_description[512]; /* general.description: what the model was trained to do (th_describe) */
    /* state */
    cllm_train_state state;    /* after th_begin: the checkpoint's when resumed */
    int resumed;               /* th_begin loaded a checkpoint */
    int64_t start_step;
    int64_t latest;            /* newest complete checkpoint at th_open, -1 none */
    int lock_fd, dir_existed;
    float lr;                  /* this step's learning rate (for th_update) */
    double norm;               /* the last update's grad norm of opt (NaN: skipped) */
    FILE *csv;
    char csv_path[4096];
    int64_t best_step;         /* step of RUN_DIR/best.gguf, written by this process; 0 = none */
    double *curve_step, *curve_loss, *curve_val; /* [curve_n] for the plot */
    size_t curve_n, curve_cap;
    /* results of th_loop */
    cllm_stop_reason reason;
    char reason_text[256];
    double first_loss, last_loss, last_val; /* NaN when none */
    double tokens_this_run;
    double seconds;            /* wall time of th_loop */
    double step_seconds;       /* sum of step times (hooks.step + update) */
    double *step_times;        /* [n_step_times] this run's step times */
    size_t n_step_times;
    double eval_seconds, save_seconds;
    th_dist *dist;             /* ranks, gradient groups, ZeRO-1 slices (NULL before th_open) */
};

void th_init(th_run *h);
void th_free(th_run *h);
/* Names the weights files this run writes (general.name: "cllm-<h->name>")
 * and says what they were trained to do (general.description: "<task>;
 * <h->name> on <data file's name>[, from <base path as given>]"; base may
 * be NULL). Neither depends on the run directory, so runs of the same inputs
 * in two directories (resume tests, ranks) still write the same bytes.
 * Call after name is set. */
void th_describe(th_run *h, const char *task, const char *data_path, const char *base_path);
/* Save parameters (f32, no extra keys) carrying th_describe's name and description. */
cllm_model_save_params th_save_params(const th_run *h);
/* printf-style line to the trainer's log callback (none when log is NULL). */
void th_log(const th_run *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void th_logv(void (*log)(void *ctx, const char *line), void *ctx, const char *fmt, va_list ap);

/* An existing run directory is checked writable and locked before the data
 * is read, so a second trainer fails at once. */
cllm_status th_lock_existing(th_run *h, cllm_error *err);
/* Creates (one level) and locks a missing run directory, after the inputs
 * validated (so bad input leaves nothing behind), finds the newest
 * checkpoint and refuses one without `resume`. */
cllm_status th_open(th_run *h, cllm_error *err);
/* Fresh run (weights already initialised by the trainer): prunes files of a
 * run killed before its first checkpoint, starts train.csv. Resume: compares
 * config (the first differing line is named), data fingerprint and
 * tokenizer hash, loads the checkpoint (weights through read_weights,
 * moments into opt), cuts train.csv back to its step. The trainer then
 * restores its data position from h->state. */
cllm_status th_begin(th_run *h, const char *config, uint64_t data_fingerprint, uint64_t tokenizer_hash,
                     uint64_t layout_hash, cllm_error *err);
/* The step loop, from h->state.step to h->steps or a stop. */
cllm_status th_loop(th_run *h, const th_hooks *hk, void *ctx, cllm_error *err);
/* One AdamW update of every optimizer at this step's lr (or a counted skip
 * when loss or a norm is not finite), for hooks with own_updates. */
cllm_status th_update(th_run *h, double loss, cllm_error *err);
/* Writes the final weights to RUN_DIR/<file> (write_weights) into out[cap],
 * and the loss plot RUN_DIR/loss.svg when any step ran. */
cllm_status th_finish(th_run *h, const char *file, const char *title, const char *y_label, int with_val, char *out,
                      size_t cap, cllm_error *err);
/* The run's summary after th_finish (out: its weights path): command,
 * reason, steps, first/last training loss of this process, validation
 * losses, skipped steps, time and tokens/s. The trainer adds its metric. */
void th_summarize(const th_run *h, const char *weights, cllm_train_summary *s);
/* Data parallelism (docs/MPI.md): a data-parallel trainer (data_parallel = 1)
 * splits each step's global batch into n units (micro-batches, pairs) and,
 * in unit order, calls th_unit(h, i, n) for every unit before computing it:
 * 1 when this rank computes unit i. Units skipped here must still advance
 * the data position as if computed, so every rank keeps the same state.
 * The step hook then reports this rank's share of the loss (normalised by
 * the whole batch) and its tokens; the harness adds the ranks' gradients,
 * losses and tokens in rank order. */
int th_unit(th_run *h, int i, int n);
/* The same split for a trainer that computes a group of units in one batch:
 * th_groups(h) groups (1 unless data parallel), group g holds units
 * [*lo, *hi) of n; 1 when this rank computes it (call in group order). */
int th_groups(const th_run *h);
int th_group(th_run *h, int g, int n, int *lo, int *hi);
/* 1 on the rank that prints and writes files (rank 0; always with one rank). */
int th_is_writer(const th_run *h);
/* Median step time of this run (0 when none). */
double th_median_step_seconds(th_run *h);

#endif
