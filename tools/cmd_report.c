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
 * Does not: run models (cllm eval does), or compare examples one by one.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "cllm/fileio.h"
#include "cllm/metrics.h"
#include "cllm/plot.h"

#define CMD "report"
#define MAX_STAGES 32
#define MAX_TASKS 64
#define MAX_OVERRIDES 64
#define MAX_JSON_BYTES (256u << 20) /* an eval JSON is a few KB per task; refuse absurd files */

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
            "  -h, --help            this help\n");
}

typedef struct {
    char name[128];
    int metric;               /* cllm_metric, -1 until chosen */
    double target;            /* NaN: none */
    double score[MAX_STAGES]; /* [n_stages] headline value per stage, NaN when missing */
    double n[MAX_STAGES];     /* [n_stages] examples scored, NaN when missing */
    cJSON *metrics[MAX_STAGES]; /* [n_stages] borrowed "metrics" object, NULL when missing */
} task_row;

typedef struct {
    char task[128];
    char value[64];
} override;

static int split_pair(const char *arg, char *key, size_t key_cap, const char **value) {
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1] || (size_t)(eq - arg) >= key_cap) return 0;
    memcpy(key, arg, (size_t)(eq - arg));
    key[eq - arg] = '\0';
    *value = eq + 1;
    return 1;
}

static task_row *find_task(task_row *t, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(t[i].name, name)) return &t[i];
    return NULL;
}

/* "95.0%", "83.12", "0.642" or "-". */
static void format_value(char *buf, size_t cap, int metric, double v) {
    if (!isfinite(v)) snprintf(buf, cap, "-");
    else if (metric == CLLM_METRIC_ACCURACY || metric == CLLM_METRIC_EXACT_MATCH) snprintf(buf, cap, "%.1f%%", 100 * v);
    else if (metric == CLLM_METRIC_CHRF) snprintf(buf, cap, "%.2f", v);
    else snprintf(buf, cap, "%.3f", v);
}

static double to_percent_scale(int metric, double v) { return metric == CLLM_METRIC_CHRF ? v : 100 * v; }

static cJSON *load_json(const char *path, cllm_error *err) {
    char *data = NULL;
    size_t len = 0;
    if (cllm_file_read_all(path, MAX_JSON_BYTES, &data, &len, err) != CLLM_OK) return NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(data, &end, 1);
    if (!root) {
        size_t off = end ? (size_t)(end - data) : 0;
        cllm_error_set(err, CLLM_ERR_FORMAT, "%s: not valid JSON (near byte %zu)", path, off);
    }
    free(data);
    return root;
}

