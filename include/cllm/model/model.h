/*
 * model.h: the one configurable decoder-only transformer.
 *
 * A model is (config, tensor table, memory). The config picks the variant:
 * learned | sinusoidal | rotary positions, LayerNorm | RMSNorm, GELU | SwiGLU
 * MLP, grouped-query attention (n_kv_head divides n_head), tied or untied
 * embeddings, biases on or off, dropout. Presets give the GPT-2 family and
 * Llama-style shapes from ~1M to ~1B parameters.
 *
 * The tensor table (cllm_model_tensor) lists every parameter with its
 * llama.cpp GGUF name, row-major shape, decay flag and pointers into ONE
 * 64-byte-aligned parameter block; gradients use the same layout in a
 * second block. Activations for backward are sized at creation for the
 * maximum batch B and length T (checked on every call), the KV cache for
 * `kv_slots` sequences of `kv_context` positions. Nothing allocates per step
 * or per token.
 *
 * Legend: B batch, T time, C n_embd, V vocab, L n_layer, NH n_head,
 * NKV n_kv_head, HS head size = C/NH, H ffn_hidden, QKV = (NH+2*NKV)*HS.
 *
 * Threading: one model is used by one thread at a time (layers use OpenMP
 * internally). Errors: functions that can fail return cllm_status and fill
 * cllm_error; nothing here prints or exits.
 *
 * Internal layout vs llama.cpp's files (the GGUF code converts on save/load):
 *   - Shapes here are PyTorch/row-major [rows, cols]; GGUF ne[] is reversed.
 *   - blk.N.attn_qkv.weight [QKV, C] is fused: NH*HS query rows, then NKV*HS
 *     key rows, then NKV*HS value rows (layers.h packing). The `gpt2` arch
 *     stores it fused under the same name; `llama` stores attn_q / attn_k /
 *     attn_v separately (split on save, concatenate on load).
 *   - SwiGLU: blk.N.ffn_gate_up.weight [2H, C] is gate rows then up rows;
 *     llama.cpp stores ffn_gate [H rows] and ffn_up [H rows] separately.
 *   - RoPE pairs adjacent elements (llama.cpp's LLAMA_ROPE_TYPE_NORM), so
 *     no Q/K row permutation is needed for the `llama` arch.
 *   - Tied embeddings: no output.weight tensor; the head uses token_embd.
 */
#ifndef CLLM_MODEL_H
#define CLLM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "cllm/core/status.h"

/* Hard limits checked by cllm_model_config_validate. */
#define CLLM_MODEL_MAX_LAYERS 256
#define CLLM_MODEL_MAX_HEADS 256
#define CLLM_MODEL_MAX_VOCAB (1 << 24)
#define CLLM_MODEL_MAX_CONTEXT (1 << 20)
#define CLLM_MODEL_MAX_EMBD (1 << 16)
#define CLLM_MODEL_MAX_FFN (1 << 20)
#define CLLM_MODEL_NAME_MAX 64 /* tensor name buffer, NUL included */

typedef enum {
    CLLM_POS_LEARNED = 0, /* position_embd.weight [context_length, C], trained */
    CLLM_POS_SINUSOIDAL,  /* fixed table (not a parameter), added to token embeddings */
    CLLM_POS_ROPE,        /* rotary on q and k inside attention, rope_theta */
    CLLM_POS_COUNT
} cllm_pos_kind;

typedef enum {
    CLLM_NORM_LAYERNORM = 0,
    CLLM_NORM_RMSNORM,
    CLLM_NORM_COUNT
} cllm_norm_kind;

typedef enum {
    CLLM_MLP_GELU = 0, /* ffn_up [H,C] -> GELU(tanh) -> ffn_down [C,H] */
    CLLM_MLP_SWIGLU,   /* ffn_gate_up [2H,C] -> silu(gate)*up -> ffn_down [C,H] */
    CLLM_MLP_COUNT
} cllm_mlp_kind;

