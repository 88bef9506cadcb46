/*
 * cmd_eval.c: `cllm eval`: runs task files against a model and reports the
 * metrics each example declares, and scores a text file's perplexity and
 * bits per byte.
 *
 * Task files, answers, scoring and text likelihood are the library's
 * (src/eval/tasks.c; the task file format is in eval.h). This file parses
 * arguments, reads and validates every file before the model is loaded,
 * and prints the table, samples, predictions (JSONL) and --json output.
 * --text FILE is scored in windows of the model's max_seq (cllm_eval_text).
 * Not here: sampling-based evaluation, LLM-as-judge.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cllm/eval/eval.h"
#include "cllm/core/fileio.h"
#include "cllm/core/progress.h"
#include "model_session.h"
#include "sampler_args.h"

#define CMD "eval"
#define MAX_TASK_FILES 32
#define MAX_TEXT_BYTES (1ull << 31)

static void usage(FILE *out) {
    fprintf(out,
            "Usage: cllm eval -m MODEL.gguf --task FILE [--task FILE ...] [options]\n"
            "       cllm eval -m MODEL.gguf --text FILE [options]\n\n"
            "Runs each example of a task file (JSONL with \"messages\", \"reference\", \"task\",\n"
            "\"metrics\", as `cllm data world` writes) through the model's chat template with\n"
            "greedy decoding and reports, per task, the declared metrics: exact_match and\n"
            "accuracy (0..1), rouge_l (0..1), chrf (0..100). --text reports perplexity and\n"
            "bits per byte of a text file.\n\n"
            "Options:\n" MODEL_SESSION_HELP
            "  --task FILE       a task file (repeatable)\n"
            "  --text FILE       a text file for perplexity / bits per byte\n"
            "  --limit N         evaluate at most N examples per task file\n"
            "  --max-tokens N    longest answer in tokens (default 128)\n"
            "  --show N          print N sample answers per task (default 0; JSON keeps 3)\n"
            "  --predictions F   write every answer with its scores to F (JSONL)\n"
            "  --json            one JSON object on stdout instead of the table\n"
            "  --grammar FILE    constrain every answer to a GBNF grammar (docs/GRAMMAR.md)\n"
            "  --json-schema FILE  constrain every answer to JSON matching a JSON Schema\n"
            "  --tools FILE      answer examples that have \"tools\" with the agent loop and this\n"
            "                    toolbox (the world's tools.json; docs/TOOLS.md); reports the\n"
            "                    share of valid tool calls per task\n"
            "  --no-tools        answer examples that have \"tools\" without them (the model alone)\n"
            "  --no-progress     no progress bar on stderr\n"
            "  -h, --help        this help\n");
}

typedef struct {
    model_session_args sa;
    grammar_args ga;
    const char *tasks[MAX_TASK_FILES], *text, *pred_path, *tools_path;
    int n_tasks, json, max_tokens, show, progress, no_tools;
    cllm_toolbox *toolbox;
    cllm_agent *agent; /* with --tools, once the model is open */
    size_t grammar_valid[CLLM_EVAL_MAX_TASKS]; /* with --grammar / --json-schema: answers the grammar accepts */
    int64_t limit;
} eval_args;

