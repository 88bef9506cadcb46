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

/* Length of the valid UTF-8 character at s (1-4), or 0 when s starts an
 * invalid or truncated sequence. */
static int utf8_char(const unsigned char *s) {
    if (s[0] < 0x80) return 1;
    int n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : 0;
    if (n == 0 || (n == 3 && s[0] > 0xef)) return 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) || (s[0] == 0xf0 && s[1] < 0x90) ||
        (s[0] == 0xf4 && s[1] > 0x8f))
        return 0; /* overlong, surrogate, beyond U+10FFFF */
    return n;
}

void cli_print_safe(FILE *out, const char *text) {
    const unsigned char *s = (const unsigned char *)text;
    while (*s) {
        int n = utf8_char(s);
        if (n == 1 && (*s >= 0x20 || *s == '\n' || *s == '\t') && *s != 0x7f) fputc(*s, out);
        else if (n > 1) fwrite(s, 1, (size_t)n, out);
        else fprintf(out, "\\x%02x", *s), n = 1; /* escape sequences, control bytes, invalid UTF-8 */
        s += n;
    }
}

int cli_usage_error(const char *command, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "cllm %s: ", command);
    cli_print_safe(stderr, msg);
    fprintf(stderr, "\nRun 'cllm %s --help' for usage.\n", command);
    return CLI_EXIT_USAGE;
}

int cli_fail(const char *command, const cllm_error *err) {
    fprintf(stderr, "cllm %s: error: ", command);
    cli_print_safe(stderr, err->msg);
    fputc('\n', stderr);
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

int cli_parse_precision(const char *command, const char *text, cllm_precision *out) {
    if (!cllm_precision_from_name(text, out)) {
        cli_usage_error(command, "--precision must be fp32 or bf16, got '%s'", text);
        return 0;
    }
    cllm_error err;
    if (cllm_precision_check(*out, &err) != CLLM_OK) {
        cli_usage_error(command, "--precision %s: %s", text, err.msg);
        return 0;
    }
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
