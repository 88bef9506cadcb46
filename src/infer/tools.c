/*
 * tools.c: cllm's ChatML tool format (tools.h): checking a tool list,
 * writing tools and calls into a conversation, reading calls back out of a
 * reply, and the grammars of replies with calls.
 *
 * Does not run tools (agent.c) or map errors to HTTP (server/tools.c).
 */
#include "cllm/infer/tools.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static const char tools_intro[] =
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n";
static const char tools_outro[] =
    "</tools>\n\nFor each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
    "<args-json-object>}\n</tool_call>";
static const char open_tag[] = "<tool_call>", close_tag[] = "</tool_call>";

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

static const cJSON *tool_function(const cJSON *tool) { return cJSON_GetObjectItemCaseSensitive(tool, "function"); }

const char *cllm_tool_name(const cJSON *tool) {
    return cJSON_GetObjectItemCaseSensitive(tool_function(tool), "name")->valuestring;
}

const cJSON *cllm_tools_find(const cJSON *tools, const char *name) {
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) if (!strcmp(cllm_tool_name(t), name)) return t;
    return NULL;
}

cllm_status cllm_tools_check(const cJSON *tools, const char *where, cllm_error *err) {
    if (!cJSON_IsArray(tools)) return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: the tools must be an array", where);
    int n = cJSON_GetArraySize(tools);
    if (n > CLLM_TOOLS_MAX)
        return cllm_error_set(err, CLLM_ERR_LIMIT, "%s: at most %d tools, not %d", where, CLLM_TOOLS_MAX, n);
    for (int i = 0; i < n; i++) {
        const cJSON *t = cJSON_GetArrayItem(tools, i);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(t, "type"), *f = tool_function(t);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(f, "parameters");
        if (!cJSON_IsObject(t) || !cJSON_IsString(type) || strcmp(type->valuestring, "function") ||
            !cJSON_IsObject(f) || !cJSON_IsString(name) || !valid_name(name->valuestring) ||
            (params && !cJSON_IsNull(params) && !cJSON_IsObject(params)))
            return cllm_error_set(err, CLLM_ERR_FORMAT,
                                  "%s[%d] must be {\"type\": \"function\", \"function\": {\"name\": 1-64 of a-z A-Z "
                                  "0-9 _ -, \"parameters\": a JSON Schema object}}",
                                  where, i);
        for (int k = 0; k < i; k++)
            if (!strcmp(cllm_tool_name(cJSON_GetArrayItem(tools, k)), name->valuestring))
                return cllm_error_set(err, CLLM_ERR_FORMAT, "%s[%d] repeats the name '%s'", where, i,
                                      name->valuestring);
        if (params && !cJSON_IsNull(params)) { /* a refused keyword is an error now, not at the first call */
            char *text = cJSON_PrintUnformatted(params), *gbnf = NULL, at[160];
            snprintf(at, sizeof at, "%s[%d].function.parameters", where, i);
            cllm_status st = text ? cllm_json_schema_to_gbnf(text, strlen(text), at, &gbnf, err)
                                  : cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
            free(text);
            free(gbnf);
            if (st != CLLM_OK) return st;
        }
    }
    return CLLM_OK;
}

char *cllm_tools_system_text(const char *system, size_t len, const cJSON *tools) {
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!f) return NULL;
    int oom = 0;
    if (system) fwrite(system, 1, len, f);
    fputs(tools_intro + (system && len ? 0 : 2), f);
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        cJSON *shown = cJSON_CreateObject(); /* "type" and "function" only */
        cJSON *type = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(t, "type"), 1);
        cJSON *fn = cJSON_Duplicate(tool_function(t), 1);
        char *js = NULL;
        if (shown && type && fn) {
            cJSON_AddItemToObject(shown, "type", type);
            cJSON_AddItemToObject(shown, "function", fn);
            type = fn = NULL;
            js = cJSON_PrintUnformatted(shown);
        }
        cJSON_Delete(type);
        cJSON_Delete(fn);
        cJSON_Delete(shown);
        if (!js) oom = 1;
        else fprintf(f, "%s\n", js);
        free(js);
    }
    fputs(tools_outro, f);
    fclose(f);
    if (oom) {
        free(text);
        return NULL;
    }
    return text;
}

char *cllm_tools_assistant_text(const char *content, size_t len, const cJSON *tool_calls, int *oom) {
    if (!cJSON_IsArray(tool_calls) || !tool_calls->child) return NULL;
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!f) return *oom = 1, NULL;
    if (content) fwrite(content, 1, len, f);
    const cJSON *c;
    cJSON_ArrayForEach(c, tool_calls) {
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
        else fprintf(f, "%s%s\n%s\n%s", ftell(f) > 0 ? "\n" : "", open_tag, js, close_tag);
        free(js);
    }
    fclose(f);
    if (*oom) {
        free(text);
        return NULL;
    }
    return text;
}

