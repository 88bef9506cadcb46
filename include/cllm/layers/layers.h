/*
 * layers.h: the transformer's layers, each a forward/backward pair.
 *
 * One file per layer in src/layers/. Legend used everywhere:
 *   B batch, T time (sequence), C channels (model width), V vocabulary,
 *   NH query heads, NKV key/value heads (NKV divides NH), HS head size,
 *   H hidden width of the MLP, N = B*T rows.
 * All tensors are row-major float32, contiguous, shapes given in brackets.
 *
 * Gradient convention (as in llm.c): every backward ACCUMULATES (+=) into
 * the gradients of parameters and of inputs, so a caller zeroes gradient
 * buffers once per step and residual branches add naturally. The one
 * exception is stated on the function. Forward functions OVERWRITE their
 * outputs. `out` may not alias `inp` unless the function says so.
 *
 * Matrix multiplies go through src/kernels (cllm/kernels/kernels.h); nothing here
 * contains intrinsics.
 */
#ifndef CLLM_LAYERS_H
#define CLLM_LAYERS_H

#include <stddef.h>
#include <stdint.h>

/* ---- token + position embedding ---------------------------------------- */
/* out[B,T,C] = wte[tokens[b,t]] (+ wpe[pos0 + t] when wpe != NULL).
 * tokens must be in [0, V) (the caller validates input). */
void cllm_embedding_forward(float *out, const int32_t *tokens, const float *wte, const float *wpe,
                            int B, int T, int C, int pos0);
/* dwte[V,C] += scatter of dout; dwpe[maxT,C] += sum over batch (if non-NULL). */
void cllm_embedding_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tokens,
                             int B, int T, int C, int pos0);

/* Sinusoidal position table (Vaswani et al. 2017, sec. 3.5):
 * table[pos, 2i] = sin(pos / 10000^(2i/C)), table[pos, 2i+1] = cos(...). */
void cllm_sinusoidal_table(float *table, int max_T, int C);

/* ---- linear: out = inp @ weight^T + bias ------------------------------ */
/* out[N,OC]; inp[N,IC]; weight[OC,IC] (PyTorch nn.Linear layout); bias[OC] or NULL. */
void cllm_linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                         int N, int IC, int OC);
/* dinp[N,IC] += dout @ weight; dweight[OC,IC] += dout^T @ inp; dbias[OC] += colsum(dout).
 * dinp, dweight or dbias may be NULL to skip (frozen weights, first layer). */
void cllm_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                          const float *inp, const float *weight, int N, int IC, int OC);

/* ---- LayerNorm (Ba et al. 2016), eps = 1e-5 ----------------------------- */
/* out[N,C]; mean[N], rstd[N] saved for backward; weight[C]; bias[C] or NULL. */
void cllm_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                            const float *weight, const float *bias, int N, int C, float eps);
void cllm_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                             const float *inp, const float *weight, const float *mean,
                             const float *rstd, int N, int C);

/* ---- RMSNorm (Zhang & Sennrich 2019) ----------------------------------- */
/* out[N,C] = inp * rstd * weight, rstd[N] = 1/sqrt(mean(inp^2) + eps). */
void cllm_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight,
                          int N, int C, float eps);
void cllm_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                           const float *weight, const float *rstd, int N, int C);

/* ---- rotary position embedding (Su et al. 2021) --------------------------
 * Pair i of every head rotates by
 *     angle = pos * freq_scale * theta^(-2i/HS) / freq_div[i].
 * Pairs are adjacent (x[2i], x[2i+1]) (GPT-J style, llama.cpp's
 * LLAMA_ROPE_TYPE_NORM, the one llama.cpp applies to the `llama`
 * architecture, so our llama files need no Q/K permutation), or with neox
 * the halves (x[i], x[i+HS/2]) (GPT-NeoX / Hugging Face rotate_half,
 * llama.cpp's NEOX type, used for `qwen2`). freq_scale is linear scaling
 * (1/factor; 0 or 1: none); freq_div, when not NULL, holds HS/2 per-pair
 * divisors (Llama 3.1's scaling, llama.cpp's rope_freqs.weight). */
typedef struct {
    double theta;           /* frequency base (10000) */
    int neox;               /* 0: adjacent pairs; 1: half split */
    double freq_scale;      /* angles times this (linear scaling); 0 or 1: none */
    const double *freq_div; /* NULL or [HS/2] */
} cllm_rope_params;
/* In place on x[B,T,nh,HS] (a strided view: row stride `row_stride` floats
 * between consecutive (b,t)), positions pos0 + t. HS even, <= 1024. */
void cllm_rope_forward(float *x, int B, int T, int nh, int HS, size_t row_stride, int pos0,
                       const cllm_rope_params *rp);
/* In place: dx = R(-angle) applied to dx (the rotation's transpose). Overwrites. */
void cllm_rope_backward(float *dx, int B, int T, int nh, int HS, size_t row_stride, int pos0,
                        const cllm_rope_params *rp);

/* ---- causal multi-head attention with grouped-query heads --------------
 * qkv[B,T,(NH+2*NKV)*HS] packs per token: NH query heads, then NKV key heads,
 * then NKV value heads. Query head h uses key/value head h / (NH/NKV).
 * out[B,T,NH*HS]; att[B,NH,T,T] saves softmax probabilities (upper triangle
 * zero) for backward. Scale 1/sqrt(HS). */