int cllm_cmd_report(int argc, char **argv) {
    const char *svg_path = NULL, *json_path = NULL, *manifest_path = NULL, *drops_from = NULL;
    const char *title = "Test scores per training stage";
    char stage_name[MAX_STAGES][64];
    const char *stage_file[MAX_STAGES];
    int n_stages = 0, n_metric = 0, n_target = 0;
    override metric_ov[MAX_OVERRIDES], target_ov[MAX_OVERRIDES];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        const char **dst = !strcmp(a, "--svg") ? &svg_path
                           : !strcmp(a, "--json") ? &json_path
                           : !strcmp(a, "--manifest") ? &manifest_path
                           : !strcmp(a, "--drops-from") ? &drops_from
                           : !strcmp(a, "--title") ? &title
                           : NULL;
        if (dst) {
            if (!(*dst = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
            continue;
        }
        if (!strcmp(a, "--metric") || !strcmp(a, "--target")) {
            const char *v = cli_value(CMD, argc, argv, &i), *value;
            if (!v) return CLI_EXIT_USAGE;
            int is_metric = !strcmp(a, "--metric");
            override *o = is_metric ? &metric_ov[n_metric] : &target_ov[n_target];
            if ((is_metric ? n_metric : n_target) >= MAX_OVERRIDES)
                return cli_usage_error(CMD, "more than %d %s flags", MAX_OVERRIDES, a);
            if (!split_pair(v, o->task, sizeof o->task, &value) || strlen(value) >= sizeof o->value)
                return cli_usage_error(CMD, "%s expects TASK=%s, got '%s'", a, is_metric ? "NAME" : "VALUE", v);
            strcpy(o->value, value);
            if (is_metric) {
                if (cllm_metric_parse(value) < 0)
                    return cli_usage_error(CMD, "--metric %s: unknown metric '%s' (exact_match, accuracy, rouge_l, chrf)",
                                           o->task, value);
                n_metric++;
            } else {
                double t;
                if (!cli_parse_double(CMD, "--target", value, 0, 100, &t)) return CLI_EXIT_USAGE;
                n_target++;
            }
            continue;
        }
        if (a[0] == '-') return cli_usage_error(CMD, "unknown flag '%s'", a);
        const char *file;
        if (n_stages >= MAX_STAGES) return cli_usage_error(CMD, "more than %d stages", MAX_STAGES);
        if (!split_pair(a, stage_name[n_stages], sizeof stage_name[0], &file))
            return cli_usage_error(CMD, "expected STAGE=EVAL.json, got '%s'", a);
        for (int s = 0; s < n_stages; s++)
            if (!strcmp(stage_name[s], stage_name[n_stages]))
                return cli_usage_error(CMD, "stage '%s' given twice", stage_name[s]);
        stage_file[n_stages++] = file;
    }
    if (n_stages == 0) return cli_usage_error(CMD, "no STAGE=EVAL.json given");
    int drops_first = 1; /* first stage index compared with its predecessor */
    if (drops_from) {
        drops_first = -1;
        for (int s = 0; s < n_stages; s++)
            if (!strcmp(stage_name[s], drops_from)) drops_first = s + 1;
        if (drops_first < 0) return cli_usage_error(CMD, "--drops-from %s: no such stage", drops_from);
    }

    int rc = CLI_EXIT_OK;
    cllm_error err = {0};
    cJSON *roots[MAX_STAGES] = {0}, *manifest = NULL, *summary = NULL;
    task_row *tasks = calloc(MAX_TASKS, sizeof *tasks);
    int n_tasks = 0;
    if (!tasks) {
        fprintf(stderr, "cllm %s: error: out of memory\n", CMD);
        return CLI_EXIT_DATA;
    }
    if (manifest_path && !(manifest = load_json(manifest_path, &err))) {
        rc = cli_fail(CMD, &err);
        goto done;
    }
    /* read every stage; tasks in order of first appearance */
    for (int s = 0; s < n_stages && rc == CLI_EXIT_OK; s++) {
        if (!(roots[s] = load_json(stage_file[s], &err))) {
            rc = cli_fail(CMD, &err);
            break;
        }
        cJSON *arr = cJSON_GetObjectItemCaseSensitive(roots[s], "tasks"), *o;
        if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0) {
            fprintf(stderr, "cllm %s: error: %s: no \"tasks\" array (is it `cllm eval --json` output?)\n", CMD,
                    stage_file[s]);
            rc = CLI_EXIT_DATA;
            break;
        }
        int idx = 0;
        cJSON_ArrayForEach(o, arr) {
            const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "task"));
            cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "metrics");
            cJSON *n = cJSON_GetObjectItemCaseSensitive(o, "n");
            if (!name || !*name || strlen(name) >= sizeof tasks[0].name || !cJSON_IsObject(m) || !cJSON_IsNumber(n)) {
                fprintf(stderr, "cllm %s: error: %s: tasks[%d] needs \"task\", \"n\" and \"metrics\"\n", CMD,
                        stage_file[s], idx);
                rc = CLI_EXIT_DATA;
                break;
            }
            task_row *t = find_task(tasks, n_tasks, name);
            if (!t) {
                if (n_tasks >= MAX_TASKS) {
                    fprintf(stderr, "cllm %s: error: more than %d tasks\n", CMD, MAX_TASKS);
                    rc = CLI_EXIT_DATA;
                    break;
                }
                t = &tasks[n_tasks++];
                strcpy(t->name, name);
                t->metric = -1;
                t->target = NAN;
                for (int k = 0; k < MAX_STAGES; k++) t->score[k] = t->n[k] = NAN;
            }
            if (t->metrics[s]) {
                fprintf(stderr, "cllm %s: error: %s: task '%s' appears twice\n", CMD, stage_file[s], name);
                rc = CLI_EXIT_DATA;
                break;
            }
            t->metrics[s] = m;
            t->n[s] = n->valuedouble;
            idx++;
        }
    }
    if (rc != CLI_EXIT_OK) goto done;
    for (int i = 0; i < n_metric; i++)
        if (!find_task(tasks, n_tasks, metric_ov[i].task)) {
            rc = cli_usage_error(CMD, "--metric %s: no such task in the results", metric_ov[i].task);
            goto done;
        }
    for (int i = 0; i < n_target; i++) {
        task_row *t = find_task(tasks, n_tasks, target_ov[i].task);
        if (!t) {
            rc = cli_usage_error(CMD, "--target %s: no such task in the results", target_ov[i].task);
            goto done;
        }
        t->target = strtod(target_ov[i].value, NULL);
    }
    /* choose each task's headline metric, then read it from every stage */
    cJSON *declared = manifest ? cJSON_GetObjectItemCaseSensitive(manifest, "tasks") : NULL;
    if (manifest && !cJSON_IsObject(declared)) {
        fprintf(stderr, "cllm %s: error: %s: no \"tasks\" object\n", CMD, manifest_path);
        rc = CLI_EXIT_DATA;
        goto done;
    }
    for (int i = 0; i < n_tasks; i++) {
        task_row *t = &tasks[i];
        for (int k = n_metric - 1; k >= 0 && t->metric < 0; k--) /* the last flag wins */
            if (!strcmp(metric_ov[k].task, t->name)) t->metric = cllm_metric_parse(metric_ov[k].value);
        cJSON *list = declared ? cJSON_GetObjectItemCaseSensitive(declared, t->name) : NULL;
        if (t->metric < 0 && cJSON_IsArray(list) && cJSON_GetArraySize(list) > 0) {
            const char *first = cJSON_GetStringValue(cJSON_GetArrayItem(list, 0));
            t->metric = first ? cllm_metric_parse(first) : -1;
            if (t->metric < 0) {
                fprintf(stderr, "cllm %s: error: %s: task '%s' declares an unknown metric\n", CMD, manifest_path,
                        t->name);
                rc = CLI_EXIT_DATA;
                goto done;
            }
        }
        for (int m = 0; m < CLLM_METRIC_COUNT && t->metric < 0; m++)
            for (int s = 0; s < n_stages; s++)
                if (t->metrics[s] && cJSON_GetObjectItemCaseSensitive(t->metrics[s], cllm_metric_name((cllm_metric)m))) {
                    t->metric = m;
                    break;
                }
        if (t->metric < 0) {
            fprintf(stderr, "cllm %s: error: task '%s' has no known metric in any stage\n", CMD, t->name);
            rc = CLI_EXIT_DATA;
            goto done;
        }
        for (int s = 0; s < n_stages; s++) {
            cJSON *v = t->metrics[s] ? cJSON_GetObjectItemCaseSensitive(t->metrics[s], cllm_metric_name(t->metric)) : NULL;
            if (t->metrics[s] && !cJSON_IsNumber(v)) {
                fprintf(stderr, "cllm %s: error: %s: task '%s' has no number for %s\n", CMD, stage_file[s], t->name,
                        cllm_metric_name(t->metric));
                rc = CLI_EXIT_DATA;
                goto done;
            }
            if (v) t->score[s] = v->valuedouble;
            if (s > 0 && isfinite(t->n[s]) && isfinite(t->n[0]) && t->n[s] != t->n[0])
                fprintf(stderr, "cllm %s: warning: task '%s' has %.0f examples in stage '%s' but %.0f in '%s'\n",
                        CMD, t->name, t->n[s], stage_name[s], t->n[0], stage_name[0]);
        }
    }

    /* the table */
    int any_target = 0;
    for (int i = 0; i < n_tasks; i++) any_target |= isfinite(tasks[i].target);
    printf("%-30s", "task (metric)");
    for (int s = 0; s < n_stages; s++) printf(" %10s", stage_name[s]);
    if (any_target) printf(" %12s", "target");
    printf("\n");
    summary = cJSON_CreateObject();
    cJSON *js_stages = cJSON_AddArrayToObject(summary, "stages");
    for (int s = 0; s < n_stages; s++) cJSON_AddItemToArray(js_stages, cJSON_CreateString(stage_name[s]));
    cJSON *js_tasks = cJSON_AddArrayToObject(summary, "tasks");
    cJSON *js_drops = cJSON_CreateArray();
    int met = 0, with_target = 0;
    for (int i = 0; i < n_tasks; i++) {
        task_row *t = &tasks[i];
        char label[160], cell[32];
        snprintf(label, sizeof label, "%s (%s)", t->name, cllm_metric_name(t->metric));
        printf("%-30s", label);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "task", t->name);
        cJSON_AddStringToObject(o, "metric", cllm_metric_name(t->metric));
        cJSON *sc = cJSON_AddObjectToObject(o, "scores");
        for (int s = 0; s < n_stages; s++) {
            format_value(cell, sizeof cell, t->metric, t->score[s]);
            printf(" %10s", cell);
            cJSON_AddItemToObject(sc, stage_name[s], isfinite(t->score[s]) ? cJSON_CreateNumber(t->score[s]) : cJSON_CreateNull());
        }
        cJSON_AddItemToObject(o, "n", isfinite(t->n[n_stages - 1]) ? cJSON_CreateNumber(t->n[n_stages - 1]) : cJSON_CreateNull());
        double last = t->score[n_stages - 1], first = t->score[0];
        cJSON_AddItemToObject(o, "final_over_first", cJSON_CreateBool(isfinite(last) && isfinite(first) && last > first));
        if (isfinite(t->target)) {
            int ok = isfinite(last) && last >= t->target;
            format_value(cell, sizeof cell, t->metric, t->target);
            printf(" %7s %s", cell, ok ? "met" : "MISS");
            cJSON_AddNumberToObject(o, "target", t->target);
            cJSON_AddBoolToObject(o, "target_met", ok);
            met += ok;
            with_target++;
        } else if (any_target) {
            printf(" %12s", "");
        }
        printf("\n");
        for (int s = drops_first; s < n_stages; s++) {
            /* a drop is one the table shows: smaller, and different as printed */
            char now[32], before[32];
            format_value(now, sizeof now, t->metric, t->score[s]);
            format_value(before, sizeof before, t->metric, t->score[s - 1]);
            if (isfinite(t->score[s]) && isfinite(t->score[s - 1]) && t->score[s] < t->score[s - 1] &&
                strcmp(now, before) != 0) {
                cJSON *d = cJSON_CreateObject();
                cJSON_AddStringToObject(d, "stage", stage_name[s]);
                cJSON_AddStringToObject(d, "task", t->name);
                cJSON_AddNumberToObject(d, "before", t->score[s - 1]);
                cJSON_AddNumberToObject(d, "after", t->score[s]);
                cJSON_AddItemToArray(js_drops, d);
            }
        }
        cJSON_AddItemToArray(js_tasks, o);
    }
    cJSON_AddItemToObject(summary, "drops", js_drops);
    if (with_target) {
        printf("targets met at stage '%s': %d of %d\n", stage_name[n_stages - 1], met, with_target);
        cJSON_AddNumberToObject(summary, "targets_met", met);
        cJSON_AddNumberToObject(summary, "targets", with_target);
    }
    int n_drops = cJSON_GetArraySize(js_drops);
    if (n_drops == 0 && n_stages > drops_first) {
        printf("no task fell from one stage to the next%s%s\n", drops_from ? " after " : "", drops_from ? drops_from : "");
    }
    cJSON *d;
    cJSON_ArrayForEach(d, js_drops) {
        task_row *t = find_task(tasks, n_tasks, cJSON_GetStringValue(cJSON_GetObjectItem(d, "task")));
        char b[32], a2[32];
        format_value(b, sizeof b, t->metric, cJSON_GetObjectItem(d, "before")->valuedouble);
        format_value(a2, sizeof a2, t->metric, cJSON_GetObjectItem(d, "after")->valuedouble);
        printf("drop: %s fell from %s to %s at stage '%s'\n", t->name, b, a2,
               cJSON_GetStringValue(cJSON_GetObjectItem(d, "stage")));
    }

    if (svg_path) {
        double *vals = malloc(sizeof(double) * (size_t)n_stages * (size_t)n_tasks);
        const char *groups[MAX_TASKS], *series[MAX_STAGES];
        if (!vals) {
            fprintf(stderr, "cllm %s: error: out of memory\n", CMD);
            rc = CLI_EXIT_DATA;
            goto done;
        }
        for (int i = 0; i < n_tasks; i++) groups[i] = tasks[i].name;
        for (int s = 0; s < n_stages; s++) {
            series[s] = stage_name[s];
            for (int i = 0; i < n_tasks; i++)
                vals[s * n_tasks + i] = to_percent_scale(tasks[i].metric, tasks[i].score[s]);
        }
        cllm_plot_params p = cllm_plot_default_params();
        p.title = title;
        p.y_label = "score: accuracy / exact match %, chrF, ROUGE-L x 100";
        p.width = 120 * n_tasks + 260 > 800 ? 120 * n_tasks + 260 : 800;
        p.y_max = 100;
        cllm_status st = cllm_plot_bars_svg_write(svg_path, &p, groups, n_tasks, series, n_stages, vals, &err);
        free(vals);
        if (st != CLLM_OK) {
            rc = cli_fail(CMD, &err);
            goto done;
        }
    }
    if (json_path) {
        char *js = cJSON_Print(summary);
        cllm_atomic_file f;
        cllm_status st = js ? cllm_atomic_begin(&f, json_path, &err)
                            : cllm_error_set(&err, CLLM_ERR_NOMEM, "cannot print the JSON summary");
        if (st == CLLM_OK) {
            cllm_atomic_printf(&f, "%s\n", js);
            st = cllm_atomic_commit(&f, &err);
        }
        free(js);
        if (st != CLLM_OK) rc = cli_fail(CMD, &err);
    }
done:
    cJSON_Delete(summary);
    cJSON_Delete(manifest);
    for (int s = 0; s < n_stages; s++) cJSON_Delete(roots[s]);
    free(tasks);
    return rc;
}
