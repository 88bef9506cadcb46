/*
 * vecmath.c: entry points and scalar references of the elementwise kernels
 * (max, shifted exp with sum, tanh) that softmax, cross-entropy and GELU use.
 *
 * Does: dispatch through the table (vecmath_avx512.c, vecmath_avx2.c, or the
 * references here). The references are plain loops over libm and define
 * the results the SIMD versions are tested against.
 * Does not: promise bit-identical results across ISAs (only the accuracy
 * bounds in cllm/kernels/kernels.h).
 */
#include <math.h>

#include "cllm/kernels/kernels.h"

float cllm_vmax_reference(const float *x, size_t n) {
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (x[i] > m) m = x[i];
    return m;
}

double cllm_vexp_shift_sum_reference(float *y, const float *x, float shift, size_t n) {
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        y[i] = expf(x[i] - shift);
        sum += y[i];
    }
    return sum;
}

void cllm_vtanh_reference(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}

float cllm_vmax(const float *x, size_t n) { return cllm_kernels_get()->vmax(x, n); }

double cllm_vexp_shift_sum(float *y, const float *x, float shift, size_t n) {
    return cllm_kernels_get()->vexp_shift_sum(y, x, shift, n);
}

void cllm_vtanh(float *y, const float *x, size_t n) { cllm_kernels_get()->vtanh(y, x, n); }
