/*
 * sft.h: supervised fine-tuning of a GGUF model on chat data, as a library
 * call, optionally with LoRA adapters on the frozen base.
 *
 * cllm_sft_run loads the base model (with its tokenizer), reads the JSONL
 * data (chat_data.h), and runs the step loop: each optimizer step takes
 * B*accum rows of T tokens; the loss is the mean cross-entropy over the
 * assistant (mask = 1) tokens of the whole step; global-norm clipping;
 * AdamW on every trainable tensor (all base tensors for full fine-tuning,
 * only the adapters with LoRA); the learning-rate schedule; validation on
 * a separate file every eval_every steps; checkpoints (checkpoint.h) every
 * save_every steps and at the end.
 *
 * Rows: unpacked, one example per row, right-padded with masked positions.
 * Packed (pack = 1): examples are laid greedily in order into rows of T
 * tokens; a per-position segment id keeps attention inside each example and
 * positions restart at 0 for each example (cllm_model_forward_packed), so a
 * packed row computes exactly what the examples would alone.
 *
 * Run directory: lock, ckpt-<step>.* (full fine-tuning: model GGUF; LoRA:
 * adapter GGUF + moments of the adapters only), train.csv
 * (step,loss,val_loss,lr,grad_norm,tokens_per_s), loss.svg, and the result:
 * model.gguf (full fine-tuning; carries the tokenizer and
 * tokenizer.chat_template) or adapter.gguf (LoRA).
 *
 * Order of examples: shuffled each epoch from `seed` (a permutation per
 * epoch); results are deterministic for a seed and thread count. Resume
 * (resume = 1) continues from the newest checkpoint exactly.
 */
#ifndef CLLM_SFT_H
#define CLLM_SFT_H

#include <signal.h>
#include <stdint.h>

#include "cllm/kernels/kernels.h"
#include "cllm/train/chat_data.h"
#include "cllm/model/lora.h"
#include "cllm/model/model.h"
#include "cllm/train/optim.h"
#include "cllm/core/status.h"
#include "cllm/train/summary.h"

typedef struct {
    const char *model_path;        /* base GGUF (with tokenizer metadata, or 256 tokens = bytes) */
    const char *data_path;         /* training JSONL */
    const char *val_path;          /* validation JSONL, or NULL */
    const char *chat_template;     /* NAME|FILE (cllm_chat_template_load), NULL = the model file's or the tokenizer's */
    int pack;                      /* 1: pack examples into rows (see above) */
    int truncate;                  /* 1: cut examples longer than T (counted) instead of failing */
    /* batch */
    int B, T;                      /* rows per micro-batch, row length (<= the model's context) */
    int accum;                     /* micro-batches per optimizer step */
    int64_t steps;                 /* optimizer steps; 0 = `epochs` passes over the data */
    int epochs;                    /* used when steps = 0 */
    /* optimizer */
    cllm_schedule_kind schedule;
    float lr, min_lr;
    int64_t warmup;
    float weight_decay, beta1, beta2, eps;
    float clip;
    /* LoRA: rank 0 = full fine-tuning */
    cllm_lora_config lora;
    /* evaluation, output */
    int64_t eval_every;            /* 0 = only at the end (when val_path) */
    uint64_t seed;
    int threads;
    const char *run_dir;
    int64_t save_every;            /* 0 = at the end only */
    int keep;
    int resume;
    cllm_precision precision;      /* matrix products: fp32 or bf16 (docs/PRECISION.md) */
    int precision_change;          /* 1: a resume may switch precision */
    int progress;
    int max_nonfinite;
    volatile sig_atomic_t *stop_flag;
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
} cllm_sft_params;

/* B 8, T 256 (capped at the model's context), accum 1, 1 epoch, lr 2e-5
 * cosine to 0 (LoRA runs usually want ~1e-4..1e-3), warmup 0, wd 0,
 * betas 0.9/0.999, eps 1e-8, clip 1, no LoRA, seed 1337, keep 1. */
cllm_sft_params cllm_sft_default_params(void);

typedef struct {
    int64_t steps_done;
    int64_t start_step;
    double first_train_loss, last_train_loss; /* NaN when no step ran */
    double last_val_loss;                     /* NaN when never evaluated */
    int64_t nonfinite_skipped;
    double seconds;                           /* wall time of the step loop (steps, eval, checkpoints) */
    double tokens_per_s;                      /* row positions per second of training steps alone */
    double loss_tokens_per_s;                 /* assistant tokens per second of training steps alone */
    double startup_seconds;                   /* before the first step: load, tokenize, pack, allocate */
    double step_seconds;                      /* sum over steps of rows + forward + backward + AdamW */
    double step_seconds_median;               /* median of one step's time (steady state) */
    double eval_seconds, save_seconds;        /* validation; checkpoints and the final weights */
    size_t n_examples, n_val_examples;
    int64_t n_truncated, n_dropped;
    size_t rows_per_epoch;                    /* rows after packing/padding */
    size_t trainable_params, total_params;
    size_t grad_bytes, optimizer_bytes;       /* gradient and AdamW moment memory */
    char output_path[4096];                   /* model.gguf or adapter.gguf */
    char reason_text[256];
    cllm_train_summary summary;               /* the shape every trainer prints (summary.h); the
                                                 numbers above are its extras */
} cllm_sft_result;

cllm_status cllm_sft_validate(const cllm_sft_params *p, cllm_error *err);
cllm_status cllm_sft_run(const cllm_sft_params *p, cllm_sft_result *res, cllm_error *err);

/* ---- batching (exposed for tests and the other post-training stages) ------
 * Lays examples ex[order[0..n)] into rows of T positions:
 *   tokens[r*T + t], targets[r*T + t] (next token where its mask is 1, else
 *   -1), seg[r*T + t] (example index within the row, -1 for padding).
 * pack = 0: one example per row. pack = 1: greedy, in order, an example
 * that does not fit starts a new row. Every example must have n <= T.
 * Returns the number of rows written (<= max_rows); *used gets how many
 * examples were placed. */
int cllm_sft_fill_rows(const cllm_sft_example *ex, const size_t *order, size_t n, int T, int pack, int max_rows,
                       int32_t *tokens, int32_t *targets, int32_t *seg, size_t *used);

#endif
