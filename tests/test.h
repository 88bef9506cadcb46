/*
 * test.h: the tiny test harness every tests/test_<module>.c uses.
 *
 * A test file defines `static void test_<module>_<behaviour>(void)` cases,
 * runs them with TEST_RUN(name) in main and returns test_finish(). A case
 * fails if any CHECK inside it fails; each failed check prints file:line and
 * a message. test_finish prints the closing line "N passed, N failed" and
 * returns non-zero when anything failed, so `make test` and CI see it.
 *
 * Tolerances are written beside each CHECK_NEAR, with the reason.
 */
#ifndef CLLM_TEST_H
#define CLLM_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int test_cases_passed, test_cases_failed, test_current_failed;
static const char *test_current_name = "";

#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        if (!(cond)) {                                                            \
            test_current_failed++;                                                \
            fprintf(stderr, "  FAIL %s:%d [%s]: ", __FILE__, __LINE__, test_current_name); \
            fprintf(stderr, __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                  \
        }                                                                         \
    } while (0)

/* |a - b| <= atol + rtol * |b|, and both finite. */
#define CHECK_NEAR(a, b, atol, rtol, what)                                        \
    do {                                                                          \
        double check_a_ = (double)(a), check_b_ = (double)(b);                    \
        CHECK(isfinite(check_a_) && isfinite(check_b_) &&                        \
                  fabs(check_a_ - check_b_) <= (atol) + (rtol) * fabs(check_b_),  \
              "%s: got %.9g, expected %.9g (atol %g, rtol %g)", (what), check_a_, \
              check_b_, (double)(atol), (double)(rtol));                          \
    } while (0)

#define TEST_RUN(fn)                                                              \
    do {                                                                          \
        test_current_name = #fn;                                                  \
        test_current_failed = 0;                                                  \
        fn();                                                                     \
        if (test_current_failed) {                                                \
            test_cases_failed++;                                                  \
            fprintf(stderr, "not ok  %s\n", #fn);                                 \
        } else {                                                                  \
            test_cases_passed++;                                                  \
            fprintf(stderr, "ok      %s\n", #fn);                                 \
        }                                                                         \
    } while (0)

static inline int test_finish(void) {
    printf("%d passed, %d failed\n", test_cases_passed, test_cases_failed);
    fflush(stdout);
    return test_cases_failed ? 1 : 0;
}

#endif