/* Fills a; returns CLI_EXIT_OK, or the exit code (help printed: -1). */
static int parse_args(eval_args *a, int argc, char **argv) {
    memset(a, 0, sizeof *a);
    model_session_args_init(&a->sa);
    a->max_tokens = 128;
    a->progress = 1;
    const char *v;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (cli_is_help(arg)) {
            usage(stdout);
            return -1;
        }
        int r = model_session_arg(CMD, &a->sa, argc, argv, &i);
        if (r == 0) r = grammar_arg(CMD, &a->ga, argc, argv, &i);
        if (r < 0) return CLI_EXIT_USAGE;
        if (r > 0) continue;
        if (!strcmp(arg, "--task")) {
            if (!(v = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
            if (a->n_tasks == MAX_TASK_FILES) return cli_usage_error(CMD, "at most %d --task files", MAX_TASK_FILES);
            a->tasks[a->n_tasks++] = v;
        } else if (!strcmp(arg, "--text")) {
            if (!(a->text = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(arg, "--predictions")) {
            if (!(a->pred_path = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(arg, "--limit")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_i64(CMD, arg, v, 1, INT64_MAX, &a->limit))
                return CLI_EXIT_USAGE;
        } else if (!strcmp(arg, "--max-tokens")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, arg, v, 1, 1 << 20, &a->max_tokens))
                return CLI_EXIT_USAGE;
        } else if (!strcmp(arg, "--show")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, arg, v, 0, 1000, &a->show))
                return CLI_EXIT_USAGE;
        } else if (!strcmp(arg, "--tools")) {
            if (!(a->tools_path = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(arg, "--no-tools")) {
            a->no_tools = 1;
        } else if (!strcmp(arg, "--json")) {
            a->json = 1;
        } else if (!strcmp(arg, "--no-progress")) {
            a->progress = 0;
        } else {
            return cli_unknown_flag(CMD, arg);
        }
    }
    if (!a->sa.model_path) return cli_usage_error(CMD, "a model is required: -m MODEL.gguf");
    if (!a->n_tasks && !a->text) return cli_usage_error(CMD, "nothing to evaluate: give --task FILE or --text FILE");
    if (a->tools_path && a->no_tools) return cli_usage_error(CMD, "--tools and --no-tools exclude each other");
    if (a->tools_path && (a->ga.grammar_path || a->ga.schema_path))
        return cli_usage_error(CMD, "--tools constrains calls with the tools' own grammar; it cannot be combined with "
                                    "--grammar or --json-schema");
    return CLI_EXIT_OK;
}

/* Reads and validates every input before the model is loaded. */
static int check_inputs(eval_args *a, cllm_eval_set *ex) {
    cllm_error err;
    int rc = grammar_args_load(CMD, &a->ga);
    if (rc != CLI_EXIT_OK) return rc;
    for (int t = 0; t < a->n_tasks; t++)
        if (cllm_eval_set_load(ex, a->tasks[t], a->limit, &err) != CLLM_OK) return cli_fail(CMD, &err);
    if (a->tools_path && cllm_toolbox_load(a->tools_path, &a->toolbox, &err) != CLLM_OK) return cli_fail(CMD, &err);
    for (size_t i = 0; i < ex->n && !a->tools_path && !a->no_tools; i++)
        if (ex->v[i].tools)
            return cli_usage_error(CMD, "%s:%ld: the example has \"tools\": pass --tools TOOLBOX.json to let the model "
                                        "call them (the world's tools.json), or --no-tools to answer without",
                                   ex->v[i].file, ex->v[i].line);
    if (a->text && cllm_file_check_regular(a->text, NULL, &err) != CLLM_OK) return cli_fail(CMD, &err);
    if (a->pred_path) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", a->pred_path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        if (cllm_dir_check_writable(slash ? (dir[0] ? dir : "/") : ".", &err) != CLLM_OK) return cli_fail(CMD, &err);
    }
    return CLI_EXIT_OK;
}

/* One answer with its scores, as a predictions line / JSON sample. */
static cJSON *sample_json(const cllm_eval_example *e, const char *answer, const double scores[CLLM_METRIC_COUNT]) {
    cJSON *sample = cJSON_CreateObject();
    cJSON_AddStringToObject(sample, "task", e->task);
    cJSON_AddStringToObject(sample, "prompt", e->msgs[e->n_msgs - 1].content);
    cJSON_AddStringToObject(sample, "reference", e->reference);
    cJSON_AddStringToObject(sample, "output", answer);
    cJSON *sc = cJSON_AddObjectToObject(sample, "scores");
    for (int k = 0; k < e->n_metrics; k++)
        cJSON_AddNumberToObject(sc, cllm_metric_name((cllm_metric)e->metrics[k]), scores[e->metrics[k]]);
    return sample;
}

/* 1 when answer is a whole sentence of the grammar (and, for a JSON
 * Schema, parses as JSON): the check of constrained output. */
static int grammar_accepts(const eval_args *a, const char *answer) {
    cllm_error err;
    cllm_grammar_matcher *m = cllm_grammar_matcher_create(a->ga.grammar, &err);
    if (!m) return 0;
    int ok = cllm_grammar_matcher_accept(m, (const uint8_t *)answer, strlen(answer)) && cllm_grammar_matcher_complete(m);
    cllm_grammar_matcher_destroy(m);
    if (ok && a->ga.schema_path) {
        cJSON *j = cJSON_Parse(answer);
        ok = j != NULL;
        cJSON_Delete(j);
    }
    return ok;
}

/* Answers and scores every example; keeps samples[task] (up to max(show, 3)
 * each) and writes every answer to the predictions file when open. */
static int run_examples(eval_args *a, model_session *s, const cllm_eval_set *ex, cllm_eval_tally *tally,
                        cJSON *samples[CLLM_EVAL_MAX_TASKS], cllm_atomic_file *pf) {
    const int keep = a->show > 3 ? a->show : 3;
    cllm_progress bar;
    cllm_progress_begin(&bar, "eval", (double)ex->n, "ex");
    bar.enabled = a->progress;
    cllm_error err;
    for (size_t i = 0; i < ex->n; i++) {
        const cllm_eval_example *e = &ex->v[i];
        char *answer = NULL;
        int over, g;
        double scores[CLLM_METRIC_COUNT];
        cllm_agent_stats stats;
        int agent = e->tools && a->agent;
        cllm_status st = agent ? cllm_eval_answer_agent(s->model, a->agent, s->context, e, a->max_tokens, &answer, &over,
                                                        &stats, &err)
                               : cllm_eval_answer(s->model, s->tok, s->chat_template, s->context, e, a->max_tokens,
                                                  a->ga.grammar, &a->ga.vocab, &answer, &over, &err);
        if (st != CLLM_OK || cllm_eval_tally_add(tally, e, answer, over, scores, &g, &err) != CLLM_OK) {
            free(answer);
            return cli_fail(CMD, &err);
        }
        if (agent) cllm_eval_tally_agent(tally, g, &stats);
        if (a->ga.grammar) a->grammar_valid[g] += (size_t)grammar_accepts(a, answer);
        if (!samples[g]) samples[g] = cJSON_CreateArray();
        if (pf || cJSON_GetArraySize(samples[g]) < keep) {
            cJSON *sample = sample_json(e, answer, scores);
            if (pf) {
                char *line = cJSON_PrintUnformatted(sample);
                if (line) cllm_atomic_printf(pf, "%s\n", line);
                free(line);
            }
            if (cJSON_GetArraySize(samples[g]) < keep) cJSON_AddItemToArray(samples[g], sample);
            else cJSON_Delete(sample);
        }
        free(answer);
        if (a->progress) cllm_progress_update(&bar, (double)(i + 1), tally->tasks[g].name);
    }
    if (ex->n && a->progress) cllm_progress_end(&bar, NULL);
    return CLI_EXIT_OK;
}

/* The per-task table (unless --json) and the "tasks" array of out; takes the samples. */
static void report_tasks(const eval_args *a, const cllm_eval_tally *tally, cJSON *samples[CLLM_EVAL_MAX_TASKS],
                         cJSON *out) {
    const int json = a->json;
    cJSON *arr = cJSON_AddArrayToObject(out, "tasks");
    if (!json) {
        printf("%-18s %6s", "task", "n");
        for (int m = 0; m < CLLM_METRIC_COUNT; m++) printf(" %11s", cllm_metric_name((cllm_metric)m));
        printf("\n");
    }
    for (int gi = 0; gi < tally->n_tasks; gi++) {
        const cllm_eval_task_totals *g = &tally->tasks[gi];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "task", g->name);
        cJSON_AddNumberToObject(o, "n", (double)g->n);
        cJSON_AddNumberToObject(o, "over_context", (double)g->over_context);
        cJSON *mo = cJSON_AddObjectToObject(o, "metrics");
        if (!json) printf("%-18s %6zu", g->name, g->n);
        for (int m = 0; m < CLLM_METRIC_COUNT; m++) {
            double mean = cllm_eval_task_mean(g, (cllm_metric)m);
            if (isnan(mean)) {
                if (!json) printf(" %11s", "-");
                continue;
            }
            cJSON_AddNumberToObject(mo, cllm_metric_name((cllm_metric)m), mean);
            if (!json) printf(m == CLLM_METRIC_CHRF ? " %11.2f" : " %11.4f", mean);
        }
        if (a->ga.grammar) { /* answers are checked after the fact, not trusted to the constraint */
            double v = g->n ? (double)a->grammar_valid[gi] / (double)g->n : 0;
            cJSON_AddNumberToObject(o, "grammar_validity", v);
            if (!json) printf("   (%.1f%% valid under the grammar)", 100.0 * v);
        }
        if (g->agent_runs) { /* validity: the share of written calls that could run */
            double valid = g->calls ? (double)g->valid_calls / (double)g->calls : 0;
            cJSON_AddNumberToObject(o, "tool_calls", (double)g->calls);
            if (g->calls) cJSON_AddNumberToObject(o, "tool_call_validity", valid);
            else cJSON_AddNullToObject(o, "tool_call_validity");
            if (!json && g->calls) printf("   (%zu tool calls, %.1f%% valid)", g->calls, 100.0 * valid);
            else if (!json) printf("   (no tool calls)");
        }
        if (!json) printf(g->over_context ? "   (%zu over the context)\n" : "\n", g->over_context);
        cJSON_AddItemToObject(o, "samples", samples[gi] ? samples[gi] : cJSON_CreateArray());
        samples[gi] = NULL;
        cJSON_AddItemToArray(arr, o);
    }
    if (json || !a->show) return;
    cJSON *o;
    cJSON_ArrayForEach(o, arr) {
        cJSON *sm;
        int k = 0;
        cJSON_ArrayForEach(sm, cJSON_GetObjectItem(o, "samples")) {
            if (k++ >= a->show) break;
            printf("\n[%s] %s\n  reference: %s\n  output:    %s\n", cJSON_GetStringValue(cJSON_GetObjectItem(o, "task")),
                   cJSON_GetStringValue(cJSON_GetObjectItem(sm, "prompt")),
                   cJSON_GetStringValue(cJSON_GetObjectItem(sm, "reference")),
                   cJSON_GetStringValue(cJSON_GetObjectItem(sm, "output")));
        }
    }
}