/* RoPE frequency scaling. LINEAR (SmolLM/"linear" rope_scaling, llama.cpp's
 * rope.scaling.type linear) divides every angle by rope_factor. LLAMA3
 * (Llama 3.1's rope_type "llama3") divides the frequency of pair i by
 * f_i: 1 for wavelengths shorter than orig/high, rope_factor for ones
 * longer than orig/low, and 1/((1-s)/factor + s) between, with
 * s = (orig/wavelength - low)/(high - low); files carry the f_i as
 * llama.cpp's rope_freqs.weight tensor. */
typedef enum {
    CLLM_ROPE_SCALING_NONE = 0,
    CLLM_ROPE_SCALING_LINEAR,
    CLLM_ROPE_SCALING_LLAMA3,
    CLLM_ROPE_SCALING_COUNT
} cllm_rope_scaling;

typedef struct {
    int vocab_size;       /* V */
    int context_length;   /* largest position + 1 (max T anywhere) */
    int n_layer;          /* L */
    int n_head;           /* NH query heads */
    int n_kv_head;        /* NKV key/value heads, divides n_head (NKV < NH: GQA, 1: MQA) */
    int n_embd;           /* C, divisible by n_head */
    int ffn_hidden;       /* H, MLP hidden width */
    cllm_pos_kind pos;
    float rope_theta;     /* RoPE base (10000), used only with CLLM_POS_ROPE */
    cllm_norm_kind norm;
    float norm_eps;       /* 1e-5 */
    cllm_mlp_kind mlp;
    int tied_embeddings;  /* 1: output head reuses token_embd.weight */
    int bias;             /* 1: linear layers and LayerNorm have biases */
    float dropout;        /* [0, 1): embeddings, attention and MLP outputs (training only) */
    int qkv_bias;         /* 1: the q/k/v projection has a bias even when `bias` is 0 (Qwen2) */
    int rope_neox;        /* 1: RoPE pairs (x[i], x[i+HS/2]) (GPT-NeoX / HF rotate_half, llama.cpp's
                             NEOX type, the `qwen2` arch); 0: adjacent pairs (the `llama` arch) */
    cllm_rope_scaling rope_scaling; /* RoPE frequency scaling (none, linear, llama3) */
    float rope_factor;    /* linear and llama3: the context extension factor (>= 1) */
    float rope_low_freq_factor;  /* llama3: wavelengths above orig_context/low keep factor (1) */
    float rope_high_freq_factor; /* llama3: wavelengths below orig_context/high are unscaled (4) */
    int rope_orig_context;       /* llama3: the pretraining context (8192) */
    int sliding_window;   /* > 0: position t attends only to positions > t - sliding_window
                             (Mistral); 0: full causal attention. llama.cpp's `llama` graph has no
                             window, so it runs such a file with full attention */
} cllm_model_config;

/* ---- config ------------------------------------------------------------- */

/* GPT-2 124M. */
cllm_model_config cllm_model_default_config(void);

/* Checks every field; the error names the field and the rule ("n_embd (100)
 * must be divisible by n_head (3)"). CLLM_ERR_ARG on failure. */
cllm_status cllm_model_config_validate(const cllm_model_config *cfg, cllm_error *err);

/* Sets one field from text: key is the field name ("n_layer", "pos", "mlp", ...),
 * value a number or an enum name ("rope", "rmsnorm", "swiglu", "true"/"false"
 * or 1/0 for flags). Strict parsing; does NOT validate the whole config. */
cllm_status cllm_model_config_set(cllm_model_config *cfg, const char *key, const char *value,
                                  cllm_error *err);

const char *cllm_model_pos_name(cllm_pos_kind kind);   /* "learned", "sinusoidal", "rope" */
const char *cllm_model_norm_name(cllm_norm_kind kind); /* "layernorm", "rmsnorm" */
const char *cllm_model_mlp_name(cllm_mlp_kind kind);   /* "gelu", "swiglu" */
const char *cllm_model_rope_scaling_name(cllm_rope_scaling s); /* "none", "linear", "llama3" */
int cllm_model_rope_scaling_parse(const char *name);
/* The per-pair frequency divisors f[HS/2] of a config's RoPE scaling (all 1
 * unless LLAMA3), in double; HS = n_embd / n_head. */
