/*
 * pretrain.h: pre-training by next-token prediction, as a library call.
 *
 * cllm_pretrain_run builds (or resumes) a model, reads the data
 * (dataloader.h), and runs the step loop: B x T micro-batches accumulated to
 * total_batch tokens, the mean cross-entropy's gradient, global-norm
 * clipping, AdamW with weight decay on the tensors the model flags (its
 * matrices), the learning-rate schedule, validation every eval_every steps
 * over a fixed set of eval_batches validation batches, early stopping after
 * `patience` evaluations without improvement, and checkpoints
 * (checkpoint.h) every save_every steps, at the end and on a stop request.
 *
 * A step whose loss or gradient norm is NaN/Inf is skipped (no update) and
 * counted; max_nonfinite such steps in a row stop the run with
 * CLLM_ERR_NUMERIC. Results are deterministic for a given seed and thread
 * count, and a resumed run reproduces the uninterrupted one bit for bit.
 *
 * Run directory (created if missing, one level): lock, ckpt-<step>.*
 * (checkpoint.h), train.csv (step,loss,val_loss,lr,grad_norm,tokens_per_s;
 * appended and flushed every step, fsync'ed before each checkpoint, cut back
 * to the checkpoint on resume), loss.svg (train and validation loss, written
 * at the end), and the final weights model.gguf.
 *
 * Weights (checkpoints and the final model) are f32 GGUF files written by
 * cllm_model_save_gguf (model/gguf_io.h), which round-trip bit-exactly. They
 * carry the tokenizer (tokenizer.ggml.* keys, so `cllm generate` and
 * llama.cpp can use the file alone) and cllm.tokenizer_hash (0 = byte-level
 * data). Text data gets the byte-level vocabulary; token shards need the
 * tokenizer they were made with (params.tokenizer, checked against the
 * shards' recorded hash).
 *
 * Output: progress on stderr through progress.h (when `progress`), other
 * messages through the `log` callback; nothing on stdout.
 */
#ifndef CLLM_TRAINER_H
#define CLLM_TRAINER_H

#include <signal.h>
#include <stdint.h>

#include "cllm/kernels/kernels.h"
#include "cllm/train/dataloader.h"
#include "cllm/model/model.h"
#include "cllm/train/optim.h"
#include "cllm/core/status.h"
#include "cllm/train/summary.h"
#include "cllm/tokenizer/tokenizer.h"

typedef struct {
    /* data */
    const char *const *data_paths; /* [n_data] text files or token shards */
    int n_data;
    double val_frac;               /* held-out fraction at the end of the data */
    cllm_data_order order;
    const cllm_tokenizer *tokenizer; /* the shards' tokenizer (borrowed); NULL for text */
    /* model: vocab_size is replaced by the data's vocabulary */
    cllm_model_config model;
    /* batch */
    int B, T;                      /* micro-batch */
    int64_t total_batch;           /* tokens per optimizer step, a multiple of B*T */
    int64_t steps;                 /* optimizer steps in the whole run */
    /* optimizer and schedule */
    cllm_schedule_kind schedule;
    float lr, min_lr;
    int64_t warmup;
    float wsd_decay_frac;          /* WSD only */
    float weight_decay, beta1, beta2, eps;
    float clip;                    /* max global grad norm; 0 = no clipping */
    /* evaluation and stopping */
    int64_t eval_every;            /* 0 = never (then no early stop) */
    int eval_batches;              /* validation batches per evaluation */
    int patience;                  /* evaluations without improvement; 0 = off */
    int max_nonfinite;             /* consecutive NaN/Inf steps before giving up */
    /* reproducibility */
    uint64_t seed;
    int threads;                   /* 0 = all online CPUs */
    /* output */
    const char *run_dir;
    int64_t save_every;            /* 0 = only at the end / on stop */
    int keep;                      /* complete checkpoints kept (>= 1) */
    int resume;                    /* 1: continue from the newest complete checkpoint */
    cllm_precision precision;      /* matrix products: fp32 or bf16 (docs/PRECISION.md) */
    int precision_change;          /* 1: a resume may switch precision */
    double peak_gflops;            /* MFU denominator; 0 = measure, < 0 = no MFU */
    int progress;                  /* 1: progress bar on stderr */
    volatile sig_atomic_t *stop_flag; /* when it becomes non-zero: finish the step, save, return */
    void (*log)(void *ctx, const char *line); /* messages (may be NULL) */
    void *log_ctx;
    /* Fault injection for tests (0 in normal use): steps in
     * [fault_nonfinite_from, fault_nonfinite_from + fault_nonfinite_count)
     * get a NaN gradient, as an overflow would produce. */
    int64_t fault_nonfinite_from;
    int64_t fault_nonfinite_count;
} cllm_pretrain_params;

/* nanoGPT's shakespeare-char defaults (B 12, T 64, lr 1e-3 cosine to 1e-4,
 * warmup 100, 2000 steps, wd 0.1, betas 0.9/0.99, clip 1), no data, no run dir. */
cllm_pretrain_params cllm_pretrain_default_params(void);

typedef enum {
    CLLM_STOP_COMPLETED = 0, /* all steps done */
    CLLM_STOP_EARLY,         /* validation loss stopped improving */
    CLLM_STOP_SIGNAL,        /* stop_flag was raised */
    CLLM_STOP_ALREADY_DONE,  /* resume found a checkpoint at or past `steps` */
    CLLM_STOP_COUNT
} cllm_stop_reason;

typedef struct {
    cllm_stop_reason reason;
    char reason_text[256];
    int64_t start_step;          /* 0, or the step resumed from */
    int64_t steps_done;          /* optimizer steps completed in total */
    double last_train_loss;      /* NaN if no step ran in this process */
    double last_val_loss;        /* NaN if never evaluated */
    double best_val_loss;        /* INFINITY if never evaluated */
    int64_t nonfinite_skipped;
    double seconds;              /* wall time of the step loop in this process */
    double tokens_per_s;         /* training tokens per second in this process */
    double mfu;                  /* model FLOPs utilisation, NaN when unknown */
    size_t n_params;
    char weights_path[4096];     /* final weights file */
    cllm_train_summary summary;  /* the fields above in the shape every trainer prints (summary.h) */
} cllm_pretrain_result;

/* Validates every parameter (naming the field on error) before touching files. */
cllm_status cllm_pretrain_validate(const cllm_pretrain_params *p, cllm_error *err);

cllm_status cllm_pretrain_run(const cllm_pretrain_params *p, cllm_pretrain_result *result,
                              cllm_error *err);

#endif
