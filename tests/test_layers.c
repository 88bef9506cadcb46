/*
 * test_layers.c: every layer of cllm/layers/layers.h checked three ways:
 *   1. finite differences IN DOUBLE PRECISION (central, h = 1e-5) for every
 *      input and parameter gradient, on random and ragged shapes;
 *   2. the float library functions agree with the double results;
 *   3. layer-specific facts (RoPE pairing convention, softmax rows sum to 1,
 *      causal zeros, dropout statistics and determinism, masked targets,
 *      the += / overwrite contracts, 1 vs 2 threads bit-identical).
 *
 * How the double check stays honest: this file defines CLLM_LAYERS_DOUBLE and
 * #includes every src/layers/ source, compiling the very same layer sources a second
 * time with `real` = double and names suffixed _d (src/layers/layer_real.h).
 * The one substitution is the GEMM: double code calls cllm_layers_test_dgemm
 * below (plain loops, same row-major convention) where float code calls
 * cllm_sgemm, which test_kernels.c checks against its reference.
 *
 * Tolerances used throughout (the reason is written here once):
 *   GC_ATOL/GC_RTOL, analytic vs central difference in double: truncation
 *   error h^2 f'''/6 ~ 1e-10 and rounding eps*|L|/h ~ 1e-10 for the O(1)
 *   losses used, so 1e-6 relative with a 1e-8 floor leaves 100x margin while
 *   any real formula error (>= 1e-3 relative) fails.
 *   FD_ATOL/FD_RTOL, float vs double: float eps 6e-8 times accumulation
 *   lengths up to ~100 and magnitudes up to ~10 gives errors ~1e-5.
 */
#include <stdlib.h>

#include "cllm/kernels/kernels.h"
#include "cllm/layers/layers.h"
#include "cllm/model/lora.h"
#include "cllm/core/rng.h"
#include "cllm/core/status.h"
#include "test.h"

#define CLLM_LAYERS_DOUBLE
#include "../src/layers/attention.c"
#include "../src/layers/crossentropy.c"
#include "../src/layers/dropout.c"
#include "../src/layers/embedding.c"
#include "../src/layers/gelu.c"
#include "../src/layers/layernorm.c"
#include "../src/layers/linear.c"
#include "../src/layers/lora.c"
#include "../src/layers/residual.c"
#include "../src/layers/rmsnorm.c"
#include "../src/layers/rope.c"
#include "../src/layers/swiglu.c"

#define GC_ATOL 1e-8
#define GC_RTOL 1e-6
#define FD_ATOL 2e-5
#define FD_RTOL 1e-4

void cllm_layers_test_dgemm(int trans_a, int trans_b, int M, int N, int K, double alpha,
                            const double *A, int lda, const double *B, int ldb, double beta,
                            double *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0;
            for (int k = 0; k < K; k++)
                acc += (trans_a ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) *
                       (trans_b ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
            double *c = &C[(size_t)i * ldc + j];
            *c = alpha * acc + (beta == 0 ? 0 : beta * *c);
        }
}

/* ---- helpers: per-test allocations, random data, comparisons ------------ */

#define MAX_ALLOCS 512
static void *allocs[MAX_ALLOCS];
static int n_allocs;
static cllm_rng rng;

static void *tmp_alloc(size_t bytes) {
    void *p = calloc(bytes ? bytes : 1, 1);
    CLLM_ASSERT(p && n_allocs < MAX_ALLOCS);
    allocs[n_allocs++] = p;
    return p;
}
static void tmp_free_all(void) {
    while (n_allocs) free(allocs[--n_allocs]);
}
static double *dzeros(size_t n) { return tmp_alloc(n * sizeof(double)); }
static double *drand(size_t n, double lo, double hi) {
    double *x = dzeros(n);
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * cllm_rng_float(&rng);
    return x;
}
static double *dcopy(const double *x, size_t n) {
    double *y = dzeros(n);
    memcpy(y, x, n * sizeof *y);
    return y;
}
static float *to_f(const double *x, size_t n) {
    float *y = tmp_alloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) y[i] = (float)x[i];
    return y;
}
static int rnd(int lo, int hi) { return lo + (int)cllm_rng_below(&rng, (uint64_t)(hi - lo + 1)); }
static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
/* g -= base: turns an accumulated gradient back into the increment. */
static void sub_base(double *g, const double *base, size_t n) {
    for (size_t i = 0; i < n; i++) g[i] -= base[i];
}
static double *f_sub_base(const float *g, const double *base, size_t n) {
    double *y = dzeros(n);
    for (size_t i = 0; i < n; i++) y[i] = (double)g[i] - base[i];
    return y;
}

typedef double (*loss_fn)(void *ctx);

/* Central-difference check of analytic[i] = dL/dx[i] for all i; reports the
 * worst element. Also fails when the gradient is identically zero, which
 * would make the comparison vacuous. */
static void gradcheck(const char *what, loss_fn f, void *ctx, double *x, size_t n,
                      const double *analytic) {
    const double h = 1e-5;
    double worst = -INFINITY, wnum = 0, maxabs = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double x0 = x[i];
        x[i] = x0 + h;
        double lp = f(ctx);
        x[i] = x0 - h;
        double lm = f(ctx);
        x[i] = x0;
        double num = (lp - lm) / (2 * h);
        double e = fabs(analytic[i] - num) - (GC_ATOL + GC_RTOL * fabs(num));
        if (e > worst) worst = e, wi = i, wnum = num;
        if (fabs(analytic[i]) > maxabs) maxabs = fabs(analytic[i]);
    }
    f(ctx); /* leave saved activations matching the unperturbed inputs */
    char buf[200];
    snprintf(buf, sizeof buf, "%s[%zu] analytic vs central difference", what, wi);
    if (n) CHECK_NEAR(analytic[wi], wnum, GC_ATOL, GC_RTOL, buf);
    CHECK(maxabs > 0, "%s: gradient identically zero (vacuous check)", what);
}

/* Float result vs double result, worst element. */
static void cmp_fd(const char *what, const float *f, const double *d, size_t n) {
    double worst = -INFINITY;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)f[i] - d[i]) - (FD_ATOL + FD_RTOL * fabs(d[i]));
        if (!isfinite((double)f[i])) e = INFINITY;
        if (e > worst) worst = e, wi = i;
    }
    char buf[200];
    snprintf(buf, sizeof buf, "%s[%zu] float vs double", what, wi);
    if (n) CHECK_NEAR(f[wi], d[wi], FD_ATOL, FD_RTOL, buf);
}
static void cmp_fd_sub(const char *what, const float *g, const double *base, const double *d,
                       size_t n) {
    cmp_fd(what, to_f(f_sub_base(g, base, n), n), d, n);
}

/* ---- linear -------------------------------------------------------------- */

typedef struct {
    int N, IC, OC;
    double *inp, *weight, *bias, *out, *wout;
} linear_ctx;

static double linear_loss(void *p) {
    linear_ctx *c = p;
    cllm_linear_forward_d(c->out, c->inp, c->weight, c->bias, c->N, c->IC, c->OC);
    return dot(c->out, c->wout, (size_t)c->N * c->OC);
}

