/*
 * chat_template.h: chat templates: a conversation rendered into token ids.
 *
 * A template turns (role, content) messages into the token sequence a chat
 * model was trained on. Two kinds are built in and rendered directly
 * (exactly, with SFT masks); any other template, such as the Jinja text a
 * model file stores in tokenizer.chat_template, runs in cllm's Jinja-subset
 * interpreter (jinja.h: bounded, sees only the conversation). The Jinja
 * text of each built-in kind is written into GGUF files so other engines
 * (llama.cpp) recognise it, and cllm_chat_template_from_text maps that text
 * back to the kind.
 *
 * Kinds:
 *   CHATML  <|im_start|>{role}\n{content}<|im_end|>\n ... then
 *           <|im_start|>assistant\n for the generation prompt. Needs the
 *           specials <|im_start|> and <|im_end|> in the vocabulary.
 *   PLAIN   for vocabularies without chat specials (byte-level models):
 *           "### {Role}:\n{content}\n\n", generation prompt "### Assistant:\n";
 *           an assistant turn ends with the end-of-text special if the
 *           vocabulary has one, else with the text "\n\n".
 *
 * Message content is encoded with NO special tokens allowed, so text a user
 * types can never become a control token. Template markup is encoded with
 * exactly the template's own specials allowed (JINJA: the vocabulary's).
 *
 * The per-token mask marks what supervised fine-tuning learns from: the
 * tokens of each assistant message's content and the token(s) that end the
 * assistant turn (so the tuned model learns to stop; JINJA: the end-of-turn
 * specials of cllm_chat_end_tokens right after the content). Everything
 * else (system, user and tool turns, template markup) is 0.
 */
#ifndef CLLM_CHAT_TEMPLATE_H
#define CLLM_CHAT_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

#include "cllm/core/status.h"
#include "cllm/tokenizer/tokenizer.h"

struct cJSON;

typedef enum {
    CLLM_ROLE_SYSTEM = 0,
    CLLM_ROLE_USER,
    CLLM_ROLE_ASSISTANT,
    CLLM_ROLE_TOOL, /* a tool's result (Jinja templates with tools; built-ins render it like the others) */
    CLLM_ROLE_COUNT
} cllm_chat_role;

/* "system", "user", "assistant", "tool"; -1 when unknown. */
int cllm_chat_role_parse(const char *name);
const char *cllm_chat_role_name(cllm_chat_role role);

typedef struct {
    cllm_chat_role role;
    const char *content; /* UTF-8, [len] bytes, borrowed */
    size_t len;
    const struct cJSON *extra; /* optional JSON object (borrowed): tool_calls, tool_call_id, name, ...
                                  given to Jinja templates as fields of the message; built-ins
                                  write an assistant's tool_calls (infer/tools.h) and ignore the rest */
} cllm_chat_message;

typedef enum {
    CLLM_CHAT_TEMPLATE_CHATML = 0,
    CLLM_CHAT_TEMPLATE_PLAIN,
    CLLM_CHAT_TEMPLATE_JINJA, /* any other template: run by the Jinja interpreter (jinja.h) */
    CLLM_CHAT_TEMPLATE_COUNT
} cllm_chat_template_kind;

/* A chat template: a built-in kind, or a compiled Jinja template. Passed by
 * value as a view; exactly one place owns a JINJA one (the loader's
 * cllm_model_file, then whoever takes it over) and frees it with
 * cllm_chat_template_free; copies are valid while the owner keeps it. */
typedef struct {
    cllm_chat_template_kind kind;
    const struct cllm_jinja *jinja; /* JINJA: the compiled template; NULL for built-ins */
    const char *text;               /* the Jinja source written to GGUF (static for built-ins) */
} cllm_chat_template;

#define CLLM_CHAT_TEMPLATE_KEY "tokenizer.chat_template"

/* "chatml", "plain", "jinja". */
const char *cllm_chat_template_name(cllm_chat_template t);
/* A built-in kind by name (chatml, plain); -1 when unknown. */
int cllm_chat_template_parse(const char *name);
/* The built-in template of a kind (CHATML or PLAIN). */
cllm_chat_template cllm_chat_template_builtin(cllm_chat_template_kind kind);
/* A template from Jinja text[len]: the built-in kind when the text is the
 * one cllm writes for it (so ChatML keeps its exact renderer and SFT masks),
 * else compiled as Jinja (owned by *out). name labels errors, e.g.
 * "model.gguf: tokenizer.chat_template"; a compile error is CLLM_ERR_FORMAT
 * "name: line N: reason". */
