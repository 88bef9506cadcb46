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
 */
#ifndef CLLM_STOP_H
#define CLLM_STOP_H

#include <stddef.h>

#include "cllm/status.h"

#define CLLM_STOP_MAX 16
#define CLLM_STOP_MAX_LEN 256

typedef struct {
    int n;
    char strings[CLLM_STOP_MAX][CLLM_STOP_MAX_LEN + 1];
    size_t lens[CLLM_STOP_MAX];
    char held[CLLM_STOP_MAX_LEN]; /* text not yet released (a possible stop prefix) */
    size_t n_held;
    int stopped;                  /* 1 once a stop string has matched */
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

#endif
