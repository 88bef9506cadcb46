/*
 * test_agent.c: tool calling without a model: the tool format (tools.h:
 * checking lists, the system section, calls written and read back, the
 * grammars), the built-in tools and toolbox files (agent.h), the chat
 * renderer with tools and calls, and the practice world's tool tasks, every
 * expected result recomputed by the built-ins. The agent loop with a model
 * is tests/test_agent_cli.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cllm/core/fileio.h"
#include "cllm/data/world.h"
#include "cllm/infer/agent.h"
#include "cllm/infer/tools.h"
#include "test.h"

static const char weather_tools[] =
    "[{\"type\": \"function\", \"function\": {\"name\": \"weather\", \"parameters\": {\"type\": \"object\", "
    "\"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"], \"additionalProperties\": false}}, "
    "\"x-note\": \"hidden\"}, {\"type\": \"function\", \"function\": {\"name\": \"time\"}}]";

static char *calc(const char *expr, cllm_status *st) {
    static char out[64];
    cllm_error err;
    *st = cllm_calculator(expr, out, sizeof out, &err);
    if (*st != CLLM_OK) snprintf(out, sizeof out, "%s", err.msg);
    return out;
}

static void test_agent_calculator_values_and_refusals(void) {
    static const struct {
        const char *expr, *value;
    } ok[] = {
        {"4821 + 377", "5198"}, {"9999 * 9999", "99980001"}, {"12 - 40", "-28"},  {"7 / 2", "3.5"},
        {"2 + 3 * 4", "14"},    {"(2 + 3) * 4", "20"},       {"-(3 - 5)", "2"},   {"17 % 5", "2"},
        {"1 / 3", "0.333333"},  {" 0.5+0.25 ", "0.75"},       {"10 / 5", "2"},     {"0 * -3", "0"},
    };
    cllm_status st;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        const char *v = calc(ok[i].expr, &st);
        CHECK(st == CLLM_OK && !strcmp(v, ok[i].value), "%s -> %s (expected %s)", ok[i].expr, v, ok[i].value);
    }
    static const struct {
        const char *expr, *why;
    } bad[] = {
        {"1 / 0", "division by zero"}, {"5 % 0", "division by zero"}, {"(1 + 2", "not closed"},
        {"1 + 2)", "has no '('"},      {"2 ^ 3", "cannot read '^'"},  {"rm -rf /", "cannot read 'r'"},
        {"1e5", "cannot read 'e'"},    {"", "ends early"},            {"1 +", "ends early"},
        {"1..2", "cannot read '.'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *v = calc(bad[i].expr, &st);
        CHECK(st == CLLM_ERR_ARG && strstr(v, bad[i].why), "'%s' -> %s (expected an error with '%s')", bad[i].expr, v,
              bad[i].why);
    }
    char deep[300];
    memset(deep, '(', 200);
    strcpy(deep + 200, "1");
    CHECK(strstr(calc(deep, &st), "nested too deeply") && st == CLLM_ERR_ARG, "deep nesting is refused: %s", deep);
    char *huge = malloc(5000);
    memset(huge, '1', 4999);
    huge[4999] = 0;
    CHECK(strstr(calc(huge, &st), "longer than") && st == CLLM_ERR_ARG, "a long expression is refused");
    free(huge);
}

static void test_agent_tool_lists_are_checked(void) {
    static const struct {
        const char *json, *why;
    } bad[] = {
        {"{}", "must be an array"},
        {"[{\"type\": \"function\"}]", "tools[0] must be"},
        {"[{\"type\": \"function\", \"function\": {\"name\": \"a b\"}}]", "tools[0] must be"},
        {"[{\"type\": \"function\", \"function\": {\"name\": \"f\"}}, {\"type\": \"function\", \"function\": "
         "{\"name\": \"f\"}}]",
         "tools[1] repeats the name 'f'"},
        {"[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"not\": {}}}}]",
         "tools[0].function.parameters: unsupported JSON Schema keyword 'not'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *t = cJSON_Parse(bad[i].json);
        cllm_error err = {0};
        cllm_status st = cllm_tools_check(t, "tools", &err);
        CHECK(st != CLLM_OK && strstr(err.msg, bad[i].why), "%s -> '%s' (expected '%s')", bad[i].json, err.msg,
              bad[i].why);
        cJSON_Delete(t);
    }
    cJSON *t = cJSON_Parse(weather_tools);
    cllm_error err;
    CHECK(cllm_tools_check(t, "tools", &err) == CLLM_OK, "a good list passes");
    char *sys = cllm_tools_system_text("Be brief.", 9, t);
    CHECK(sys && !strncmp(sys, "Be brief.\n\n# Tools\n", 19), "the section follows the system text: %s", sys ? sys : "(null)");
    CHECK(sys && strstr(sys, "<tools>\n{\"type\":\"function\",\"function\":{\"name\":\"weather\""), "one JSON line per tool");
    CHECK(sys && !strstr(sys, "x-note"), "keys beside type and function are not shown");
    CHECK(sys && strstr(sys, "<tool_call>\n{\"name\": <function-name>"), "says how to call");
    free(sys);
    sys = cllm_tools_system_text(NULL, 0, t);
    CHECK(sys && !strncmp(sys, "# Tools\n", 8), "no system text: the section alone");
    free(sys);
    cJSON_Delete(t);
}

static void test_agent_calls_written_and_read_back(void) {
    cJSON *tools = cJSON_Parse(weather_tools);
    cJSON *calls = cJSON_Parse("[{\"id\": \"c\", \"type\": \"function\", \"function\": {\"name\": \"weather\", "
                               "\"arguments\": \"{\\\"city\\\": \\\"Seoul\\\"}\"}}, {\"id\": \"d\", \"type\": "
                               "\"function\", \"function\": {\"name\": \"time\", \"arguments\": {}}}]");
    int oom = 0;
    char *text = cllm_tools_assistant_text("Let me look.", 12, calls, &oom);
    const char *expect = "Let me look.\n<tool_call>\n{\"name\":\"weather\",\"arguments\":{\"city\":\"Seoul\"}}\n"
                         "</tool_call>\n<tool_call>\n{\"name\":\"time\",\"arguments\":{}}\n</tool_call>";
    CHECK(text && !strcmp(text, expect), "written: %s", text);
    char *content = NULL;
    int invalid = -1;
    cJSON *back = cllm_tools_extract(tools, text, 1, "call_7", &content, &invalid);
    CHECK(cJSON_GetArraySize(back) == 2 && invalid == 0, "both calls read back");
    const cJSON *f0 = cJSON_GetObjectItem(cJSON_GetArrayItem(back, 0), "function");
    CHECK(!strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(back, 0), "id")->valuestring, "call_7_0") &&
              !strcmp(cJSON_GetObjectItem(f0, "name")->valuestring, "weather") &&
              !strcmp(cJSON_GetObjectItem(f0, "arguments")->valuestring, "{\"city\":\"Seoul\"}"),
          "ids, names and arguments (a JSON string)");
    CHECK(content && !strcmp(content, "Let me look."), "the text around the calls: %s", content);
    free(content);
    cJSON_Delete(back);
    back = cllm_tools_extract(tools, text, 0, "x", &content, NULL);
    CHECK(cJSON_GetArraySize(back) == 1 && content && strstr(content, "\"time\""),
          "without parallel calls the second stays text");
    free(content);
    cJSON_Delete(back);
    free(text);
    const char *odd = "<tool_call>\n{\"name\": \"shell\", \"arguments\": {}}\n</tool_call> <tool_call>\n{\"name\"";
    back = cllm_tools_extract(tools, odd, 1, "x", &content, &invalid);
    CHECK(!back && invalid == 2, "an undeclared tool and an unfinished call are no calls (%d invalid)", invalid);
    free(content);
    cJSON_Delete(calls);
    cJSON_Delete(tools);
}

static int grammar_takes(const cllm_grammar *g, const char *text) {
    cllm_error err;
    cllm_grammar_matcher *m = cllm_grammar_matcher_create(g, &err);
    int ok = cllm_grammar_matcher_accept(m, (const uint8_t *)text, strlen(text)) && cllm_grammar_matcher_complete(m);
    cllm_grammar_matcher_destroy(m);
    return ok;
}

static void test_agent_call_grammars(void) {
    cJSON *tools = cJSON_Parse(weather_tools);
    cllm_grammar *autog = NULL, *req = NULL, *only = NULL;
    cllm_error err;
    CHECK(cllm_tools_grammar(tools, NULL, 1, CLLM_TOOLS_AUTO, &autog, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_tools_grammar(tools, NULL, 0, CLLM_TOOLS_REQUIRED, &req, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_tools_grammar(tools, "time", 0, CLLM_TOOLS_REQUIRED, &only, &err) == CLLM_OK, "%s", err.msg);
    const char *call = "<tool_call>\n{\"name\": \"weather\", \"arguments\": {\"city\": \"Seoul\"}}\n</tool_call>";
    const char *two = "<tool_call>\n{\"name\":\"time\",\"arguments\":{}}\n</tool_call>\n"
                      "<tool_call>\n{\"name\":\"time\",\"arguments\":{}}\n</tool_call>";
    CHECK(autog && grammar_takes(autog, call) && grammar_takes(autog, two), "auto: calls");
    CHECK(autog && grammar_takes(autog, "It is sunny.") && grammar_takes(autog, ""), "auto: plain text, or nothing");
    CHECK(autog && !grammar_takes(autog, "<b>bold</b>"), "auto: text may not open with '<'");
    CHECK(autog && !grammar_takes(autog, "<tool_call>\n{\"name\": \"weather\", \"arguments\": {\"town\": \"x\"}}\n"
                                         "</tool_call>"),
          "auto: arguments must match the schema");
    CHECK(autog && !grammar_takes(autog, "<tool_call>\n{\"name\": \"shell\", \"arguments\": {}}\n</tool_call>"),
          "auto: only declared tools");
    CHECK(req && grammar_takes(req, call) && !grammar_takes(req, "It is sunny.") && !grammar_takes(req, two),
          "required, not parallel: exactly one call");
    CHECK(only && !grammar_takes(only, call) && grammar_takes(only, "<tool_call>\n{\"name\":\"time\",\"arguments\":{}}\n"
                                                                     "</tool_call>"),
          "a named function only");
    cllm_grammar_destroy(autog);
    cllm_grammar_destroy(req);
    cllm_grammar_destroy(only);
    cJSON_Delete(tools);
}

/* Bytes 0..255 then the ChatML specials. */
static cllm_tokenizer *chatml_tokenizer(void) {
    static const char *const specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    cllm_error err;
    cllm_tokenizer *t = NULL;
    if (cllm_tokenizer_new(&t, 259, CLLM_PRETOK_NONE, NULL, &err) != CLLM_OK) exit(1);
    for (uint32_t b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        cllm_tokenizer_set_token(t, b, &c, 1, CLLM_TOKEN_NORMAL, &err);
    }
    for (uint32_t i = 0; i < 3; i++)
        cllm_tokenizer_set_token(t, 256 + i, specials[i], strlen(specials[i]), CLLM_TOKEN_SPECIAL, &err);
    if (cllm_tokenizer_finalize(t, CLLM_BPE_RANKS, &err) != CLLM_OK) exit(1);
    return t;
}

