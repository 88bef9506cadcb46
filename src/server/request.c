/*
 * request.c: OpenAI-compatible request bodies -> validated srv_request
 * (chat and text completions, embeddings), and the small JSON field readers
 * the other routes share.
 *
 * Parsing validates every field it uses and answers 400 naming the field
 * (OpenAI's error shape). Which fields each route knows is one table
 * (fields[] below): used, accepted-and-ignored (user, metadata,
 * cache_prompt), or not implemented (functions/function_call,
 * echo, suffix, best_of > 1, store, dimensions:
 * a 400 unless the field holds its "off" value). Any other field is a 400.
 * Accepted fields and ranges:
 *   messages (chat; roles system|developer|user|assistant|tool, content a
 *   string, an array of {"type":"text","text"} parts, or null; a message's
 *   other fields, such as tool_calls, tool_call_id and name, are given to
 *   Jinja templates as they are), add_generation_prompt (default true) and
 *   continue_final_message (assistant prefill: the last message, an
 *   assistant's, is left open and generation continues it; a 400 with
 *   add_generation_prompt true or another role last), as llama.cpp and
 *   vLLM read them; /apply-template also takes tools (a list given to the
 *   template); chat completions take tools, tool_choice and
 *   parallel_tool_calls (tools.c: the prompt format, a grammar for required
 *   calls, tool_calls parsed from the reply),
 *   prompt (completions:
 *   a string, may contain special tokens, or an array of token ids),
 *   max_tokens / max_completion_tokens / n_predict (integer in [1, 2^53];
 *   larger than the room left in the context is capped to it, finish_reason
 *   "length"; absent: --n-predict, else chat to the end of the context and
 *   completions 16), temperature [0,2], top_p [0,1] (0 = greedy), top_k >= 0,
 *   min_p [0,1), presence_penalty / frequency_penalty [-2,2], repeat_penalty
 *   [0.01,100], seed (integer in [-2^63, 2^64)), n [1, max_n], stop (string
 *   or array of at most 16 strings of at most 256 bytes; empty strings
 *   ignored), logprobs (chat: boolean, with top_logprobs [0,20];
 *   completions: integer [0,20]; /completion: n_probs), logit_bias
 *   ({"token id": bias} or [[id or string, bias], ...], bias in [-100,100]
 *   or false to ban, ids in [0,V), at most 1024 entries), stream,
 *   stream_options.include_usage, and one output constraint: response_format
 *   (text, json_object, json_schema), grammar (GBNF) or json_schema
 *   (docs/GRAMMAR.md; parse_constraint). Every number is range-checked as a
 *   double before any integer cast. A prompt that does not leave room for
 *   one new token is refused with both token counts (code
 *   context_length_exceeded).
 *
 * Not here: building responses (render.c), which URL goes where (routes.c),
 * sockets and limits (http.c), scheduling (scheduler.c).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cllm/core/hash.h"
#include "cllm/infer/chat_template.h"
#include "server_internal.h"

#define MAX_TOP 20
#define MAX_EMBED_INPUTS 64
#define BAD(param, ...) srv_error(400, "invalid_request_error", param, NULL, __VA_ARGS__)

srv_reply srv_parse_root(const char *body, size_t len, cJSON **out) {
    *out = NULL;
    if (len == 0) return BAD(NULL, "the request body is empty; expected a JSON object");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!root) {
        size_t off = end && end >= body ? (size_t)(end - body) : 0;
        return BAD(NULL, "malformed JSON at byte %zu", off);
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return BAD(NULL, "the request body must be a JSON object");
    }
    *out = root;
    return (srv_reply){0, NULL, NULL};
}

/* Optional number field in [lo, hi]; absent or null leaves *out. */
static int opt_num(cJSON *root, const char *key, double lo, double hi, double *out, srv_reply *e) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v)) {
        *e = BAD(key, "'%s' must be a number", key);
        return -1;
    }
    double d = v->valuedouble;
    if (!isfinite(d) || d < lo || d > hi) {
        *e = BAD(key, "'%s' must be in [%g, %g], got %g", key, lo, hi, d);
        return -1;
    }
    *out = d;
    return 0;
}

/* The largest integer a double holds exactly (2^53): integer fields are
 * range-checked against bounds inside +-MAX_EXACT before any cast, so a
 * value such as 1e20 is a 400, never an undefined double -> int64 cast. */
#define MAX_EXACT 9007199254740992.0

/* Optional integer field in [lo, hi] (|lo|, |hi| <= MAX_EXACT); absent or
 * null leaves *out. */
static int opt_int(cJSON *root, const char *key, double lo, double hi, int64_t *out, srv_reply *e) {
    CLLM_ASSERT(lo >= -MAX_EXACT && hi <= MAX_EXACT);
    cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble)) {
        *e = BAD(key, "'%s' must be an integer", key);
        return -1;
    }
    double d = v->valuedouble;
    if (d < lo || d > hi) {
        *e = BAD(key, "'%s' must be in [%.0f, %.0f], got %g", key, lo, hi, d);
        return -1;
    }
    *out = (int64_t)d;
    return 0;
}

