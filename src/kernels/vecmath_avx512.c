/*
 * vecmath_avx512.c: AVX-512 versions of the elementwise kernels in
 * cllm/kernels/kernels.h (max, exp with shift and sum, tanh). Compiled with AVX-512
 * flags (file suffix); entered only through vecmath.c's run-time dispatch.
 *
 * exp(x): x = k ln2 + r with k = round(x log2 e), |r| <= ln2/2, ln2 split in
 * a high and a low part (Cody-Waite) so r is exact to float precision; e^r by
 * its degree-6 Taylor polynomial (truncation r^7/7! <= 1.2e-7 relative at
 * |r| = 0.347, about 1 ulp); times 2^k with vscalefps, which produces
 * denormals and 0 correctly for very negative x and inf above 88.72. NaN in,
 * NaN out (the min/max clamps keep a NaN operand in the position whose value
 * is returned).
 * tanh(x) = 1 - 2 / (exp(2x) + 1): absolute error about 2e-7 (relative error
 * grows near 0, where tanh(x) ~ x is small); saturates to +-1.
 */
#include <immintrin.h>
#include <math.h>

#include "kernels_internal.h"

static inline __m512 v512_exp(__m512 x) {
    const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
    const __m512 ln2_hi = _mm512_set1_ps(0.693359375f);
    const __m512 ln2_lo = _mm512_set1_ps(-2.12194440e-4f);
    /* Clamp with the constant first: for NaN x, min/max return x (2nd operand). */
    x = _mm512_min_ps(_mm512_set1_ps(88.8f), x);
    x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, ln2_hi, x);
    r = _mm512_fnmadd_ps(k, ln2_lo, r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, k);
}

float cllm_kernels_vmax_avx512(const float *x, size_t n) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        m = _mm512_mask_max_ps(m, k, m, _mm512_maskz_loadu_ps(k, x + i));
    }
    return _mm512_reduce_max_ps(m);
}

double cllm_kernels_vexp_shift_sum_avx512(float *y, const float *x, float shift, size_t n) {
    const __m512 s = _mm512_set1_ps(shift);
    double total = 0;
    size_t i = 0;
    while (i < n) {
        /* Float partial sums over at most 256 elements, then into double. */
        size_t end = n - i > 256 ? i + 256 : n;
        __m512 acc = _mm512_setzero_ps();
        for (; i + 16 <= end; i += 16) {
            __m512 e = v512_exp(_mm512_sub_ps(_mm512_loadu_ps(x + i), s));
            _mm512_storeu_ps(y + i, e);
            acc = _mm512_add_ps(acc, e);
        }
        if (i < end) {
            __mmask16 k = (__mmask16)((1u << (end - i)) - 1);
            __m512 e = v512_exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), s));
            _mm512_mask_storeu_ps(y + i, k, e);
            acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(k, e));
            i = end;
        }
        total += (double)_mm512_reduce_add_ps(acc);
    }
    return total;
}

static inline __m512 v512_tanh(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f), two = _mm512_set1_ps(2.0f);
    __m512 e = v512_exp(_mm512_mul_ps(x, two));
    return _mm512_sub_ps(one, _mm512_div_ps(two, _mm512_add_ps(e, one)));
}

void cllm_kernels_vtanh_avx512(float *y, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, v512_tanh(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, k, v512_tanh(_mm512_maskz_loadu_ps(k, x + i)));
    }
}
