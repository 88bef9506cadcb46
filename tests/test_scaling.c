/*
 * test_scaling.c: the scaling-law fits of eval/scaling.h on synthetic losses
 * drawn from known (E, A, alpha, B, beta), with and without noise.
 */
#include <math.h>
#include <stdlib.h>

#include "cllm/core/rng.h"
#include "cllm/eval/scaling.h"
#include "test.h"

/* Chinchilla's published fit (Hoffmann et al. 2022, eq. 10). */
static const cllm_scale_law chinchilla = {1.69, 406.4, 0.34, 410.7, 0.28, 1, 0};

/* A grid of runs: sizes N0 * 3^i, each at tokens D0 * 4^j; loss from `law`
 * times exp(noise * standard normal). Returns the count. */
static int make_points(cllm_scale_point *pts, const cllm_scale_law *law, double N0, int nN, double D0, int nD,
                       double noise, uint64_t seed) {
    cllm_rng rng;
    cllm_rng_seed(&rng, seed);
    int n = 0;
    for (int i = 0; i < nN; i++)
        for (int j = 0; j < nD; j++) {
            double N = N0 * pow(3.0, i), D = D0 * pow(4.0, j);
            pts[n].N = N;
            pts[n].D = D;
            pts[n].loss = cllm_scale_law_loss(law, N, D) * exp(noise * cllm_rng_normal(&rng));
            n++;
        }
    return n;
}

static void test_scaling_joint_exact(void) {
    cllm_scale_point pts[64];
    int n = make_points(pts, &chinchilla, 1e7, 7, 1e8, 5, 0.0, 1);
    cllm_scale_law law;
    cllm_error err;
    CHECK(cllm_scale_fit(pts, n, 1, NULL, &law, &err) == CLLM_OK, "%s", err.msg);
    /* Noise-free: the optimum is the truth up to the optimiser's tolerance. */
    CHECK_NEAR(law.E, chinchilla.E, 0, 1e-3, "E");
    CHECK_NEAR(law.alpha, chinchilla.alpha, 1e-3, 0, "alpha");
    CHECK_NEAR(law.beta, chinchilla.beta, 1e-3, 0, "beta");
    CHECK_NEAR(law.A, chinchilla.A, 0, 2e-2, "A");
    CHECK_NEAR(law.B, chinchilla.B, 0, 2e-2, "B");
    CHECK(law.joint == 1, "joint flag");
}

static void test_scaling_joint_noisy_and_bootstrap(void) {
    cllm_scale_point pts[64];
    /* 1% multiplicative noise on 35 runs: a loose but meaningful recovery. */
    int n = make_points(pts, &chinchilla, 1e7, 7, 1e8, 5, 0.01, 7);
    cllm_scale_law law;
    cllm_error err;
    CHECK(cllm_scale_fit(pts, n, 1, NULL, &law, &err) == CLLM_OK, "%s", err.msg);
    CHECK_NEAR(law.alpha, chinchilla.alpha, 0.08, 0, "alpha with 1% noise");
    CHECK_NEAR(law.beta, chinchilla.beta, 0.08, 0, "beta with 1% noise");
    CHECK_NEAR(law.E, chinchilla.E, 0, 0.1, "E with 1% noise");
    /* The fitted law predicts a held-out point (10x past the largest N) within 3%. */
    double N = 1e7 * pow(3.0, 6) * 10, D = 1e8 * pow(4.0, 4);
    CHECK_NEAR(cllm_scale_law_loss(&law, N, D), cllm_scale_law_loss(&chinchilla, N, D), 0, 0.03, "extrapolation");

    cllm_scale_fit_params fp = cllm_scale_fit_default_params();
    fp.n_boot = 60;
    cllm_scale_law samples[60];
    int ok = 0;
    CHECK(cllm_scale_bootstrap(pts, n, &law, &fp, samples, &ok, &err) == CLLM_OK, "%s", err.msg);
    CHECK(ok >= 55, "bootstrap refits converged: %d of 60", ok);
    double a[60];
    for (int i = 0; i < ok; i++) a[i] = samples[i].alpha;
    double lo = cllm_scale_quantile(a, ok, 0.05), hi = cllm_scale_quantile(a, ok, 0.95);
    CHECK(hi > lo, "interval has width: [%g, %g]", lo, hi);
    /* The 90% interval, widened by its own width, covers the truth (a sanity
     * bound, not a coverage test: one seed). */
    CHECK(chinchilla.alpha >= lo - (hi - lo) && chinchilla.alpha <= hi + (hi - lo), "alpha %g vs [%g, %g]",
          chinchilla.alpha, lo, hi);
}

static void test_scaling_parameter_law_small_models(void) {
    /* The shape of a laptop ladder: 10K..3M parameters, one token count. */
    const cllm_scale_law truth = {1.45, 38.0, 0.42, 0, 0, 0, 0};
    cllm_scale_point pts[8];
    int n = make_points(pts, &truth, 1e4, 7, 2e6, 1, 0.002, 3);
    cllm_scale_law law;
    cllm_error err;
    CHECK(cllm_scale_fit(pts, n, 0, NULL, &law, &err) == CLLM_OK, "%s", err.msg);
    CHECK(law.joint == 0 && law.B == 0 && law.beta == 0, "parameter law has no data term");
    CHECK_NEAR(law.alpha, truth.alpha, 0.05, 0, "alpha, 0.2% noise");
    CHECK_NEAR(law.E, truth.E, 0, 0.03, "E, 0.2% noise");
    /* Leave the largest out and predict it (the `cllm scale` protocol). */
    cllm_scale_law part;
    CHECK(cllm_scale_fit(pts, n - 1, 0, NULL, &part, &err) == CLLM_OK, "%s", err.msg);
    CHECK_NEAR(cllm_scale_law_loss(&part, pts[n - 1].N, 0), cllm_scale_law_loss(&truth, pts[n - 1].N, 0), 0, 0.01,
               "held-out prediction within 1%");
}