/* seed: an integer in [-2^63, 2^64); negative values wrap as int64 does. */
static int opt_seed(cJSON *root, uint64_t *out, srv_reply *e) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "seed");
    if (!v || cJSON_IsNull(v)) return 0;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!isfinite(d) || d != floor(d) || d < -9223372036854775808.0 || d >= 18446744073709551616.0) {
        *e = BAD("seed", "'seed' must be an integer in [-2^63, 2^64)");
        return -1;
    }
    *out = d < 0 ? (uint64_t)(int64_t)d : (uint64_t)d;
    return 0;
}

int srv_opt_bool(cJSON *root, const char *key, int *out, srv_reply *e) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsBool(v)) {
        *e = BAD(key, "'%s' must be a boolean", key);
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

static int valid_utf8(const char *s, size_t n) {
    char tmp[CLLM_STOP_MAX_LEN * 3 + 8];
    if (n > CLLM_STOP_MAX_LEN) return 0;
    cllm_utf8_stream st = {0};
    size_t k = cllm_utf8_stream_feed(&st, (const uint8_t *)s, n, tmp);
    return st.n_pending == 0 && k == n && memcmp(tmp, s, n) == 0;
}

static int add_stop(srv_request *r, const char *str, srv_reply *e) {
    size_t n = strlen(str);
    if (n == 0) return 0; /* ignored: would match everywhere */
    if (r->n_stop >= CLLM_STOP_MAX) {
        *e = BAD("stop", "'stop' holds at most %d strings", CLLM_STOP_MAX - 1);
        return -1;
    }
    if (n > CLLM_STOP_MAX_LEN || !valid_utf8(str, n)) {
        *e = BAD("stop", "each 'stop' string must be valid UTF-8 of at most %d bytes", CLLM_STOP_MAX_LEN);
        return -1;
    }
    r->stops[r->n_stop] = strdup(str);
    if (!r->stops[r->n_stop]) {
        *e = srv_error(500, "server_error", NULL, NULL, "out of memory");
        return -1;
    }
    r->n_stop++;
    return 0;
}

static int parse_stop(cJSON *root, srv_request *r, srv_reply *e) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "stop");
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsString(v)) return add_stop(r, v->valuestring, e);
    if (!cJSON_IsArray(v)) {
        *e = BAD("stop", "'stop' must be a string or an array of strings");
        return -1;
    }
    if (cJSON_GetArraySize(v) > CLLM_STOP_MAX - 1) {
        *e = BAD("stop", "'stop' holds at most %d strings, got %d", CLLM_STOP_MAX - 1, cJSON_GetArraySize(v));
        return -1;
    }
    cJSON *it;
    cJSON_ArrayForEach(it, v) {
        if (!cJSON_IsString(it)) {
            *e = BAD("stop", "'stop' must be a string or an array of strings");
            return -1;
        }
        if (add_stop(r, it->valuestring, e)) return -1;
    }
    return 0;
}

static int add_bias(cllm_sampler_params *sp, double id, const cJSON *val, int V, srv_reply *e) {
    if (!(id >= 0 && id < V)) {
        *e = BAD("logit_bias", "'logit_bias' names token %.0f, not a token id in [0, %d)", id, V);
        return -1;
    }
    double b;
    if (cJSON_IsFalse(val)) b = -INFINITY; /* llama.cpp: false bans the token */
    else if (cJSON_IsNumber(val) && isfinite(val->valuedouble) && fabs(val->valuedouble) <= 100) b = val->valuedouble;
    else {
        *e = BAD("logit_bias", "'logit_bias' values must be numbers in [-100, 100] (or false to ban)");
        return -1;
    }
    if (sp->n_bias >= CLLM_SAMPLER_MAX_BIAS) {
        *e = BAD("logit_bias", "'logit_bias' holds at most %d entries", CLLM_SAMPLER_MAX_BIAS);
        return -1;
    }
    sp->bias[sp->n_bias].token = (int32_t)id;
    sp->bias[sp->n_bias].bias = (float)b;
    sp->n_bias++;
    return 0;
}

/* logit_bias in OpenAI's form {"id": bias} (keys are decimal token ids), or
 * llama.cpp's array form [[id, bias], ...] where id may also be a string
 * whose tokens all get the bias. */
static int parse_logit_bias(cllm_server *s, cJSON *root, cllm_sampler_params *sp, srv_reply *e) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "logit_bias");
    if (!v || cJSON_IsNull(v)) return 0;
    cJSON *it;
    if (cJSON_IsArray(v)) {
        cJSON_ArrayForEach(it, v) {
            cJSON *k = cJSON_GetArrayItem(it, 0), *b = cJSON_GetArrayItem(it, 1);
            if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 2 || !(cJSON_IsNumber(k) || cJSON_IsString(k))) {
                *e = BAD("logit_bias", "'logit_bias' as an array holds [token id or string, bias] pairs");
                return -1;
            }
            if (cJSON_IsNumber(k)) {
                if (k->valuedouble != floor(k->valuedouble)) {
                    *e = BAD("logit_bias", "'logit_bias' token ids must be integers");
                    return -1;
                }
                if (add_bias(sp, k->valuedouble, b, s->V, e)) return -1;
                continue;
            }
            cllm_tokens toks = {0};
            cllm_error err;
            if (cllm_tokenizer_encode(s->tok, k->valuestring, strlen(k->valuestring), NULL, &toks, &err) != CLLM_OK) {
                *e = BAD("logit_bias", "%s", err.msg);
                return -1;
            }
            for (size_t i = 0; i < toks.n; i++)
                if (add_bias(sp, toks.ids[i], b, s->V, e)) {
                    cllm_tokens_free(&toks);
                    return -1;
                }
            cllm_tokens_free(&toks);
        }
        return 0;
    }
    if (!cJSON_IsObject(v)) {
        *e = BAD("logit_bias", "'logit_bias' must be an object mapping token ids to numbers, or [[id, bias], ...]");
        return -1;
    }
    cJSON_ArrayForEach(it, v) {
        char *endp = NULL;
        long long id = strtoll(it->string, &endp, 10);
        if (!it->string[0] || *endp || id < 0 || id >= s->V) {
            *e = BAD("logit_bias", "'logit_bias' key '%.40s' is not a token id in [0, %d)", it->string, s->V);
            return -1;
        }
        if (add_bias(sp, (double)id, it, s->V, e)) return -1;
    }
    return 0;
}