static void test_agent_chatml_renders_tools_and_calls(void) {
    cllm_tokenizer *tok = chatml_tokenizer();
    cJSON *tools = cJSON_Parse(weather_tools);
    cJSON *msgs = cJSON_Parse("[{\"role\": \"user\", \"content\": \"Weather?\"}, {\"role\": \"assistant\", \"content\": "
                              "null, \"tool_calls\": [{\"id\": \"c\", \"type\": \"function\", \"function\": {\"name\": "
                              "\"weather\", \"arguments\": \"{\\\"city\\\": \\\"Seoul\\\"}\"}}]}, {\"role\": \"tool\", "
                              "\"tool_call_id\": \"c\", \"content\": \"sunny\"}, {\"role\": \"assistant\", \"content\": "
                              "\"It is sunny.\"}]");
    cllm_chat_message *m = NULL;
    int n = 0;
    cllm_error err;
    CHECK(cllm_agent_messages_view(msgs, "messages", &m, &n, &err) == CLLM_OK && n == 4, "%s", err.msg);
    cllm_tokens ids = {0};
    cllm_chat_mask mask = {0};
    CHECK(cllm_chat_render_tools(tok, cllm_chat_template_builtin(CLLM_CHAT_TEMPLATE_CHATML), m, n, CLLM_CHAT_END, tools,
                                 &ids, &mask, &err) == CLLM_OK,
          "%s", err.msg);
    char *text = NULL;
    size_t len = 0;
    cllm_tokenizer_decode(tok, ids.ids, ids.n, &text, &len, &err);
    CHECK(text && !strncmp(text, "<|im_start|>system\n# Tools\n", 27), "a system message is put first: %.60s", text);
    const char *call = "<|im_start|>assistant\n<tool_call>\n{\"name\":\"weather\",\"arguments\":{\"city\":\"Seoul\"}}\n"
                       "</tool_call><|im_end|>\n<|im_start|>tool\nsunny<|im_end|>\n<|im_start|>assistant\nIt is sunny."
                       "<|im_end|>\n";
    CHECK(text && strstr(text, call), "the call, the result and the answer: %s", text ? strstr(text, "</tools>") : "");
    /* learned: the call and the answer (with their end tokens), not the tools, the question or the result */
    size_t learned = 0;
    for (size_t i = 0; i < mask.n; i++) learned += mask.values[i];
    size_t expect = strlen("<tool_call>\n{\"name\":\"weather\",\"arguments\":{\"city\":\"Seoul\"}}\n</tool_call>") + 1 +
                    strlen("It is sunny.") + 1;
    CHECK(learned == expect, "learned %zu tokens, expected %zu", learned, expect);
    free(text);
    free(m);
    cllm_tokens_free(&ids);
    cllm_chat_mask_free(&mask);
    cJSON_Delete(msgs);
    cJSON_Delete(tools);
    cllm_tokenizer_destroy(tok);
}

