/*
 * vreward.c: verifiable rewards for GRPO: exact match of the trimmed
 * completion, equality of the first number in it, a PCRE2 pattern match,
 * or the expected tool call (infer/tools.h's format).
 * Each returns 1.0 or 0.0. The completion is the decoded reply WITHOUT its
 * turn-end token(s) or text (the caller strips them).
 * Does not: give partial credit or parse expressions.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <math.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cllm/train/rlhf.h"

struct cllm_vreward {
    cllm_vreward_kind kind;
    pcre2_code *re;
    pcre2_match_data *md;
};

int cllm_vreward_parse(const char *name) {
    if (!strcmp(name, "exact")) return CLLM_VREWARD_EXACT;
    if (!strcmp(name, "number")) return CLLM_VREWARD_NUMBER;
    if (!strcmp(name, "regex")) return CLLM_VREWARD_REGEX;
    if (!strcmp(name, "tool_call")) return CLLM_VREWARD_TOOL_CALL;
    return -1;
}

cllm_status cllm_vreward_create(cllm_vreward_kind kind, const char *pattern, cllm_vreward **out,
                                cllm_error *err) {
    *out = NULL;
    if ((int)kind < 0 || kind >= CLLM_VREWARD_COUNT)
        return cllm_error_set(err, CLLM_ERR_ARG, "verifiable reward: unknown kind %d", (int)kind);
    if (kind == CLLM_VREWARD_REGEX && (!pattern || !*pattern))
        return cllm_error_set(err, CLLM_ERR_ARG, "verifiable reward: regex needs a pattern");
    cllm_vreward *v = calloc(1, sizeof *v);
    if (!v) return cllm_error_set(err, CLLM_ERR_NOMEM, "verifiable reward: out of memory");
    v->kind = kind;
    if (kind == CLLM_VREWARD_REGEX) {
        int code;
        PCRE2_SIZE off;
        v->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code, &off, NULL);
        if (!v->re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(code, msg, sizeof msg);
            free(v);
            return cllm_error_set(err, CLLM_ERR_ARG, "verifiable reward: regex error at offset %zu: %s",
                                  (size_t)off, (const char *)msg);
        }
        v->md = pcre2_match_data_create_from_pattern(v->re, NULL);
        if (!v->md) {
            pcre2_code_free(v->re);
            free(v);
            return cllm_error_set(err, CLLM_ERR_NOMEM, "verifiable reward: out of memory");
        }
    }
    *out = v;
    return CLLM_OK;
}

void cllm_vreward_destroy(cllm_vreward *v) {
    if (!v) return;
    pcre2_match_data_free(v->md);
    pcre2_code_free(v->re);
    free(v);
}

static void trim(const char **s, size_t *n) {
    while (*n && isspace((unsigned char)(*s)[0])) (*s)++, (*n)--;
    while (*n && isspace((unsigned char)(*s)[*n - 1])) (*n)--;
}

/* First decimal number in s[0..n) (optional sign, digits, optional fraction). */
static int first_number(const char *s, size_t n, double *out) {
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        if ((s[j] == '-' || s[j] == '+') && j + 1 < n && isdigit((unsigned char)s[j + 1])) j++;
        if (!isdigit((unsigned char)s[j])) continue;
        char buf[64];
        size_t k = 0;
        for (size_t q = i; q < n && k < sizeof buf - 1 && (isdigit((unsigned char)s[q]) || s[q] == '.' ||
                                                           (q == i && (s[q] == '-' || s[q] == '+')));
             q++)
            buf[k++] = s[q];
        buf[k] = '\0';
        char *end;
        *out = strtod(buf, &end);
        return end != buf;
    }
    return 0;
}

/* 1 when the completion's first <tool_call> block names the answer's tool
 * with arguments equal to its arguments as JSON values (key order and
 * spacing free; arguments given as a JSON string are parsed). */
static int same_call(const char *completion, size_t len, const char *answer) {
    static const char open[] = "<tool_call>", close[] = "</tool_call>";
    const char *o = memmem(completion, len, open, sizeof open - 1);
    const char *body = o ? o + sizeof open - 1 : NULL;
    const char *c = body ? memmem(body, len - (size_t)(body - completion), close, sizeof close - 1) : NULL;
    if (!c || !answer) return 0;
    cJSON *got = cJSON_ParseWithLength(body, (size_t)(c - body)), *want = cJSON_Parse(answer);
    int same = 0;
    for (int i = 0; i < 2; i++) { /* arguments written as a JSON string count as the object they spell */
        cJSON *call = i ? want : got, *args = cJSON_GetObjectItemCaseSensitive(call, "arguments");
        cJSON *parsed = cJSON_IsString(args) ? cJSON_Parse(args->valuestring) : NULL;
        if (parsed) cJSON_ReplaceItemInObjectCaseSensitive(call, "arguments", parsed);
    }
    const cJSON *gn = cJSON_GetObjectItemCaseSensitive(got, "name"), *wn = cJSON_GetObjectItemCaseSensitive(want, "name");
    if (cJSON_IsString(gn) && cJSON_IsString(wn) && !strcmp(gn->valuestring, wn->valuestring))
        same = cJSON_Compare(cJSON_GetObjectItemCaseSensitive(got, "arguments"),
                             cJSON_GetObjectItemCaseSensitive(want, "arguments"), 1);
    cJSON_Delete(got);
    cJSON_Delete(want);
    return same;
}

float cllm_vreward_score(const cllm_vreward *v, const char *completion, size_t len, const char *answer) {
    switch (v->kind) {
    case CLLM_VREWARD_EXACT: {
        if (!answer) return 0.0f;
        const char *a = answer, *c = completion;
        size_t an = strlen(answer), cn = len;
        trim(&a, &an);
        trim(&c, &cn);
        return an == cn && memcmp(a, c, an) == 0 ? 1.0f : 0.0f;
    }
    case CLLM_VREWARD_NUMBER: {
        double x, y;
        if (!answer || !first_number(answer, strlen(answer), &y) || !first_number(completion, len, &x)) return 0.0f;
        return fabs(x - y) <= 1e-9 * (1 + fabs(y)) ? 1.0f : 0.0f;
    }
    case CLLM_VREWARD_REGEX:
        return pcre2_match(v->re, (PCRE2_SPTR)completion, len, 0, 0, v->md, NULL) >= 0 ? 1.0f : 0.0f;
    case CLLM_VREWARD_TOOL_CALL:
        return same_call(completion, len, answer) ? 1.0f : 0.0f;
    default:
        return 0.0f;
    }
}
