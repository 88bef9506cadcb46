/*
 * test_stop.c: stop strings across piece boundaries never leak.
 */
#include "cllm/stop.h"
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

int main(void) {
    TEST_RUN(test_stop_matches_across_pieces);
    TEST_RUN(test_stop_releases_false_prefixes);
    TEST_RUN(test_stop_earliest_of_several);
    TEST_RUN(test_stop_holds_back_only_possible_prefix);
    TEST_RUN(test_stop_limits);
    return test_finish();
}
