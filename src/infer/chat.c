/*
 * chat.c: rendering conversations with the templates of chat.h.
 *
 * Each piece of a rendering is encoded on its own: markup with the
 * template's specials allowed, content with none. Rendering the same
 * conversation for training (with a mask) and for inference (with a
 * generation prompt) therefore gives identical ids for the shared prefix.
 */
#include "cllm/chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const role_names[CLLM_ROLE_COUNT] = {"system", "user", "assistant"};
static const char *const plain_role_titles[CLLM_ROLE_COUNT] = {"System", "User", "Assistant"};
static const char *const template_names[CLLM_CHAT_TEMPLATE_COUNT] = {"chatml", "plain"};

/* Jinja sources written to GGUF. The ChatML one is the widely used form
 * that llama.cpp and others recognise by its <|im_start|> marker. */
static const char chatml_jinja[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
static const char plain_jinja[] =
    "{# cllm-plain #}{% for message in messages %}{{'### ' + message['role'] | capitalize + ':\\n' + "
    "message['content'] + '\\n\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '### Assistant:\\n' }}{% endif %}";

int cllm_chat_role_parse(const char *name) {
    for (int i = 0; i < CLLM_ROLE_COUNT; i++)
        if (!strcmp(name, role_names[i])) return i;
    return -1;
}

const char *cllm_chat_role_name(cllm_chat_role role) {
    return (int)role >= 0 && role < CLLM_ROLE_COUNT ? role_names[role] : "unknown";
}

const char *cllm_chat_template_name(cllm_chat_template kind) {
    return (int)kind >= 0 && kind < CLLM_CHAT_TEMPLATE_COUNT ? template_names[kind] : "unknown";
}

int cllm_chat_template_parse(const char *name) {
    for (int i = 0; i < CLLM_CHAT_TEMPLATE_COUNT; i++)
        if (!strcmp(name, template_names[i])) return i;
    return -1;
}

const char *cllm_chat_template_jinja(cllm_chat_template kind) {
    return kind == CLLM_CHAT_TEMPLATE_CHATML ? chatml_jinja : plain_jinja;
}

cllm_status cllm_chat_template_detect(const char *jinja, cllm_chat_template *kind, cllm_error *err) {
    if (strstr(jinja, "cllm-plain")) *kind = CLLM_CHAT_TEMPLATE_PLAIN;
    else if (strstr(jinja, "<|im_start|>")) *kind = CLLM_CHAT_TEMPLATE_CHATML;
    else
        return cllm_error_set(err, CLLM_ERR_FORMAT,
                              "chat template not recognised (cllm renders ChatML and its plain template); "
                              "choose one with --template chatml|plain");
    return CLLM_OK;
}

cllm_chat_template cllm_chat_template_for(const cllm_tokenizer *tok) {
    return cllm_tokenizer_special_id(tok, "<|im_start|>") >= 0 && cllm_tokenizer_special_id(tok, "<|im_end|>") >= 0
               ? CLLM_CHAT_TEMPLATE_CHATML
               : CLLM_CHAT_TEMPLATE_PLAIN;
}

void cllm_chat_mask_free(cllm_chat_mask *mask) {
    if (!mask) return;
    free(mask->values);
    memset(mask, 0, sizeof *mask);
}

/* Extends mask to cover out->n ids, the new ones set to `value`. */
static cllm_status mask_fill(cllm_chat_mask *mask, size_t n, uint8_t value, cllm_error *err) {
    if (!mask) return CLLM_OK;
    if (n > mask->cap) {
        size_t cap = mask->cap ? mask->cap : 256;
        while (cap < n) cap *= 2;
        uint8_t *v = realloc(mask->values, cap);
        if (!v) return cllm_error_set(err, CLLM_ERR_NOMEM, "chat: out of memory for the mask");
        mask->values = v;
        mask->cap = cap;
    }
    memset(mask->values + mask->n, value, n - mask->n);
    mask->n = n;
    return CLLM_OK;
}

/* Encodes text (NUL-terminated markup or content of len bytes) and masks it. */
static cllm_status append(const cllm_tokenizer *tok, const char *text, size_t len, const cllm_special_set *allowed,
                          uint8_t mask_value, cllm_tokens *out, cllm_chat_mask *mask, cllm_error *err) {
    if (len == 0) return CLLM_OK;
    cllm_status st = cllm_tokenizer_encode(tok, text, len, allowed, out, err);
    if (st != CLLM_OK) return st;
    return mask_fill(mask, out->n, mask_value, err);
}

int cllm_chat_end_tokens(const cllm_tokenizer *tok, cllm_chat_template kind, int32_t *ids) {
    int64_t id = kind == CLLM_CHAT_TEMPLATE_CHATML ? cllm_tokenizer_special_id(tok, "<|im_end|>")
                                                    : cllm_tokenizer_eot_id(tok);
    if (id < 0) return 0;
    ids[0] = (int32_t)id;
    return 1;
}

const char *cllm_chat_stop_string(const cllm_tokenizer *tok, cllm_chat_template kind) {
    if (kind == CLLM_CHAT_TEMPLATE_PLAIN && cllm_tokenizer_eot_id(tok) < 0) return "\n\n### ";
    return NULL;
}

cllm_status cllm_chat_render(const cllm_tokenizer *tok, cllm_chat_template kind,
                             const cllm_chat_message *messages, int n, int add_generation_prompt,
                             cllm_tokens *out, cllm_chat_mask *mask, cllm_error *err) {
    if (mask && mask->n != out->n)
        return cllm_error_set(err, CLLM_ERR_ARG, "chat: the mask must cover the same ids as the output");
    uint32_t specials[2];
    cllm_special_set markup = {0, specials, 0};
    cllm_special_set none = {0, NULL, 0};
    int64_t eot = cllm_tokenizer_eot_id(tok);
    if (kind == CLLM_CHAT_TEMPLATE_CHATML) {
        int64_t start = cllm_tokenizer_special_id(tok, "<|im_start|>"), end = cllm_tokenizer_special_id(tok, "<|im_end|>");
        if (start < 0 || end < 0)
            return cllm_error_set(err, CLLM_ERR_ARG,
                                  "chat: the ChatML template needs the special tokens <|im_start|> and <|im_end|>, "
                                  "which this vocabulary lacks; train the tokenizer with them or use --template plain");
        specials[0] = (uint32_t)start;
        specials[1] = (uint32_t)end;
        markup.n = 2;
    } else if (kind == CLLM_CHAT_TEMPLATE_PLAIN) {
        if (eot >= 0) {
            specials[0] = (uint32_t)eot;
            markup.n = 1;
        }
    } else {
        return cllm_error_set(err, CLLM_ERR_ARG, "chat: unknown template kind %d", (int)kind);
    }
    cllm_status st = CLLM_OK;
    char header[64];
    for (int i = 0; i < n && st == CLLM_OK; i++) {
        cllm_chat_role role = messages[i].role;
        if ((int)role < 0 || role >= CLLM_ROLE_COUNT)
            return cllm_error_set(err, CLLM_ERR_ARG, "chat: messages[%d] has an unknown role", i);
        if (!messages[i].content && messages[i].len)
            return cllm_error_set(err, CLLM_ERR_ARG, "chat: messages[%d] has no content", i);
        uint8_t learn = role == CLLM_ROLE_ASSISTANT;
        if (kind == CLLM_CHAT_TEMPLATE_CHATML) {
            snprintf(header, sizeof header, "<|im_start|>%s\n", role_names[role]);
            st = append(tok, header, strlen(header), &markup, 0, out, mask, err);
            if (st == CLLM_OK) st = append(tok, messages[i].content, messages[i].len, &none, learn, out, mask, err);
            if (st == CLLM_OK) st = append(tok, "<|im_end|>", 10, &markup, learn, out, mask, err);
            if (st == CLLM_OK) st = append(tok, "\n", 1, &none, 0, out, mask, err);
        } else {
            snprintf(header, sizeof header, "### %s:\n", plain_role_titles[role]);
            st = append(tok, header, strlen(header), &none, 0, out, mask, err);
            if (st == CLLM_OK) st = append(tok, messages[i].content, messages[i].len, &none, learn, out, mask, err);
            if (st == CLLM_OK && learn && eot >= 0) st = append(tok, "<|endoftext|>", 13, &markup, 1, out, mask, err);
            if (st == CLLM_OK) st = append(tok, "\n\n", 2, &none, (uint8_t)(learn && eot < 0), out, mask, err);
        }
    }
    if (st == CLLM_OK && add_generation_prompt) {
        if (kind == CLLM_CHAT_TEMPLATE_CHATML) st = append(tok, "<|im_start|>assistant\n", 22, &markup, 0, out, mask, err);
        else st = append(tok, "### Assistant:\n", 15, &none, 0, out, mask, err);
    }
    return st;
}
