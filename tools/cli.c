/*
 * cli.c: strict flag-value parsing and uniform error printing for tools/.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_usage_error(const char *command, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "cllm %s: ", command);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nRun 'cllm %s --help' for usage.\n", command);
    return CLI_EXIT_USAGE;
}

int cli_fail(const char *command, const cllm_error *err) {
    fprintf(stderr, "cllm %s: error: %s\n", command, err->msg);
    return CLI_EXIT_DATA;
}

int cli_is_help(const char *arg) { return !strcmp(arg, "--help") || !strcmp(arg, "-h"); }

const char *cli_value(const char *command, int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        cli_usage_error(command, "flag %s needs a value", argv[*i]);
        return NULL;
    }
    *i += 1;
    return argv[*i];
}

int cli_parse_i64(const char *command, const char *flag, const char *text, int64_t min,
                  int64_t max, int64_t *out) {
    char *end = NULL;
    errno = 0;
    long long v = text && *text ? strtoll(text, &end, 10) : 0;
    if (!text || !*text || *end != '\0' || errno == ERANGE) {
        cli_usage_error(command, "%s expects an integer, got '%s'", flag, text ? text : "");
        return 0;
    }
    if (v < min || v > max) {
        cli_usage_error(command, "%s must be between %lld and %lld, got %lld", flag, (long long)min,
                        (long long)max, v);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_int(const char *command, const char *flag, const char *text, int min, int max,
                  int *out) {
    int64_t v;
    if (!cli_parse_i64(command, flag, text, min, max, &v)) return 0;
    *out = (int)v;
    return 1;
}

int cli_parse_double(const char *command, const char *flag, const char *text, double min,
                     double max, double *out) {
    char *end = NULL;
    errno = 0;
    double v = text && *text ? strtod(text, &end) : 0;
    if (!text || !*text || *end != '\0' || errno == ERANGE || !isfinite(v)) {
        cli_usage_error(command, "%s expects a finite number, got '%s'", flag, text ? text : "");
        return 0;
    }
    if (v < min || v > max) {
        cli_usage_error(command, "%s must be between %g and %g, got %g", flag, min, max, v);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_text_append(cli_text *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->cap + n + 1) * 2;
        char *grown = realloc(t->text, cap);
        if (!grown) return 0;
        t->text = grown;
        t->cap = cap;
    }
    memcpy(t->text + t->len, s, n);
    t->len += n;
    t->text[t->len] = 0;
    return 1;
}
