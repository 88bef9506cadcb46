/*
 * cmd_report.c: `cllm report STAGE=EVAL.json ...`: gathers the `cllm eval
 * --json` results of several training stages (untrained, pretrained, SFT,
 * DPO, ...) into one table of task x stage, with each task's headline metric,
 * optional targets, and the drops from one stage to the next; writes the
 * same numbers as a grouped bar chart (SVG) and a JSON summary.
 *
 * A task's headline metric is, in order: --metric TASK=NAME, else the first
 * metric the task declares in --manifest (the world's manifest.json), else
 * the first of exact_match, accuracy, rouge_l, chrf the results carry.
 * Values keep their units: accuracy and exact match 0..1 (printed as %),
 * ROUGE-L 0..1, chrF 0..100; the chart puts all on 0..100.
 * Reading the results, choosing metrics, targets and drops, the JSON
 * summary and the chart are the library's (src/eval/report.c, eval.h); this
 * file parses arguments, prints the table and maps errors to exit codes.
 * Does not: run models (cllm eval does), or compare examples one by one.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "cllm/eval/eval.h"
#include "cllm/core/fileio.h"

#define CMD "report"

static void usage(FILE *out) {
    fprintf(out,
            "Usage: cllm report [options] STAGE=EVAL.json [STAGE=EVAL.json ...]\n\n"
            "Reads the `cllm eval --json` output of each stage (in training order) and prints\n"
            "one table: a row per task with its headline metric, a column per stage, and the\n"
            "target if one is given. Lists every task that fell from one stage to the next.\n\n"
            "Options:\n"
            "  --svg FILE            write the scores as a grouped bar chart (0..100 scale)\n"
            "  --json FILE           write a JSON summary (stages, tasks, scores, targets, drops)\n"
            "  --manifest FILE       a world manifest.json: each task's first declared metric\n"
            "                        is its headline metric\n"
            "  --metric TASK=NAME    headline metric of TASK: exact_match, accuracy, rouge_l, chrf\n"
            "  --target TASK=VALUE   target for TASK's headline metric, in its units\n"
            "                        (accuracy 0.95, chrF 80, ROUGE-L 0.6); repeatable\n"
            "  --drops-from STAGE    report drops only for stages after STAGE (default: all)\n"
            "  --title TEXT          chart title\n"
            "  --tools-summary WITH.json ALONE.json SCHEMA.json\n"
            "                        instead of the table: the tool-use summary of one model from\n"
            "                        three `cllm eval --json` results: the tool tasks with --tools,\n"
            "                        the same with --no-tools, and a task under --json-schema\n"
            "  -h, --help            this help\n");
}

typedef struct {
    const char *svg_path, *json_path, *title, *drops_from;
    char stage_name[CLLM_REPORT_MAX_STAGES][64];
    const char *stage_names[CLLM_REPORT_MAX_STAGES], *stage_files[CLLM_REPORT_MAX_STAGES];
    char keys[2][CLLM_REPORT_MAX_OVERRIDES][128]; /* TASK of --metric [0] and --target [1] */
    cllm_report_override ov[2][CLLM_REPORT_MAX_OVERRIDES];
    int n_ov[2];
    cllm_report_params p;
} report_args;

static int split_pair(const char *arg, char *key, size_t key_cap, const char **value) {
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1] || (size_t)(eq - arg) >= key_cap) return 0;
    memcpy(key, arg, (size_t)(eq - arg));
    key[eq - arg] = '\0';
    *value = eq + 1;
    return 1;
}

