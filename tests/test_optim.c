/*
 * test_optim.c: AdamW, learning-rate schedules and gradient clipping
 * (include/cllm/train/optim.h) against hand-computed values and, for AdamW,
 * against torch.optim.AdamW run by Debian's /usr/bin/python3.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cllm/train/optim.h"
#include "cllm/core/rng.h"
#include "test.h"

/* One step from zero moments: m = (1-b1) g, v = (1-b2) g^2, the bias
 * corrections cancel them to g and g^2, so the update is lr * g / (|g| + eps)
 * after decoupled decay p *= 1 - lr*wd. */
static void test_optim_adamw_first_step_by_hand(void) {
    float p[4] = {1.0f, -2.0f, 0.5f, 3.0f};
    const float g[4] = {0.5f, -0.25f, 2.0f, 0.0f};
    float m[4] = {0}, v[4] = {0};
    cllm_adamw_params hp = cllm_adamw_default_params();
    hp.lr = 0.01f;
    hp.weight_decay = 0.1f;
    cllm_adamw_update(p, g, m, v, 4, &hp, 1, 1);
    const double p0[4] = {1.0, -2.0, 0.5, 3.0};
    for (int i = 0; i < 4; i++) {
        double gi = g[i];
        double want = p0[i] * (1.0 - 0.01 * 0.1) - 0.01 * gi / (fabs(gi) + 1e-8);
        /* fp32 arithmetic on values of order 1: a few ulps */
        CHECK_NEAR(p[i], want, 1e-6, 1e-6, "param after step 1");
        CHECK_NEAR(m[i], 0.1 * gi, 1e-7, 1e-6, "first moment");
        CHECK_NEAR(v[i], 0.05 * gi * gi, 1e-8, 1e-6, "second moment");
    }
}

/* Two steps, no decay, computed in double by the textbook formula. */
static void test_optim_adamw_two_steps_by_hand(void) {
    float p[1] = {0.3f}, m[1] = {0}, v[1] = {0};
    const float g1 = 0.2f, g2 = -0.4f;
    cllm_adamw_params hp = cllm_adamw_default_params();
    hp.lr = 0.1f;
    cllm_adamw_update(p, &g1, m, v, 1, &hp, 1, 0);
    cllm_adamw_update(p, &g2, m, v, 1, &hp, 2, 0);
    double b1 = 0.9, b2 = 0.95, lr = 0.1;
    double md = 0, vd = 0, pd = 0.3;
    const double gs[2] = {0.2, -0.4};
    for (int t = 1; t <= 2; t++) {
        md = b1 * md + (1 - b1) * gs[t - 1];
        vd = b2 * vd + (1 - b2) * gs[t - 1] * gs[t - 1];
        double mh = md / (1 - pow(b1, t)), vh = vd / (1 - pow(b2, t));
        pd -= lr * mh / (sqrt(vh) + 1e-8);
    }
    /* fp32 vs double on O(0.1) values over two steps */
    CHECK_NEAR(p[0], pd, 1e-6, 1e-5, "param after 2 steps");
    CHECK_NEAR(m[0], md, 1e-7, 1e-5, "m after 2 steps");
    CHECK_NEAR(v[0], vd, 1e-9, 1e-5, "v after 2 steps");
}

static int write_floats(const char *path, const float *x, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t w = fwrite(x, sizeof(float), n, f);
    return fclose(f) == 0 && w == n;
}

static int read_floats(const char *path, float *x, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t r = fread(x, sizeof(float), n, f);
    fclose(f);
    return r == n;
}

/* 5 steps with weight decay on a 1003-element vector (vector body and a
 * ragged tail) against torch.optim.AdamW: every bit of params and moments. */
