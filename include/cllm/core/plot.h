/*
 * plot.h: line charts as standalone SVG files (loss curves, and any other
 * x/y series: learning rate, reward, throughput...) and scatter plots.
 *
 * One chart: axes with "nice" ticks (1, 2, 5 x 10^k), optional log-scale x and y,
 * a title, axis labels, a legend, and one polyline per series. Points whose x
 * or y is NaN/Inf (or y <= 0 on a log axis) are skipped and break the line,
 * so a missing validation value never draws a spike. Series longer than
 * CLLM_PLOT_MAX_POINTS are averaged into that many buckets to keep files
 * small. Text is XML-escaped. The file is written atomically.
 * Grouped bar charts too (cllm_plot_bars_svg_*): one group of bars per
 * category (e.g. a task), one bar per series (e.g. a training stage) with a
 * legend, the y axis from 0 (or below, for negative values) to the largest
 * value or params.y_max; a non-finite value leaves its bar out.
 * Does not: rasterise (no PNG), draw stacked charts, or pick units.
 */
#ifndef CLLM_PLOT_H
#define CLLM_PLOT_H

#include <stddef.h>

#include "cllm/core/status.h"

#define CLLM_PLOT_MAX_POINTS 4000

typedef struct {
    const char *label;   /* legend text */
    const double *x;     /* [n] */
    const double *y;     /* [n] */
    size_t n;
    const char *color;   /* CSS color, or NULL for the built-in palette */
    int markers;         /* 1: draw a small circle at each point (sparse series) */
    int no_line;         /* 1: points only, no connecting line (a scatter; implies markers) */
} cllm_plot_series;

typedef struct {
    const char *title;
    const char *x_label;
    const char *y_label;
    int width, height;   /* pixels; 0 means 800 x 450 */
    int log_y;           /* 1: logarithmic y axis (line charts only) */
    int log_x;           /* 1: logarithmic x axis (line charts only; x <= 0 is skipped) */
    double y_max;        /* bar charts: top of the y axis, 0 = from the data */
} cllm_plot_params;

cllm_plot_params cllm_plot_default_params(void);

/* Renders to a malloc'ed NUL-terminated string (*svg owned by the caller). */
cllm_status cllm_plot_svg_render(const cllm_plot_params *params, const cllm_plot_series *series,
                                 int n_series, char **svg, size_t *len, cllm_error *err);
/* Renders and writes `path` atomically. */
cllm_status cllm_plot_svg_write(const char *path, const cllm_plot_params *params,
                                const cllm_plot_series *series, int n_series, cllm_error *err);

/* Grouped bars: values[s * n_groups + g] is series s in group g ([n_series x
 * n_groups]); groups[n_groups] name the categories under the x axis and
 * series[n_series] the legend entries. At most CLLM_PLOT_MAX_BARS bars. */
#define CLLM_PLOT_MAX_BARS 4096
cllm_status cllm_plot_bars_svg_render(const cllm_plot_params *params, const char *const *groups, int n_groups,
                                      const char *const *series, int n_series, const double *values, char **svg,
                                      size_t *len, cllm_error *err);
cllm_status cllm_plot_bars_svg_write(const char *path, const cllm_plot_params *params, const char *const *groups,
                                     int n_groups, const char *const *series, int n_series, const double *values,
                                     cllm_error *err);

#endif
