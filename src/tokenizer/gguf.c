/*
 * gguf.c: the tokenizer inside GGUF metadata, the way llama.cpp stores a
 * byte-level BPE ("gpt2") vocabulary (keys listed in tokenizer.h), so a
 * model file written by cllm carries its tokenizer and llama.cpp can use it.
 *
 * A vocabulary that llama.cpp's converter wrote (no cllm.tokenizer.* keys)
 * is read in llama mode (tok_internal.h): its tokenizer.ggml.pre names the
 * split (pre_table), user-defined tokens are kept apart from control ones,
 * and encoding follows llama.cpp; unknown pre names are refused.
 *
 * SentencePiece ("llama") vocabularies are read and written by spm.c.
 *
 * Does not: read or write the GGUF container itself (src/formats/gguf_*.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/formats/gguf.h"
#include "tok_internal.h"


/* llama.cpp's tokenizer.ggml.pre names (src/llama-vocab.cpp) of the BPE
 * families cllm encodes as llama.cpp does: the split, and ignore_merges. */
static const struct {
    const char *name;
    cllm_pretok_kind kind;
    int ignore_merges;
} pre_table[] = {
    {"default", CLLM_PRETOK_LLAMA_DEFAULT, 0},   {"gpt-2", CLLM_PRETOK_GPT2, 0},
    {"phi-2", CLLM_PRETOK_GPT2, 0},              {"mpt", CLLM_PRETOK_GPT2, 0},
    {"olmo", CLLM_PRETOK_GPT2, 0},               {"jais", CLLM_PRETOK_GPT2, 0},
    {"llama-bpe", CLLM_PRETOK_LLAMA3, 1},        {"llama3", CLLM_PRETOK_LLAMA3, 1},
    {"llama-v3", CLLM_PRETOK_LLAMA3, 1},         {"falcon3", CLLM_PRETOK_LLAMA3, 1},
    {"pixtral", CLLM_PRETOK_LLAMA3, 1},          {"dbrx", CLLM_PRETOK_LLAMA3, 0},
    {"smaug-bpe", CLLM_PRETOK_LLAMA3, 0},        {"qwen2", CLLM_PRETOK_QWEN2, 0},
    {"deepseek-r1-qwen", CLLM_PRETOK_QWEN2, 0},  {"stablelm2", CLLM_PRETOK_QWEN2, 0},
    {"qwen35", CLLM_PRETOK_QWEN35, 0},           {"deepseek-llm", CLLM_PRETOK_DEEPSEEK_LLM, 0},
    {"deepseek-coder", CLLM_PRETOK_DEEPSEEK_CODER, 0}, {"starcoder", CLLM_PRETOK_STARCODER, 0},
    {"smollm", CLLM_PRETOK_STARCODER, 0},        {"refact", CLLM_PRETOK_STARCODER, 0},
    {"command-r", CLLM_PRETOK_STARCODER, 0},     {"codeshell", CLLM_PRETOK_STARCODER, 0},
    {"exaone", CLLM_PRETOK_STARCODER, 0},        {"falcon", CLLM_PRETOK_FALCON, 0},
    {"gpt-4o", CLLM_PRETOK_O200K, 0},            {"tekken", CLLM_PRETOK_TEKKEN, 1},
};

/* Token texts llama.cpp gives the control attribute whatever their type
 * (its end-of-generation and fill-in-the-middle detection by name), and the
 * ones it makes user-defined (gpt-oss). A normal token with such a text is
 * matched in text where specials are allowed, as llama.cpp does; normal
 * tokens are stored byte-level, so only ASCII names can meet it. */
static const char *const control_names[] = {
    "<EOT>", "<MID>", "<PAD>", "<PRE>", "<REPO>", "<SUF>", "<end_of_turn>", "<end_of_utterance>", "<fim-middle>",
    "<fim-pad>", "<fim-prefix>", "<fim-repo>", "<fim-suffix>", "<fim_middle>", "<fim_pad>", "<fim_prefix>",
    "<fim_suffix>", "<reponame>", "<|code_middle|>", "<|code_prefix|>", "<|code_suffix|>", "<|end_of_text|>",
    "<|endoftext|>", "<|end|>", "<|eom_id|>", "<|eot_id|>", "<|file_sep|>", "<|fim_middle|>", "<|fim_pad|>",
    "<|fim_prefix|>", "<|fim_repo|>", "<|fim_suffix|>", "<|im_end|>", "<|middle|>", "<|prefix|>", "<|repo_name|>",
    "<|suffix|>", "[EOT]", "[PAD]", "_<EOT>", "</s>", "<eos>", "<turn|>", "<|calls|>", "<|call|>", "<|flush|>",
    "<|return|>", "<|tool_response>", "[EOS]", "[e~["};