void cllm_model_rope_freq_div(const cllm_model_config *cfg, double *f);
int cllm_model_pos_parse(const char *name);            /* -1 when unknown */
int cllm_model_norm_parse(const char *name);
int cllm_model_mlp_parse(const char *name);

/* ---- presets ------------------------------------------------------------
 * gpt2, gpt2-medium, gpt2-large, gpt2-xl; llama-1m, llama-10m, llama-30m,
 * llama-110m, llama-350m, llama-1b; nanogpt-shakespeare (the CPU
 * recipe); qwen2-0.5b (Qwen2.5-0.5B's shape: q/k/v biases, NEOX rope,
 * theta 1e6, eps 1e-6); mistral-7b (sliding window 4096); tiny-gpt2,
 * tiny-llama, tiny-qwen2, tiny-mistral (window 4) (for tests). Llama-style presets use
 * vocab 32000 (llama-1m uses 512, llama-10m 4096); a trainer overrides
 * vocab_size with its tokenizer's size. */
cllm_status cllm_model_preset(const char *name, cllm_model_config *cfg, cllm_error *err);
int cllm_model_preset_count(void);
const char *cllm_model_preset_name(int i);        /* NULL when out of range */
const char *cllm_model_preset_description(int i); /* one line */

/* ---- tensor table ------------------------------------------------------- */

typedef struct {
    char name[CLLM_MODEL_NAME_MAX]; /* GGUF name, e.g. "blk.3.attn_qkv.weight" */
    int ndim;                       /* 1 or 2 */
    int64_t shape[2];               /* row-major [rows, cols] (PyTorch order); shape[1]=1 if 1-D */
    size_t numel;
    size_t offset;                  /* element offset in the params block (same in grads) */
    float *data;                    /* [numel] inside the params block; borrowed */
    float *grad;                    /* [numel] inside the grads block; NULL if not training */
    int layer;                      /* block index, -1 for global tensors */
    int decay;                      /* 1: AdamW weight decay applies (every 2-D tensor, as nanoGPT) */
    int trainable;                  /* 1 for every tensor today (LoRA will add frozen ones) */
} cllm_tensor;

/* Parameter count of a config without building a model; 0 if it is invalid. */
size_t cllm_model_config_num_params(const cllm_model_config *cfg);
/* The same without the embeddings (token and learned position tables, and an
 * untied output head): the N of Kaplan et al. 2020's scaling laws. */
size_t cllm_model_config_num_params_non_embedding(const cllm_model_config *cfg);

/* ---- creation ----------------------------------------------------------- */

typedef struct {
    int max_batch;  /* B: largest batch forward accepts (>= 1) */
    int max_seq;    /* T: largest length forward and one decode chunk accept (<= context_length) */
    int training;   /* 1: gradients + every layer's activations for backward; 0: forward only */
    int kv_slots;   /* sequences the KV cache holds (0: no cache, decode unavailable) */
    int kv_context; /* positions per slot (<= context_length); 0 means context_length */
    int freeze_base; /* 1 (with training): no gradient block for the tensor table (every
                        tensor trainable = 0, grad NULL); only adapters (lora.h) train */
    int kv_type;    /* KV cache element type, a ggml id (ggml_types.h): CLLM_GGML_F32 (0, the
                       default), CLLM_GGML_F16 (half the bytes; llama.cpp's default) or
                       CLLM_GGML_Q8_0 (llama.cpp's q8_0 blocks, 34 bytes per 32 values, per head
                       row; needs HS % 32 == 0), as llama.cpp's -ctk/-ctv */
    int keep_file_layout; /* mapped models (model/mapped.h): 1 runs the weights from the file's
                             mapping; 0 (default) copies every matrix at load into one huge-page
                             arena, q8_0/q4_0 repacked into quant.h's x16 layout when the CPU has
                             VNNI (bf16 with AVX512-BF16: activations then rounded to bf16), and
                             releases the map's pages of them (RSS unchanged). On the
                             project machine: q8_0/q4_0 prompts ~2x faster, decoding q4_0 ~1.6x,
                             q8_0 ~1.15x, f16/f32 ~1.1-1.2x (huge pages) */
    int bf16_prompt; /* mapped bf16 matrices, prompt chunks (cllm_bf16_prompt): AUTO (0) takes
                        ONEDNN on CPUs with AMX, else OWN */
    int skip_weight_check; /* mapped models: 1 skips the load-time scan that refuses NaN/Inf in any
                              weight (0, the default: one read of every weight at load) */
} cllm_model_options;

