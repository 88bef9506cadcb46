/*
 * cli.c: strict flag-value parsing and uniform error printing for tools/.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cJSON.h>

/* Length of the valid UTF-8 character at s (1-4), or 0 when s starts an
 * invalid or truncated sequence. */
static int utf8_char(const unsigned char *s) {
    if (s[0] < 0x80) return 1;
    int n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : 0;
    if (n == 0 || (n == 3 && s[0] > 0xef)) return 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) || (s[0] == 0xf0 && s[1] < 0x90) ||
        (s[0] == 0xf4 && s[1] > 0x8f))
        return 0; /* overlong, surrogate, beyond U+10FFFF */
    return n;
}

void cli_print_safe(FILE *out, const char *text) {
    const unsigned char *s = (const unsigned char *)text;
    while (*s) {
        int n = utf8_char(s);
        if (n == 1 && (*s >= 0x20 || *s == '\n' || *s == '\t') && *s != 0x7f) fputc(*s, out);
        else if (n > 1) fwrite(s, 1, (size_t)n, out);
        else fprintf(out, "\\x%02x", *s), n = 1; /* escape sequences, control bytes, invalid UTF-8 */
        s += n;
    }
}

int cli_usage_error(const char *command, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "cllm %s: ", command);
    cli_print_safe(stderr, msg);
    fprintf(stderr, "\nRun 'cllm %s --help' for usage.\n", command);
    return CLI_EXIT_USAGE;
}

int cli_fail(const char *command, const cllm_error *err) {
    fprintf(stderr, "cllm %s: error: ", command);
    cli_print_safe(stderr, err->msg);
    fputc('\n', stderr);
    return CLI_EXIT_DATA;
}

int cli_is_help(const char *arg) { return !strcmp(arg, "--help") || !strcmp(arg, "-h"); }

const char *cli_value(const char *command, int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        cli_usage_error(command, "flag %s needs a value", argv[*i]);
        return NULL;
    }
    *i += 1;
    return argv[*i];
}

