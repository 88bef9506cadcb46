/*
 * tools.c: OpenAI tool calling for chat completions: the request's tools,
 * tool_choice and parallel_tool_calls checked into the request (400s naming
 * the field), and the calls read out of each choice's text. The format
 * itself (prompts, calls, grammars) is infer/tools.h's; the chat renderer
 * writes the tools and the history's tool_calls into the prompt.
 *
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

#include "cllm/infer/tools.h"
#include "server_internal.h"

#define BAD(param, ...) srv_error(400, "invalid_request_error", param, NULL, __VA_ARGS__)

/* The grammar of a reply that is only tool calls of `only` (or any tool). */
static int call_grammar(srv_request *r, const char *only, srv_reply *e) {
    cllm_error err;
    cllm_status st = cllm_tools_grammar(r->tools, only, r->parallel_tools, CLLM_TOOLS_REQUIRED, &r->grammar, &err);
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
    cllm_error err;
    cllm_status st = tools ? cllm_tools_check(tools, "tools", &err) : CLLM_OK;
    if (st != CLLM_OK) {
        *e = st == CLLM_ERR_NOMEM ? srv_error(500, "server_error", NULL, NULL, "out of memory") : BAD("tools", "%s", err.msg);
        return -1;
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
            if (!cllm_tools_find(tools, named)) {
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

cJSON *srv_tools_extract(const srv_request *r, int choice, const char *text, char **content) {
    *content = NULL;
    if (!r->tools || r->tool_mode == SRV_TOOLS_OFF) return NULL;
    char prefix[96];
    snprintf(prefix, sizeof prefix, "call_%s_%d", r->id, choice);
    return cllm_tools_extract(r->tools, text, r->parallel_tools, prefix, content, NULL);
}