/* --metric TASK=NAME or --target TASK=VALUE. Returns CLI_EXIT_OK or a usage error. */
static int parse_override(report_args *a, const char *flag, const char *v) {
    const int is_metric = !strcmp(flag, "--metric"), k = is_metric ? 0 : 1;
    if (a->n_ov[k] >= CLLM_REPORT_MAX_OVERRIDES)
        return cli_usage_error(CMD, "more than %d %s flags", CLLM_REPORT_MAX_OVERRIDES, flag);
    const char *value;
    if (!split_pair(v, a->keys[k][a->n_ov[k]], sizeof a->keys[k][0], &value) || strlen(value) >= 64)
        return cli_usage_error(CMD, "%s expects TASK=%s, got '%s'", flag, is_metric ? "NAME" : "VALUE", v);
    const char *task = a->keys[k][a->n_ov[k]];
    if (is_metric && cllm_metric_parse(value) < 0)
        return cli_usage_error(CMD, "--metric %s: unknown metric '%s' (exact_match, accuracy, rouge_l, chrf)", task, value);
    double t;
    if (!is_metric && !cli_parse_double(CMD, "--target", value, 0, 100, &t)) return CLI_EXIT_USAGE;
    a->ov[k][a->n_ov[k]++] = (cllm_report_override){task, value};
    return CLI_EXIT_OK;
}

/* STAGE=EVAL.json. */
static int parse_stage(report_args *a, const char *arg) {
    const int n = a->p.n_stages;
    const char *file;
    if (n >= CLLM_REPORT_MAX_STAGES) return cli_usage_error(CMD, "more than %d stages", CLLM_REPORT_MAX_STAGES);
    if (!split_pair(arg, a->stage_name[n], sizeof a->stage_name[0], &file))
        return cli_usage_error(CMD, "expected STAGE=EVAL.json, got '%s'", arg);
    for (int s = 0; s < n; s++)
        if (!strcmp(a->stage_name[s], a->stage_name[n])) return cli_usage_error(CMD, "stage '%s' given twice", a->stage_name[s]);
    a->stage_names[n] = a->stage_name[n];
    a->stage_files[n] = file;
    a->p.n_stages++;
    return CLI_EXIT_OK;
}

