/*
 * swiglu.c: SwiGLU gating (Shazeer 2020, "GLU Variants Improve Transformer"):
 * inp[N,2H] holds gate (first H) then up (last H) of each row;
 * out[N,H] = silu(gate) * up, silu(g) = g * sigmoid(g).
 *
 * Backward, accumulated into dinp[N,2H]:
 *   dup   += dout * silu(g)
 *   dgate += dout * up * sigmoid(g) * (1 + g * (1 - sigmoid(g))).
 * Does not: perform the projections (linear.c does, with one fused gate+up
 * weight so a single GEMM produces inp).
 */
#include "cllm/layers.h"
#include "layer_real.h"

void LAYER_FN(cllm_swiglu_forward)(real *out, const real *inp, int N, int H) {
#pragma omp parallel for schedule(static) if ((long)N * H >= LAYER_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const real *gate = inp + (size_t)n * 2 * H, *up = gate + H;
        real *o = out + (size_t)n * H;
        for (int i = 0; i < H; i++) {
            real g = gate[i];
            o[i] = g / (R(1) + R_EXP(-g)) * up[i];
        }
    }
}

void LAYER_FN(cllm_swiglu_backward)(real *dinp, const real *inp, const real *dout, int N,
                                    int H) {
#pragma omp parallel for schedule(static) if ((long)N * H >= LAYER_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const real *gate = inp + (size_t)n * 2 * H, *up = gate + H;
        real *dgate = dinp + (size_t)n * 2 * H, *dup = dgate + H;
        const real *d = dout + (size_t)n * H;
        for (int i = 0; i < H; i++) {
            real g = gate[i];
            real sig = R(1) / (R(1) + R_EXP(-g));
            dup[i] += d[i] * g * sig;
            dgate[i] += d[i] * up[i] * sig * (R(1) + g * (R(1) - sig));
        }
    }
}
