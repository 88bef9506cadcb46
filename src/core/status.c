/*
 * status.c: error buffer helpers and the always-on assertion.
 */
#include "cllm/core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *cllm_status_name(cllm_status status) {
    static const char *const names[CLLM_ERR_COUNT] = {
        [CLLM_OK] = "ok",           [CLLM_ERR_IO] = "io",
        [CLLM_ERR_FORMAT] = "format", [CLLM_ERR_ARG] = "argument",
        [CLLM_ERR_NOMEM] = "out of memory", [CLLM_ERR_LIMIT] = "limit",
        [CLLM_ERR_NUMERIC] = "numeric", [CLLM_ERR_INTERNAL] = "internal",
    };
    if ((int)status < 0 || status >= CLLM_ERR_COUNT) return "unknown";
    return names[status];
}

cllm_status cllm_error_set(cllm_error *err, cllm_status status, const char *fmt, ...) {
    if (err) {
        err->status = status;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return status;
}

void cllm_error_prefix(cllm_error *err, const char *fmt, ...) {
    if (!err) return;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char joined[sizeof err->msg];
    snprintf(joined, sizeof joined, "%s: %s", prefix, err->msg);
    memcpy(err->msg, joined, sizeof joined);
}

void cllm_error_name_file(cllm_error *err, const char *path) {
    if (err && path && !strstr(err->msg, path)) cllm_error_prefix(err, "%s", path);
}

void cllm_error_clear(cllm_error *err) {
    if (!err) return;
    err->status = CLLM_OK;
    err->msg[0] = '\0';
}

void cllm_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "cllm internal error: assertion `%s` failed at %s:%d\n"
                    "This is a bug in cllm; please report it with the command you ran.\n",
            expr, file, line);
    abort();
}
