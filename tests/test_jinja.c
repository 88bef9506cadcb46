/*
 * test_jinja.c: cllm's Jinja interpreter (src/infer/jinja*.c) against
 * Jinja2 itself.
 *
 * The reference: tests/reference/jinja_render.py renders, with Debian's
 * python3-jinja2 set up as Hugging Face's apply_chat_template sets it up,
 * every family template in tests/reference/jinja_templates/ over every
 * conversation in tests/reference/jinja_cases.json (add_generation_prompt
 * false and true), plus short snippets that pin down expressions, filters,
 * Python value printing and whitespace control. Each case must come out
 * byte-identical, or fail in both (with the same message for
 * raise_exception). The script must run: without python3-jinja2 this test
 * FAILS, it does not skip.
 *
 * Then what the reference cannot show: compile errors naming line and
 * reason, unsupported features refused at compile time, and the render
 * limits (loop iterations, output bytes, memory, macro recursion, nesting).
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/infer/jinja.h"
#include "test.h"

static char *read_all(FILE *f, size_t *n) {
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += r;
        if (cap - len < 2) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (buf) buf[len] = 0;
    if (n) *n = len;
    return buf;
}

static char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *s = read_all(f, n);
    fclose(f);
    return s;
}

/* Renders src with ctx (JSON text, may be NULL); returns status, fills out. */
static cllm_status render(const char *src, const char *ctx_json, char **out, cllm_error *err) {
    cllm_jinja *t = NULL;
    *out = NULL;
    cllm_status s = cllm_jinja_compile(src, strlen(src), "t", &t, err);
    if (s != CLLM_OK) return s;
    cJSON *ctx = ctx_json ? cJSON_Parse(ctx_json) : NULL;
    size_t n;
    s = cllm_jinja_render(t, ctx, out, &n, err);
    cJSON_Delete(ctx);
    cllm_jinja_free(t);
    return s;
}

static int ref_cases, ref_identical, ref_both_failed, ref_families;

static void test_jinja_reference(void) {
    FILE *p = popen("/usr/bin/python3 tests/reference/jinja_render.py", "r");
    CHECK(p, "cannot start /usr/bin/python3");
    if (!p) return;
    size_t n;
    char *json = read_all(p, &n);
    int rc = pclose(p);
    CHECK(rc == 0, "tests/reference/jinja_render.py failed (status %d): python3-jinja2 (Debian) is required", rc);
    cJSON *cases = json ? cJSON_Parse(json) : NULL;
    free(json);
    CHECK(cJSON_IsArray(cases) && cJSON_GetArraySize(cases) > 100, "reference printed no case list");
    if (!cases) return;
    char last_template[128] = "";
    cllm_jinja *t = NULL;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const char *tname = cJSON_GetStringValue(cJSON_GetObjectItem(c, "template"));
        const char *source = cJSON_GetStringValue(cJSON_GetObjectItem(c, "source"));
        const char *conv = cJSON_GetStringValue(cJSON_GetObjectItem(c, "conversation"));
        int agp = cJSON_IsTrue(cJSON_GetObjectItem(c, "add_generation_prompt"));
        const char *want = cJSON_GetStringValue(cJSON_GetObjectItem(c, "output"));
        const char *want_err = cJSON_GetStringValue(cJSON_GetObjectItem(c, "error"));
        cllm_error err = {0};
        cllm_status s;
        if (tname && strcmp(tname, last_template)) {
            cllm_jinja_free(t);
            t = NULL;
            char path[256];
            const char *tdir = getenv("CLLM_JINJA_TEMPLATES"); /* tests/interop/templates.sh */
            snprintf(path, sizeof path, "%s/%s.jinja", tdir && *tdir ? tdir : "tests/reference/jinja_templates", tname);
            size_t len;
            char *src = read_file(path, &len);
            CHECK(src, "cannot read %s", path);
            s = src ? cllm_jinja_compile(src, len, tname, &t, &err) : CLLM_ERR_IO;
            CHECK(s == CLLM_OK, "%s does not compile: %s", path, err.msg);
            free(src);
            snprintf(last_template, sizeof last_template, "%s", tname);
            ref_families++;
        }
        cllm_jinja *one = NULL;
        if (source) {
            s = cllm_jinja_compile(source, strlen(source), "snippet", &one, &err);
            if (s != CLLM_OK) {
                ref_cases++;
                CHECK(want_err, "%s: cllm refuses a template Jinja renders: %s", conv, err.msg);
                if (want_err) ref_both_failed++;
                continue;
            }
        }
        const cllm_jinja *use = source ? one : t;
        if (!use) continue;
        char *out = NULL;
        size_t out_len = 0;
        s = cllm_jinja_render(use, cJSON_GetObjectItem(c, "context"), &out, &out_len, &err);
        ref_cases++;
        const char *label = tname ? tname : "snippet";
        if (want) {
            CHECK(s == CLLM_OK, "%s / %s / agp=%d: cllm failed: %s", label, conv, agp, err.msg);
            if (s == CLLM_OK) {
                int same = out_len == strlen(want) && !memcmp(out, want, out_len);
                CHECK(same, "%s / %s / agp=%d: output differs\n--- jinja2 ---\n%s\n--- cllm ---\n%s\n---", label, conv, agp,
                      want, out);
                ref_identical += same;
            }
        } else {
            CHECK(s != CLLM_OK, "%s / %s / agp=%d: Jinja fails (%s) but cllm rendered:\n%s", label, conv, agp,
                  want_err ? want_err : "?", out ? out : "");
            if (s != CLLM_OK) {
                ref_both_failed++;
                /* raise_exception messages come through unchanged */
                if (want_err && !strchr(want_err, '\'') && !strstr(want_err, "Error"))
                    CHECK(strstr(err.msg, want_err), "%s / %s: error '%s' lacks Jinja's message '%s'", label, conv, err.msg,
                          want_err);
            }
        }
        free(out);
        cllm_jinja_free(one);
    }
    cllm_jinja_free(t);
    cJSON_Delete(cases);
    fprintf(stderr, "  reference: %d cases over %d family templates + snippets: %d byte-identical, %d fail in both\n",
            ref_cases, ref_families, ref_identical, ref_both_failed);
    const char *want_fam = getenv("CLLM_JINJA_FAMILIES"); /* templates.sh: its own count */
    const int min_fam = want_fam && *want_fam ? atoi(want_fam) : 9;
    CHECK(ref_families >= min_fam, "only %d family templates (expected %d)", ref_families, min_fam);
}