/* Chat messages -> prompt ids through the template; assistant tool calls,
 * and a request's tools (r may be NULL), in the built-in templates' ChatML
 * tool format (tools.c). */
static int render_messages(cllm_server *s, cJSON *root, const srv_request *r, cllm_tokens *toks, srv_reply *e) {
    cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!msgs) {
        *e = BAD("messages", "'messages' is required");
        return -1;
    }
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
        *e = BAD("messages", "'messages' must be a non-empty array");
        return -1;
    }
    int n = cJSON_GetArraySize(msgs), rc = -1, n_owned = n;
    cllm_chat_message *cm = calloc((size_t)n, sizeof *cm);
    char **owned = calloc((size_t)n_owned, sizeof *owned); /* contents joined from text parts */
    char param[64];
    if (!cm || !owned) {
        *e = srv_error(500, "server_error", NULL, NULL, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        cJSON *m = cJSON_GetArrayItem(msgs, i);
        snprintf(param, sizeof param, "messages[%d]", i);
        if (!cJSON_IsObject(m)) {
            *e = BAD(param, "'%s' must be an object", param);
            goto done;
        }
        cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        snprintf(param, sizeof param, "messages[%d].role", i);
        if (!cJSON_IsString(role)) {
            *e = BAD(param, "'%s' is required and must be a string", param);
            goto done;
        }
        int rk = strcmp(role->valuestring, "developer") == 0 ? CLLM_ROLE_SYSTEM : cllm_chat_role_parse(role->valuestring);
        if (rk < 0) {
            *e = BAD(param, "'%s' is '%.40s'; expected system, developer, user, assistant or tool", param,
                     role->valuestring);
            goto done;
        }
        cm[i].role = (cllm_chat_role)rk;
        cm[i].extra = m; /* tool_calls, tool_call_id, name: for Jinja templates */
        cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        snprintf(param, sizeof param, "messages[%d].content", i);
        if (cJSON_IsString(content)) {
            cm[i].content = content->valuestring;
            cm[i].len = strlen(content->valuestring);
        } else if ((cJSON_IsNull(content) || !content) && rk == CLLM_ROLE_ASSISTANT) {
            cm[i].content = "";
        } else if (cJSON_IsArray(content)) {
            srv_buf b = {0};
            cJSON *part;
            cJSON_ArrayForEach(part, content) {
                cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
                cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
                if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") != 0 || !cJSON_IsString(text)) {
                    srv_buf_free(&b);
                    *e = BAD(param, "'%s' parts must be {\"type\": \"text\", \"text\": string}", param);
                    goto done;
                }
                srv_buf_append(&b, text->valuestring, strlen(text->valuestring));
            }
            srv_buf_append(&b, "", 0);
            owned[i] = b.data;
            cm[i].content = b.data ? b.data : "";
            cm[i].len = b.len;
        } else {
            *e = BAD(param, "'%s' must be a string or an array of text parts", param);
            goto done;
        }
    }
    int generate = 1, cont = 0;
    if (srv_opt_bool(root, "add_generation_prompt", &generate, e) ||
        srv_opt_bool(root, "continue_final_message", &cont, e))
        goto done;
    if (cont && generate && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "add_generation_prompt"))) {
        *e = BAD("continue_final_message", "'continue_final_message' and 'add_generation_prompt' cannot both be true");
        goto done;
    }
    if (cont && cm[n - 1].role != CLLM_ROLE_ASSISTANT) {
        *e = BAD("continue_final_message", "'continue_final_message' needs the last message to be the assistant's");
        goto done;
    }
    cJSON *tools = cJSON_GetObjectItemCaseSensitive(root, "tools");
    if (tools && !cJSON_IsNull(tools) && !cJSON_IsArray(tools)) {
        *e = BAD("tools", "'tools' must be an array");
        goto done;
    }
    int mode = cont ? CLLM_CHAT_CONTINUE : generate ? CLLM_CHAT_GENERATE : CLLM_CHAT_END;
    /* A Jinja template gets the tools as sent; the built-in ones show them unless tool_choice is "none" */
    if (s->tmpl.kind != CLLM_CHAT_TEMPLATE_JINJA) tools = r && r->tool_mode != SRV_TOOLS_OFF ? r->tools : NULL;
    cllm_error err;
    if (cllm_chat_render_tools(s->tok, s->tmpl, cm, n, mode, tools, toks, NULL, &err) != CLLM_OK) {
        *e = BAD("messages", "%s", err.msg);
        goto done;
    }
    rc = 0;
