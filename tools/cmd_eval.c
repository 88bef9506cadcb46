/*
 * cmd_eval.c: `cllm eval`: runs task files against a model and reports the
 * metrics each example declares, and scores a text file's perplexity and
 * bits per byte.
 *
 * Task file: JSONL, one example per line, as `cllm data world` writes them:
 *   {"task": "faq", "metrics": ["exact_match", "chrf"],
 *    "messages": [{"role": "user", "content": ...}, {"role": "assistant", ...}],
 *    "reference": "..."}
 * The prompt is every message before the final assistant message, rendered
 * with the model's chat template and a generation prompt; the answer is the
 * greedy continuation (temperature 0) up to --max-tokens, ended by the
 * template's end-of-turn token; it is trimmed of surrounding whitespace and
 * scored against "reference" (default: the final assistant message) with
 * metrics.h. "task" defaults to "default", "metrics" to ["exact_match"].
 * Every file is read and validated before the model is loaded: a malformed
 * line is reported as FILE:LINE:COLUMN, an unknown metric or a missing field
 * as FILE:LINE; a UTF-8 BOM, CRLF line ends and blank lines are accepted.
 * A prompt that leaves no room in the context window scores 0 and is
 * counted as "over_context".
 *
 * Text: --text FILE is encoded with the model's tokenizer and scored in
 * windows of the model's context (metrics.h, cllm_metric_text_nll).
 * Not here: sampling-based evaluation, LLM-as-judge.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cllm/chat.h"
#include "cllm/fileio.h"
#include "cllm/generate.h"
#include "cllm/metrics.h"
#include "cllm/progress.h"
#include "cllm/sampler.h"
#include "model_session.h"

#define CMD "eval"
#define MAX_TASK_FILES 32
#define MAX_MESSAGES 64
#define MAX_GROUPS 64
#define MAX_FILE_BYTES (1ull << 31)

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
            "  --no-progress     no progress bar on stderr\n"
            "  -h, --help        this help\n");
}

typedef struct {
    cJSON *root;                        /* owned */
    const char *task, *reference;       /* borrowed from root */
    cllm_chat_message msgs[MAX_MESSAGES];
    int n_msgs;
    int metrics[CLLM_METRIC_COUNT];     /* cllm_metric values */
    int n_metrics;
    const char *file;
    long line;
} example;

typedef struct {
    example *v;
    size_t n, cap;
} example_list;

static int fail_at(const char *file, long line, long col, const char *fmt, const char *detail) {
    fprintf(stderr, "cllm %s: error: %s:%ld", CMD, file, line);
    if (col > 0) fprintf(stderr, ":%ld", col);
    fprintf(stderr, ": ");
    fprintf(stderr, fmt, detail);
    fprintf(stderr, "\n");
    return CLI_EXIT_DATA;
}