static const char *const user_names[] = {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"};

static int in_list(const char *const *list, size_t n, const char *s, size_t len) {
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == len && !memcmp(list[i], s, len)) return 1;
    return 0;
}

/* Mistral Tekken's split as its tokenizer.json spells it: read from there it
 * runs as a custom regex (Unicode case classes), and a GGUF names it
 * "tekken", llama.cpp's version (tokenizer.ggml.pre). */
static const char hf_tekken_regex[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
    "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static const char *pre_name(cllm_pretok_kind k) {
    switch (k) {
    case CLLM_PRETOK_GPT2: return "gpt-2";
    case CLLM_PRETOK_CL100K: return "llama-bpe"; /* llama.cpp's regex for it equals cl100k's */
    case CLLM_PRETOK_O200K: return "gpt-4o";
    case CLLM_PRETOK_CL100K_DIGITS: return "qwen2"; /* the same split in llama.cpp */
    default:
        for (size_t i = 0; i < sizeof pre_table / sizeof pre_table[0]; i++)
            if (pre_table[i].kind == k) return pre_table[i].name;
        return "default";
    }
}

const char *cllm_tokenizer_gguf_pre(const cllm_tokenizer *t, int *known) {
    if (known) *known = 1;
    if (t->spm) return NULL;
    if (t->pre) return t->pre;
    if (t->regex && !strcmp(t->regex, hf_tekken_regex)) return "tekken";
    if (known) *known = t->pretok_kind != CLLM_PRETOK_CUSTOM;
    return pre_name(t->pretok_kind);
}

cllm_status cllm_tokenizer_gguf_set(const cllm_tokenizer *t, cllm_gguf_writer *w,
                                    const char *chat_template, cllm_error *err) {
    if (t->spm) {
        cllm_status st = tok_spm_gguf_set(t, w, err);
        if (st == CLLM_OK && chat_template) st = cllm_gguf_set_str(w, "tokenizer.chat_template", chat_template, err);
        return st;
    }
    uint32_t V = t->n_vocab;
    char **strs = calloc(V, sizeof *strs);
    int32_t *types = malloc((size_t)V * sizeof *types);
    char **merges = calloc(t->n_merges + 1, sizeof *merges);
    cllm_status st = CLLM_OK;
    if (!strs || !types || !merges) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory writing the tokenizer to GGUF");
        goto done;
    }
    for (uint32_t id = 0; id < V && st == CLLM_OK; id++) {
        if (t->kind[id] == CLLM_TOKEN_UNUSED) {
            strs[id] = malloc(24);
            if (strs[id]) snprintf(strs[id], 24, "[PAD%u]", id);
            types[id] = TOK_TT_UNUSED;
        } else if (t->kind[id] == CLLM_TOKEN_SPECIAL) {
            strs[id] = strndup((const char *)t->blob + t->off[id], t->len[id]);
            types[id] = t->user_defined && t->user_defined[id] ? TOK_TT_USER_DEFINED : TOK_TT_CONTROL;
        } else {
            strs[id] = malloc(2 * (size_t)t->len[id] + 1);
            if (strs[id]) tok_gpt2_bytes_to_unicode(t->blob + t->off[id], t->len[id], strs[id]);
            types[id] = TOK_TT_NORMAL;
        }
        if (!strs[id]) st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    }
    for (uint32_t r = 0; r < t->n_merges && st == CLLM_OK; r++) {
        uint32_t a = t->merges[r].left, b = t->merges[r].right;
        merges[r] = malloc(2 * ((size_t)t->len[a] + t->len[b]) + 2);
        if (!merges[r]) {
            st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
            break;
        }
        size_t n = tok_gpt2_bytes_to_unicode(t->blob + t->off[a], t->len[a], merges[r]);
        merges[r][n] = ' ';
        tok_gpt2_bytes_to_unicode(t->blob + t->off[b], t->len[b], merges[r] + n + 1);
    }
    if (st == CLLM_OK) st = cllm_gguf_set_str(w, "tokenizer.ggml.model", "gpt2", err);
    if (st == CLLM_OK)
        st = cllm_gguf_set_str(w, "tokenizer.ggml.pre", cllm_tokenizer_gguf_pre(t, NULL), err);
    if (st == CLLM_OK) st = cllm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)strs, NULL, V, err);
    if (st == CLLM_OK) st = cllm_gguf_set_arr(w, "tokenizer.ggml.token_type", CLLM_GGUF_INT32, types, V, err);
    if (st == CLLM_OK)
        st = cllm_gguf_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)merges, NULL, t->n_merges, err);
    int64_t eot = cllm_tokenizer_eot_id(t);
    if (st == CLLM_OK && eot >= 0) st = cllm_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)eot, err);
    if (st == CLLM_OK && eot >= 0) st = cllm_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eot, err);
    if (st == CLLM_OK && chat_template) st = cllm_gguf_set_str(w, "tokenizer.chat_template", chat_template, err);
    /* A llama.cpp vocabulary is written as it was read (no cllm keys), so it
     * reads back in llama mode. */
    if (st == CLLM_OK && !t->llama)
        st = cllm_gguf_set_str(w, "cllm.tokenizer.rule", t->rule == CLLM_BPE_RANKS ? "ranks" : "merges", err);
    if (st == CLLM_OK && !t->llama)
        st = cllm_gguf_set_str(w, "cllm.tokenizer.pattern", cllm_pretok_name(t->pretok_kind), err);
    if (st == CLLM_OK && !t->llama && t->pretok_kind == CLLM_PRETOK_CUSTOM)
        st = cllm_gguf_set_str(w, "cllm.tokenizer.regex", t->regex, err);