static void test_optim_adamw_matches_torch_bitwise(void) {
    const char *py = "/usr/bin/python3";
    if (access(py, X_OK) != 0) {
        CHECK(0, "%s not found: python3-torch is a build dependency (scripts/install-deps.sh)", py);
        return;
    }
    enum { N = 1003, STEPS = 5 };
    char dir[] = "/tmp/cllm_test_optim_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char p_init[512], p_grads[512], p_out[512], p_py[512], cmd[2048];
    snprintf(p_init, sizeof p_init, "%s/init.bin", dir);
    snprintf(p_grads, sizeof p_grads, "%s/grads.bin", dir);
    snprintf(p_out, sizeof p_out, "%s/out.bin", dir);
    snprintf(p_py, sizeof p_py, "%s/ref.py", dir);
    float *param = malloc(sizeof(float) * N), *grads = malloc(sizeof(float) * N * STEPS);
    float *m = calloc(N, sizeof(float)), *v = calloc(N, sizeof(float));
    float *ref = malloc(sizeof(float) * 3 * N);
    cllm_rng rng;
    cllm_rng_seed(&rng, 1234);
    for (int i = 0; i < N; i++) param[i] = cllm_rng_normal(&rng);
    for (int i = 0; i < N * STEPS; i++) grads[i] = cllm_rng_normal(&rng) * 0.1f;
    cllm_adamw_params hp = cllm_adamw_default_params();
    hp.lr = 3e-3f;
    hp.beta1 = 0.9f;
    hp.beta2 = 0.95f;
    hp.eps = 1e-8f;
    hp.weight_decay = 0.1f;
    CHECK(write_floats(p_init, param, N) && write_floats(p_grads, grads, (size_t)N * STEPS),
          "writing inputs");
    /* torch gets the float32-rounded hyperparameters (see adamw.c). */
    FILE *f = fopen(p_py, "w");
    CHECK(f != NULL, "writing %s", p_py);
    if (f) {
        fprintf(f,
                "import sys, numpy as np, torch\n"
                "torch.set_num_threads(1)\n"
                "N, S = %d, %d\n"
                "f32 = lambda x: float(np.float32(x))\n"
                "p = torch.nn.Parameter(torch.from_numpy(np.fromfile(sys.argv[1], dtype=np.float32)))\n"
                "g = torch.from_numpy(np.fromfile(sys.argv[2], dtype=np.float32)).reshape(S, N)\n"
                "opt = torch.optim.AdamW([p], lr=f32(%.9g), betas=(f32(%.9g), f32(%.9g)), eps=f32(%.9g), weight_decay=f32(%.9g))\n"
                "for s in range(S):\n"
                "    p.grad = g[s].clone()\n"
                "    opt.step()\n"
                "st = opt.state[p]\n"
                "out = torch.cat([p.detach(), st['exp_avg'], st['exp_avg_sq']])\n"
                "out.numpy().astype(np.float32).tofile(sys.argv[3])\n",
                N, STEPS, hp.lr, hp.beta1, hp.beta2, hp.eps, hp.weight_decay);
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "%s %s %s %s %s", py, p_py, p_init, p_grads, p_out);
    int rc = system(cmd);
    CHECK(rc == 0, "torch reference failed (exit %d): %s", rc, cmd);
    if (rc == 0 && read_floats(p_out, ref, 3 * (size_t)N)) {
        for (int s = 0; s < STEPS; s++)
            cllm_adamw_update(param, grads + (size_t)s * N, m, v, N, &hp, s + 1, 1);
        int bad_p = 0, bad_m = 0, bad_v = 0;
        double worst = 0;
        for (int i = 0; i < N; i++) {
            bad_p += memcmp(&param[i], &ref[i], 4) != 0;
            bad_m += memcmp(&m[i], &ref[N + i], 4) != 0;
            bad_v += memcmp(&v[i], &ref[2 * N + i], 4) != 0;
            double d = fabs((double)param[i] - ref[i]);
            if (d > worst) worst = d;
        }
        CHECK(bad_p == 0 && bad_m == 0 && bad_v == 0,
              "torch parity (exact bits): %d params, %d m, %d v differ of %d; max |dp| %.3g",
              bad_p, bad_m, bad_v, N, worst);
    }
    unlink(p_init);
    unlink(p_grads);
    unlink(p_out);
    unlink(p_py);
    rmdir(dir);
    free(param);
    free(grads);
    free(m);
    free(v);
    free(ref);
}

static void test_optim_schedule_values_by_hand(void) {
    cllm_schedule s = {CLLM_SCHEDULE_COSINE, 1e-3f, 1e-4f, 10, 110, 0.0f};
    CHECK_NEAR(cllm_schedule_lr(&s, 0), 1e-4, 0, 1e-6, "warmup step 0 = lr/warmup");
    CHECK_NEAR(cllm_schedule_lr(&s, 4), 5e-4, 0, 1e-6, "warmup step 4 = 5 lr/warmup");
    CHECK_NEAR(cllm_schedule_lr(&s, 9), 1e-3, 0, 1e-6, "warmup last = lr");
    CHECK_NEAR(cllm_schedule_lr(&s, 10), 1e-3, 0, 1e-6, "cosine start = lr");
    CHECK_NEAR(cllm_schedule_lr(&s, 60), 5.5e-4, 0, 1e-6, "cosine half-way = (lr+min)/2");
    /* progress 0.25: min + (1+cos(pi/4))/2 (lr-min) = 1e-4 + 0.853553 * 9e-4 */
    CHECK_NEAR(cllm_schedule_lr(&s, 35), 1e-4 + 0.8535533905932737 * 9e-4, 0, 1e-6, "cosine quarter");
    CHECK_NEAR(cllm_schedule_lr(&s, 110), 1e-4, 0, 1e-6, "after the end = min_lr");
    CHECK_NEAR(cllm_schedule_lr(&s, 500), 1e-4, 0, 1e-6, "long after the end = min_lr");
    s.kind = CLLM_SCHEDULE_LINEAR;
    CHECK_NEAR(cllm_schedule_lr(&s, 60), 5.5e-4, 0, 1e-6, "linear half-way");
    CHECK_NEAR(cllm_schedule_lr(&s, 85), 1e-3 - 0.75 * 9e-4, 0, 1e-6, "linear 3/4");
    s.kind = CLLM_SCHEDULE_CONSTANT;
    CHECK_NEAR(cllm_schedule_lr(&s, 4), 5e-4, 0, 1e-6, "constant still warms up");
    CHECK_NEAR(cllm_schedule_lr(&s, 100), 1e-3, 0, 1e-6, "constant");
    CHECK_NEAR(cllm_schedule_lr(&s, 1000), 1e-3, 0, 1e-6, "constant after end");
    /* WSD, 100 steps, 20% decay: stable to step 79, linear from 80 to 100. */
    cllm_schedule w = {CLLM_SCHEDULE_WSD, 1e-3f, 0.0f, 10, 100, 0.2f};
    CHECK_NEAR(cllm_schedule_lr(&w, 50), 1e-3, 0, 1e-6, "wsd stable");
    CHECK_NEAR(cllm_schedule_lr(&w, 79), 1e-3, 0, 1e-6, "wsd stable end");
    CHECK_NEAR(cllm_schedule_lr(&w, 80), 1e-3, 0, 1e-6, "wsd decay start");
    CHECK_NEAR(cllm_schedule_lr(&w, 90), 5e-4, 0, 1e-6, "wsd decay half");
    CHECK_NEAR(cllm_schedule_lr(&w, 99), 5e-5, 1e-9, 1e-5, "wsd last step");
    /* no warmup: step 0 is the full lr */
    cllm_schedule nw = {CLLM_SCHEDULE_COSINE, 2e-3f, 0.0f, 0, 100, 0.0f};
    CHECK_NEAR(cllm_schedule_lr(&nw, 0), 2e-3, 0, 1e-6, "no warmup");
}

