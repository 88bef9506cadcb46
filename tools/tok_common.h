/*
 * tok_common.h: tokenizer options shared by `cllm tokenizer` and
 * `cllm tokenize` (tools/ only): which vocabulary to load and how.
 */
#ifndef CLLM_TOOLS_TOK_COMMON_H
#define CLLM_TOOLS_TOK_COMMON_H

#include <stddef.h>

#include "cllm/tokenizer/tokenizer.h"

typedef struct {
    const char *path;    /* --tokenizer */
    const char *merges;  /* --merges (GPT-2 encoder.json + vocab.bpe) */
    const char *pattern; /* --pattern (tiktoken files) */
} tok_source;

/* Consumes argv[*i] if it is a tokenizer-source flag: 1 consumed, 0 not
 * ours, -1 usage error (printed). */
int tok_source_arg(const char *command, tok_source *src, int argc, char **argv, int *i);
/* Loads the tokenizer; prints the error and returns an exit code on failure. */
int tok_source_load(const char *command, const tok_source *src, cllm_tokenizer **out);
/* Calls fn(ctx, text, len, line) for the string field `field` of every
 * JSONL record of path (blank lines skipped, BOM and CRLF accepted). A
 * malformed line or missing field is an error naming file:line[:column].
 * Returns an exit code; stops at the first non-zero from fn. */
typedef int (*tok_record_fn)(void *ctx, const char *text, size_t len, size_t line);
int tok_for_each_jsonl(const char *command, const char *path, const char *field, tok_record_fn fn,
                       void *ctx);

#define TOK_SOURCE_HELP                                                                 \
    "  --tokenizer FILE  cllm tokenizer file, GGUF (byte-level BPE or SentencePiece),\n"   \
    "                    SentencePiece tokenizer.model, Hugging Face tokenizer.json\n" \
    "                    (byte-level or SentencePiece-style BPE),\n"  \
    "                    tiktoken rank file, or GPT-2 encoder.json/vocab.json (--merges)\n" \
    "  --merges FILE     GPT-2 vocab.bpe / merges.txt for an encoder.json\n"            \
    "  --pattern NAME    split for tiktoken files: gpt2, cl100k (gpt4), o200k, none\n"

#endif
