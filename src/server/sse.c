/*
 * sse.c: server-sent-event framing and UTF-8-safe text pieces.
 *
 * Every event is `data: <one-line JSON>\n\n` (cJSON's unformatted print has
 * no newlines: control characters inside strings are escaped), and a stream
 * ends with `data: [DONE]\n\n`, as OpenAI's API does. Text handed to an
 * event is cut on UTF-8 character boundaries (srv_utf8_complete), so no
 * chunk carries part of a character. Not here: HTTP (http.c).
 */
#include <stdlib.h>
#include <string.h>

#include "server_internal.h"

int srv_buf_append(srv_buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        if (b->off > 0) { /* compact before growing */
            memmove(b->data, b->data + b->off, b->len - b->off);
            b->len -= b->off;
            b->off = 0;
        }
        if (b->len + n + 1 > b->cap) {
            size_t cap = b->cap ? b->cap : 256;
            while (cap < b->len + n + 1) cap *= 2;
            char *d = realloc(b->data, cap);
            if (!d) return -1;
            b->data = d;
            b->cap = cap;
        }
    }
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

void srv_buf_free(srv_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

int srv_sse_event(srv_buf *b, const cJSON *json) {
    char *txt = cJSON_PrintUnformatted(json);
    if (!txt) return -1;
    int rc = srv_buf_append(b, "data: ", 6);
    if (!rc) rc = srv_buf_append(b, txt, strlen(txt));
    if (!rc) rc = srv_buf_append(b, "\n\n", 2);
    free(txt);
    return rc;
}

int srv_sse_done(srv_buf *b) { return srv_buf_append(b, "data: [DONE]\n\n", 14); }

size_t srv_utf8_complete(const char *s, size_t len) {
    /* Walk back over at most 3 continuation bytes to the last lead byte. */
    size_t i = len, back = 0;
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
        back++;
    }
    if (i == 0) return back ? 0 : len;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead < 0x80 ? 1 : (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 : (lead & 0xF8) == 0xF0 ? 4 : 1;
    return back + 1 >= need ? len : i - 1;
}

char *srv_utf8_repair(const char *s, size_t n) {
    char *out = malloc(3 * (n + 4) + 4);
    if (!out) return NULL;
    cllm_utf8_stream st = {0};
    size_t k = cllm_utf8_stream_feed(&st, (const uint8_t *)s, n, out);
    k += cllm_utf8_stream_flush(&st, out + k);
    out[k] = '\0';
    return out;
}

cJSON *srv_token_text(const cllm_tokenizer *tok, int32_t id) {
    const uint8_t *bytes = NULL;
    size_t n = 0;
    if (cllm_tokenizer_token_bytes(tok, (uint32_t)id, &bytes, &n, NULL) != CLLM_OK) return cJSON_CreateString("");
    char *out = srv_utf8_repair((const char *)bytes, n);
    if (!out) return NULL;
    cJSON *j = cJSON_CreateString(out);
    free(out);
    return j;
}

cJSON *srv_token_bytes(const cllm_tokenizer *tok, int32_t id) {
    const uint8_t *bytes = NULL;
    size_t n = 0;
    cJSON *a = cJSON_CreateArray();
    if (a && cllm_tokenizer_token_bytes(tok, (uint32_t)id, &bytes, &n, NULL) == CLLM_OK)
        for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(bytes[i]));
    return a;
}
