/*
 * pref_data.c: preference pairs and prompts from JSONL, in TRL's formats,
 * rendered to token ids with the model's chat template.
 *
 * Pairs: {"prompt": P, "chosen": X, "rejected": Y} where P is a string (a user
 * turn) or a list of {"role","content"} messages, and X / Y are strings (the
 * assistant reply) or lists of assistant messages. Prompts (PPO/GRPO):
 * {"prompt": P} with an optional "answer" (string or number) for verifiable
 * rewards, or {"messages": [...]} (cllm's task files, SFT data): the turns
 * before the last assistant one are the prompt, and the answer is "answer",
 * else "reference", else that assistant turn's text. The prompt ids are the prompt messages with the assistant
 * generation header; a completion is what the template renders for the
 * reply after that header, up to and including its end-of-turn token(s).
 *
 * A record's "tools" (an OpenAI tool list) and assistant messages'
 * "tool_calls" are written as infer/tools.h says (TRL's tool format), so a
 * chosen reply may be a call and a rejected one a wrong call or none.
 *
 * Errors name the file and 1-based line, plus the column for JSON syntax
 * (cJSON reports where parsing stopped) or the field for missing, wrong-typed
 * or empty values, and both token counts for a too-long example. Blank lines
 * are skipped; CRLF line ends and a UTF-8 BOM are accepted. Lines are split,
 * size-checked (CLLM_JSONL_MAX_LINE, before parsing) and parsed by the JSONL
 * walker SFT data uses (cllm_jsonl_each, chat_data.h).
 * Does not: skip bad lines (one bad line fails the load), or pack examples.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/train/chat_data.h"
#include "cllm/core/fileio.h"
#include "cllm/infer/tools.h"
#include "cllm/train/rlhf.h"

#define PREF_MAX_FILE ((uint64_t)1 << 32) /* 4 GiB of JSONL */
#define PREF_MAX_MESSAGES 256

typedef struct {
    const char *name;
    int line;
    const cllm_tokenizer *tok;
    cllm_chat_template tmpl;
    const cJSON *tools; /* the record's "tools" (infer/tools.h), or NULL */
} ctx_t;

static cllm_status fail(const ctx_t *c, const char *field, const char *what, cllm_error *err) {
    return cllm_error_set(err, CLLM_ERR_FORMAT, "%s:%d: field \"%s\": %s", c->name, c->line, field, what);
}

/* Appends messages described by v (string -> one message of `role`, or a
 * list of objects) to msgs. assistant_only: every message must be assistant. */
static cllm_status collect(const ctx_t *c, const cJSON *v, const char *field, cllm_chat_role role,
                           int assistant_only, cllm_chat_message *msgs, int *n, cllm_error *err) {
    if (!v) return fail(c, field, "missing", err);
    if (cJSON_IsString(v)) {
        if (*n >= PREF_MAX_MESSAGES) return fail(c, field, "too many messages", err);
        msgs[*n].role = role;
        msgs[*n].content = v->valuestring;
        msgs[*n].len = strlen(v->valuestring);
        msgs[*n].extra = NULL;
        (*n)++;
        return CLLM_OK;
    }
    if (!cJSON_IsArray(v)) return fail(c, field, "must be a string or a list of messages", err);
    int k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        char what[128];
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(it, "role");
        const cJSON *ct = cJSON_GetObjectItemCaseSensitive(it, "content");
        const cJSON *calls = cJSON_GetObjectItemCaseSensitive(it, "tool_calls");
        int has_calls = cJSON_IsArray(calls) && calls->child; /* then the text may be empty or null */
        if (!cJSON_IsObject(it) || !cJSON_IsString(r) || !(cJSON_IsString(ct) || (has_calls && (!ct || cJSON_IsNull(ct))))) {
            snprintf(what, sizeof what, "message %d must be an object with string \"role\" and \"content\"", k);
            return fail(c, field, what, err);
        }
        int rr = cllm_chat_role_parse(r->valuestring);
        if (rr < 0) {
            snprintf(what, sizeof what, "message %d: unknown role \"%.40s\"", k, r->valuestring);
            return fail(c, field, what, err);
        }
        if (assistant_only && rr != CLLM_ROLE_ASSISTANT) {
            snprintf(what, sizeof what, "message %d: a completion holds assistant messages only", k);
            return fail(c, field, what, err);
        }
        if (*n >= PREF_MAX_MESSAGES) return fail(c, field, "too many messages", err);
        msgs[*n].role = (cllm_chat_role)rr;
        msgs[*n].content = cJSON_IsString(ct) ? ct->valuestring : "";
        msgs[*n].len = strlen(msgs[*n].content);
        msgs[*n].extra = it; /* tool_calls */
        (*n)++;
        k++;
    }
    if (k == 0) return fail(c, field, "empty list", err);
    return CLLM_OK;
}

