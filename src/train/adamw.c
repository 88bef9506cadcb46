/*
 * adamw.c: the AdamW update of optim.h (Loshchilov & Hutter 2019), written to
 * reproduce torch.optim.AdamW (PyTorch 1.13, single-tensor path, amsgrad off)
 * bit for bit in fp32.
 *
 * PyTorch evaluates, per element and in this order (all tensor math in fp32,
 * the scalars in double on the Python side and rounded to fp32 when applied):
 *   p  = p * (1 - lr*wd)                                   (mul_)
 *   m  = fma(g, 1-b1, m*b1)                                (mul_ then add_ with alpha;
 *                                                           its CPU kernel fuses a*x+y)
 *   v  = fma((1-b2)*g, g, v*b2)                            (mul_ then addcmul_, fused)
 *   d  = sqrt(v) / sqrt(1 - b2^t) + eps                    (true division, no reciprocal)
 *   p  = p + ((-lr / (1 - b1^t)) * m) / d                  (addcdiv_)
 * Measured against torch 1.13 on this machine: identical bits for params
 * and both moments over 5 steps (tests/test_optim.c). torch receives the
 * hyperparameters as doubles; we receive floats, so exact parity needs torch
 * to be given the float32-rounded values (the test does this).
 *
 * grad_scale multiplies each gradient as it is read (g = grad * scale, one
 * fp32 multiply, exactly what clipping in place followed by the update
 * gives), so clipping costs no extra pass over the gradients; 1 = none.
 * The elementwise pass is cllm_vadamw (src/kernels/optim.c, SIMD, threaded).
 *
 * Does not: choose which tensors decay (the caller passes `decay`), clip,
 * or schedule the learning rate (schedule.c, clip.c).
 */
#include <math.h>

#include "cllm/kernels/kernels.h"
#include "cllm/train/optim.h"

cllm_adamw_params cllm_adamw_default_params(void) {
    cllm_adamw_params p;
    p.lr = 1e-3f;
    p.beta1 = 0.9f;
    p.beta2 = 0.95f;
    p.eps = 1e-8f;
    p.weight_decay = 0.1f;
    p.grad_scale = 1.0f;
    return p;
}

void cllm_adamw_update(float *param, const float *grad, float *m, float *v, size_t n,
                       const cllm_adamw_params *hp, int64_t step, int decay) {
    const double lr = hp->lr, b1 = hp->beta1, b2 = hp->beta2;
    const double t = (double)(step < 1 ? 1 : step);
    const double bias1 = 1.0 - pow(b1, t);
    const double bias2 = 1.0 - pow(b2, t);
    cllm_adamw_coefs k;
    k.grad_scale = hp->grad_scale;
    k.decay_mul = (float)(1.0 - lr * (double)hp->weight_decay);
    k.decay = decay && hp->weight_decay != 0.0f;
    k.b1 = hp->beta1;
    k.b2 = hp->beta2;
    k.one_m_b1 = (float)(1.0 - b1);
    k.one_m_b2 = (float)(1.0 - b2);
    k.neg_step = (float)(-(lr / bias1));
    k.bias2_sqrt = (float)sqrt(bias2);
    k.eps = hp->eps;
    /* The per-element arithmetic (SIMD, threaded) lives in src/kernels/optim.c. */
    cllm_vadamw(param, grad, m, v, n, &k);
}
