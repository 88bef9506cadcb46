/*
 * optim.h: AdamW, learning-rate schedules and gradient clipping.
 *
 * AdamW as in Loshchilov & Hutter 2019 and torch.optim.AdamW (decoupled
 * weight decay: p -= lr * wd * p before the Adam step; bias-corrected
 * moments). Whether a tensor is decayed is the caller's choice (cllm decays
 * matrices only, never norms, biases or embeddings' ... see the model).
 */
#ifndef CLLM_OPTIM_H
#define CLLM_OPTIM_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    float lr;           /* this step's learning rate (after the schedule) */
    float beta1, beta2; /* 0.9, 0.95 by default */
    float eps;          /* 1e-8 */
    float weight_decay; /* applied only when the caller passes decay = 1 */
    float grad_scale;   /* gradients are multiplied by this as they are read: pass the
                           clipping scale (cllm_grad_clip_scale) instead of clipping in
                           place; 1 by default (the gradient buffer is never written) */
} cllm_adamw_params;

cllm_adamw_params cllm_adamw_default_params(void);

/* One AdamW step on n parameters. m[n], v[n] are the moments (zero at start);
 * step is 1-based (the count including this step) for bias correction. */
void cllm_adamw_update(float *param, const float *grad, float *m, float *v, size_t n,
                       const cllm_adamw_params *hp, int64_t step, int decay);

typedef enum {
    CLLM_SCHEDULE_COSINE = 0, /* warmup, then cosine from lr to min_lr */
    CLLM_SCHEDULE_LINEAR,     /* warmup, then linear to min_lr */
    CLLM_SCHEDULE_CONSTANT,   /* warmup, then lr */
    CLLM_SCHEDULE_WSD,        /* warmup, stable at lr, then linear decay over the last decay_frac */
    CLLM_SCHEDULE_COUNT
} cllm_schedule_kind;

typedef struct {
    cllm_schedule_kind kind;
    float lr, min_lr;
    int64_t warmup_steps, total_steps;
    float decay_frac; /* WSD only: fraction of total_steps spent decaying */
} cllm_schedule;

/* Learning rate for 0-based `step` (step < warmup: linear ramp from lr/warmup). */
float cllm_schedule_lr(const cllm_schedule *s, int64_t step);
/* Parses "cosine", "linear", "constant", "wsd"; returns -1 when unknown. */
int cllm_schedule_parse(const char *name);
const char *cllm_schedule_name(cllm_schedule_kind kind);

/* Global L2 norm over n gradients (double accumulation). */
double cllm_grad_norm(const float *grad, size_t n);
/* Scales grad by max_norm / norm when norm > max_norm; returns the scale used. */
float cllm_grad_clip(float *grad, size_t n, double norm, float max_norm);
/* The scale cllm_grad_clip would apply (1 when no clipping is needed), for
 * cllm_adamw_params.grad_scale: clipping fused into the update. */
float cllm_grad_clip_scale(double norm, float max_norm);

#endif
