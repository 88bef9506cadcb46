/*
 * quantize.h: rewriting a GGUF model file with its matrices in another ggml
 * type (f32, f16, bf16, q8_0, q4_0), as llama.cpp's llama-quantize does.
 *
 * Every key/value of the input is copied (tokenizer, chat template, cllm.*
 * keys), general.file_type is set to llama.cpp's LLAMA_FTYPE value of the
 * target (0 all-f32, 1 f16, 32 bf16, 7 q8_0, 2 q4_0) and, for q8_0/q4_0,
 * general.quantization_version to 2. Which tensors change follows
 * llama-quantize: every tensor with 2 or more dims is converted, except
 * position_embd.weight (kept in its type, as llama.cpp keeps positional
 * embeddings); 1-D tensors (norms, biases) stay as they are. A matrix whose
 * row length is not a multiple of 32 cannot hold q8_0/q4_0 blocks and is
 * written as f16 instead (llama.cpp's fallback for incompatible shapes);
 * the stats count those. Input tensors in f16/bf16/q8_0/q4_0 are first
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

typedef struct {
    int n_tensors;        /* tensors written */
    int n_converted;      /* tensors written in the target type */
    int n_fallback;       /* matrices written as f16 because rows are not a multiple of 32 */
    int n_kept;           /* tensors copied unchanged (1-D, position_embd, already in type) */
    uint64_t bytes_in;    /* tensor data bytes read */
    uint64_t bytes_out;   /* tensor data bytes written */
} cllm_quantize_stats;

/* llama.cpp's general.file_type value for a target type, or -1. */
int cllm_quantize_file_type(uint32_t type);

/* Converts in_path into out_path (see above). type must be f32, f16, bf16,
 * q8_0 or q4_0 (CLLM_ERR_ARG otherwise). stats may be NULL. */
cllm_status cllm_quantize_gguf(const char *in_path, const char *out_path, uint32_t type,
                               cllm_quantize_stats *stats, cllm_error *err);

#endif
