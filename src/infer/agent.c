/*
 * agent.c: the agent loop and the built-in tools (agent.h): the toolbox
 * file, the calculator, the shop's table lookup, and the loop that runs a
 * model, its calls and their results until it answers.
 *
 * Does not print, start processes or touch the network; tool results are
 * computed here from the arguments and the toolbox's table only.
 */
#include "cllm/infer/agent.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cllm/core/fileio.h"
#include "cllm/infer/generate.h"
#include "cllm/infer/grammar.h"
#include "cllm/infer/tools.h"

#define TOOLBOX_MAX_BYTES (64u << 20)
#define CALC_MAX_LEN 1024
#define CALC_MAX_DEPTH 64

/* ---- the calculator ------------------------------------------------------------ */

typedef struct {
    const char *s;
    size_t at;
    int depth;
    char why[96]; /* first error */
} calc;

static void calc_skip(calc *c) {
    while (c->s[c->at] == ' ' || c->s[c->at] == '\t') c->at++;
}

static double calc_fail(calc *c, const char *why) {
    if (!c->why[0]) snprintf(c->why, sizeof c->why, "%s", why);
    return NAN;
}

static double calc_sum(calc *c);

static double calc_atom(calc *c) {
    calc_skip(c);
    char ch = c->s[c->at];
    if (ch == '-' || ch == '+') {
        c->at++;
        double v = calc_atom(c);
        return ch == '-' ? -v : v;
    }
    if (ch == '(') {
        if (++c->depth > CALC_MAX_DEPTH) return calc_fail(c, "parentheses nested too deeply");
        c->at++;
        double v = calc_sum(c);
        calc_skip(c);
        if (c->s[c->at] != ')') return calc_fail(c, "a '(' is not closed");
        c->at++;
        c->depth--;
        return v;
    }
    if (isdigit((unsigned char)ch) || ch == '.') { /* digits and one point: no exponents, hex or inf */
        size_t used = 0;
        int points = 0, digits = 0;
        for (char d; (d = c->s[c->at + used]) && (isdigit((unsigned char)d) || (d == '.' && !points)); used++)
            points += d == '.', digits += d != '.';
        char buf[64];
        if (!digits || used >= sizeof buf) return calc_fail(c, "a number is malformed or too long");
        memcpy(buf, c->s + c->at, used);
        buf[used] = 0;
        c->at += used;
        return strtod(buf, NULL);
    }
    if (!ch) return calc_fail(c, "the expression ends early");
    char why[64];
    snprintf(why, sizeof why, "cannot read '%c' at character %zu", isprint((unsigned char)ch) ? ch : '?', c->at + 1);
    return calc_fail(c, why);
}

static double calc_product(calc *c) {
    double v = calc_atom(c);
    for (;;) {
        calc_skip(c);
        char op = c->s[c->at];
        if (op != '*' && op != '/' && op != '%') return v;
        c->at++;
        double r = calc_atom(c);
        if ((op == '/' || op == '%') && r == 0) return calc_fail(c, "division by zero");
        if (op == '*') v *= r;
        else if (op == '/') v /= r;
        else v = fmod(v, r);
    }
}

static double calc_sum(calc *c) {
    double v = calc_product(c);
    for (;;) {
        calc_skip(c);
        char op = c->s[c->at];
        if (op != '+' && op != '-') return v;
        c->at++;
        double r = calc_product(c);
        v = op == '+' ? v + r : v - r;
    }
}

