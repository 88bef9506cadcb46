/*
 * tools.h: tool calling in cllm's ChatML tool format (docs/TOOLS.md): the
 * tool list, how a conversation with tools is written for the model, how
 * calls are read back out of what the model wrote, and the grammars that
 * make a call always parse. Shared by the chat renderer (chat.c), the
 * server (OpenAI `tools`), the agent loop (agent.h) and the training data
 * readers.
 *
 * The format (Hermes / Qwen2.5 style):
 *   - the system message gains a "# Tools" section listing each tool's
 *     definition as one JSON line inside <tools></tools>, and how to call;
 *   - the assistant calls a tool by writing, per call,
 *       <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>
 *     (calls first, several separated by a newline; an assistant message
 *     of the history with OpenAI `tool_calls` is written so);
 *   - a tool's result is a `tool` message (ChatML: <|im_start|>tool ...).
 * A model with its own Jinja template gets `tools` and the messages'
 * tool_calls as template variables and writes them its own way.
 *
 * Tool list: OpenAI's, an array of {"type": "function", "function":
 * {"name": 1-64 of a-z A-Z 0-9 _ -, "description": ..., "parameters": a JSON
 * Schema object}}, names unique. Keys a tool entry holds besides "type" and
 * "function" (agent.h's "x-cllm-*") are not shown to the model.
 *
 * Not here: running tools (agent.h), HTTP errors (the server maps these
 * errors to 400s naming the request field).
 */
#ifndef CLLM_INFER_TOOLS_H
#define CLLM_INFER_TOOLS_H

#include <stddef.h>

#include "cllm/core/status.h"
#include "cllm/infer/grammar.h"

struct cJSON;

#define CLLM_TOOLS_MAX 64 /* tools in one list */

/* Checks a tool list (see above), including that every `parameters` schema
 * converts to a grammar. Errors start with `where` ("tools[2]: ...",
 * "tools.json: tools[2].function.parameters: ..."). */
cllm_status cllm_tools_check(const struct cJSON *tools, const char *where, cllm_error *err);

/* The function name of a checked tool entry; the entry called `name` in a
 * checked list, or NULL. */
const char *cllm_tool_name(const struct cJSON *tool);
const struct cJSON *cllm_tools_find(const struct cJSON *tools, const char *name);

/* The system message with the tools section appended (system may be NULL:
 * the section alone). malloc'd; NULL when out of memory. */
char *cllm_tools_system_text(const char *system, size_t len, const struct cJSON *tools);

/* An assistant message's text with its OpenAI tool_calls written as calls
 * after the content ("arguments" given as a JSON string are embedded as
 * JSON). malloc'd; NULL when tool_calls is not a non-empty array, or out of
 * memory (*oom set then). */
char *cllm_tools_assistant_text(const char *content, size_t len, const struct cJSON *tool_calls, int *oom);

/* The calls of declared tools in `text`, as OpenAI tool_calls (ids
 * "<id_prefix>_0", "<id_prefix>_1", ...; arguments as a JSON string), at
 * most one when !parallel; NULL when there are none. A call of an
 * undeclared tool, or whose body is not {"name": string, "arguments":
 * object}, stays text. *content gets the text around the calls, trimmed
 * (malloc'd, NULL when nothing is left). *invalid (may be NULL) counts
 * <tool_call> blocks that were not valid calls. */
struct cJSON *cllm_tools_extract(const struct cJSON *tools, const char *text, int parallel, const char *id_prefix,
                                 char **content, int *invalid);

typedef enum {
    CLLM_TOOLS_REQUIRED = 0, /* the reply is only calls */
    CLLM_TOOLS_AUTO,         /* calls, or text that does not start with '<' */
} cllm_tools_grammar_mode;

/* The grammar of a reply with calls of `only` (NULL: any declared tool),
 * each call's body matching {"name": const, "arguments": the tool's
 * parameters}; several calls when parallel. */
cllm_status cllm_tools_grammar(const struct cJSON *tools, const char *only, int parallel, cllm_tools_grammar_mode mode,
                               cllm_grammar **out, cllm_error *err);

#endif
