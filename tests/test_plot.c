/*
 * test_plot.c: SVG line charts (include/cllm/plot.h): structure, scaling,
 * gaps at non-finite points, escaping, bucketing of long series, atomic write.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cllm/plot.h"
#include "test.h"

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static void test_plot_two_series_with_gap(void) {
    double x[5] = {0, 10, 20, 30, 40}, y1[5] = {4.0, 3.0, NAN, 2.0, 1.0};
    double xv[2] = {20, 40}, yv[2] = {3.5, 2.5};
    cllm_plot_series s[2] = {{"train <loss>", x, y1, 5, NULL, 0}, {"val & co", xv, yv, 2, "#ff0000", 1}};
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
    cllm_plot_series s = {"decay", x, y, n, NULL, 0};
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
    cllm_plot_series one = {"one", x, y, 1, NULL, 1};
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

int main(void) {
    TEST_RUN(test_plot_two_series_with_gap);
    TEST_RUN(test_plot_long_series_bucketed_and_log);
    TEST_RUN(test_plot_edge_cases);
    return test_finish();
}
