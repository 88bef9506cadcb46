/*
 * layer_real.h: lets every file of src/layers/ be compiled twice, once in
 * float (the library, the functions declared in cllm/layers/layers.h) and once in
 * double (only inside tests/test_layers.c, which defines CLLM_LAYERS_DOUBLE
 * and #includes the layer sources), so the double-precision finite-difference
 * gradient checks exercise the very code the float build runs.
 *
 * Provides: the `real` element type, LAYER_FN(name) (name, or name_d in the
 * double build), the math functions for `real`, R(x) for literals, and the
 * kernels: LAYER_GEMM is cllm_gemm in float (fp32 or bf16 products, by the
 * matmul precision); in double, cllm_layers_test_dgemm,
 * a plain double GEMM with the same row-major convention that the test file
 * defines. LAYER_VMAX / LAYER_VEXP_SHIFT_SUM / LAYER_VTANH are the SIMD
 * elementwise kernels in float and plain libm loops in double.
 * Does not: contain any arithmetic itself.
 */
#ifndef CLLM_LAYER_REAL_H
#define CLLM_LAYER_REAL_H

#include <math.h>
#include <stddef.h>

#ifdef CLLM_LAYERS_DOUBLE
typedef double real;
#define LAYER_FN(name) name##_d
#define R_EXP exp
#define R_LOG log
#define R_SQRT sqrt
#define R_TANH tanh
#define LAYER_GEMM cllm_layers_test_dgemm
void cllm_layers_test_dgemm(int trans_a, int trans_b, int M, int N, int K, double alpha,
                            const double *A, int lda, const double *B, int ldb, double beta,
                            double *C, int ldc);
/* Double stand-ins for the float elementwise kernels (same contracts). */
static inline double layer_d_vmax(const double *x, size_t n) {
    double m = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (x[i] > m) m = x[i];
    return m;
}
static inline double layer_d_vexp_shift_sum(double *y, const double *x, double shift, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (y[i] = exp(x[i] - shift));
    return s;
}
static inline void layer_d_vtanh(double *y, const double *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = tanh(x[i]);
}
#define LAYER_VMAX layer_d_vmax
#define LAYER_VEXP_SHIFT_SUM layer_d_vexp_shift_sum
#define LAYER_VTANH layer_d_vtanh
#else
#include "cllm/kernels/kernels.h"
typedef float real;
#define LAYER_FN(name) name
#define R_EXP expf
#define R_LOG logf
#define R_SQRT sqrtf
#define R_TANH tanhf
#define LAYER_GEMM cllm_gemm
#define LAYER_VMAX cllm_vmax
#define LAYER_VEXP_SHIFT_SUM cllm_vexp_shift_sum
#define LAYER_VTANH cllm_vtanh
#endif

/* A literal of type real (keeps float code free of double promotions). */
#define R(x) ((real)(x))

/* OpenMP loops only fork when there is at least this much work (elements
 * touched): a fork/join costs a few microseconds, more under a passive wait
 * policy, which swamps small rows. */
#define LAYER_PAR_MIN 16384

#endif