static void linear_case(int N, int IC, int OC, int with_bias) {
    linear_ctx c = {N, IC, OC, drand((size_t)N * IC, -1, 1), drand((size_t)OC * IC, -1, 1),
                    with_bias ? drand(OC, -1, 1) : NULL, dzeros((size_t)N * OC),
                    drand((size_t)N * OC, -1, 1)};
    size_t ni = (size_t)N * IC, nw = (size_t)OC * IC, no = (size_t)N * OC;
    double *b_in = drand(ni, -1, 1), *b_w = drand(nw, -1, 1), *b_b = drand(OC, -1, 1);
    double *din = dcopy(b_in, ni), *dw = dcopy(b_w, nw), *db = dcopy(b_b, OC);
    linear_loss(&c);
    cllm_linear_backward_d(din, dw, with_bias ? db : NULL, c.wout, c.inp, c.weight, N, IC, OC);
    sub_base(din, b_in, ni), sub_base(dw, b_w, nw), sub_base(db, b_b, OC);
    gradcheck("linear dinp", linear_loss, &c, c.inp, ni, din);
    gradcheck("linear dweight", linear_loss, &c, c.weight, nw, dw);
    if (with_bias) gradcheck("linear dbias", linear_loss, &c, c.bias, OC, db);

    float *fo = to_f(c.out, no); /* overwritten below: forward must not read it */
    for (size_t i = 0; i < no; i++) fo[i] = NAN;
    float *fb = with_bias ? to_f(c.bias, OC) : NULL;
    cllm_linear_forward(fo, to_f(c.inp, ni), to_f(c.weight, nw), fb, N, IC, OC);
    cmp_fd("linear out", fo, c.out, no);
    float *fdin = to_f(b_in, ni), *fdw = to_f(b_w, nw), *fdb = to_f(b_b, OC);
    cllm_linear_backward(fdin, fdw, with_bias ? fdb : NULL, to_f(c.wout, no), to_f(c.inp, ni),
                         to_f(c.weight, nw), N, IC, OC);
    cmp_fd_sub("linear dinp", fdin, b_in, din, ni);
    cmp_fd_sub("linear dweight", fdw, b_w, dw, nw);
    if (with_bias) cmp_fd_sub("linear dbias", fdb, b_b, db, OC);
    /* NULL gradients are skipped: dweight alone still gets the same increment. */
    float *fdw2 = to_f(b_w, nw);
    cllm_linear_backward(NULL, fdw2, NULL, to_f(c.wout, no), to_f(c.inp, ni), to_f(c.weight, nw),
                         N, IC, OC);
    cmp_fd_sub("linear dweight (dinp NULL)", fdw2, b_w, dw, nw);
}

static void test_layers_linear_gradients(void) {
    linear_case(1, 1, 1, 1);
    linear_case(3, 5, 7, 1);
    linear_case(4, 6, 3, 0);
    for (int it = 0; it < 3; it++) linear_case(rnd(1, 9), rnd(1, 17), rnd(1, 13), it != 1);
    tmp_free_all();
}

/* ---- layernorm / rmsnorm --------------------------------------------------- */

typedef struct {
    int N, C, rms;
    double *inp, *weight, *bias, *out, *mean, *rstd, *wout;
} norm_ctx;

static double norm_loss(void *p) {
    norm_ctx *c = p;
    if (c->rms)
        cllm_rmsnorm_forward_d(c->out, c->rstd, c->inp, c->weight, c->N, c->C, 1e-5);
    else
        cllm_layernorm_forward_d(c->out, c->mean, c->rstd, c->inp, c->weight, c->bias, c->N, c->C,
                                 1e-5);
    return dot(c->out, c->wout, (size_t)c->N * c->C);
}

static void norm_case(int rms, int N, int C, int with_bias, double offset) {
    size_t n = (size_t)N * C;
    norm_ctx c = {N, C, rms, drand(n, offset - 1, offset + 1), drand(C, 0.5, 1.5),
                  with_bias ? drand(C, -1, 1) : NULL, dzeros(n), dzeros(N), dzeros(N),
                  drand(n, -1, 1)};
    double *b_in = drand(n, -1, 1), *b_w = drand(C, -1, 1), *b_b = drand(C, -1, 1);
    double *din = dcopy(b_in, n), *dw = dcopy(b_w, C), *db = dcopy(b_b, C);
    norm_loss(&c);
    if (rms)
        cllm_rmsnorm_backward_d(din, dw, c.wout, c.inp, c.weight, c.rstd, N, C);
    else
        cllm_layernorm_backward_d(din, dw, with_bias ? db : NULL, c.wout, c.inp, c.weight, c.mean,
                                  c.rstd, N, C);
    sub_base(din, b_in, n), sub_base(dw, b_w, C), sub_base(db, b_b, C);
    const char *name = rms ? "rmsnorm" : "layernorm";
    char what[64];
    snprintf(what, sizeof what, "%s dinp", name);
    gradcheck(what, norm_loss, &c, c.inp, n, din);
    snprintf(what, sizeof what, "%s dweight", name);
    gradcheck(what, norm_loss, &c, c.weight, C, dw);
    if (with_bias && !rms) gradcheck("layernorm dbias", norm_loss, &c, c.bias, C, db);

    float *fo = to_f(c.out, n), *fm = to_f(c.mean, N), *fr = to_f(c.rstd, N);
    float *fin = to_f(c.inp, n), *fw = to_f(c.weight, C), *fb = with_bias ? to_f(c.bias, C) : NULL;
    float *fdin = to_f(b_in, n), *fdw = to_f(b_w, C), *fdb = to_f(b_b, C);
    if (rms) {
        cllm_rmsnorm_forward(fo, fr, fin, fw, N, C, 1e-5f);
        cllm_rmsnorm_backward(fdin, fdw, to_f(c.wout, n), fin, fw, fr, N, C);
    } else {
        cllm_layernorm_forward(fo, fm, fr, fin, fw, fb, N, C, 1e-5f);
        cmp_fd("layernorm mean", fm, c.mean, N);
        cllm_layernorm_backward(fdin, fdw, with_bias ? fdb : NULL, to_f(c.wout, n), fin, fw, fm,
                                fr, N, C);
        if (with_bias) cmp_fd_sub("layernorm dbias", fdb, b_b, db, C);
    }
    snprintf(what, sizeof what, "%s out", name);
    cmp_fd(what, fo, c.out, n);
    snprintf(what, sizeof what, "%s rstd", name);
    cmp_fd(what, fr, c.rstd, N);
    snprintf(what, sizeof what, "%s dinp", name);
    cmp_fd_sub(what, fdin, b_in, din, n);
    snprintf(what, sizeof what, "%s dweight", name);
    cmp_fd_sub(what, fdw, b_w, dw, C);
}

