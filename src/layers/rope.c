/*
 * rope.c: rotary position embedding (Su et al. 2021, "RoFormer"), applied in
 * place to query or key heads, adjacent-pair convention (llama.cpp's
 * LLAMA_ROPE_TYPE_NORM): pair (x[2i], x[2i+1]) of every head rotates by
 * angle = pos * theta^(-2i/HS).
 *
 * Angles and their sines/cosines are computed in double (pos * freq reaches
 * thousands of radians, where float argument rounding costs ~1e-4), once per
 * (position, pair) and reused across heads. Backward applies the inverse
 * rotation (the transpose), so it overwrites dx in place.
 * Does not: support NEOX-style half-split pairing or frequency scaling.
 */
#include "cllm/layers/layers.h"
#include "cllm/core/status.h"
#include "layer_real.h"

/* Largest head size supported (frequencies live in a stack array). */
#define ROPE_MAX_HS 1024

static void rope_rotate(real *x, int B, int T, int nh, int HS, size_t row_stride, int pos0,
                        real theta, double sign) {
    CLLM_ASSERT(HS > 0 && HS <= ROPE_MAX_HS);
    double freq[ROPE_MAX_HS / 2];
    for (int i = 0; 2 * i + 1 < HS; i++) freq[i] = pow((double)theta, -2.0 * i / HS);
    long n_rows = (long)B * T;
#pragma omp parallel for schedule(static) if (n_rows * nh * HS >= LAYER_PAR_MIN)
    for (long n = 0; n < n_rows; n++) {
        int pos = pos0 + (int)(n % T);
        real *row = x + (size_t)n * row_stride;
        for (int i = 0; 2 * i + 1 < HS; i++) {
            double angle = pos * freq[i];
            real c = (real)cos(angle), s = (real)(sign * sin(angle));
            for (int h = 0; h < nh; h++) {
                real *p = row + (size_t)h * HS + 2 * i;
                real x0 = p[0], x1 = p[1];
                p[0] = x0 * c - x1 * s;
                p[1] = x0 * s + x1 * c;
            }
        }
    }
}

void LAYER_FN(cllm_rope_forward)(real *x, int B, int T, int nh, int HS, size_t row_stride,
                                 int pos0, real theta) {
    rope_rotate(x, B, T, nh, HS, row_stride, pos0, theta, 1.0);
}

void LAYER_FN(cllm_rope_backward)(real *dx, int B, int T, int nh, int HS, size_t row_stride,
                                  int pos0, real theta) {
    rope_rotate(dx, B, T, nh, HS, row_stride, pos0, theta, -1.0);
}
