/*
 * stop.c: hold-back matching of stop strings, and text streams (token ids ->
 * whole UTF-8 characters -> stop matcher), see stop.h. Does not sample or
 * decide when generation ends.
 *
 * Invariant: `held` is the longest suffix of all text seen so far that is a
 * proper prefix of some stop string. Every byte before it can be released,
 * because no stop string can start there and still be incomplete.
 */
#include "cllm/infer/stop.h"

#include <string.h>

cllm_status cllm_stop_init(cllm_stop_matcher *m, const char *const *stops, int n_stops,
                           cllm_error *err) {
    memset(m, 0, sizeof *m);
    if (n_stops < 0) return cllm_error_set(err, CLLM_ERR_ARG, "stop: negative count");
    for (int i = 0; i < n_stops; i++) {
        size_t len = stops[i] ? strlen(stops[i]) : 0;
        if (len == 0) continue;
        if (len > CLLM_STOP_MAX_LEN)
            return cllm_error_set(err, CLLM_ERR_LIMIT, "stop[%d] is %zu bytes; the limit is %d", i, len,
                                  CLLM_STOP_MAX_LEN);
        if (m->n >= CLLM_STOP_MAX)
            return cllm_error_set(err, CLLM_ERR_LIMIT, "stop: at most %d stop strings", CLLM_STOP_MAX);
        memcpy(m->strings[m->n], stops[i], len + 1);
        m->lens[m->n] = len;
        m->n++;
    }
    return CLLM_OK;
}

/* Length of the longest suffix of buf[0,n) that is a proper prefix of a stop string. */
static size_t longest_partial(const cllm_stop_matcher *m, const char *buf, size_t n) {
    size_t best = 0;
    for (int s = 0; s < m->n; s++) {
        size_t max = m->lens[s] - 1 < n ? m->lens[s] - 1 : n;
        for (size_t k = max; k > best; k--)
            if (!memcmp(buf + n - k, m->strings[s], k)) {
                best = k;
                break;
            }
    }
    return best;
}

size_t cllm_stop_feed(cllm_stop_matcher *m, const char *piece, size_t len, char *out) {
    if (m->stopped) return 0;
    if (m->n == 0) {
        memcpy(out, piece, len);
        return len;
    }
    /* Work on held + piece, written into out (enough capacity by contract). */
    size_t n = m->n_held + len;
    memcpy(out, m->held, m->n_held);
    memcpy(out + m->n_held, piece, len);
    /* Earliest complete match wins. */
    size_t first = n;
    int which = -1;
    for (int s = 0; s < m->n; s++) {
        if (m->lens[s] > n) continue;
        for (size_t i = 0; i + m->lens[s] <= n && i < first; i++)
            if (!memcmp(out + i, m->strings[s], m->lens[s])) {
                first = i;
                which = s;
                break;
            }
    }
    if (first < n) {
        m->stopped = 1 + which;
        m->n_held = 0;
        return first;
    }
    size_t keep = longest_partial(m, out, n);
    memcpy(m->held, out + n - keep, keep);
    m->n_held = keep;
    return n - keep;
}

size_t cllm_stop_flush(cllm_stop_matcher *m, char *out) {
    if (m->stopped) return 0;
    size_t n = m->n_held;
    memcpy(out, m->held, n);
    m->n_held = 0;
    return n;
}

/* ---- text streams --------------------------------------------------------- */

cllm_status cllm_text_stream_init(cllm_text_stream *ts, const char *const *stops, int n_stops, cllm_error *err) {
    memset(&ts->utf8, 0, sizeof ts->utf8);
    return cllm_stop_init(&ts->stop, stops, n_stops, err);
}

cllm_status cllm_text_stream_token(cllm_text_stream *ts, const cllm_tokenizer *tok, uint32_t token, char *out,
                                   size_t *n_out, cllm_error *err) {
    char piece[CLLM_TEXT_STREAM_PIECE_MAX];
    size_t plen = 0;
    *n_out = 0;
    cllm_utf8_stream saved = ts->utf8;
    cllm_status st = cllm_tokenizer_decode_stream(tok, &ts->utf8, token, piece, sizeof piece, &plen, err);
    if (st != CLLM_OK) {
        ts->utf8 = saved;
        return st;
    }
    *n_out = cllm_stop_feed(&ts->stop, piece, plen, out);
    return CLLM_OK;
}

size_t cllm_text_stream_end(cllm_text_stream *ts, char *out) {
    char tail[4]; /* one U+FFFD at most */
    size_t n = cllm_utf8_stream_flush(&ts->utf8, tail);
    size_t k = cllm_stop_feed(&ts->stop, tail, n, out);
    return k + cllm_stop_flush(&ts->stop, out + k);
}
