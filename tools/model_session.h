/*
 * model_session.h: loading a model for inference together with its
 * tokenizer and chat template, shared by `cllm generate`, `cllm chat` and
 * the other inference commands (tools/ only).
 *
 * The tokenizer comes from, in order: --tokenizer FILE; the model file's own
 * tokenizer.ggml.* metadata; a byte-level vocabulary when the model has
 * exactly 256 tokens (models pre-trained on raw bytes). Otherwise loading
 * fails and says to pass --tokenizer.
 */
#ifndef CLLM_TOOLS_MODEL_SESSION_H
#define CLLM_TOOLS_MODEL_SESSION_H

#include "cllm/infer/chat_template.h"
#include "cllm/model/model.h"
#include "cllm/tokenizer/tokenizer.h"
#include "tok_common.h"

/* Without --ctx, the KV cache covers the model's context up to this many
 * positions (llama.cpp's default context). */
#define SESSION_DEFAULT_CONTEXT 4096

typedef struct {
    const char *model_path; /* -m, --model */
    tok_source tokenizer;   /* --tokenizer, --merges, --pattern */
    int context;            /* --ctx: KV-cache positions, 0 = the model's context_length */
    int threads;            /* --threads, 0 = all cores */
    const char *chat_template; /* --chat-template (alias --template) NAME|FILE, NULL = from the file or tokenizer */
    int template_optional;  /* set by the command: it renders no chat, so a model template that does not
                               compile is a warning (model_file.h chat_template_optional) */
    const char *lora_path;  /* --lora FILE: a LoRA adapter GGUF applied without merging */
    int cache_type;         /* --cache-type f32|f16|q8_0: KV cache element type (a ggml id; f32 = 0) */
    int no_repack;          /* --no-repack: run the weights from the map (keep_file_layout) */
    int no_check_weights;   /* --no-check-weights: skip the load-time NaN/Inf scan (skip_weight_check) */
    int bf16_prompt;        /* --bf16-prompt auto|own|onednn (cllm_bf16_prompt; auto = 0) */
} model_session_args;

typedef struct {
    cllm_model *model;
    cllm_tokenizer *tok;
    cllm_chat_template chat_template; /* owned */
    int context; /* KV positions per slot */
    char name[128];         /* the file's general.name (cllm_model_file's) */
    char description[512];  /* general.description: what it was trained to do */
} model_session;

void model_session_args_init(model_session_args *a);
/* Consumes argv[*i] if it is one of the flags above: 1 consumed, 0 not ours,
 * -1 usage error (printed). */
int model_session_arg(const char *command, model_session_args *a, int argc, char **argv, int *i);
#define MODEL_SESSION_HELP                                                                   \
    "  -m, --model FILE  a GGUF model (required)\n"                                          \
    "  --ctx N           context window in tokens (default: the model's, at most 4096)\n"                  \
    "  --threads N       CPU threads (default: all cores)\n"                                 \
    "  --chat-template NAME|FILE  chat template: chatml, plain or a Jinja file (default: the\n" \
    "                    model's tokenizer.chat_template); --template is an alias\n"            \
    "  --lora FILE       apply a LoRA adapter (cllm sft --lora-rank) without merging\n"     \
    "  --cache-type T    KV cache type: f32 (default), f16 (2x smaller, llama.cpp's default) or q8_0\n" \
    "                    (3.76x smaller), as llama.cpp's -ctk/-ctv\n" \
    "  --no-check-weights  load a model even if a weight is NaN or Inf (default: refused at load,\n" \
    "                    naming the tensor; such a model can only produce non-finite logits)\n" \
    "  --no-repack       run the weights from the file's mapping (default: copied at load into huge\n" \
    "                    pages, q8_0/q4_0/bf16 interleaved for the VNNI / AVX512-BF16 kernels:\n" \
    "                    their prompts ~2x faster, decoding 1.1-1.6x; same memory)\n" \
    "  --bf16-prompt R   bf16 weights' prompt products: own (the AVX512-BF16 kernel), onednn\n" \
    "                    (oneDNN's bf16 matmul: AMX tiles where present) or auto (default:\n" \
    "                    onednn on CPUs with AMX, else own)\n" \
    TOK_SOURCE_HELP

/* Parses a --cache-type value (f32, f16 or q8_0) into *type; prints a usage
 * error and returns 0 when it is anything else. */
int model_session_parse_cache_type(const char *command, const char *v, int *type);

/* Parses a --bf16-prompt value (auto, own or onednn) into *route
 * (cllm_bf16_prompt); prints a usage error and returns 0 otherwise. */
int model_session_parse_bf16_prompt(const char *command, const char *v, int *route);

/* Loads everything; prints the error and returns an exit code on failure. */
int model_session_open(const char *command, const model_session_args *a, int kv_slots, model_session *s);
void model_session_close(model_session *s);

#endif
