/*
 * optim_avx2.c: AVX2 + FMA version of the AdamW kernel (optim.c has the
 * reference and the contract). Same operations in the same order, 8 lanes
 * at a time, bit-identical to the reference; the ragged tail (< 8 elements)
 * goes through the reference itself. Also the sum of squares (the
 * reference's 16 lanes in four registers). Entered only through optim.c's
 * run-time dispatch.
 */
#include <immintrin.h>

#include "kernels_internal.h"

void cllm_kernels_vadamw_avx2(float *param, const float *grad, float *m, float *v, size_t n,
                              const cllm_adamw_coefs *c) {
    const __m256 scale = _mm256_set1_ps(c->grad_scale), dmul = _mm256_set1_ps(c->decay_mul);
    const __m256 b1 = _mm256_set1_ps(c->b1), omb1 = _mm256_set1_ps(c->one_m_b1);
    const __m256 b2 = _mm256_set1_ps(c->b2), omb2 = _mm256_set1_ps(c->one_m_b2);
    const __m256 nstep = _mm256_set1_ps(c->neg_step), b2s = _mm256_set1_ps(c->bias2_sqrt);
    const __m256 eps = _mm256_set1_ps(c->eps);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_mul_ps(_mm256_loadu_ps(grad + i), scale);
        __m256 p = _mm256_loadu_ps(param + i);
        if (c->decay) p = _mm256_mul_ps(p, dmul);
        const __m256 mi = _mm256_fmadd_ps(g, omb1, _mm256_mul_ps(_mm256_loadu_ps(m + i), b1));
        const __m256 vi = _mm256_fmadd_ps(_mm256_mul_ps(omb2, g), g, _mm256_mul_ps(_mm256_loadu_ps(v + i), b2));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), b2s), eps);
        _mm256_storeu_ps(param + i, _mm256_add_ps(p, _mm256_div_ps(_mm256_mul_ps(nstep, mi), denom)));
    }
    if (i < n) cllm_vadamw_reference(param + i, grad + i, m + i, v + i, n - i, c);
}

double cllm_kernels_vsumsq_avx2(const float *x, size_t n) {
    __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int r = 0; r < 4; r++) {
            const __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4 * r));
            acc[r] = _mm256_fmadd_pd(a, a, acc[r]);
        }
    double lanes[16], total = 0;
    for (int r = 0; r < 4; r++) _mm256_storeu_pd(lanes + 4 * r, acc[r]);
    for (size_t j = 0; i + j < n; j++) lanes[j] += (double)x[i + j] * (double)x[i + j];
    for (int j = 0; j < 16; j++) total += lanes[j];
    return total;
}
