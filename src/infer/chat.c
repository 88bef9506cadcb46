/*
 * chat.c: rendering conversations with the templates of infer/chat_template.h.
 *
 * Each piece of a rendering is encoded on its own: markup with the
 * template's specials allowed, content with none. Rendering the same
 * conversation for training (with a mask) and for inference (with a
 * generation prompt) therefore gives identical ids for the shared prefix.
 *
 * Jinja templates (JINJA kind) give text, not pieces. To keep content apart
 * from markup, the template is rendered twice: once with each non-empty
 * message content replaced by a sentinel (U+E000, the message index,
 * U+E001: private-use characters no template emits and case filters leave
 * alone), once with the real content. The sentinel rendering splits into
 * markup and content pieces; when putting each message's content (as is,
 * or stripped as Llama 3's `| trim` does) back in its place gives exactly
 * the real rendering, the pieces are encoded as above and the SFT mask is
 * known. Otherwise (a template that slices, splits or tests the content)
 * the real rendering is encoded whole with every special allowed, as
 * llama.cpp does for every template: content that spells a special token
 * then becomes it, and no mask can be made (SFT refuses such a template).
 * Tool definitions and tool_calls are markup either way. With the
 * built-in templates, tools and calls are written in infer/tools.h's format
 * (render_with_tools); a call is part of the reply it is in (learned).
 */
#include "cllm/infer/chat_template.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/infer/jinja.h"
#include "cllm/infer/tools.h"

static const char *const role_names[CLLM_ROLE_COUNT] = {"system", "user", "assistant", "tool"};
static const char *const plain_role_titles[CLLM_ROLE_COUNT] = {"System", "User", "Assistant", "Tool"};
static const char *const template_names[CLLM_CHAT_TEMPLATE_COUNT] = {"chatml", "plain", "jinja"};

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

const char *cllm_chat_template_name(cllm_chat_template t) {
    return (int)t.kind >= 0 && t.kind < CLLM_CHAT_TEMPLATE_COUNT ? template_names[t.kind] : "unknown";
}

int cllm_chat_template_parse(const char *name) {
    for (int i = 0; i < CLLM_CHAT_TEMPLATE_JINJA; i++)
        if (!strcmp(name, template_names[i])) return i;
    return -1;
}

cllm_chat_template cllm_chat_template_builtin(cllm_chat_template_kind kind) {
    cllm_chat_template t = {kind, NULL, kind == CLLM_CHAT_TEMPLATE_CHATML ? chatml_jinja : plain_jinja};
    if (kind != CLLM_CHAT_TEMPLATE_CHATML) t.kind = CLLM_CHAT_TEMPLATE_PLAIN;
    return t;
}

cllm_status cllm_chat_template_compile(const char *text, size_t len, const char *name, cllm_chat_template *out,
                                       cllm_error *err) {
    *out = cllm_chat_template_builtin(CLLM_CHAT_TEMPLATE_PLAIN);
    char *copy = malloc(len + 1);
    if (!copy) return cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory for the chat template", name);
    memcpy(copy, text, len);
    copy[len] = '\0';
    cllm_jinja *j = NULL;
    cllm_status st = cllm_jinja_compile(copy, len, name, &j, err);
    if (st != CLLM_OK) {
        free(copy);
        return st;
    }
    *out = (cllm_chat_template){CLLM_CHAT_TEMPLATE_JINJA, j, copy};
    return CLLM_OK;
}

/* text[len] equals s, ignoring trailing whitespace on either. */
static int same_text(const char *text, size_t len, const char *s) {
    size_t n = strlen(s);
    while (len && strchr(" \t\r\n", text[len - 1])) len--;
    return len == n && memcmp(text, s, n) == 0;
}