done:
    for (int i = 0; owned && i < n_owned; i++) free(owned[i]);
    free(owned);
    free(cm);
    return rc;
}

/* Completion prompt: a string (specials allowed) or an array of ids. */
static int parse_prompt(cllm_server *s, cJSON *root, cllm_tokens *toks, srv_reply *e) {
    cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "prompt");
    if (!p) {
        *e = BAD("prompt", "'prompt' is required");
        return -1;
    }
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 && cJSON_IsString(cJSON_GetArrayItem(p, 0)))
        p = cJSON_GetArrayItem(p, 0);
    if (cJSON_IsString(p)) {
        cllm_special_set all = {1, NULL, 0};
        cllm_error err;
        if (cllm_tokenizer_encode(s->tok, p->valuestring, strlen(p->valuestring), &all, toks, &err) != CLLM_OK) {
            *e = BAD("prompt", "%s", err.msg);
            return -1;
        }
        return 0;
    }
    if (cJSON_IsArray(p)) {
        cJSON *it;
        int i = 0;
        cJSON_ArrayForEach(it, p) {
            if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) || it->valuedouble < 0 ||
                it->valuedouble >= s->V) {
                *e = BAD("prompt", "'prompt[%d]' must be a token id in [0, %d)", i, s->V);
                return -1;
            }
            if (cllm_tokens_push(toks, (uint32_t)it->valuedouble, NULL) != CLLM_OK) {
                *e = srv_error(500, "server_error", NULL, NULL, "out of memory");
                return -1;
            }
            i++;
        }
        return 0;
    }
    *e = BAD("prompt", "'prompt' must be a string or an array of token ids");
    return -1;
}

/* ---- the fields each route knows -----------------------------------------
 * One table for every request field. USED fields are read and validated by
 * the parsers below. IGNORED fields are accepted deliberately (type-checked)
 * and have no effect, for the reason given. DEFAULT_ONLY fields are features
 * cllm does not implement: the request is accepted only when the field is
 * null or holds the value that means "feature off", so a client asking for
 * one (the old functions API, say) gets a 400 naming the field instead of a
 * silent 200. A field in no row (or in a row for another route) is a 400. */
enum { K_CHAT = 1, K_CMPL = 2, K_EMBED = 4, K_NATIVE = 8, K_GEN = K_CHAT | K_CMPL | K_NATIVE };
typedef enum { F_USED, F_IGNORED, F_DEFAULT_ONLY } field_how;
typedef struct {
    const char *name;
    unsigned kinds;
    field_how how;
    const char *arg; /* IGNORED: the JSON type accepted; DEFAULT_ONLY: the JSON of the one accepted value (NULL: none) */
} srv_field;

static const srv_field fields[] = {
    {"model", K_GEN | K_EMBED, F_USED, NULL},
    {"messages", K_CHAT, F_USED, NULL},
    {"prompt", K_CMPL | K_NATIVE, F_USED, NULL},
    {"max_tokens", K_GEN, F_USED, NULL},
    {"max_completion_tokens", K_CHAT, F_USED, NULL},
    {"n_predict", K_NATIVE, F_USED, NULL},
    {"temperature", K_GEN, F_USED, NULL},
    {"top_p", K_GEN, F_USED, NULL},
    {"top_k", K_GEN, F_USED, NULL},
    {"min_p", K_GEN, F_USED, NULL},
    {"presence_penalty", K_GEN, F_USED, NULL},
    {"frequency_penalty", K_GEN, F_USED, NULL},
    {"repeat_penalty", K_GEN, F_USED, NULL},
    {"seed", K_GEN, F_USED, NULL},
    {"n", K_CHAT | K_CMPL, F_USED, NULL},
    {"stop", K_GEN, F_USED, NULL},
    {"logprobs", K_CHAT | K_CMPL, F_USED, NULL},
    {"top_logprobs", K_CHAT, F_USED, NULL},
    {"n_probs", K_NATIVE, F_USED, NULL},
    {"logit_bias", K_GEN, F_USED, NULL},
    {"stream", K_GEN, F_USED, NULL},
    {"stream_options", K_CHAT | K_CMPL, F_USED, NULL},
    {"input", K_EMBED, F_USED, NULL},
    {"content", K_EMBED, F_USED, NULL}, /* llama.cpp's /embedding */
    {"encoding_format", K_EMBED, F_USED, NULL},
    {"add_generation_prompt", K_CHAT, F_USED, NULL},
    {"continue_final_message", K_CHAT, F_USED, NULL}, /* assistant prefill */
    {"response_format", K_GEN, F_USED, NULL},          /* OpenAI's JSON mode and structured output */
    {"grammar", K_GEN, F_USED, NULL},                  /* llama.cpp's GBNF field */
    {"json_schema", K_GEN, F_USED, NULL},              /* llama.cpp's schema field */
    {"tools", K_CHAT, F_USED, NULL},                   /* tool calling (tools.c) */
    {"tool_choice", K_CHAT, F_USED, NULL},
    {"parallel_tool_calls", K_CHAT, F_USED, NULL},
    /* accepted, no effect */
    {"user", K_GEN | K_EMBED, F_IGNORED, "string"},              /* no per-user accounting */
    {"metadata", K_CHAT | K_CMPL, F_IGNORED, "object"},          /* nothing is stored */
    {"cache_prompt", K_NATIVE, F_IGNORED, "boolean"},            /* prefix reuse is always on */
    /* not implemented: only the "off" value */
    {"store", K_CHAT | K_CMPL, F_DEFAULT_ONLY, "false"},
    {"echo", K_CMPL, F_DEFAULT_ONLY, "false"},
    {"suffix", K_CMPL, F_DEFAULT_ONLY, "\"\""},
    {"best_of", K_CMPL, F_DEFAULT_ONLY, "1"},
    {"functions", K_CHAT, F_DEFAULT_ONLY, "[]"},
    {"function_call", K_CHAT, F_DEFAULT_ONLY, "\"none\""},
    {"dimensions", K_EMBED, F_DEFAULT_ONLY, NULL},
};

