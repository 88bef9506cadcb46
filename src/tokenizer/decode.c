/*
 * decode.c: token ids -> bytes, whole (exact inverse of encode) or streamed
 * as whole UTF-8 characters for display and server streaming.
 *
 * Streaming never emits a partial UTF-8 character: bytes of an incomplete
 * but valid sequence wait for the next token; bytes that can never become
 * valid UTF-8 (stray continuation bytes, overlongs, surrogates D800-DFFF,
 * code points above U+10FFFF) become U+FFFD, one per maximal invalid
 * subpart (Unicode 15, section 3.9, "U+FFFD substitution of maximal subparts").
 */
#include <stdlib.h>
#include <string.h>

#include "cllm/core/fileio.h"
#include "tok_internal.h"

cllm_status cllm_tokenizer_decode(const cllm_tokenizer *t, const uint32_t *ids, size_t n,
                                  char **out, size_t *out_len, cllm_error *err) {
    *out = NULL;
    *out_len = 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= t->n_vocab || (t->kind[ids[i]] == CLLM_TOKEN_UNUSED && !t->spm))
            return cllm_error_set(err, CLLM_ERR_ARG,
                                  "decode: id %u at position %zu is not a token (vocabulary size %u)",
                                  ids[i], i, t->n_vocab);
        if (!cllm_size_add(total, t->len[ids[i]], &total))
            return cllm_error_set(err, CLLM_ERR_LIMIT, "decode: output size overflows");
    }
    char *buf = malloc(total + 1);
    if (!buf) return cllm_error_set(err, CLLM_ERR_NOMEM, "decode: out of memory for %zu bytes", total);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t skip = i == 0 && t->spm && t->spm->add_space_prefix && t->len[ids[0]] &&
                      t->blob[t->off[ids[0]]] == ' '; /* the space the SPM encoder put in front */
        memcpy(buf + o, t->blob + t->off[ids[i]] + skip, t->len[ids[i]] - skip);
        o += t->len[ids[i]] - skip;
    }
    buf[o] = '\0';
    *out = (char *)buf;
    *out_len = o;
    return CLLM_OK;
}

static const char replacement[3] = {(char)0xEF, (char)0xBF, (char)0xBD};

/* Bytes a sequence starting with lead b needs in total; 0 if b cannot lead. */
static int utf8_need(uint8_t b) {
    if (b < 0x80) return 1;
    if (b >= 0xC2 && b <= 0xDF) return 2;
    if (b >= 0xE0 && b <= 0xEF) return 3;
    if (b >= 0xF0 && b <= 0xF4) return 4;
    return 0;
}

/* Whether c may follow the prefix p[0..k) (k >= 1). */
static int utf8_cont_ok(const uint8_t *p, int k, uint8_t c) {
    if (k == 1) {
        switch (p[0]) {
        case 0xE0: return c >= 0xA0 && c <= 0xBF; /* no overlongs */
        case 0xED: return c >= 0x80 && c <= 0x9F; /* no surrogates */
        case 0xF0: return c >= 0x90 && c <= 0xBF;
        case 0xF4: return c >= 0x80 && c <= 0x8F; /* <= U+10FFFF */
        default: break;
        }
    }
    return c >= 0x80 && c <= 0xBF;
}

size_t cllm_utf8_stream_feed(cllm_utf8_stream *st, const uint8_t *bytes, size_t len, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = bytes[i];
        if (st->n_pending) {
            if (utf8_cont_ok(st->pending, st->n_pending, c)) {
                st->pending[st->n_pending++] = c;
                if (st->n_pending == utf8_need(st->pending[0])) {
                    memcpy(out + o, st->pending, (size_t)st->n_pending);
                    o += (size_t)st->n_pending;
                    st->n_pending = 0;
                }
                continue;
            }
            memcpy(out + o, replacement, 3); /* the invalid prefix, then c afresh */
            o += 3;
            st->n_pending = 0;
        }
        int need = utf8_need(c);
        if (need == 1) {
            out[o++] = (char)c;
        } else if (need == 0) {
            memcpy(out + o, replacement, 3);
            o += 3;
        } else {
            st->pending[0] = c;
            st->n_pending = 1;
        }
    }
    return o;
}

size_t cllm_utf8_stream_flush(cllm_utf8_stream *st, char *out) {
    if (!st->n_pending) return 0;
    st->n_pending = 0;
    memcpy(out, replacement, 3);
    return 3;
}

cllm_status cllm_tokenizer_decode_stream(const cllm_tokenizer *t, cllm_utf8_stream *st,
                                         uint32_t id, char *out, size_t cap, size_t *out_len,
                                         cllm_error *err) {
    const uint8_t *b;
    size_t n;
    cllm_status s = cllm_tokenizer_token_bytes(t, id, &b, &n, err);
    if (s != CLLM_OK) return s;
    if (*out_len > cap || cap - *out_len < 3 * (n + 4))
        return cllm_error_set(err, CLLM_ERR_ARG, "decode_stream: output buffer too small (%zu free, need %zu)",
                              cap - (*out_len > cap ? cap : *out_len), 3 * (n + 4));
    *out_len += cllm_utf8_stream_feed(st, b, n, out + *out_len);
    return CLLM_OK;
}