static cllm_status copy_ids(const uint32_t *ids, size_t n, int32_t **out, cllm_error *err) {
    *out = malloc((n ? n : 1) * sizeof **out);
    if (!*out) return cllm_error_set(err, CLLM_ERR_NOMEM, "preference data: out of memory");
    for (size_t i = 0; i < n; i++) (*out)[i] = (int32_t)ids[i];
    return CLLM_OK;
}

/* Renders prompt + completion; writes the completion ids (after the prompt
 * prefix, through the last learned token: the reply and its end token). */
static cllm_status render_completion(const ctx_t *c, const cllm_chat_message *pm, int np, const cJSON *v,
                                     const char *field, const cllm_tokens *prompt, int32_t **out, int *n_out,
                                     cllm_error *err) {
    cllm_chat_message msgs[PREF_MAX_MESSAGES];
    memcpy(msgs, pm, (size_t)np * sizeof *msgs);
    int n = np;
    cllm_status st = collect(c, v, field, CLLM_ROLE_ASSISTANT, 1, msgs, &n, err);
    if (st) return st;
    for (int i = np; i < n; i++)
        if (msgs[i].len == 0 && !cJSON_GetObjectItemCaseSensitive(msgs[i].extra, "tool_calls"))
            return fail(c, field, "empty completion", err);
    cllm_tokens full = {0};
    cllm_chat_mask mask = {0};
    st = cllm_chat_render_tools(c->tok, c->tmpl, msgs, n, 0, c->tools, &full, &mask, err);
    if (st == CLLM_OK) {
        size_t last = 0;
        for (size_t i = 0; i < mask.n; i++)
            if (mask.values[i]) last = i + 1;
        if (full.n < prompt->n || memcmp(full.ids, prompt->ids, prompt->n * sizeof *full.ids) != 0 ||
            last <= prompt->n)
            st = fail(c, field, "the chat template does not render the prompt as a prefix of the reply", err);
        else {
            *n_out = (int)(last - prompt->n);
            st = copy_ids(full.ids + prompt->n, last - prompt->n, out, err);
        }
    } else {
        cllm_error_prefix(err, "%s:%d: field \"%s\"", c->name, c->line, field);
    }
    cllm_tokens_free(&full);
    cllm_chat_mask_free(&mask);
    return st;
}

/* One record (a JSON object, parsed by the shared JSONL walker) into ex. */
static cllm_status parse_record(const ctx_t *c, const cJSON *root, const cllm_pref_load_params *p,
                                cllm_pref_example *ex, cllm_error *err) {
    cllm_status st = CLLM_OK;
    cllm_tokens prompt = {0};
    cllm_chat_message pm[PREF_MAX_MESSAGES];
    int np = 0;
    const cJSON *pv = cJSON_GetObjectItemCaseSensitive(root, "prompt");
    /* prompts may also come as a conversation (cllm's task files, SFT data):
     * "messages" up to its last assistant turn is the prompt, and that turn
     * the answer unless "answer" (or the task files' "reference") says it */
    const cJSON *mv = !pv && p->prompt_only ? cJSON_GetObjectItemCaseSensitive(root, "messages") : NULL;
    const cllm_chat_message *reply = NULL;
    if ((st = collect(c, mv ? mv : pv, mv ? "messages" : "prompt", CLLM_ROLE_USER, 0, pm, &np, err))) goto done;
    if (mv && np > 1 && pm[np - 1].role == CLLM_ROLE_ASSISTANT) reply = &pm[--np];
    if (pm[np - 1].role == CLLM_ROLE_ASSISTANT) {
        st = fail(c, "prompt", "must not end with an assistant message", err);
        goto done;
    }
    if ((st = cllm_chat_render_tools(c->tok, c->tmpl, pm, np, 1, c->tools, &prompt, NULL, err))) {
        cllm_error_prefix(err, "%s:%d: field \"prompt\"", c->name, c->line);
        goto done;
    }
    ex->n_prompt = (int)prompt.n;
    if ((st = copy_ids(prompt.ids, prompt.n, &ex->prompt, err))) goto done;
    if (p->prompt_only) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "answer");
        if (!a && mv) a = cJSON_GetObjectItemCaseSensitive(root, "reference");
        if (!a && reply && !(ex->answer = strndup(reply->content, reply->len))) {
            st = cllm_error_set(err, CLLM_ERR_NOMEM, "preference data: out of memory");
            goto done;
        }
        if (a) {
            char buf[64];
            const char *s = NULL;
            if (cJSON_IsString(a)) s = a->valuestring;
            else if (cJSON_IsNumber(a)) {
                snprintf(buf, sizeof buf, "%.17g", a->valuedouble);
                s = buf;
            } else {
                st = fail(c, "answer", "must be a string or a number", err);
                goto done;
            }
            if (!(ex->answer = strdup(s))) {
                st = cllm_error_set(err, CLLM_ERR_NOMEM, "preference data: out of memory");
                goto done;
            }
        }
        if (ex->n_prompt >= p->max_tokens)
            st = cllm_error_set(err, CLLM_ERR_LIMIT,
                                "%s:%d: field \"%s\": %d prompt tokens leave no room in the %d-token context",
                                c->name, c->line, mv ? "messages" : "prompt", ex->n_prompt, p->max_tokens);
        goto done;
    }
    if ((st = render_completion(c, pm, np, cJSON_GetObjectItemCaseSensitive(root, "chosen"), "chosen", &prompt,
                                &ex->chosen, &ex->n_chosen, err)))
        goto done;
    if ((st = render_completion(c, pm, np, cJSON_GetObjectItemCaseSensitive(root, "rejected"), "rejected",
                                &prompt, &ex->rejected, &ex->n_rejected, err)))
        goto done;
    int longest = ex->n_chosen > ex->n_rejected ? ex->n_chosen : ex->n_rejected;
    if (ex->n_prompt + longest > p->max_tokens)
        st = cllm_error_set(err, CLLM_ERR_LIMIT,
                            "%s:%d: prompt (%d tokens) + completion (%d tokens) exceed the %d-token context",
                            c->name, c->line, ex->n_prompt, longest, p->max_tokens);
