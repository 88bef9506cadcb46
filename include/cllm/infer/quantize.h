/*
 * quantize.h: rewriting a GGUF model file with its matrices in another ggml
 * type (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_K .. q6_K), or in
 * one of llama-quantize's k-quant mixes (Q3_K_M, Q4_K_M, Q5_K_M), as
 * llama.cpp's llama-quantize does.
 *
 * Every key/value of the input is copied (tokenizer, chat template, cllm.*
 * keys), general.file_type is set to llama.cpp's LLAMA_FTYPE value of the
 * target (0 all-f32, 1 f16, 32 bf16, 7 q8_0, 2 q4_0, 3 q4_1, 8 q5_0, 9 q5_1,
 * 10 q2_K, 12 q3_K and Q3_K_M, 15 q4_K and Q4_K_M, 17 q5_K and Q5_K_M, 18
 * q6_K: a single k-quant type is what llama-quantize --pure writes under
 * the mix its name aliases) and, for the quantized targets,
 * general.quantization_version to 2. Which tensors change follows
 * llama-quantize: every tensor with 2 or more dims is converted, except
 * position_embd.weight (kept in its type, as llama.cpp keeps positional
 * embeddings); 1-D tensors (norms, biases) stay as they are. A matrix whose
 * row length is not a multiple of the block cannot hold the type and falls
 * back as llama.cpp's does: q4_K -> q5_0, q5_K -> q5_1, q6_K -> q8_0, q2_K
 * and q3_K -> q4_0, then f16 when not even a multiple of 32; the stats
 * count those.
 *
 * The mixes choose a type per tensor by llama-quantize's rules
 * (llama-quant.cpp, llama_tensor_get_type_impl) for the architectures cllm
 * has (one attn_v or fused attn_qkv and one ffn_down per layer, no experts;
 * "more bits" layers: the first and last eighth and every third between):
 *   output.weight (token_embd.weight when tied): q6_K (q8_0 if its rows are
 *     not a multiple of 256); an untied token_embd.weight keeps the base type;
 *   attn_v / attn_qkv: Q4_K_M, Q5_K_M: q6_K in the more-bits layers;
 *     Q3_K_M: q5_K in layers 0-1, else q4_K;
 *   ffn_down: Q4_K_M, Q5_K_M: q6_K in the more-bits layers; Q3_K_M: q5_K
 *     in the first sixteenth of the layers, else q4_K;
 *   attn_output: Q3_K_M: q4_K;
 *   everything else: the base type (q3_K, q4_K, q5_K), then the fallbacks. Input tensors in f16/bf16/q8_0/q4_0 are first
 * widened to f32 (requantizing a quantized file loses more than quantizing
 * the f32 original once; allowed, not advised). Block layouts and rounding
 * are ggml's (ggml_types.h), so q8_0/q4_0 bytes equal llama-quantize's for
 * the same f32 input.
 *
 * The output is written atomically (no partial file on failure). Memory: the
 * converted tensors are held until the write (about the output file size);
 * the input stays memory-mapped.
 */
#ifndef CLLM_QUANTIZE_H
#define CLLM_QUANTIZE_H

#include <stdint.h>

#include "cllm/core/status.h"
#include "cllm/formats/gguf.h"

typedef struct {
    int n_tensors;        /* tensors written */
    int n_converted;      /* tensors written in the target type (a mix: in the type the mix chose) */
    int n_fallback;       /* matrices written in a fallback type because rows are not a multiple of the block */
    int n_kept;           /* tensors copied unchanged (1-D, position_embd, already in type) */
    uint64_t bytes_in;    /* tensor data bytes read */
    uint64_t bytes_out;   /* tensor data bytes written */
} cllm_quantize_stats;

/* A per-tensor mix of llama-quantize (rules above), or PURE: every matrix
 * in one type. */
typedef enum {
    CLLM_QUANTIZE_PURE = 0,
    CLLM_QUANTIZE_Q3_K_M, /* base q3_K */
    CLLM_QUANTIZE_Q4_K_M, /* base q4_K */
    CLLM_QUANTIZE_Q5_K_M, /* base q5_K */
    CLLM_QUANTIZE_MIX_COUNT
} cllm_quantize_mix;

/* llama.cpp's general.file_type value for a target type (PURE), or -1. */
int cllm_quantize_file_type(uint32_t type);

/* Parses a target name: a type with kernels ("q4_0", "q4_K", ...) as PURE,
 * or a mix ("q3_k_m", "q4_k_m", "q5_k_m"; case-insensitive) with its base
 * type. Returns 0, or -1 for an unknown name. */
int cllm_quantize_parse_target(const char *name, uint32_t *type, cllm_quantize_mix *mix);

/* Converts in_path into out_path (see above). type must be a type with
 * kernels (CLLM_ERR_ARG otherwise). stats may be NULL. */
cllm_status cllm_quantize_gguf(const char *in_path, const char *out_path, uint32_t type,
                               cllm_quantize_stats *stats, cllm_error *err);

/* The same with a mix: type is ignored unless mix is PURE. */
cllm_status cllm_quantize_gguf_mix(const char *in_path, const char *out_path, uint32_t type, cllm_quantize_mix mix,
                                   cllm_quantize_stats *stats, cllm_error *err);

/* The same conversion over tensors the caller holds (cllm convert feeds
 * safetensors views through it): sets general.file_type (and
 * general.quantization_version) in w and adds the n tensors ts (name, type,
 * n_dims, dims, n_elements, nbytes and data set; data borrowed until the
 * write), each converted by the rules above. The converted copies are in
 * *bufs (n entries, NULL where a tensor was added as given), owned by the
 * caller: free them with cllm_quantize_free_buffers after
 * cllm_gguf_writer_write, also on failure. src_name is used in messages. */
cllm_status cllm_quantize_add_tensors(cllm_gguf_writer *w, const cllm_gguf_tensor *ts, uint64_t n, uint32_t type,
                                      cllm_quantize_mix mix, const char *src_name, void ***bufs,
                                      cllm_quantize_stats *stats, cllm_error *err);
void cllm_quantize_free_buffers(void **bufs, uint64_t n); /* accepts NULL */

#endif
