/*
 * plot_svg.c: the SVG line charts and grouped bar charts of plot.h.
 *
 * Builds the document in a growing string buffer: frame, grid and tick
 * labels, one <polyline> per unbroken run of finite points, optional
 * markers, legend; or, for bars, one <rect> per finite value with its value
 * in a <title> tooltip. Coordinates are printed with one decimal (0.1 px).
 * Does not: measure text (labels are placed with fixed offsets) or write
 * anything but SVG 1.1.
 */
#include "cllm/core/plot.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/core/fileio.h"

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *s, const char *fmt, ...) {
    if (s->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            s->oom = 1;
            return;
        }
        if ((size_t)n < s->cap - s->len) {
            s->len += (size_t)n;
            return;
        }
        size_t cap = s->cap * 2 + (size_t)n + 1;
        char *b = realloc(s->buf, cap);
        if (!b) {
            s->oom = 1;
            return;
        }
        s->buf = b;
        s->cap = cap;
    }
}

static void sb_escaped(sbuf *s, const char *text) {
    for (const char *p = text ? text : ""; *p; p++) {
        switch (*p) {
        case '<': sb_printf(s, "&lt;"); break;
        case '>': sb_printf(s, "&gt;"); break;
        case '&': sb_printf(s, "&amp;"); break;
        case '"': sb_printf(s, "&quot;"); break;
        default:
            if ((unsigned char)*p >= 0x20 || *p == '\t') sb_printf(s, "%c", *p);
        }
    }
}

cllm_plot_params cllm_plot_default_params(void) {
    cllm_plot_params p = {NULL, NULL, NULL, 800, 450, 0, 0, 0.0};
    return p;
}

/* A "nice" tick step for a range covered by about `target` ticks. */
static double nice_step(double range, int target) {
    if (!(range > 0)) return 1.0;
    double raw = range / target;
    double mag = pow(10.0, floor(log10(raw)));
    double f = raw / mag;
    double nice = f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10;
    return nice * mag;
}

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

static int point_ok(double x, double y, int log_x, int log_y) {
    return isfinite(x) && isfinite(y) && (!log_x || x > 0) && (!log_y || y > 0);
}

/* Bucket means of one series, or the points themselves when short enough.
 * Fills xs/ys (caller-allocated [CLLM_PLOT_MAX_POINTS] or [n]); returns count. */
static size_t reduce_series(const cllm_plot_series *s, int log_x, int log_y, double *xs, double *ys) {
    if (s->n <= CLLM_PLOT_MAX_POINTS) {
        for (size_t i = 0; i < s->n; i++) {
            xs[i] = s->x[i];
            ys[i] = s->y[i];
        }
        return s->n;
    }
    size_t out = 0;
    for (size_t b = 0; b < CLLM_PLOT_MAX_POINTS; b++) {
        size_t lo = s->n * b / CLLM_PLOT_MAX_POINTS, hi = s->n * (b + 1) / CLLM_PLOT_MAX_POINTS;
        double sx = 0, sy = 0;
        size_t k = 0;
        for (size_t i = lo; i < hi; i++)
            if (point_ok(s->x[i], s->y[i], log_x, log_y)) {
                sx += log_x ? log(s->x[i]) : s->x[i];
                sy += log_y ? log(s->y[i]) : s->y[i];
                k++;
            }
        xs[out] = k ? (log_x ? exp(sx / (double)k) : sx / (double)k) : NAN;
        ys[out] = k ? (log_y ? exp(sy / (double)k) : sy / (double)k) : NAN;
        out++;
    }
    return out;
}