static int eval_text(model_session *s, const char *path, cJSON *out_json, int json) {
    cllm_error err;
    char *data = NULL;
    size_t len = 0;
    if (cllm_file_read_all(path, MAX_TEXT_BYTES, &data, &len, &err) != CLLM_OK) return cli_fail(CMD, &err);
    cllm_eval_text_result r;
    cllm_status st = cllm_eval_text(s->model, s->tok, data, len, &r, &err);
    free(data);
    if (st != CLLM_OK) {
        cllm_error_prefix(&err, "%s", path);
        return cli_fail(CMD, &err);
    }
    if (json) {
        cJSON *t = cJSON_AddObjectToObject(out_json, "text");
        cJSON_AddStringToObject(t, "file", path);
        cJSON_AddNumberToObject(t, "tokens", (double)r.tokens);
        cJSON_AddNumberToObject(t, "scored_tokens", (double)r.nll.n_scored);
        cJSON_AddNumberToObject(t, "scored_bytes", (double)r.scored_bytes);
        cJSON_AddNumberToObject(t, "window", r.window);
        cJSON_AddNumberToObject(t, "nll", r.nll.nll);
        cJSON_AddNumberToObject(t, "perplexity", r.nll.ppl);
        cJSON_AddNumberToObject(t, "bits_per_byte", r.bits_per_byte);
    } else {
        printf("text %s: %zu tokens (%lld scored, %zu bytes), window %d\n", path, r.tokens, (long long)r.nll.n_scored,
               r.scored_bytes, r.window);
        printf("  perplexity %.4f   mean NLL %.5f nats/token   bits per byte %.5f\n", r.nll.ppl, r.nll.nll,
               r.bits_per_byte);
    }
    return CLI_EXIT_OK;
}

