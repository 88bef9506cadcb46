/*
 * agent.h: the agent loop (the guide's "agents that call tools"): a model
 * answers, the tools it calls are run, their results go back into the
 * conversation, and the model goes on until it answers without a call or
 * reaches its step limit. `cllm chat --tools` and `cllm eval` (examples
 * with "tools") use it; docs/TOOLS.md has the walk-through.
 *
 * Tools are built in, never programs: cllm runs only the tools declared in
 * the toolbox file, each bound to a built-in implementation, and answers
 * any other call with an error result the model reads. Nothing here starts
 * a process, opens a network connection or writes a file.
 *
 * Built-in tools (each takes one string argument; anything else is refused):
 *   calculator  {"expression": "4821 + 377"}: + - * / % and parentheses
 *               over integers and decimals, exact for integers up to 2^53;
 *               result "5198", or "error: ..." (division by zero, a
 *               character it cannot read).
 *   shop_order  {"order": "4821"}: the order's item and status in the
 *               shop's table: {"order":"4821","item":"apple","status":
 *               "on its way"}, or {"order":"4821","error":"no such order"}.
 *   shop_stock  {"item": "apple"}: {"item":"apple","stock":12}, or an
 *               "error" when the shop does not sell it.
 *   The table is a JSON file (the practice world's shop.json): {"orders":
 *   {"4821": {"item": "apple", "status": "on its way"}, ...}, "stock":
 *   {"apple": 12, ...}}.
 *
 * Toolbox file: a JSON array of OpenAI tool definitions (tools.h), each
 * with "x-cllm-builtin": "calculator" | "shop_order" | "shop_stock", and
 * for the shop's "x-cllm-table": a path (relative paths are from the
 * toolbox file's folder). The definition (name, description, parameters)
 * is what the model is shown; the x-cllm keys are not.
 *
 * Conversations are OpenAI message lists (cJSON arrays of {"role",
 * "content", "tool_calls", "tool_call_id", "name"}); the loop appends the
 * assistant's messages and the tool results to it.
 */
#ifndef CLLM_INFER_AGENT_H
#define CLLM_INFER_AGENT_H

#include <stddef.h>

#include "cllm/core/status.h"
#include "cllm/infer/chat_template.h"
#include "cllm/infer/sampler.h"
#include "cllm/model/model.h"
#include "cllm/tokenizer/tokenizer.h"

struct cJSON;

/* ---- tools ------------------------------------------------------------------ */

typedef struct cllm_toolbox cllm_toolbox;

/* Reads and checks a toolbox file (and the shop's table). Errors name the
 * file and the entry ("tools.json: [1].x-cllm-builtin: 'shell' is not a
 * built-in tool (calculator, shop)"). */
cllm_status cllm_toolbox_load(const char *path, cllm_toolbox **out, cllm_error *err);
void cllm_toolbox_free(cllm_toolbox *tb);
/* The tool definitions the model is shown (borrowed). */
const struct cJSON *cllm_toolbox_tools(const cllm_toolbox *tb);

/* Runs the call of `name` with `arguments` (JSON text). Returns the result
 * text (malloc'd; NULL only when out of memory). *ok is 1 when the tool ran
 * (its own error results, such as division by zero, included), 0 when the
 * call was refused: an undeclared tool or arguments that do not fit. */
char *cllm_toolbox_call(const cllm_toolbox *tb, const char *name, const char *arguments, int *ok);

/* The calculator alone: the value of expr as text into out[cap] ("5198",
 * "2.5"); CLLM_ERR_ARG with the reason when it cannot be computed. */
cllm_status cllm_calculator(const char *expr, char *out, size_t cap, cllm_error *err);

/* ---- the loop --------------------------------------------------------------- */

typedef struct {
    int max_steps;     /* model turns per run (each may call tools); default 4 */
    int max_tokens;    /* tokens per model turn; default 256 */
    int constrain;     /* 1 (default): a turn that opens with '<' must be valid calls (the tools'
                          grammar); 0: the model writes freely and invalid calls stay text */
    cllm_sampler_params sampler;
} cllm_agent_params;

cllm_agent_params cllm_agent_default_params(void); /* greedy sampling */

typedef enum {
    CLLM_AGENT_TEXT = 0, /* text of the model's turn, as it is generated */
    CLLM_AGENT_CALL,     /* a call about to run: name, arguments */
    CLLM_AGENT_RESULT,   /* its result: name, text */
    CLLM_AGENT_TURN_END, /* the model's turn ended */
} cllm_agent_event_kind;

typedef struct {
    cllm_agent_event_kind kind;
    const char *text; /* TEXT: the piece; CALL: the arguments; RESULT: the result */
    size_t len;
    const char *name; /* CALL, RESULT: the tool */
} cllm_agent_event;

/* Non-zero stops the run (the turn in progress is kept as text). */
typedef int (*cllm_agent_callback)(void *ctx, const cllm_agent_event *ev);

typedef struct {
    int steps;           /* model turns taken */
    int calls;           /* calls that ran */
    int refused_calls;   /* calls of undeclared tools or with arguments that do not fit */
    int invalid_calls;   /* <tool_call> blocks that did not parse as a call of a declared tool */
    int out_of_steps;    /* 1 when the last turn still called tools at max_steps */
    int over_context;    /* 1 when the conversation outgrew the context window */
    int cancelled;       /* 1 when the callback stopped the run */
} cllm_agent_stats;

/* What stays the same from one run to the next: the tokenizer, template and
 * toolbox (all borrowed: they must outlive the agent), the turns' end
 * tokens, and the tools' grammar with its vocabulary trie (built once here,
 * not per conversation or per step). */
typedef struct cllm_agent cllm_agent;
cllm_status cllm_agent_create(const cllm_tokenizer *tok, cllm_chat_template tmpl, const cllm_toolbox *tb,
                              cllm_agent **out, cllm_error *err);
void cllm_agent_destroy(cllm_agent *a);
/* The tool definitions the model is shown (the toolbox's). */
const struct cJSON *cllm_agent_tools(const cllm_agent *a);

/* Runs the loop on `messages` (an OpenAI message list, appended to) in KV
 * slot 0 of m, whose vocabulary is the agent's tokenizer's. The final
 * answer is the content of the last assistant message. */
cllm_status cllm_agent_run(const cllm_agent *a, cllm_model *m, int context, const cllm_agent_params *p,
                           struct cJSON *messages, cllm_agent_callback cb, void *ctx, cllm_agent_stats *stats,
                           cllm_error *err);

/* The messages of an OpenAI list as chat messages (borrowing its strings;
 * the message objects become `extra`). *out is malloc'd [*n]. Errors name
 * `where` and the index. */
cllm_status cllm_agent_messages_view(const struct cJSON *messages, const char *where, cllm_chat_message **out, int *n,
                                     cllm_error *err);

#endif
