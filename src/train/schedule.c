/*
 * schedule.c: learning-rate schedules of optim.h: linear warmup, then
 * cosine (Loshchilov & Hutter 2017, no restarts), linear, constant, or
 * WSD (warmup-stable-decay, Hu et al. 2024 "MiniCPM": constant at lr, then a
 * linear decay to min_lr over the last decay_frac of the steps).
 *
 * All arithmetic in double, rounded to float once at the end, so the value
 * for a step depends only on (schedule, step): resume needs no extra state.
 * Does not: apply the rate (adamw.c) or validate flags (tools/).
 */
#include <math.h>
#include <string.h>

#include "cllm/train/optim.h"

static const char *const schedule_names[CLLM_SCHEDULE_COUNT] = {"cosine", "linear", "constant",
                                                                "wsd"};

int cllm_schedule_parse(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < CLLM_SCHEDULE_COUNT; i++)
        if (strcmp(name, schedule_names[i]) == 0) return i;
    return -1;
}

const char *cllm_schedule_name(cllm_schedule_kind kind) {
    if ((int)kind < 0 || kind >= CLLM_SCHEDULE_COUNT) return "unknown";
    return schedule_names[kind];
}

float cllm_schedule_lr(const cllm_schedule *s, int64_t step) {
    const double lr = s->lr, min_lr = s->min_lr;
    if (step < 0) step = 0;
    if (s->warmup_steps > 0 && step < s->warmup_steps)
        return (float)(lr * (double)(step + 1) / (double)s->warmup_steps);
    if (s->kind == CLLM_SCHEDULE_CONSTANT) return (float)lr;
    if (step >= s->total_steps) return (float)min_lr;
    if (s->kind == CLLM_SCHEDULE_WSD) {
        double frac = s->decay_frac;
        if (!(frac >= 0.0)) frac = 0.0; /* also catches NaN */
        if (frac > 1.0) frac = 1.0;
        int64_t decay_steps = (int64_t)llround(frac * (double)s->total_steps);
        int64_t start = s->total_steps - decay_steps;
        if (start < s->warmup_steps) start = s->warmup_steps;
        if (step < start || s->total_steps <= start) return (float)lr;
        /* step == start gives lr; the last step (total-1) is one step above min_lr. */
        double progress = (double)(step - start) / (double)(s->total_steps - start);
        return (float)(lr + (min_lr - lr) * progress);
    }
    int64_t span = s->total_steps - s->warmup_steps;
    if (span <= 0) return (float)lr;
    double progress = (double)(step - s->warmup_steps) / (double)span; /* in [0, 1) */
    if (s->kind == CLLM_SCHEDULE_LINEAR) return (float)(lr + (min_lr - lr) * progress);
    /* cosine */
    const double pi = 3.14159265358979323846;
    double coeff = 0.5 * (1.0 + cos(pi * progress));
    return (float)(min_lr + coeff * (lr - min_lr));
}
