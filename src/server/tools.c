/*
 * tools.c: OpenAI tool calling for chat completions: the request's tools and
 * tool_choice, the ChatML tool format in prompts, and tool calls parsed out
 * of the model's text (docs/GRAMMAR.md, "Tool calls").
 *
 * The format (Hermes / Qwen2.5 style, for the built-in templates; a model's
 * own Jinja template receives `tools` and renders them itself):
 *   - the system message gains a "# Tools" section listing each tool as one
 *     JSON line inside <tools></tools>, and how to call one;
 *   - the assistant calls a tool by writing, per call,
 *       <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>
 *     (an assistant message in the history with tool_calls is rendered so);
 *   - a tool's result is a `tool` message (ChatML: <|im_start|>tool ...).
 * tool_choice "required" or a named function constrains the reply with a
 * grammar built from the tools' parameter schemas (so the call always
 * parses and matches); "auto" leaves the model free and parses what it
 * writes; "none" parses nothing.
 *
 * Not here: streaming a call's arguments piece by piece (a stream with tools
 * sends the tool calls in one delta at the end), and running tools.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/infer/grammar.h"
#include "server_internal.h"

#define BAD(param, ...) srv_error(400, "invalid_request_error", param, NULL, __VA_ARGS__)
#define MAX_TOOLS 64

static const char tools_intro[] =
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n";
static const char tools_outro[] =
    "</tools>\n\nFor each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
    "<args-json-object>}\n</tool_call>";

static int valid_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static const cJSON *tool_function(const cJSON *tool) {
    return cJSON_GetObjectItemCaseSensitive(tool, "function");
}

static const char *tool_name(const cJSON *tool) {
    return cJSON_GetObjectItemCaseSensitive(tool_function(tool), "name")->valuestring;
}

/* The schema of one call of `tool`: {"name": const, "arguments": params}. */
static cJSON *call_schema(const cJSON *tool) {
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(tool_function(tool), "parameters");
    cJSON *o = cJSON_CreateObject(), *props = cJSON_AddObjectToObject(o, "properties");
    cJSON_AddStringToObject(o, "type", "object");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(props, "name"), "const", tool_name(tool));
    if (params && !cJSON_IsNull(params)) cJSON_AddItemToObject(props, "arguments", cJSON_Duplicate(params, 1));
    else cJSON_AddStringToObject(cJSON_AddObjectToObject(props, "arguments"), "type", "object");
    cJSON *req = cJSON_AddArrayToObject(o, "required");
    cJSON_AddItemToArray(req, cJSON_CreateString("name"));
    cJSON_AddItemToArray(req, cJSON_CreateString("arguments"));
    cJSON_AddFalseToObject(o, "additionalProperties");
    return o;
}

/* The grammar of a reply that is only tool calls (one, or several when
 * parallel), of `only` or of any tool. */
static int call_grammar(srv_request *r, const char *only, srv_reply *e) {
    cJSON *any = cJSON_CreateObject(), *alts = cJSON_AddArrayToObject(any, "anyOf");
    const cJSON *t;
    cJSON_ArrayForEach(t, r->tools) if (!only || !strcmp(tool_name(t), only)) cJSON_AddItemToArray(alts, call_schema(t));
    char *text = cJSON_PrintUnformatted(any), *gbnf = NULL;
    cJSON_Delete(any);
    static const char one[] = "\"<tool_call>\\n\" schema \"\\n</tool_call>\"";
    static const char many[] = "\"<tool_call>\\n\" schema \"\\n</tool_call>\" "
                               "( \"\\n<tool_call>\\n\" schema \"\\n</tool_call>\" )*";
    cllm_error err;
    cllm_status st = text ? cllm_json_schema_to_gbnf_root(text, strlen(text), "tools", r->parallel_tools ? many : one,
                                                           &gbnf, &err)
                          : cllm_error_set(&err, CLLM_ERR_NOMEM, "out of memory");
    if (st == CLLM_OK) st = cllm_grammar_parse(gbnf, strlen(gbnf), "tools", &r->grammar, &err);
    free(text);
    free(gbnf);
    if (st == CLLM_OK) return 0;
    *e = st == CLLM_ERR_NOMEM ? srv_error(500, "server_error", NULL, NULL, "out of memory") : BAD("tools", "%s", err.msg);
    return -1;
}

