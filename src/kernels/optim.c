/*
 * optim.c: the AdamW update kernel (cllm/kernels/kernels.h, cllm_vadamw): its scalar
 * reference and the threaded loop over chunks of the version dispatch.c
 * chose (optim_avx512.c, optim_avx2.c or the reference).
 *
 * The arithmetic is src/train/adamw.c's (torch.optim.AdamW's order, in
 * fp32); adamw.c computes the coefficients and calls this. Every variant
 * gives the same bits as the reference: each step is one IEEE operation
 * (multiply, fused multiply-add, square root, division, addition), and
 * these are correctly rounded in scalar code, AVX2 and AVX-512 alike.
 * The reference calls fmaf, which is exact on every target (a libm call
 * where the compiler has no FMA instruction).
 *
 * Also the sum of squares behind the global gradient norm (cllm_vsumsq):
 * 16 double accumulators, element i into lane i % 16, lanes added 0..15 at
 * the end. Each square of a float is exact in double, so an FMA and a
 * multiply-then-add give the same bits, and every ISA reproduces the
 * reference exactly (AVX-512: two 8-lane registers; AVX2: four 4-lane ones).
 * Independent accumulators also break the 4-cycle add dependency that made
 * one serial double sum latency-bound.
 * Does not: compute coefficients (bias corrections, learning rate) or
 * decide which tensors decay.
 */
#include <math.h>

#include "cllm/kernels/kernels.h"
#include "kernels_internal.h"

/* Elements per parallel work item: 4 arrays x 16 Ki floats = 256 KiB in
 * flight, enough to amortise scheduling, small enough to balance. */
#define ADAMW_CHUNK 16384

void cllm_vadamw_reference(float *param, const float *grad, float *m, float *v, size_t n,
                           const cllm_adamw_coefs *k) {
    for (size_t i = 0; i < n; i++) {
        const float g = grad[i] * k->grad_scale;
        float p = param[i];
        if (k->decay) p = p * k->decay_mul;
        const float mi = fmaf(g, k->one_m_b1, m[i] * k->b1);
        const float vi = fmaf(k->one_m_b2 * g, g, v[i] * k->b2);
        m[i] = mi;
        v[i] = vi;
        const float denom = sqrtf(vi) / k->bias2_sqrt + k->eps;
        param[i] = p + (k->neg_step * mi) / denom;
    }
}

double cllm_vsumsq_reference(const float *x, size_t n) {
    double acc[16] = {0};
    for (size_t i = 0; i < n; i++) acc[i % 16] += (double)x[i] * (double)x[i];
    double total = 0;
    for (int j = 0; j < 16; j++) total += acc[j];
    return total;
}

void cllm_vadamw(float *param, const float *grad, float *m, float *v, size_t n,
                 const cllm_adamw_coefs *k) {
    void (*const fn)(float *, const float *, float *, float *, size_t, const cllm_adamw_coefs *) =
        cllm_kernels_get()->vadamw;
    /* a bf16 run's copy of these weights is rewritten chunk by chunk, while
     * the chunk is still in cache (kernels.h, the bf16 mirror) */
    uint16_t *copy = cllm_bf16_mirror_claim(param, n);
    const long long n_chunks = (long long)((n + ADAMW_CHUNK - 1) / ADAMW_CHUNK);
#pragma omp parallel for schedule(static) if (n_chunks > 1)
    for (long long c = 0; c < n_chunks; c++) {
        size_t lo = (size_t)c * ADAMW_CHUNK, len = n - lo < ADAMW_CHUNK ? n - lo : ADAMW_CHUNK;
        fn(param + lo, grad + lo, m + lo, v + lo, len, k);
        if (copy) cllm_bf16_round_span(param + lo, copy + lo, len);
    }
}

double cllm_vsumsq(const float *x, size_t n) {
    return cllm_kernels_get()->vsumsq(x, n);
}