cllm_status cllm_chat_template_from_text(const char *text, size_t len, const char *name, cllm_chat_template *out,
                                         cllm_error *err) {
    /* Only the exact texts cllm writes map to built-ins ("cllm-plain" marks
     * ours in older files): any other ChatML-like template (Qwen's default
     * system message, tools) runs as written. */
    if (same_text(text, len, chatml_jinja)) *out = cllm_chat_template_builtin(CLLM_CHAT_TEMPLATE_CHATML);
    else if (same_text(text, len, plain_jinja) || (len < 4096 && memmem(text, len, "{# cllm-plain #}", 16)))
        *out = cllm_chat_template_builtin(CLLM_CHAT_TEMPLATE_PLAIN);
    else
        return cllm_chat_template_compile(text, len, name, out, err);
    return CLLM_OK;
}

cllm_status cllm_chat_template_load(const char *name_or_path, cllm_chat_template *out, cllm_error *err) {
    int kind = cllm_chat_template_parse(name_or_path);
    if (kind >= 0) {
        *out = cllm_chat_template_builtin((cllm_chat_template_kind)kind);
        return CLLM_OK;
    }
    *out = cllm_chat_template_builtin(CLLM_CHAT_TEMPLATE_PLAIN);
    FILE *f = fopen(name_or_path, "rb");
    if (!f)
        return cllm_error_set(err, CLLM_ERR_IO, "chat template '%s': not chatml or plain, and no such file",
                              name_or_path);
    char *buf = malloc(CLLM_JINJA_MAX_SOURCE + 1);
    size_t n = buf ? fread(buf, 1, CLLM_JINJA_MAX_SOURCE + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    cllm_status st;
    if (!buf) st = cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory", name_or_path);
    else if (bad) st = cllm_error_set(err, CLLM_ERR_IO, "%s: read error", name_or_path);
    else if (n > CLLM_JINJA_MAX_SOURCE)
        st = cllm_error_set(err, CLLM_ERR_LIMIT, "%s: a chat template of more than %u bytes", name_or_path,
                            CLLM_JINJA_MAX_SOURCE);
    else st = cllm_chat_template_from_text(buf, n, name_or_path, out, err);
    free(buf);
    return st;
}

void cllm_chat_template_free(cllm_chat_template *t) {
    if (!t) return;
    if (t->kind == CLLM_CHAT_TEMPLATE_JINJA) {
        cllm_jinja_free((cllm_jinja *)t->jinja);
        free((char *)t->text);
    }
    *t = cllm_chat_template_builtin(CLLM_CHAT_TEMPLATE_PLAIN);
}

cllm_chat_template cllm_chat_template_for(const cllm_tokenizer *tok) {
    return cllm_chat_template_builtin(cllm_tokenizer_special_id(tok, "<|im_start|>") >= 0 &&
                                              cllm_tokenizer_special_id(tok, "<|im_end|>") >= 0
                                          ? CLLM_CHAT_TEMPLATE_CHATML
                                          : CLLM_CHAT_TEMPLATE_PLAIN);
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
    /* pieces of one prompt: SentencePiece's leading space only where llama.cpp, encoding the
     * whole text, puts it (the start and after special tokens), not before every piece */
    cllm_status st = cllm_tokenizer_encode_after(tok, out->n ? (int64_t)out->ids[out->n - 1] : -1, text, len, allowed,
                                                 out, err);
    if (st != CLLM_OK) return st;
    return mask_fill(mask, out->n, mask_value, err);
}

/* End-of-turn specials a Jinja template may close an assistant turn with,
 * most specific first, and the texts tried as the vocabulary's bos/eos
 * tokens (the tokenizer keeps no bos/eos ids of its own). */
static const char *const turn_end_specials[] = {"<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>",
                                                "<|eom_id|>", "<|end_of_turn|>", "</s>", "<eos>",
                                                "<|end_of_text|>", "<|endoftext|>"};
static const char *const bos_specials[] = {"<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>"};
static const char *const eos_specials[] = {"</s>", "<eos>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>",
                                           "<|eot_id|>"};

/* The first of names[n] that is a special of tok, or "". */
static const char *first_special(const cllm_tokenizer *tok, const char *const *names, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (cllm_tokenizer_special_id(tok, names[i]) >= 0) return names[i];
    return "";
}
#define FIRST_SPECIAL(tok, list) first_special(tok, list, sizeof list / sizeof list[0])

static int add_end(int32_t *ids, int n, int64_t id) {
    if (id < 0 || n >= CLLM_CHAT_MAX_END_TOKENS) return n;
    for (int k = 0; k < n; k++)
        if (ids[k] == id) return n;
    ids[n] = (int32_t)id;
    return n + 1;
}

int cllm_chat_end_tokens(const cllm_tokenizer *tok, cllm_chat_template tmpl, int32_t *ids) {
    if (tmpl.kind == CLLM_CHAT_TEMPLATE_JINJA) {
        int n = 0;
        for (size_t i = 0; i < sizeof turn_end_specials / sizeof turn_end_specials[0]; i++)
            if (tmpl.text && strstr(tmpl.text, turn_end_specials[i]))
                n = add_end(ids, n, cllm_tokenizer_special_id(tok, turn_end_specials[i]));
        return add_end(ids, n, cllm_tokenizer_special_id(tok, FIRST_SPECIAL(tok, eos_specials)));
    }
    return add_end(ids, 0, tmpl.kind == CLLM_CHAT_TEMPLATE_CHATML ? cllm_tokenizer_special_id(tok, "<|im_end|>")
                                                                 : cllm_tokenizer_eot_id(tok));
}

static const char *const plain_stop[1] = {"\n\n### "};

const char *const *cllm_chat_stop_strings(const cllm_tokenizer *tok, cllm_chat_template tmpl) {
    if (tmpl.kind == CLLM_CHAT_TEMPLATE_PLAIN && cllm_tokenizer_eot_id(tok) < 0) return plain_stop;
    return NULL;
}

const char *cllm_chat_stop_string(const cllm_tokenizer *tok, cllm_chat_template tmpl) {
    const char *const *list = cllm_chat_stop_strings(tok, tmpl);
    return list ? list[0] : NULL;
}

/* ---- Jinja templates ---------------------------------------------------------------- */

#define SENT_OPEN "\xEE\x80\x80"  /* U+E000 */
#define SENT_CLOSE "\xEE\x80\x81" /* U+E001 */
#define SENT_LEN 3

static int has_sentinel(const cllm_chat_message *m) { return m->len > 0; }

/* The template's variables: messages (content real or sentinels), tools,
 * add_generation_prompt, bos_token, eos_token. NULL when out of memory. */
static cJSON *jinja_context(const cllm_tokenizer *tok, const cllm_chat_message *msgs, int n, int generate,
                            const cJSON *tools, int sentinels) {
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "messages");
    int ok = root && arr;
    char sent[32];
    for (int i = 0; ok && i < n; i++) {
        cJSON *m = cJSON_CreateObject();
        ok = m && cJSON_AddItemToArray(arr, m) && cJSON_AddStringToObject(m, "role", role_names[msgs[i].role]);
        cJSON *content = NULL;
        if (ok && sentinels && has_sentinel(&msgs[i])) {
            snprintf(sent, sizeof sent, SENT_OPEN "%d" SENT_CLOSE, i);
            content = cJSON_CreateString(sent);
        } else if (ok) {
            char *c = malloc(msgs[i].len + 1);
            if (c) {
                memcpy(c, msgs[i].content ? msgs[i].content : "", msgs[i].len);
                c[msgs[i].len] = '\0';
                content = cJSON_CreateString(c);
                free(c);
            }
        }
        if (!ok || !content || !cJSON_AddItemToObject(m, "content", content)) {
            cJSON_Delete(content);
            ok = 0;
        }
        const cJSON *x;
        if (ok && msgs[i].extra)
            cJSON_ArrayForEach(x, msgs[i].extra) if (ok && x->string && strcmp(x->string, "role") &&
                                                     strcmp(x->string, "content")) {
                cJSON *d = cJSON_Duplicate(x, 1);
                ok = d && cJSON_AddItemToObject(m, x->string, d);
            }
    }
    if (ok && tools && !cJSON_IsNull(tools)) {
        cJSON *d = cJSON_Duplicate(tools, 1);
        ok = d && cJSON_AddItemToObject(root, "tools", d);
    }
    ok = ok && cJSON_AddBoolToObject(root, "add_generation_prompt", generate) &&
         cJSON_AddStringToObject(root, "bos_token", FIRST_SPECIAL(tok, bos_specials)) &&
         cJSON_AddStringToObject(root, "eos_token", FIRST_SPECIAL(tok, eos_specials));
    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

static cllm_status jinja_text(const cllm_tokenizer *tok, cllm_chat_template tmpl, const cllm_chat_message *msgs,
                              int n, int generate, const cJSON *tools, int sentinels, char **out, size_t *len,
                              cllm_error *err) {
    cJSON *ctx = jinja_context(tok, msgs, n, generate, tools, sentinels);
    if (!ctx) return cllm_error_set(err, CLLM_ERR_NOMEM, "chat: out of memory for the template's variables");
    cllm_status st = cllm_jinja_render(tmpl.jinja, ctx, out, len, err);
    cJSON_Delete(ctx);
    return st;
}

typedef struct {
    size_t off, len; /* markup: bytes of the sentinel rendering */
    int msg;         /* -1: markup; else the message whose content stands here */
} piece;

/* Splits the sentinel rendering s[n] into pieces (markup and content);
 * returns the count, or -1 when a sentinel is malformed or names no message. */
static int split_pieces(const char *s, size_t n, const cllm_chat_message *msgs, int n_msgs, piece *p, int cap) {
    int np = 0;
    size_t at = 0;
    for (;;) {
        const char *o = memmem(s + at, n - at, SENT_OPEN, SENT_LEN);
        size_t end = o ? (size_t)(o - s) : n;
        if (end > at) {
            if (np >= cap) return -1;
            p[np++] = (piece){at, end - at, -1};
        }
        if (!o) return np;
        size_t k = end + SENT_LEN;
        long idx = 0;
        int digits = 0;
        while (k < n && s[k] >= '0' && s[k] <= '9' && digits < 9) idx = idx * 10 + (s[k++] - '0'), digits++;
        if (!digits || idx >= n_msgs || !has_sentinel(&msgs[idx]) || n - k < SENT_LEN ||
            memcmp(s + k, SENT_CLOSE, SENT_LEN) || np >= cap)
            return -1;
        p[np++] = (piece){0, 0, (int)idx};
        at = k + SENT_LEN;
    }
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* Message i's content as the template rendered it: as is, or stripped. */
static void content_of(const cllm_chat_message *m, int stripped, const char **c, size_t *len) {
    *c = m->content;
    *len = m->len;
    if (!stripped) return;
    while (*len && is_space(**c)) (*c)++, (*len)--;
    while (*len && is_space((*c)[*len - 1])) (*len)--;
}

/* 1 when the pieces with each content put back spell real[rn] exactly. */
static int pieces_match(const char *s, const piece *p, int np, const cllm_chat_message *msgs, int stripped,
                        const char *real, size_t rn) {
    size_t at = 0;
    for (int i = 0; i < np; i++) {
        const char *t = s + p[i].off;
        size_t len = p[i].len;
        if (p[i].msg >= 0) content_of(&msgs[p[i].msg], stripped, &t, &len);
        if (len > rn - at || memcmp(real + at, t, len)) return 0;
        at += len;
    }
    return at == rn;
}

static int is_end_id(uint32_t id, const int32_t *ends, int n_ends) {
    for (int k = 0; k < n_ends; k++)
        if ((uint32_t)ends[k] == id) return 1;
    return 0;
}

/* Renders through the Jinja interpreter (see the file comment). */
static cllm_status render_jinja(const cllm_tokenizer *tok, cllm_chat_template tmpl, const cllm_chat_message *msgs,
                                int n, int mode, const cJSON *tools, cllm_tokens *out, cllm_chat_mask *mask,
                                cllm_error *err) {
    if (!tmpl.jinja) return cllm_error_set(err, CLLM_ERR_ARG, "chat: a Jinja template without its compiled form");
    const cllm_special_set all = {1, NULL, 0}, none = {0, NULL, 0};
    int generate = mode == CLLM_CHAT_GENERATE;
    char *real = NULL, *sent = NULL;
    size_t rn = 0, sn = 0;
    piece *p = NULL;
    int np = -1, stripped = 0;
    cllm_status st = jinja_text(tok, tmpl, msgs, n, generate, tools, 0, &real, &rn, err);
    if (st == CLLM_OK) st = jinja_text(tok, tmpl, msgs, n, generate, tools, 1, &sent, &sn, err);
    if (st == CLLM_OK) {
        int cap = 2 * n + 2;
        for (size_t k = 0; k + SENT_LEN <= sn; k++) cap += !memcmp(sent + k, SENT_OPEN, SENT_LEN) * 2;
        p = malloc((size_t)cap * sizeof *p);
        if (!p) st = cllm_error_set(err, CLLM_ERR_NOMEM, "chat: out of memory");
        else np = split_pieces(sent, sn, msgs, n, p, cap);
        if (np >= 0 && !pieces_match(sent, p, np, msgs, 0, real, rn)) {
            stripped = 1;
            if (!pieces_match(sent, p, np, msgs, 1, real, rn)) np = -1;
        }
    }
    if (st == CLLM_OK && mode == CLLM_CHAT_CONTINUE) {
        /* the final message left open: cut right after (the last showing of) its content */
        int last = -1;
        for (int i = 0; i < np; i++)
            if (p[i].msg == n - 1) last = i;
        np = last >= 0 ? last + 1 : -1;
        if (np < 0) {
            const char *c = NULL;
            size_t cl = 0;
            char *hit = NULL;
            for (int v = 0; v < 2 && !hit && msgs[n - 1].len; v++) {
                content_of(&msgs[n - 1], v, &c, &cl);
                for (char *h = cl ? memmem(real, rn, c, cl) : NULL; h;
                     h = memmem(h + 1, rn - (size_t)(h + 1 - real), c, cl))
                    hit = h;
            }
            if (!hit)
                st = cllm_error_set(err, CLLM_ERR_ARG, "chat: the template does not show the final message's "
                                                       "content, so it cannot be continued");
            else rn = (size_t)(hit - real) + cl;
        }
    }
    if (st == CLLM_OK && np < 0 && mask)
        st = cllm_error_set(err, CLLM_ERR_ARG,
                            "chat: the Jinja template changes message content beyond trimming, so the tokens to "
                            "learn from cannot be marked; use a template that prints content as is");
    if (st == CLLM_OK && np < 0) {
        st = append(tok, real, rn, &all, 0, out, mask, err); /* llama.cpp's way: specials allowed everywhere */
    } else if (st == CLLM_OK) {
        int32_t ends[CLLM_CHAT_MAX_END_TOKENS];
        int n_ends = cllm_chat_end_tokens(tok, tmpl, ends);
        int after_assistant = 0;
        for (int i = 0; i < np && st == CLLM_OK; i++) {
            if (p[i].msg >= 0) {
                const char *c;
                size_t cl;
                content_of(&msgs[p[i].msg], stripped, &c, &cl);
                after_assistant = msgs[p[i].msg].role == CLLM_ROLE_ASSISTANT;
                st = append(tok, c, cl, &none, (uint8_t)after_assistant, out, mask, err);
                continue;
            }
            size_t before = out->n;
            st = append(tok, sent + p[i].off, p[i].len, &all, 0, out, mask, err);
            if (st == CLLM_OK && mask && after_assistant)
                for (size_t k = before; k < out->n && is_end_id(out->ids[k], ends, n_ends); k++) mask->values[k] = 1;
            after_assistant = 0;
        }
    }
    free(p);
    free(real);
    free(sent);
    return st;
}

/* ---- rendering ---------------------------------------------------------------------- */

static cllm_status render_builtin(const cllm_tokenizer *tok, cllm_chat_template tmpl, const cllm_chat_message *messages,
                                  int n, int mode, cllm_tokens *out, cllm_chat_mask *mask, cllm_error *err);

/* A built-in template with tools (infer/tools.h's format): the system
 * message gains the tools section (one is put first when there is none),
 * and assistant messages with tool_calls in `extra` are written with their
 * calls, which are learned like the rest of the reply. */
static cllm_status render_with_tools(const cllm_tokenizer *tok, cllm_chat_template tmpl,
                                     const cllm_chat_message *messages, int n, int mode, const cJSON *tools,
                                     cllm_tokens *out, cllm_chat_mask *mask, cllm_error *err) {
    int with_tools = cJSON_IsArray(tools) && tools->child, calls = 0;
    for (int i = 0; i < n; i++)
        calls |= messages[i].role == CLLM_ROLE_ASSISTANT && messages[i].extra &&
                 cJSON_GetObjectItemCaseSensitive(messages[i].extra, "tool_calls");
    if (!with_tools && !calls) return render_builtin(tok, tmpl, messages, n, mode, out, mask, err);
    const int slots = n + 1;
    cllm_chat_message *m = malloc((size_t)slots * sizeof *m);
    char **owned = calloc((size_t)slots, sizeof *owned);
    int k = 0, oom = !m || !owned;
    if (!oom && with_tools) {
        int sys = n > 0 && messages[0].role == CLLM_ROLE_SYSTEM;
        owned[0] = cllm_tools_system_text(sys ? messages[0].content : NULL, sys ? messages[0].len : 0, tools);
        oom = !owned[0];
        m[k++] = (cllm_chat_message){CLLM_ROLE_SYSTEM, owned[0], owned[0] ? strlen(owned[0]) : 0, NULL};
        if (sys) messages++, n--;
    }
    for (int i = 0; !oom && i < n; i++) {
        m[k] = messages[i];
        if (messages[i].role == CLLM_ROLE_ASSISTANT && messages[i].extra) {
            const cJSON *tc = cJSON_GetObjectItemCaseSensitive(messages[i].extra, "tool_calls");
            char *t = cllm_tools_assistant_text(messages[i].content, messages[i].len, tc, &oom);
            if (t) m[k].content = owned[k] = t, m[k].len = strlen(t);
        }
        k++;
    }
    cllm_status st = oom ? cllm_error_set(err, CLLM_ERR_NOMEM, "chat: out of memory")
                         : render_builtin(tok, tmpl, m, k, mode, out, mask, err);
    for (int i = 0; owned && i < slots; i++) free(owned[i]);
    free(owned);
    free(m);
    return st;
}

cllm_status cllm_chat_render(const cllm_tokenizer *tok, cllm_chat_template tmpl, const cllm_chat_message *messages,
                             int n, int mode, cllm_tokens *out, cllm_chat_mask *mask, cllm_error *err) {
    return cllm_chat_render_tools(tok, tmpl, messages, n, mode, NULL, out, mask, err);
}

cllm_status cllm_chat_render_tools(const cllm_tokenizer *tok, cllm_chat_template tmpl,
                                   const cllm_chat_message *messages, int n, int mode, const cJSON *tools,
                                   cllm_tokens *out, cllm_chat_mask *mask, cllm_error *err) {
    if (mask && mask->n != out->n)
        return cllm_error_set(err, CLLM_ERR_ARG, "chat: the mask must cover the same ids as the output");
    if (mode < CLLM_CHAT_END || mode > CLLM_CHAT_CONTINUE)
        return cllm_error_set(err, CLLM_ERR_ARG, "chat: unknown render mode %d", mode);
    for (int i = 0; i < n; i++) {
        if ((int)messages[i].role < 0 || messages[i].role >= CLLM_ROLE_COUNT)
            return cllm_error_set(err, CLLM_ERR_ARG, "chat: messages[%d] has an unknown role", i);
        if (!messages[i].content && messages[i].len)
            return cllm_error_set(err, CLLM_ERR_ARG, "chat: messages[%d] has no content", i);
    }
    if (mode == CLLM_CHAT_CONTINUE && (n == 0 || messages[n - 1].role != CLLM_ROLE_ASSISTANT))
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "chat: continuing the final message needs it to be an assistant's message");
    if (tmpl.kind == CLLM_CHAT_TEMPLATE_JINJA) return render_jinja(tok, tmpl, messages, n, mode, tools, out, mask, err);
    return render_with_tools(tok, tmpl, messages, n, mode, tools, out, mask, err);
}

/* A built-in template: each piece encoded on its own (see the top). */
static cllm_status render_builtin(const cllm_tokenizer *tok, cllm_chat_template tmpl, const cllm_chat_message *messages,
                                  int n, int mode, cllm_tokens *out, cllm_chat_mask *mask, cllm_error *err) {
    const int kind = tmpl.kind;
    uint32_t specials[2];
    cllm_special_set markup = {0, specials, 0};
    cllm_special_set none = {0, NULL, 0};
    int64_t eot = cllm_tokenizer_eot_id(tok);
    if (kind == CLLM_CHAT_TEMPLATE_CHATML) {
        int64_t start = cllm_tokenizer_special_id(tok, "<|im_start|>"), end = cllm_tokenizer_special_id(tok, "<|im_end|>");
        if (start < 0 || end < 0)
            return cllm_error_set(err, CLLM_ERR_ARG,
                                  "chat: the ChatML template needs the special tokens <|im_start|> and <|im_end|>, "
                                  "which this vocabulary lacks; train the tokenizer with them or use --chat-template plain");
        specials[0] = (uint32_t)start;
        specials[1] = (uint32_t)end;
        markup.n = 2;
    } else if (kind == CLLM_CHAT_TEMPLATE_PLAIN) {
        if (eot >= 0) {
            specials[0] = (uint32_t)eot;
            markup.n = 1;
        }
    } else {
        return cllm_error_set(err, CLLM_ERR_ARG, "chat: unknown template kind %d", kind);
    }
    cllm_status st = CLLM_OK;
    char header[64];
    for (int i = 0; i < n && st == CLLM_OK; i++) {
        cllm_chat_role role = messages[i].role;
        uint8_t learn = role == CLLM_ROLE_ASSISTANT;
        int open = mode == CLLM_CHAT_CONTINUE && i == n - 1; /* prefill: no end of turn */
        if (kind == CLLM_CHAT_TEMPLATE_CHATML) {
            snprintf(header, sizeof header, "<|im_start|>%s\n", role_names[role]);
            st = append(tok, header, strlen(header), &markup, 0, out, mask, err);
            if (st == CLLM_OK) st = append(tok, messages[i].content, messages[i].len, &none, learn, out, mask, err);
            if (open) break;
            if (st == CLLM_OK) st = append(tok, "<|im_end|>", 10, &markup, learn, out, mask, err);
            if (st == CLLM_OK) st = append(tok, "\n", 1, &none, 0, out, mask, err);
        } else {
            snprintf(header, sizeof header, "### %s:\n", plain_role_titles[role]);
            st = append(tok, header, strlen(header), &none, 0, out, mask, err);
            if (st == CLLM_OK) st = append(tok, messages[i].content, messages[i].len, &none, learn, out, mask, err);
            if (open) break;
            if (st == CLLM_OK && learn && eot >= 0) st = append(tok, "<|endoftext|>", 13, &markup, 1, out, mask, err);
            if (st == CLLM_OK) st = append(tok, "\n\n", 2, &none, (uint8_t)(learn && eot < 0), out, mask, err);
        }
    }
    if (st == CLLM_OK && mode == CLLM_CHAT_GENERATE) {
        if (kind == CLLM_CHAT_TEMPLATE_CHATML) st = append(tok, "<|im_start|>assistant\n", 22, &markup, 0, out, mask, err);
        else st = append(tok, "### Assistant:\n", 15, &none, 0, out, mask, err);
    }
    return st;
}
