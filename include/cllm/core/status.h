/*
 * status.h: how every cllm library function reports failure.
 *
 * Contract: a function that can fail returns a cllm_status and, when it is not
 * CLLM_OK, has written one human-readable sentence into the caller's
 * cllm_error naming the file, field and offset (or request field) at fault and,
 * where it helps, what to do next. The library never prints and never exits;
 * only tools/ turns a status into an exit code (1 bad data, 2 bad usage).
 *
 * CLLM_ASSERT is for our own bugs, never for input: it stays on in release
 * builds and aborts with file and line.
 */
#ifndef CLLM_STATUS_H
#define CLLM_STATUS_H

#include <stddef.h>

typedef enum {
    CLLM_OK = 0,
    CLLM_ERR_IO,        /* open/read/write/fsync/rename failed (errno text included) */
    CLLM_ERR_FORMAT,    /* a file or request is malformed */
    CLLM_ERR_ARG,       /* a caller-supplied value is out of range */
    CLLM_ERR_NOMEM,     /* an allocation failed */
    CLLM_ERR_LIMIT,     /* a hard limit (size, count, context) was exceeded */
    CLLM_ERR_NUMERIC,   /* NaN/Inf where a finite value is required */
    CLLM_ERR_INTERNAL,  /* should not happen; a bug in cllm */
    CLLM_ERR_COUNT
} cllm_status;

/* The caller owns this buffer; functions fill msg on failure. */
typedef struct {
    cllm_status status;
    char msg[1024];
} cllm_error;

/* Short constant name of a status ("io", "format", ...). */
const char *cllm_status_name(cllm_status status);

/* Formats msg into err (if err is not NULL) and returns status, so callers can
 * write `return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: ...", path);`. */
cllm_status cllm_error_set(cllm_error *err, cllm_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to an existing message, for adding context on the way up. */
void cllm_error_prefix(cllm_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefixes "path: " unless the message already names path: for functions
 * whose deeper errors (a getter, a shared parser) may not know the file. */
void cllm_error_name_file(cllm_error *err, const char *path);

void cllm_error_clear(cllm_error *err);

/* Always-on assertion for internal invariants (never for input validation). */
#define CLLM_ASSERT(cond)                                                    \
    do {                                                                     \
        if (!(cond)) cllm_assert_fail(#cond, __FILE__, __LINE__);            \
    } while (0)

_Noreturn void cllm_assert_fail(const char *expr, const char *file, int line);

#endif
