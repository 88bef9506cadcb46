/*
 * chat_data.c: JSONL chat/instruction data (TRL's formats) to token ids and
 * a loss mask (see cllm/train/chat_data.h for the accepted shapes and the mask).
 *
 * Lines are split here (blank lines, BOM and CRLF handled), nesting depth is
 * checked by a small scan before cJSON parses the line (so 10^5 '[' is an
 * error, not a deep recursion), and each record is rendered with the chat
 * template of infer/chat_template.h. Does not: batch, pack or shuffle (sft.c).
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/train/chat_data.h"
#include "cllm/core/fileio.h"
#include "cllm/infer/tools.h"

/* ---- the line walker ---------------------------------------------------------- */

/* 0-based byte index of the first place nesting exceeds max, or -1. */
static long depth_exceeded(const char *s, size_t n, int max) {
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max) return (long)i;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return -1;
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

cllm_status cllm_jsonl_each(const char *data, size_t len, const char *name, cllm_jsonl_fn fn, void *ctx,
                            cllm_error *err) {
    size_t pos = 0;
    int64_t line = 0;
    if (len >= 3 && (unsigned char)data[0] == 0xEF && (unsigned char)data[1] == 0xBB &&
        (unsigned char)data[2] == 0xBF)
        pos = 3;
    size_t bom = pos;
    while (pos < len) {
        line++;
        const char *s = data + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + (nl ? 1 : 0);
        size_t col0 = line == 1 ? bom : 0; /* columns count bytes of the physical line */
        if (n && s[n - 1] == '\r') n--;
        if (is_blank(s, n)) continue;
        if (n > CLLM_JSONL_MAX_LINE)
            return cllm_error_set(err, CLLM_ERR_LIMIT, "%s:%lld: line of %zu bytes exceeds the %u byte limit", name,
                                  (long long)line, n, CLLM_JSONL_MAX_LINE);
        long deep = depth_exceeded(s, n, CLLM_JSONL_MAX_DEPTH);
        if (deep >= 0)
            return cllm_error_set(err, CLLM_ERR_FORMAT, "%s:%lld:%ld: JSON nesting too deep (more than %d levels)",
                                  name, (long long)line, (long)col0 + deep + 1, CLLM_JSONL_MAX_DEPTH);
        const char *end = NULL;
        cJSON *obj = cJSON_ParseWithLengthOpts(s, n, &end, 0);
        if (!obj) {
            long col = end ? (long)(end - s) : 0;
            return cllm_error_set(err, CLLM_ERR_FORMAT, "%s:%lld:%ld: malformed JSON", name, (long long)line,
                                  (long)col0 + col + 1);
        }
        size_t used = end ? (size_t)(end - s) : n;
        while (used < n && (s[used] == ' ' || s[used] == '\t')) used++;
        if (used < n && !is_blank(s + used, n - used)) {
            cJSON_Delete(obj);
            return cllm_error_set(err, CLLM_ERR_FORMAT, "%s:%lld:%zu: unexpected text after the JSON value", name,
                                  (long long)line, col0 + used + 1);
        }
        if (!cJSON_IsObject(obj)) {
            cJSON_Delete(obj);
            return cllm_error_set(err, CLLM_ERR_FORMAT, "%s:%lld:%zu: each line must be a JSON object", name,
                                  (long long)line, col0 + 1);
        }
        cllm_status st = fn(ctx, obj, line, err);
        cJSON_Delete(obj);
        if (st != CLLM_OK) return st;
    }
    return CLLM_OK;
}

cllm_status cllm_jsonl_each_file(const char *path, cllm_jsonl_fn fn, void *ctx, cllm_error *err) {
    char *data = NULL;
    size_t len = 0;
    cllm_status st = cllm_file_read_all(path, (uint64_t)1 << 32, &data, &len, err);
    if (st == CLLM_OK) st = cllm_jsonl_each(data, len, path, fn, ctx, err);
    free(data);
    return st;
}

/* ---- fields -------------------------------------------------------------------- */

static const char *json_type(const cJSON *v) {
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "invalid";
}

cllm_status cllm_chat_data_string(const struct cJSON *obj, const char *name, int64_t line, const char *field,
                                  const char **out, size_t *len, cllm_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
    if (!v) return cllm_error_set(err, CLLM_ERR_FORMAT, "%s:%lld: missing field \"%s\"", name, (long long)line, field);
    if (!cJSON_IsString(v) || !v->valuestring)
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s:%lld: field \"%s\" must be a string, not %s", name,
                              (long long)line, field, json_type(v));
    *out = v->valuestring;
    *len = strlen(v->valuestring);
    return CLLM_OK;
}