/* How prompt chunks of a mapped model multiply bf16 weights. */
typedef enum {
    CLLM_BF16_PROMPT_AUTO = 0,
    CLLM_BF16_PROMPT_OWN,    /* the x16 kernel (AVX512-BF16; weights repacked unless keep_file_layout),
                                else dequantized rows + fp32 GEMM */
    CLLM_BF16_PROMPT_ONEDNN, /* oneDNN's bf16 matmul on the file layout (quant.h): AMX tiles where
                                present; weights not repacked, so decoding runs the file-layout
                                dot product; falls back to OWN where oneDNN has no bf16 matmul */
} cllm_bf16_prompt;

/* max_batch 1, max_seq 64, training 0, kv_slots 0, kv_context 0, kv_type f32. */
cllm_model_options cllm_model_default_options(void);

typedef struct cllm_model cllm_model; /* opaque */

/* Validates cfg and opts, builds the tensor table and allocates every block.
 * opts NULL means the defaults with max_seq capped at context_length.
 * Weights are zero until cllm_model_init_weights or a loader fills them.
 * *out is owned by the caller (cllm_model_destroy). */
cllm_status cllm_model_create(const cllm_model_config *cfg, const cllm_model_options *opts,
                              cllm_model **out, cllm_error *err);
void cllm_model_destroy(cllm_model *m); /* accepts NULL */

const cllm_model_config *cllm_model_get_config(const cllm_model *m);
const cllm_model_options *cllm_model_get_options(const cllm_model *m);

/* GPT-2 init: every 2-D weight N(0, 0.02), except attn_output and ffn_down
 * N(0, 0.02/sqrt(2L)) (residual projections); biases 0; norm weights 1.
 * Deterministic in seed (each tensor draws from its own stream seeded by
 * (seed, tensor index)). */
void cllm_model_init_weights(cllm_model *m, uint64_t seed);

/* The whole parameter block [num_params] and gradient block (same layout;
 * NULL if not training). Borrowed; 64-byte aligned. */
float *cllm_model_params(cllm_model *m);
float *cllm_model_grads(cllm_model *m);
size_t cllm_model_num_params(const cllm_model *m);

int cllm_model_num_tensors(const cllm_model *m);
const cllm_tensor *cllm_model_tensor(const cllm_model *m, int i); /* NULL when out of range */
const cllm_tensor *cllm_model_find_tensor(const cllm_model *m, const char *name); /* NULL if absent */

/* ---- training ------------------------------------------------------------ */

/* Forward over tokens[B,T] (ids in [0,V)) at positions 0..T-1. With targets[B,T]
 * (ids in [0,V) or -1 = no loss at that position), *loss receives the mean
 * cross-entropy over unmasked positions (0 when all are masked); with
 * targets NULL only logits are computed and *loss (if non-NULL) is set to 0.
 * B <= max_batch, T <= max_seq, else CLLM_ERR_LIMIT. */
cllm_status cllm_model_forward(cllm_model *m, const int32_t *tokens, const int32_t *targets,
                               int B, int T, float *loss, cllm_error *err);

/* Forward with a segment id per position (seg[B,T], contiguous runs; -1
 * for padding is a run of its own): attention stays inside a run and
 * positions (learned or RoPE) restart at 0 at each run's start. Otherwise
 * as cllm_model_forward; cllm_model_backward then differentiates it. */
cllm_status cllm_model_forward_packed(cllm_model *m, const int32_t *tokens, const int32_t *targets,
                                      const int32_t *seg, int B, int T, float *loss, cllm_error *err);

/* logits[B,T,V] of the last forward (B,T as passed). Borrowed; valid until the
 * next forward, and OVERWRITTEN by cllm_model_backward (it holds dlogits). */
const float *cllm_model_logits(const cllm_model *m);
/* Unmasked target count of the last forward (0 if it had no targets). */
int64_t cllm_model_num_targets(const cllm_model *m);