/* Fills a; returns CLI_EXIT_OK, or the exit code (help printed: -1). */
static int parse_args(report_args *a, int argc, char **argv) {
    memset(a, 0, sizeof *a);
    a->title = "Test scores per training stage";
    const char *manifest = NULL;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (cli_is_help(arg)) {
            usage(stdout);
            return -1;
        }
        const char **dst = !strcmp(arg, "--svg") ? &a->svg_path
                           : !strcmp(arg, "--json") ? &a->json_path
                           : !strcmp(arg, "--manifest") ? &manifest
                           : !strcmp(arg, "--drops-from") ? &a->drops_from
                           : !strcmp(arg, "--title") ? &a->title
                           : NULL;
        int rc = CLI_EXIT_OK;
        if (dst) {
            if (!(*dst = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(arg, "--metric") || !strcmp(arg, "--target")) {
            const char *v = cli_value(CMD, argc, argv, &i);
            rc = v ? parse_override(a, arg, v) : CLI_EXIT_USAGE;
        } else if (arg[0] == '-') {
            rc = cli_unknown_flag(CMD, arg);
        } else {
            rc = parse_stage(a, arg);
        }
        if (rc != CLI_EXIT_OK) return rc;
    }
    if (a->p.n_stages == 0) return cli_usage_error(CMD, "no STAGE=EVAL.json given");
    a->p.drops_first = 1;
    if (a->drops_from) {
        a->p.drops_first = -1;
        for (int s = 0; s < a->p.n_stages; s++)
            if (!strcmp(a->stage_name[s], a->drops_from)) a->p.drops_first = s + 1;
        if (a->p.drops_first < 0) return cli_usage_error(CMD, "--drops-from %s: no such stage", a->drops_from);
    }
    a->p.stage_names = a->stage_names;
    a->p.stage_files = a->stage_files;
    a->p.manifest = manifest;
    a->p.metrics = a->ov[0];
    a->p.n_metrics = a->n_ov[0];
    a->p.targets = a->ov[1];
    a->p.n_targets = a->n_ov[1];
    return CLI_EXIT_OK;
}

static void print_warnings(const cllm_report *r) {
    for (int i = 0; i < r->n_tasks; i++) {
        const cllm_report_task *t = &r->tasks[i];
        for (int s = 1; s < r->n_stages; s++)
            if (isfinite(t->n[s]) && isfinite(t->n[0]) && t->n[s] != t->n[0])
                fprintf(stderr, "cllm %s: warning: task '%s' has %.0f examples in stage '%s' but %.0f in '%s'\n", CMD,
                        t->name, t->n[s], r->stage_names[s], t->n[0], r->stage_names[0]);
    }
}

static void print_table(const cllm_report *r, const char *drops_from, int drops_first) {
    int any_target = r->targets > 0;
    printf("%-30s", "task (metric)");
    for (int s = 0; s < r->n_stages; s++) printf(" %10s", r->stage_names[s]);
    if (any_target) printf(" %12s", "target");
    printf("\n");
    for (int i = 0; i < r->n_tasks; i++) {
        const cllm_report_task *t = &r->tasks[i];
        char label[160], cell[32];
        snprintf(label, sizeof label, "%s (%s)", t->name, cllm_metric_name((cllm_metric)t->metric));
        printf("%-30s", label);
        for (int s = 0; s < r->n_stages; s++) {
            cllm_report_format(cell, sizeof cell, t->metric, t->score[s]);
            printf(" %10s", cell);
        }
        if (isfinite(t->target)) {
            double last = t->score[r->n_stages - 1];
            cllm_report_format(cell, sizeof cell, t->metric, t->target);
            printf(" %7s %s", cell, isfinite(last) && last >= t->target ? "met" : "MISS");
        } else if (any_target) {
            printf(" %12s", "");
        }
        printf("\n");
    }
    if (r->targets)
        printf("targets met at stage '%s': %d of %d\n", r->stage_names[r->n_stages - 1], r->targets_met, r->targets);
    if (r->n_drops == 0 && r->n_stages > drops_first)
        printf("no task fell from one stage to the next%s%s\n", drops_from ? " after " : "", drops_from ? drops_from : "");
    for (int i = 0; i < r->n_drops; i++) {
        const cllm_report_drop *d = &r->drops[i];
        const cllm_report_task *t = &r->tasks[d->task];
        char b[32], a[32];
        cllm_report_format(b, sizeof b, t->metric, d->before);
        cllm_report_format(a, sizeof a, t->metric, d->after);
        printf("drop: %s fell from %s to %s at stage '%s'\n", t->name, b, a, r->stage_names[d->stage]);
    }
}

static cllm_status write_json(const cllm_report *r, const char *path, cllm_error *err) {
    char *js = cllm_report_json(r);
    cllm_atomic_file f;
    cllm_status st = js ? cllm_atomic_begin(&f, path, err) : cllm_error_set(err, CLLM_ERR_NOMEM, "cannot print the JSON summary");
    if (st == CLLM_OK) {
        cllm_atomic_printf(&f, "%s\n", js);
        st = cllm_atomic_commit(&f, err);
    }
    free(js);
    return st;
}

/* The first task of an eval JSON named `task` (NULL: any), or NULL. */
static const cJSON *eval_task(const cJSON *eval, const char *task) {
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(eval, "tasks")) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "task");
        if (!task || (cJSON_IsString(name) && !strcmp(name->valuestring, task))) return t;
    }
    return NULL;
}