static void expect_compile_error(const char *src, const char *needle) {
    cllm_jinja *t = NULL;
    cllm_error err = {0};
    cllm_status s = cllm_jinja_compile(src, strlen(src), "tmpl", &t, &err);
    CHECK(s != CLLM_OK && !t, "'%s' compiled", src);
    CHECK(strstr(err.msg, needle), "'%s': error '%s' lacks '%s'", src, err.msg, needle);
    cllm_jinja_free(t);
}

static void test_jinja_compile_errors_name_line_and_reason(void) {
    expect_compile_error("a\nb\n{% include 'x.jinja' %}", "tmpl: line 3: unknown tag 'include'");
    expect_compile_error("{% import 'm' as m %}", "line 1: unknown tag 'import'");
    expect_compile_error("{% extends 'base' %}", "unknown tag 'extends'");
    expect_compile_error("{% call foo() %}{% endcall %}", "unknown tag 'call'");
    expect_compile_error("{% frobnicate %}", "line 1: unknown tag 'frobnicate'");
    expect_compile_error("x\n{% if a %}\nfoo", "line 2: 'if' block is never closed (missing {% endif %})");
    expect_compile_error("{% for m in messages %}", "'for' block is never closed (missing {% endfor %})");
    expect_compile_error("{% endif %}", "unexpected 'endif'");
    expect_compile_error("{% if a %}{% endfor %}", "unexpected 'endfor' inside 'if'");
    expect_compile_error("{{ x ", "unexpected end of template");
    expect_compile_error("\n\n{{ x | frob }}", "line 3: filter 'frob' is not supported");
    expect_compile_error("{{ x is frob }}", "test 'frob' is not supported");
    expect_compile_error("{{ 'abc }}", "unterminated string literal");
    expect_compile_error("{# never closed", "missing end of comment tag");
    expect_compile_error("{{ (1 + 2 }}", "expected ')'");
    expect_compile_error("{{ 1 + }}", "unexpected '}}'");
    expect_compile_error("{% break %}", "'break' outside a for loop");
    expect_compile_error("{{ a ? b }}", "unexpected character '?'");
    expect_compile_error("{% for x in y recursive %}{% endfor %}", "recursive for loops are not supported");
    expect_compile_error("{{ f(*args) }}", "*args and **kwargs are not supported");
}

static void expect_render_error(const char *src, const char *ctx, cllm_status want, const char *needle) {
    char *out = NULL;
    cllm_error err = {0};
    cllm_status s = render(src, ctx, &out, &err);
    CHECK(s == want, "'%.60s': status %s (%s), expected %s", src, cllm_status_name(s), err.msg, cllm_status_name(want));
    CHECK(!out, "'%.60s' left output", src);
    CHECK(strstr(err.msg, needle), "'%.60s': error '%s' lacks '%s'", src, err.msg, needle);
    free(out);
}