/* An assistant message with OpenAI tool_calls (a non-empty array). */
static int has_calls(const cJSON *msg) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
    return cJSON_IsArray(c) && c->child;
}

cllm_status cllm_chat_data_messages(const struct cJSON *arr, const char *name, int64_t line, const char *field,
                                    cllm_chat_message **msgs, int *n, cllm_error *err) {
    *msgs = NULL;
    *n = 0;
    if (!cJSON_IsArray(arr))
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s:%lld: field \"%s\" must be an array of messages, not %s", name,
                              (long long)line, field, json_type(arr));
    int count = cJSON_GetArraySize(arr);
    if (count == 0)
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s:%lld: field \"%s\" has no messages", name, (long long)line,
                              field);
    cllm_chat_message *m = calloc((size_t)count, sizeof *m);
    if (!m) return cllm_error_set(err, CLLM_ERR_NOMEM, "%s:%lld: out of memory", name, (long long)line);
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        const char *why = NULL;
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(it, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!cJSON_IsObject(it)) why = "must be an object with \"role\" and \"content\"";
        else if (!role) why = "has no \"role\"";
        else if (!cJSON_IsString(role)) why = "has a \"role\" that is not a string";
        else if (cllm_chat_role_parse(role->valuestring) < 0) why = "has an unknown role (use system, user, assistant or tool)";
        else if (has_calls(it) && (!content || cJSON_IsNull(content))) content = NULL; /* a call without text */
        else if (!content) why = "has no \"content\"";
        else if (!cJSON_IsString(content)) why = "has a \"content\" that is not a string";
        if (why) {
            free(m);
            if (role && cJSON_IsString(role) && cllm_chat_role_parse(role->valuestring) < 0)
                return cllm_error_set(err, CLLM_ERR_FORMAT, "%s:%lld: %s[%d].role \"%.40s\" is unknown (use system, user, "
                                      "assistant or tool)", name, (long long)line, field, i, role->valuestring);
            return cllm_error_set(err, CLLM_ERR_FORMAT, "%s:%lld: %s[%d] %s", name, (long long)line, field, i, why);
        }
        m[i].role = (cllm_chat_role)cllm_chat_role_parse(role->valuestring);
        m[i].content = content ? content->valuestring : "";
        m[i].len = strlen(m[i].content);
        m[i].extra = it; /* an assistant's tool_calls (infer/tools.h) */
        i++;
    }
    *msgs = m;
    *n = count;
    return CLLM_OK;
}

/* ---- records to examples -------------------------------------------------------- */

typedef struct {
    const char *name;
    const cllm_tokenizer *tok;
    const cllm_chat_data_params *p;
    cllm_sft_dataset *ds;
    cllm_tokens ids;
    cllm_chat_mask mask;
    const cJSON *tools; /* the record's "tools" (infer/tools.h), or NULL */
} load_ctx;

static cllm_status push_text(load_ctx *c, const char *text, size_t len, uint8_t learn, cllm_error *err) {
    size_t before = c->ids.n;
    cllm_status st = cllm_tokenizer_encode(c->tok, text, len, NULL, &c->ids, err);
    if (st != CLLM_OK) return st;
    size_t need = c->ids.n;
    if (need > c->mask.cap) {
        size_t cap = need * 2;
        uint8_t *v = realloc(c->mask.values, cap);
        if (!v) return cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory", c->name);
        c->mask.values = v;
        c->mask.cap = cap;
    }
    /* an empty piece (e.g. an empty first prompt) adds nothing; mask.values
     * may still be NULL then, and memset(NULL, _, 0) is undefined */
    if (need > before) memset(c->mask.values + before, learn, need - before);
    c->mask.n = need;
    return CLLM_OK;
}

static cllm_status push_eot(load_ctx *c, cllm_error *err) {
    int64_t eot = cllm_tokenizer_eot_id(c->tok);
    if (eot < 0) return CLLM_OK;
    cllm_status st = cllm_tokens_push(&c->ids, (uint32_t)eot, err);
    if (st != CLLM_OK) return st;
    if (c->mask.n + 1 > c->mask.cap) {
        size_t cap = (c->mask.n + 1) * 2;
        uint8_t *v = realloc(c->mask.values, cap);
        if (!v) return cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory", c->name);
        c->mask.values = v;
        c->mask.cap = cap;
    }
    c->mask.values[c->mask.n++] = 1;
    return CLLM_OK;
}

