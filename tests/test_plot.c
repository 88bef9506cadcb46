/*
 * test_plot.c: SVG line charts (include/cllm/core/plot.h): structure, scaling,
 * gaps at non-finite points, escaping, bucketing of long series, atomic write;
 * grouped bar charts: one bar per finite value, heights to scale, negative
 * values, labels escaped, bad arguments.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cllm/core/plot.h"
#include "test.h"

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static void test_plot_two_series_with_gap(void) {
    double x[5] = {0, 10, 20, 30, 40}, y1[5] = {4.0, 3.0, NAN, 2.0, 1.0};
    double xv[2] = {20, 40}, yv[2] = {3.5, 2.5};
    cllm_plot_series s[2] = {{"train <loss>", x, y1, 5, NULL, 0, 0}, {"val & co", xv, yv, 2, "#ff0000", 1, 0}};
    cllm_plot_params p = cllm_plot_default_params();
    p.title = "Loss";
    p.x_label = "step";
    p.y_label = "loss";
    char *svg = NULL;
    size_t len = 0;
    cllm_error err = {0};
    CHECK(cllm_plot_svg_render(&p, s, 2, &svg, &len, &err) == CLLM_OK, "%s", err.msg);
    if (!svg) return;
    CHECK(strlen(svg) == len && strncmp(svg, "<?xml", 5) == 0 && strstr(svg, "</svg>\n"), "document frame");
    /* the NaN splits the train series in two polylines; val is one more */
    CHECK(count(svg, "<polyline") == 3, "polylines: %d", count(svg, "<polyline"));
    CHECK(count(svg, "<circle") == 2, "markers only on the val series");
    CHECK(strstr(svg, "train &lt;loss&gt;") && strstr(svg, "val &amp; co") && !strstr(svg, "<loss>"),
          "labels escaped");
    /* x spans 0..40 over the 710 px plot width starting at 70: x=0 at 70.0, x=40 at 780.0 */
    CHECK(strstr(svg, "70.0,") && strstr(svg, "780.0,"), "x range maps to the frame edges");
    free(svg);
}

static void test_plot_long_series_bucketed_and_log(void) {
    size_t n = 100000;
    double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        x[i] = (double)i;
        y[i] = 10.0 / (1.0 + (double)i);
    }
    cllm_plot_series s = {"decay", x, y, n, NULL, 0, 0};
    cllm_plot_params p = cllm_plot_default_params();
    p.log_y = 1;
    char *svg = NULL;
    size_t len = 0;
    cllm_error err = {0};
    CHECK(cllm_plot_svg_render(&p, &s, 1, &svg, &len, &err) == CLLM_OK, "%s", err.msg);
    if (svg) {
        /* each point prints as "x,y " : count commas inside the polyline */
        const char *pts = strstr(svg, "points=\"");
        int commas = 0;
        for (const char *q = pts; q && *q && *q != '/'; q++) commas += *q == ',';
        CHECK(commas == CLLM_PLOT_MAX_POINTS, "bucketed to %d points, got %d", CLLM_PLOT_MAX_POINTS, commas);
        CHECK(len < 200000, "file stays small (%zu bytes)", len);
        free(svg);
    }
    free(x);
    free(y);
}

static void test_plot_edge_cases(void) {
    cllm_plot_params p = cllm_plot_default_params();
    char *svg = NULL;
    size_t len = 0;
    cllm_error err = {0};
    CHECK(cllm_plot_svg_render(&p, NULL, 0, &svg, &len, &err) == CLLM_OK, "no series: %s", err.msg);
    free(svg);
    double x[1] = {5}, y[1] = {2};
    cllm_plot_series one = {"one", x, y, 1, NULL, 1, 0};
    CHECK(cllm_plot_svg_render(&p, &one, 1, &svg, &len, &err) == CLLM_OK && strstr(svg, "<circle"),
          "single point: %s", err.msg);
    free(svg);
    p.width = 10;
    CHECK(cllm_plot_svg_render(&p, &one, 1, &svg, &len, &err) == CLLM_ERR_ARG && svg == NULL, "tiny size rejected");
    p.width = 0;
    char path[] = "/tmp/cllm_test_plot_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd >= 0) close(fd);
    CHECK(cllm_plot_svg_write(path, &p, &one, 1, &err) == CLLM_OK, "write: %s", err.msg);
    FILE *f = fopen(path, "rb");
    char head[6] = {0};
    CHECK(f && fread(head, 1, 5, f) == 5 && strcmp(head, "<?xml") == 0, "file written");
    if (f) fclose(f);
    unlink(path);
    CHECK(cllm_plot_svg_write("/nonexistent-dir/x.svg", &p, &one, 1, &err) == CLLM_ERR_IO &&
              strstr(err.msg, "/nonexistent-dir/x.svg"), "unwritable path: %s", err.msg);
}

