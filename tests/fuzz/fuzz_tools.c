/*
 * fuzz_tools.c: what reads model output and user files in tool calling
 * (include/cllm/infer/tools.h, agent.h). The first byte picks the target:
 * 0, the rest is an expression for the calculator; 1, a model's reply from
 * which calls of a fixed tool list are read, and each call that comes out
 * is run through a calculator toolbox; 2, a toolbox file (through a memfd,
 * as cllm_toolbox_load reads paths). Refusals are the parsers' job; a crash,
 * sanitizer report, leak or runaway is a finding.
 */
#include <string.h>

#include <cjson/cJSON.h>

#include "cllm/infer/agent.h"
#include "cllm/infer/tools.h"
#include "fuzz.h"

static const char tools_json[] =
    "[{\"type\": \"function\", \"function\": {\"name\": \"calculator\", \"parameters\": {\"type\": \"object\", "
    "\"properties\": {\"expression\": {\"type\": \"string\"}}, \"required\": [\"expression\"]}}, "
    "\"x-cllm-builtin\": \"calculator\"}, {\"type\": \"function\", \"function\": {\"name\": \"f\"}, "
    "\"x-cllm-builtin\": \"calculator\"}]";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char *text = malloc(size);
    if (!text) return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0; /* the rest, up to its first NUL */
    cllm_error err;
    if (data[0] % 3 == 0) {
        char out[64];
        cllm_calculator(text, out, sizeof out, &err);
    } else if (data[0] % 3 == 1) {
        static cllm_toolbox *tb;
        if (!tb) {
            char path[64];
            int fd = fuzz_file_open((const uint8_t *)tools_json, sizeof tools_json - 1, path, sizeof path);
            if (fd < 0 || cllm_toolbox_load(path, &tb, &err) != CLLM_OK) abort(); /* the harness's own file */
            fuzz_file_close(fd);
        }
        char *content = NULL;
        int invalid = 0;
        cJSON *calls = cllm_tools_extract(cllm_toolbox_tools(tb), text, data[0] & 4, "call", &content, &invalid);
        const cJSON *c;
        cJSON_ArrayForEach(c, calls) {
            const cJSON *fn = cJSON_GetObjectItem(c, "function");
            int ok;
            free(cllm_toolbox_call(tb, cJSON_GetStringValue(cJSON_GetObjectItem(fn, "name")),
                                   cJSON_GetStringValue(cJSON_GetObjectItem(fn, "arguments")), &ok));
        }
        cJSON_Delete(calls);
        free(content);
    } else {
        char path[64];
        int fd = fuzz_file_open(data + 1, size - 1, path, sizeof path);
        cllm_toolbox *tb = NULL;
        if (fd >= 0 && cllm_toolbox_load(path, &tb, &err) == CLLM_OK) cllm_toolbox_free(tb);
        if (fd >= 0) fuzz_file_close(fd);
    }
    free(text);
    return 0;
}
