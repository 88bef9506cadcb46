/*
 * report.c: the stage x task report of eval.h: reads `cllm eval --json`
 * results, picks each task's headline metric, and derives targets met and
 * drops between stages; renders the JSON summary and the bar chart.
 *
 * Steps of cllm_report_build: read_stage (tasks in order of first
 * appearance), apply_targets, choose_metric and read_scores per task, then
 * find_drops and count_targets. Does not print: `cllm report` prints the
 * table and the warnings.
 */
#include "cllm/eval/eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cllm/core/fileio.h"
#include "cllm/core/plot.h"

#define MAX_JSON_BYTES (256u << 20) /* an eval JSON is a few KB per task; refuse absurd files */

void cllm_report_format(char *buf, size_t cap, int metric, double v) {
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

static cllm_report_task *find_task(cllm_report *r, const char *name) {
    for (int i = 0; i < r->n_tasks; i++)
        if (!strcmp(r->tasks[i].name, name)) return &r->tasks[i];
    return NULL;
}

/* The parse trees a build works on, freed when it ends. */
typedef struct {
    cJSON *roots[CLLM_REPORT_MAX_STAGES];
    cJSON *metrics[CLLM_REPORT_MAX_TASKS][CLLM_REPORT_MAX_STAGES]; /* [task][stage] borrowed "metrics" objects */
} build_state;

/* Adds stage s's tasks to r (new ones at the end). */
static cllm_status read_stage(cllm_report *r, build_state *b, int s, const char *file, cllm_error *err) {
    if (!(b->roots[s] = load_json(file, err))) return err->status;
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(b->roots[s], "tasks"), *o;
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: no \"tasks\" array (is it `cllm eval --json` output?)", file);
    int idx = 0;
    cJSON_ArrayForEach(o, arr) {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "task"));
        cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "metrics");
        cJSON *n = cJSON_GetObjectItemCaseSensitive(o, "n");
        if (!name || !*name || strlen(name) >= sizeof r->tasks[0].name || !cJSON_IsObject(m) || !cJSON_IsNumber(n))
            return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tasks[%d] needs \"task\", \"n\" and \"metrics\"", file, idx);
        cllm_report_task *t = find_task(r, name);
        if (!t) {
            if (r->n_tasks >= CLLM_REPORT_MAX_TASKS)
                return cllm_error_set(err, CLLM_ERR_LIMIT, "more than %d tasks", CLLM_REPORT_MAX_TASKS);
            t = &r->tasks[r->n_tasks++];
            strcpy(t->name, name);
            t->metric = -1;
            t->target = NAN;
            for (int k = 0; k < CLLM_REPORT_MAX_STAGES; k++) t->score[k] = t->n[k] = NAN;
        }
        cJSON **slot = &b->metrics[t - r->tasks][s];
        if (*slot) return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: task '%s' appears twice", file, name);
        *slot = m;
        t->n[s] = n->valuedouble;
        idx++;
    }
    return CLLM_OK;
}

static cllm_status apply_overrides(cllm_report *r, const cllm_report_params *p, cllm_error *err) {
    for (int i = 0; i < p->n_metrics; i++)
        if (!find_task(r, p->metrics[i].task))
            return cllm_error_set(err, CLLM_ERR_ARG, "--metric %s: no such task in the results", p->metrics[i].task);
    for (int i = 0; i < p->n_targets; i++) {
        cllm_report_task *t = find_task(r, p->targets[i].task);
        if (!t) return cllm_error_set(err, CLLM_ERR_ARG, "--target %s: no such task in the results", p->targets[i].task);
        t->target = strtod(p->targets[i].value, NULL);
    }
    return CLLM_OK;
}

/* Headline metric of task ti: override, manifest, then the first known metric any stage carries. */
static cllm_status choose_metric(cllm_report *r, const build_state *b, int ti, const cllm_report_params *p,
                                 const cJSON *declared, cllm_error *err) {
    cllm_report_task *t = &r->tasks[ti];
    for (int k = p->n_metrics - 1; k >= 0 && t->metric < 0; k--) /* the last override wins */
        if (!strcmp(p->metrics[k].task, t->name)) t->metric = cllm_metric_parse(p->metrics[k].value);
    const cJSON *list = declared ? cJSON_GetObjectItemCaseSensitive(declared, t->name) : NULL;
    if (t->metric < 0 && cJSON_IsArray(list) && cJSON_GetArraySize(list) > 0) {
        const char *first = cJSON_GetStringValue(cJSON_GetArrayItem(list, 0));
        t->metric = first ? cllm_metric_parse(first) : -1;
        if (t->metric < 0)
            return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: task '%s' declares an unknown metric", p->manifest, t->name);
    }
    for (int m = 0; m < CLLM_METRIC_COUNT && t->metric < 0; m++)
        for (int s = 0; s < r->n_stages; s++)
            if (b->metrics[ti][s] && cJSON_GetObjectItemCaseSensitive(b->metrics[ti][s], cllm_metric_name((cllm_metric)m))) {
                t->metric = m;
                break;
            }
    if (t->metric < 0)
        return cllm_error_set(err, CLLM_ERR_FORMAT, "task '%s' has no known metric in any stage", t->name);
    return CLLM_OK;
}