static void test_jinja_render_errors_and_limits(void) {
    expect_render_error("\n{{ raise_exception('Only user and assistant roles are supported!') }}", NULL, CLLM_ERR_FORMAT,
                        "t: line 2: Only user and assistant roles are supported!");
    expect_render_error("{{ foo.bar }}", NULL, CLLM_ERR_FORMAT, "'foo' is undefined");
    expect_render_error("{{ messages[0].content }}", "{\"messages\": []}", CLLM_ERR_FORMAT, "no element 0");
    expect_render_error("{% set r = range(2000) %}{% for i in r %}{% for j in r %}{{ i if j == 0 }}{% endfor %}{% endfor %}", NULL, CLLM_ERR_LIMIT,
                        "CLLM_JINJA_MAX_ITERATIONS");
    expect_render_error("{% for i in range(10000000000) %}{% endfor %}", NULL, CLLM_ERR_LIMIT, "CLLM_JINJA_MAX_ITERATIONS");
    expect_render_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", NULL, CLLM_ERR_LIMIT, "CLLM_JINJA_MAX_DEPTH");
    expect_render_error("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", NULL, CLLM_ERR_LIMIT, "CLLM_JINJA_MAX_OUTPUT");
    expect_render_error("{% set ns = namespace(s='xy') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", NULL,
                        CLLM_ERR_LIMIT, "CLLM_JINJA_MAX_MEMORY");
    expect_render_error("{{ 'ab' * 100000000000 }}", NULL, CLLM_ERR_LIMIT, "CLLM_JINJA_MAX_MEMORY");
    expect_render_error("{{ 9223372036854775807 + 1 }}", NULL, CLLM_ERR_FORMAT, "integer overflow");
    expect_render_error("{{ 1 // 0 }}", NULL, CLLM_ERR_FORMAT, "by zero");
    expect_render_error("{{ 'a'.format(1) }}", NULL, CLLM_ERR_FORMAT, "no method 'format'");
    expect_render_error("{{ x.__class__ }}{{ x.__class__.mro() }}", "{\"x\": \"s\"}", CLLM_ERR_FORMAT, "has no attribute '__class__'");
    /* deep nesting is refused at compile time, without exhausting the stack */
    char *deep = malloc(200001);
    memset(deep, '(', 100000);
    memset(deep + 100000, ')', 100000);
    deep[200000] = 0;
    char *src = malloc(200020);
    snprintf(src, 200020, "{{ %s }}", deep);
    expect_compile_error(src, "nested deeper than");
    size_t k = 0;
    for (int i = 0; i < 5000; i++) k += (size_t)sprintf(src + k, "{%% if x %%}");
    expect_compile_error(src, "nested deeper than");
    k = 0;
    for (int i = 0; i < 20000; i++) k += (size_t)sprintf(src + k, "not ");
    char *nots = malloc(k + 16);
    snprintf(nots, k + 16, "{{ %s1 }}", src);
    expect_compile_error(nots, "nested deeper than");
    free(nots);
    free(src);
    free(deep);
}

static void test_jinja_context_and_api(void) {
    char *out = NULL;
    cllm_error err = {0};
    CHECK(render("plain text, no tags", NULL, &out, &err) == CLLM_OK && out && !strcmp(out, "plain text, no tags"), "%s", err.msg);
    free(out);
    CHECK(render("", NULL, &out, &err) == CLLM_OK && out && !*out, "empty template: %s", err.msg);
    free(out);
    CHECK(render("{{ x }}|{{ y }}", "{\"x\": 1.0, \"y\": 0.5}", &out, &err) == CLLM_OK && out && !strcmp(out, "1|0.5"),
          "JSON numbers: '%s' %s", out ? out : "", err.msg);
    free(out);
    cllm_jinja *t = NULL;
    CHECK(cllm_jinja_compile("{{ x }}", 7, "t", &t, &err) == CLLM_OK, "%s", err.msg);
    cJSON *arr = cJSON_CreateArray();
    size_t n;
    CHECK(cllm_jinja_render(t, arr, &out, &n, &err) == CLLM_ERR_ARG && !out, "array context accepted");
    cJSON_Delete(arr);
    cllm_jinja_free(t);
    cllm_jinja_free(NULL);
    /* one template, many renders (the server renders per request) */
    CHECK(cllm_jinja_compile("{% for m in messages %}{{ m.content }}{% endfor %}", 50, "t", &t, &err) == CLLM_OK, "%s", err.msg);
    cJSON *ctx = cJSON_Parse("{\"messages\": [{\"content\": \"a\"}, {\"content\": \"b\"}]}");
    for (int i = 0; i < 3; i++) {
        CHECK(cllm_jinja_render(t, ctx, &out, &n, &err) == CLLM_OK && n == 2 && !strcmp(out, "ab"), "render %d", i);
        free(out);
    }
    cJSON_Delete(ctx);
    cllm_jinja_free(t);
}

int main(void) {
    TEST_RUN(test_jinja_reference);
    TEST_RUN(test_jinja_compile_errors_name_line_and_reason);
    TEST_RUN(test_jinja_render_errors_and_limits);
    TEST_RUN(test_jinja_context_and_api);
    return test_finish();
}
