/*
 * cmd_scale.c: `cllm scale`: flag parsing, signals and the closing summary;
 * the ladder, the fits and the report are cllm_scale_run (train/scale.h).
 *
 * Exit codes: 0 done (or stopped by a signal: rerun to continue), 1 bad data
 * or a failed run, 2 bad usage (including a budget too small for the sizes).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cllm/train/scale.h"
#include "tok_common.h"

#define CMD "scale"
#define MAX_DATA 256

static void usage(void) {
    printf("Usage: cllm scale --data FILE[,FILE...] --out DIR [options]\n\n"
           "Measures scaling laws: trains a ladder of model sizes with `cllm pretrain`'s trainer,\n"
           "fits L(N) = E + A/N^alpha and L(N, D) = E + A/N^alpha + B/D^beta (Huber fits on\n"
           "log-loss, bootstrap intervals), runs an isoFLOP sweep over 3 compute budgets for the\n"
           "compute-optimal tokens per parameter, and predicts the largest size's loss before\n"
           "training it. Sizes follow one rule: size r has r layers, width 16(r+1), head size 16\n"
           "(Llama-style); token counts are set from the budget and this machine's measured speed.\n\n"
           "Options:\n"
           "  --data FILES         text files or token shards; comma-separated or repeated\n"
           "  -o, --out DIR        output directory (created if missing): plan.tsv, runs/, report.md,\n"
           "                       runs.csv, prediction.txt, loss_vs_params.svg, loss_vs_compute.svg,\n"
           "                       isoflop.svg\n"
           "  --budget MINUTES     wall time for the whole ladder (default 30)\n"
           "  --sizes LIST         ladder sizes, increasing, at least 7 (the largest is held out\n"
           "                       for the prediction; the others must span 30x in parameters)\n"
           "                       (default 1,2,3,4,5,6,7: 12.6K to 1.39M non-embedding parameters)\n"
           "  --batch B            micro-batch sequences (default 16)\n"
           "  --seq T              tokens per sequence (default 128)\n"
           "  --val-frac F         held-out fraction at the end of the data (default 0.1)\n"
           "  --tokenizer FILE     the tokenizer token shards were made with\n"
           "  --seed N             random seed (default 1337)\n"
           "  --threads N          threads, 0 = all CPUs (default 0)\n"
           "  --plan               measure the speed and write the plan, train nothing\n"
           "  --no-progress        no progress bars\n"
           "  -h, --help           this help\n\n"
           "A rerun of the same command reuses finished runs and resumes an interrupted one\n"
           "(also after kill -9); Ctrl-C finishes the current step and saves.\n");
}

/* "1,2,3" into rungs[]; 0 on a malformed list (message printed). */
static int parse_sizes(const char *text, int *rungs, int *n) {
    char copy[512];
    if (snprintf(copy, sizeof copy, "%s", text) >= (int)sizeof copy)
        return cli_usage_error(CMD, "--sizes: list too long"), 0;
    *n = 0;
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (*n == CLLM_SCALE_MAX_RUNGS) return cli_usage_error(CMD, "--sizes: at most %d sizes", CLLM_SCALE_MAX_RUNGS), 0;
        if (!cli_parse_int(CMD, "--sizes", t, 1, CLLM_SCALE_MAX_RUNGS, &rungs[*n])) return 0;
        (*n)++;
    }
    if (*n == 0) return cli_usage_error(CMD, "--sizes needs a comma-separated list, e.g. 1,2,3,4,5,6,7"), 0;
    return 1;
}

/* The flags that take a value. */
static const char *const valued[] = {"--data", "--out", "--budget", "--sizes", "--batch",
                                     "--seq", "--val-frac", "--tokenizer", "--seed", "--threads"};

