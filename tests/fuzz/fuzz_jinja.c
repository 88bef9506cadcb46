/*
 * fuzz_jinja.c: the chat-template interpreter (include/cllm/infer/jinja.h):
 * arbitrary bytes compiled as a template and, when they compile, rendered
 * with a fixed chat context (system/user/assistant/tool messages with a
 * tool call, tools, bos/eos tokens). Refusals are its job; crashes,
 * sanitizer reports, leaks, runaway memory and 10 s inputs are findings
 * (the render limits must stop every loop and recursion first).
 */
#include <cjson/cJSON.h>
#include <stdlib.h>

#include "cllm/infer/jinja.h"
#include "fuzz.h"

static const char context_json[] =
    "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"add_generation_prompt\": true,"
    " \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
    "  {\"role\": \"user\", \"content\": \"  안녕 🙂 what's 2+2?\\n\"},"
    "  {\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"type\": \"function\", \"function\":"
    "   {\"name\": \"add\", \"arguments\": {\"a\": 2, \"b\": 2.5, \"c\": [true, null]}}}]},"
    "  {\"role\": \"tool\", \"name\": \"add\", \"content\": \"4\"},"
    "  {\"role\": \"assistant\", \"content\": \"4\"}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"add\", \"parameters\":"
    "   {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"number\"}}}}}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static cJSON *ctx;
    if (!ctx && !(ctx = cJSON_Parse(context_json))) return 0;
    cllm_jinja *t = NULL;
    cllm_error err;
    if (cllm_jinja_compile((const char *)data, size, "fuzz", &t, &err) != CLLM_OK) return 0;
    char *out = NULL;
    size_t n;
    if (cllm_jinja_render(t, ctx, &out, &n, &err) == CLLM_OK) free(out);
    cllm_jinja_free(t);
    return 0;
}
