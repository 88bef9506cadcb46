/*
 * progress.h: a one-line progress bar on stderr for long work.
 *
 * Shows done/total, a bar, a rate in the caller's unit (tokens/s, MB/s...),
 * elapsed time, ETA and a free-form suffix (loss, lr...). Redraws at most ten
 * times a second, with no escape sequences when stderr is not a terminal:
 * then it prints a plain line every `quiet_interval_s` seconds (none at the
 * start, none for the finished state), and cllm_progress_end prints exactly
 * one final line, so a log holds one line per interval and one at the end.
 */
#ifndef CLLM_PROGRESS_H
#define CLLM_PROGRESS_H

#include <stdint.h>

typedef struct {
    char label[64];
    char unit[16];          /* rate unit, e.g. "tok" prints "tok/s" */
    double total;           /* amount of work, in the rate unit; 0 = unknown */
    double done;
    double start_s;         /* monotonic seconds at begin */
    double last_draw_s;
    double quiet_interval_s;
    int is_tty;
    int enabled;
} cllm_progress;

/* Monotonic clock in seconds. */
double cllm_now_seconds(void);

void cllm_progress_begin(cllm_progress *p, const char *label, double total, const char *unit);
/* Sets the amount done and redraws if due; suffix may be NULL. */
void cllm_progress_update(cllm_progress *p, double done, const char *suffix);
/* Draws the final state and ends the line. */
void cllm_progress_end(cllm_progress *p, const char *suffix);

#endif