/* The SVG prologue shared by every chart: document, white background, title. */
static void svg_begin(sbuf *sb, int width, int height, const char *title) {
    sb_printf(sb,
              "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
              "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
              "font-family=\"sans-serif\" font-size=\"12\">\n"
              "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
              width, height, width, height);
    if (title) {
        sb_printf(sb, "<text x=\"%.1f\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">", width / 2.0);
        sb_escaped(sb, title);
        sb_printf(sb, "</text>\n");
    }
}

cllm_status cllm_plot_svg_render(const cllm_plot_params *params, const cllm_plot_series *series,
                                 int n_series, char **svg, size_t *len, cllm_error *err) {
    *svg = NULL;
    *len = 0;
    cllm_plot_params p = params ? *params : cllm_plot_default_params();
    if (p.width <= 0) p.width = 800;
    if (p.height <= 0) p.height = 450;
    if (p.width < 200 || p.height < 150 || p.width > 20000 || p.height > 20000)
        return cllm_error_set(err, CLLM_ERR_ARG, "plot size %dx%d outside 200x150..20000x20000", p.width, p.height);
    if (n_series < 0 || (n_series > 0 && !series))
        return cllm_error_set(err, CLLM_ERR_ARG, "bad series list");
    /* data range over the drawable points */
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int s = 0; s < n_series; s++)
        for (size_t i = 0; i < series[s].n; i++) {
            double x = series[s].x[i], y = series[s].y[i];
            if (!point_ok(x, y, p.log_x, p.log_y)) continue;
            double tx = p.log_x ? log10(x) : x, ty = p.log_y ? log10(y) : y;
            if (tx < xmin) xmin = tx;
            if (tx > xmax) xmax = tx;
            if (ty < ymin) ymin = ty;
            if (ty > ymax) ymax = ty;
        }
    if (!(xmin <= xmax)) { /* nothing drawable: an empty frame with unit axes */
        xmin = 0, xmax = 1, ymin = 0, ymax = 1;
    }
    if (xmax == xmin) xmin -= 0.5, xmax += 0.5;
    if (ymax == ymin) ymin -= 0.5, ymax += 0.5;
    if (p.log_x) { /* room for markers at the ends of a log axis (scatter plots) */
        double xpad = (xmax - xmin) * 0.03;
        xmin -= xpad;
        xmax += xpad;
    }
    double ypad = (ymax - ymin) * 0.05;
    ymin -= ypad;
    ymax += ypad;
    const double left = 70, right = 20, top = 40, bottom = 55;
    const double pw = p.width - left - right, ph = p.height - top - bottom;
#define PX(tx) (left + ((tx) - xmin) / (xmax - xmin) * pw)
#define TX(x) (p.log_x ? log10(x) : (x))
#define PY(ty) (top + (1.0 - ((ty) - ymin) / (ymax - ymin)) * ph)
    sbuf sb = {malloc(8192), 0, 8192, 0};
    if (!sb.buf) return cllm_error_set(err, CLLM_ERR_NOMEM, "cannot allocate the plot");
    svg_begin(&sb, p.width, p.height, p.title);
    /* grid + ticks */
    sb_printf(&sb, "<g stroke=\"#e0e0e0\" stroke-width=\"1\">\n");
    /* x ticks (as axis values: log10 of x on a log axis): a log axis gets
     * 1, 2 and 5 x 10^k over spans up to 3 decades, whole decades beyond. */
    double xt[64];
    int nxt = 0;
    if (p.log_x) {
        double dec = fmax(1.0, nice_step(xmax - xmin, 8));
        for (double k = floor(xmin); k <= xmax + 1e-9 && nxt < 60; k += (xmax - xmin <= 3 ? 1.0 : dec))
            for (int m = 0; m < 3 && nxt < 60; m++) {
                double t = k + log10(m == 0 ? 1.0 : m == 1 ? 2.0 : 5.0);
                if ((m == 0 || xmax - xmin <= 3) && t >= xmin - 1e-9 && t <= xmax + 1e-9) xt[nxt++] = t;
            }
    } else {
        double xs = nice_step(xmax - xmin, 8);
        for (double t = ceil(xmin / xs) * xs; t <= xmax + xs * 1e-9 && nxt < 60; t += xs)
            xt[nxt++] = fabs(t) < xs * 1e-6 ? 0.0 : t;
    }
    for (int k = 0; k < nxt; k++)
        sb_printf(&sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", PX(xt[k]), top, PX(xt[k]), top + ph);
    double ys = p.log_y ? fmax(1.0, nice_step(ymax - ymin, 6)) : nice_step(ymax - ymin, 6);
    if (p.log_y && ymax - ymin < 1.0) ys = nice_step(ymax - ymin, 6);
    for (double t = ceil(ymin / ys) * ys; t <= ymax + ys * 1e-9; t += ys)
        sb_printf(&sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", left, PY(t), left + pw, PY(t));
    sb_printf(&sb, "</g>\n<g fill=\"#333\">\n");
    for (int k = 0; k < nxt; k++)
        sb_printf(&sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.4g</text>\n", PX(xt[k]), top + ph + 16,
                  p.log_x ? pow(10.0, xt[k]) : xt[k]);
    for (double t = ceil(ymin / ys) * ys; t <= ymax + ys * 1e-9; t += ys)
        sb_printf(&sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.4g</text>\n", left - 6, PY(t) + 4,
                  p.log_y ? pow(10.0, t) : (fabs(t) < ys * 1e-6 ? 0.0 : t));
    sb_printf(&sb, "</g>\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n",
              left, top, pw, ph);
    if (p.x_label) {
        sb_printf(&sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", left + pw / 2, (double)p.height - 12);
        sb_escaped(&sb, p.x_label);
        sb_printf(&sb, "</text>\n");
    }
    if (p.y_label) {
        sb_printf(&sb, "<text x=\"16\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 16 %.1f)\">",
                  top + ph / 2, top + ph / 2);
        sb_escaped(&sb, p.y_label);
        sb_printf(&sb, "</text>\n");
    }
    /* series */
    double *rx = malloc(sizeof(double) * CLLM_PLOT_MAX_POINTS), *ry = malloc(sizeof(double) * CLLM_PLOT_MAX_POINTS);
    for (int s = 0; s < n_series && !sb.oom && rx && ry; s++) {
        const cllm_plot_series *se = &series[s];
        double *X = rx, *Y = ry;
        size_t n = reduce_series(se, p.log_x, p.log_y, X, Y);
        const char *color = se->color ? se->color : palette[s % (int)(sizeof palette / sizeof *palette)];
        int open = 0;
        for (size_t i = 0; i < n && !se->no_line; i++) {
            if (!point_ok(X[i], Y[i], p.log_x, p.log_y)) {
                if (open) sb_printf(&sb, "\"/>\n");
                open = 0;
                continue;
            }
            double ty = p.log_y ? log10(Y[i]) : Y[i];
            if (!open) {
                sb_printf(&sb, "<polyline fill=\"none\" stroke=\"");
                sb_escaped(&sb, color);
                sb_printf(&sb, "\" stroke-width=\"1.5\" points=\"");
                open = 1;
            }
            sb_printf(&sb, "%.1f,%.1f ", PX(TX(X[i])), PY(ty));
        }
        if (open) sb_printf(&sb, "\"/>\n");
        if (se->markers || se->no_line) {
            sb_printf(&sb, "<g fill=\"");
            sb_escaped(&sb, color);
            sb_printf(&sb, "\">\n");
            for (size_t i = 0; i < n; i++)
                if (point_ok(X[i], Y[i], p.log_x, p.log_y))
                    sb_printf(&sb, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%s\"/>\n", PX(TX(X[i])),
                              PY(p.log_y ? log10(Y[i]) : Y[i]), se->no_line ? "3.5" : "2.5");
            sb_printf(&sb, "</g>\n");
        }
    }
    /* Legend: the labelled series (an empty label leaves a series out), on a
     * white box in the top-right corner sized to the longest label (about
     * 6.5 px per character at font size 12). */
    int n_leg = 0;
    size_t longest = 0;
    for (int s = 0; s < n_series; s++)
        if (series[s].label && *series[s].label) {
            n_leg++;
            if (strlen(series[s].label) > longest) longest = strlen(series[s].label);
        }
    if (n_leg > 0) {
        double lw = 36 + 6.5 * (double)longest, lx = left + pw - lw - 6;
        if (lx < left + 4) lx = left + 4;
        sb_printf(&sb, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"white\" fill-opacity=\"0.85\" "
                       "stroke=\"#cccccc\"/>\n", lx - 4, top + 4, lw + 4, 18.0 * n_leg + 6);
        for (int s = 0, k = 0; s < n_series; s++) {
            const cllm_plot_series *se = &series[s];
            if (!se->label || !*se->label) continue;
            const char *color = se->color ? se->color : palette[s % (int)(sizeof palette / sizeof *palette)];
            double ly = top + 18 + 18.0 * k++;
            if (se->no_line)
                sb_printf(&sb, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"", lx + 12, ly - 4);
            else
                sb_printf(&sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke-width=\"2\" stroke=\"", lx,
                          ly - 4, lx + 25, ly - 4);
            sb_escaped(&sb, color);
            sb_printf(&sb, "\"/>\n<text x=\"%.1f\" y=\"%.1f\">", lx + 30, ly);
            sb_escaped(&sb, se->label);
            sb_printf(&sb, "</text>\n");
        }
    }
    int alloc_failed = !rx || !ry;
    free(rx);
    free(ry);
    sb_printf(&sb, "</svg>\n");
#undef PX
#undef TX
#undef PY
    if (sb.oom || alloc_failed) {
        free(sb.buf);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory rendering the plot");
    }
    *svg = sb.buf;
    *len = sb.len;
    return CLLM_OK;
}

cllm_status cllm_plot_svg_write(const char *path, const cllm_plot_params *params,
                                const cllm_plot_series *series, int n_series, cllm_error *err) {
    char *svg = NULL;
    size_t len = 0;
    cllm_status st = cllm_plot_svg_render(params, series, n_series, &svg, &len, err);
    if (st != CLLM_OK) return st;
    st = cllm_file_write_atomic(path, svg, len, err);
    free(svg);
    return st;
}

/* ---- grouped bar charts ---- */

cllm_status cllm_plot_bars_svg_render(const cllm_plot_params *params, const char *const *groups, int n_groups,
                                      const char *const *series, int n_series, const double *values, char **svg,
                                      size_t *len, cllm_error *err) {
    *svg = NULL;
    *len = 0;
    cllm_plot_params p = params ? *params : cllm_plot_default_params();
    if (p.width <= 0) p.width = 800;
    if (p.height <= 0) p.height = 450;
    if (p.width < 200 || p.height < 150 || p.width > 20000 || p.height > 20000)
        return cllm_error_set(err, CLLM_ERR_ARG, "plot size %dx%d outside 200x150..20000x20000", p.width, p.height);
    if (p.log_y || p.log_x) return cllm_error_set(err, CLLM_ERR_ARG, "bar charts have no logarithmic axis");
    if (n_groups < 1 || n_series < 1 || !groups || !series || !values)
        return cllm_error_set(err, CLLM_ERR_ARG, "a bar chart needs at least one group, one series and the values");
    if ((long long)n_groups * n_series > CLLM_PLOT_MAX_BARS)
        return cllm_error_set(err, CLLM_ERR_ARG, "%d x %d bars: more than %d", n_series, n_groups, CLLM_PLOT_MAX_BARS);
    if (!(isfinite(p.y_max) && p.y_max >= 0))
        return cllm_error_set(err, CLLM_ERR_ARG, "y_max %g: must be finite and >= 0", p.y_max);
    double ymin = 0, ymax = p.y_max;
    for (int i = 0; i < n_groups * n_series; i++) {
        if (!isfinite(values[i])) continue;
        if (values[i] < ymin) ymin = values[i];
        if (p.y_max == 0 && values[i] > ymax) ymax = values[i];
    }
    if (ymax <= ymin) ymax = ymin + 1;
    double ys = nice_step(ymax - ymin, 6);
    if (p.y_max == 0) ymax = ceil(ymax / ys) * ys; /* end on a tick */
    ymin = floor(ymin / ys) * ys;
    const double left = 70, right = 150, top = 40, bottom = 55; /* right: the legend */
    const double pw = p.width - left - right, ph = p.height - top - bottom;
#define BY(v) (top + (1.0 - ((v) - ymin) / (ymax - ymin)) * ph)
    sbuf sb = {malloc(8192), 0, 8192, 0};
    if (!sb.buf) return cllm_error_set(err, CLLM_ERR_NOMEM, "cannot allocate the plot");
    svg_begin(&sb, p.width, p.height, p.title);
    sb_printf(&sb, "<g stroke=\"#e0e0e0\" stroke-width=\"1\">\n");
    for (double t = ymin; t <= ymax + ys * 1e-9; t += ys)
        sb_printf(&sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", left, BY(t), left + pw, BY(t));
    sb_printf(&sb, "</g>\n<g fill=\"#333\">\n");
    for (double t = ymin; t <= ymax + ys * 1e-9; t += ys)
        sb_printf(&sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.4g</text>\n", left - 6, BY(t) + 4,
                  fabs(t) < ys * 1e-6 ? 0.0 : t);
    /* groups: equal slots; bars fill 80% of a slot */
    double slot = pw / n_groups, bw = slot * 0.8 / n_series;
    for (int g = 0; g < n_groups; g++) {
        sb_printf(&sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", left + slot * (g + 0.5), top + ph + 16);
        sb_escaped(&sb, groups[g]);
        sb_printf(&sb, "</text>\n");
    }
    sb_printf(&sb, "</g>\n");
    for (int s = 0; s < n_series; s++) {
        sb_printf(&sb, "<g fill=\"%s\">\n", palette[s % (int)(sizeof palette / sizeof *palette)]);
        for (int g = 0; g < n_groups; g++) {
            double v = values[(size_t)s * (size_t)n_groups + (size_t)g];
            if (!isfinite(v)) continue;
            double x = left + slot * g + slot * 0.1 + bw * s;
            double y0 = BY(fmin(v, fmax(0.0, ymin))), y1 = BY(fmax(v, fmax(0.0, ymin)));
            if (y1 < top) y1 = top; /* a value above y_max is cut at the frame */
            sb_printf(&sb, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"><title>", x, y1, bw,
                      fmax(0.0, y0 - y1));
            sb_escaped(&sb, series[s]);
            sb_printf(&sb, ", ");
            sb_escaped(&sb, groups[g]);
            sb_printf(&sb, ": %.4g</title></rect>\n", v);
        }
        sb_printf(&sb, "</g>\n");
        double ly = top + 14 + 18.0 * s;
        sb_printf(&sb, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n<text x=\"%.1f\" y=\"%.1f\">",
                  left + pw + 12, ly - 10, palette[s % (int)(sizeof palette / sizeof *palette)], left + pw + 30, ly);
        sb_escaped(&sb, series[s]);
        sb_printf(&sb, "</text>\n");
    }
    sb_printf(&sb, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n", left,
              top, pw, ph);
    if (p.x_label) {
        sb_printf(&sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", left + pw / 2, (double)p.height - 12);
        sb_escaped(&sb, p.x_label);
        sb_printf(&sb, "</text>\n");
    }
    if (p.y_label) {
        sb_printf(&sb, "<text x=\"16\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 16 %.1f)\">",
                  top + ph / 2, top + ph / 2);
        sb_escaped(&sb, p.y_label);
        sb_printf(&sb, "</text>\n");
    }
    sb_printf(&sb, "</svg>\n");
#undef BY
    if (sb.oom) {
        free(sb.buf);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory rendering the plot");
    }
    *svg = sb.buf;
    *len = sb.len;
    return CLLM_OK;
}

cllm_status cllm_plot_bars_svg_write(const char *path, const cllm_plot_params *params, const char *const *groups,
                                     int n_groups, const char *const *series, int n_series, const double *values,
                                     cllm_error *err) {
    char *svg = NULL;
    size_t len = 0;
    cllm_status st = cllm_plot_bars_svg_render(params, groups, n_groups, series, n_series, values, &svg, &len, err);
    if (st != CLLM_OK) return st;
    st = cllm_file_write_atomic(path, svg, len, err);
    free(svg);
    return st;
}