static void test_layers_layernorm_gradients(void) {
    norm_case(0, 1, 2, 1, 0);
    norm_case(0, 3, 5, 1, 0);
    norm_case(0, 2, 7, 0, 0);
    /* A common offset of 3 checks the two-pass variance. */
    for (int it = 0; it < 3; it++) norm_case(0, rnd(1, 6), rnd(2, 24), it != 1, it == 2 ? 3 : 0);
    tmp_free_all();
}

static void test_layers_rmsnorm_gradients(void) {
    norm_case(1, 1, 1, 0, 0.5);
    norm_case(1, 3, 5, 0, 0);
    for (int it = 0; it < 3; it++) norm_case(1, rnd(1, 6), rnd(2, 24), 0, it == 2 ? 2 : 0);
    tmp_free_all();
}

/* ---- RoPE ------------------------------------------------------------------ */

typedef struct {
    int B, T, nh, HS, off, pos0;
    size_t stride;
    const cllm_rope_params *rp;
    double *x, *work, *wout;
} rope_ctx;

static double rope_loss(void *p) {
    rope_ctx *c = p;
    size_t n = (size_t)c->B * c->T * c->stride;
    memcpy(c->work, c->x, n * sizeof *c->work);
    cllm_rope_forward_d(c->work + c->off, c->B, c->T, c->nh, c->HS, c->stride, c->pos0, c->rp);
    return dot(c->work, c->wout, n);
}

/* neox: half-split pairs; scale: freq_scale (linear scaling); div: per-pair
 * frequency divisors (Llama 3.1 scaling) drawn in [1, 8]. */
static void rope_case_ex(int B, int T, int nh, int HS, int off, int extra, int pos0, double theta, int neox,
                         double scale, int div) {
    size_t stride = (size_t)off + (size_t)nh * HS + extra, n = (size_t)B * T * stride;
    double *dv = div ? drand((size_t)HS / 2, 1, 8) : NULL;
    cllm_rope_params rp = {.theta = theta, .neox = neox, .freq_scale = scale, .freq_div = dv};
    rope_ctx c = {B, T, nh, HS, off, pos0, stride, &rp, drand(n, -1, 1), dzeros(n), drand(n, -1, 1)};
    /* Backward overwrites in place: the upstream gradient becomes dL/dx;
     * columns outside the heads pass through unchanged (identity). */
    double *dx = dcopy(c.wout, n);
    cllm_rope_backward_d(dx + off, B, T, nh, HS, stride, pos0, &rp);
    gradcheck("rope dx", rope_loss, &c, c.x, n, dx);

    float *fx = to_f(c.x, n), *fdx = to_f(c.wout, n);
    rope_loss(&c);
    cllm_rope_forward(fx + off, B, T, nh, HS, stride, pos0, &rp);
    cmp_fd("rope out", fx, c.work, n);
    cllm_rope_backward(fdx + off, B, T, nh, HS, stride, pos0, &rp);
    cmp_fd("rope dx", fdx, dx, n);
}

static void rope_case(int B, int T, int nh, int HS, int off, int extra, int pos0, double theta) {
    rope_case_ex(B, T, nh, HS, off, extra, pos0, theta, 0, 1.0, 0);
}

static void test_layers_rope_gradients(void) {
    rope_case(1, 1, 1, 2, 0, 0, 0, 10000);
    rope_case(2, 3, 2, 4, 0, 0, 5, 10000);
    /* Strided view inside a packed qkv row: heads start at column 6, 5 more follow. */
    rope_case(2, 4, 3, 2, 6, 5, 1, 100);
    rope_case(1, 5, 2, 8, 8, 16, 3, 500000);
    tmp_free_all();
}

/* NEOX pairs, linear scaling and per-pair divisors (Qwen2, SmolLM, Llama 3.1). */
static void test_layers_rope_scaled_gradients(void) {
    rope_case_ex(2, 3, 2, 4, 0, 0, 5, 10000, 1, 1.0, 0);
    rope_case_ex(2, 4, 3, 8, 6, 5, 1, 100, 1, 0.25, 0);
    rope_case_ex(1, 5, 2, 8, 8, 16, 3, 500000, 0, 0.125, 1);
    rope_case_ex(2, 3, 2, 16, 0, 3, 7, 10000, 1, 1.0, 1);
    tmp_free_all();
}

/* NEOX pairing: element i pairs with i + HS/2; linear scaling divides angles. */
static void test_layers_rope_neox_pairs(void) {
    float x[8];
    for (int i = 0; i < 8; i++) x[i] = (float)(i + 1);
    cllm_rope_params rp = {.theta = 10000.0, .neox = 1, .freq_scale = 0.5};
    cllm_rope_forward(x, 1, 1, 1, 8, 8, 7, &rp); /* position 7 */
    for (int i = 0; i < 4; i++) {
        double angle = 7 * 0.5 * pow(10000.0, -2.0 * i / 8);
        double x0 = i + 1, x1 = i + 5;
        /* float rounding of inputs/outputs ~1e-6 relative on values <= 10 */
        CHECK_NEAR(x[i], x0 * cos(angle) - x1 * sin(angle), 1e-5, 1e-6, "rotated first-half element");
        CHECK_NEAR(x[i + 4], x0 * sin(angle) + x1 * cos(angle), 1e-5, 1e-6, "rotated second-half element");
    }
}

/* The pairing convention is fixed by cllm/layers/layers.h (adjacent pairs, as in
 * llama.cpp's NORM RoPE): check one rotated pair against the formula. */
static void test_layers_rope_adjacent_pairs(void) {
    float x[2 * 8]; /* T = 2 positions, one head of HS = 8 */
    for (int i = 0; i < 16; i++) x[i] = (float)(i % 8 + 1);
    cllm_rope_params rp = {.theta = 10000.0, .freq_scale = 1.0};
    cllm_rope_forward(x, 1, 2, 1, 8, 8, 7, &rp); /* positions 7 and 8 */
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < 4; i++) {
            double angle = (7 + t) * pow(10000.0, -2.0 * i / 8);
            double x0 = 2 * i + 1, x1 = 2 * i + 2;
            /* float rounding of inputs/outputs ~1e-6 relative on values <= 10 */
            CHECK_NEAR(x[t * 8 + 2 * i], x0 * cos(angle) - x1 * sin(angle), 1e-5, 1e-6,
                       "rotated even element");
            CHECK_NEAR(x[t * 8 + 2 * i + 1], x0 * sin(angle) + x1 * cos(angle), 1e-5, 1e-6,
                       "rotated odd element");
        }
}

/* ---- attention --------------------------------------------------------------- */

typedef struct {
    int B, T, NH, NKV, HS;
    double *qkv, *out, *att, *wout;
} attn_ctx;

static double attn_loss(void *p) {
    attn_ctx *c = p;
    cllm_attention_forward_d(c->out, c->att, c->qkv, c->B, c->T, c->NH, c->NKV, c->HS);
    return dot(c->out, c->wout, (size_t)c->B * c->T * c->NH * c->HS);
}

