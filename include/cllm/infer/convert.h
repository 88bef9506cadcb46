/*
 * convert.h: a Hugging Face model folder -> one GGUF file, the file
 * llama.cpp's convert_hf_to_gguf.py writes for the same folder (`cllm
 * convert`; docs/FORMATS.md "Hugging Face import").
 *
 * Reads DIR/config.json (architectures[0] and the hyperparameters),
 * the weights (DIR/model.safetensors or the shards of
 * DIR/model.safetensors.index.json, safetensors.h: mapped, validated), the
 * tokenizer (DIR/tokenizer.model, SentencePiece, for the llama family when
 * present, else DIR/tokenizer.json, byte-level BPE) and
 * DIR/tokenizer_config.json (special tokens, add_bos_token, chat_template).
 * A BPE vocabulary smaller than config.json's vocab_size is padded with
 * unused ids ("[PAD<id>]" in the GGUF), as llama.cpp's converter pads it.
 *
 * Architectures (anything else is refused by name):
 *   GPT2LMHeadModel    -> gpt2: Conv1D weights ([in, out]) transposed to
 *                         llama.cpp's [out, in]; c_attn stays fused (attn_qkv)
 *   LlamaForCausalLM   -> llama: q_proj/k_proj rows permuted per head from
 *                         Hugging Face's rotate-half RoPE layout to the
 *                         adjacent-pair layout llama.cpp's llama arch (and
 *                         cllm) rotate; rope_scaling "llama3" adds
 *                         rope_freqs.weight, "linear" rope.scaling.* keys
 *   MistralForCausalLM -> llama, as llama.cpp does, plus
 *                         llama.attention.sliding_window (llama.cpp ignores it)
 *   Qwen2ForCausalLM   -> qwen2: q/k/v biases, NEOX RoPE (no permutation)
 * Config keys that change the function in ways these archs cannot express
 * (another activation, head_dim != hidden/heads, mlp_bias, partial rotary,
 * other rope scaling types, Qwen2's use_sliding_window, ...) are refused by
 * name; every tensor must be present with the shape the config implies and
 * every checkpoint tensor must be used (or be a known buffer such as GPT-2's
 * attn.bias mask), else the error names it.
 *
 * Types: 1-D tensors are written as f32; matrices in the target type through
 * the quantizer (quantize.h: cllm_quantize_add_tensors, same rules and
 * fallbacks as `cllm quantize`); auto_type keeps the checkpoint's own float
 * type (f16/bf16, f32 when mixed). Memory: tensors written unchanged are
 * borrowed from the maps; only transformed (transposed, permuted, widened)
 * and converted tensors are held in memory until the atomic write.
 */
#ifndef CLLM_CONVERT_H
#define CLLM_CONVERT_H

#include <stdint.h>

#include "cllm/core/status.h"
#include "cllm/infer/quantize.h"

typedef struct {
    int auto_type;          /* 1 (default): the checkpoint's float type */
    uint32_t type;          /* else: the target type (cllm_quantize_parse_target) */
    cllm_quantize_mix mix;  /* and mix */
    const char *name;       /* general.name; NULL: the folder's name */
} cllm_convert_params;

cllm_convert_params cllm_convert_default_params(void);

typedef struct {
    char hf_arch[64];       /* config.json architectures[0] */
    char arch[16];          /* GGUF general.architecture */
    char tokenizer[32];     /* "tokenizer.model" or "tokenizer.json" */
    char pre[32];           /* tokenizer.ggml.pre written ("" for SentencePiece) */
    int pre_unknown;        /* 1: the split regex has no llama.cpp name ("default" written) */
    uint64_t n_source;      /* checkpoint tensors */
    uint32_t n_files;       /* safetensors files */
    uint32_t type;          /* matrices' type (before mixes and fallbacks) */
    cllm_quantize_stats q;  /* what the quantizer wrote */
} cllm_convert_stats;

/* Converts dir into out_path (atomic: no file on failure). p NULL: defaults;
 * stats may be NULL. Errors name the file and the key or tensor. */
cllm_status cllm_convert_hf(const char *dir, const char *out_path, const cllm_convert_params *p,
                            cllm_convert_stats *stats, cllm_error *err);

#endif