cllm_status cllm_calculator(const char *expr, char *out, size_t cap, cllm_error *err) {
    if (strlen(expr) > CALC_MAX_LEN)
        return cllm_error_set(err, CLLM_ERR_ARG, "the expression is longer than %d characters", CALC_MAX_LEN);
    calc c = {.s = expr};
    double v = calc_sum(&c);
    calc_skip(&c);
    if (!c.why[0] && c.s[c.at] == ')') calc_fail(&c, "a ')' has no '('");
    if (!c.why[0] && c.s[c.at]) {
        char why[64];
        snprintf(why, sizeof why, "cannot read '%c' at character %zu", isprint((unsigned char)c.s[c.at]) ? c.s[c.at] : '?',
                 c.at + 1);
        calc_fail(&c, why);
    }
    if (c.why[0]) return cllm_error_set(err, CLLM_ERR_ARG, "%s", c.why);
    if (!isfinite(v)) return cllm_error_set(err, CLLM_ERR_ARG, "the result is too large");
    if (v == floor(v) && fabs(v) < 9007199254740992.0) { /* 2^53: integers are exact */
        snprintf(out, cap, "%.0f", v == 0 ? 0.0 : v);
    } else {
        snprintf(out, cap, "%.6f", v); /* six decimals, trailing zeros dropped */
        size_t n = strlen(out);
        while (n > 0 && out[n - 1] == '0') out[--n] = 0;
        if (n > 0 && out[n - 1] == '.') out[--n] = 0;
        if (!strcmp(out, "-0")) snprintf(out, cap, "0");
    }
    return CLLM_OK;
}

/* ---- the toolbox ------------------------------------------------------------------ */

typedef enum { TOOL_CALCULATOR = 0, TOOL_SHOP_ORDER, TOOL_SHOP_STOCK, TOOL_KIND_COUNT } tool_kind;
static const char *const kind_names[TOOL_KIND_COUNT] = {"calculator", "shop_order", "shop_stock"};

struct cllm_toolbox {
    cJSON *shown;              /* the definitions the model sees: type + function */
    tool_kind kind[CLLM_TOOLS_MAX];
    cJSON *table[CLLM_TOOLS_MAX]; /* shop_*: the parsed table */
};

void cllm_toolbox_free(cllm_toolbox *tb) {
    if (!tb) return;
    cJSON_Delete(tb->shown);
    for (int i = 0; i < CLLM_TOOLS_MAX; i++) cJSON_Delete(tb->table[i]);
    free(tb);
}

const cJSON *cllm_toolbox_tools(const cllm_toolbox *tb) { return tb->shown; }

/* The JSON in a file (*out NULL when it is not valid JSON). */
static cllm_status read_json(const char *path, cJSON **out, cllm_error *err) {
    char *data = NULL;
    size_t len = 0;
    *out = NULL;
    cllm_status st = cllm_file_read_all(path, TOOLBOX_MAX_BYTES, &data, &len, err);
    if (st == CLLM_OK) *out = cJSON_ParseWithLength(data, len);
    free(data);
    return st;
}

/* The shop's table: {"orders": {ID: {"item": s, "status": s}}, "stock": {ITEM: n >= 0}}. */
static cllm_status load_table(const char *path, cJSON **out, cllm_error *err) {
    cJSON *t;
    cllm_status st = read_json(path, &t, err);
    if (st != CLLM_OK) return st;
    const cJSON *orders = cJSON_GetObjectItemCaseSensitive(t, "orders");
    const cJSON *stock = cJSON_GetObjectItemCaseSensitive(t, "stock"), *x;
    const char *why = !t ? "is not valid JSON"
                     : !cJSON_IsObject(orders) ? "needs \"orders\": {ID: {\"item\": ..., \"status\": ...}}"
                     : !cJSON_IsObject(stock) ? "needs \"stock\": {ITEM: count}"
                                              : NULL;
    if (!why) cJSON_ArrayForEach(x, orders) {
            if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(x, "item")) ||
                !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(x, "status"))) {
                why = "has an order without string \"item\" and \"status\"";
                break;
            }
        }
    if (!why) cJSON_ArrayForEach(x, stock) {
            if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble != floor(x->valuedouble)) {
                why = "has a stock count that is not a whole number >= 0";
                break;
            }
        }
    if (why) {
        cJSON_Delete(t);
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: the shop table %s", path, why);
    }
    *out = t;
    return CLLM_OK;
}

