/*
 * chat.h: chat templates: a conversation rendered into token ids.
 *
 * A template turns (role, content) messages into the token sequence a chat
 * model was trained on. cllm renders templates it recognises, chosen by
 * kind, instead of interpreting the Jinja text stored in model files: a
 * template can then never reach host objects, read files or loop forever.
 * The Jinja text of each kind is still written into GGUF files
 * (tokenizer.chat_template) so other engines (llama.cpp) recognise it, and
 * cllm_chat_template_detect maps a file's Jinja text back to a kind.
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
 * exactly the template's own specials allowed.
 *
 * The per-token mask marks what supervised fine-tuning learns from: the
 * tokens of each assistant message's content and the token(s) that end the
 * assistant turn (so the tuned model learns to stop). Everything else
 * (system and user turns, template markup) is 0.
 */
#ifndef CLLM_CHAT_H
#define CLLM_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "cllm/status.h"
#include "cllm/tokenizer.h"

typedef enum {
    CLLM_ROLE_SYSTEM = 0,
    CLLM_ROLE_USER,
    CLLM_ROLE_ASSISTANT,
    CLLM_ROLE_COUNT
} cllm_chat_role;

/* "system", "user", "assistant"; -1 when unknown. */
int cllm_chat_role_parse(const char *name);
const char *cllm_chat_role_name(cllm_chat_role role);

typedef struct {
    cllm_chat_role role;
    const char *content; /* UTF-8, [len] bytes, borrowed */
    size_t len;
} cllm_chat_message;

typedef enum {
    CLLM_CHAT_TEMPLATE_CHATML = 0,
    CLLM_CHAT_TEMPLATE_PLAIN,
    CLLM_CHAT_TEMPLATE_COUNT
} cllm_chat_template;

const char *cllm_chat_template_name(cllm_chat_template kind); /* "chatml", "plain" */
int cllm_chat_template_parse(const char *name);              /* -1 when unknown */
/* The Jinja text stored in GGUF for this kind (borrowed, static). */
const char *cllm_chat_template_jinja(cllm_chat_template kind);
/* Recognises a Jinja template by its markers (ChatML's <|im_start|>, ours
 * for PLAIN). CLLM_ERR_FORMAT naming what was not recognised otherwise. */
cllm_status cllm_chat_template_detect(const char *jinja, cllm_chat_template *kind, cllm_error *err);
/* The natural kind for a tokenizer: CHATML when it has <|im_start|> and
 * <|im_end|>, else PLAIN. */
cllm_chat_template cllm_chat_template_for(const cllm_tokenizer *tok);

/* Renders messages[n] and appends the ids to out. When mask is non-NULL it
 * gets one byte per appended id (1 = learn from this token, see above); it
 * must be a zero-initialised cllm_chat_mask and is grown as needed.
 * add_generation_prompt appends the assistant header so a model continues
 * as the assistant. Fails naming the message index for an unknown role, and
 * when CHATML is asked of a tokenizer without its specials. */
typedef struct {
    uint8_t *values; /* [n], capacity cap */
    size_t n, cap;
} cllm_chat_mask;

void cllm_chat_mask_free(cllm_chat_mask *mask);

cllm_status cllm_chat_render(const cllm_tokenizer *tok, cllm_chat_template kind,
                             const cllm_chat_message *messages, int n, int add_generation_prompt,
                             cllm_tokens *out, cllm_chat_mask *mask, cllm_error *err);

/* Token ids that end an assistant turn for this template (for generation's
 * end-of-generation list); returns how many were written to ids (<= 2).
 * PLAIN without an end-of-text special ends on text and returns 0 (the
 * caller adds the "\n\n### " stop string, cllm_chat_stop_string). */
int cllm_chat_end_tokens(const cllm_tokenizer *tok, cllm_chat_template kind, int32_t *ids);
/* A stop string that ends a turn in text form, or NULL. */
const char *cllm_chat_stop_string(const cllm_tokenizer *tok, cllm_chat_template kind);

#endif