int cllm_cmd_eval(int argc, char **argv) {
    eval_args a;
    int rc = parse_args(&a, argc, argv);
    if (rc != CLI_EXIT_OK) return rc < 0 ? CLI_EXIT_OK : rc;
    cllm_eval_set ex = {0};
    rc = check_inputs(&a, &ex);
    model_session s = {0};
    if (rc == CLI_EXIT_OK) rc = model_session_open(CMD, &a.sa, 1, &s);
    cllm_eval_tally *tally = calloc(1, sizeof *tally);
    cJSON *samples[CLLM_EVAL_MAX_TASKS] = {0};
    cJSON *out = cJSON_CreateObject();
    cllm_atomic_file pf;
    int pred_open = 0;
    cllm_error err;
    if (rc == CLI_EXIT_OK && !tally) rc = cli_fail(CMD, &(cllm_error){.msg = "out of memory"});
    if (rc == CLI_EXIT_OK && a.toolbox &&
        cllm_agent_create(s.tok, s.chat_template, a.toolbox, &a.agent, &err) != CLLM_OK)
        rc = cli_fail(CMD, &err);
    if (rc == CLI_EXIT_OK && a.pred_path) {
        if (cllm_atomic_begin(&pf, a.pred_path, &err) != CLLM_OK) rc = cli_fail(CMD, &err);
        else pred_open = 1;
    }
    double t0 = cllm_now_seconds();
    if (rc == CLI_EXIT_OK && ex.n) rc = run_examples(&a, &s, &ex, tally, samples, pred_open ? &pf : NULL);
    if (rc == CLI_EXIT_OK && pred_open) {
        pred_open = 0;
        if (cllm_atomic_commit(&pf, &err) != CLLM_OK) rc = cli_fail(CMD, &err);
    }
    double seconds = cllm_now_seconds() - t0;
    if (rc == CLI_EXIT_OK && tally->n_tasks) {
        report_tasks(&a, tally, samples, out);
        if (!a.json) printf("%zu example%s in %.1f s\n", ex.n, ex.n == 1 ? "" : "s", seconds);
    }
    if (rc == CLI_EXIT_OK && a.text) rc = eval_text(&s, a.text, out, a.json);
    if (rc == CLI_EXIT_OK && a.json) {
        cJSON_AddStringToObject(out, "model", a.sa.model_path);
        cJSON_AddNumberToObject(out, "seconds", seconds);
        char *js = cJSON_Print(out);
        if (js) printf("%s\n", js);
        free(js);
    }
    if (pred_open) cllm_atomic_abort(&pf);
    for (int g = 0; g < CLLM_EVAL_MAX_TASKS; g++) cJSON_Delete(samples[g]);
    cJSON_Delete(out);
    free(tally);
    cllm_eval_set_free(&ex);
    grammar_args_free(&a.ga);
    cllm_agent_destroy(a.agent);
    cllm_toolbox_free(a.toolbox);
    if (s.model) model_session_close(&s);
    return rc;
}
