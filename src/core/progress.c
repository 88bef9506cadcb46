/*
 * progress.c: the stderr progress bar described in progress.h.
 */
#include "cllm/core/progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double cllm_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void format_duration(char *out, size_t n, double s) {
    if (s < 0 || s > 1e7) {
        snprintf(out, n, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else snprintf(out, n, "%02ld:%02ld", t / 60, t % 60);
}

static void format_rate(char *out, size_t n, double rate, const char *unit) {
    if (rate >= 1e6) snprintf(out, n, "%.2fM %s/s", rate / 1e6, unit);
    else if (rate >= 1e4) snprintf(out, n, "%.1fk %s/s", rate / 1e3, unit);
    else snprintf(out, n, "%.1f %s/s", rate, unit);
}

void cllm_progress_begin(cllm_progress *p, const char *label, double total, const char *unit) {
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "it");
    p->total = total;
    p->start_s = cllm_now_seconds();
    p->last_draw_s = -1e9;
    p->quiet_interval_s = 10.0;
    p->is_tty = isatty(STDERR_FILENO);
    if (!p->is_tty) p->last_draw_s = p->start_s; /* a log gets its first line after quiet_interval_s */
    p->enabled = 1;
}

static void draw(cllm_progress *p, const char *suffix, int final) {
    double now = cllm_now_seconds();
    double elapsed = now - p->start_s;
    double rate = elapsed > 0 ? p->done / elapsed : 0;
    char rate_s[48], el_s[24], eta_s[24];
    format_rate(rate_s, sizeof rate_s, rate, p->unit);
    format_duration(el_s, sizeof el_s, elapsed);
    double eta = (p->total > 0 && rate > 0) ? (p->total - p->done) / rate : -1;
    format_duration(eta_s, sizeof eta_s, final ? 0 : eta);
    char bar[32] = "";
    double frac = p->total > 0 ? p->done / p->total : 0;
    if (frac > 1) frac = 1;
    if (p->total > 0) {
        int width = 20, filled = (int)(frac * width);
        for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
        bar[width] = '\0';
    }
    if (p->is_tty) fputs("\r\033[K", stderr);
    if (p->total > 0)
        fprintf(stderr, "%s [%s] %5.1f%% | %s | %s elapsed | ETA %s", p->label, bar, frac * 100.0,
                rate_s, el_s, eta_s);
    else
        fprintf(stderr, "%s %.0f %s | %s | %s elapsed", p->label, p->done, p->unit, rate_s, el_s);
    if (suffix && *suffix) fprintf(stderr, " | %s", suffix);
    if (!p->is_tty || final) fputc('\n', stderr);
    fflush(stderr);
    p->last_draw_s = now;
}

void cllm_progress_update(cllm_progress *p, double done, const char *suffix) {
    if (!p->enabled) return;
    p->done = done;
    double now = cllm_now_seconds();
    double interval = p->is_tty ? 0.1 : p->quiet_interval_s;
    /* in a log, the finished state is cllm_progress_end's one final line */
    if (!p->is_tty && p->total > 0 && done >= p->total) return;
    if (now - p->last_draw_s >= interval) draw(p, suffix, 0);
}

void cllm_progress_end(cllm_progress *p, const char *suffix) {
    if (!p->enabled) return;
    draw(p, suffix, 1);
    p->enabled = 0;
}
