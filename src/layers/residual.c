/*
 * residual.c: the residual connection, out = a + b elementwise.
 *
 * out may alias a or b. Its backward is the identity on both branches, which
 * the += gradient convention gives for free (the model adds dout into both
 * inputs' gradients), so there is no residual_backward.
 */
#include "cllm/layers/layers.h"
#include "layer_real.h"

void LAYER_FN(cllm_residual_forward)(real *out, const real *a, const real *b, size_t N) {
#pragma omp parallel for simd schedule(static) if (N >= LAYER_PAR_MIN)
    for (size_t i = 0; i < N; i++) out[i] = a[i] + b[i];
}