done:
    for (uint32_t id = 0; strs && id < V; id++) free(strs[id]);
    for (uint32_t r = 0; merges && r < t->n_merges; r++) free(merges[r]);
    free(strs);
    free(types);
    free(merges);
    return st;
}

cllm_status cllm_tokenizer_write_gguf(const cllm_tokenizer *t, const char *path,
                                      const char *chat_template, cllm_error *err) {
    cllm_gguf_writer *w = cllm_gguf_writer_create();
    if (!w) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    cllm_status st = cllm_gguf_set_str(w, "general.architecture", "tokenizer", err);
    if (st == CLLM_OK) st = cllm_tokenizer_gguf_set(t, w, chat_template, err);
    if (st == CLLM_OK) st = cllm_gguf_writer_write(w, path, err);
    cllm_gguf_writer_destroy(w);
    return st;
}

/* A string key copied into buf, or "" when absent. */
static cllm_status opt_str(const cllm_gguf *g, const char *key, char *buf, size_t cap, cllm_error *err) {
    buf[0] = '\0';
    if (!cllm_gguf_find_kv(g, key)) return CLLM_OK;
    return cllm_gguf_get_str_buf(g, key, buf, cap, err);
}

static cllm_status from_gguf(const cllm_gguf *g, cllm_tokenizer **out, cllm_error *err);

cllm_status cllm_tokenizer_from_gguf(const cllm_gguf *g, cllm_tokenizer **out, cllm_error *err) {
    cllm_status st = from_gguf(g, out, err);
    if (st != CLLM_OK) cllm_error_name_file(err, cllm_gguf_path(g));
    return st;
}