/* 0 when every field of root is known for this route and acceptable. */
static int check_fields(cJSON *root, unsigned kind, srv_reply *e) {
    const cJSON *it;
    cJSON_ArrayForEach(it, root) {
        const srv_field *f = NULL;
        for (size_t i = 0; i < sizeof fields / sizeof fields[0] && !f; i++)
            if (strcmp(fields[i].name, it->string) == 0 && (fields[i].kinds & kind)) f = &fields[i];
        if (!f) {
            *e = BAD(it->string, "unknown field '%.64s': this server does not implement it", it->string);
            return -1;
        }
        if (f->how == F_USED || cJSON_IsNull(it)) continue;
        if (f->how == F_IGNORED) {
            int ok = !strcmp(f->arg, "string") ? cJSON_IsString(it)
                     : !strcmp(f->arg, "object") ? cJSON_IsObject(it)
                                                 : cJSON_IsBool(it);
            if (!ok) {
                *e = BAD(f->name, "'%s' must be a %s", f->name, f->arg);
                return -1;
            }
            continue;
        }
        cJSON *def = f->arg ? cJSON_Parse(f->arg) : NULL;
        int same = def && cJSON_Compare(it, def, 1);
        cJSON_Delete(def);
        if (!same) {
            *e = BAD(f->name, "'%s' is not supported by this server%s%s", f->name, f->arg ? "; it accepts only " : "",
                     f->arg ? f->arg : "");
            return -1;
        }
    }
    return 0;
}

/* The body's JSON object and a new request of that kind (refs 1, the
 * connection's). On failure *r is NULL and the reply is the error. */
static srv_reply begin_request(const char *body, size_t len, srv_kind kind, int native, cJSON **root,
                               srv_request **r) {
    *r = NULL;
    srv_reply e = srv_parse_root(body, len, root);
    if (!*root) return e;
    unsigned kbit = kind == SRV_EMBED ? K_EMBED : native ? K_NATIVE : kind == SRV_CHAT ? K_CHAT : K_CMPL;
    if (check_fields(*root, kbit, &e)) {
        cJSON_Delete(*root);
        *root = NULL;
        return e;
    }
    *r = calloc(1, sizeof **r);
    if (!*r) {
        cJSON_Delete(*root);
        *root = NULL;
        return srv_error(500, "server_error", NULL, NULL, "out of memory");
    }
    (*r)->refs = 1;
    (*r)->fd = -1;
    (*r)->kind = kind;
    return (srv_reply){0, NULL, NULL};
}

/* The output constraint: OpenAI's response_format ({"type": "text" |
 * "json_object" | "json_schema", "json_schema": {"name", "schema"}}), or
 * llama.cpp's "grammar" (GBNF text) and "json_schema" (a schema object); at
 * most one of them. Fills r->grammar (NULL for none); a bad schema or
 * grammar is a 400 naming the field, with the converter's or parser's
 * message (keyword and path, or line:column). Returns 0 or -1. */
