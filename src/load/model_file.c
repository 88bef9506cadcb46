/*
 * model_file.c: the model loader (model_file.h): one GGUF parse for the
 * config, the model, the tokenizer and the chat template.
 *
 * Lives in src/load/ because it joins src/formats (GGUF), src/model,
 * src/tokenizer and the chat templates of src/infer; nothing below it
 * depends on it (src/train and tools/ call it), so folders stay acyclic.
 */
#include "cllm/load/model_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/model/gguf_io.h"

#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_TEMPLATE CLLM_CHAT_TEMPLATE_KEY

cllm_model_file_params cllm_model_file_default_params(void) {
    cllm_model_file_params p;
    memset(&p, 0, sizeof p);
    p.load_model = 1;
    p.opts = cllm_model_default_options();
    p.opts.max_seq = 0;
    p.check_finite = 1;
    return p;
}

static cllm_status open_tokenizer(cllm_model_file *f, cllm_tokenizer *given, int optional, cllm_error *err) {
    cllm_status st = CLLM_OK;
    if (given) f->tok = given;
    else if (cllm_gguf_find_kv(f->gguf, KEY_TOKENS)) st = cllm_tokenizer_from_gguf(f->gguf, &f->tok, err);
    else if (f->config.vocab_size == 256) st = cllm_tokenizer_new_bytes(&f->tok, err);
    else if (optional) return CLLM_OK;
    else
        st = cllm_error_set(err, CLLM_ERR_FORMAT,
                            "%s: the model has no tokenizer inside (no %s) and %d tokens (not bytes); pass --tokenizer FILE",
                            f->path, KEY_TOKENS, f->config.vocab_size);
    if (st == CLLM_OK && (int64_t)cllm_tokenizer_n_vocab(f->tok) != f->config.vocab_size)
        st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: the tokenizer has %u tokens but the model's vocab_size is %d",
                            f->path, cllm_tokenizer_n_vocab(f->tok), f->config.vocab_size);
    return st;
}

static cllm_status open_template(cllm_model_file *f, const cllm_model_file_params *p, cllm_error *err) {
    if (p->chat_template) return cllm_chat_template_load(p->chat_template, &f->chat_template, err);
    f->chat_template = f->tok ? cllm_chat_template_for(f->tok) : cllm_chat_template_builtin(CLLM_CHAT_TEMPLATE_PLAIN);
    if (!cllm_gguf_find_kv(f->gguf, KEY_TEMPLATE)) return CLLM_OK;
    cllm_gguf_str s;
    cllm_status st = cllm_gguf_get_str(f->gguf, KEY_TEMPLATE, &s, err);
    if (st != CLLM_OK) return st;
    char name[512];
    snprintf(name, sizeof name, "%s: %s", f->path, KEY_TEMPLATE);
    cllm_chat_template t;
    cllm_error why;
    st = cllm_chat_template_from_text(s.data, s.len, name, &t, &why);
    if (st == CLLM_OK) {
        f->chat_template = t;
        return CLLM_OK;
    }
    if (st != CLLM_ERR_NOMEM && p->chat_template_optional) {
        f->chat_template_refused = 1;
        f->chat_template_error = why;
        return CLLM_OK;
    }
    return cllm_error_set(err, st, "%s (pass --chat-template NAME|FILE to use another)", why.msg);
}

static cllm_status open_model(cllm_model_file *f, const cllm_model_file_params *p, cllm_error *err) {
    cllm_model_options o = p->opts;
    if (o.max_seq <= 0) o.max_seq = f->config.context_length;
    if (o.max_batch <= 0) o.max_batch = 1;
    return cllm_model_from_gguf(f->gguf, &o, p->check_finite, &f->model, err);
}

/* A string key into buf[cap], cut to fit; "" when absent or not a string. */
static void text_key(const cllm_gguf *g, const char *key, char *buf, size_t cap) {
    cllm_gguf_str v;
    cllm_error ignored;
    buf[0] = 0;
    if (cllm_gguf_get_str(g, key, &v, &ignored) == CLLM_OK)
        snprintf(buf, cap, "%.*s", (int)(v.len < cap ? v.len : cap - 1), v.data);
}

cllm_status cllm_model_file_open(const char *path, const cllm_model_file_params *pp, cllm_model_file *f,
                                 cllm_error *err) {
    cllm_model_file_params p = pp ? *pp : cllm_model_file_default_params();
    memset(f, 0, sizeof *f);
    f->path = path;
    cllm_status st = cllm_gguf_open(&f->gguf, path, err);
    if (st == CLLM_OK) st = cllm_model_config_from_gguf(f->gguf, &f->config, err);
    if (st != CLLM_OK) {
        cllm_tokenizer_destroy(p.tokenizer);
        cllm_model_file_close(f);
        return st;
    }
    text_key(f->gguf, "general.name", f->name, sizeof f->name);
    text_key(f->gguf, "general.description", f->description, sizeof f->description);
    st = open_tokenizer(f, p.tokenizer, p.tokenizer_optional, err);
    if (st == CLLM_OK) st = open_template(f, &p, err);
    if (st == CLLM_OK && p.load_model) st = open_model(f, &p, err);
    if (st != CLLM_OK) {
        if (!f->tok) cllm_tokenizer_destroy(p.tokenizer);
        cllm_model_file_close(f);
    }
    return st;
}

void cllm_model_file_release_gguf(cllm_model_file *f) {
    cllm_gguf_close(f->gguf);
    f->gguf = NULL;
}

void cllm_model_file_close(cllm_model_file *f) {
    if (!f) return;
    cllm_model_destroy(f->model);
    cllm_tokenizer_destroy(f->tok);
    cllm_chat_template_free(&f->chat_template);
    cllm_gguf_close(f->gguf);
    memset(f, 0, sizeof *f);
}