/* path relative to the folder of `base` unless absolute; malloc'd. */
static char *relative_to(const char *base, const char *path) {
    const char *slash = strrchr(base, '/');
    if (path[0] == '/' || !slash) return strdup(path);
    size_t d = (size_t)(slash - base) + 1, n = strlen(path);
    char *p = malloc(d + n + 1);
    if (!p) return NULL;
    memcpy(p, base, d);
    memcpy(p + d, path, n + 1);
    return p;
}

cllm_status cllm_toolbox_load(const char *path, cllm_toolbox **out, cllm_error *err) {
    *out = NULL;
    cJSON *root;
    cllm_status st = read_json(path, &root, err);
    if (st != CLLM_OK) return st;
    cllm_toolbox *tb = calloc(1, sizeof *tb);
    if (!tb || !(tb->shown = cJSON_CreateArray())) st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    else if (!root) st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: not valid JSON", path);
    else if (!cJSON_IsArray(root) || cJSON_GetArraySize(root) == 0)
        st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: expected a non-empty JSON array of tool definitions", path);
    else if (cJSON_GetArraySize(root) > CLLM_TOOLS_MAX)
        st = cllm_error_set(err, CLLM_ERR_LIMIT, "%s: at most %d tools", path, CLLM_TOOLS_MAX);
    int i = 0;
    const cJSON *t;
    if (st == CLLM_OK) cJSON_ArrayForEach(t, root) {
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(t, "x-cllm-builtin");
            const cJSON *table = cJSON_GetObjectItemCaseSensitive(t, "x-cllm-table");
            int k = -1;
            for (int j = 0; cJSON_IsString(b) && j < TOOL_KIND_COUNT; j++)
                if (!strcmp(b->valuestring, kind_names[j])) k = j;
            if (k < 0) {
                st = cllm_error_set(err, CLLM_ERR_FORMAT,
                                    "%s: [%d].x-cllm-builtin %s%.40s%s is not a built-in tool (calculator, shop_order, "
                                    "shop_stock); cllm runs only its built-in tools",
                                    path, i, cJSON_IsString(b) ? "'" : "", cJSON_IsString(b) ? b->valuestring : "(missing)",
                                    cJSON_IsString(b) ? "'" : "");
                break;
            }
            tb->kind[i] = (tool_kind)k;
            if (k == TOOL_SHOP_ORDER || k == TOOL_SHOP_STOCK) {
                char *tp = cJSON_IsString(table) ? relative_to(path, table->valuestring) : NULL;
                if (!cJSON_IsString(table))
                    st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: [%d] (%s) needs \"x-cllm-table\": the shop's table "
                                        "file", path, i, kind_names[k]);
                else if (!tp) st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
                else st = load_table(tp, &tb->table[i], err);
                free(tp);
                if (st != CLLM_OK) break;
            }
            cJSON *shown = cJSON_CreateObject();
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(t, "type");
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
            if (!shown || !cJSON_AddItemToArray(tb->shown, shown)) {
                cJSON_Delete(shown);
                st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
                break;
            }
            if (type) cJSON_AddItemToObject(shown, "type", cJSON_Duplicate(type, 1));
            if (fn) cJSON_AddItemToObject(shown, "function", cJSON_Duplicate(fn, 1));
            i++;
        }
    cJSON_Delete(root);
    if (st == CLLM_OK) st = cllm_tools_check(tb->shown, path, err);
    if (st != CLLM_OK) {
        cllm_toolbox_free(tb);
        return st;
    }
    *out = tb;
    return CLLM_OK;
}

static char *result_printf(const char *fmt, const char *a, const char *b) {
    char *s = NULL;
    return asprintf(&s, fmt, a, b) < 0 ? NULL : s;
}