static void test_optim_schedule_names(void) {
    for (int k = 0; k < CLLM_SCHEDULE_COUNT; k++)
        CHECK(cllm_schedule_parse(cllm_schedule_name((cllm_schedule_kind)k)) == k, "round trip %d", k);
    CHECK(cllm_schedule_parse("wsd") == CLLM_SCHEDULE_WSD, "wsd");
    CHECK(cllm_schedule_parse("Cosine") == -1, "case-sensitive");
    CHECK(cllm_schedule_parse("") == -1 && cllm_schedule_parse(NULL) == -1, "empty/NULL");
}

static void test_optim_clip_by_hand(void) {
    float g[3] = {3.0f, 4.0f, 12.0f};
    double norm = cllm_grad_norm(g, 3);
    CHECK_NEAR(norm, 13.0, 0, 1e-12, "3-4-12 norm"); /* exact in double */
    float scale = cllm_grad_clip(g, 3, norm, 1.0f);
    CHECK_NEAR(scale, 1.0 / 13.0, 0, 1e-7, "scale");
    CHECK_NEAR(cllm_grad_norm(g, 3), 1.0, 0, 1e-6, "clipped norm is max_norm");
    float h[2] = {0.3f, 0.4f};
    CHECK(cllm_grad_clip(h, 2, cllm_grad_norm(h, 2), 1.0f) == 1.0f && h[0] == 0.3f,
          "below max_norm: untouched");
    CHECK(cllm_grad_clip(g, 3, 13.0, 0.0f) == 1.0f, "max_norm 0 disables clipping");
    float bad[2] = {1.0f, NAN};
    CHECK(!isfinite(cllm_grad_norm(bad, 2)), "NaN gradient gives a non-finite norm");
    CHECK(cllm_grad_clip(bad, 2, NAN, 1.0f) == 1.0f && bad[0] == 1.0f, "NaN norm: no scaling");
    CHECK(cllm_grad_norm(g, 0) == 0.0, "empty");
}

/* The norm over >1 chunk must not depend on the thread count. */
static void test_optim_grad_norm_thread_independent(void) {
    size_t n = 300001;
    float *g = malloc(n * sizeof *g);
    cllm_rng rng;
    cllm_rng_seed(&rng, 7);
    double ref = 0;
    for (size_t i = 0; i < n; i++) {
        g[i] = cllm_rng_normal(&rng);
        ref += (double)g[i] * g[i];
    }
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    double a = cllm_grad_norm(g, n);
    omp_set_num_threads(3);
    double b = cllm_grad_norm(g, n);
    omp_set_num_threads(saved);
    CHECK(memcmp(&a, &b, sizeof a) == 0, "1 vs 3 threads: %.17g vs %.17g", a, b);
    /* double sums of 3e5 terms in different order: ~1e-13 relative */
    CHECK_NEAR(a, sqrt(ref), 0, 1e-12, "norm vs serial sum");
    free(g);
}

int main(void) {
    TEST_RUN(test_optim_adamw_first_step_by_hand);
    TEST_RUN(test_optim_adamw_two_steps_by_hand);
    TEST_RUN(test_optim_adamw_matches_torch_bitwise);
    TEST_RUN(test_optim_schedule_values_by_hand);
    TEST_RUN(test_optim_schedule_names);
    TEST_RUN(test_optim_clip_by_hand);
    TEST_RUN(test_optim_grad_norm_thread_independent);
    return test_finish();
}
