/*
 * chat_data.h: supervised fine-tuning data from JSONL files in TRL's
 * dataset formats, tokenized with a chat template into (ids, loss mask).
 *
 * One JSON object per line. Accepted shapes (TRL's "SFT dataset formats"):
 *   {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}
 *       conversational: rendered with the chat template (chat_template.h); loss on
 *       every assistant turn's content and its end-of-turn token(s).
 *   {"prompt": "...", "completion": "..."}
 *       standard prompt-completion: the two texts concatenated, loss on the
 *       completion only, then the end-of-text token (when the vocabulary has
 *       one) so the model learns to stop.
 *   {"prompt": [messages...], "completion": [messages...]}
 *       conversational prompt-completion: prompt and completion message lists
 *       rendered as one conversation; loss on the assistant turns of the
 *       completion only (assistant turns inside the prompt are context).
 *   {"text": "..."}
 *       language modelling: loss on every token (and end-of-text).
 *   Tools (TRL's tool-calling format): a record's "tools" (an OpenAI tool
 *       list, infer/tools.h) is written into the system message, messages
 *       may have role "tool" (a result: context, no loss), and an assistant
 *       message may hold "tool_calls" (its "content" then may be empty or
 *       null): the calls are written in infer/tools.h's format and learned.
 * Other keys are ignored. Blank lines (only spaces, tabs, CR) are skipped; a
 * UTF-8 BOM on the first line is skipped; CRLF line ends are accepted; a last
 * line without '\n' is read like the others.
 *
 * Errors name "FILE:LINE:COLUMN" (1-based; the column is the byte where the
 * JSON parser stopped) for malformed JSON, and "FILE:LINE: field" for a
 * missing or wrong-typed field, an unknown role, an empty completion or
 * assistant reply, or nothing to learn from. An example longer than
 * max_tokens is an error naming the line and both counts unless truncate is
 * set; then it keeps its first max_tokens tokens, and the count of truncated
 * examples is reported in the stats (an example left without any
 * loss-bearing token is dropped and counted).
 *
 * Mask convention: mask[i] = 1 when token i is a training target (the model
 * is asked to predict it from ids[0..i-1]); mask[0] is always 0.
 *
 * Not here: batching or packing (sft.h), the template itself (chat_template.h).
 */
#ifndef CLLM_CHAT_DATA_H
#define CLLM_CHAT_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "cllm/infer/chat_template.h"
#include "cllm/core/status.h"
#include "cllm/tokenizer/tokenizer.h"

#define CLLM_JSONL_MAX_LINE (64u << 20) /* bytes; longer lines are an error */
#define CLLM_JSONL_MAX_DEPTH 64         /* JSON nesting accepted per line */

typedef struct {
    int32_t *ids;  /* [n] token ids, owned */
    uint8_t *mask; /* [n] 1 = loss on this token (see above), owned */
    size_t n;
    int64_t line;  /* 1-based line of the source file */
} cllm_sft_example;

typedef struct {
    cllm_sft_example *ex; /* [n], owned */
    size_t n, cap;
    /* statistics of the load */
    int64_t lines_read;    /* non-blank lines */
    int64_t n_truncated;   /* examples cut to max_tokens (truncate = 1 only) */
    int64_t n_dropped;     /* examples left with no loss token after truncation */
    uint64_t n_tokens;     /* tokens of all kept examples */
    uint64_t n_loss_tokens;/* tokens with mask 1 */
    size_t max_len;        /* longest kept example */
} cllm_sft_dataset;

typedef struct {
    cllm_chat_template chat_template; /* for conversational records */
    size_t max_tokens;                /* longest example allowed (the training T); 0 = no limit */
    int truncate;                     /* 1: cut long examples instead of failing */
} cllm_chat_data_params;

/* chatml when the tokenizer has its specials, else plain; no limit; no truncation. */
cllm_chat_data_params cllm_chat_data_default_params(const cllm_tokenizer *tok);

/* Reads and tokenizes every record of `path`. *out must be zero-initialised;
 * on failure it is freed and zero again. */
cllm_status cllm_chat_data_load(const char *path, const cllm_tokenizer *tok, const cllm_chat_data_params *p,
                                cllm_sft_dataset *out, cllm_error *err);
/* Same over a buffer; `name` stands for the file in messages. */
cllm_status cllm_chat_data_parse(const char *data, size_t len, const char *name, const cllm_tokenizer *tok,
                                 const cllm_chat_data_params *p, cllm_sft_dataset *out, cllm_error *err);
void cllm_sft_dataset_free(cllm_sft_dataset *ds); /* accepts NULL; leaves it zeroed */

/* ---- building blocks for other JSONL readers (preference data) ------------
 * cJSON's type, declared here so callers need not include <cjson/cJSON.h>
 * unless they read the objects. */
struct cJSON;
/* Called once per non-blank line with the parsed object (borrowed for the
 * call). Return CLLM_OK to go on; any other status stops the walk. */
typedef cllm_status (*cllm_jsonl_fn)(void *ctx, const struct cJSON *obj, int64_t line, cllm_error *err);
/* Splits data into lines, parses each (nesting over CLLM_JSONL_MAX_DEPTH is
 * an error, never a stack overflow), requires an object, calls fn. Errors
 * name name:line:column. */
cllm_status cllm_jsonl_each(const char *data, size_t len, const char *name, cllm_jsonl_fn fn, void *ctx,
                            cllm_error *err);
/* Reads a whole file (regular file, <= 4 GiB) and walks it as above. */
cllm_status cllm_jsonl_each_file(const char *path, cllm_jsonl_fn fn, void *ctx, cllm_error *err);

/* A message list [{"role","content"}...] to chat messages. *msgs is malloc'ed
 * (owned by the caller; the content pointers borrow from `arr`). Errors name
 * name:line: field[i].role / .content. */
cllm_status cllm_chat_data_messages(const struct cJSON *arr, const char *name, int64_t line, const char *field,
                                    cllm_chat_message **msgs, int *n, cllm_error *err);
/* A required string field of obj; errors name name:line: field. Empty strings
 * are accepted (the caller decides). */
cllm_status cllm_chat_data_string(const struct cJSON *obj, const char *name, int64_t line, const char *field,
                                  const char **out, size_t *len, cllm_error *err);

#endif