/* The shop's answer about one order or one item, as a JSON object. */
static char *shop_lookup(const cJSON *table, tool_kind kind, const char *key) {
    cJSON *r = cJSON_CreateObject();
    if (!r) return NULL;
    if (kind == TOOL_SHOP_ORDER) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(table, "orders"), key);
        cJSON_AddStringToObject(r, "order", key);
        if (o) {
            cJSON_AddStringToObject(r, "item", cJSON_GetObjectItemCaseSensitive(o, "item")->valuestring);
            cJSON_AddStringToObject(r, "status", cJSON_GetObjectItemCaseSensitive(o, "status")->valuestring);
        } else {
            cJSON_AddStringToObject(r, "error", "no such order");
        }
    } else {
        const cJSON *stock = cJSON_GetObjectItemCaseSensitive(table, "stock"), *s = NULL, *x;
        cJSON_ArrayForEach(x, stock) if (!strcasecmp(x->string, key)) s = x;
        cJSON_AddStringToObject(r, "item", key);
        if (s) cJSON_AddNumberToObject(r, "stock", s->valuedouble);
        else cJSON_AddStringToObject(r, "error", "the shop does not sell this");
    }
    char *text = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    return text;
}

/* The one argument each built-in takes. */
static const char *const kind_arg[TOOL_KIND_COUNT] = {"expression", "order", "item"};

char *cllm_toolbox_call(const cllm_toolbox *tb, const char *name, const char *arguments, int *ok) {
    *ok = 0;
    int i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, tb->shown) {
        if (!strcmp(cllm_tool_name(t), name)) break;
        i++;
    }
    if (!t) return result_printf("error: there is no tool named '%.64s'%s", name, "; call one of the declared tools");
    cJSON *args = cJSON_Parse(arguments);
    const tool_kind k = tb->kind[i];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, kind_arg[k]);
    char *result = NULL;
    if (!cJSON_IsObject(args) || !cJSON_IsString(v) || cJSON_GetArraySize(args) != 1) {
        result = result_printf("error: '%.64s' takes {\"%s\": \"...\"}", name, kind_arg[k]);
    } else if (k == TOOL_CALCULATOR) {
        char value[64];
        cllm_error err;
        *ok = 1;
        if (cllm_calculator(v->valuestring, value, sizeof value, &err) == CLLM_OK) result = strdup(value);
        else result = result_printf("error: %s%s", err.msg, "");
    } else {
        *ok = 1;
        result = shop_lookup(tb->table[i], k, v->valuestring);
    }
    cJSON_Delete(args);
    return result;
}

/* ---- the loop --------------------------------------------------------------------- */

cllm_agent_params cllm_agent_default_params(void) {
    cllm_agent_params p = {.max_steps = 4, .max_tokens = 256, .constrain = 1};
    p.sampler = cllm_sampler_default_params();
    p.sampler.temperature = 0;
    return p;
}

cllm_status cllm_agent_messages_view(const cJSON *messages, const char *where, cllm_chat_message **out, int *n,
                                     cllm_error *err) {
    int count = cJSON_GetArraySize(messages), i = 0;
    cllm_chat_message *m = calloc((size_t)count + 1, sizeof *m);
    if (!m) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    const cJSON *x;
    cJSON_ArrayForEach(x, messages) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(x, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(x, "content");
        int r = cJSON_IsString(role) ? cllm_chat_role_parse(role->valuestring) : -1;
        int calls = cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(x, "tool_calls"));
        if (r < 0 || !(cJSON_IsString(content) || (r == CLLM_ROLE_ASSISTANT && calls && (!content || cJSON_IsNull(content))))) {
            free(m);
            return cllm_error_set(err, CLLM_ERR_FORMAT,
                                  "%s[%d] needs \"role\" (system, user, assistant or tool) and a string \"content\" "
                                  "(an assistant's may be null when it has \"tool_calls\")",
                                  where, i);
        }
        m[i] = (cllm_chat_message){(cllm_chat_role)r, cJSON_IsString(content) ? content->valuestring : "",
                                   cJSON_IsString(content) ? strlen(content->valuestring) : 0, x};
        i++;
    }
    *out = m;
    *n = count;
    return CLLM_OK;
}

typedef struct {
    char *text;
    size_t len, cap;
    int oom, stop;
    cllm_agent_callback cb;
    void *ctx;
} turn_text;

