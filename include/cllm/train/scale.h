/*
 * scale.h: scaling laws, measured (`cllm scale`): a ladder of model sizes
 * trained by cllm_pretrain_run, the laws of eval/scaling.h fitted to their
 * held-out losses, an isoFLOP sweep, and a prediction of the largest size
 * made before it is trained.
 *
 * The ladder rule (one family, so only size changes): rung r >= 1 is a
 * Llama-style model (RoPE, RMSNorm, SwiGLU, no biases, tied embeddings) with
 *     n_layer = r,  n_embd = 16 (r + 1),  head size 16 (n_head = r + 1, no GQA),
 *     ffn_hidden = 8/3 n_embd rounded to a multiple of 8,
 * so depth and width grow together (width/depth falls from 32 to about 18
 * over rungs 1..7, inside the range where Kaplan et al. 2020 found the
 * aspect ratio barely matters). Non-embedding parameters, about 12 r (16(r+1))^2:
 * rung 1 12.6K, 2 55.5K, 3 146K, 4 310K, 5 554K, 6 899K, 7 1.39M.
 *
 * The plan, from the budget and each rung's training speed measured here:
 *   - ladder: every rung at one token count D_L (35% of the planned training time, 85% of the budget);
 *   - isoFLOP: 3 compute budgets a factor 3 apart, each over the 4 fit rungs
 *     around Chinchilla's 20 tokens per parameter (the other 65%);
 *   - the last rung is held out: the parameter law L(N) is fitted to the
 *     other ladder runs, its prediction (with a bootstrap interval) written
 *     to prediction.txt, and only then is the last rung trained.
 * Each run has its own cosine schedule over its own tokens (Chinchilla), a
 * learning rate 2e-3 sqrt(128 / n_embd) with 5% warmup, and one held-out
 * loss over the whole validation split at its end. The plan is written to
 * OUT/plan.tsv before anything trains and reused on a rerun (settings
 * checked), so a rerun after kill -9 finishes the same ladder: finished runs
 * are read back, an interrupted one resumes from its checkpoint.
 *
 * OUT: plan.tsv, runs/<name>/ (a pretrain run directory each, plus
 * scale.txt once finished), prediction.txt, runs.csv, report.md,
 * loss_vs_params.svg, loss_vs_compute.svg, isoflop.svg.
 */
#ifndef CLLM_SCALE_H
#define CLLM_SCALE_H

#include <signal.h>
#include <stdint.h>

#include "cllm/core/status.h"
#include "cllm/eval/scaling.h"
#include "cllm/model/model.h"
#include "cllm/tokenizer/tokenizer.h"

#define CLLM_SCALE_MAX_RUNGS 24
#define CLLM_SCALE_MIN_RUNGS 7     /* 6 fitted + the held-out largest */
#define CLLM_SCALE_MIN_SPAN 30.0   /* fitted rungs span at least this factor in N */
#define CLLM_SCALE_MIN_STEPS 50    /* optimizer steps of the shortest run */

typedef struct {
    const char *const *data_paths; /* [n_data] text files or token shards */
    int n_data;
    const cllm_tokenizer *tokenizer; /* the shards' tokenizer (borrowed); NULL for text */
    double budget_minutes;         /* wall time for the whole ladder (default 30) */
    const int *rungs;              /* [n_rungs] increasing; NULL = 1..7 */
    int n_rungs;
    int B, T;                      /* micro-batch (default 16 x 128) */
    double val_frac;               /* default 0.1 */
    uint64_t seed;
    int threads;                   /* 0 = all CPUs */
    const char *out_dir;
    int plan_only;                 /* 1: write plan.tsv, train nothing */
    int progress;                  /* 1: each run's progress bar on stderr */
    volatile sig_atomic_t *stop_flag;
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
} cllm_scale_params;

cllm_scale_params cllm_scale_default_params(void);

/* The ladder rule above at a vocabulary and context. */
cllm_status cllm_scale_rung_config(int rung, int vocab, int context, cllm_model_config *cfg, cllm_error *err);

/* Training tokens per second of cfg here (forward + backward at B x T, the
 * median of 3 timed steps after one warm-up), at the current thread count;
 * what `cllm info` scales to a whole model. The ladder plans with the trainer's
 * own speed instead (scale.c rung_speed): at its sizes the optimizer and data
 * are a large part of a step. */
cllm_status cllm_scale_measure_speed(const cllm_model_config *cfg, int B, int T, double *tokens_per_s,
                                     cllm_error *err);

typedef struct {
    int n_runs, n_done;            /* planned; finished (all when the ladder completed) */
    int stopped;                   /* 1: stop_flag ended it early (rerun to continue) */
    double planned_seconds;        /* the plan's estimate */
    double seconds;                /* training time of all runs, over every invocation */
    cllm_scale_law param_law;      /* L(N) without the held-out rung */
    cllm_scale_law joint_law;      /* L(N, D) over every run but the held-out rung */
    double predicted, pred_lo, pred_hi; /* the held-out rung's loss: prediction, 90% interval */
    double actual;                 /* its measured loss (NaN until trained) */
    double tokens_per_param;       /* isoFLOP fitted D_opt / N_opt at the middle budget */
    int law_held;                  /* actual inside the interval, or within 2% of the prediction */
} cllm_scale_result;

/* Plans (or reads the plan), trains what is not done, fits, writes the
 * report. Validates every parameter first, naming the field. */
cllm_status cllm_scale_run(const cllm_scale_params *p, cllm_scale_result *res, cllm_error *err);

#endif