static cllm_status read_scores(cllm_report *r, const build_state *b, int ti, const cllm_report_params *p,
                               cllm_error *err) {
    cllm_report_task *t = &r->tasks[ti];
    const char *metric = cllm_metric_name((cllm_metric)t->metric);
    for (int s = 0; s < r->n_stages; s++) {
        const cJSON *m = b->metrics[ti][s];
        if (!m) continue;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, metric);
        if (!cJSON_IsNumber(v))
            return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: task '%s' has no number for %s", p->stage_files[s], t->name,
                                  metric);
        t->score[s] = v->valuedouble;
    }
    return CLLM_OK;
}

/* A drop is one the table shows: smaller, and different as printed. */
static cllm_status find_drops(cllm_report *r, int drops_first, cllm_error *err) {
    for (int i = 0; i < r->n_tasks; i++) {
        const cllm_report_task *t = &r->tasks[i];
        for (int s = drops_first; s < r->n_stages; s++) {
            char now[32], before[32];
            cllm_report_format(now, sizeof now, t->metric, t->score[s]);
            cllm_report_format(before, sizeof before, t->metric, t->score[s - 1]);
            if (!(isfinite(t->score[s]) && isfinite(t->score[s - 1]) && t->score[s] < t->score[s - 1] &&
                  strcmp(now, before) != 0))
                continue;
            cllm_report_drop *d = realloc(r->drops, (size_t)(r->n_drops + 1) * sizeof *d);
            if (!d) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
            r->drops = d;
            r->drops[r->n_drops++] = (cllm_report_drop){s, i, t->score[s - 1], t->score[s]};
        }
    }
    return CLLM_OK;
}

static void count_targets(cllm_report *r) {
    for (int i = 0; i < r->n_tasks; i++) {
        const cllm_report_task *t = &r->tasks[i];
        if (!isfinite(t->target)) continue;
        double last = t->score[r->n_stages - 1];
        r->targets++;
        r->targets_met += isfinite(last) && last >= t->target;
    }
}

cllm_status cllm_report_build(cllm_report *r, const cllm_report_params *p, cllm_error *err) {
    memset(r, 0, sizeof *r);
    if (p->n_stages < 1 || p->n_stages > CLLM_REPORT_MAX_STAGES)
        return cllm_error_set(err, CLLM_ERR_ARG, "report: %d stages; 1 to %d are allowed", p->n_stages,
                              CLLM_REPORT_MAX_STAGES);
    if (p->drops_first < 1) return cllm_error_set(err, CLLM_ERR_ARG, "report: drops_first must be >= 1");
    r->n_stages = p->n_stages;
    for (int s = 0; s < p->n_stages; s++) snprintf(r->stage_names[s], sizeof r->stage_names[s], "%s", p->stage_names[s]);
    build_state *b = calloc(1, sizeof *b);
    r->tasks = calloc(CLLM_REPORT_MAX_TASKS, sizeof *r->tasks);
    cJSON *manifest = NULL;
    cllm_status st = CLLM_OK;
    if (!b || !r->tasks) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (p->manifest && !(manifest = load_json(p->manifest, err))) {
        st = err->status;
        goto done;
    }
    for (int s = 0; s < p->n_stages && st == CLLM_OK; s++) st = read_stage(r, b, s, p->stage_files[s], err);
    if (st == CLLM_OK) st = apply_overrides(r, p, err);
    if (st != CLLM_OK) goto done;
    const cJSON *declared = manifest ? cJSON_GetObjectItemCaseSensitive(manifest, "tasks") : NULL;
    if (manifest && !cJSON_IsObject(declared)) {
        st = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: no \"tasks\" object", p->manifest);
        goto done;
    }
    for (int i = 0; i < r->n_tasks && st == CLLM_OK; i++) {
        st = choose_metric(r, b, i, p, declared, err);
        if (st == CLLM_OK) st = read_scores(r, b, i, p, err);
    }
    if (st == CLLM_OK) st = find_drops(r, p->drops_first, err);
    if (st == CLLM_OK) count_targets(r);