static void test_scaling_optimal_n_matches_search(void) {
    double C = 5.76e23; /* Chinchilla's own budget: about 70B parameters, 1.4T tokens */
    double n_opt = cllm_scale_law_optimal_n(&chinchilla, C);
    double best = INFINITY, best_n = 0;
    for (double lnN = log(1e9); lnN < log(1e12); lnN += 1e-4) {
        double N = exp(lnN), l = cllm_scale_law_loss(&chinchilla, N, C / (6 * N));
        if (l < best) best = l, best_n = N;
    }
    CHECK_NEAR(n_opt, best_n, 0, 1e-3, "closed form vs grid search");
    CHECK(n_opt > 2e10 && n_opt < 1.5e11, "Chinchilla's law gives tens of billions at its budget: %g", n_opt);
    cllm_scale_law nl = {1.5, 40, 0.4, 0, 0, 0, 0};
    CHECK(isnan(cllm_scale_law_optimal_n(&nl, C)), "a parameter law has no compute optimum");
}

static void test_scaling_isoflop_vertex(void) {
    /* loss = 2 + 0.1 (ln N - ln 1e5)^2 through 5 sizes around 1e5. */
    double N[5], loss[5];
    for (int i = 0; i < 5; i++) {
        N[i] = 1e5 * pow(3.0, i - 2);
        double u = log(N[i]) - log(1e5) + 0.3; /* vertex off the grid, at 1e5 * e^-0.3 */
        loss[i] = 2 + 0.1 * u * u;
    }
    cllm_scale_isoflop r;
    cllm_error err;
    CHECK(cllm_scale_isoflop_min(N, loss, 5, 6e12, &r, &err) == CLLM_OK, "%s", err.msg);
    CHECK(!r.at_edge, "vertex inside");
    CHECK_NEAR(r.N_opt, 1e5 * exp(-0.3), 0, 1e-9, "vertex N");
    CHECK_NEAR(r.loss_opt, 2.0, 1e-12, 0, "vertex loss");
    CHECK_NEAR(r.D_opt, 6e12 / (6 * r.N_opt), 0, 1e-12, "D = C / 6N");
    /* Monotone losses: no interior minimum, the best run is reported. */
    double mono[5] = {3, 2.9, 2.8, 2.7, 2.6}; /* a straight line: no vertex */
    CHECK(cllm_scale_isoflop_min(N, mono, 5, 6e12, &r, &err) == CLLM_OK, "%s", err.msg);
    CHECK(r.at_edge && r.N_opt == N[4], "edge: %g", r.N_opt);
    CHECK(cllm_scale_isoflop_min(N, loss, 2, 6e12, &r, &err) == CLLM_ERR_ARG, "two runs refused");
}

static void test_scaling_power_fit_and_quantile(void) {
    double x[4] = {1e18, 1e19, 1e20, 1e21}, y[4];
    for (int i = 0; i < 4; i++) y[i] = 0.1 * pow(x[i], 0.5);
    double k, a;
    cllm_error err;
    CHECK(cllm_scale_power_fit(x, y, 4, &k, &a, &err) == CLLM_OK, "%s", err.msg);
    CHECK_NEAR(a, 0.5, 1e-9, 0, "exponent");
    CHECK_NEAR(k, 0.1, 0, 1e-6, "coefficient");
    double v[5] = {5, 1, 4, 2, 3};
    CHECK_NEAR(cllm_scale_quantile(v, 5, 0.5), 3, 0, 0, "median");
    CHECK_NEAR(cllm_scale_quantile(v, 5, 0.25), 2, 0, 0, "quartile");
    CHECK_NEAR(cllm_scale_quantile(v, 5, 0.1), 1.4, 1e-12, 0, "interpolated");
}

static void test_scaling_bad_input(void) {
    cllm_scale_point pts[8];
    int n = make_points(pts, &chinchilla, 1e7, 4, 1e8, 2, 0, 1);
    cllm_scale_law law;
    cllm_error err;
    pts[3].loss = -1;
    CHECK(cllm_scale_fit(pts, n, 1, NULL, &law, &err) == CLLM_ERR_ARG && strstr(err.msg, "point 3"), "names the point: %s",
          err.msg);
    pts[3].loss = NAN;
    CHECK(cllm_scale_fit(pts, n, 1, NULL, &law, &err) == CLLM_ERR_ARG, "NaN refused");
    n = make_points(pts, &chinchilla, 1e7, 5, 1e8, 1, 0, 1);
    CHECK(cllm_scale_fit(pts, n, 1, NULL, &law, &err) == CLLM_ERR_ARG && strstr(err.msg, "token counts"),
          "one D cannot fit the joint law: %s", err.msg);
    CHECK(cllm_scale_fit(pts, 3, 0, NULL, &law, &err) == CLLM_ERR_ARG, "3 runs cannot fit the parameter law");
}

int main(void) {
    TEST_RUN(test_scaling_joint_exact);
    TEST_RUN(test_scaling_joint_noisy_and_bootstrap);
    TEST_RUN(test_scaling_parameter_law_small_models);
    TEST_RUN(test_scaling_optimal_n_matches_search);
    TEST_RUN(test_scaling_isoflop_vertex);
    TEST_RUN(test_scaling_power_fit_and_quantile);
    TEST_RUN(test_scaling_bad_input);
    return test_finish();
}