int cli_parse_i64(const char *command, const char *flag, const char *text, int64_t min,
                  int64_t max, int64_t *out) {
    char *end = NULL;
    errno = 0;
    long long v = text && *text ? strtoll(text, &end, 10) : 0;
    if (!text || !*text || *end != '\0' || errno == ERANGE) {
        cli_usage_error(command, "%s expects an integer, got '%s'", flag, text ? text : "");
        return 0;
    }
    if (v < min || v > max) {
        cli_usage_error(command, "%s must be between %lld and %lld, got %lld", flag, (long long)min,
                        (long long)max, v);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_int(const char *command, const char *flag, const char *text, int min, int max,
                  int *out) {
    int64_t v;
    if (!cli_parse_i64(command, flag, text, min, max, &v)) return 0;
    *out = (int)v;
    return 1;
}

int cli_parse_double(const char *command, const char *flag, const char *text, double min,
                     double max, double *out) {
    char *end = NULL;
    errno = 0;
    double v = text && *text ? strtod(text, &end) : 0;
    if (!text || !*text || *end != '\0' || errno == ERANGE || !isfinite(v)) {
        cli_usage_error(command, "%s expects a finite number, got '%s'", flag, text ? text : "");
        return 0;
    }
    if (v < min || v > max) {
        cli_usage_error(command, "%s must be between %g and %g, got %g", flag, min, max, v);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_precision(const char *command, const char *text, cllm_precision *out) {
    if (!cllm_precision_from_name(text, out)) {
        cli_usage_error(command, "--precision must be fp32 or bf16, got '%s'", text);
        return 0;
    }
    cllm_error err;
    if (cllm_precision_check(*out, &err) != CLLM_OK) {
        cli_usage_error(command, "--precision %s: %s", text, err.msg);
        return 0;
    }
    return 1;
}

int cli_text_append(cli_text *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->cap + n + 1) * 2;
        char *grown = realloc(t->text, cap);
        if (!grown) return 0;
        t->text = grown;
        t->cap = cap;
    }
    memcpy(t->text + t->len, s, n);
    t->len += n;
    t->text[t->len] = 0;
    return 1;
}

/* ---- "did you mean" for unknown flags ---- */

/* Optimal string alignment distance (Levenshtein plus adjacent swaps), short strings only. */
static int edit_distance(const char *a, const char *b) {
    enum { MAXN = 64 };
    size_t n = strlen(a), m = strlen(b);
    if (n >= MAXN || m >= MAXN) return 1 << 20;
    int d[MAXN][MAXN];
    for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[n][m];
}

const char *cli_nearest_flag(const char *flag, const char *const *candidates, int n) {
    const char *best = NULL, *prefix = NULL;
    int best_d = 1 << 20, n_prefix = 0;
    size_t len = strlen(flag);
    for (int k = 0; k < n; k++) {
        const char *c = candidates[k];
        if (!strcmp(c, flag)) continue;
        if (len > 2 && !strncmp(c, flag, len)) {
            if (!prefix || strcmp(prefix, c)) n_prefix++;
            prefix = c;
        }
        int d = edit_distance(flag, c);
        if (d < best_d) best_d = d, best = c;
    }
    /* Close enough to be a typo: 1 edit in short flags, 2 from 6 characters,
     * 3 from 12 (counting the dashes). */
    int limit = len >= 12 ? 3 : len >= 6 ? 2 : 1;
    if (best && best_d <= limit) return best;
    return n_prefix == 1 ? prefix : NULL;
}

int cli_unknown_flag(const char *command, const char *flag) {
    if (flag[0] != '-') return cli_usage_error(command, "unexpected argument '%s'", flag);
    /* The command's flags: what `cllm <command> --help` lists. */
    enum { MAX_FLAGS = 256 };
    char help[65536], *flags[MAX_FLAGS];
    int n = 0;
    size_t len = 0;
    /* run this binary (not through a shell) with the command's words and --help */
    char words[256], *argv[16];
    int argc = 0;
    snprintf(words, sizeof words, "%s", command);
    argv[argc++] = "cllm";
    for (char *save = NULL, *w = strtok_r(words, " ", &save); w && argc < 14; w = strtok_r(NULL, " ", &save))
        argv[argc++] = w;
    argv[argc++] = "--help";
    argv[argc] = NULL;
    int fd[2];
    if (pipe(fd) == 0) {
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(fd[1], STDOUT_FILENO);
            if (null >= 0) dup2(null, STDERR_FILENO);
            close(fd[0]);
            execv("/proc/self/exe", argv);
            _exit(127);
        }
        close(fd[1]);
        ssize_t got;
        while (len < sizeof help - 1 && (got = read(fd[0], help + len, sizeof help - 1 - len)) > 0) len += (size_t)got;
        close(fd[0]);
        if (pid > 0) waitpid(pid, NULL, 0);
    }
    help[len] = 0;
    for (char *c = help; *c && n < MAX_FLAGS; c++) {
        int starts = c[0] == '-' && (c == help || !(c[-1] == '-' || (c[-1] >= 'a' && c[-1] <= 'z') ||
                                                    (c[-1] >= 'A' && c[-1] <= 'Z') || (c[-1] >= '0' && c[-1] <= '9')));
        if (!starts) continue;
        char *e = c + 1;
        if (*e == '-') e++;
        if (!(*e >= 'a' && *e <= 'z')) continue;
        while ((*e >= 'a' && *e <= 'z') || (*e >= '0' && *e <= '9') || *e == '-') e++;
        while (e[-1] == '-') e--;
        char save = *e;
        *e = 0;
        if ((flags[n] = strdup(c))) n++;
        *e = save;
        c = e - 1;
    }
    const char *near = cli_nearest_flag(flag, (const char *const *)flags, n);
    int rc = near ? cli_usage_error(command, "unknown flag '%s' (did you mean %s?)", flag, near)
                  : cli_usage_error(command, "unknown flag '%s'", flag);
    for (int k = 0; k < n; k++) free(flags[k]);
    return rc;
}

/* ---- the trainers' end-of-run summary ------------------------------------ */

static void summary_json(const cllm_train_summary *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "command", s->command);
    cJSON_AddStringToObject(o, "reason", s->reason);
    cJSON_AddNumberToObject(o, "steps", (double)s->steps);
    cJSON_AddNumberToObject(o, "start_step", (double)s->start_step);
    cJSON_AddNumberToObject(o, "loss_first", s->loss_first); /* cJSON writes NaN as null */
    cJSON_AddNumberToObject(o, "loss_last", s->loss_last);
    cJSON_AddNumberToObject(o, "val_loss", s->val_loss);
    cJSON_AddNumberToObject(o, "val_loss_best", s->val_loss_best);
    if (s->metric[0]) cJSON_AddStringToObject(o, "metric", s->metric);
    else cJSON_AddNullToObject(o, "metric");
    cJSON_AddNumberToObject(o, "metric_first", s->metric_first);
    cJSON_AddNumberToObject(o, "metric_last", s->metric_last);
    cJSON_AddNumberToObject(o, "skipped", (double)s->skipped);
    cJSON_AddNumberToObject(o, "seconds", s->seconds);
    cJSON_AddNumberToObject(o, "tokens_per_s", s->tokens_per_s);
    cJSON_AddStringToObject(o, "run_dir", s->run_dir);
    cJSON_AddStringToObject(o, "weights", s->weights);
    for (int i = 0; i < s->n_extra; i++) cJSON_AddNumberToObject(o, s->extra[i].name, s->extra[i].value);
    char *text = cJSON_PrintUnformatted(o);
    printf("%s\n", text ? text : "{}");
    free(text);
    cJSON_Delete(o);
}