static int on_token(void *ctxp, const cllm_generate_event *ev) {
    turn_text *t = ctxp;
    if (t->len + ev->len + 1 > t->cap) {
        size_t cap = (t->len + ev->len + 1) * 2;
        char *p = realloc(t->text, cap);
        if (!p) return t->oom = 1;
        t->text = p, t->cap = cap;
    }
    memcpy(t->text + t->len, ev->text, ev->len);
    t->len += ev->len;
    t->text[t->len] = 0;
    cllm_agent_event e = {CLLM_AGENT_TEXT, ev->text, ev->len, NULL};
    if (t->cb && ev->len && t->cb(t->ctx, &e)) t->stop = 1;
    return t->stop;
}

static char *trimmed(const char *s) {
    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
    return strndup(s, n);
}

struct cllm_agent {
    const cllm_tokenizer *tok;   /* borrowed */
    cllm_chat_template tmpl;
    const cllm_toolbox *tb;      /* borrowed */
    cllm_generate_params ends;   /* the template's end-of-turn tokens and text stop */
    cllm_grammar *grammar;       /* the tools' auto grammar (calls, or text not opening with '<') */
    cllm_grammar_vocab *vocab;   /* its vocabulary trie */
};

/* One model turn: its text collects in t->text (malloc'd); when the
 * conversation no longer fits the context nothing is generated and
 * stats->over_context is set. */
static cllm_status model_turn(const cllm_agent *a, cllm_model *m, int context, const cllm_agent_params *p,
                              cJSON *messages, turn_text *t, cllm_agent_stats *stats, cllm_error *err) {
    const cllm_tokenizer *tok = a->tok;
    cllm_chat_message *cm = NULL;
    int n = 0;
    cllm_tokens ids = {0};
    cllm_status st = cllm_agent_messages_view(messages, "messages", &cm, &n, err);
    if (st == CLLM_OK)
        st = cllm_chat_render_tools(tok, a->tmpl, cm, n, CLLM_CHAT_GENERATE, cllm_agent_tools(a), &ids, NULL, err);
    free(cm);
    if (st != CLLM_OK) return st;
    if ((int)ids.n + 1 >= context) {
        stats->over_context = 1;
        cllm_tokens_free(&ids);
        return CLLM_OK;
    }
    cllm_generate_params gp = a->ends;
    gp.max_tokens = p->max_tokens < context - (int)ids.n - 1 ? p->max_tokens : context - (int)ids.n - 1;
    cllm_sampler *s = cllm_sampler_create(&p->sampler, (int)cllm_tokenizer_n_vocab(tok), err);
    if (!s) st = err->status ? err->status : CLLM_ERR_NOMEM;
    if (st == CLLM_OK) st = cllm_sampler_exclude_unused(s, tok, err);
    if (st == CLLM_OK && p->constrain) st = cllm_sampler_set_grammar(s, a->grammar, a->vocab, err);
    cllm_generate_result res;
    if (st == CLLM_OK) st = cllm_generate(m, 0, tok, s, ids.ids, (int)ids.n, &gp, on_token, t, &res, err);
    cllm_sampler_destroy(s);
    cllm_tokens_free(&ids);
    if (st == CLLM_OK && t->oom) st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    if (st == CLLM_OK) stats->steps++;
    return st;
}

/* Appends {"role": role, "content": content} (content NULL: JSON null); returns the message. */
static cJSON *add_message(cJSON *messages, const char *role, const char *content) {
    cJSON *msg = cJSON_CreateObject();
    if (!msg || !cJSON_AddItemToArray(messages, msg)) {
        cJSON_Delete(msg);
        return NULL;
    }
    cJSON_AddStringToObject(msg, "role", role);
    if (content) cJSON_AddStringToObject(msg, "content", content);
    else cJSON_AddNullToObject(msg, "content");
    return msg;
}

static int emit(const turn_text *t, cllm_agent_event_kind kind, const char *name, const char *text) {
    cllm_agent_event e = {kind, text, text ? strlen(text) : 0, name};
    return t->cb ? t->cb(t->ctx, &e) : 0;
}