int srv_tools_parse(cJSON *root, srv_request *r, srv_reply *e) {
    cJSON *tools = cJSON_GetObjectItemCaseSensitive(root, "tools");
    cJSON *choice = cJSON_GetObjectItemCaseSensitive(root, "tool_choice");
    r->parallel_tools = 1;
    if (srv_opt_bool(root, "parallel_tool_calls", &r->parallel_tools, e)) return -1;
    if (cJSON_IsNull(tools)) tools = NULL;
    if (tools && !cJSON_IsArray(tools)) {
        *e = BAD("tools", "'tools' must be an array");
        return -1;
    }
    int n = tools ? cJSON_GetArraySize(tools) : 0;
    if (n > MAX_TOOLS) {
        *e = BAD("tools", "'tools' holds at most %d tools", MAX_TOOLS);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const cJSON *t = cJSON_GetArrayItem(tools, i);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(t, "type"), *f = tool_function(t);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(f, "parameters");
        if (!cJSON_IsObject(t) || !cJSON_IsString(type) || strcmp(type->valuestring, "function") ||
            !cJSON_IsObject(f) || !cJSON_IsString(name) || !valid_name(name->valuestring) ||
            (params && !cJSON_IsNull(params) && !cJSON_IsObject(params))) {
            *e = BAD("tools", "'tools[%d]' must be {\"type\": \"function\", \"function\": {\"name\": 1-64 of "
                              "a-z A-Z 0-9 _ -, \"parameters\": a JSON Schema object}}",
                     i);
            return -1;
        }
        for (int k = 0; k < i; k++)
            if (!strcmp(tool_name(cJSON_GetArrayItem(tools, k)), name->valuestring)) {
                *e = BAD("tools", "'tools[%d]' repeats the name '%s'", i, name->valuestring);
                return -1;
            }
        if (params && !cJSON_IsNull(params)) { /* refused keywords are a 400 now, not at the first call */
            char *text = cJSON_PrintUnformatted(params), *gbnf = NULL, where[64];
            cllm_error err;
            snprintf(where, sizeof where, "tools[%d].function.parameters", i);
            cllm_status st = text ? cllm_json_schema_to_gbnf(text, strlen(text), where, &gbnf, &err) : CLLM_ERR_NOMEM;
            free(text);
            free(gbnf);
            if (st != CLLM_OK) {
                *e = st == CLLM_ERR_NOMEM ? srv_error(500, "server_error", NULL, NULL, "out of memory")
                                          : BAD("tools", "%s", err.msg);
                return -1;
            }
        }
    }
    const char *named = NULL;
    r->tool_mode = n ? SRV_TOOLS_AUTO : SRV_TOOLS_OFF;
    if (choice && !cJSON_IsNull(choice)) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(choice, "function"), "name");
        if (cJSON_IsString(choice) && !strcmp(choice->valuestring, "none")) {
            r->tool_mode = SRV_TOOLS_OFF;
        } else if (cJSON_IsString(choice) && !strcmp(choice->valuestring, "auto")) {
            /* as without tool_choice */
        } else if (cJSON_IsString(choice) && !strcmp(choice->valuestring, "required")) {
            r->tool_mode = SRV_TOOLS_REQUIRED;
        } else if (cJSON_IsObject(choice) && cJSON_IsString(fn)) {
            r->tool_mode = SRV_TOOLS_REQUIRED;
            named = fn->valuestring;
            int found = 0;
            for (int i = 0; i < n; i++) found |= !strcmp(tool_name(cJSON_GetArrayItem(tools, i)), named);
            if (!found) {
                *e = BAD("tool_choice", "'tool_choice' names the function '%.64s', which is not in 'tools'", named);
                return -1;
            }
        } else {
            *e = BAD("tool_choice", "'tool_choice' must be \"none\", \"auto\", \"required\" or "
                                    "{\"type\": \"function\", \"function\": {\"name\": ...}}");
            return -1;
        }
        if (r->tool_mode == SRV_TOOLS_REQUIRED && n == 0) {
            *e = BAD("tool_choice", "'tool_choice' asks for a tool call but 'tools' lists none");
            return -1;
        }
    }
    if (n == 0) return 0;
    if (!(r->tools = cJSON_Duplicate(tools, 1))) {
        *e = srv_error(500, "server_error", NULL, NULL, "out of memory");
        return -1;
    }
    if (r->tool_mode == SRV_TOOLS_REQUIRED) {
        if (r->grammar) {
            *e = BAD("tool_choice", "a required tool call cannot be combined with response_format, grammar or "
                                    "json_schema");
            return -1;
        }
        return call_grammar(r, named, e);
    }
    return 0;
}

