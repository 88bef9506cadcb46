/*
 * mapped.h: a cllm_model for inference whose weight matrices stay in
 * the GGUF file's own types (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1,
 * q2_K..q6_K), memory-mapped, with no f32 copy.
 *
 * cllm_model_load_gguf_mapped maps the file and keeps it open for the life
 * of the model. Each matrix (attention qkv, output projection, MLP up/gate
 * and down, token embedding, output head) becomes a "weight view": its type
 * and pointers to its rows in the map, up to three parts for the tensors
 * llama.cpp splits (attn_q/k/v, ffn_gate/up). Only 1-D tensors (norms,
 * biases) and position_embd.weight are widened into the model's f32
 * parameter block; the block is reserved lazily, so the pages of the f32
 * matrices are never touched and cost no memory.
 *
 * cllm_model_decode then runs on the views: one token at a time through the
 * quantized matrix-vector kernels (quant.h: activations quantized to q8_0
 * for q8_0/q4_0/q4_1/q5_0/q5_1 weights, to q8_K for the k-quants, f32 for
 * f16/bf16/f32 weights; rows over all
 * OpenMP threads); a prompt chunk of more than 2 tokens through fp32 GEMM
 * (oneDNN) on blocks of 256 rows dequantized into a scratch buffer sized at
 * load time. Nothing allocates per token. The embedding row of each token is
 * dequantized on the fly.
 *
 * Limits: such a model is for decoding only: cllm_model_forward refuses it,
 * cllm_model_params holds zeros where the matrices would be, and it must not
 * be saved with cllm_model_save_gguf (quantize the file instead).
 * The one exception is QLoRA (lora.h): options training = 1 with
 * freeze_base = 1 keep the file layout (no repack) and let
 * cllm_model_forward/backward run, the matrices multiplied as dequantized
 * row blocks, gradients only for attached adapters; training without
 * freeze_base is refused.
 */
#ifndef CLLM_MODEL_QUANT_H
#define CLLM_MODEL_QUANT_H

#include <stddef.h>

#include "cllm/model/model.h"
#include "cllm/core/status.h"

/* Opens `path`, reads its config (cllm_model_config_from_gguf), creates the
 * model with `opts` (NULL: default options with max_seq capped at the
 * context), and binds every tensor: shapes must match the config, types must
 * be one of those types, no tensor may be missing or unused. A matrix
 * with a block type needs a row length that is a multiple of its block
 * (32, or 256 for the k-quants; the file reader checks it). *out is owned by the caller (cllm_model_destroy). */
cllm_status cllm_model_load_gguf_mapped(const char *path, const cllm_model_options *opts,
                                        cllm_model **out, cllm_error *err);
/* The same over a file the caller already opened (the model loader parses
 * each file once). Takes g over in every case: the model closes it when
 * destroyed, and it is closed on failure. */
typedef struct cllm_gguf cllm_gguf;
cllm_status cllm_model_from_gguf_mapped(cllm_gguf *g, const cllm_model_options *opts, cllm_model **out,
                                        cllm_error *err);

/* 1 when m was made by cllm_model_load_gguf_mapped. */
int cllm_model_is_mapped(const cllm_model *m);

/* For a mapped model, whether its file is still the one mapped
 * (cllm_gguf_check_file); callers that keep a model for long (the server,
 * chat) ask between requests and turns, and after one, since with
 * cllm_mmap_guard_enable a truncated file reads as zeros instead of killing
 * the process. CLLM_OK for other models. */
cllm_status cllm_model_check_file(const cllm_model *m, cllm_error *err);

/* Bytes of weights one decoded token reads: every matrix view except the
 * token embedding (one row per token), plus the f32 1-D tensors. For an f32
 * model made by cllm_model_create, the same count in f32. */
size_t cllm_model_decode_weight_bytes(const cllm_model *m);

#endif
