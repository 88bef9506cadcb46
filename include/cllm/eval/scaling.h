/*
 * scaling.h: fitting scaling laws to measured losses.
 *
 * The law is Hoffmann et al. 2022 ("Chinchilla", approach 3):
 *     L(N, D) = E + A / N^alpha + B / D^beta
 * with N the model's non-embedding parameters and D its training tokens; the
 * parameter law L(N) = E + A / N^alpha is the same with no D term (runs at
 * one D, whose data term E absorbs). Like Chinchilla, the fit minimises the
 * Huber loss (delta 1e-3) between log L and
 *     LSE(a - alpha log N, b - beta log D, e),  A = e^a, B = e^b, E = e^e,
 * by BFGS from a grid of starting points, keeping the best; the uncertainty
 * is a bootstrap over the runs (resampled with replacement, refitted from
 * the full fit). Compute is C = 6 N D (Kaplan et al. 2020, the forward and
 * backward multiply-adds of the non-embedding weights).
 *
 * IsoFLOP analysis (Chinchilla approach 2): at one compute budget, a parabola
 * of loss against log N through the runs of that budget; its vertex is the
 * loss-optimal size. Across budgets, N_opt = k C^a by least squares on logs.
 *
 * Pure arithmetic on arrays: no files, no training (train/scale.h runs the
 * models). Deterministic for a given seed.
 */
#ifndef CLLM_SCALING_H
#define CLLM_SCALING_H

#include <stdint.h>

#include "cllm/core/status.h"

typedef struct {
    double N;    /* non-embedding parameters (> 0) */
    double D;    /* training tokens (> 0) */
    double loss; /* held-out loss, nats per token (> 0) */
} cllm_scale_point;

typedef struct {
    double E, A, alpha; /* L(N) part */
    double B, beta;     /* data term; 0, 0 for the parameter law */
    int joint;          /* 1: fitted with the data term */
    double objective;   /* summed Huber loss at the optimum */
} cllm_scale_law;

typedef struct {
    double huber_delta; /* on log-loss residuals (default 1e-3, as Chinchilla) */
    int n_boot;         /* bootstrap resamples (default 200; 0 = none) */
    uint64_t seed;      /* bootstrap resampling */
} cllm_scale_fit_params;

cllm_scale_fit_params cllm_scale_fit_default_params(void);

/* The law's loss at (N, D) (D ignored by a parameter law). */
double cllm_scale_law_loss(const cllm_scale_law *law, double N, double D);

/* Fits the joint law (joint = 1, needs n >= 6 points with at least 2
 * distinct N and 2 distinct D) or the parameter law (joint = 0, n >= 4
 * points, at least 3 distinct N). CLLM_ERR_ARG naming the point when a value
 * is not finite and positive. */
cllm_status cllm_scale_fit(const cllm_scale_point *pts, int n, int joint, const cllm_scale_fit_params *fp,
                           cllm_scale_law *law, cllm_error *err);

/* Bootstrap: fp->n_boot refits on resamples of pts, each started from `fit`
 * (and a few nearby points); samples[n_boot] receives them (caller-allocated).
 * *n_ok the refits that converged (resamples with too few distinct N or D
 * are drawn again, at most 20 times each). */
cllm_status cllm_scale_bootstrap(const cllm_scale_point *pts, int n, const cllm_scale_law *fit,
                                 const cllm_scale_fit_params *fp, cllm_scale_law *samples, int *n_ok,
                                 cllm_error *err);

/* The q-quantile (0..1, linear interpolation) of v[n]; sorts v in place. */
double cllm_scale_quantile(double *v, int n, double q);

/* Compute-optimal size for a budget of C FLOPs under a joint law:
 * argmin over N of L(N, C / (6 N)), closed form
 * N_opt = G (C/6)^(beta/(alpha+beta)), G = (alpha A / (beta B))^(1/(alpha+beta)). */
double cllm_scale_law_optimal_n(const cllm_scale_law *law, double C);

typedef struct {
    double C;        /* the budget, FLOPs */
    double N_opt;    /* vertex of the parabola in log N */
    double D_opt;    /* C / (6 N_opt) */
    double loss_opt; /* the parabola's value there */
    int at_edge;     /* 1: the vertex is outside the runs' N range (or the parabola opens down):
                        N_opt is then the best run's N, not an interpolated minimum */
    double u0, c[3]; /* the parabola: loss = c[0] + c[1] u + c[2] u^2, u = log N - u0 */
} cllm_scale_isoflop;

/* The isoFLOP minimum through n >= 3 runs (N[i], loss[i]) at one budget C. */
cllm_status cllm_scale_isoflop_min(const double *N, const double *loss, int n, double C, cllm_scale_isoflop *out,
                                   cllm_error *err);

/* Least squares on logs: y = k x^a over n >= 2 points (x, y > 0). */
cllm_status cllm_scale_power_fit(const double *x, const double *y, int n, double *k, double *a, cllm_error *err);

#endif