/* Attention probabilities att[B,NH,T,T] of `layer` from the last forward
 * (row t: how much query position t attends to each key position; entries
 * above the diagonal are 0), with B, T, NH written to the non-NULL
 * pointers. Only models created with training = 1 keep every layer's
 * probabilities; NULL otherwise, before any forward, or for a layer out of
 * range. Borrowed; valid until the next forward. (src/model/inspect.c) */
const float *cllm_model_attention(const cllm_model *m, int layer, int *B, int *T, int *NH);

void cllm_model_zero_grad(cllm_model *m);

/* Backward of the last forward (which must have had targets), ACCUMULATING
 * (+=) into the gradient block. It differentiates
 *     dloss_scale * sum over unmasked positions of the token loss,
 * so dloss_scale = 1/cllm_model_num_targets() gives the gradient of this
 * forward's mean loss, and 1/(unmasked targets of the whole accumulated
 * batch) makes gradient accumulation exact. CLLM_ERR_ARG when the model was
 * created without training or there is no forward to differentiate. */
cllm_status cllm_model_backward(cllm_model *m, float dloss_scale, cllm_error *err);

/* ---- heads for preference tuning (src/model/heads.c) ---------------------
 * Final hidden states: the final norm's output lnf[B,T,C] of the last
 * forward, the input of the output head and of scalar (reward/value) heads.
 * Borrowed; valid until the next forward. NULL when there is no forward. */
const float *cllm_model_hidden(const cllm_model *m);

/* Per-token log-probabilities of the last forward's targets:
 * logp[B*T] = log softmax(logits)[target] (= minus the token cross-entropy),
 * 0 at masked positions (target -1). Must run before any backward
 * (CLLM_ERR_ARG otherwise, or when the forward had no targets). */
cllm_status cllm_model_token_logprobs(const cllm_model *m, float *logp, cllm_error *err);

/* Backward of an arbitrary loss of the last forward, given its gradient on the
 * per-token log-probabilities of the targets, dlogp[B*T] (ignored at masked
 * positions; NULL: none), and/or on the hidden states, dhidden[B*T*C]
 * (NULL: none). ACCUMULATES (+=) into the gradient block; overwrites the
 * logits (as cllm_model_backward does). A dlogp needs a forward with targets. */
cllm_status cllm_model_backward_heads(cllm_model *m, const float *dlogp, const float *dhidden,
                                      cllm_error *err);

/* Scores targets under softmax(logits / temperature): every later forward
 * with targets divides the logits by it before the cross-entropy (so the
 * loss, cllm_model_logits and cllm_model_token_logprobs see the tempered
 * distribution) and both backwards apply the matching 1/temperature to
 * dlogits. RL sets the rollout sampling temperature here so its updates
 * stay on-policy (TRL does the same). 1 (the default) leaves logits
 * untouched. CLLM_ERR_ARG unless 0 < temperature <= 100. */
cllm_status cllm_model_set_logit_temperature(cllm_model *m, float temperature, cllm_error *err);

/* Dropout is active only in train mode and only when cfg.dropout > 0; eval
 * mode (the default) is deterministic. Masks come from a 64-bit seed that
 * advances after every train-mode forward, so storing cllm_model_dropout_seed
 * in a checkpoint and restoring it reproduces the masks exactly. */
void cllm_model_set_train_mode(cllm_model *m, int train);
void cllm_model_set_dropout_seed(cllm_model *m, uint64_t seed);
uint64_t cllm_model_dropout_seed(const cllm_model *m);
/* Advances the dropout stream as one train-mode forward would, without
 * running it: a data-parallel rank skipping another rank's micro-batch keeps
 * the masks of the ones it computes equal to one process's. */
void cllm_model_skip_dropout(cllm_model *m);
/* Backward calls fn(ctx, l) once the gradients of block l are complete (l =
 * n_layer-1 down to 0; LoRA adapters of the block included), then fn(ctx, -1)
 * at its end: data-parallel training starts reducing a block's gradients
 * while the blocks below it run backward. NULL removes it. */
void cllm_model_set_grad_ready_hook(cllm_model *m, void (*fn)(void *ctx, int layer), void *ctx);

