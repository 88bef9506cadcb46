/*
 * test_stop.c: stop strings across piece boundaries never leak, and text
 * streams (token ids -> whole UTF-8 characters -> stop matcher, the one path
 * cllm_generate and the server share) release exactly the text before a
 * stop, whole characters only, and everything held at the end.
 */
#include <stdlib.h>

#include "cllm/infer/stop.h"
#include "test.h"

/* Feeds `pieces` one by one and returns everything released (plus flush). */
static void run(const char *const *stops, int n_stops, const char *const *pieces, int n_pieces, char *released,
                int *stopped) {
    cllm_stop_matcher m;
    cllm_error err;
    CHECK(cllm_stop_init(&m, stops, n_stops, &err) == CLLM_OK, "%s", err.msg);
    size_t total = 0;
    char out[1024];
    for (int i = 0; i < n_pieces; i++) {
        size_t n = cllm_stop_feed(&m, pieces[i], strlen(pieces[i]), out);
        memcpy(released + total, out, n);
        total += n;
    }
    total += cllm_stop_flush(&m, released + total);
    released[total] = '\0';
    *stopped = m.stopped;
}

static void test_stop_matches_across_pieces(void) {
    const char *stops[] = {"\nUser:"};
    const char *pieces[] = {"Hello", " there\n", "Us", "er", ": more"};
    char out[256];
    int stopped;
    run(stops, 1, pieces, 5, out, &stopped);
    CHECK(stopped, "stop detected");
    CHECK(!strcmp(out, "Hello there"), "released '%s'", out);
}

static void test_stop_releases_false_prefixes(void) {
    const char *stops[] = {"###"};
    const char *pieces[] = {"a#", "#b", "##", "c"};
    char out[256];
    int stopped;
    run(stops, 1, pieces, 4, out, &stopped);
    CHECK(!stopped, "no stop");
    CHECK(!strcmp(out, "a##b##c"), "everything released in order: '%s'", out);
}

static void test_stop_earliest_of_several(void) {
    const char *stops[] = {"END", "", "xy"};
    const char *pieces[] = {"abcxyzEND"};
    char out[256];
    int stopped;
    run(stops, 3, pieces, 1, out, &stopped);
    CHECK(stopped && !strcmp(out, "abc"), "earliest match wins: '%s'", out);
    /* the matcher names the string that matched (llama.cpp's stopping_word) */
    cllm_stop_matcher m;
    cllm_error err;
    CHECK(cllm_stop_init(&m, stops, 3, &err) == CLLM_OK && cllm_stop_matched(&m) == NULL, "none matched yet");
    cllm_stop_feed(&m, pieces[0], strlen(pieces[0]), out);
    CHECK(cllm_stop_matched(&m) && !strcmp(cllm_stop_matched(&m), "xy"), "matched: %s",
          cllm_stop_matched(&m) ? cllm_stop_matched(&m) : "(none)");
}

static void test_stop_holds_back_only_possible_prefix(void) {
    cllm_stop_matcher m;
    cllm_error err;
    const char *stops[] = {"<|im_end|>"};
    CHECK(cllm_stop_init(&m, stops, 1, &err) == CLLM_OK, "%s", err.msg);
    char out[512];
    size_t n = cllm_stop_feed(&m, "Hi <|im", 7, out);
    CHECK(n == 3 && !memcmp(out, "Hi ", 3), "releases text before the partial stop (%zu)", n);
    n = cllm_stop_feed(&m, "_x", 2, out);
    CHECK(n == 6 && !memcmp(out, "<|im_x", 6), "a broken prefix is released (%zu)", n);
}

static void test_stop_limits(void) {
    cllm_stop_matcher m;
    cllm_error err;
    char longstop[400];
    memset(longstop, 'a', sizeof longstop - 1);
    longstop[sizeof longstop - 1] = 0;
    const char *stops[] = {"ok", longstop};
    CHECK(cllm_stop_init(&m, stops, 2, &err) == CLLM_ERR_LIMIT && strstr(err.msg, "stop[1]"), "%s", err.msg);
    const char *many[20];
    for (int i = 0; i < 20; i++) many[i] = "z";
    CHECK(cllm_stop_init(&m, many, 20, &err) == CLLM_ERR_LIMIT, "too many stops refused");
}

/* ---- text streams ---------------------------------------------------------- */

static cllm_tokenizer *bytes_tok; /* 256 tokens, token b = byte b */

static void make_bytes_tok(void) {
    cllm_error err;
    if (cllm_tokenizer_new(&bytes_tok, 256, CLLM_PRETOK_NONE, NULL, &err) != CLLM_OK) exit(1);
    for (uint32_t b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        if (cllm_tokenizer_set_token(bytes_tok, b, &c, 1, CLLM_TOKEN_NORMAL, &err) != CLLM_OK) exit(1);
    }
    if (cllm_tokenizer_finalize(bytes_tok, CLLM_BPE_RANKS, &err) != CLLM_OK) exit(1);
}

/* Feeds str one byte token at a time; appends released text to acc[*n]
 * and returns the length released by the last token. */