/* "{content}<tool_call>...</tool_call>..." for an assistant message with
 * tool_calls (arguments given as a JSON string are embedded as JSON).
 * Returns NULL when there are none or out of memory (*oom set). */
static char *assistant_text(const cllm_chat_message *m, int *oom) {
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(m->extra, "tool_calls");
    if (!cJSON_IsArray(calls) || !calls->child) return NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return *oom = 1, NULL;
    fwrite(m->content, 1, m->len, f);
    const cJSON *c;
    cJSON_ArrayForEach(c, calls) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(c, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        cJSON *call = cJSON_CreateObject();
        cJSON_AddStringToObject(call, "name", cJSON_IsString(name) ? name->valuestring : "");
        cJSON *parsed = cJSON_IsString(args) ? cJSON_Parse(args->valuestring) : NULL;
        cJSON_AddItemToObject(call, "arguments",
                              parsed ? parsed : args ? cJSON_Duplicate(args, 1) : cJSON_CreateObject());
        char *js = cJSON_PrintUnformatted(call);
        cJSON_Delete(call);
        if (!js) *oom = 1;
        else fprintf(f, "%s<tool_call>\n%s\n</tool_call>", ftell(f) > 0 ? "\n" : "", js);
        free(js);
    }
    fclose(f);
    return text;
}

int srv_tools_builtin_messages(const srv_request *r, cllm_chat_message *cm, int *n, char **owned) {
    int oom = 0, k = 0;
    for (int i = 0; i < *n; i++) {
        if (cm[i].role != CLLM_ROLE_ASSISTANT || !cm[i].extra) continue;
        char *t = assistant_text(&cm[i], &oom);
        if (!t) continue;
        owned[k++] = t;
        cm[i].content = t;
        cm[i].len = strlen(t);
    }
    if (!r || !r->tools || r->tool_mode == SRV_TOOLS_OFF) return oom ? -1 : 0;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return -1;
    if (*n > 0 && cm[0].role == CLLM_ROLE_SYSTEM) fwrite(cm[0].content, 1, cm[0].len, f);
    fputs(tools_intro + (ftell(f) == 0 ? 2 : 0), f);
    const cJSON *t;
    cJSON_ArrayForEach(t, r->tools) {
        char *js = cJSON_PrintUnformatted(t);
        if (!js) oom = 1;
        else fprintf(f, "%s\n", js);
        free(js);
    }
    fputs(tools_outro, f);
    fclose(f);
    if (!text) return -1;
    owned[k++] = text;
    if (!(*n > 0 && cm[0].role == CLLM_ROLE_SYSTEM)) {
        memmove(cm + 1, cm, (size_t)*n * sizeof *cm);
        (*n)++;
        cm[0] = (cllm_chat_message){CLLM_ROLE_SYSTEM, NULL, 0, NULL};
    }
    cm[0].content = text;
    cm[0].len = strlen(text);
    return oom ? -1 : 0;
}