static void test_plot_bars_grouped_to_scale(void) {
    /* 2 series (stages) x 3 groups (tasks); one value missing */
    const char *groups[3] = {"faq", "a<b", "sum"};
    const char *series[2] = {"sft", "dpo & co"};
    double v[6] = {50, 100, 0, 25, NAN, 75};
    cllm_plot_params p = cllm_plot_default_params();
    p.title = "scores";
    p.y_max = 100;
    char *svg = NULL;
    size_t len = 0;
    cllm_error err = {0};
    CHECK(cllm_plot_bars_svg_render(&p, groups, 3, series, 2, v, &svg, &len, &err) == CLLM_OK, "%s", err.msg);
    if (!svg) return;
    CHECK(strlen(svg) == len && strncmp(svg, "<?xml", 5) == 0 && strstr(svg, "</svg>\n"), "document frame");
    CHECK(count(svg, "<title>") == 5, "one bar per finite value: %d", count(svg, "<title>"));
    /* plot height 450 - 40 - 55 = 355 px for 0..100: 50 -> 177.5 px, 100 -> from y=40 (the top), 25 -> 88.8 */
    CHECK(strstr(svg, "height=\"177.5\"><title>sft, faq: 50<"), "50 of 100 is half the height");
    CHECK(strstr(svg, "y=\"40.0\" width=") && strstr(svg, "height=\"355.0\"><title>sft, a&lt;b: 100<"),
          "100 of 100 reaches the top");
    CHECK(strstr(svg, "height=\"88.8\"><title>dpo &amp; co, faq: 25<"), "25 of 100, labels escaped");
    CHECK(strstr(svg, "height=\"0.0\"><title>sft, sum: 0<"), "zero is a flat bar");
    CHECK(!strstr(svg, "a<b") && strstr(svg, ">a&lt;b<"), "group label escaped");
    CHECK(strstr(svg, ">sft</text>") && strstr(svg, ">dpo &amp; co</text>"), "legend");
    /* slot width (800 - 70 - 150) / 3 = 193.3; bars 0.8 * 193.3 / 2 = 77.3 wide */
    CHECK(strstr(svg, "width=\"77.3\""), "bar width");
    free(svg);
    /* negative values extend the axis below zero; y_max 0 takes the data's top */
    double neg[2] = {-1, 3};
    p.y_max = 0;
    CHECK(cllm_plot_bars_svg_render(&p, groups, 2, series, 1, neg, &svg, &len, &err) == CLLM_OK, "%s", err.msg);
    if (svg) {
        CHECK(strstr(svg, ">-1</text>") && strstr(svg, ">3</text>") && !strstr(svg, ">4</text>"),
              "axis from -1 to 3 in steps of 1");
        CHECK(count(svg, "<title>") == 2, "both bars drawn");
        free(svg);
    }
}

static void test_plot_bars_bad_arguments(void) {
    const char *groups[1] = {"g"};
    const char *series[1] = {"s"};
    double v[1] = {1};
    cllm_plot_params p = cllm_plot_default_params();
    char *svg = NULL;
    size_t len = 0;
    cllm_error err = {0};
    CHECK(cllm_plot_bars_svg_render(&p, groups, 0, series, 1, v, &svg, &len, &err) == CLLM_ERR_ARG && !svg,
          "no groups");
    CHECK(cllm_plot_bars_svg_render(&p, groups, 1, series, 1, NULL, &svg, &len, &err) == CLLM_ERR_ARG && !svg,
          "no values");
    p.log_y = 1;
    CHECK(cllm_plot_bars_svg_render(&p, groups, 1, series, 1, v, &svg, &len, &err) == CLLM_ERR_ARG && !svg,
          "log axis refused");
    p.log_y = 0;
    p.y_max = -5;
    CHECK(cllm_plot_bars_svg_render(&p, groups, 1, series, 1, v, &svg, &len, &err) == CLLM_ERR_ARG && !svg,
          "negative y_max refused");
    p.y_max = 0;
    CHECK(cllm_plot_bars_svg_render(&p, groups, 100, series, 100, v, &svg, &len, &err) == CLLM_ERR_ARG && !svg,
          "more than CLLM_PLOT_MAX_BARS bars refused before reading values");
    CHECK(cllm_plot_bars_svg_write("/nonexistent-dir/b.svg", &p, groups, 1, series, 1, v, &err) == CLLM_ERR_IO &&
              strstr(err.msg, "/nonexistent-dir/b.svg"), "unwritable path: %s", err.msg);
    char path[] = "/tmp/cllm_test_bars_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd >= 0) close(fd);
    CHECK(cllm_plot_bars_svg_write(path, &p, groups, 1, series, 1, v, &err) == CLLM_OK, "write: %s", err.msg);
    FILE *f = fopen(path, "rb");
    char head[6] = {0};
    CHECK(f && fread(head, 1, 5, f) == 5 && strcmp(head, "<?xml") == 0, "file written");
    if (f) fclose(f);
    unlink(path);
}

int main(void) {
    TEST_RUN(test_plot_two_series_with_gap);
    TEST_RUN(test_plot_long_series_bucketed_and_log);
    TEST_RUN(test_plot_edge_cases);
    TEST_RUN(test_plot_bars_grouped_to_scale);
    TEST_RUN(test_plot_bars_bad_arguments);
    return test_finish();
}