cllm_status cllm_agent_create(const cllm_tokenizer *tok, cllm_chat_template tmpl, const cllm_toolbox *tb,
                              cllm_agent **out, cllm_error *err) {
    cllm_agent *a = calloc(1, sizeof *a);
    if (!(*out = a)) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    a->tok = tok, a->tmpl = tmpl, a->tb = tb;
    a->ends = cllm_generate_default_params();
    cllm_generate_chat_ends(&a->ends, tok, tmpl);
    cllm_status st = cllm_tools_grammar(cllm_toolbox_tools(tb), NULL, 1, CLLM_TOOLS_AUTO, &a->grammar, err);
    if (st == CLLM_OK && !(a->vocab = cllm_grammar_vocab_from_tokenizer(tok, a->ends.eog, a->ends.n_eog, err)))
        st = err->status;
    if (st != CLLM_OK) {
        cllm_agent_destroy(a);
        *out = NULL;
    }
    return st;
}

void cllm_agent_destroy(cllm_agent *a) {
    if (!a) return;
    cllm_grammar_vocab_destroy(a->vocab);
    cllm_grammar_destroy(a->grammar);
    free(a);
}

const cJSON *cllm_agent_tools(const cllm_agent *a) { return cllm_toolbox_tools(a->tb); }

cllm_status cllm_agent_run(const cllm_agent *a, cllm_model *m, int context, const cllm_agent_params *p,
                           cJSON *messages, cllm_agent_callback cb, void *ctx, cllm_agent_stats *stats,
                           cllm_error *err) {
    memset(stats, 0, sizeof *stats);
    if (p->max_steps < 1 || p->max_tokens < 1)
        return cllm_error_set(err, CLLM_ERR_ARG, "agent: max_steps and max_tokens must be at least 1");
    const cJSON *tools = cllm_agent_tools(a);
    cllm_status st = CLLM_OK;
    for (int step = 0; st == CLLM_OK && step < p->max_steps; step++) {
        turn_text t = {.cb = cb, .ctx = ctx};
        st = model_turn(a, m, context, p, messages, &t, stats, err);
        if (st != CLLM_OK || stats->over_context) {
            free(t.text);
            break;
        }
        char *text = trimmed(t.text ? t.text : ""), *content = NULL, prefix[32];
        free(t.text);
        if (!text) {
            st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
            break;
        }
        snprintf(prefix, sizeof prefix, "call_%d", step);
        int invalid = 0;
        cJSON *calls = t.stop ? NULL : cllm_tools_extract(tools, text, 1, prefix, &content, &invalid);
        stats->invalid_calls += invalid;
        cJSON *msg = add_message(messages, "assistant", calls ? content : text);
        free(content);
        free(text);
        if (!msg) {
            cJSON_Delete(calls);
            st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
            break;
        }
        if (calls) cJSON_AddItemToObject(msg, "tool_calls", calls);
        if (emit(&t, CLLM_AGENT_TURN_END, NULL, NULL) || t.stop) {
            stats->cancelled = 1;
            break;
        }
        if (!calls) break;
        const cJSON *c;
        cJSON_ArrayForEach(c, calls) {
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(c, "function");
            const char *name = cJSON_GetObjectItemCaseSensitive(fn, "name")->valuestring;
            const char *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments")->valuestring;
            if (emit(&t, CLLM_AGENT_CALL, name, args)) stats->cancelled = 1;
            int ok = 0;
            char *result = stats->cancelled ? NULL : cllm_toolbox_call(a->tb, name, args, &ok);
            if (stats->cancelled) break;
            cJSON *r = result ? add_message(messages, "tool", result) : NULL;
            if (!r) {
                free(result);
                st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
                break;
            }
            cJSON_AddStringToObject(r, "tool_call_id", cJSON_GetObjectItemCaseSensitive(c, "id")->valuestring);
            cJSON_AddStringToObject(r, "name", name);
            stats->calls += ok;
            stats->refused_calls += !ok;
            if (emit(&t, CLLM_AGENT_RESULT, name, result)) stats->cancelled = 1;
            free(result);
        }
        if (stats->cancelled) break;
        if (step == p->max_steps - 1) stats->out_of_steps = 1;
    }
    return st;
}