static int parse_constraint(cJSON *root, srv_request *r, srv_reply *e) {
    static const char *const keys[3] = {"response_format", "grammar", "json_schema"};
    cJSON *v[3];
    int given = 0;
    for (int k = 0; k < 3; k++) {
        v[k] = cJSON_GetObjectItemCaseSensitive(root, keys[k]);
        if (cJSON_IsNull(v[k])) v[k] = NULL;
        if (v[k] && given++) {
            *e = BAD(keys[k], "give only one of 'response_format', 'grammar' and 'json_schema'");
            return -1;
        }
    }
    const char *field = NULL, *text = NULL;
    const cJSON *schema = NULL;
    if (v[0]) {
        field = "response_format";
        cJSON *type = cJSON_IsObject(v[0]) ? cJSON_GetObjectItemCaseSensitive(v[0], "type") : NULL;
        const char *t = cJSON_IsString(type) ? type->valuestring : "";
        if (!strcmp(t, "text")) return 0;
        if (!strcmp(t, "json_object")) {
            schema = cJSON_GetObjectItemCaseSensitive(v[0], "schema"); /* llama.cpp's extension */
            if (cJSON_IsNull(schema)) schema = NULL;
            if (!schema) text = cllm_grammar_json_object_text();
            field = "response_format.schema";
        } else if (!strcmp(t, "json_schema")) {
            cJSON *js = cJSON_GetObjectItemCaseSensitive(v[0], "json_schema");
            cJSON *name = cJSON_IsObject(js) ? cJSON_GetObjectItemCaseSensitive(js, "name") : NULL;
            schema = cJSON_IsObject(js) ? cJSON_GetObjectItemCaseSensitive(js, "schema") : NULL;
            if (!cJSON_IsObject(js) || (name && !cJSON_IsString(name)) || !cJSON_IsObject(schema)) {
                *e = BAD("response_format", "'response_format' of type json_schema needs \"json_schema\": "
                                            "{\"name\": string, \"schema\": object}");
                return -1;
            }
            field = "response_format.json_schema.schema";
        } else {
            *e = BAD("response_format", "'response_format' must be an object whose 'type' is \"text\", "
                                        "\"json_object\" or \"json_schema\"");
            return -1;
        }
    } else if (v[1]) {
        field = "grammar";
        if (!cJSON_IsString(v[1])) {
            *e = BAD("grammar", "'grammar' must be a string of GBNF rules");
            return -1;
        }
        if (!v[1]->valuestring[0]) return 0; /* llama.cpp's "no grammar" */
        text = v[1]->valuestring;
    } else if (v[2]) {
        field = "json_schema";
        schema = v[2];
    } else {
        return 0;
    }
    cllm_error err;
    char *gbnf = NULL, *schema_text = NULL;
    cllm_status st = CLLM_OK;
    if (schema) {
        if (!(schema_text = cJSON_PrintUnformatted(schema))) st = cllm_error_set(&err, CLLM_ERR_NOMEM, "out of memory");
        else st = cllm_json_schema_to_gbnf(schema_text, strlen(schema_text), field, &gbnf, &err);
        text = gbnf;
    }
    if (st == CLLM_OK) st = cllm_grammar_parse(text, strlen(text), field, &r->grammar, &err);
    free(gbnf);
    free(schema_text);
    if (st == CLLM_OK) return 0;
    const char *param = strchr(field, '.') ? "response_format" : field;
    *e = st == CLLM_ERR_NOMEM ? srv_error(500, "server_error", NULL, NULL, "out of memory") : BAD(param, "%s", err.msg);
    return -1;
}

