/*
 * optim_avx512.c: AVX-512 version of the AdamW kernel (optim.c has the
 * reference and the contract). Same operations in the same order, 16 lanes
 * at a time, the ragged tail under a mask: bit-identical to the reference.
 * Also the sum of squares (lanes 0-7 and 8-15 of the reference in two
 * registers, the tail masked). Entered only through optim.c's run-time dispatch.
 */
#include <immintrin.h>

#include "kernels_internal.h"

static inline void adamw16(float *param, const float *grad, float *m, float *v, __mmask16 k,
                           const cllm_adamw_coefs *c) {
    const __m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, grad), _mm512_set1_ps(c->grad_scale));
    __m512 p = _mm512_maskz_loadu_ps(k, param);
    if (c->decay) p = _mm512_mul_ps(p, _mm512_set1_ps(c->decay_mul));
    const __m512 mi = _mm512_fmadd_ps(g, _mm512_set1_ps(c->one_m_b1),
                                      _mm512_mul_ps(_mm512_maskz_loadu_ps(k, m), _mm512_set1_ps(c->b1)));
    const __m512 vi = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(c->one_m_b2), g), g,
                                      _mm512_mul_ps(_mm512_maskz_loadu_ps(k, v), _mm512_set1_ps(c->b2)));
    _mm512_mask_storeu_ps(m, k, mi);
    _mm512_mask_storeu_ps(v, k, vi);
    const __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), _mm512_set1_ps(c->bias2_sqrt)),
                                       _mm512_set1_ps(c->eps));
    const __m512 upd = _mm512_div_ps(_mm512_mul_ps(_mm512_set1_ps(c->neg_step), mi), denom);
    _mm512_mask_storeu_ps(param, k, _mm512_add_ps(p, upd));
}

void cllm_kernels_vadamw_avx512(float *param, const float *grad, float *m, float *v, size_t n,
                                const cllm_adamw_coefs *c) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) adamw16(param + i, grad + i, m + i, v + i, (__mmask16)0xffff, c);
    if (i < n) adamw16(param + i, grad + i, m + i, v + i, (__mmask16)((1u << (n - i)) - 1), c);
}

double cllm_kernels_vsumsq_avx512(const float *x, size_t n) {
    __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 f = _mm512_loadu_ps(x + i);
        const __m512d a = _mm512_cvtps_pd(_mm512_castps512_ps256(f));
        const __m512d b = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(f), 1)));
        lo = _mm512_fmadd_pd(a, a, lo);
        hi = _mm512_fmadd_pd(b, b, hi);
    }
    if (i < n) { /* masked-off lanes load 0 and add 0 */
        const __m512 f = _mm512_maskz_loadu_ps((__mmask16)((1u << (n - i)) - 1), x + i);
        const __m512d a = _mm512_cvtps_pd(_mm512_castps512_ps256(f));
        const __m512d b = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(f), 1)));
        lo = _mm512_fmadd_pd(a, a, lo);
        hi = _mm512_fmadd_pd(b, b, hi);
    }
    double lanes[16], total = 0;
    _mm512_storeu_pd(lanes, lo);
    _mm512_storeu_pd(lanes + 8, hi);
    for (int j = 0; j < 16; j++) total += lanes[j];
    return total;
}