/* The declared tool called `name`, or NULL. */
static const cJSON *find_tool(const srv_request *r, const char *name) {
    const cJSON *t;
    cJSON_ArrayForEach(t, r->tools) if (!strcmp(tool_name(t), name)) return t;
    return NULL;
}

cJSON *srv_tools_extract(const srv_request *r, int choice, const char *text, char **content) {
    *content = NULL;
    if (!r->tools || r->tool_mode == SRV_TOOLS_OFF) return NULL;
    static const char open_tag[] = "<tool_call>", close_tag[] = "</tool_call>";
    cJSON *calls = cJSON_CreateArray();
    size_t tlen = strlen(text);
    char *rest = malloc(tlen + 1);
    if (!calls || !rest) {
        cJSON_Delete(calls);
        free(rest);
        return NULL;
    }
    size_t at = 0, kept = 0;
    while (at < tlen) {
        const char *o = strstr(text + at, open_tag);
        const char *c = o ? strstr(o + sizeof open_tag - 1, close_tag) : NULL;
        if (!o || !c) break;
        size_t body_len = (size_t)(c - (o + sizeof open_tag - 1));
        cJSON *call = cJSON_ParseWithLength(o + sizeof open_tag - 1, body_len);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(call, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(call, "arguments");
        int ok = cJSON_IsObject(call) && cJSON_IsString(name) && find_tool(r, name->valuestring) &&
                 (cJSON_IsObject(args) || cJSON_IsString(args));
        if (ok && cJSON_IsString(args)) { /* the model wrote the arguments as a JSON string */
            cJSON *p = cJSON_Parse(args->valuestring);
            ok = cJSON_IsObject(p);
            cJSON_Delete(p);
        }
        if (ok && (r->parallel_tools || cJSON_GetArraySize(calls) == 0)) {
            memcpy(rest + kept, text + at, (size_t)(o - (text + at)));
            kept += (size_t)(o - (text + at));
            cJSON *tc = cJSON_CreateObject(), *fn;
            char id[96];
            snprintf(id, sizeof id, "call_%s_%d_%d", r->id, choice, cJSON_GetArraySize(calls));
            cJSON_AddStringToObject(tc, "id", id);
            cJSON_AddStringToObject(tc, "type", "function");
            fn = cJSON_AddObjectToObject(tc, "function");
            cJSON_AddStringToObject(fn, "name", name->valuestring);
            char *a = cJSON_IsString(args) ? strdup(args->valuestring) : cJSON_PrintUnformatted(args);
            cJSON_AddStringToObject(fn, "arguments", a ? a : "{}");
            free(a);
            cJSON_AddItemToArray(calls, tc);
        } else { /* not a call of a declared tool: it stays text */
            size_t upto = (size_t)(c + sizeof close_tag - 1 - (text + at));
            memcpy(rest + kept, text + at, upto);
            kept += upto;
        }
        cJSON_Delete(call);
        at = (size_t)(c + sizeof close_tag - 1 - text);
    }
    memcpy(rest + kept, text + at, tlen - at);
    kept += tlen - at;
    rest[kept] = 0;
    if (cJSON_GetArraySize(calls) == 0) {
        cJSON_Delete(calls);
        free(rest);
        return NULL;
    }
    size_t b = 0; /* the text around the calls, trimmed; NULL when nothing is left */
    while (rest[b] == ' ' || rest[b] == '\n' || rest[b] == '\t' || rest[b] == '\r') b++;
    while (kept > b && (rest[kept - 1] == ' ' || rest[kept - 1] == '\n' || rest[kept - 1] == '\t' || rest[kept - 1] == '\r'))
        rest[--kept] = 0;
    if (kept > b) *content = strdup(rest + b);
    free(rest);
    return calls;
}