srv_reply srv_parse_generation(cllm_server *s, srv_kind kind, int native, const char *body, size_t len,
                               srv_request **out) {
    *out = NULL;
    cJSON *root = NULL;
    srv_request *r = NULL;
    srv_reply e = begin_request(body, len, kind, native, &root, &r);
    if (!r) return e;
    cllm_tokens toks = {0};
    r->n = 1;
    r->native = native;
    cllm_sampler_params *sp = &r->sp;
    if (s->p.sampling) {
        *sp = *s->p.sampling;
    } else {
        *sp = cllm_sampler_default_params();
        sp->temperature = 1.0f;
        sp->top_k = 0;
        sp->top_p = 1.0f;
        sp->min_p = 0.0f;
        sp->penalty_window = 256;
    }
    cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (model && !cJSON_IsString(model) && !cJSON_IsNull(model)) {
        e = BAD("model", "'model' must be a string");
        goto fail;
    }
    if (parse_constraint(root, r, &e)) goto fail;
    if (kind == SRV_CHAT && srv_tools_parse(root, r, &e)) goto fail;
    if (kind == SRV_CHAT ? render_messages(s, root, r, &toks, &e) : parse_prompt(s, root, &toks, &e)) goto fail;
    const char *pparam = kind == SRV_CHAT ? "messages" : "prompt";
    if (toks.n == 0) {
        e = BAD(pparam, "the prompt is empty");
        goto fail;
    }
    if (toks.n >= (size_t)s->ctx) {
        e = srv_error(400, "invalid_request_error", pparam, "context_length_exceeded",
                      "the prompt has %zu tokens but the context window holds %d (the prompt must leave room for "
                      "at least one new token)",
                      toks.n, s->ctx);
        goto fail;
    }
    double d;
    int64_t iv;
    const int room = s->ctx - (int)toks.n;
    /* Without max_tokens: --n-predict, else OpenAI's defaults (chat: the
     * rest of the context; completions: 16). Larger values are capped to
     * the room left (finish_reason "length"). */
    iv = s->p.n_predict > 0 ? s->p.n_predict : kind == SRV_CHAT ? room : 16;
    const char *mkeys[3] = {"max_tokens", "max_completion_tokens", "n_predict"};
    for (int k = 0; k < 3; k++) {
        cJSON *mv = cJSON_GetObjectItemCaseSensitive(root, mkeys[k]);
        if (k == 2 && mv && cJSON_IsNumber(mv) && mv->valuedouble < 0) continue; /* llama.cpp: -1 = no limit */
        if (opt_int(root, mkeys[k], 1, MAX_EXACT, &iv, &e)) goto fail;
        if (k == 2 && mv && cJSON_IsNumber(mv) && mv->valuedouble < 0) iv = room;
    }
    r->max_tokens = iv < room ? (int)iv : room;
    d = sp->temperature;
    if (opt_num(root, "temperature", 0, 2, &d, &e)) goto fail;
    sp->temperature = (float)d;
    d = sp->top_p;
    if (opt_num(root, "top_p", 0, 1, &d, &e)) goto fail;
    if (d == 0) sp->temperature = 0, d = 1; /* the smallest nucleus: one token */
    sp->top_p = (float)d;
    iv = sp->top_k;
    if (opt_int(root, "top_k", 0, 1e9, &iv, &e)) goto fail;
    sp->top_k = iv > s->V ? s->V : (int)iv;
    d = sp->min_p;
    if (opt_num(root, "min_p", 0, 0.999999, &d, &e)) goto fail;
    sp->min_p = (float)d;
    d = sp->presence_penalty;
    if (opt_num(root, "presence_penalty", -2, 2, &d, &e)) goto fail;
    sp->presence_penalty = (float)d;
    d = sp->frequency_penalty;
    if (opt_num(root, "frequency_penalty", -2, 2, &d, &e)) goto fail;
    sp->frequency_penalty = (float)d;
    d = sp->repeat_penalty;
    if (opt_num(root, "repeat_penalty", 0.01, 100, &d, &e)) goto fail;
    sp->repeat_penalty = (float)d;
    pthread_mutex_lock(&s->mu);
    uint64_t id = ++s->next_id;
    pthread_mutex_unlock(&s->mu);
    sp->seed = s->p.seed >= 0 ? (uint64_t)s->p.seed : id * CLLM_GOLDEN_GAMMA;
    if (opt_seed(root, &sp->seed, &e)) goto fail;
    iv = 1;
    if (opt_int(root, "n", 1, s->p.max_n, &iv, &e)) goto fail;
    r->n = (int)iv;
    if (r->n > s->p.parallel + s->p.queue) {
        e = BAD("n", "'n' (%d) exceeds the server's slots plus queue (%d)", r->n, s->p.parallel + s->p.queue);
        goto fail;
    }
    if (parse_stop(root, r, &e)) goto fail;
    if (kind == SRV_CHAT && s->turn_stop) {
        r->stops[r->n_stop] = strdup(s->turn_stop);
        if (r->stops[r->n_stop]) r->n_stop++;
    }
    if (kind == SRV_CHAT) {
        int lp = 0;
        if (srv_opt_bool(root, "logprobs", &lp, &e)) goto fail;
        iv = 0;
        if (opt_int(root, "top_logprobs", 0, MAX_TOP, &iv, &e)) goto fail;
        if (iv > 0 && !lp) {
            e = BAD("top_logprobs", "'top_logprobs' needs 'logprobs': true");
            goto fail;
        }
        r->want_logprobs = lp;
        r->n_top = (int)iv;
    } else {
        const char *lkey = native ? "n_probs" : "logprobs";
        cJSON *lp = cJSON_GetObjectItemCaseSensitive(root, lkey);
        iv = 0;
        if (opt_int(root, lkey, 0, MAX_TOP, &iv, &e)) goto fail;
        r->want_logprobs = native ? iv > 0 : lp && !cJSON_IsNull(lp);
        r->n_top = (int)iv;
    }
    if (parse_logit_bias(s, root, sp, &e)) goto fail;
    if (srv_opt_bool(root, "stream", &r->stream, &e)) goto fail;
    cJSON *so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
    if (so && !cJSON_IsNull(so)) {
        if (!cJSON_IsObject(so)) {
            e = BAD("stream_options", "'stream_options' must be an object");
            goto fail;
        }
        if (srv_opt_bool(so, "include_usage", &r->include_usage, &e)) goto fail;
    }
    cllm_error err;
    if (cllm_sampler_params_validate(sp, s->V, &err) != CLLM_OK) {
        e = BAD(NULL, "%s", err.msg);
        goto fail;
    }
    r->prompt = toks.ids;
    r->n_prompt = (int)toks.n;
    toks.ids = NULL;
    snprintf(r->id, sizeof r->id, "%s-%016" PRIx64, kind == SRV_CHAT ? "chatcmpl" : "cmpl", id);
    r->created = (int64_t)time(NULL);
    r->seqs = calloc((size_t)r->n, sizeof *r->seqs);
    if (!r->seqs) {
        e = srv_error(500, "server_error", NULL, NULL, "out of memory");
        goto fail;
    }
    for (int i = 0; i < r->n; i++) {
        srv_seq *q = &r->seqs[i];
        q->req = r;
        q->index = i;
        q->slot = -1;
        cllm_sampler_params spi = *sp;
        spi.seed = sp->seed + (uint64_t)i;
        q->sampler = cllm_sampler_create(&spi, s->V, &err);
        if (!q->sampler || cllm_sampler_exclude_unused(q->sampler, s->tok, &err) != CLLM_OK ||
            cllm_sampler_set_grammar(q->sampler, r->grammar, s->gvocab, &err) != CLLM_OK ||
            cllm_text_stream_init(&q->text_stream, (const char *const *)r->stops, r->n_stop, &err) != CLLM_OK) {
            e = BAD(NULL, "%s", err.msg);
            goto fail;
        }
        if (r->want_logprobs && !r->stream) q->logprobs = cJSON_CreateArray();
    }
    cJSON_Delete(root);
    *out = r;
    return e;
fail:
    cllm_tokens_free(&toks);
    srv_request_free(r);
    cJSON_Delete(root);
    return e;
}