static int parse_example(const char *file, long line, const char *text, size_t len, example *ex) {
    memset(ex, 0, sizeof *ex);
    ex->file = file;
    ex->line = line;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long col = (at && at >= text && at <= text + len) ? (long)(at - text) + 1 : 1;
        return fail_at(file, line, col, "malformed JSON%s", "");
    }
    ex->root = root;
    if (!cJSON_IsObject(root)) return fail_at(file, line, 1, "expected a JSON object%s", "");
    cJSON *task = cJSON_GetObjectItemCaseSensitive(root, "task");
    if (task && !cJSON_IsString(task)) return fail_at(file, line, 0, "\"task\" must be a string%s", "");
    ex->task = task ? task->valuestring : "default";
    cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0)
        return fail_at(file, line, 0, "\"messages\" must be a non-empty array%s", "");
    int n = cJSON_GetArraySize(msgs);
    if (n > MAX_MESSAGES) return fail_at(file, line, 0, "more than 64 messages%s", "");
    const char *last_assistant = NULL;
    int k = 0;
    for (int i = 0; i < n; i++) {
        cJSON *m = cJSON_GetArrayItem(msgs, i);
        cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role"), *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsString(role) || !cJSON_IsString(content)) {
            char what[64];
            snprintf(what, sizeof what, "messages[%d]", i);
            return fail_at(file, line, 0, "%s needs string \"role\" and \"content\"", what);
        }
        int r = cllm_chat_role_parse(role->valuestring);
        if (r < 0) return fail_at(file, line, 0, "unknown role '%s' (system, user, assistant)", role->valuestring);
        /* The final assistant message is the answer, not part of the prompt. */
        if (i == n - 1 && r == CLLM_ROLE_ASSISTANT) {
            last_assistant = content->valuestring;
            break;
        }
        ex->msgs[k].role = (cllm_chat_role)r;
        ex->msgs[k].content = content->valuestring;
        ex->msgs[k].len = strlen(content->valuestring);
        k++;
    }
    if (k == 0) return fail_at(file, line, 0, "no prompt: the only message is the assistant's answer%s", "");
    ex->n_msgs = k;
    cJSON *ref = cJSON_GetObjectItemCaseSensitive(root, "reference");
    if (ref && !cJSON_IsString(ref)) return fail_at(file, line, 0, "\"reference\" must be a string%s", "");
    ex->reference = ref ? ref->valuestring : last_assistant;
    if (!ex->reference)
        return fail_at(file, line, 0, "no \"reference\" and no final assistant message to compare with%s", "");
    cJSON *metrics = cJSON_GetObjectItemCaseSensitive(root, "metrics");
    if (!metrics) {
        ex->metrics[ex->n_metrics++] = CLLM_METRIC_EXACT_MATCH;
    } else {
        if (!cJSON_IsArray(metrics) || cJSON_GetArraySize(metrics) == 0)
            return fail_at(file, line, 0, "\"metrics\" must be a non-empty array of names%s", "");
        cJSON *it;
        cJSON_ArrayForEach(it, metrics) {
            if (!cJSON_IsString(it)) return fail_at(file, line, 0, "\"metrics\" entries must be strings%s", "");
            int mi = cllm_metric_parse(it->valuestring);
            if (mi < 0)
                return fail_at(file, line, 0, "unknown metric '%s' (known: exact_match, accuracy, rouge_l, chrf)",
                               it->valuestring);
            int dup = 0;
            for (int j = 0; j < ex->n_metrics; j++) dup |= ex->metrics[j] == mi;
            if (!dup) ex->metrics[ex->n_metrics++] = mi;
        }
    }
    return CLI_EXIT_OK;
}

static int load_task_file(const char *path, long limit, example_list *out) {
    cllm_error err;
    char *data = NULL;
    size_t len = 0;
    if (cllm_file_read_all(path, MAX_FILE_BYTES, &data, &len, &err) != CLLM_OK) return cli_fail(CMD, &err);
    size_t start = 0, before = out->n;
    if (len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3)) start = 3; /* UTF-8 BOM */
    long line = 0;
    int rc = CLI_EXIT_OK;
    for (size_t p = start; p < len && rc == CLI_EXIT_OK;) {
        size_t e = p;
        while (e < len && data[e] != '\n') e++;
        line++;
        size_t l = e - p;
        if (l && data[p + l - 1] == '\r') l--;
        int blank = 1;
        for (size_t i = 0; i < l && blank; i++) blank = data[p + i] == ' ' || data[p + i] == '\t';
        if (!blank && (limit <= 0 || (long)(out->n - before) < limit)) {
            if (out->n == out->cap) {
                size_t cap = out->cap ? out->cap * 2 : 256;
                example *v = realloc(out->v, cap * sizeof *v);
                if (!v) {
                    rc = cli_fail(CMD, &(cllm_error){.msg = "out of memory"});
                    break;
                }
                out->v = v, out->cap = cap;
            }
            rc = parse_example(path, line, data + p, l, &out->v[out->n]);
            out->n++; /* kept even on failure so its cJSON is freed */
        }
        p = e + 1;
    }
    free(data);
    if (rc == CLI_EXIT_OK && out->n == before) {
        fprintf(stderr, "cllm %s: error: %s: no examples\n", CMD, path);
        rc = CLI_EXIT_DATA;
    }
    return rc;
}

typedef struct {
    char *text;
    size_t len, cap;
} reply;

static int on_token(void *ctx, const cllm_generate_event *ev) {
    reply *r = ctx;
    if (r->len + ev->len + 1 > r->cap) {
        size_t cap = (r->cap + ev->len + 1) * 2;
        char *t = realloc(r->text, cap);
        if (!t) return 1;
        r->text = t, r->cap = cap;
    }
    memcpy(r->text + r->len, ev->text, ev->len);
    r->len += ev->len;
    r->text[r->len] = 0;
    return 0;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = 0;
    return s;
}

typedef struct {
    const char *name;
    size_t n, over_context;
    double sum[CLLM_METRIC_COUNT];
    size_t count[CLLM_METRIC_COUNT];
    cJSON *samples; /* array, owned */
} group;

static group *find_group(group *g, int *n, const char *name) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(g[i].name, name)) return &g[i];
    if (*n == MAX_GROUPS) return NULL;
    memset(&g[*n], 0, sizeof g[*n]);
    g[*n].name = name;
    g[*n].samples = cJSON_CreateArray();
    return &g[(*n)++];
}