static int is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

cJSON *cllm_tools_extract(const cJSON *tools, const char *text, int parallel, const char *id_prefix, char **content,
                          int *invalid) {
    *content = NULL;
    if (invalid) *invalid = 0;
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
        if (!o) break;
        if (!c) { /* an unfinished call */
            if (invalid) (*invalid)++;
            break;
        }
        size_t body_len = (size_t)(c - (o + sizeof open_tag - 1));
        cJSON *call = cJSON_ParseWithLength(o + sizeof open_tag - 1, body_len);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(call, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(call, "arguments");
        int ok = cJSON_IsObject(call) && cJSON_IsString(name) && cllm_tools_find(tools, name->valuestring) &&
                 (cJSON_IsObject(args) || cJSON_IsString(args));
        if (ok && cJSON_IsString(args)) { /* the model wrote the arguments as a JSON string */
            cJSON *p = cJSON_Parse(args->valuestring);
            ok = cJSON_IsObject(p);
            cJSON_Delete(p);
        }
        if (!ok && invalid) (*invalid)++;
        if (ok && (parallel || cJSON_GetArraySize(calls) == 0)) {
            memcpy(rest + kept, text + at, (size_t)(o - (text + at)));
            kept += (size_t)(o - (text + at));
            cJSON *tc = cJSON_CreateObject(), *fn;
            char id[160];
            snprintf(id, sizeof id, "%s_%d", id_prefix, cJSON_GetArraySize(calls));
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
    while (is_space(rest[b])) b++;
    while (kept > b && is_space(rest[kept - 1])) rest[--kept] = 0;
    if (kept > b) *content = strdup(rest + b);
    free(rest);
    return calls;
}

/* The schema of one call of `tool`: {"name": const, "arguments": params}. */
static cJSON *call_schema(const cJSON *tool) {
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(tool_function(tool), "parameters");
    cJSON *o = cJSON_CreateObject(), *props = cJSON_AddObjectToObject(o, "properties");
    cJSON_AddStringToObject(o, "type", "object");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(props, "name"), "const", cllm_tool_name(tool));
    if (params && !cJSON_IsNull(params)) cJSON_AddItemToObject(props, "arguments", cJSON_Duplicate(params, 1));
    else cJSON_AddStringToObject(cJSON_AddObjectToObject(props, "arguments"), "type", "object");
    cJSON *req = cJSON_AddArrayToObject(o, "required");
    cJSON_AddItemToArray(req, cJSON_CreateString("name"));
    cJSON_AddItemToArray(req, cJSON_CreateString("arguments"));
    cJSON_AddFalseToObject(o, "additionalProperties");
    return o;
}

cllm_status cllm_tools_grammar(const cJSON *tools, const char *only, int parallel, cllm_tools_grammar_mode mode,
                               cllm_grammar **out, cllm_error *err) {
    *out = NULL;
    cJSON *any = cJSON_CreateObject(), *alts = cJSON_AddArrayToObject(any, "anyOf");
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) if (!only || !strcmp(cllm_tool_name(t), only)) cJSON_AddItemToArray(alts, call_schema(t));
    char *text = cJSON_PrintUnformatted(any), *gbnf = NULL;
    cJSON_Delete(any);
    /* calls; in auto mode also plain text, which then may not open with '<' */
    static const char *const roots[2][2] = {
        {"\"<tool_call>\\n\" schema \"\\n</tool_call>\"",
         "\"<tool_call>\\n\" schema \"\\n</tool_call>\" ( \"\\n<tool_call>\\n\" schema \"\\n</tool_call>\" )*"},
        {"\"<tool_call>\\n\" schema \"\\n</tool_call>\" | ( [^<] .* )?",
         "\"<tool_call>\\n\" schema \"\\n</tool_call>\" ( \"\\n<tool_call>\\n\" schema \"\\n</tool_call>\" )* | "
         "( [^<] .* )?"}};
    const char *root = roots[mode == CLLM_TOOLS_AUTO][parallel != 0];
    cllm_status st = text ? cllm_json_schema_to_gbnf_root(text, strlen(text), "tools", root, &gbnf, err)
                          : cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    if (st == CLLM_OK) st = cllm_grammar_parse(gbnf, strlen(gbnf), "tools", out, err);
    free(text);
    free(gbnf);
    return st;
}
