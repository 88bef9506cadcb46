/*
 * rope.c: rotary position embedding (Su et al. 2021, "RoFormer"), applied in
 * place to query or key heads. Pair i of a head (adjacent elements
 * (x[2i], x[2i+1]), llama.cpp's LLAMA_ROPE_TYPE_NORM; or with neox the
 * halves (x[i], x[i+HS/2]), GPT-NeoX's and Hugging Face's rotate_half,
 * llama.cpp's NEOX type) rotates by
 *     angle = pos * freq_scale * theta^(-2i/HS) / freq_div[i]
 * (freq_scale and freq_div carry linear and Llama-3 frequency scaling;
 * layers.h).
 *
 * Angles and their sines/cosines are computed in double (pos * freq reaches
 * thousands of radians, where float argument rounding costs ~1e-4), once per
 * (position, pair) and reused across heads. Backward applies the inverse
 * rotation (the transpose), so it overwrites dx in place.
 * Does not: rotate part of a head (n_rot < HS) or YaRN/LongRoPE scaling.
 */
#include "cllm/layers/layers.h"
#include "cllm/core/status.h"
#include "layer_real.h"

/* Largest head size supported (frequencies live in a stack array). */
#define ROPE_MAX_HS 1024

static void rope_rotate(real *x, int B, int T, int nh, int HS, size_t row_stride, int pos0,
                        const cllm_rope_params *rp, double sign) {
    CLLM_ASSERT(HS > 0 && HS <= ROPE_MAX_HS && HS % 2 == 0);
    double freq[ROPE_MAX_HS / 2];
    const int half = HS / 2;
    for (int i = 0; i < half; i++) {
        freq[i] = pow(rp->theta, -2.0 * i / HS) * (rp->freq_scale > 0 ? rp->freq_scale : 1.0);
        if (rp->freq_div) freq[i] /= rp->freq_div[i];
    }
    /* element offsets of pair i's two members */
    const int step = rp->neox ? 1 : 2, other = rp->neox ? half : 1;
    long n_rows = (long)B * T;
#pragma omp parallel for schedule(static) if (n_rows * nh * HS >= LAYER_PAR_MIN)
    for (long n = 0; n < n_rows; n++) {
        int pos = pos0 + (int)(n % T);
        real *row = x + (size_t)n * row_stride;
        for (int i = 0; i < half; i++) {
            double angle = pos * freq[i];
            real c = (real)cos(angle), s = (real)(sign * sin(angle));
            for (int h = 0; h < nh; h++) {
                real *p = row + (size_t)h * HS + (size_t)step * i;
                real x0 = p[0], x1 = p[other];
                p[0] = x0 * c - x1 * s;
                p[other] = x0 * s + x1 * c;
            }
        }
    }
}

void LAYER_FN(cllm_rope_forward)(real *x, int B, int T, int nh, int HS, size_t row_stride,
                                 int pos0, const cllm_rope_params *rp) {
    rope_rotate(x, B, T, nh, HS, row_stride, pos0, rp, 1.0);
}

void LAYER_FN(cllm_rope_backward)(real *dx, int B, int T, int nh, int HS, size_t row_stride,
                                  int pos0, const cllm_rope_params *rp) {
    rope_rotate(dx, B, T, nh, HS, row_stride, pos0, rp, -1.0);
}