cllm_status cllm_chat_template_from_text(const char *text, size_t len, const char *name, cllm_chat_template *out,
                                         cllm_error *err);
/* Compiles text as Jinja even when a built-in kind would recognise it. */
cllm_status cllm_chat_template_compile(const char *text, size_t len, const char *name, cllm_chat_template *out,
                                       cllm_error *err);
/* --chat-template NAME|FILE: a built-in name, else a file of Jinja text
 * (cllm_chat_template_from_text). */
cllm_status cllm_chat_template_load(const char *name_or_path, cllm_chat_template *out, cllm_error *err);
/* Frees a JINJA template's compiled form and text; built-ins are untouched.
 * Leaves *t the PLAIN built-in. Accepts NULL. */
void cllm_chat_template_free(cllm_chat_template *t);
/* The natural kind for a tokenizer: CHATML when it has <|im_start|> and
 * <|im_end|>, else PLAIN. */
cllm_chat_template cllm_chat_template_for(const cllm_tokenizer *tok);

typedef struct {
    uint8_t *values; /* [n], capacity cap */
    size_t n, cap;
} cllm_chat_mask;

void cllm_chat_mask_free(cllm_chat_mask *mask);

/* What follows the last message (the `mode` of cllm_chat_render). */
enum {
    CLLM_CHAT_END = 0,      /* nothing: the conversation as it stands (training data) */
    CLLM_CHAT_GENERATE = 1, /* the assistant header: the model answers (add_generation_prompt) */
    CLLM_CHAT_CONTINUE = 2  /* the final message, an assistant's, left open: the model continues
                               it (assistant prefill, continue_final_message) */
};

/* Renders messages[n] and appends the ids to out. When mask is non-NULL it
 * gets one byte per appended id (1 = learn from this token, see above); it
 * must be a zero-initialised cllm_chat_mask and is grown as needed.
 * mode is CLLM_CHAT_END, _GENERATE or _CONTINUE (CONTINUE needs the final
 * message to be an assistant's, else CLLM_ERR_ARG). tools (borrowed, may be
 * NULL) is the JSON list given to Jinja templates as `tools`; the built-in
 * templates write it into the system message (infer/tools.h). Fails naming
 * the message index for an unknown role, when CHATML is asked of a
 * tokenizer without its specials, and with the template's line for Jinja
 * render errors (raise_exception). For JINJA templates see chat.c: content
 * stays text through sentinels, or, for templates that rewrite content, the
 * whole rendering is encoded with specials allowed (then no mask). */
cllm_status cllm_chat_render_tools(const cllm_tokenizer *tok, cllm_chat_template tmpl,
                                   const cllm_chat_message *messages, int n, int mode, const struct cJSON *tools,
                                   cllm_tokens *out, cllm_chat_mask *mask, cllm_error *err);
cllm_status cllm_chat_render(const cllm_tokenizer *tok, cllm_chat_template tmpl, const cllm_chat_message *messages,
                             int n, int mode, cllm_tokens *out, cllm_chat_mask *mask, cllm_error *err);

/* Token ids that end an assistant turn for this template (for generation's
 * end-of-generation list); returns how many were written to ids (at most
 * CLLM_CHAT_MAX_END_TOKENS). JINJA: the end-of-turn specials the template
 * text names (<|eot_id|>, <|im_end|>, <end_of_turn>, <|end|>, </s>, ...)
 * that the vocabulary has, then its eos_token. PLAIN without an end-of-text
 * special ends on text and returns 0 (the caller adds the "\n\n### " stop
 * string, cllm_chat_stop_string). */
#define CLLM_CHAT_MAX_END_TOKENS 2
int cllm_chat_end_tokens(const cllm_tokenizer *tok, cllm_chat_template tmpl, int32_t *ids);
/* A stop string that ends a turn in text form, or NULL; _strings gives it
 * as a static one-string list (for cllm_generate_params.stop). */
const char *cllm_chat_stop_string(const cllm_tokenizer *tok, cllm_chat_template tmpl);
const char *const *cllm_chat_stop_strings(const cllm_tokenizer *tok, cllm_chat_template tmpl);

#endif