void cllm_attention_forward(float *out, float *att, const float *qkv, int B, int T, int NH,
                            int NKV, int HS);
/* dqkv[B,T,(NH+2*NKV)*HS] += ...; scratch datt[B,NH,T,T] is overwritten. */
void cllm_attention_backward(float *dqkv, float *datt, const float *dout, const float *att,
                             const float *qkv, int B, int T, int NH, int NKV, int HS);
/* Packed sequences: seg[B,T] segment ids (NULL = plain causal); position t
 * attends only to t2 <= t inside its contiguous run of equal ids. A sliding
 * window > 0 (Mistral) also limits it to t2 > t - window; 0: no window. */
void cllm_attention_forward_seg(float *out, float *att, const float *qkv, const int32_t *seg, int window,
                                int B, int T, int NH, int NKV, int HS);
void cllm_attention_backward_seg(float *dqkv, float *datt, const float *dout, const float *att,
                                 const float *qkv, const int32_t *seg, int window, int B, int T, int NH,
                                 int NKV, int HS);

/* ---- activations -------------------------------------------------------- */
/* GELU, tanh approximation (Hendrycks & Gimpel 2016) as in GPT-2. out[N]. */
void cllm_gelu_forward(float *out, const float *inp, size_t N);
void cllm_gelu_backward(float *dinp, const float *inp, const float *dout, size_t N);
/* SwiGLU (Shazeer 2020): inp[N,2H] holds gate (first H) then up (last H);
 * out[N,H] = silu(gate) * up. */
void cllm_swiglu_forward(float *out, const float *inp, int N, int H);
void cllm_swiglu_backward(float *dinp, const float *inp, const float *dout, int N, int H);

/* ---- residual ------------------------------------------------------------ */
/* out[N] = a + b (out may alias a or b). */
void cllm_residual_forward(float *out, const float *a, const float *b, size_t N);

/* ---- dropout (inverted): out = inp * mask / (1-p), mask drawn from seed ---- */
/* mask[N] bytes saved (1 keep, 0 drop). p = 0 copies. Deterministic in seed. */
void cllm_dropout_forward(float *out, uint8_t *mask, const float *inp, size_t N, float p,
                          uint64_t seed);
void cllm_dropout_backward(float *dinp, const float *dout, const uint8_t *mask, size_t N, float p);

/* ---- softmax + cross-entropy over the vocabulary ------------------------
 * logits[B,T,V]; targets[B,T] with -1 meaning "no loss here" (masked);
 * losses[B,T] per position (0 where masked). Saved for backward instead of
 * a [B,T,V] probability tensor: row_max[B,T] = max logit of the row and
 * row_rsum[B,T] = 1 / sum exp(logit - row_max), so that
 * softmax = exp(logits - row_max) * row_rsum.
 * Returns the mean loss over unmasked positions (0 when all are masked). */
float cllm_crossentropy_forward(float *losses, float *row_max, float *row_rsum, const float *logits,
                                const int32_t *targets, int B, int T, int V);
/* dlogits[B,T,V] = (softmax - onehot) * dloss_scale at unmasked positions, 0
 * at masked ones, the softmax recomputed from logits and the saved row
 * statistics. OVERWRITES (the one exception); dlogits may alias logits (in
 * place). dloss_scale is usually 1 / (number of unmasked positions in the
 * whole accumulated batch). */
void cllm_crossentropy_backward(float *dlogits, const float *logits, const float *row_max,
                                const float *row_rsum, const int32_t *targets, int B, int T, int V,
                                float dloss_scale);

/* ---- low-rank adapter (LoRA, Hu et al. 2021; src/layers/lora.c) ----------
 * out rows have stride out_stride (>= OC), so an adapter can add into a row
 * block of a fused projection. xa[N, r] = inp A^T is saved for backward.
 * Forward ACCUMULATES into out (out += scale * xa B^T). */
void cllm_lora_forward(float *out, int out_stride, float *xa, const float *inp, const float *A, const float *B,
                       int N, int IC, int OC, int r, float scale);
/* Given dout[N, OC] (row stride dout_stride): dA[r,IC] +=, dB[OC,r] +=,
 * dinp[N,IC] += (dinp may be NULL); dxa[N, r] is scratch (overwritten). */
void cllm_lora_backward(float *dinp, float *dA, float *dB, float *dxa, const float *dout, int dout_stride,
                        const float *xa, const float *inp, const float *A, const float *B, int N, int IC,
                        int OC, int r, float scale);

/* ---- scalar head (reward / value) ----------------------------------------
 * out[N] = h[N,C] . w[C] + b[0]  (OVERWRITES out).
 * Backward ACCUMULATES: dh[N,C] += dout[n] w; dw[C] += sum_n dout[n] h[n];
 * db[0] += sum_n dout[n]. Any of dh, dw, db may be NULL. */
void cllm_scalar_head_forward(float *out, const float *h, const float *w, const float *b, int N, int C);
void cllm_scalar_head_backward(float *dh, float *dw, float *db, const float *dout, const float *h,
                               const float *w, int N, int C);

#endif
