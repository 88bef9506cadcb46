/*
 * lora.h: low-rank adapters (LoRA, Hu et al. 2021) on a frozen model.
 *
 * An adapter on a linear map W[OC, IC] adds a rank-r update:
 *     out += (alpha / r) * (x A^T) B^T,   A[r, IC], B[OC, r]
 * A starts U(-1/sqrt(IC), 1/sqrt(IC)) (PyTorch's kaiming_uniform_(a=sqrt(5)),
 * as PEFT), B at zero, so a fresh adapter changes nothing.
 *
 * Targets (one bit each): q, k, v (row blocks of the fused blk.N.attn_qkv:
 * NH*HS query rows, then NKV*HS key rows, then NKV*HS value rows), o
 * (attn_output), up, gate (the halves of SwiGLU's ffn_gate_up; for GELU
 * MLPs `up` is ffn_up and `gate` does not exist), down (ffn_down).
 *
 * Model side: cllm_model_lora_attach adds the adapter tensors to a model;
 * they live in their own parameter (and, when training, gradient) block,
 * listed by cllm_model_lora_tensor. A model created with
 * cllm_model_options.freeze_base = 1 has no gradient block for its base
 * weights at all, so gradient and optimizer memory scale with the adapters.
 * Forward, backward and KV-cached decode include the adapters.
 *
 * Adapter files: GGUF with llama.cpp's LoRA adapter keys: general.type =
 * "adapter", general.architecture = the base's arch, adapter.type = "lora",
 * adapter.lora.alpha (f32), plus cllm.lora.rank, cllm.lora.targets and the
 * base's shape (cllm.lora.base_*) checked on load. Tensors
 * "<base tensor name>.lora_a" ([r, IC] row-major, GGUF dims {IC, r}) and
 * ".lora_b" ([OC, r], dims {r, OC}), base names as llama.cpp's `llama` arch
 * spells them: blk.N.attn_q/attn_k/attn_v/attn_output/ffn_gate/ffn_up/
 * ffn_down.weight (for a fused-qkv `gpt2` base llama.cpp has no attn_q
 * tensor, so such adapters are for cllm only).
 */
#ifndef CLLM_LORA_H
#define CLLM_LORA_H

#include <stddef.h>
#include <stdint.h>

#include "cllm/model/model.h"
#include "cllm/core/status.h"

typedef enum {
    CLLM_LORA_Q = 0,
    CLLM_LORA_K,
    CLLM_LORA_V,
    CLLM_LORA_O,
    CLLM_LORA_UP,
    CLLM_LORA_DOWN,
    CLLM_LORA_GATE,
    CLLM_LORA_TARGET_COUNT
} cllm_lora_target;

#define CLLM_LORA_MAX_RANK 4096

typedef struct {
    int rank;         /* r >= 1 */
    float alpha;      /* scale = alpha / r */
    unsigned targets; /* bit (1u << cllm_lora_target) per adapted matrix */
} cllm_lora_config;

/* r 8, alpha 16, targets q,v (PEFT's defaults for attention models). */
cllm_lora_config cllm_lora_default_config(void);
/* "q,k,v,o,up,down,gate" (any subset, any order; "all" for every one).
 * Unknown or duplicate names are CLLM_ERR_ARG naming the item. */
cllm_status cllm_lora_targets_parse(const char *list, unsigned *targets, cllm_error *err);
/* The canonical comma list of a mask into buf. */
void cllm_lora_targets_format(unsigned targets, char *buf, size_t cap);
const char *cllm_lora_target_name(cllm_lora_target t); /* "q", ... */

/* The layer itself (cllm_lora_forward / _backward) is in layers/layers.h. */

/* ---- the model side (src/model/lora.c) --------------------------------- */

/* Adds adapters to m (once; CLLM_ERR_ARG if it already has some, or a
 * target the config lacks, e.g. gate on a GELU model). A drawn from `seed`,
 * B zero. */
cllm_status cllm_model_lora_attach(cllm_model *m, const cllm_lora_config *cfg, uint64_t seed, cllm_error *err);
/* NULL when the model has no adapters. */
const cllm_lora_config *cllm_model_lora_config(const cllm_model *m);
int cllm_model_lora_num_tensors(const cllm_model *m);
/* Adapter tensors (names "<base>.lora_a/_b", see above); data/grad point into
 * the adapter blocks; offset is into cllm_model_lora_params. */
const cllm_tensor *cllm_model_lora_tensor(const cllm_model *m, int i);
float *cllm_model_lora_params(cllm_model *m);  /* [n] block, borrowed */
float *cllm_model_lora_grads(cllm_model *m);   /* [n] or NULL when not training */
size_t cllm_model_lora_num_params(const cllm_model *m); /* n, padded layout size */
void cllm_model_lora_zero_grad(cllm_model *m);

/* Folds the adapters into the base weights (W += scale B A per target) and
 * removes them; the model then computes the same function without them. */
cllm_status cllm_model_lora_merge(cllm_model *m, cllm_error *err);

/* Writes the adapters (see the file format above) atomically. */
cllm_status cllm_model_lora_save_gguf(const cllm_model *m, const char *path, cllm_error *err);
/* Reads an adapter file and attaches it to m (which must have none yet);
 * the base shape and arch must match m's, naming the first difference. */
cllm_status cllm_model_lora_load_gguf(cllm_model *m, const char *path, cllm_error *err);

/* ---- QLoRA: adapters on a quantized base ---------------------------------
 * A base whose matrices are in a block type (q8_0, q4_0, q4_1, q5_0, q5_1,
 * q2_K..q6_K, mixes such as Q4_K_M) is trained with adapters without an f32
 * copy: cllm_model_from_gguf_mapped (model/mapped.h) with training = 1 and
 * freeze_base = 1 keeps the matrices in their types, and forward/backward
 * multiply row blocks dequantized into per-thread scratch (no gradient for
 * the base, dX = dY W). */

typedef struct cllm_gguf cllm_gguf;
/* 1 when a 2-D tensor of g (a weight matrix) is in a block type, i.e. not
 * f32, f16 or bf16: full fine-tuning of such a file is refused (sft) and
 * LoRA runs on the quantized weights. */
int cllm_lora_base_is_quantized(const cllm_gguf *g);

typedef struct {
    size_t adapter_params;   /* elements of every A and B (padded layout, as cllm_model_lora_num_params) */
    size_t adapter_bytes;    /* A and B, their gradients and AdamW's two moments (4 x 4 bytes per element),
                                the saved x A^T of every target and the adapters' scratch */
    size_t base_bytes;       /* the frozen base: the f32 parameter block (g NULL), or the file's matrices
                                in their own types + f32 1-D tensors + dequantization scratch (QLoRA) */
    size_t activation_bytes; /* the model's training activations at max_batch x max_seq */
    size_t total_bytes;      /* the sum */
} cllm_lora_memory;

/* Memory of LoRA training with config lc at opts (max_batch, max_seq) on a
 * frozen f32 base (g NULL) or on the quantized file g (QLoRA). Allocates
 * nothing; the figures follow the allocations of model creation, adapter
 * attach and the mapped loader. */
cllm_status cllm_lora_memory_estimate(const cllm_model_config *cfg, const cllm_lora_config *lc,
                                      const cllm_model_options *opts, const cllm_gguf *g, cllm_lora_memory *out,
                                      cllm_error *err);

#endif