static void attn_case(int B, int T, int NH, int NKV, int HS) {
    size_t nq = (size_t)B * T * (NH + 2 * NKV) * HS, no = (size_t)B * T * NH * HS;
    size_t na = (size_t)B * NH * T * T;
    attn_ctx c = {B, T, NH, NKV, HS, drand(nq, -1.5, 1.5), dzeros(no), dzeros(na),
                  drand(no, -1, 1)};
    attn_loss(&c);
    /* Saved probabilities: causal rows summing to 1 (double rounding only). */
    for (int bh = 0; bh < B * NH; bh++)
        for (int t = 0; t < T; t++) {
            const double *a = c.att + ((size_t)bh * T + t) * T;
            double s = 0, upper = 0;
            for (int t2 = 0; t2 < T; t2++) *(t2 <= t ? &s : &upper) += fabs(a[t2]);
            CHECK_NEAR(s, 1.0, 1e-12, 0, "softmax row sums to 1");
            CHECK(upper == 0, "future positions have probability exactly 0");
        }
    double *base = drand(nq, -1, 1), *dqkv = dcopy(base, nq), *datt = drand(na, -1, 1);
    cllm_attention_backward_d(dqkv, datt, c.wout, c.att, c.qkv, B, T, NH, NKV, HS);
    sub_base(dqkv, base, nq);
    char what[96];
    snprintf(what, sizeof what, "attention dqkv B%d T%d NH%d NKV%d HS%d", B, T, NH, NKV, HS);
    gradcheck(what, attn_loss, &c, c.qkv, nq, dqkv);

    float *fq = to_f(c.qkv, nq), *fo = to_f(c.out, no), *fa = to_f(c.att, na);
    for (size_t i = 0; i < na; i++) fa[i] = NAN; /* forward must overwrite all of att */
    cllm_attention_forward(fo, fa, fq, B, T, NH, NKV, HS);
    cmp_fd("attention out", fo, c.out, no);
    cmp_fd("attention att", fa, c.att, na);
    float *fdq = to_f(base, nq), *fdatt = to_f(datt, na);
    for (size_t i = 0; i < na; i++) fdatt[i] = NAN; /* scratch: must be written before read */
    cllm_attention_backward(fdq, fdatt, to_f(c.wout, no), fa, fq, B, T, NH, NKV, HS);
    cmp_fd_sub("attention dqkv", fdq, base, dqkv, nq);
}

static void test_layers_attention_gradients(void) {
    attn_case(2, 5, 4, 4, 3); /* multi-head */
    attn_case(2, 5, 4, 2, 3); /* grouped-query, 2 heads per group */
    attn_case(1, 6, 4, 1, 4); /* multi-query */
    attn_case(3, 1, 4, 2, 3); /* T = 1 */
    attn_case(1, 7, 2, 1, 5);
    for (int it = 0; it < 2; it++) {
        static const int nh_choices[] = {1, 2, 3, 4, 6};
        int NH = nh_choices[rnd(0, 4)], NKV;
        do NKV = rnd(1, NH);
        while (NH % NKV);
        attn_case(rnd(1, 2), rnd(1, 8), NH, NKV, rnd(1, 6));
    }
    tmp_free_all();
}

/* ---- attention with segments (packed sequences) --------------------------------- */

typedef struct {
    int B, T, NH, NKV, HS;
    const int32_t *seg;
    double *qkv, *out, *att, *wout;
    int window; /* sliding window (0: none) */
} attn_seg_ctx;

static double attn_seg_loss(void *p) {
    attn_seg_ctx *c = p;
    cllm_attention_forward_seg_d(c->out, c->att, c->qkv, c->seg, c->window, c->B, c->T, c->NH, c->NKV, c->HS);
    return dot(c->out, c->wout, (size_t)c->B * c->T * c->NH * c->HS);
}

/* all_one: one segment per row (the window alone). */
static void attn_seg_case_win(int B, int T, int NH, int NKV, int HS, int window, int all_one) {
    int QKV = (NH + 2 * NKV) * HS;
    size_t nq = (size_t)B * T * QKV, no = (size_t)B * T * NH * HS, na = (size_t)B * NH * T * T;
    int32_t *seg = tmp_alloc((size_t)B * T * sizeof *seg);
    for (int b = 0; b < B; b++) { /* random runs, ids increasing, a -1 padding tail sometimes */
        int id = 0;
        for (int t = 0; t < T; t++) {
            if (t > 0 && rnd(0, 2) == 0 && !all_one) id++;
            seg[b * T + t] = id;
        }
        if (T > 2 && rnd(0, 1) && !all_one) seg[b * T + T - 1] = -1;
    }
    attn_seg_ctx c = {B, T, NH, NKV, HS, seg, drand(nq, -1.5, 1.5), dzeros(no), dzeros(na), drand(no, -1, 1), window};
    attn_seg_loss(&c);
    /* probabilities live only inside the segment, rows sum to 1 */
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const double *a = c.att + (((size_t)b * NH + h) * T + t) * T;
                double s = 0, outside = 0;
                for (int t2 = 0; t2 < T; t2++) {
                    int inside = t2 <= t && (window == 0 || t - t2 < window);
                    for (int u = t2; u <= t && inside; u++) inside = seg[b * T + u] == seg[b * T + t];
                    *(inside ? &s : &outside) += fabs(a[t2]);
                }
                CHECK_NEAR(s, 1.0, 1e-12, 0, "segment softmax row sums to 1");
                CHECK(outside == 0, "no probability outside the segment and window");
            }
    /* each run computes exactly what plain causal attention computes on the run alone */
    for (int b = 0; b < B; b++)
        for (int t0 = 0; t0 < T;) {
            int t1 = t0;
            while (t1 < T && seg[b * T + t1] == seg[b * T + t0]) t1++;
            int n = t1 - t0;
            double *o1 = dzeros((size_t)n * NH * HS), *a1 = dzeros((size_t)NH * n * n);
            cllm_attention_forward_seg_d(o1, a1, c.qkv + ((size_t)b * T + t0) * QKV, NULL, window, 1, n, NH, NKV, HS);
            double worst = 0;
            for (size_t i = 0; i < (size_t)n * NH * HS; i++) {
                double d = fabs(o1[i] - c.out[((size_t)b * T + t0) * NH * HS + i]);
                if (d > worst) worst = d;
            }
            CHECK(worst <= 1e-12, "run [%d,%d) of row %d differs from attention on the run alone by %g", t0, t1, b,
                  worst); /* double rounding only: the same products in another order at most */
            t0 = t1;
        }
    double *base = drand(nq, -1, 1), *dqkv = dcopy(base, nq), *datt = drand(na, -1, 1);
    cllm_attention_backward_seg_d(dqkv, datt, c.wout, c.att, c.qkv, seg, window, B, T, NH, NKV, HS);
    sub_base(dqkv, base, nq);
    char what[96];
    snprintf(what, sizeof what, "segmented attention dqkv B%d T%d NH%d NKV%d HS%d window %d", B, T, NH, NKV, HS,
             window);
    gradcheck(what, attn_seg_loss, &c, c.qkv, nq, dqkv);
    float *fq = to_f(c.qkv, nq), *fo = to_f(c.out, no), *fa = to_f(c.att, na);
    cllm_attention_forward_seg(fo, fa, fq, seg, window, B, T, NH, NKV, HS);
    cmp_fd("segmented attention out", fo, c.out, no);
    float *fdq = to_f(base, nq), *fdatt = to_f(datt, na);
    cllm_attention_backward_seg(fdq, fdatt, to_f(c.wout, no), fa, fq, seg, window, B, T, NH, NKV, HS);
    cmp_fd_sub("segmented attention dqkv", fdq, base, dqkv, nq);
}

