/*
 * gguf_io.h: a cllm_model to and from a GGUF file, arch `gpt2`, `llama` or `qwen2`,
 * with llama.cpp's tensor names and metadata keys (docs/FORMATS.md, "GGUF
 * model mapping").
 *
 * Architecture: `qwen2` when the config uses RoPE on NEOX pairs
 * (rope_neox), `llama` for other RoPE configs, else `gpt2`. The file
 * carries llama.cpp's keys (<arch>.context_length, .embedding_length,
 * .block_count, .feed_forward_length, .attention.head_count,
 * .attention.head_count_kv, .attention.layer_norm_epsilon (gpt2) or
 * .attention.layer_norm_rms_epsilon (llama), .rope.freq_base and
 * .rope.dimension_count (llama), .vocab_size) and, for everything llama.cpp
 * has no key for, cllm.* keys: cllm.pos, cllm.norm, cllm.mlp, cllm.bias,
 * cllm.tied_embeddings, cllm.dropout, cllm.qkv_bias, cllm.rope_neox,
 * cllm.sliding_window, and for Llama-3.1 rope scaling cllm.rope_scaling /
 * rope_factor / rope_low_freq_factor / rope_high_freq_factor /
 * rope_orig_context beside the rope_freqs.weight tensor llama.cpp reads
 * (linear scaling uses llama.cpp's <arch>.rope.scaling.type/.factor). A file
 * runs unchanged in llama.cpp when the config is what llama.cpp computes for
 * the arch (gpt2: learned or sinusoidal positions, LayerNorm, GELU, biases;
 * llama: RoPE, RMSNorm, SwiGLU; qwen2: that with q/k/v biases only, NEOX
 * pairs, no Llama-3.1 scaling); cllm_model_gguf_llama_cpp_compatible says
 * so. llama.cpp has no sliding window for these archs (docs/FORMATS.md). Sinusoidal tables
 * are written as position_embd.weight so llama.cpp's gpt2 graph uses them.
 *
 * Tensor mapping: names are the model's (llama.cpp's) except that `llama`
 * and `qwen2` split the fused blk.N.attn_qkv.{weight,bias} into attn_q / attn_k /
 * attn_v, and every arch splits blk.N.ffn_gate_up.{weight,bias} into
 * ffn_gate and ffn_up. GGUF dims are the reverse of the model's row-major
 * shape ([rows, cols] -> {cols, rows}).
 *
 * Types: 1-D tensors are always f32; 2-D matrices use the requested type
 * (any type with kernels: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1,
 * q2_K .. q6_K), except that a matrix whose row length is not a multiple of
 * the type's block falls back to f32. f32 files round-trip bit-exactly
 * (checkpoints rely on it). Loading accepts any of those types per tensor
 * and dequantizes into the model's f32 parameters.
 *
 * Not here: tokenizer keys (the tokenizer module writes them through the
 * `extra` hook and reads them from the cllm_gguf), optimizer state
 * (checkpoint.h), quantized inference (weights are loaded as f32).
 */
#ifndef CLLM_MODEL_IO_H
#define CLLM_MODEL_IO_H

#include <stdint.h>

#include "cllm/formats/gguf.h"
#include "cllm/model/model.h"
#include "cllm/core/status.h"

/* Adds caller keys (e.g. tokenizer.ggml.*) to the file being written. It
 * may not add tensors named like the model's. */
typedef cllm_status (*cllm_gguf_kv_hook)(cllm_gguf_writer *w, void *ctx, cllm_error *err);

typedef struct {
    uint32_t weight_type;    /* cllm_ggml_type for 2-D matrices; default CLLM_GGML_F32 */
    const char *name;        /* general.name; default "cllm" */
    const char *description; /* general.description (what the model was trained to do); NULL: none */
    cllm_gguf_kv_hook extra; /* may be NULL */
    void *extra_ctx;
} cllm_model_save_params;

cllm_model_save_params cllm_model_save_default_params(void);

/* "qwen2" for RoPE configs with rope_neox, "llama" for other RoPE configs, else "gpt2". */
const char *cllm_model_gguf_arch(const cllm_model_config *cfg);

/* 1 when llama.cpp computes the same function from the file (see above). */
int cllm_model_gguf_llama_cpp_compatible(const cllm_model_config *cfg);

/* Writes the model atomically. params may be NULL (defaults). */
cllm_status cllm_model_save_gguf(const cllm_model *m, const char *path,
                                 const cllm_model_save_params *params, cllm_error *err);

/* The config described by a file's metadata, validated
 * (cllm_model_config_validate) and checked against token_embd.weight.
 * Keys missing from llama.cpp-written files get the arch's defaults. */
cllm_status cllm_model_config_from_gguf(const cllm_gguf *g, cllm_model_config *cfg, cllm_error *err);

/* Fills an existing model's parameters from g. The file's config must equal
 * the model's (the error names the first field that differs); every tensor
 * must be present with its exact shape and a supported type; tensors the
 * model has no use for are an error. With check_finite, NaN/Inf in any
 * weight is an error naming the tensor and element. */
cllm_status cllm_model_read_gguf(cllm_model *m, const cllm_gguf *g, int check_finite, cllm_error *err);

/* Creates a model from an opened file (config from metadata, then weights).
 * opts NULL means cllm_model_default_options() with max_seq capped at the
 * file's context_length. *out is owned by the caller. */
cllm_status cllm_model_from_gguf(const cllm_gguf *g, const cllm_model_options *opts, int check_finite,
                                 cllm_model **out, cllm_error *err);

/* Convenience: open `path`, cllm_model_from_gguf, close. */
cllm_status cllm_model_load_gguf(const char *path, const cllm_model_options *opts, int check_finite,
                                 cllm_model **out, cllm_error *err);

#endif