/* ---- inference with the KV cache ----------------------------------------
 * Feeds tokens[n] of sequence `slot` at positions pos..pos+n-1 (a prompt
 * chunk, or n = 1 per generated token), storing their keys/values in the
 * cache. Requires 1 <= n <= max_seq, pos + n <= kv_context, and pos <= the
 * slot's current length (positions < pos must already be cached; pos smaller
 * than the length rewinds). *logits receives [n,V] when all_logits, else [V]
 * for the last token; borrowed until the next decode. Gives the same logits
 * as cllm_model_forward on the whole sequence (up to float rounding). Never
 * applies dropout. */
cllm_status cllm_model_decode(cllm_model *m, int slot, const int32_t *tokens, int n, int pos,
                              int all_logits, const float **logits, cllm_error *err);
/* Cached length of a slot (0 after creation or reset). */
int cllm_model_kv_length(const cllm_model *m, int slot);
void cllm_model_kv_reset(cllm_model *m, int slot);
/* Copies the first n cached positions of slot src into slot dst (exact, any
 * kv_type) and sets dst's length to n (kv_cache.c): a shared prompt is
 * prefilled once. Requires n <= src's cached length. */
cllm_status cllm_model_kv_copy(cllm_model *m, int dst, int src, int n, cllm_error *err);
/* Like cllm_model_decode_batch, but a slot may take several rows at
 * consecutive positions (in row order; its first continues its cache): the
 * prompts of several sequences prefilled in one pass (decode.c). Logits
 * only for rows with want[i] (want NULL: all), packed in row order into
 * *logits [*n_logits, V], borrowed until the next decode. 1 <= n <= max_seq. */
cllm_status cllm_model_decode_rows(cllm_model *m, int n, const int *slots, const int32_t *tokens, const int *pos,
                                   const unsigned char *want, const float **logits, int *n_logits, cllm_error *err);

/* One decode step for n sequences at once (decode.c): row i feeds
 * tokens[i] to slot slots[i] (distinct) at position pos[i] (<= that slot's
 * cached length, < kv_context). 1 <= n <= max_seq. The projections of all
 * rows run as one GEMM; attention is per row over its own slot. *logits
 * receives [n,V], borrowed until the next decode. */
cllm_status cllm_model_decode_batch(cllm_model *m, int n, const int *slots, const int32_t *tokens,
                                    const int *pos, const float **logits, cllm_error *err);
/* Sequence embedding (embed.c): tokens[n] are decoded through `slot` (its
 * cache is overwritten) and the final-norm hidden states are mean-pooled
 * over the n positions and L2-normalised into out[C]. n <= kv_context. */
cllm_status cllm_model_embed(cllm_model *m, int slot, const int32_t *tokens, int n, float *out, cllm_error *err);

/* ---- accounting (cllm info) ---------------------------------------------- */

typedef struct {
    size_t n_params;         /* parameters (elements) */
    size_t param_bytes;      /* fp32 parameter block */
    size_t grad_bytes;       /* gradient block (training only, else 0) */
    size_t adamw_bytes;      /* two fp32 moments per parameter (training only, else 0) */
    size_t activation_bytes; /* forward/backward activations + scratch at max_batch, max_seq */
    size_t kv_cache_bytes;   /* K and V for kv_slots x kv_context positions + decode scratch */
    size_t total_bytes;      /* sum of the above */
    size_t kv_store_bytes;   /* of kv_cache_bytes: K and V alone (what kv_type shrinks; not summed again) */
} cllm_model_memory;

/* Exactly the bytes cllm_model_create would allocate for (cfg, opts), plus the
 * AdamW moments a trainer adds. Does not allocate. */
cllm_status cllm_model_memory_estimate(const cllm_model_config *cfg, const cllm_model_options *opts,
                                       cllm_model_memory *out, cllm_error *err);

/* Forward FLOPs per token at sequence length T (PaLM appendix B convention:
 * 2 per multiply-add over every matmul weight incl. the output head, plus
 * 4*L*T*C for attention scores and values, non-causal count). Training is
 * about 3x this (forward + backward). */
double cllm_model_flops_per_token(const cllm_model_config *cfg, int T);

#endif