done:
    if (b)
        for (int s = 0; s < CLLM_REPORT_MAX_STAGES; s++) cJSON_Delete(b->roots[s]);
    free(b);
    cJSON_Delete(manifest);
    return st;
}

void cllm_report_free(cllm_report *r) {
    if (!r) return;
    free(r->tasks);
    free(r->drops);
    r->tasks = NULL;
    r->drops = NULL;
    r->n_tasks = r->n_drops = 0;
}

char *cllm_report_json(const cllm_report *r) {
    cJSON *summary = cJSON_CreateObject();
    cJSON *js_stages = cJSON_AddArrayToObject(summary, "stages");
    for (int s = 0; s < r->n_stages; s++) cJSON_AddItemToArray(js_stages, cJSON_CreateString(r->stage_names[s]));
    cJSON *js_tasks = cJSON_AddArrayToObject(summary, "tasks");
    const int last_stage = r->n_stages - 1;
    for (int i = 0; i < r->n_tasks; i++) {
        const cllm_report_task *t = &r->tasks[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "task", t->name);
        cJSON_AddStringToObject(o, "metric", cllm_metric_name((cllm_metric)t->metric));
        cJSON *sc = cJSON_AddObjectToObject(o, "scores");
        for (int s = 0; s < r->n_stages; s++)
            cJSON_AddItemToObject(sc, r->stage_names[s],
                                  isfinite(t->score[s]) ? cJSON_CreateNumber(t->score[s]) : cJSON_CreateNull());
        cJSON_AddItemToObject(o, "n", isfinite(t->n[last_stage]) ? cJSON_CreateNumber(t->n[last_stage]) : cJSON_CreateNull());
        double last = t->score[last_stage], first = t->score[0];
        cJSON_AddItemToObject(o, "final_over_first", cJSON_CreateBool(isfinite(last) && isfinite(first) && last > first));
        if (isfinite(t->target)) {
            cJSON_AddNumberToObject(o, "target", t->target);
            cJSON_AddBoolToObject(o, "target_met", isfinite(last) && last >= t->target);
        }
        cJSON_AddItemToArray(js_tasks, o);
    }
    cJSON *js_drops = cJSON_AddArrayToObject(summary, "drops");
    for (int i = 0; i < r->n_drops; i++) {
        const cllm_report_drop *d = &r->drops[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "stage", r->stage_names[d->stage]);
        cJSON_AddStringToObject(o, "task", r->tasks[d->task].name);
        cJSON_AddNumberToObject(o, "before", d->before);
        cJSON_AddNumberToObject(o, "after", d->after);
        cJSON_AddItemToArray(js_drops, o);
    }
    if (r->targets) {
        cJSON_AddNumberToObject(summary, "targets_met", r->targets_met);
        cJSON_AddNumberToObject(summary, "targets", r->targets);
    }
    char *js = cJSON_Print(summary);
    cJSON_Delete(summary);
    return js;
}

cllm_status cllm_report_svg_write(const cllm_report *r, const char *path, const char *title, cllm_error *err) {
    const int nt = r->n_tasks, ns = r->n_stages;
    double *vals = malloc(sizeof(double) * (size_t)(ns > 0 ? ns : 1) * (size_t)(nt > 0 ? nt : 1));
    const char *groups[CLLM_REPORT_MAX_TASKS], *series[CLLM_REPORT_MAX_STAGES];
    if (!vals) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < nt; i++) groups[i] = r->tasks[i].name;
    for (int s = 0; s < ns; s++) {
        series[s] = r->stage_names[s];
        for (int i = 0; i < nt; i++) vals[s * nt + i] = to_percent_scale(r->tasks[i].metric, r->tasks[i].score[s]);
    }
    cllm_plot_params p = cllm_plot_default_params();
    p.title = title;
    p.y_label = "score: accuracy / exact match %, chrF, ROUGE-L x 100";
    p.width = 120 * nt + 260 > 800 ? 120 * nt + 260 : 800;
    p.y_max = 100;
    cllm_status st = cllm_plot_bars_svg_write(path, &p, groups, nt, series, ns, vals, err);
    free(vals);
    return st;
}