static size_t feed_bytes(cllm_text_stream *ts, const char *str, char *acc, size_t *n) {
    char out[CLLM_TEXT_STREAM_OUT_MAX];
    size_t k = 0;
    cllm_error err;
    for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
        CHECK(cllm_text_stream_token(ts, bytes_tok, *p, out, &k, &err) == CLLM_OK, "%s", err.msg);
        memcpy(acc + *n, out, k);
        *n += k;
    }
    acc[*n] = '\0';
    return k;
}

static void test_stop_text_stream_whole_characters(void) {
    cllm_text_stream ts;
    cllm_error err;
    CHECK(cllm_text_stream_init(&ts, NULL, 0, &err) == CLLM_OK, "%s", err.msg);
    char acc[64];
    size_t n = 0;
    feed_bytes(&ts, "x\xED\x95", acc, &n); /* "x" and the first two bytes of U+D55C */
    CHECK(n == 1 && acc[0] == 'x', "an incomplete character is not released (%zu bytes)", n);
    size_t last = feed_bytes(&ts, "\x9C", acc, &n);
    CHECK(last == 3 && !strcmp(acc, "x\xED\x95\x9C"), "the completed character is released whole");
    feed_bytes(&ts, "\xED", acc, &n);
    char out[CLLM_TEXT_STREAM_OUT_MAX];
    size_t k = cllm_text_stream_end(&ts, out);
    CHECK(k == 3 && !memcmp(out, "\xEF\xBF\xBD", 3), "a dangling lead byte ends as U+FFFD (%zu bytes)", k);
    CHECK(cllm_text_stream_end(&ts, out) == 0, "a second end releases nothing");
}

static void test_stop_text_stream_stop_across_tokens(void) {
    const char *stops[] = {"\nUser:"};
    cllm_text_stream ts;
    cllm_error err;
    CHECK(cllm_text_stream_init(&ts, stops, 1, &err) == CLLM_OK, "%s", err.msg);
    char acc[64];
    size_t n = 0;
    feed_bytes(&ts, "Hi\nUs", acc, &n);
    CHECK(!strcmp(acc, "Hi") && !cllm_text_stream_stopped(&ts), "the possible stop prefix is held: '%s'", acc);
    feed_bytes(&ts, "er: more", acc, &n);
    CHECK(cllm_text_stream_stopped(&ts) && !strcmp(acc, "Hi"), "stopped, nothing of the stop leaked: '%s'", acc);
    char out[CLLM_TEXT_STREAM_OUT_MAX];
    CHECK(cllm_text_stream_end(&ts, out) == 0, "end after a stop releases nothing");
}

static void test_stop_text_stream_end_releases_held(void) {
    const char *stops[] = {"END"};
    cllm_text_stream ts;
    cllm_error err;
    CHECK(cllm_text_stream_init(&ts, stops, 1, &err) == CLLM_OK, "%s", err.msg);
    char acc[64];
    size_t n = 0;
    feed_bytes(&ts, "aEN", acc, &n);
    CHECK(!strcmp(acc, "a"), "'EN' held back: '%s'", acc);
    char out[CLLM_TEXT_STREAM_OUT_MAX];
    size_t k = cllm_text_stream_end(&ts, out);
    CHECK(k == 2 && !memcmp(out, "EN", 2), "end releases the held prefix (%zu bytes)", k);
    CHECK(!cllm_text_stream_stopped(&ts), "no stop matched");
}

static void test_stop_text_stream_bad_token(void) {
    cllm_text_stream ts;
    cllm_error err;
    CHECK(cllm_text_stream_init(&ts, NULL, 0, &err) == CLLM_OK, "%s", err.msg);
    char acc[64], out[CLLM_TEXT_STREAM_OUT_MAX];
    size_t n = 0, k = 99;
    feed_bytes(&ts, "\xC3", acc, &n); /* half of U+00E9 */
    CHECK(cllm_text_stream_token(&ts, bytes_tok, 256, out, &k, &err) != CLLM_OK && k == 0,
          "an id outside the vocabulary fails with no text");
    feed_bytes(&ts, "\xA9", acc, &n);
    CHECK(!strcmp(acc, "\xC3\xA9"), "the stream is unchanged by the failed token");
    const char *bad[] = {"ok", NULL};
    char longstop[CLLM_STOP_MAX_LEN + 2];
    memset(longstop, 'a', sizeof longstop - 1);
    longstop[sizeof longstop - 1] = 0;
    bad[1] = longstop;
    CHECK(cllm_text_stream_init(&ts, bad, 2, &err) == CLLM_ERR_LIMIT, "an over-long stop string is refused");
}

int main(void) {
    make_bytes_tok();
    TEST_RUN(test_stop_text_stream_whole_characters);
    TEST_RUN(test_stop_text_stream_stop_across_tokens);
    TEST_RUN(test_stop_text_stream_end_releases_held);
    TEST_RUN(test_stop_text_stream_bad_token);
    TEST_RUN(test_stop_matches_across_pieces);
    TEST_RUN(test_stop_releases_false_prefixes);
    TEST_RUN(test_stop_earliest_of_several);
    TEST_RUN(test_stop_holds_back_only_possible_prefix);
    TEST_RUN(test_stop_limits);
    cllm_tokenizer_destroy(bytes_tok);
    return test_finish();
}