/* The small world written to a temporary folder; its path in dir. */
static int write_world(char *dir, size_t cap, cllm_world *w) {
    snprintf(dir, cap, "/tmp/cllm-test-agent.XXXXXX");
    if (!mkdtemp(dir)) return 0;
    cllm_world_params p = cllm_world_default_params();
    cllm_error err;
    return cllm_world_build(&p, w, &err) == CLLM_OK && cllm_world_write(w, dir, &err) == CLLM_OK;
}

static void remove_world(const char *dir, const cllm_world *w) {
    char path[512];
    for (int i = 0; i < w->n_files; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, w->files[i].name);
        unlink(path);
    }
    rmdir(dir);
}

static void test_agent_world_toolbox_runs_every_expected_call(void) {
    char dir[64], path[128];
    cllm_world w = {0};
    CHECK(write_world(dir, sizeof dir, &w), "the world is written");
    snprintf(path, sizeof path, "%s/tools.json", dir);
    cllm_toolbox *tb = NULL;
    cllm_error err;
    CHECK(cllm_toolbox_load(path, &tb, &err) == CLLM_OK, "%s", err.msg);
    if (!tb) return;
    CHECK(cJSON_GetArraySize(cllm_toolbox_tools(tb)) == 3, "calculator, order_status, stock");
    static const char *const files[] = {"tool_arithmetic.train.jsonl", "tool_arithmetic.test.jsonl",
                                        "tool_shop.train.jsonl", "tool_shop.test.jsonl"};
    int examples = 0, mismatches = 0, orders = 0, missing = 0, stock = 0;
    for (int f = 0; f < 4; f++) {
        const cllm_world_file *wf = cllm_world_find(&w, files[f]);
        CHECK(wf && wf->n_records > 50, "%s has examples", files[f]);
        for (const char *line = wf ? wf->data : ""; *line;) {
            const char *nl = strchr(line, '\n');
            cJSON *ex = cJSON_ParseWithLength(line, nl ? (size_t)(nl - line) : strlen(line));
            line = nl ? nl + 1 : line + strlen(line);
            const cJSON *msgs = cJSON_GetObjectItem(ex, "messages");
            const cJSON *fn = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 1),
                                                                                          "tool_calls"), 0), "function");
            const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(fn, "name"));
            const char *args = cJSON_GetStringValue(cJSON_GetObjectItem(fn, "arguments"));
            const char *expected = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 2), "content"));
            const char *answer = cJSON_GetStringValue(cJSON_GetObjectItem(ex, "reference"));
            int ok = 0;
            char *got = name && args ? cllm_toolbox_call(tb, name, args, &ok) : NULL;
            if (!got || !ok || !expected || strcmp(got, expected)) {
                if (mismatches++ < 3)
                    fprintf(stderr, "  %s: %s(%s) gave %s, the world says %s\n", files[f], name ? name : "?",
                            args ? args : "?", got ? got : "(nothing)", expected ? expected : "(nothing)");
            } else if (f < 2 && strcmp(answer, got)) { /* arithmetic: the answer is the result */
                if (mismatches++ < 3) fprintf(stderr, "  answer %s, result %s\n", answer, got);
            }
            orders += name && !strcmp(name, "order_status");
            missing += got && strstr(got, "no such order") != NULL;
            stock += name && !strcmp(name, "stock");
            examples++;
            free(got);
            cJSON_Delete(ex);
        }
    }
    CHECK(mismatches == 0 && examples > 1000, "%d examples, %d mismatches", examples, mismatches);
    CHECK(orders > 100 && missing > 10 && missing < orders / 2 && stock > 30,
          "orders (%d, of which %d unknown) and stock questions (%d)", orders, missing, stock);
    int ok = 1;
    char *r = cllm_toolbox_call(tb, "shell", "{\"cmd\": \"ls\"}", &ok);
    CHECK(!ok && r && strstr(r, "no tool named 'shell'"), "an undeclared tool is refused: %s", r);
    free(r);
    r = cllm_toolbox_call(tb, "calculator", "{\"expression\": \"1\", \"x\": 2}", &ok);
    CHECK(!ok && r && strstr(r, "takes {\"expression\""), "arguments that do not fit are refused: %s", r);
    free(r);
    r = cllm_toolbox_call(tb, "calculator", "{\"expression\": \"1/0\"}", &ok);
    CHECK(ok && r && !strcmp(r, "error: division by zero"), "a tool's own error is a result: %s", r);
    free(r);
    r = cllm_toolbox_call(tb, "stock", "{\"item\": \"unicorn\"}", &ok);
    CHECK(ok && r && strstr(r, "does not sell"), "%s", r);
    free(r);
    cllm_toolbox_free(tb);
    remove_world(dir, &w);
    cllm_world_free(&w);
}