/* ---- embeddings ---------------------------------------------------------- */

srv_reply srv_parse_embeddings(cllm_server *s, const char *body, size_t len, int native, srv_request **out) {
    *out = NULL;
    cJSON *root = NULL;
    srv_request *r = NULL;
    srv_reply e = begin_request(body, len, SRV_EMBED, native, &root, &r);
    if (!r) return e;
    cJSON *in = cJSON_GetObjectItemCaseSensitive(root, "input");
    if (!in && native) in = cJSON_GetObjectItemCaseSensitive(root, "content");
    r->native = native;
    cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "encoding_format");
    if (fmt && !cJSON_IsNull(fmt)) {
        if (!cJSON_IsString(fmt) || (strcmp(fmt->valuestring, "float") && strcmp(fmt->valuestring, "base64"))) {
            e = BAD("encoding_format", "'encoding_format' must be \"float\" or \"base64\"");
            goto fail;
        }
        r->base64 = strcmp(fmt->valuestring, "base64") == 0;
    }
    if (!in) {
        e = BAD("input", "'input' is required");
        goto fail;
    }
    /* Normalise to a list of items: a string, an id array, or arrays of either. */
    int single = cJSON_IsString(in) || (cJSON_IsArray(in) && cJSON_GetArraySize(in) > 0 &&
                                        cJSON_IsNumber(cJSON_GetArrayItem(in, 0)));
    if (!single && !cJSON_IsArray(in)) {
        e = BAD("input", "'input' must be a string, an array of strings, or token id arrays");
        goto fail;
    }
    int n = single ? 1 : cJSON_GetArraySize(in);
    if (n < 1 || n > MAX_EMBED_INPUTS) {
        e = BAD("input", "'input' must hold between 1 and %d items", MAX_EMBED_INPUTS);
        goto fail;
    }
    r->inputs = calloc((size_t)n, sizeof *r->inputs);
    r->input_len = calloc((size_t)n, sizeof *r->input_len);
    r->embeddings = malloc((size_t)n * (size_t)s->C * sizeof(float));
    if (!r->inputs || !r->input_len || !r->embeddings) {
        e = srv_error(500, "server_error", NULL, NULL, "out of memory");
        goto fail;
    }
    r->n_inputs = n;
    for (int i = 0; i < n; i++) {
        cJSON *it = single ? in : cJSON_GetArrayItem(in, i);
        cllm_tokens toks = {0};
        if (cJSON_IsString(it)) {
            cllm_error err;
            if (cllm_tokenizer_encode(s->tok, it->valuestring, strlen(it->valuestring), NULL, &toks, &err) != CLLM_OK) {
                e = BAD("input", "%s", err.msg);
                goto fail;
            }
        } else if (cJSON_IsArray(it)) {
            cJSON *t;
            cJSON_ArrayForEach(t, it) {
                if (!cJSON_IsNumber(t) || t->valuedouble != floor(t->valuedouble) || t->valuedouble < 0 ||
                    t->valuedouble >= s->V) {
                    cllm_tokens_free(&toks);
                    e = BAD("input", "'input[%d]' holds a value that is not a token id in [0, %d)", i, s->V);
                    goto fail;
                }
                cllm_tokens_push(&toks, (uint32_t)t->valuedouble, NULL);
            }
        } else {
            e = BAD("input", "'input[%d]' must be a string or an array of token ids", i);
            goto fail;
        }
        if (toks.n == 0 || toks.n > (size_t)s->ctx) {
            e = srv_error(400, "invalid_request_error", "input", toks.n ? "context_length_exceeded" : NULL,
                          "'input[%d]' has %zu tokens; it must have between 1 and %d (the context window)", i, toks.n,
                          s->ctx);
            cllm_tokens_free(&toks);
            goto fail;
        }
        r->inputs[i] = toks.ids;
        r->input_len[i] = (int)toks.n;
    }
    cJSON_Delete(root);
    *out = r;
    return e;
fail:
    cJSON_Delete(root);
    srv_request_free(r);
    return e;
}


/* ---- /apply-template (llama.cpp): the chat template's prompt text ------- */

srv_reply srv_apply_template(cllm_server *s, const char *body, size_t len) {
    cJSON *root = NULL;
    srv_reply e = srv_parse_root(body, len, &root);
    if (!root) return e;
    cllm_tokens toks = {0};
    char *text = NULL;
    size_t tl = 0;
    cllm_error err;
    if (render_messages(s, root, NULL, &toks, &e)) goto done;
    if (cllm_tokenizer_decode(s->tok, toks.ids, toks.n, &text, &tl, &err) != CLLM_OK) {
        e = BAD("messages", "%s", err.msg);
        goto done;
    }
    char *fixed = srv_utf8_repair(text, tl);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "prompt", fixed ? fixed : "");
    /* cllm's addition: the prompt's length as chat completions count it
     * (the chat page trims old turns with it, as `cllm chat` does) */
    cJSON_AddNumberToObject(o, "n_tokens", (double)toks.n);
    free(fixed);
    e = srv_reply_json(o);
done:
    free(text);
    cllm_tokens_free(&toks);
    cJSON_Delete(root);
    return e;
}