/* Generates one answer; *text owned by the caller. */
static cllm_status answer(model_session *s, const example *ex, int max_tokens, char **text, int *over,
                          cllm_error *err) {
    cllm_tokens ids = {0};
    *text = NULL;
    *over = 0;
    cllm_status st = cllm_chat_render(s->tok, s->chat_template, ex->msgs, ex->n_msgs, 1, &ids, NULL, err);
    if (st != CLLM_OK) {
        cllm_error_prefix(err, "%s:%ld", ex->file, ex->line);
        return st;
    }
    if ((int)ids.n + 1 >= s->context) {
        cllm_tokens_free(&ids);
        *over = 1;
        *text = strdup("");
        return *text ? CLLM_OK : cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    }
    cllm_generate_params gp = cllm_generate_default_params();
    gp.max_tokens = max_tokens < s->context - (int)ids.n - 1 ? max_tokens : s->context - (int)ids.n - 1;
    int32_t ends[2];
    int n_end = cllm_chat_end_tokens(s->tok, s->chat_template, ends);
    for (int k = 0; k < n_end; k++) gp.eog[gp.n_eog++] = ends[k];
    cllm_generate_add_default_eog(&gp, s->tok);
    const char *stop_text = cllm_chat_stop_string(s->tok, s->chat_template);
    if (stop_text) gp.stop = &stop_text, gp.n_stop = 1;
    cllm_sampler_params sp = cllm_sampler_default_params();
    sp.temperature = 0;
    cllm_sampler *sampler = cllm_sampler_create(&sp, (int)cllm_tokenizer_n_vocab(s->tok), err);
    if (!sampler) {
        cllm_tokens_free(&ids);
        return err->status ? err->status : CLLM_ERR_NOMEM;
    }
    reply r = {0};
    cllm_generate_result res;
    st = cllm_generate(s->model, 0, s->tok, sampler, ids.ids, (int)ids.n, &gp, on_token, &r, &res, err);
    cllm_sampler_destroy(sampler);
    cllm_tokens_free(&ids);
    if (st != CLLM_OK) {
        free(r.text);
        return st;
    }
    *text = r.text ? r.text : strdup("");
    return *text ? CLLM_OK : cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
}

static int eval_text(model_session *s, const char *path, cJSON *out_json, int json) {
    cllm_error err;
    char *data = NULL;
    size_t len = 0;
    if (cllm_file_read_all(path, MAX_FILE_BYTES, &data, &len, &err) != CLLM_OK) return cli_fail(CMD, &err);
    cllm_tokens toks = {0};
    cllm_status st = cllm_tokenizer_encode_parallel(s->tok, data, len, NULL, 0, &toks, &err);
    free(data);
    if (st != CLLM_OK) {
        cllm_tokens_free(&toks);
        return cli_fail(CMD, &err);
    }
    if (toks.n < 2) {
        cllm_tokens_free(&toks);
        fprintf(stderr, "cllm %s: error: %s: %zu tokens; at least 2 are needed\n", CMD, path, toks.n);
        return CLI_EXIT_DATA;
    }
    int32_t *ids = malloc(toks.n * sizeof *ids);
    size_t scored_bytes = 0;
    for (size_t i = 0; ids && i < toks.n; i++) {
        ids[i] = (int32_t)toks.ids[i];
        const uint8_t *b;
        size_t bl = 0;
        if (i > 0 && cllm_tokenizer_token_bytes(s->tok, toks.ids[i], &b, &bl, &err) == CLLM_OK) scored_bytes += bl;
    }
    size_t n = toks.n;
    cllm_tokens_free(&toks);
    if (!ids) return cli_fail(CMD, &(cllm_error){.msg = "out of memory"});
    int T = cllm_model_get_options(s->model)->max_seq;
    cllm_text_nll r;
    st = cllm_metric_text_nll(s->model, ids, n, T, &r, &err);
    free(ids);
    if (st != CLLM_OK) return cli_fail(CMD, &err);
    double bpb = scored_bytes ? r.nll_sum / log(2.0) / (double)scored_bytes : 0;
    if (json) {
        cJSON *t = cJSON_AddObjectToObject(out_json, "text");
        cJSON_AddStringToObject(t, "file", path);
        cJSON_AddNumberToObject(t, "tokens", (double)n);
        cJSON_AddNumberToObject(t, "scored_tokens", (double)r.n_scored);
        cJSON_AddNumberToObject(t, "scored_bytes", (double)scored_bytes);
        cJSON_AddNumberToObject(t, "window", T);
        cJSON_AddNumberToObject(t, "nll", r.nll);
        cJSON_AddNumberToObject(t, "perplexity", r.ppl);
        cJSON_AddNumberToObject(t, "bits_per_byte", bpb);
    } else {
        printf("text %s: %zu tokens (%lld scored, %zu bytes), window %d\n", path, n, (long long)r.n_scored,
               scored_bytes, T);
        printf("  perplexity %.4f   mean NLL %.5f nats/token   bits per byte %.5f\n", r.ppl, r.nll, bpb);
    }
    return CLI_EXIT_OK;
}