static double eval_number(const cJSON *task, const char *group, const char *key) {
    const cJSON *o = group ? cJSON_GetObjectItemCaseSensitive(task, group) : task;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void summary_row(const char *label, double value, double target) {
    char cell[32] = "-";
    if (isfinite(value)) snprintf(cell, sizeof cell, "%.1f%%", 100 * value);
    printf("%-58s %8s", label, cell);
    if (isfinite(target)) printf("   %5.1f%% %s", 100 * target, isfinite(value) && value >= target ? "met" : "MISS");
    printf("\n");
}

/* --tools-summary: tool-call validity, the tool tasks with and without their
 * tools, and output validity under a JSON Schema (issue targets: 100%, 95%,
 * 90%, 100%). */
static int tools_summary(const char *const path[3]) {
    cJSON *e[3] = {0};
    int rc = CLI_EXIT_OK;
    for (int i = 0; i < 3 && rc == CLI_EXIT_OK; i++) {
        char *data = NULL;
        size_t len = 0;
        cllm_error err;
        if (cllm_file_read_all(path[i], 64u << 20, &data, &len, &err) != CLLM_OK) {
            rc = cli_fail(CMD, &err);
            break;
        }
        e[i] = cJSON_ParseWithLength(data, len);
        free(data);
        if (!eval_task(e[i], NULL)) {
            fprintf(stderr, "cllm %s: %s: not a `cllm eval --json` result with \"tasks\"\n", CMD, path[i]);
            rc = CLI_EXIT_DATA;
        }
    }
    if (rc == CLI_EXIT_OK) {
        const cJSON *ta = eval_task(e[0], "tool_arithmetic"), *ts = eval_task(e[0], "tool_shop");
        double calls = eval_number(ta, NULL, "tool_calls") + eval_number(ts, NULL, "tool_calls");
        double valid = eval_number(ta, NULL, "tool_call_validity") * eval_number(ta, NULL, "tool_calls") +
                       eval_number(ts, NULL, "tool_call_validity") * eval_number(ts, NULL, "tool_calls");
        printf("%-58s %8s   %s\n", "tools (final model, test split)", "value", "target");
        char label[96];
        snprintf(label, sizeof label, "tool-call validity (%.0f calls, constrained decoding)", calls);
        summary_row(label, calls > 0 ? valid / calls : NAN, 1.0);
        summary_row("arithmetic on unseen 4-digit numbers, with the calculator",
                    eval_number(ta, "metrics", "accuracy"), 0.95);
        summary_row("arithmetic on unseen 4-digit numbers, the model alone",
                    eval_number(eval_task(e[1], "tool_arithmetic"), "metrics", "accuracy"), NAN);
        summary_row("shop questions (orders, stock), with the shop tool", eval_number(ts, "metrics", "exact_match"), 0.9);
        summary_row("shop questions (orders, stock), the model alone",
                    eval_number(eval_task(e[1], "tool_shop"), "metrics", "exact_match"), NAN);
        const cJSON *js = eval_task(e[2], NULL);
        snprintf(label, sizeof label, "JSON-schema output validity (%s as JSON)",
                 cJSON_IsString(cJSON_GetObjectItemCaseSensitive(js, "task"))
                     ? cJSON_GetObjectItemCaseSensitive(js, "task")->valuestring : "?");
        summary_row(label, eval_number(js, NULL, "grammar_validity"), 1.0);
    }
    for (int i = 0; i < 3; i++) cJSON_Delete(e[i]);
    return rc;
}

int cllm_cmd_report(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "--tools-summary")) {
        if (argc != 5) return cli_usage_error(CMD, "--tools-summary takes three eval JSON files (with tools, without, "
                                                   "under a JSON Schema) and nothing else");
        return tools_summary((const char *const *)argv + 2);
    }
    report_args *a = malloc(sizeof *a);
    if (!a) return cli_fail(CMD, &(cllm_error){.msg = "out of memory"});
    int rc = parse_args(a, argc, argv);
    if (rc != CLI_EXIT_OK) {
        free(a);
        return rc < 0 ? CLI_EXIT_OK : rc;
    }
    cllm_report r;
    cllm_error err = {0};
    cllm_status st = cllm_report_build(&r, &a->p, &err);
    if (st == CLLM_ERR_ARG) rc = cli_usage_error(CMD, "%s", err.msg);
    else if (st != CLLM_OK) rc = cli_fail(CMD, &err);
    if (rc == CLI_EXIT_OK) {
        print_warnings(&r);
        print_table(&r, a->drops_from, a->p.drops_first);
        if (a->svg_path && cllm_report_svg_write(&r, a->svg_path, a->title, &err) != CLLM_OK) rc = cli_fail(CMD, &err);
    }
    if (rc == CLI_EXIT_OK && a->json_path && write_json(&r, a->json_path, &err) != CLLM_OK) rc = cli_fail(CMD, &err);
    cllm_report_free(&r);
    free(a);
    return rc;
}