/* "%.4f" of x, or "-" when x is NaN/Inf. */
static const char *num4(char *buf, size_t cap, double x) {
    if (isfinite(x)) snprintf(buf, cap, "%.4f", x);
    else snprintf(buf, cap, "-");
    return buf;
}

void cli_print_train_summary(const cllm_train_summary *s, int json) {
    if (json) {
        summary_json(s);
        return;
    }
    char a[32], b[32];
    printf("%s summary\n", s->command);
    printf("  reason    %s\n", s->reason[0] ? s->reason : "-");
    printf("  steps     %lld (this run: %lld -> %lld)\n", (long long)s->steps, (long long)s->start_step,
           (long long)s->steps);
    printf("  loss      %s -> %s (training loss, first -> last step of this run)\n",
           num4(a, sizeof a, s->loss_first), num4(b, sizeof b, s->loss_last));
    printf("  val loss  %s (best %s)\n", num4(a, sizeof a, s->val_loss), num4(b, sizeof b, s->val_loss_best));
    if (s->metric[0])
        printf("  metric    %s -> %s (%s, first -> last step of this run)\n", num4(a, sizeof a, s->metric_first),
               num4(b, sizeof b, s->metric_last), s->metric);
    else
        printf("  metric    -\n");
    printf("  skipped   %lld step%s (NaN/Inf loss or gradient)\n", (long long)s->skipped, s->skipped == 1 ? "" : "s");
    if (isfinite(s->seconds) && isfinite(s->tokens_per_s))
        printf("  time      %.1f s, %.0f tokens/s\n", s->seconds, s->tokens_per_s);
    else
        printf("  time      -\n");
    printf("  weights   %s\n", s->weights[0] ? s->weights : "-");
    printf("  extra    ");
    for (int i = 0; i < s->n_extra; i++) {
        double v = s->extra[i].value;
        /* integers and rates whole; small measures to 4 significant digits */
        if ((v == floor(v) && fabs(v) < 1e15) || fabs(v) >= 1000) printf(" %s=%.0f", s->extra[i].name, v);
        else printf(" %s=%.4g", s->extra[i].name, v);
    }
    printf("%s\n", s->n_extra ? "" : " -");
}

static volatile sig_atomic_t stop_requested;
static char stop_message[160];
static size_t stop_message_len;

static void on_stop_signal(int sig) {
    (void)sig;
    stop_requested = 1;
    ssize_t w = write(STDERR_FILENO, stop_message, stop_message_len); /* async-signal-safe */
    (void)w;
}

volatile sig_atomic_t *cli_stop_on_signal(const char *command) {
    int n = snprintf(stop_message, sizeof stop_message,
                     "\ncllm %s: stop requested; finishing this step and saving (signal again to kill)\n", command);
    stop_message_len = n > 0 && (size_t)n < sizeof stop_message ? (size_t)n : strlen(stop_message);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESETHAND; /* a second signal takes the default action */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return &stop_requested;
}

void cli_log_line(void *ctx, const char *line) {
    (void)ctx;
    fprintf(stderr, "%s\n", line);
}