static int has_assistant(const cllm_chat_message *m, int n) {
    for (int i = 0; i < n; i++)
        if (m[i].role == CLLM_ROLE_ASSISTANT) return 1;
    return 0;
}

static cllm_status empty_reply(const char *name, int64_t line, const char *field, const cllm_chat_message *m, int n,
                               cllm_error *err) {
    for (int i = 0; i < n; i++)
        if (m[i].role == CLLM_ROLE_ASSISTANT && m[i].len == 0 && !has_calls(m[i].extra))
            return cllm_error_set(err, CLLM_ERR_FORMAT, "%s:%lld: %s[%d] is an empty assistant reply", name,
                                  (long long)line, field, i);
    return CLLM_OK;
}

static cllm_status render(load_ctx *c, const cllm_chat_message *m, int n, int learn, cllm_error *err) {
    size_t before = c->ids.n;
    cllm_status st = cllm_chat_render_tools(c->tok, c->p->chat_template, m, n, 0, c->tools, &c->ids, &c->mask, err);
    if (st == CLLM_OK && !learn && c->ids.n > before) memset(c->mask.values + before, 0, c->ids.n - before);
    return st;
}

static cllm_status record(void *ctxp, const struct cJSON *obj, int64_t line, cllm_error *err) {
    load_ctx *c = ctxp;
    cllm_sft_dataset *ds = c->ds;
    const char *name = c->name;
    c->ids.n = 0;
    c->mask.n = 0;
    ds->lines_read++;
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(obj, "messages");
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(obj, "prompt");
    const cJSON *completion = cJSON_GetObjectItemCaseSensitive(obj, "completion");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(obj, "text");
    cllm_status st = CLLM_OK;
    cllm_chat_message *m1 = NULL, *m2 = NULL;
    int n1 = 0, n2 = 0;
    c->tools = cJSON_GetObjectItemCaseSensitive(obj, "tools");
    if (cJSON_IsNull(c->tools)) c->tools = NULL;
    if (c->tools) {
        char where[600];
        snprintf(where, sizeof where, "%s:%lld: field \"tools\"", name, (long long)line);
        if ((st = cllm_tools_check(c->tools, where, err)) != CLLM_OK) return st;
    }
    if (messages) {
        st = cllm_chat_data_messages(messages, name, line, "messages", &m1, &n1, err);
        if (st == CLLM_OK && !has_assistant(m1, n1))
            st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s:%lld: \"messages\" has no assistant turn to learn from", name,
                                (long long)line);
        if (st == CLLM_OK) st = empty_reply(name, line, "messages", m1, n1, err);
        if (st == CLLM_OK) st = render(c, m1, n1, 1, err);
    } else if (prompt || completion) {
        if (!prompt) st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s:%lld: \"completion\" without \"prompt\"", name, (long long)line);
        else if (!completion) st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s:%lld: \"prompt\" without \"completion\"", name, (long long)line);
        else if (cJSON_IsArray(prompt) || cJSON_IsArray(completion)) {
            /* conversational: both must be message lists */
            st = cllm_chat_data_messages(prompt, name, line, "prompt", &m1, &n1, err);
            if (st == CLLM_OK) st = cllm_chat_data_messages(completion, name, line, "completion", &m2, &n2, err);
            if (st == CLLM_OK && !has_assistant(m2, n2))
                st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s:%lld: \"completion\" has no assistant turn", name, (long long)line);
            if (st == CLLM_OK) st = empty_reply(name, line, "completion", m2, n2, err);
            if (st == CLLM_OK) st = render(c, m1, n1, 0, err);
            if (st == CLLM_OK) st = render(c, m2, n2, 1, err);
        } else {
            const char *ps, *cs;
            size_t pl, cl;
            st = cllm_chat_data_string(obj, name, line, "prompt", &ps, &pl, err);
            if (st == CLLM_OK) st = cllm_chat_data_string(obj, name, line, "completion", &cs, &cl, err);
            if (st == CLLM_OK && cl == 0)
                st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s:%lld: \"completion\" is empty", name, (long long)line);
            if (st == CLLM_OK) st = push_text(c, ps, pl, 0, err);
            if (st == CLLM_OK) st = push_text(c, cs, cl, 1, err);
            if (st == CLLM_OK) st = push_eot(c, err);
        }
    } else if (text) {
        const char *ts;
        size_t tl;
        st = cllm_chat_data_string(obj, name, line, "text", &ts, &tl, err);
        if (st == CLLM_OK && tl == 0) st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s:%lld: \"text\" is empty", name, (long long)line);
        if (st == CLLM_OK) st = push_text(c, ts, tl, 1, err);
        if (st == CLLM_OK) st = push_eot(c, err);
    } else {
        st = cllm_error_set(err, CLLM_ERR_FORMAT,
                            "%s:%lld: the record has none of \"messages\", \"prompt\"/\"completion\" or \"text\"", name,
                            (long long)line);
    }
    free(m1);
    free(m2);
    if (st != CLLM_OK) return st;

    size_t n = c->ids.n;
    if (n > 0) c->mask.values[0] = 0; /* the first token is never predicted */
    const size_t max = c->p->max_tokens;
    if (max && n > max) {
        if (!c->p->truncate)
            return cllm_error_set(err, CLLM_ERR_LIMIT,
                                  "%s:%lld: the example has %zu tokens, more than the %zu of a training row; "
                                  "shorten it, raise --seq, or pass --truncate",
                                  name, (long long)line, n, max);
        n = max;
        ds->n_truncated++;
    }
    size_t loss = 0;
    for (size_t i = 0; i < n; i++) loss += c->mask.values[i];
    if (loss == 0) {
        if (max && c->ids.n > max) { /* truncation removed every target */
            ds->n_dropped++;
            return CLLM_OK;
        }
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s:%lld: the example has no token to learn from", name,
                              (long long)line);
    }
    if (ds->n == ds->cap) {
        size_t cap = ds->cap ? ds->cap * 2 : 64;
        cllm_sft_example *e = realloc(ds->ex, cap * sizeof *e);
        if (!e) return cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory", name);
        ds->ex = e;
        ds->cap = cap;
    }
    cllm_sft_example *e = &ds->ex[ds->n];
    e->ids = malloc(n * sizeof *e->ids);
    e->mask = malloc(n);
    if (!e->ids || !e->mask) {
        free(e->ids);
        free(e->mask);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "%s: out of memory", name);
    }
    for (size_t i = 0; i < n; i++) e->ids[i] = (int32_t)c->ids.ids[i];
    memcpy(e->mask, c->mask.values, n);
    e->n = n;
    e->line = line;
    ds->n++;
    ds->n_tokens += n;
    ds->n_loss_tokens += loss;
    if (n > ds->max_len) ds->max_len = n;
    return CLLM_OK;
}

