/*
 * grammar.h: constrained decoding with GBNF grammars (llama.cpp's syntax) and
 * JSON Schema, as a stage of the sampler chain.
 *
 * Three objects:
 *   cllm_grammar          a parsed grammar: an immutable rule table (shareable
 *                         between threads and requests);
 *   cllm_grammar_matcher  the state of one output under a grammar: a set of
 *                         pushdown stacks over UTF-8 code points, plus the
 *                         bytes of a code point not yet complete;
 *   cllm_grammar_vocab    a tokenizer's vocabulary as a byte trie, with its
 *                         end-of-generation ids (shareable, immutable).
 * The mask step walks the trie once with the matcher's stacks, pruning every
 * subtree no stack can follow, so a token whose bytes span several grammar
 * symbols or end inside a multi-byte character is judged on its full bytes.
 * End-of-generation ids are allowed only when the grammar is complete; other
 * special tokens never are.
 *
 * GBNF subset (docs/GRAMMAR.md): `name ::= alternatives` rules, `|`, `( )`,
 * `*` `+` `?` `{m}` `{m,}` `{m,n}`, "literals" and [classes] ([^...] negated,
 * ranges) with \n \r \t \\ \" \[ \] \- \xHH \uHHHH \UHHHHHHHH escapes, `.` for
 * any character, `#` comments, and the start rule `root`. Left recursion
 * (also through nullable symbols, such as ("a"?)*) is refused at parse time:
 * the matcher could not finish expanding it.
 *
 * Not here: lazy grammars triggered by a word, and tokens of the grammar's own
 * alphabet other than code points (no token-level terminals).
 */
#ifndef CLLM_GRAMMAR_H
#define CLLM_GRAMMAR_H

#include <stddef.h>
#include <stdint.h>

#include "cllm/core/status.h"
#include "cllm/tokenizer/tokenizer.h"

/* Hard limits (inputs come from HTTP requests). */
#define CLLM_GRAMMAR_MAX_TEXT (1u << 20)      /* bytes of grammar text */
#define CLLM_GRAMMAR_MAX_ELEMENTS (1u << 20)  /* symbols after expanding repetitions */
#define CLLM_GRAMMAR_MAX_REPEAT 1000          /* m and n in {m,n} */
#define CLLM_GRAMMAR_MAX_STACKS 512           /* parallel parses kept per step (more are dropped) */
#define CLLM_GRAMMAR_MAX_DEPTH 512            /* nesting depth of one parse (deeper is refused) */

typedef struct cllm_grammar cllm_grammar;

/* Parses GBNF text (len bytes; need not be NUL-terminated). `name` (a file
 * name, or a request field) starts every error message, followed by
 * line:column: "g.gbnf:3:14: expected '::=' after rule name 'x'". *out is
 * owned by the caller. */
cllm_status cllm_grammar_parse(const char *text, size_t len, const char *name, cllm_grammar **out,
                               cllm_error *err);
void cllm_grammar_destroy(cllm_grammar *g);
int cllm_grammar_n_rules(const cllm_grammar *g);

/* A GBNF grammar for any JSON value whose top level is an object (what
 * OpenAI's response_format {"type":"json_object"} promises). Static text. */
const char *cllm_grammar_json_object_text(void);

/* Converts a JSON Schema (text, len bytes) to GBNF. *gbnf is owned (free()).
 * Supported and refused keywords are listed in docs/GRAMMAR.md; a refused one
 * fails with CLLM_ERR_ARG naming it and where it is ("name: unsupported JSON
 * Schema keyword 'oneOf' at /properties/x"). */
cllm_status cllm_json_schema_to_gbnf(const char *schema, size_t len, const char *name, char **gbnf,
                                     cllm_error *err);

/* The same, with the root rule's body given: GBNF in which the rule name
 * `schema` is the schema's value (NULL: "schema", as above). For a wrapper
 * such as tool calls: "\"<tool_call>\" schema \"</tool_call>\"". */
cllm_status cllm_json_schema_to_gbnf_root(const char *schema, size_t len, const char *name, const char *root_body,
                                          char **gbnf, cllm_error *err);

/* ---- matching ------------------------------------------------------------ */

typedef struct cllm_grammar_matcher cllm_grammar_matcher;

/* Starts at the beginning of g's root rule; g is borrowed and must outlive
 * the matcher. NULL with err filled when out of memory. */
cllm_grammar_matcher *cllm_grammar_matcher_create(const cllm_grammar *g, cllm_error *err);
void cllm_grammar_matcher_destroy(cllm_grammar_matcher *m);
void cllm_grammar_matcher_reset(cllm_grammar_matcher *m);

/* Feeds bytes (any split of UTF-8: a character may continue in the next
 * call). 1: accepted, the matcher advanced; 0: some prefix of the bytes
 * leaves no valid continuation (invalid UTF-8 included) and the matcher is
 * unchanged. */
int cllm_grammar_matcher_accept(cllm_grammar_matcher *m, const uint8_t *bytes, size_t n);

/* 1 when the text so far is a complete sentence of the grammar (it may
 * still continue, as digits of a number can). */
int cllm_grammar_matcher_complete(const cllm_grammar_matcher *m);

/* 1 when some non-empty continuation is still possible. */
int cllm_grammar_matcher_can_continue(const cllm_grammar_matcher *m);

/* ---- token masking ------------------------------------------------------- */

typedef struct cllm_grammar_vocab cllm_grammar_vocab;

/* The vocabulary from explicit token byte strings: bytes[i] (len[i] bytes,
 * may be 0 for a token that never matches text) for i < V, and the
 * end-of-generation ids eog[n_eog]. Copies what it needs. */
cllm_grammar_vocab *cllm_grammar_vocab_create(int V, const uint8_t *const *bytes, const size_t *len,
                                              const int32_t *eog, int n_eog, cllm_error *err);
/* The same from a tokenizer: normal tokens match their bytes, special and
 * unused ones never match (except the eog ids). */
cllm_grammar_vocab *cllm_grammar_vocab_from_tokenizer(const cllm_tokenizer *tok, const int32_t *eog, int n_eog,
                                                      cllm_error *err);
void cllm_grammar_vocab_destroy(cllm_grammar_vocab *v);
int cllm_grammar_vocab_size(const cllm_grammar_vocab *v);

/* allowed[V] (V = the vocabulary's size) receives 1 for each token that keeps
 * the output valid from the matcher's state, 0 otherwise. Returns the number
 * allowed (0: a dead end, which a grammar whose characters the vocabulary
 * can spell never reaches). */
int cllm_grammar_matcher_mask(cllm_grammar_matcher *m, const cllm_grammar_vocab *v, uint8_t *allowed);

/* Advances the matcher by token id's bytes (an eog id only checks that the
 * grammar is complete). 1 accepted, 0 rejected (matcher unchanged). */
int cllm_grammar_matcher_accept_token(cllm_grammar_matcher *m, const cllm_grammar_vocab *v, int32_t token);

/* 1 when accept_token would accept the token; the matcher is unchanged (its
 * scratch memory may grow). Costs one token's bytes, not a vocabulary walk. */
int cllm_grammar_matcher_check_token(cllm_grammar_matcher *m, const cllm_grammar_vocab *v, int32_t token);

#endif
