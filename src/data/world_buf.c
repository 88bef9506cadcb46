/*
 * world_buf.c: the growable text buffer the world generator writes into,
 * with JSON string escaping and Korean particle attachment. Does not do
 * any I/O.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "world_internal.h"

void wb_free(wbuf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

void wb_reset(wbuf *b) {
    b->len = 0;
    if (b->data) b->data[0] = 0;
}

static int wb_reserve(wbuf *b, size_t extra) {
    if (b->oom) return 0;
    if (b->len + extra + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        if (cap > ((size_t)-1) / 2) {
            b->oom = 1;
            return 0;
        }
        cap *= 2;
    }
    char *d = realloc(b->data, cap);
    if (!d) {
        b->oom = 1;
        return 0;
    }
    b->data = d;
    b->cap = cap;
    return 1;
}

void wb_putn(wbuf *b, const char *s, size_t n) {
    if (!wb_reserve(b, n)) return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

void wb_puts(wbuf *b, const char *s) { wb_putn(b, s, strlen(s)); }

void wb_printf(wbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        wb_putn(b, small, (size_t)n);
        return;
    }
    if (!wb_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void wb_json_str(wbuf *b, const char *s) {
    wb_putn(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': wb_putn(b, "\\\"", 2); break;
        case '\\': wb_putn(b, "\\\\", 2); break;
        case '\n': wb_putn(b, "\\n", 2); break;
        case '\r': wb_putn(b, "\\r", 2); break;
        case '\t': wb_putn(b, "\\t", 2); break;
        default:
            if (*p < 0x20) wb_printf(b, "\\u%04x", *p);
            else wb_putn(b, (const char *)p, 1);
        }
    }
    wb_putn(b, "\"", 1);
}

void wb_ko(wbuf *b, const char *word, cllm_ko_particle p) {
    wb_puts(b, word);
    wb_puts(b, cllm_ko_particle_for(word, p));
}

void wb_capitalize_at(wbuf *b, size_t from) {
    for (size_t i = from; i < b->len; i++) {
        char c = b->data[i];
        if (c >= 'a' && c <= 'z') {
            b->data[i] = (char)(c - 'a' + 'A');
            return;
        }
        if ((c >= 'A' && c <= 'Z') || (unsigned char)c >= 0x80) return;
    }
}