int cllm_cmd_eval(int argc, char **argv) {
    model_session_args sa;
    model_session_args_init(&sa);
    const char *tasks[MAX_TASK_FILES], *text = NULL, *pred_path = NULL, *v;
    int n_tasks = 0, json = 0, max_tokens = 128, show = 0, progress = 1;
    int64_t limit = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        int r = model_session_arg(CMD, &sa, argc, argv, &i);
        if (r < 0) return CLI_EXIT_USAGE;
        if (r > 0) continue;
        if (!strcmp(a, "--task")) {
            if (!(v = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
            if (n_tasks == MAX_TASK_FILES) return cli_usage_error(CMD, "at most %d --task files", MAX_TASK_FILES);
            tasks[n_tasks++] = v;
        } else if (!strcmp(a, "--text")) {
            if (!(text = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--predictions")) {
            if (!(pred_path = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--limit")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_i64(CMD, a, v, 1, INT64_MAX, &limit))
                return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--max-tokens")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, a, v, 1, 1 << 20, &max_tokens))
                return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--show")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, a, v, 0, 1000, &show)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--no-progress")) {
            progress = 0;
        } else {
            return cli_usage_error(CMD, "unknown option '%s'", a);
        }
    }
    if (!sa.model_path) return cli_usage_error(CMD, "a model is required: -m MODEL.gguf");
    if (!n_tasks && !text) return cli_usage_error(CMD, "nothing to evaluate: give --task FILE or --text FILE");

    /* Read and validate everything before loading the model. */
    example_list ex = {0};
    int rc = CLI_EXIT_OK;
    for (int t = 0; t < n_tasks && rc == CLI_EXIT_OK; t++) rc = load_task_file(tasks[t], (long)limit, &ex);
    cllm_error err;
    if (rc == CLI_EXIT_OK && text && cllm_file_check_regular(text, NULL, &err) != CLLM_OK) rc = cli_fail(CMD, &err);
    if (rc == CLI_EXIT_OK && pred_path) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", pred_path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        if (cllm_dir_check_writable(slash ? (dir[0] ? dir : "/") : ".", &err) != CLLM_OK) rc = cli_fail(CMD, &err);
    }
    model_session s = {0};
    if (rc == CLI_EXIT_OK) rc = model_session_open(CMD, &sa, 1, &s);

    group groups[MAX_GROUPS];
    int n_groups = 0;
    cJSON *out = cJSON_CreateObject();
    cllm_atomic_file pf;
    int pred_open = 0;
    if (rc == CLI_EXIT_OK && pred_path) {
        if (cllm_atomic_begin(&pf, pred_path, &err) != CLLM_OK) rc = cli_fail(CMD, &err);
        else pred_open = 1;
    }
    double t0 = cllm_now_seconds();
    cllm_progress bar;
    if (rc == CLI_EXIT_OK && ex.n) {
        cllm_progress_begin(&bar, "eval", (double)ex.n, "ex");
        bar.enabled = progress;
    }
    for (size_t i = 0; rc == CLI_EXIT_OK && i < ex.n; i++) {
        const example *e = &ex.v[i];
        group *g = find_group(groups, &n_groups, e->task);
        if (!g) {
            fprintf(stderr, "cllm %s: error: more than %d distinct tasks\n", CMD, MAX_GROUPS);
            rc = CLI_EXIT_DATA;
            break;
        }
        char *raw;
        int over;
        if (answer(&s, e, max_tokens, &raw, &over, &err) != CLLM_OK) {
            rc = cli_fail(CMD, &err);
            break;
        }
        char *ans = trim(raw);
        g->n++;
        g->over_context += (size_t)over;
        cJSON *scores = cJSON_CreateObject();
        for (int k = 0; k < e->n_metrics; k++) {
            double sc = over ? 0 : cllm_metric_score((cllm_metric)e->metrics[k], ans, e->reference);
            if (sc < 0) sc = 0; /* out of memory inside a metric: counted as a miss */
            g->sum[e->metrics[k]] += sc;
            g->count[e->metrics[k]]++;
            cJSON_AddNumberToObject(scores, cllm_metric_name((cllm_metric)e->metrics[k]), sc);
        }
        cJSON *sample = NULL;
        if (pred_open || cJSON_GetArraySize(g->samples) < (show > 3 ? show : 3)) {
            sample = cJSON_CreateObject();
            cJSON_AddStringToObject(sample, "task", e->task);
            cJSON_AddStringToObject(sample, "prompt", e->msgs[e->n_msgs - 1].content);
            cJSON_AddStringToObject(sample, "reference", e->reference);
            cJSON_AddStringToObject(sample, "output", ans);
            cJSON_AddItemToObject(sample, "scores", scores);
            scores = NULL;
            if (pred_open) {
                char *line = cJSON_PrintUnformatted(sample);
                if (line) cllm_atomic_printf(&pf, "%s\n", line);
                free(line);
            }
            if (cJSON_GetArraySize(g->samples) < (show > 3 ? show : 3)) cJSON_AddItemToArray(g->samples, sample);
            else cJSON_Delete(sample);
        }
        cJSON_Delete(scores);
        free(raw);
        if (progress) cllm_progress_update(&bar, (double)(i + 1), g->name);
    }
    if (rc == CLI_EXIT_OK && ex.n && progress) cllm_progress_end(&bar, NULL);
    if (rc == CLI_EXIT_OK && pred_open) {
        pred_open = 0;
        if (cllm_atomic_commit(&pf, &err) != CLLM_OK) rc = cli_fail(CMD, &err);
    }
    double seconds = cllm_now_seconds() - t0;

    if (rc == CLI_EXIT_OK && n_groups) {
        cJSON *arr = cJSON_AddArrayToObject(out, "tasks");
        if (!json) {
            printf("%-18s %6s", "task", "n");
            for (int m = 0; m < CLLM_METRIC_COUNT; m++) printf(" %11s", cllm_metric_name((cllm_metric)m));
            printf("\n");
        }
        for (int gi = 0; gi < n_groups; gi++) {
            group *g = &groups[gi];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "task", g->name);
            cJSON_AddNumberToObject(o, "n", (double)g->n);
            cJSON_AddNumberToObject(o, "over_context", (double)g->over_context);
            cJSON *mo = cJSON_AddObjectToObject(o, "metrics");
            if (!json) printf("%-18s %6zu", g->name, g->n);
            for (int m = 0; m < CLLM_METRIC_COUNT; m++) {
                if (!g->count[m]) {
                    if (!json) printf(" %11s", "-");
                    continue;
                }
                double mean = g->sum[m] / (double)g->count[m];
                cJSON_AddNumberToObject(mo, cllm_metric_name((cllm_metric)m), mean);
                if (!json) printf(m == CLLM_METRIC_CHRF ? " %11.2f" : " %11.4f", mean);
            }
            if (!json) printf(g->over_context ? "   (%zu over the context)\n" : "\n", g->over_context);
            cJSON_AddItemToObject(o, "samples", g->samples);
            g->samples = NULL;
            cJSON_AddItemToArray(arr, o);
        }
        if (!json && show) {
            cJSON *o;
            cJSON_ArrayForEach(o, arr) {
                cJSON *sm;
                int k = 0;
                cJSON_ArrayForEach(sm, cJSON_GetObjectItem(o, "samples")) {
                    if (k++ >= show) break;
                    printf("\n[%s] %s\n  reference: %s\n  output:    %s\n", cJSON_GetStringValue(cJSON_GetObjectItem(o, "task")),
                           cJSON_GetStringValue(cJSON_GetObjectItem(sm, "prompt")),
                           cJSON_GetStringValue(cJSON_GetObjectItem(sm, "reference")),
                           cJSON_GetStringValue(cJSON_GetObjectItem(sm, "output")));
                }
            }
        }
        if (!json) printf("%zu examples in %.1f s\n", ex.n, seconds);
    }
    if (rc == CLI_EXIT_OK && text) rc = eval_text(&s, text, out, json);
    if (rc == CLI_EXIT_OK && json) {
        cJSON_AddStringToObject(out, "model", sa.model_path);
        cJSON_AddNumberToObject(out, "seconds", seconds);
        char *js = cJSON_Print(out);
        if (js) printf("%s\n", js);
        free(js);
    }
    if (pred_open) cllm_atomic_abort(&pf);
    for (int gi = 0; gi < n_groups; gi++) cJSON_Delete(groups[gi].samples);
    cJSON_Delete(out);
    for (size_t i = 0; i < ex.n; i++) cJSON_Delete(ex.v[i].root);
    free(ex.v);
    if (s.model) model_session_close(&s);
    return rc;
}