done:
    cllm_tokens_free(&prompt);
    return st;
}

static void example_free(cllm_pref_example *ex) {
    free(ex->prompt);
    free(ex->chosen);
    free(ex->rejected);
    free(ex->answer);
}

void cllm_pref_data_free(cllm_pref_data *d) {
    if (!d) return;
    for (int i = 0; i < d->n; i++) example_free(&d->items[i]);
    free(d->items);
    d->items = NULL;
    d->n = 0;
}

typedef struct {
    ctx_t c;
    const cllm_pref_load_params *p;
    cllm_pref_data *out;
    int cap;
} walk_t;

static cllm_status on_record(void *ctx, const cJSON *obj, int64_t line, cllm_error *err) {
    walk_t *w = ctx;
    cllm_pref_data *out = w->out;
    w->c.line = (int)line;
    if (out->n == w->cap) {
        int nc = w->cap ? w->cap * 2 : 64;
        cllm_pref_example *ni = realloc(out->items, (size_t)nc * sizeof *ni);
        if (!ni) return cllm_error_set(err, CLLM_ERR_NOMEM, "preference data: out of memory");
        out->items = ni;
        w->cap = nc;
    }
    cllm_pref_example *ex = &out->items[out->n];
    memset(ex, 0, sizeof *ex);
    ex->line = w->c.line;
    cllm_status st = CLLM_OK;
    w->c.tools = cJSON_GetObjectItemCaseSensitive(obj, "tools");
    if (cJSON_IsNull(w->c.tools)) w->c.tools = NULL;
    if (w->c.tools) {
        char where[600];
        snprintf(where, sizeof where, "%s:%d: field \"tools\"", w->c.name, w->c.line);
        st = cllm_tools_check(w->c.tools, where, err);
    }
    if (st == CLLM_OK) st = parse_record(&w->c, obj, w->p, ex, err);
    if (st) example_free(ex);
    else out->n++;
    return st;
}

cllm_status cllm_pref_data_parse(const char *text, size_t len, const char *name, const cllm_tokenizer *tok,
                                 cllm_chat_template tmpl, const cllm_pref_load_params *p,
                                 cllm_pref_data *out, cllm_error *err) {
    out->items = NULL;
    out->n = 0;
    if (p->max_tokens < 2)
        return cllm_error_set(err, CLLM_ERR_ARG, "preference data: max_tokens %d < 2", p->max_tokens);
    /* the JSONL walker every reader shares: line limit, nesting limit, syntax errors */
    walk_t w = {{name, 0, tok, tmpl, NULL}, p, out, 0};
    cllm_status st = cllm_jsonl_each(text, len, name, on_record, &w, err);
    if (st == CLLM_OK && out->n == 0)
        st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: no examples (empty file)", name);
    if (st) cllm_pref_data_free(out);
    return st;
}

cllm_status cllm_pref_data_load(const char *path, const cllm_tokenizer *tok, cllm_chat_template tmpl,
                                const cllm_pref_load_params *p, cllm_pref_data *out, cllm_error *err) {
    char *data = NULL;
    size_t len = 0;
    out->items = NULL;
    out->n = 0;
    cllm_status st = cllm_file_read_all(path, PREF_MAX_FILE, &data, &len, err);
    if (st) return st;
    st = cllm_pref_data_parse(data, len, path, tok, tmpl, p, out, err);
    free(data);
    return st;
}
