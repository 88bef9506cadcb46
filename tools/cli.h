/*
 * cli.h: argument helpers shared by every `cllm <command>`.
 *
 * Only tools/ exits. Exit codes: 0 success, 1 bad data or a failed operation,
 * 2 bad usage (unknown flag, missing value, value out of range). Every usage
 * error names the flag and ends with a hint to run `--help`.
 */
#ifndef CLLM_TOOLS_CLI_H
#define CLLM_TOOLS_CLI_H

#include <signal.h>
#include <stdint.h>

#include <stdio.h>

#include "cllm/core/status.h"
#include "cllm/kernels/kernels.h"
#include "cllm/train/summary.h"

enum { CLI_EXIT_OK = 0, CLI_EXIT_DATA = 1, CLI_EXIT_USAGE = 2 };

/* Prints "cllm <command>: <message>" plus the --help hint; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "cllm <command>: error: <err->msg>"; returns CLI_EXIT_DATA. */
int cli_fail(const char *command, const cllm_error *err);
/* Writes text to out with control bytes (escape sequences from a file's
 * metadata, say) and invalid UTF-8 shown as \\xNN, so no input can drive
 * the terminal; newlines and tabs pass. Every error above goes through it. */
void cli_print_safe(FILE *out, const char *text);

/* The usage error for an unknown flag, with "did you mean --x?" when one of
 * the command's own flags is close (edit distance, or the flag is the start of
 * exactly one of them). The command's flags are the ones its --help lists:
 * `cllm <command> --help` is run (this same binary) and read, so a flag is
 * suggested only if it is documented. `command` may hold a subcommand
 * ("tokenizer train"). Returns CLI_EXIT_USAGE. */
int cli_unknown_flag(const char *command, const char *flag);
/* The nearest of n candidate flags to `flag` (NULL when none is close);
 * cli_unknown_flag's rule, exposed for tests. */
const char *cli_nearest_flag(const char *flag, const char *const *candidates, int n);

/* True when argv[i] is --help or -h. */
int cli_is_help(const char *arg);

/* Fetch the value following flag argv[*i] (advancing *i); NULL (and a usage
 * message printed) when the flag is last. */
const char *cli_value(const char *command, int argc, char **argv, int *i);

/* Strict numeric parsing: the whole string must be a number within
 * [min, max]; on failure print a usage error naming `flag` and return 0. */
int cli_parse_i64(const char *command, const char *flag, const char *text, int64_t min,
                  int64_t max, int64_t *out);
int cli_parse_int(const char *command, const char *flag, const char *text, int min, int max,
                  int *out);
int cli_parse_double(const char *command, const char *flag, const char *text, double min,
                     double max, double *out);

/* --precision fp32|bf16 for the training commands: the name, then whether
 * this CPU runs it (bf16: AVX512-BF16 or AMX); on failure a usage error
 * naming the flag (exit 2) and 0. */
int cli_parse_precision(const char *command, const char *text, cllm_precision *out);
#define CLI_PRECISION_HELP                                                                           \
    "  --precision P        matrix products in fp32 (default) or bf16: bf16 inputs, fp32\n"          \
    "                       accumulation, fp32 weights, gradients and AdamW (needs AVX512-BF16\n"    \
    "                       or AMX; docs/PRECISION.md)\n"                                            \
    "  --precision-change   let --resume continue a checkpoint trained at another precision\n"

/* The end-of-run summary every trainer prints (cllm/train/summary.h) on
 * stdout: the same lines in the same order for pretrain, sft, reward, dpo,
 * ppo and grpo ("-" where a field has no value), or with json one JSON
 * object with the same keys for all (null for none; the trainer's extra
 * numbers as more keys). CLI_JSON_HELP is the flag's line, CLI_SUMMARY_HELP
 * the section that ends each trainer's --help. */
void cli_print_train_summary(const cllm_train_summary *s, int json);

/* The trainers' Ctrl-C: installs a SIGINT/SIGTERM handler whose first signal
 * sets the returned flag (the trainer finishes its step, saves and returns)
 * and prints "cllm <command>: stop requested; finishing this step and saving
 * (signal again to kill)"; a second signal takes the default action. */
volatile sig_atomic_t *cli_stop_on_signal(const char *command);
/* A trainer's log callback: the line on stderr. */
void cli_log_line(void *ctx, const char *line);
#define CLI_JSON_HELP "  --json               print the end-of-run summary as one JSON object (see Summary)\n"
#define CLI_SUMMARY_HELP                                                                             \
    "\nSummary (stdout, the same lines for every trainer, \"-\" for none; --json: the [keys], null\n"  \
    "for none, plus command and run_dir):\n"                                                         \
    "  reason    why the run stopped [reason]\n"                                                     \
    "  steps     steps done in the whole run (this process: from -> to) [steps, start_step]\n"     \
    "  loss      training loss at the first -> last step this process ran [loss_first, loss_last]\n" \
    "  val loss  the last held-out loss (the best) [val_loss, val_loss_best]\n"                     \
    "  metric    the trainer's measure at those steps [metric, metric_first, metric_last]:\n"      \
    "            reward, dpo: the batch's pair accuracy; ppo, grpo: the rollouts' mean reward\n"    \
    "  skipped   steps skipped for a NaN/Inf loss or gradient [skipped]\n"                         \
    "  time      seconds of the step loop, training tokens/s [seconds, tokens_per_s]\n"            \
    "  weights   the final model file [weights]\n"                                                  \
    "  extra     the trainer's own numbers as name=value [each its own key]\n"

/* A growable NUL-terminated text buffer for collecting streamed output. */
typedef struct {
    char *text; /* [len] + NUL, capacity cap; owned, free() it */
    size_t len, cap;
} cli_text;

/* Appends s[n]; returns 0 when out of memory (the buffer is unchanged). */
int cli_text_append(cli_text *t, const char *s, size_t n);

#endif
