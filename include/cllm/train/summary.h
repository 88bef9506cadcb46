/*
 * summary.h: the end-of-run summary every trainer returns (pretrain, sft,
 * reward, dpo, ppo, grpo) in one shape, so `cllm <trainer>` prints the same
 * lines (or, with --json, the same JSON keys) for all of them. The training
 * harness fills the common fields (src/train/harness.c th_summarize); a
 * trainer adds its own measure (metric) and extra numbers.
 *
 * Meanings, the same for every trainer:
 *   loss_first / loss_last   the training loss (the trainer's objective) at
 *                            the first and the last step this process ran
 *   metric_first / _last     the trainer's own measure at those same steps
 *                            (reward, dpo: the batch's pair accuracy; ppo,
 *                            grpo: the mean reward of the step's rollouts)
 *   val_loss / val_loss_best the last and the best held-out loss
 * Not-a-number means "none" (no step ran, never evaluated, no metric).
 */
#ifndef CLLM_TRAIN_SUMMARY_H
#define CLLM_TRAIN_SUMMARY_H

#include <stdint.h>

#define CLLM_SUMMARY_MAX_EXTRA 24

typedef struct {
    char name[32];  /* snake_case key, e.g. "val_accuracy" */
    double value;
} cllm_summary_extra;

typedef struct {
    char command[16];           /* "pretrain", "sft", "reward", "dpo", "ppo", "grpo" */
    char reason[256];           /* why the run stopped */
    char run_dir[4096];
    char weights[4096];         /* the final weights file */
    int64_t steps;              /* steps completed in the whole run */
    int64_t start_step;         /* 0, or the step this process resumed at */
    int64_t skipped;            /* steps skipped for a NaN/Inf loss or gradient */
    double loss_first, loss_last;
    double val_loss, val_loss_best;
    char metric[64];            /* what metric_first/last measure; "" for none */
    double metric_first, metric_last;
    double seconds;             /* wall time of this process's step loop */
    double tokens_per_s;        /* training tokens per second of that time */
    int n_extra;
    cllm_summary_extra extra[CLLM_SUMMARY_MAX_EXTRA]; /* [n_extra] trainer-specific numbers */
} cllm_train_summary;

/* Every number NaN, every string empty. */
void cllm_train_summary_init(cllm_train_summary *s);
/* Adds (or replaces) an extra number; ignored when CLLM_SUMMARY_MAX_EXTRA are taken. */
void cllm_train_summary_add(cllm_train_summary *s, const char *name, double value);

#endif