static cllm_status from_gguf(const cllm_gguf *g, cllm_tokenizer **out, cllm_error *err) {
    *out = NULL;
    const char *path = cllm_gguf_path(g);
    char model[32], pre[64], rule[16], pattern[16];
    cllm_status st;
    if ((st = opt_str(g, "tokenizer.ggml.model", model, sizeof model, err)) != CLLM_OK) return st;
    if (!strcmp(model, "llama")) return tok_spm_from_gguf(g, out, err);
    if (strcmp(model, "gpt2"))
        return cllm_error_set(err, CLLM_ERR_FORMAT,
                              "%s: tokenizer.ggml.model is '%s', only \"gpt2\" (byte-level BPE) and \"llama\" (SentencePiece) are supported",
                              path, model);
    if ((st = opt_str(g, "tokenizer.ggml.pre", pre, sizeof pre, err)) != CLLM_OK) return st;
    if ((st = opt_str(g, "cllm.tokenizer.rule", rule, sizeof rule, err)) != CLLM_OK) return st;
    if ((st = opt_str(g, "cllm.tokenizer.pattern", pattern, sizeof pattern, err)) != CLLM_OK) return st;
    cllm_pretok_kind kind;
    char *regex = NULL;
    int llama = 0, ignore_merges = 0;
    if (pattern[0]) {
        if (!strcmp(pattern, "custom")) {
            cllm_gguf_str rs;
            if ((st = cllm_gguf_get_str(g, "cllm.tokenizer.regex", &rs, err)) != CLLM_OK) return st;
            if (!(regex = strndup(rs.data, rs.len))) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
            kind = CLLM_PRETOK_CUSTOM;
        } else if (cllm_pretok_parse(pattern, &kind, err) != CLLM_OK) {
            return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: cllm.tokenizer.pattern '%s' is unknown", path, pattern);
        }
    } else {
        /* Written by llama.cpp's converter: encode as llama.cpp does. No
         * tokenizer.ggml.pre means llama.cpp's "default". */
        llama = 1;
        size_t i = 0, n = sizeof pre_table / sizeof pre_table[0];
        while (i < n && strcmp(pre[0] ? pre : "default", pre_table[i].name)) i++;
        if (i == n)
            return cllm_error_set(err, CLLM_ERR_FORMAT,
                                  "%s: tokenizer.ggml.pre '%s' is not supported (supported: default, gpt-2, phi-2, mpt, "
                                  "olmo, jais, llama-bpe, llama3, llama-v3, falcon3, pixtral, dbrx, smaug-bpe, qwen2, "
                                  "deepseek-r1-qwen, stablelm2, qwen35, deepseek-llm, deepseek-coder, starcoder, smollm, "
                                  "refact, command-r, codeshell, exaone, falcon, gpt-4o, tekken)",
                                  path, pre);
        kind = pre_table[i].kind;
        ignore_merges = pre_table[i].ignore_merges;
    }
    const cllm_gguf_str *toks, *merges;
    uint64_t n_tok, n_types, n_merges = 0;
    cllm_gguf_type et;
    int32_t *types = NULL;
    cllm_tokenizer *t = NULL;
    uint8_t *buf = NULL;
    if ((st = cllm_gguf_get_arr_str(g, "tokenizer.ggml.tokens", &toks, &n_tok, err)) != CLLM_OK) goto done;
    if ((st = cllm_gguf_get_arr_n(g, "tokenizer.ggml.token_type", &et, &n_types, err)) != CLLM_OK) goto done;
    if (n_types != n_tok) {
        st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tokenizer.ggml.token_type has %llu entries, tokens has %llu", path,
                            (unsigned long long)n_types, (unsigned long long)n_tok);
        goto done;
    }
    if (n_tok > (1u << 30)) {
        st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: %llu tokens (more than 2^30)", path, (unsigned long long)n_tok);
        goto done;
    }
    if (cllm_gguf_find_kv(g, "tokenizer.ggml.merges") &&
        (st = cllm_gguf_get_arr_str(g, "tokenizer.ggml.merges", &merges, &n_merges, err)) != CLLM_OK)
        goto done;
    types = malloc((n_tok + 1) * sizeof *types);
    if (!types) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = cllm_gguf_get_arr_i32(g, "tokenizer.ggml.token_type", types, n_tok, err)) != CLLM_OK) goto done;
    if ((st = cllm_tokenizer_new(&t, (uint32_t)n_tok, kind, regex, err)) != CLLM_OK) goto done;
    if (llama) {
        t->llama = 1;
        t->ignore_merges = ignore_merges;
        t->pre = strdup(pre[0] ? pre : "default");
        t->user_defined = calloc(n_tok, 1);
        t->control_normal = calloc(n_tok, 1);
        if (!t->pre || !t->user_defined || !t->control_normal) {
            st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
            goto done;
        }
    }
    size_t cap = 0;
    for (uint64_t i = 0; i < n_tok && st == CLLM_OK; i++) {
        const cllm_gguf_str *s = &toks[i];
        if (types[i] == TOK_TT_UNUSED) continue;
        int type = types[i];
        if (llama && type == TOK_TT_NORMAL) { /* llama.cpp's overrides by name */
            if (in_list(user_names, sizeof user_names / sizeof *user_names, s->data, s->len))
                type = TOK_TT_USER_DEFINED;
            else if (in_list(control_names, sizeof control_names / sizeof *control_names, s->data, s->len))
                t->control_normal[i] = 1;
        }
        if (type == TOK_TT_CONTROL || type == TOK_TT_USER_DEFINED) {
            if (s->len == 0 || s->len > (1u << 20))
                st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: token %llu is empty or too long", path, (unsigned long long)i);
            else
                st = cllm_tokenizer_set_token(t, (uint32_t)i, s->data, s->len, CLLM_TOKEN_SPECIAL, err);
            if (t->user_defined) t->user_defined[i] = type == TOK_TT_USER_DEFINED;
            continue;
        }
        if (types[i] != TOK_TT_NORMAL) {
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: token %llu has unsupported token_type %d", path,
                                (unsigned long long)i, types[i]);
            break;
        }
        if (s->len > cap) {
            free(buf);
            cap = s->len * 2;
            if (!(buf = malloc(cap))) {
                st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
                break;
            }
        }
        long nb = s->len ? tok_gpt2_unicode_to_bytes(s->data, s->len, buf) : -1;
        if (nb <= 0 && llama) continue; /* Command-R has some: llama.cpp never produces them either; unused here */
        if (nb <= 0)
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: token %llu is not in the byte-level alphabet", path,
                                (unsigned long long)i);
        else
            st = cllm_tokenizer_set_token(t, (uint32_t)i, buf, (size_t)nb, CLLM_TOKEN_NORMAL, err);
    }
    cllm_bpe_rule br = !strcmp(rule, "ranks") ? CLLM_BPE_RANKS : CLLM_BPE_MERGES;
    if (st == CLLM_OK && br == CLLM_BPE_MERGES) {
        t->rule = CLLM_BPE_MERGES;
        st = tok_build_maps(t, err);
        for (uint64_t r = 0; r < n_merges && st == CLLM_OK; r++) {
            const char *s = merges[r].data, *sp = memchr(s, ' ', merges[r].len);
            if (!sp || sp == s || sp + 1 == s + merges[r].len) {
                st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: merge %llu is not '<left> <right>'", path, (unsigned long long)r);
                break;
            }
            size_t la = (size_t)(sp - s), lb = merges[r].len - la - 1;
            uint8_t *mb = malloc(merges[r].len + 1);
            if (!mb) {
                st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
                break;
            }
            long na = tok_gpt2_unicode_to_bytes(s, la, mb);
            uint32_t a = na > 0 ? tok_bytes_get(t, mb, (size_t)na) : TOK_NO_ID;
            long nb2 = tok_gpt2_unicode_to_bytes(sp + 1, lb, mb);
            uint32_t b = nb2 > 0 ? tok_bytes_get(t, mb, (size_t)nb2) : TOK_NO_ID;
            free(mb);
            if ((a == TOK_NO_ID || b == TOK_NO_ID) && llama) continue; /* can never apply (llama.cpp keeps it unused) */
            if (a == TOK_NO_ID || b == TOK_NO_ID)
                st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: merge %llu names an unknown token", path, (unsigned long long)r);
            else
                st = cllm_tokenizer_add_merge(t, a, b, err);
        }
        tok_drop_maps(t);
    }
    if (st == CLLM_OK && (st = cllm_tokenizer_finalize(t, br, err)) != CLLM_OK) cllm_error_prefix(err, "%s", path);
done:
    free(types);
    free(buf);
    free(regex);
    if (st == CLLM_OK)
        *out = t;
    else
        cllm_tokenizer_destroy(t);
    return st;
}

cllm_status cllm_tokenizer_read_gguf(const char *path, cllm_tokenizer **out, cllm_error *err) {
    cllm_gguf *g;
    cllm_status st = cllm_gguf_open(&g, path, err);
    if (st != CLLM_OK) return st;
    st = cllm_tokenizer_from_gguf(g, out, err);
    cllm_gguf_close(g);
    return st;
}
