/*
 * model_file.h: opening a model file: the one loader every command uses
 * (generate, chat, serve, eval, sft, reward, dpo, ppo, grpo).
 *
 * cllm_model_file_open parses the GGUF once and gives the model config, the
 * model, its tokenizer and its chat template, with one set of rules:
 *   tokenizer: the caller's (params.tokenizer, e.g. --tokenizer FILE), else
 *     the file's tokenizer.ggml.* metadata, else the byte vocabulary when
 *     the model has exactly 256 tokens; otherwise an error naming the file.
 *     Its size must equal the model's vocab_size exactly.
 *   chat template: params.chat_template (NAME|FILE, cllm_chat_template_load)
 *     when given; else the file's tokenizer.chat_template: the built-in
 *     kind when it is the text cllm writes for one, else compiled as Jinja;
 *     a template that does not compile is an error naming the file, the key
 *     and the template line, never silently replaced, unless
 *     params.chat_template_optional (commands that never render a chat,
 *     e.g. `generate -p`): then it is kept in f->chat_template_error and
 *     the natural template stands in; else the vocabulary's natural one
 *     (cllm_chat_template_for).
 *   model: an f32 copy (training, or any use that needs parameters) through
 *     cllm_model_from_gguf on the same parsed file, or none (load_model = 0:
 *     the caller creates it from f->gguf and f->config, e.g. frozen for
 *     LoRA, or memory-mapped for inference, model/mapped.h).
 * The file stays open in f->gguf (for extra tensors such as a reward head)
 * until cllm_model_file_close or cllm_model_file_release_gguf.
 *
 * Does not: parse command lines (tools/model_session.c) or read adapters.
 */
#ifndef CLLM_MODEL_FILE_H
#define CLLM_MODEL_FILE_H

#include "cllm/infer/chat_template.h"
#include "cllm/formats/gguf.h"
#include "cllm/model/model.h"
#include "cllm/core/status.h"
#include "cllm/tokenizer/tokenizer.h"

typedef struct {
    int load_model;               /* 1 (default): build the model; 0: config, tokenizer, template only */
    cllm_model_options opts;      /* max_seq <= 0 or max_batch <= 0: the model's context / 1 */
    int check_finite;             /* f32 copy: refuse NaN/Inf weights (default 1) */
    cllm_tokenizer *tokenizer;    /* taken over (freed on error too); NULL: the file's */
    int tokenizer_optional;       /* 1: a file with no tokenizer inside (and not 256 tokens) opens with
                                     tok NULL and the natural template of no specials (PLAIN), for
                                     callers that take token ids (perplexity --tokens) */
    const char *chat_template;    /* NAME|FILE to use instead of the file's; NULL (default): see above */
    int chat_template_optional;   /* 1: a file template that does not compile is no error (see above) */
} cllm_model_file_params;

typedef struct {
    cllm_model_config config;
    cllm_model *model;            /* owned; NULL when load_model = 0 */
    cllm_tokenizer *tok;          /* owned; NULL only with tokenizer_optional */
    cllm_chat_template chat_template; /* owned (cllm_chat_template_free), a caller may take it over */
    int chat_template_refused;    /* 1: the file's template did not compile (only with chat_template_optional) */
    cllm_error chat_template_error; /* why, naming file, key and line, when chat_template_refused */
    cllm_gguf *gguf;              /* owned, open; NULL once released */
    const char *path;             /* borrowed from the caller */
    char name[128];               /* general.name ("" when absent; cut to fit) */
    char description[512];        /* general.description: what it was trained to do ("" when absent) */
} cllm_model_file;

cllm_model_file_params cllm_model_file_default_params(void);
/* On error *f is empty and err names the file and key or field. */
cllm_status cllm_model_file_open(const char *path, const cllm_model_file_params *p, cllm_model_file *f,
                                 cllm_error *err);
/* Closes the parsed file early (the model and tokenizer stay). */
void cllm_model_file_release_gguf(cllm_model_file *f);
/* Frees everything still owned; accepts an empty or closed f. */
void cllm_model_file_close(cllm_model_file *f);

#endif
