/*
 * gelu.c: GELU activation, tanh approximation (Hendrycks & Gimpel 2016, as
 * in GPT-2): gelu(x) = 0.5 x (1 + tanh(k (x + 0.044715 x^3))), k = sqrt(2/pi).
 *
 * Backward: d/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) k (1 + 3*0.044715 x^2),
 * accumulated into dinp. Elementwise, in place allowed for forward
 * (out == inp: each chunk reads its inputs before writing). tanh comes from
 * the SIMD kernel (cllm_vtanh, ~2e-7 absolute error); the loops around it
 * are marked `omp simd` (at -O2 GCC left them scalar: 5 cycles an element,
 * ~2.5% of a GPT-2 prompt).
 * Does not: implement the exact erf form.
 */
#include "cllm/layers/layers.h"
#include "layer_real.h"

#define GELU_K R(0.7978845608028654) /* sqrt(2/pi) */
#define GELU_C R(0.044715)

/* tanh runs through the SIMD kernel on chunks of this many elements held on
 * the stack (no heap scratch); chunks are the unit of parallel work. */
#define GELU_CHUNK 512

void LAYER_FN(cllm_gelu_forward)(real *out, const real *inp, size_t N) {
    long n_chunks = (long)((N + GELU_CHUNK - 1) / GELU_CHUNK);
#pragma omp parallel for schedule(static) if (N >= LAYER_PAR_MIN)
    for (long ch = 0; ch < n_chunks; ch++) {
        size_t i0 = (size_t)ch * GELU_CHUNK, len = N - i0 < GELU_CHUNK ? N - i0 : GELU_CHUNK;
        real th[GELU_CHUNK];
#pragma omp simd
        for (size_t i = 0; i < len; i++) {
            real x = inp[i0 + i];
            th[i] = GELU_K * (x + GELU_C * x * x * x);
        }
        LAYER_VTANH(th, th, len);
#pragma omp simd
        for (size_t i = 0; i < len; i++) out[i0 + i] = R(0.5) * inp[i0 + i] * (R(1) + th[i]);
    }
}

void LAYER_FN(cllm_gelu_backward)(real *dinp, const real *inp, const real *dout, size_t N) {
    long n_chunks = (long)((N + GELU_CHUNK - 1) / GELU_CHUNK);
#pragma omp parallel for schedule(static) if (N >= LAYER_PAR_MIN)
    for (long ch = 0; ch < n_chunks; ch++) {
        size_t i0 = (size_t)ch * GELU_CHUNK, len = N - i0 < GELU_CHUNK ? N - i0 : GELU_CHUNK;
        real th[GELU_CHUNK];
#pragma omp simd
        for (size_t i = 0; i < len; i++) {
            real x = inp[i0 + i];
            th[i] = GELU_K * (x + GELU_C * x * x * x);
        }
        LAYER_VTANH(th, th, len);
#pragma omp simd
        for (size_t i = 0; i < len; i++) {
            real x = inp[i0 + i], t = th[i];
            real local = R(0.5) * (R(1) + t) +
                         R(0.5) * x * (R(1) - t * t) * GELU_K * (R(1) + R(3) * GELU_C * x * x);
            dinp[i0 + i] += local * dout[i0 + i];
        }
    }
}