static void test_agent_bad_toolbox_files(void) {
    char dir[64] = "/tmp/cllm-test-agent-bad.XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "temp dir");
    static const struct {
        const char *json, *why;
    } bad[] = {
        {"not json", "not valid JSON"},
        {"[]", "non-empty JSON array"},
        {"[{\"type\": \"function\", \"function\": {\"name\": \"sh\"}, \"x-cllm-builtin\": \"shell\"}]",
         "[0].x-cllm-builtin 'shell' is not a built-in tool"},
        {"[{\"type\": \"function\", \"function\": {\"name\": \"c\"}}]", "[0].x-cllm-builtin (missing)"},
        {"[{\"type\": \"function\", \"function\": {\"name\": \"s\"}, \"x-cllm-builtin\": \"shop_stock\"}]",
         "needs \"x-cllm-table\""},
        {"[{\"type\": \"function\", \"function\": {\"name\": \"s\"}, \"x-cllm-builtin\": \"shop_stock\", "
         "\"x-cllm-table\": \"table.json\"}]",
         "the shop table needs \"orders\""},
        {"[{\"type\": \"function\", \"function\": {\"name\": \"a b\"}, \"x-cllm-builtin\": \"calculator\"}]",
         "[0] must be"},
    };
    char path[128], table[128];
    snprintf(path, sizeof path, "%s/tools.json", dir);
    snprintf(table, sizeof table, "%s/table.json", dir);
    cllm_error err;
    cllm_file_write_atomic(table, "{\"stock\": {}}", 13, &err);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cllm_file_write_atomic(path, bad[i].json, strlen(bad[i].json), &err);
        cllm_toolbox *tb = NULL;
        err.msg[0] = 0;
        cllm_status st = cllm_toolbox_load(path, &tb, &err);
        const char *file = strstr(bad[i].why, "shop table") ? "table.json" : "tools.json"; /* the file at fault */
        CHECK(st != CLLM_OK && !tb && strstr(err.msg, bad[i].why) && strstr(err.msg, file),
              "%s -> '%s' (expected '%s')", bad[i].json, err.msg, bad[i].why);
    }
    unlink(path);
    unlink(table);
    rmdir(dir);
}

int main(void) {
    TEST_RUN(test_agent_calculator_values_and_refusals);
    TEST_RUN(test_agent_tool_lists_are_checked);
    TEST_RUN(test_agent_calls_written_and_read_back);
    TEST_RUN(test_agent_call_grammars);
    TEST_RUN(test_agent_chatml_renders_tools_and_calls);
    TEST_RUN(test_agent_world_toolbox_runs_every_expected_call);
    TEST_RUN(test_agent_bad_toolbox_files);
    return test_finish();
}
