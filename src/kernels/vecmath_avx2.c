/*
 * vecmath_avx2.c: AVX2 + FMA versions of the elementwise kernels in
 * cllm/kernels/kernels.h, for CPUs without AVX-512. Same algorithms and accuracy as
 * vecmath_avx512.c, except 2^k is built in the exponent bits, so exp of
 * x < -87.3 (below the smallest normal float) returns 0 instead of a
 * denormal. Entered only through vecmath.c's run-time dispatch.
 */
#include <immintrin.h>
#include <math.h>

#include "kernels_internal.h"

static inline __m256 v256_exp(__m256 x) {
    const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
    const __m256 ln2_hi = _mm256_set1_ps(0.693359375f);
    const __m256 ln2_lo = _mm256_set1_ps(-2.12194440e-4f);
    __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_LT_OQ); /* false for NaN */
    x = _mm256_min_ps(_mm256_set1_ps(88.7f), x); /* NaN x stays NaN (2nd operand) */
    x = _mm256_max_ps(_mm256_set1_ps(-87.3f), x);
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, ln2_hi, x);
    r = _mm256_fnmadd_ps(k, ln2_lo, r);
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    /* 2^k for k in [-126, 128]: k = 128 (x near 88.7) is split as 2^127 * 2. */
    __m256i ki = _mm256_cvtps_epi32(k);
    __m256i big = _mm256_cmpgt_epi32(ki, _mm256_set1_epi32(127));
    ki = _mm256_sub_epi32(ki, _mm256_and_si256(big, _mm256_set1_epi32(1)));
    __m256 pow2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(ki, _mm256_set1_epi32(127)), 23));
    p = _mm256_mul_ps(p, pow2);
    p = _mm256_blendv_ps(p, _mm256_add_ps(p, p), _mm256_castsi256_ps(big));
    return _mm256_andnot_ps(under, p);
}

static inline __m256i v256_tailmask(size_t left) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)left), idx);
}

float cllm_kernels_vmax_avx2(const float *x, size_t n) {
    __m256 m = _mm256_set1_ps(-INFINITY);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
    float lanes[8], best = -INFINITY;
    _mm256_storeu_ps(lanes, m);
    for (int j = 0; j < 8; j++) best = lanes[j] > best ? lanes[j] : best;
    for (; i < n; i++) best = x[i] > best ? x[i] : best;
    return best;
}

double cllm_kernels_vexp_shift_sum_avx2(float *y, const float *x, float shift, size_t n) {
    const __m256 s = _mm256_set1_ps(shift);
    double total = 0;
    size_t i = 0;
    while (i < n) {
        size_t end = n - i > 256 ? i + 256 : n;
        __m256 acc = _mm256_setzero_ps();
        for (; i + 8 <= end; i += 8) {
            __m256 e = v256_exp(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
            _mm256_storeu_ps(y + i, e);
            acc = _mm256_add_ps(acc, e);
        }
        if (i < end) {
            __m256i k = v256_tailmask(end - i);
            __m256 e = v256_exp(_mm256_sub_ps(_mm256_maskload_ps(x + i, k), s));
            _mm256_maskstore_ps(y + i, k, e);
            acc = _mm256_add_ps(acc, _mm256_and_ps(e, _mm256_castsi256_ps(k)));
            i = end;
        }
        float lanes[8];
        _mm256_storeu_ps(lanes, acc);
        for (int j = 0; j < 8; j++) total += lanes[j];
    }
    return total;
}

void cllm_kernels_vtanh_avx2(float *y, const float *x, size_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
    size_t i = 0;
    for (; i < n; i += 8) {
        __m256i k = v256_tailmask(n - i < 8 ? n - i : 8);
        __m256 v = _mm256_maskload_ps(x + i, k);
        __m256 e = v256_exp(_mm256_mul_ps(v, two));
        _mm256_maskstore_ps(y + i, k, _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(e, one))));
    }
}