static void attn_seg_case(int B, int T, int NH, int NKV, int HS) { attn_seg_case_win(B, T, NH, NKV, HS, 0, 0); }

/* Sliding-window attention (Mistral), alone and inside packed segments. */
static void test_layers_attention_window(void) {
    attn_seg_case_win(2, 9, 4, 2, 3, 3, 1);
    attn_seg_case_win(1, 7, 2, 1, 4, 1, 1); /* each position sees only itself */
    attn_seg_case_win(2, 10, 4, 2, 2, 4, 0);
    attn_seg_case_win(1, 6, 2, 2, 3, 6, 1); /* window = T: plain causal */
    tmp_free_all();
}

static void test_layers_attention_segments(void) {
    attn_seg_case(2, 7, 4, 2, 3);
    attn_seg_case(1, 9, 2, 2, 4);
    attn_seg_case(3, 5, 4, 1, 2);
    for (int it = 0; it < 2; it++) attn_seg_case(rnd(1, 2), rnd(2, 10), 2, 1, rnd(1, 5));
    tmp_free_all();
}

/* ---- LoRA ------------------------------------------------------------------------ */

typedef struct {
    int N, IC, OC, r, stride;
    double scale;
    double *inp, *A, *B, *out, *xa, *wout, *base_out;
} lora_ctx;

static double lora_loss(void *p) {
    lora_ctx *c = p;
    memcpy(c->out, c->base_out, (size_t)c->N * c->stride * sizeof(double));
    cllm_lora_forward_d(c->out, c->stride, c->xa, c->inp, c->A, c->B, c->N, c->IC, c->OC, c->r, c->scale);
    return dot(c->out, c->wout, (size_t)c->N * c->stride);
}

static void lora_case(int N, int IC, int OC, int r, int extra) {
    int S = OC + extra;
    size_t no = (size_t)N * S;
    lora_ctx c = {N, IC, OC, r, S, 2.0 / r, drand((size_t)N * IC, -1, 1), drand((size_t)r * IC, -1, 1),
                  drand((size_t)OC * r, -1, 1), dzeros(no), dzeros((size_t)N * r), drand(no, -1, 1),
                  drand(no, -1, 1)};
    lora_loss(&c);
    /* forward accumulates into out and leaves the columns past OC untouched */
    for (int n = 0; n < N; n++)
        for (int j = OC; j < S; j++)
            CHECK(c.out[(size_t)n * S + j] == c.base_out[(size_t)n * S + j], "column %d past OC was written", j);
    double *dinp0 = drand((size_t)N * IC, -1, 1), *dA0 = drand((size_t)r * IC, -1, 1), *dB0 = drand((size_t)OC * r, -1, 1);
    double *dinp = dcopy(dinp0, (size_t)N * IC), *dA = dcopy(dA0, (size_t)r * IC), *dB = dcopy(dB0, (size_t)OC * r);
    double *dxa = dzeros((size_t)N * r);
    cllm_lora_backward_d(dinp, dA, dB, dxa, c.wout, S, c.xa, c.inp, c.A, c.B, N, IC, OC, r, c.scale);
    sub_base(dinp, dinp0, (size_t)N * IC);
    sub_base(dA, dA0, (size_t)r * IC);
    sub_base(dB, dB0, (size_t)OC * r);
    gradcheck("lora dinp", lora_loss, &c, c.inp, (size_t)N * IC, dinp);
    gradcheck("lora dA", lora_loss, &c, c.A, (size_t)r * IC, dA);
    gradcheck("lora dB", lora_loss, &c, c.B, (size_t)OC * r, dB);
    /* float library vs double */
    float *fo = to_f(c.base_out, no), *fxa = to_f(c.xa, (size_t)N * r);
    float *fi = to_f(c.inp, (size_t)N * IC), *fA = to_f(c.A, (size_t)r * IC), *fB = to_f(c.B, (size_t)OC * r);
    cllm_lora_forward(fo, S, fxa, fi, fA, fB, N, IC, OC, r, (float)c.scale);
    cmp_fd("lora out", fo, c.out, no);
    float *fdi = to_f(dinp0, (size_t)N * IC), *fdA = to_f(dA0, (size_t)r * IC), *fdB = to_f(dB0, (size_t)OC * r);
    float *fdxa = to_f(dxa, (size_t)N * r);
    cllm_lora_backward(fdi, fdA, fdB, fdxa, to_f(c.wout, no), S, fxa, fi, fA, fB, N, IC, OC, r, (float)c.scale);
    cmp_fd_sub("lora dinp", fdi, dinp0, dinp, (size_t)N * IC);
    cmp_fd_sub("lora dA", fdA, dA0, dA, (size_t)r * IC);
    cmp_fd_sub("lora dB", fdB, dB0, dB, (size_t)OC * r);
}

static void test_layers_lora_gradients(void) {
    lora_case(5, 6, 4, 2, 0);
    lora_case(3, 7, 5, 1, 9); /* a row block of a wider fused output */
    lora_case(4, 3, 8, 4, 3);
    lora_case(rnd(1, 6), rnd(1, 8), rnd(1, 8), rnd(1, 4), rnd(0, 5));
    tmp_free_all();
}

/* ---- GELU, SwiGLU, residual -------------------------------------------------- */

typedef struct {
    int N, H;
    double *inp, *out, *wout;
} act_ctx;

static double gelu_loss(void *p) {
    act_ctx *c = p;
    cllm_gelu_forward_d(c->out, c->inp, (size_t)c->N);
    return dot(c->out, c->wout, (size_t)c->N);
}

static void test_layers_gelu_gradients(void) {
    int N = 37;
    act_ctx c = {N, 0, drand(N, -4, 4), dzeros(N), drand(N, -1, 1)};
    double *base = drand(N, -1, 1), *din = dcopy(base, N);
    gelu_loss(&c);
    cllm_gelu_backward_d(din, c.inp, c.wout, N);
    sub_base(din, base, N);
    gradcheck("gelu dinp", gelu_loss, &c, c.inp, N, din);
    /* GPT-2's tanh form at x = 1: 0.5 (1 + tanh(sqrt(2/pi) 1.044715)) = 0.841192; the
     * printed value has 6 digits. */
    double one = 1, g1;
    cllm_gelu_forward_d(&g1, &one, 1);
    CHECK_NEAR(g1, 0.841192, 1e-6, 0, "gelu(1), tanh approximation");
    float *fi = to_f(c.inp, N), *fd = to_f(base, N);
    cllm_gelu_backward(fd, fi, to_f(c.wout, N), N);
    cmp_fd_sub("gelu dinp", fd, base, din, N);
    cllm_gelu_forward(fi, fi, N); /* in place */
    cmp_fd("gelu out (in place)", fi, c.out, N);
    tmp_free_all();
}

