/*
 * stop.h: stop strings matched across token boundaries.
 *
 * Generated text arrives in pieces (one detokenized token at a time, already
 * cut at whole UTF-8 characters). A stop string may straddle pieces, so the
 * matcher holds back any tail of the text that could still grow into a stop
 * string and releases it only once it cannot. When a stop string completes,
 * everything before it is released and nothing of the stop string leaks.
 *
 * Limits: at most CLLM_STOP_MAX strings of at most CLLM_STOP_MAX_LEN bytes;
 * empty strings are ignored (they would match everywhere).
 *
 * A text stream (cllm_text_stream, below) is the one path from sampled token
 * ids to the text a caller may show: detokenize, keep whole UTF-8
 * characters, hold back possible stop prefixes. cllm_generate and the
 * server's worker both use it, so a completion streams the same text in
 * either place.
 *
 * Not here: sampling, end-of-generation token ids (generate.h), where the
 * text goes (callbacks, SSE chunks).
 */
#ifndef CLLM_STOP_H
#define CLLM_STOP_H

#include <stddef.h>

#include "cllm/core/status.h"
#include "cllm/tokenizer/tokenizer.h"

#define CLLM_STOP_MAX 16
#define CLLM_STOP_MAX_LEN 256

typedef struct {
    int n;
    char strings[CLLM_STOP_MAX][CLLM_STOP_MAX_LEN + 1];
    size_t lens[CLLM_STOP_MAX];
    char held[CLLM_STOP_MAX_LEN]; /* text not yet released (a possible stop prefix) */
    size_t n_held;
    int stopped;                  /* 1 + index of the stop string that matched; 0 while none has */
} cllm_stop_matcher;

/* Copies the strings; fails naming the index when one is too long or there
 * are too many. Empty strings are skipped. */
cllm_status cllm_stop_init(cllm_stop_matcher *m, const char *const *stops, int n_stops,
                           cllm_error *err);

/* Feeds a piece; writes releasable text to out (capacity >= len + CLLM_STOP_MAX_LEN)
 * and returns its length. After a match, m->stopped is 1 and later feeds
 * release nothing. */
size_t cllm_stop_feed(cllm_stop_matcher *m, const char *piece, size_t len, char *out);

/* End of generation without a stop: releases what is held. out needs CLLM_STOP_MAX_LEN. */
size_t cllm_stop_flush(cllm_stop_matcher *m, char *out);

/* ---- text streams ------------------------------------------------------- */

/* Room for one token's text after UTF-8 repair (decode_stream needs
 * 3 * (token bytes + 4), so tokens up to 1446 bytes); a longer token fails
 * cllm_text_stream_token with CLLM_ERR_ARG. */
#define CLLM_TEXT_STREAM_PIECE_MAX (4096 + CLLM_STOP_MAX_LEN)
/* Bytes `out` needs for one cllm_text_stream_token call followed by one
 * cllm_text_stream_end call written after it: held text plus one piece,
 * then held text again plus a U+FFFD. */
#define CLLM_TEXT_STREAM_OUT_MAX (CLLM_TEXT_STREAM_PIECE_MAX + 2 * CLLM_STOP_MAX_LEN + 8)

typedef struct {
    cllm_utf8_stream utf8;  /* bytes of a character not yet complete */
    cllm_stop_matcher stop; /* text held back as a possible stop prefix */
} cllm_text_stream;

/* Starts a stream with the given stop strings (cllm_stop_init's rules). */
cllm_status cllm_text_stream_init(cllm_text_stream *ts, const char *const *stops, int n_stops, cllm_error *err);

/* Feeds one sampled token (not an end-of-generation token: end the stream
 * instead) and writes the text it releases to out (capacity
 * CLLM_TEXT_STREAM_OUT_MAX), its length to *n_out. Once a stop string has
 * matched, releases nothing. On a decode error (id outside the vocabulary,
 * an over-long token) *n_out is 0 and the stream is unchanged. */
cllm_status cllm_text_stream_token(cllm_text_stream *ts, const cllm_tokenizer *tok, uint32_t token, char *out,
                                   size_t *n_out, cllm_error *err);

/* Ends the stream (end-of-generation token, length or context limit):
 * releases a dangling incomplete character as U+FFFD and the held-back
 * text, unless a stop string matched. Returns the bytes written to out
 * (at most CLLM_STOP_MAX_LEN + 3). Later calls release nothing. */
size_t cllm_text_stream_end(cllm_text_stream *ts, char *out);

/* The stop string that matched, or NULL while none has. */
static inline const char *cllm_stop_matched(const cllm_stop_matcher *m) {
    return m->stopped ? m->strings[m->stopped - 1] : NULL;
}

/* Non-zero once a stop string has matched (the text before it was released). */
static inline int cllm_text_stream_stopped(const cllm_text_stream *ts) { return ts->stop.stopped; }

#endif