int cllm_cmd_scale(int argc, char **argv) {
    cllm_scale_params p = cllm_scale_default_params();
    const char *data[MAX_DATA];
    char *copies[MAX_DATA];
    int n_data = 0, n_copies = 0, rungs[CLLM_SCALE_MAX_RUNGS], n_rungs = 0, rc = CLI_EXIT_OK, iv;
    int64_t i64;
    double d;
    tok_source tok_src = {0};
    cllm_tokenizer *tokenizer = NULL;
    for (int i = 1; i < argc && rc == CLI_EXIT_OK; i++) {
        const char *a = argv[i], *v;
        if (cli_is_help(a)) {
            usage();
            goto out;
        }
        if (!strcmp(a, "--plan")) { p.plan_only = 1; continue; }
        if (!strcmp(a, "--no-progress")) { p.progress = 0; continue; }
        if (!strcmp(a, "-o")) a = "--out";
        int known = 0;
        for (size_t k = 0; k < sizeof valued / sizeof *valued; k++) known |= !strcmp(a, valued[k]);
        if (!known) { /* before its value is taken, so a misspelt flag gets its suggestion */
            rc = cli_unknown_flag(CMD, a);
            break;
        }
        if (!(v = cli_value(CMD, argc, argv, &i))) { rc = CLI_EXIT_USAGE; break; }
        if (!strcmp(a, "--data")) {
            char *copy = n_copies < MAX_DATA ? strdup(v) : NULL;
            if (!copy) { rc = cli_usage_error(CMD, "too many --data flags"); break; }
            copies[n_copies++] = copy;
            for (char *save = NULL, *t = strtok_r(copy, ",", &save); t && rc == CLI_EXIT_OK; t = strtok_r(NULL, ",", &save)) {
                if (n_data == MAX_DATA) rc = cli_usage_error(CMD, "--data: more than %d files", MAX_DATA);
                else data[n_data++] = t;
            }
        } else if (!strcmp(a, "--out")) {
            if (!*v) rc = cli_usage_error(CMD, "--out needs a directory");
            p.out_dir = v;
        } else if (!strcmp(a, "--budget")) {
            if (!cli_parse_double(CMD, a, v, 1e-3, 1e6, &d)) rc = CLI_EXIT_USAGE;
            else p.budget_minutes = d;
        } else if (!strcmp(a, "--sizes")) {
            if (!parse_sizes(v, rungs, &n_rungs)) rc = CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--batch")) {
            if (!cli_parse_int(CMD, a, v, 1, 4096, &iv)) rc = CLI_EXIT_USAGE;
            else p.B = iv;
        } else if (!strcmp(a, "--seq")) {
            if (!cli_parse_int(CMD, a, v, 2, 8192, &iv)) rc = CLI_EXIT_USAGE;
            else p.T = iv;
        } else if (!strcmp(a, "--val-frac")) {
            if (!cli_parse_double(CMD, a, v, 1e-6, 0.9, &d)) rc = CLI_EXIT_USAGE;
            else p.val_frac = d;
        } else if (!strcmp(a, "--tokenizer")) {
            tok_src.path = v;
        } else if (!strcmp(a, "--seed")) {
            if (!cli_parse_i64(CMD, a, v, 0, INT64_MAX, &i64)) rc = CLI_EXIT_USAGE;
            else p.seed = (uint64_t)i64;
        } else if (!strcmp(a, "--threads")) {
            if (!cli_parse_int(CMD, a, v, 0, 4096, &iv)) rc = CLI_EXIT_USAGE;
            else p.threads = iv;
        }
    }
    if (rc != CLI_EXIT_OK) goto out;
    if (n_data == 0) { rc = cli_usage_error(CMD, "--data is required"); goto out; }
    if (!p.out_dir) { rc = cli_usage_error(CMD, "--out is required"); goto out; }
    if (n_rungs > 0) {
        p.rungs = rungs;
        p.n_rungs = n_rungs;
    }
    for (int k = 0; k < n_data; k++)
        if (access(data[k], R_OK) != 0) {
            fprintf(stderr, "cllm %s: error: --data %s: %s\n", CMD, data[k], strerror(errno));
            rc = CLI_EXIT_DATA;
            goto out;
        }
    if (tok_src.path && (rc = tok_source_load(CMD, &tok_src, &tokenizer)) != CLI_EXIT_OK) goto out;
    p.data_paths = data;
    p.n_data = n_data;
    p.tokenizer = tokenizer;
    p.log = cli_log_line;
    p.stop_flag = cli_stop_on_signal(CMD);

    cllm_scale_result res;
    cllm_error err;
    cllm_status st = cllm_scale_run(&p, &res, &err);
    if (st == CLLM_ERR_ARG) { rc = cli_usage_error(CMD, "%s", err.msg); goto out; }
    if (st != CLLM_OK) { rc = cli_fail(CMD, &err); goto out; }
    if (p.plan_only) {
        printf("planned %d runs, about %.1f minutes of training: %s/plan.tsv\n", res.n_runs, res.planned_seconds / 60, p.out_dir);
        goto out;
    }
    if (res.stopped) {
        printf("stopped after %d of %d runs; rerun the same command to continue\n", res.n_done, res.n_runs);
        goto out;
    }
    const cllm_scale_law *nl = &res.param_law, *jl = &res.joint_law;
    printf("runs %d, training time %.1f min (planned %.1f)\n", res.n_runs, res.seconds / 60, res.planned_seconds / 60);
    printf("parameter law  L(N) = %.4f + %.4g / N^%.4f\n", nl->E, nl->A, nl->alpha);
    printf("joint law      L(N, D) = %.4f + %.4g / N^%.4f + %.4g / D^%.4f\n", jl->E, jl->A, jl->alpha, jl->B, jl->beta);
    printf("tokens per parameter at the compute optimum (isoFLOP, middle budget) %.1f (Chinchilla ~20)\n", res.tokens_per_param);
    printf("largest size: predicted %.4f (90%% interval %.4f .. %.4f), measured %.4f, error %+.2f%%: the law %s\n",
           res.predicted, res.pred_lo, res.pred_hi, res.actual, (res.actual - res.predicted) / res.predicted * 100,
           res.law_held ? "held" : "did not hold");
    printf("report %s/report.md\n", p.out_dir);
out:
    cllm_tokenizer_destroy(tokenizer);
    for (int k = 0; k < n_copies; k++) free(copies[k]);
    return rc;
}