static double swiglu_loss(void *p) {
    act_ctx *c = p;
    cllm_swiglu_forward_d(c->out, c->inp, c->N, c->H);
    return dot(c->out, c->wout, (size_t)c->N * c->H);
}

static void test_layers_swiglu_gradients(void) {
    static const int shapes[][2] = {{1, 1}, {3, 5}, {4, 9}};
    for (int s = 0; s < 3; s++) {
        int N = shapes[s][0], H = shapes[s][1];
        size_t ni = (size_t)N * 2 * H, no = (size_t)N * H;
        act_ctx c = {N, H, drand(ni, -3, 3), dzeros(no), drand(no, -1, 1)};
        double *base = drand(ni, -1, 1), *din = dcopy(base, ni);
        swiglu_loss(&c);
        cllm_swiglu_backward_d(din, c.inp, c.wout, N, H);
        sub_base(din, base, ni);
        gradcheck("swiglu dinp", swiglu_loss, &c, c.inp, ni, din);
        float *fi = to_f(c.inp, ni), *fo = to_f(c.out, no), *fd = to_f(base, ni);
        cllm_swiglu_forward(fo, fi, N, H);
        cmp_fd("swiglu out", fo, c.out, no);
        cllm_swiglu_backward(fd, fi, to_f(c.wout, no), N, H);
        cmp_fd_sub("swiglu dinp", fd, base, din, ni);
    }
    /* silu(2) * 3 = 2 / (1 + e^-2) * 3 */
    float in[2] = {2, 3}, out;
    cllm_swiglu_forward(&out, in, 1, 1);
    CHECK_NEAR(out, 6.0 / (1.0 + exp(-2.0)), 1e-6, 1e-6, "silu(gate) * up");
    tmp_free_all();
}

/* The residual has no backward (identity on both branches under the +=
 * convention); its forward and aliasing are checked exactly. */
static void test_layers_residual_adds_and_aliases(void) {
    float a[5] = {1, 2, 3, 4, 5}, b[5] = {0.5f, -2, 1e-3f, 0, -5}, out[5];
    cllm_residual_forward(out, a, b, 5);
    for (int i = 0; i < 5; i++) CHECK(out[i] == a[i] + b[i], "out[%d]", i);
    cllm_residual_forward(a, a, b, 5); /* out aliases a */
    for (int i = 0; i < 5; i++) CHECK(a[i] == out[i], "aliased out[%d]", i);
}

/* ---- dropout ------------------------------------------------------------------ */

typedef struct {
    size_t N;
    double p;
    uint64_t seed;
    double *inp, *out, *wout;
    uint8_t *mask;
} drop_ctx;

static double drop_loss(void *p) {
    drop_ctx *c = p;
    cllm_dropout_forward_d(c->out, c->mask, c->inp, c->N, c->p, c->seed);
    return dot(c->out, c->wout, c->N);
}

static void test_layers_dropout_gradients_and_mask(void) {
    size_t N = 64;
    drop_ctx c = {N, 0.3, 99, drand(N, -1, 1), dzeros(N), drand(N, -1, 1), tmp_alloc(N)};
    drop_loss(&c);
    double *base = drand(N, -1, 1), *din = dcopy(base, N);
    cllm_dropout_backward_d(din, c.wout, c.mask, N, c.p);
    sub_base(din, base, N);
    gradcheck("dropout dinp", drop_loss, &c, c.inp, N, din);
    float *fo = to_f(c.out, N), *fd = to_f(base, N);
    uint8_t *fm = tmp_alloc(N);
    cllm_dropout_forward(fo, fm, to_f(c.inp, N), N, 0.3f, 99);
    CHECK(memcmp(fm, c.mask, N) == 0, "float and double draw the same mask");
    cmp_fd("dropout out", fo, c.out, N);
    cllm_dropout_backward(fd, to_f(c.wout, N), fm, N, 0.3f);
    cmp_fd_sub("dropout dinp", fd, base, din, N);

    /* Statistics and determinism on a large vector (parallel path). */
    size_t big = 100000;
    float *x = tmp_alloc(big * sizeof *x), *y1 = tmp_alloc(big * sizeof *y1),
          *y2 = tmp_alloc(big * sizeof *y2);
    uint8_t *m1 = tmp_alloc(big), *m2 = tmp_alloc(big), *m3 = tmp_alloc(big);
    for (size_t i = 0; i < big; i++) x[i] = 1.0f + (float)(i % 7);
    cllm_kernels_set_threads(1);
    cllm_dropout_forward(y1, m1, x, big, 0.1f, 1234);
    cllm_kernels_set_threads(2);
    cllm_dropout_forward(y2, m2, x, big, 0.1f, 1234);
    CHECK(memcmp(m1, m2, big) == 0 && memcmp(y1, y2, big * sizeof *y1) == 0,
          "same seed, 1 vs 2 threads: identical");
    cllm_dropout_forward(y2, m3, x, big, 0.1f, 1235);
    CHECK(memcmp(m1, m3, big) != 0, "another seed draws another mask");
    size_t kept = 0, bad = 0;
    for (size_t i = 0; i < big; i++) {
        kept += m1[i];
        if (m1[i] ? y1[i] != x[i] * (1.0f / 0.9f) : y1[i] != 0) bad++;
    }
    /* Binomial(1e5, 0.9): sd = sqrt(1e5 * 0.09) = 95; 500 is > 5 sd. */
    CHECK(labs((long)kept - 90000) < 500, "kept %zu of 100000 at p = 0.1", kept);
    CHECK(bad == 0, "%zu kept/dropped values wrong", bad);
    /* p = 0 copies and keeps everything. */
    cllm_dropout_forward(y2, m3, x, big, 0.0f, 5);
    CHECK(memcmp(y2, x, big * sizeof *x) == 0, "p = 0 copies");
    size_t ones = 0;
    for (size_t i = 0; i < big; i++) ones += m3[i];
    CHECK(ones == big, "p = 0 keeps all");
    tmp_free_all();
}

/* ---- cross-entropy ------------------------------------------------------------- */

typedef struct {
    int B, T, V;
    double *logits, *losses, *row_max, *row_rsum;
    int32_t *targets;
} ce_ctx;

static double ce_loss(void *p) {
    ce_ctx *c = p;
    return cllm_crossentropy_forward_d(c->losses, c->row_max, c->row_rsum, c->logits, c->targets,
                                       c->B, c->T, c->V);
}

