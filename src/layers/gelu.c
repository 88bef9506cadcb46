/*
 * gelu.c: GELU activation, tanh approximation (Hendrycks & Gimpel 2016, as
 * in GPT-2): gelu(x) = 0.5 x (1 + tanh(k (x + 0.044715 x^3))), k = sqrt(2/pi).
 *
 * Backward: d/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) k (1 + 3*0.044715 x^2),
 * accumulated into dinp. Elementwise, in place allowed for forward
 * (out == inp).
 * Does not: implement the exact erf form.
 */
#include "cllm/layers.h"
#include "layer_real.h"

#define GELU_K R(0.7978845608028654) /* sqrt(2/pi) */
#define GELU_C R(0.044715)

void LAYER_FN(cllm_gelu_forward)(real *out, const real *inp, size_t N) {
#pragma omp parallel for schedule(static) if (N >= LAYER_PAR_MIN)
    for (size_t i = 0; i < N; i++) {
        real x = inp[i];
        out[i] = R(0.5) * x * (R(1) + R_TANH(GELU_K * (x + GELU_C * x * x * x)));
    }
}

void LAYER_FN(cllm_gelu_backward)(real *dinp, const real *inp, const real *dout, size_t N) {
#pragma omp parallel for schedule(static) if (N >= LAYER_PAR_MIN)
    for (size_t i = 0; i < N; i++) {
        real x = inp[i];
        real th = R_TANH(GELU_K * (x + GELU_C * x * x * x));
        real local = R(0.5) * (R(1) + th) +
                     R(0.5) * x * (R(1) - th * th) * GELU_K * (R(1) + R(3) * GELU_C * x * x);
        dinp[i] += local * dout[i];
    }
}
