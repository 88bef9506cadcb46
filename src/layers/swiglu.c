/*
 * swiglu.c: SwiGLU gating (Shazeer 2020, "GLU Variants Improve Transformer"):
 * inp[N,2H] holds gate (first H) then up (last H) of each row;
 * out[N,H] = silu(gate) * up, silu(g) = g * sigmoid(g).
 *
 * Backward, accumulated into dinp[N,2H]:
 *   dup   += dout * silu(g)
 *   dgate += dout * up * sigmoid(g) * (1 + g * (1 - sigmoid(g))).
 * Forward uses the tanh form of the sigmoid (below); backward uses exp.
 * Does not: perform the projections (linear.c does, with one fused gate+up
 * weight so a single GEMM produces inp).
 */
#include "cllm/layers/layers.h"
#include "layer_real.h"

/* Forward: sigmoid(g) = (1 + tanh(g / 2)) / 2 through the SIMD tanh kernel
 * (~2e-7 absolute error, as GELU) on stack chunks of this many elements:
 * a scalar expf per element was ~5% of a Llama prompt chunk. */
#define SWIGLU_CHUNK 512

void LAYER_FN(cllm_swiglu_forward)(real *out, const real *inp, int N, int H) {
#pragma omp parallel for schedule(static) if ((long)N * H >= LAYER_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const real *gate = inp + (size_t)n * 2 * H, *up = gate + H;
        real *o = out + (size_t)n * H;
        real th[SWIGLU_CHUNK];
        for (int i0 = 0; i0 < H; i0 += SWIGLU_CHUNK) {
            const int len = H - i0 < SWIGLU_CHUNK ? H - i0 : SWIGLU_CHUNK;
#pragma omp simd
            for (int i = 0; i < len; i++) th[i] = R(0.5) * gate[i0 + i];
            LAYER_VTANH(th, th, (size_t)len);
#pragma omp simd
            for (int i = 0; i < len; i++) o[i0 + i] = gate[i0 + i] * R(0.5) * (R(1) + th[i]) * up[i0 + i];
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