static void ce_case(int B, int T, int V, double spread) {
    size_t nl = (size_t)B * T * V, nr = (size_t)B * T;
    ce_ctx c = {B, T, V, drand(nl, -spread, spread), dzeros(nr), dzeros(nr), dzeros(nr),
                tmp_alloc(nr * sizeof(int32_t))};
    int count = 0;
    for (size_t n = 0; n < nr; n++) {
        c.targets[n] = (n % 3 == 1) ? -1 : rnd(0, V - 1); /* every third masked */
        count += c.targets[n] >= 0;
    }
    c.logits[0] += 40; /* a dominant logit: stability of the max-subtracted softmax */
    double mean = ce_loss(&c), sum = 0;
    for (size_t n = 0; n < nr; n++) {
        /* the saved statistics: the row max and 1 / sum exp(l - max), by hand */
        double mx = -INFINITY, se = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, c.logits[n * V + v]);
        for (int v = 0; v < V; v++) se += exp(c.logits[n * V + v] - mx);
        CHECK(c.row_max[n] == mx, "row max");
        CHECK_NEAR(c.row_rsum[n], 1.0 / se, 1e-15, 1e-12, "row 1/sum (double rounding)");
        int32_t t = c.targets[n];
        if (t < 0) {
            CHECK(c.losses[n] == 0, "masked position has loss 0");
            continue;
        }
        /* double rounding only: exp/log of O(10) values */
        double p_t = exp(c.logits[n * V + t] - mx) / se;
        CHECK_NEAR(c.losses[n], -log(p_t), 1e-9, 1e-9, "loss = -log p(target)");
        sum += c.losses[n];
    }
    CHECK_NEAR(mean, count ? sum / count : 0, 1e-12, 1e-12, "mean over unmasked positions");
    double *dl = drand(nl, 5, 6); /* garbage: backward OVERWRITES */
    cllm_crossentropy_backward_d(dl, c.logits, c.row_max, c.row_rsum, c.targets, B, T, V,
                                 count ? 1.0 / count : 0);
    if (count && V > 1) {
        gradcheck("crossentropy dlogits", ce_loss, &c, c.logits, nl, dl);
    } else {
        /* V = 1: the softmax is constant 1, so the gradient really is zero. */
        for (size_t i = 0; i < nl; i++) CHECK(dl[i] == 0, "V = 1 gradient is zero");
    }
    float *fl = to_f(c.losses, nr), *fin = to_f(c.logits, nl);
    float *fmax_ = to_f(c.row_max, nr), *frs = to_f(c.row_rsum, nr);
    float fmean = cllm_crossentropy_forward(fl, fmax_, frs, fin, c.targets, B, T, V);
    CHECK_NEAR(fmean, mean, FD_ATOL, FD_RTOL, "float mean loss");
    cmp_fd("crossentropy losses", fl, c.losses, nr);
    cmp_fd("crossentropy row max", fmax_, c.row_max, nr);
    cmp_fd("crossentropy row 1/sum", frs, c.row_rsum, nr);
    float *fdl = to_f(dl, nl);
    for (size_t i = 0; i < nl; i++) fdl[i] = NAN;
    float scale = count ? 1.0f / count : 0.0f;
    cllm_crossentropy_backward(fdl, fin, fmax_, frs, c.targets, B, T, V, scale);
    cmp_fd("crossentropy dlogits", fdl, dl, nl);
    /* in place (dlogits == logits, as the model calls it): the same bits */
    cllm_crossentropy_backward(fin, fin, fmax_, frs, c.targets, B, T, V, scale);
    CHECK(memcmp(fin, fdl, nl * sizeof *fin) == 0, "in-place backward equals out-of-place");
}

static void test_layers_crossentropy_gradients(void) {
    ce_case(1, 1, 1, 1);
    ce_case(2, 3, 5, 2);
    ce_case(1, 4, 17, 3);
    ce_case(rnd(1, 3), rnd(1, 5), rnd(2, 30), 2);
    /* a vocabulary longer than the forward's 2048-element exp chunks, ragged */
    ce_case(1, 2, 4099, 3);
    /* All positions masked: mean 0, zero gradient. */
    float logits[6] = {1, 2, 3, 4, 5, 6}, rmax[2], rsum[2], losses[2], dl[6];
    int32_t tg[2] = {-1, -1};
    CHECK(cllm_crossentropy_forward(losses, rmax, rsum, logits, tg, 1, 2, 3) == 0.0f, "all masked");
    cllm_crossentropy_backward(dl, logits, rmax, rsum, tg, 1, 2, 3, 1.0f);
    for (int i = 0; i < 6; i++) CHECK(dl[i] == 0, "masked gradient zero");
    tmp_free_all();
}

/* ---- embedding ---------------------------------------------------------------- */

typedef struct {
    int B, T, C, pos0;
    int32_t *tokens;
    double *wte, *wpe, *out, *wout;
} emb_ctx;

static double emb_loss(void *p) {
    emb_ctx *c = p;
    cllm_embedding_forward_d(c->out, c->tokens, c->wte, c->wpe, c->B, c->T, c->C, c->pos0);
    return dot(c->out, c->wout, (size_t)c->B * c->T * c->C);
}

static void emb_case(int B, int T, int C, int V, int pos0, int with_wpe) {
    int maxT = pos0 + T + 2;
    size_t no = (size_t)B * T * C;
    emb_ctx c = {B, T, C, pos0, tmp_alloc((size_t)B * T * sizeof(int32_t)),
                 drand((size_t)V * C, -1, 1), with_wpe ? drand((size_t)maxT * C, -1, 1) : NULL,
                 dzeros(no), drand(no, -1, 1)};
    for (int i = 0; i < B * T; i++) c.tokens[i] = rnd(0, V - 1); /* V small: repeats */
    c.tokens[0] = 0; /* token 0 used at least once */
    double *bw = drand((size_t)V * C, -1, 1), *bp = drand((size_t)maxT * C, -1, 1);
    double *dwte = dcopy(bw, (size_t)V * C), *dwpe = dcopy(bp, (size_t)maxT * C);
    emb_loss(&c);
    cllm_embedding_backward_d(dwte, with_wpe ? dwpe : NULL, c.wout, c.tokens, B, T, C, pos0);
    sub_base(dwte, bw, (size_t)V * C), sub_base(dwpe, bp, (size_t)maxT * C);
    gradcheck("embedding dwte", emb_loss, &c, c.wte, (size_t)V * C, dwte);
    if (with_wpe) gradcheck("embedding dwpe", emb_loss, &c, c.wpe, (size_t)maxT * C, dwpe);
    float *fo = to_f(c.out, no), *fdw = to_f(bw, (size_t)V * C), *fdp = to_f(bp, (size_t)maxT * C);
    cllm_embedding_forward(fo, c.tokens, to_f(c.wte, (size_t)V * C),
                           with_wpe ? to_f(c.wpe, (size_t)maxT * C) : NULL, B, T, C, pos0);
    cmp_fd("embedding out", fo, c.out, no);
    cllm_embedding_backward(fdw, with_wpe ? fdp : NULL, to_f(c.wout, no), c.tokens, B, T, C, pos0);
    cmp_fd_sub("embedding dwte", fdw, bw, dwte, (size_t)V * C);
    cmp_fd_sub("embedding dwpe", fdp, bp, dwpe, (size_t)maxT * C);
}