cllm_chat_data_params cllm_chat_data_default_params(const cllm_tokenizer *tok) {
    cllm_chat_data_params p;
    memset(&p, 0, sizeof p);
    p.chat_template = tok ? cllm_chat_template_for(tok) : cllm_chat_template_builtin(CLLM_CHAT_TEMPLATE_PLAIN);
    return p;
}

cllm_status cllm_chat_data_parse(const char *data, size_t len, const char *name, const cllm_tokenizer *tok,
                                 const cllm_chat_data_params *p, cllm_sft_dataset *out, cllm_error *err) {
    memset(out, 0, sizeof *out);
    load_ctx c;
    memset(&c, 0, sizeof c);
    c.name = name;
    c.tok = tok;
    c.p = p;
    c.ds = out;
    cllm_status st = cllm_jsonl_each(data, len, name, record, &c, err);
    if (st == CLLM_OK && out->n == 0)
        st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: no examples (%lld records read, %lld dropped)", name,
                            (long long)out->lines_read, (long long)out->n_dropped);
    cllm_tokens_free(&c.ids);
    cllm_chat_mask_free(&c.mask);
    if (st != CLLM_OK) cllm_sft_dataset_free(out);
    return st;
}

cllm_status cllm_chat_data_load(const char *path, const cllm_tokenizer *tok, const cllm_chat_data_params *p,
                                cllm_sft_dataset *out, cllm_error *err) {
    memset(out, 0, sizeof *out);
    char *data = NULL;
    size_t len = 0;
    cllm_status st = cllm_file_read_all(path, (uint64_t)1 << 32, &data, &len, err);
    if (st == CLLM_OK) st = cllm_chat_data_parse(data, len, path, tok, p, out, err);
    free(data);
    return st;
}

void cllm_sft_dataset_free(cllm_sft_dataset *ds) {
    if (!ds) return;
    for (size_t i = 0; i < ds->n; i++) {
        free(ds->ex[i].ids);
        free(ds->ex[i].mask);
    }
    free(ds->ex);
    memset(ds, 0, sizeof *ds);
}