static void test_layers_embedding_gradients(void) {
    emb_case(1, 1, 1, 1, 0, 1);
    emb_case(2, 3, 5, 4, 2, 1);
    emb_case(3, 4, 6, 3, 0, 0);
    emb_case(rnd(1, 3), rnd(1, 6), rnd(1, 9), rnd(2, 7), rnd(0, 3), 1);
    tmp_free_all();
}

static void test_layers_sinusoidal_table(void) {
    enum { maxT = 9, C = 7 }; /* odd C: the last column is a sine without its cosine */
    float tab[maxT * C];
    cllm_sinusoidal_table(tab, maxT, C);
    for (int pos = 0; pos < maxT; pos++)
        for (int j = 0; j < C; j++) {
            int i2 = j - j % 2; /* 2i */
            double angle = pos / pow(10000.0, (double)i2 / C);
            double want = j % 2 ? cos(angle) : sin(angle);
            /* float rounding of a value in [-1, 1] */
            CHECK_NEAR(tab[pos * C + j], want, 1e-7, 0, "sinusoidal entry");
        }
}

/* ---- threads: the parallel paths are race-free and thread-count independent --- */

static void test_layers_threads_bit_identical(void) {
    /* Sizes above LAYER_PAR_MIN so the OpenMP loops really fork. */
    int B = 2, T = 32, C = 384, V = 50, NH = 4, NKV = 2, HS = 16;
    size_t n = (size_t)B * T * C;
    int32_t *tok = tmp_alloc((size_t)B * T * sizeof *tok);
    for (int i = 0; i < B * T; i++) tok[i] = rnd(0, 3); /* heavy repeats */
    float *dout = to_f(drand(n, -1, 1), n), *inp = to_f(drand(n, -1, 1), n);
    float *w = to_f(drand(C, 0.5, 1.5), C);
    size_t nq = (size_t)B * T * (NH + 2 * NKV) * HS, na = (size_t)B * NH * T * T;
    size_t no = (size_t)B * T * NH * HS;
    float *qkv = to_f(drand(nq, -1, 1), nq), *aout = to_f(drand(no, -1, 1), no);
    int CV = 600; /* cross-entropy vocabulary: B*T*CV above the threshold too */
    size_t ncv = (size_t)B * T * CV, nh4 = 4 * n;
    float *ce_logits = to_f(drand(ncv, -3, 3), ncv), *gin = to_f(drand(nh4, -4, 4), nh4);
    int32_t *ce_tg = tmp_alloc((size_t)B * T * sizeof *ce_tg);
    for (int i = 0; i < B * T; i++) ce_tg[i] = i % 5 == 0 ? -1 : rnd(0, CV - 1);
    float *res[2][8];
    for (int r = 0; r < 2; r++) {
        cllm_kernels_set_threads(r + 1);
        float *dwte = tmp_alloc((size_t)V * C * sizeof(float));
        float *dwpe = tmp_alloc((size_t)T * C * sizeof(float));
        cllm_embedding_backward(dwte, dwpe, dout, tok, B, T, C, 0);
        float *o = tmp_alloc(n * sizeof(float)), *mean = tmp_alloc(B * T * sizeof(float));
        float *rstd = tmp_alloc(B * T * sizeof(float)), *din = tmp_alloc(n * sizeof(float));
        float *dw = tmp_alloc(C * sizeof(float)), *db = tmp_alloc(C * sizeof(float));
        cllm_layernorm_forward(o, mean, rstd, inp, w, NULL, B * T, C, 1e-5f);
        cllm_layernorm_backward(din, dw, db, dout, inp, w, mean, rstd, B * T, C);
        float *att = tmp_alloc(na * sizeof(float)), *datt = tmp_alloc(na * sizeof(float));
        float *ao = tmp_alloc(no * sizeof(float)), *dq = tmp_alloc(nq * sizeof(float));
        cllm_attention_forward(ao, att, qkv, B, T, NH, NKV, HS);
        cllm_attention_backward(dq, datt, aout, att, qkv, B, T, NH, NKV, HS);
        float *rmax = tmp_alloc((size_t)B * T * sizeof(float)), *dl = tmp_alloc(ncv * sizeof(float));
        float *rsum = tmp_alloc((size_t)B * T * sizeof(float));
        float *losses = tmp_alloc((size_t)B * T * sizeof(float));
        cllm_crossentropy_forward(losses, rmax, rsum, ce_logits, ce_tg, B, T, CV);
        cllm_crossentropy_backward(dl, ce_logits, rmax, rsum, ce_tg, B, T, CV, 0.01f);
        float *gout = tmp_alloc(nh4 * sizeof(float)), *gd = tmp_alloc(nh4 * sizeof(float));
        cllm_gelu_forward(gout, gin, nh4);
        cllm_gelu_backward(gd, gin, gout, nh4);
        res[r][0] = dwte, res[r][1] = dwpe, res[r][2] = din, res[r][3] = dw, res[r][4] = dq;
        res[r][5] = dl, res[r][6] = losses, res[r][7] = gd;
    }
    size_t sizes[8] = {(size_t)V * C, (size_t)T * C, n, (size_t)C, nq, ncv, (size_t)B * T, nh4};
    const char *names[8] = {"embedding dwte",  "embedding dwpe",     "layernorm dinp",
                            "layernorm dweight", "attention dqkv",   "crossentropy dlogits",
                            "crossentropy losses", "gelu dinp"};
    for (int k = 0; k < 8; k++)
        CHECK(memcmp(res[0][k], res[1][k], sizes[k] * sizeof(float)) == 0,
              "%s differs between 1 and 2 threads", names[k]);
    cllm_kernels_set_threads(2);
    tmp_free_all();
}

int main(void) {
    cllm_rng_seed(&rng, 20240607);
    cllm_kernels_set_threads(2);
    TEST_RUN(test_layers_linear_gradients);
    TEST_RUN(test_layers_layernorm_gradients);
    TEST_RUN(test_layers_rmsnorm_gradients);
    TEST_RUN(test_layers_rope_gradients);
    TEST_RUN(test_layers_rope_adjacent_pairs);
    TEST_RUN(test_layers_rope_scaled_gradients);
    TEST_RUN(test_layers_rope_neox_pairs);
    TEST_RUN(test_layers_attention_gradients);
    TEST_RUN(test_layers_attention_segments);
    TEST_RUN(test_layers_attention_window);
    TEST_RUN(test_layers_lora_gradients);
    TEST_RUN(test_layers_gelu_gradients);
    TEST_RUN(test_layers_swiglu_gradients);
    TEST_RUN(test_layers_residual_adds_and_aliases);
    TEST_RUN(test_layers_dropout_gradients_and_mask);
    TEST_RUN(test_layers_crossentropy_gradients);
    TEST_RUN(test_layers_embedding_gradients);
    TEST_RUN(test_layers_sinusoidal_table);
    TEST_RUN(test_layers_threads_bit_identical);
    return test_finish();
}
