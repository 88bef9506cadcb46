/*
 * tasks.c: task files run through a model and scored per task (eval.h):
 * reading and validating JSONL examples, greedy answers through the chat
 * template, per-task metric totals, and a text file's likelihood.
 *
 * Does not print or exit: errors come back in cllm_error, naming
 * FILE:LINE[:COLUMN]; `cllm eval` (tools/cmd_eval.c) prints tables, samples
 * and predictions.
 */
#include "cllm/eval/eval.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cllm/core/fileio.h"
#include "cllm/infer/generate.h"
#include "cllm/infer/sampler.h"
#include "cllm/infer/tools.h"

#define MAX_FILE_BYTES (1ull << 31)

/* ---- task files ------------------------------------------------------------- */

/* "FILE:LINE[:COL]: " + fmt with one string detail, as CLLM_ERR_FORMAT. */
static cllm_status fail_at(cllm_error *err, const char *file, long line, long col, const char *fmt, const char *detail) {
    char where[512], msg[512];
    if (col > 0) snprintf(where, sizeof where, "%s:%ld:%ld", file, line, col);
    else snprintf(where, sizeof where, "%s:%ld", file, line);
    snprintf(msg, sizeof msg, fmt, detail);
    return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: %s", where, msg);
}

static cllm_status parse_example(const char *file, long line, const char *text, size_t len, cllm_eval_example *ex,
                                 cllm_error *err) {
    memset(ex, 0, sizeof *ex);
    ex->file = file;
    ex->line = line;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long col = (at && at >= text && at <= text + len) ? (long)(at - text) + 1 : 1;
        return fail_at(err, file, line, col, "malformed JSON%s", "");
    }
    ex->json = root;
    if (!cJSON_IsObject(root)) return fail_at(err, file, line, 1, "expected a JSON object%s", "");
    cJSON *task = cJSON_GetObjectItemCaseSensitive(root, "task");
    if (task && !cJSON_IsString(task)) return fail_at(err, file, line, 0, "\"task\" must be a string%s", "");
    ex->task = task ? task->valuestring : "default";
    cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0)
        return fail_at(err, file, line, 0, "\"messages\" must be a non-empty array%s", "");
    int n = cJSON_GetArraySize(msgs);
    if (n > CLLM_EVAL_MAX_MESSAGES) return fail_at(err, file, line, 0, "more than 64 messages%s", "");
    const char *last_assistant = NULL;
    cJSON *tools = cJSON_GetObjectItemCaseSensitive(root, "tools");
    if (cJSON_IsNull(tools)) tools = NULL;
    if (tools && !cJSON_IsArray(tools)) return fail_at(err, file, line, 0, "\"tools\" must be an array of tools%s", "");
    ex->tools = tools;
    int k = 0, prompt_done = 0;
    for (int i = 0; i < n; i++) {
        cJSON *m = cJSON_GetArrayItem(msgs, i);
        cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role"), *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        char what[64];
        snprintf(what, sizeof what, "messages[%d]", i);
        if (!cJSON_IsString(role) || !(cJSON_IsString(content) || (cJSON_IsArray(calls) && (!content || cJSON_IsNull(content)))))
            return fail_at(err, file, line, 0, "%s needs string \"role\" and \"content\"", what);
        int r = cllm_chat_role_parse(role->valuestring);
        if (r < 0) return fail_at(err, file, line, 0, "unknown role '%s' (system, user, assistant, tool)", role->valuestring);
        const char *text = cJSON_IsString(content) ? content->valuestring : "";
        /* The final assistant message is the answer, not part of the prompt;
         * with tools, the calls and results before it are the expected way
         * there (the agent makes its own), so the prompt ends at the first
         * assistant message. */
        if (i == n - 1 && r == CLLM_ROLE_ASSISTANT) {
            last_assistant = text;
            break;
        }
        if (tools && r == CLLM_ROLE_ASSISTANT) prompt_done = 1;
        if (prompt_done) continue;
        ex->msgs[k].role = (cllm_chat_role)r;
        ex->msgs[k].content = text;
        ex->msgs[k].len = strlen(text);
        ex->msgs[k].extra = m;
        k++;
    }
    if (k == 0) return fail_at(err, file, line, 0, "no prompt: the only message is the assistant's answer%s", "");
    ex->n_msgs = k;
    cJSON *ref = cJSON_GetObjectItemCaseSensitive(root, "reference");
    if (ref && !cJSON_IsString(ref)) return fail_at(err, file, line, 0, "\"reference\" must be a string%s", "");
    ex->reference = ref ? ref->valuestring : last_assistant;
    if (!ex->reference)
        return fail_at(err, file, line, 0, "no \"reference\" and no final assistant message to compare with%s", "");
    cJSON *metrics = cJSON_GetObjectItemCaseSensitive(root, "metrics");
    if (!metrics) {
        ex->metrics[ex->n_metrics++] = CLLM_METRIC_EXACT_MATCH;
    } else {
        if (!cJSON_IsArray(metrics) || cJSON_GetArraySize(metrics) == 0)
            return fail_at(err, file, line, 0, "\"metrics\" must be a non-empty array of names%s", "");
        cJSON *it;
        cJSON_ArrayForEach(it, metrics) {
            if (!cJSON_IsString(it)) return fail_at(err, file, line, 0, "\"metrics\" entries must be strings%s", "");
            int mi = cllm_metric_parse(it->valuestring);
            if (mi < 0)
                return fail_at(err, file, line, 0, "unknown metric '%s' (known: exact_match, accuracy, rouge_l, chrf)",
                               it->valuestring);
            int dup = 0;
            for (int j = 0; j < ex->n_metrics; j++) dup |= ex->metrics[j] == mi;
            if (!dup) ex->metrics[ex->n_metrics++] = mi;
        }
    }
    return CLLM_OK;
}

cllm_status cllm_eval_set_load(cllm_eval_set *out, const char *path, int64_t limit, cllm_error *err) {
    char *data = NULL;
    size_t len = 0;
    cllm_status rc = cllm_file_read_all(path, MAX_FILE_BYTES, &data, &len, err);
    if (rc != CLLM_OK) return rc;
    size_t start = 0, before = out->n;
    if (len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3)) start = 3; /* UTF-8 BOM */
    long line = 0;
    for (size_t p = start; p < len && rc == CLLM_OK;) {
        size_t e = p;
        while (e < len && data[e] != '\n') e++;
        line++;
        size_t l = e - p;
        if (l && data[p + l - 1] == '\r') l--;
        int blank = 1;
        for (size_t i = 0; i < l && blank; i++) blank = data[p + i] == ' ' || data[p + i] == '\t';
        if (!blank && (limit <= 0 || (int64_t)(out->n - before) < limit)) {
            if (out->n == out->cap) {
                size_t cap = out->cap ? out->cap * 2 : 256;
                cllm_eval_example *v = realloc(out->v, cap * sizeof *v);
                if (!v) {
                    rc = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
                    break;
                }
                out->v = v, out->cap = cap;
            }
            rc = parse_example(path, line, data + p, l, &out->v[out->n], err);
            out->n++; /* kept even on failure so its cJSON is freed */
        }
        p = e + 1;
    }
    free(data);
    if (rc == CLLM_OK && out->n == before) {
        rc = cllm_error_set(err, CLLM_ERR_FORMAT, "%s: no examples", path);
    }
    return rc;
}

void cllm_eval_set_free(cllm_eval_set *set) {
    if (!set) return;
    for (size_t i = 0; i < set->n; i++) cJSON_Delete(set->v[i].json);
    free(set->v);
    memset(set, 0, sizeof *set);
}

/* ---- answers ------------------------------------------------------------------ */

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

cllm_status cllm_eval_answer(cllm_model *m, const cllm_tokenizer *tok, cllm_chat_template tmpl, int context,
                             const cllm_eval_example *ex, int max_tokens, const cllm_grammar *grammar,
                             cllm_grammar_vocab **vocab, char **text, int *over, cllm_error *err) {
    cllm_tokens ids = {0};
    *text = NULL;
    *over = 0;
    cllm_status st = cllm_chat_render(tok, tmpl, ex->msgs, ex->n_msgs, 1, &ids, NULL, err);
    if (st != CLLM_OK) {
        cllm_error_prefix(err, "%s:%ld", ex->file, ex->line);
        return st;
    }
    if ((int)ids.n + 1 >= context) {
        cllm_tokens_free(&ids);
        *over = 1;
        *text = strdup("");
        return *text ? CLLM_OK : cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    }
    cllm_generate_params gp = cllm_generate_default_params();
    gp.max_tokens = max_tokens < context - (int)ids.n - 1 ? max_tokens : context - (int)ids.n - 1;
    cllm_generate_chat_ends(&gp, tok, tmpl);
    cllm_sampler_params sp = cllm_sampler_default_params();
    sp.temperature = 0;
    cllm_sampler *sampler = cllm_sampler_create(&sp, (int)cllm_tokenizer_n_vocab(tok), err);
    if (sampler && cllm_sampler_exclude_unused(sampler, tok, err) != CLLM_OK) {
        cllm_sampler_destroy(sampler);
        sampler = NULL;
    }
    if (sampler && grammar && !*vocab && !(*vocab = cllm_grammar_vocab_from_tokenizer(tok, gp.eog, gp.n_eog, err))) {
        cllm_sampler_destroy(sampler);
        sampler = NULL;
    }
    if (sampler && grammar && cllm_sampler_set_grammar(sampler, grammar, *vocab, err) != CLLM_OK) {
        cllm_sampler_destroy(sampler);
        sampler = NULL;
    }
    if (!sampler) {
        cllm_tokens_free(&ids);
        return err->status ? err->status : CLLM_ERR_NOMEM;
    }
    reply r = {0};
    cllm_generate_result res;
    st = cllm_generate(m, 0, tok, sampler, ids.ids, (int)ids.n, &gp, on_token, &r, &res, err);
    cllm_sampler_destroy(sampler);
    cllm_tokens_free(&ids);
    if (st != CLLM_OK) {
        free(r.text);
        return st;
    }
    *text = r.text ? r.text : strdup("");
    if (!*text) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    const char *t = trim(*text);
    memmove(*text, t, strlen(t) + 1);
    return CLLM_OK;
}

cllm_status cllm_eval_answer_agent(cllm_model *m, const cllm_agent *agent, int context, const cllm_eval_example *ex,
                                   int max_tokens, char **text, int *over, cllm_agent_stats *stats, cllm_error *err) {
    *text = NULL;
    *over = 0;
    const cJSON *have = cllm_agent_tools(agent), *t;
    cJSON_ArrayForEach(t, ex->tools) { /* the toolbox must run what the example declares */
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(t, "function"), "name");
        if (!cJSON_IsString(name) || !cllm_tools_find(have, name->valuestring))
            return cllm_error_set(err, CLLM_ERR_ARG, "%s:%ld: the example's tool '%s' is not in the toolbox", ex->file,
                                  ex->line, cJSON_IsString(name) ? name->valuestring : "(no name)");
    }
    cJSON *msgs = cJSON_CreateArray();
    for (int i = 0; msgs && i < ex->n_msgs; i++) { /* the prompt's messages as they were in the file */
        cJSON *d = cJSON_Duplicate(ex->msgs[i].extra, 1);
        if (!d || !cJSON_AddItemToArray(msgs, d)) {
            cJSON_Delete(d);
            cJSON_Delete(msgs);
            msgs = NULL;
        }
    }
    if (!msgs) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    cllm_agent_params p = cllm_agent_default_params();
    p.max_tokens = max_tokens;
    cllm_status st = cllm_agent_run(agent, m, context, &p, msgs, NULL, NULL, stats, err);
    if (st != CLLM_OK) {
        cllm_error_prefix(err, "%s:%ld", ex->file, ex->line);
    } else {
        const cJSON *last = cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(last, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(last, "content");
        int answered = cJSON_GetArraySize(msgs) > ex->n_msgs && cJSON_IsString(role) &&
                       !strcmp(role->valuestring, "assistant") && cJSON_IsString(content);
        *over = stats->over_context && cJSON_GetArraySize(msgs) == ex->n_msgs;
        *text = strdup(answered ? trim(content->valuestring) : "");
        if (!*text) st = cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    }
    cJSON_Delete(msgs);
    return st;
}

void cllm_eval_tally_agent(cllm_eval_tally *tally, int task_index, const cllm_agent_stats *stats) {
    cllm_eval_task_totals *t = &tally->tasks[task_index];
    t->agent_runs++;
    t->calls += (size_t)(stats->calls + stats->refused_calls + stats->invalid_calls);
    t->valid_calls += (size_t)stats->calls;
}

/* ---- per-task totals ------------------------------------------------------------ */

cllm_status cllm_eval_tally_add(cllm_eval_tally *tally, const cllm_eval_example *ex, const char *answer,
                                int over_context, double scores[CLLM_METRIC_COUNT], int *task_index,
                                cllm_error *err) {
    int g = 0;
    while (g < tally->n_tasks && strcmp(tally->tasks[g].name, ex->task)) g++;
    if (g == tally->n_tasks) {
        if (g == CLLM_EVAL_MAX_TASKS) return cllm_error_set(err, CLLM_ERR_LIMIT, "more than %d distinct tasks", CLLM_EVAL_MAX_TASKS);
        memset(&tally->tasks[g], 0, sizeof tally->tasks[g]);
        tally->tasks[g].name = ex->task;
        tally->n_tasks++;
    }
    cllm_eval_task_totals *t = &tally->tasks[g];
    t->n++;
    t->over_context += (size_t)(over_context != 0);
    for (int m = 0; m < CLLM_METRIC_COUNT; m++) scores[m] = NAN;
    for (int k = 0; k < ex->n_metrics; k++) {
        const cllm_metric m = (cllm_metric)ex->metrics[k];
        double sc = over_context ? 0 : cllm_metric_score(m, answer, ex->reference);
        if (sc < 0) sc = 0; /* out of memory inside a metric: counted as a miss */
        t->sum[m] += sc;
        t->count[m]++;
        scores[m] = sc;
    }
    *task_index = g;
    return CLLM_OK;
}

double cllm_eval_task_mean(const cllm_eval_task_totals *t, cllm_metric m) {
    return t->count[m] ? t->sum[m] / (double)t->count[m] : NAN;
}

/* ---- text likelihood --------------------------------------------------------------- */

cllm_status cllm_eval_text(cllm_model *m, const cllm_tokenizer *tok, const char *text, size_t len,
                           cllm_eval_text_result *out, cllm_error *err) {
    memset(out, 0, sizeof *out);
    cllm_tokens toks = {0};
    cllm_status st = cllm_tokenizer_encode_parallel(tok, text, len, NULL, 0, &toks, err);
    if (st != CLLM_OK) {
        cllm_tokens_free(&toks);
        return st;
    }
    if (toks.n < 2) {
        size_t n = toks.n;
        cllm_tokens_free(&toks);
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%zu tokens; at least 2 are needed", n);
    }
    int32_t *ids = malloc(toks.n * sizeof *ids);
    for (size_t i = 0; ids && i < toks.n; i++) {
        ids[i] = (int32_t)toks.ids[i];
        const uint8_t *b;
        size_t bl = 0;
        cllm_error ignored;
        if (i > 0 && cllm_tokenizer_token_bytes(tok, toks.ids[i], &b, &bl, &ignored) == CLLM_OK) out->scored_bytes += bl;
    }
    out->tokens = toks.n;
    cllm_tokens_free(&toks);
    if (!ids) return cllm_error_set(err, CLLM_ERR_NOMEM, "out of memory");
    out->window = cllm_model_get_options(m)->max_seq;
    st = cllm_metric_text_nll(m, ids, out->tokens, out->window, &out->nll, err);
    free(ids);
    if (st != CLLM_OK) return st;
    out->bits_per_byte = out->scored_bytes ? out->nll.nll_sum / log(2.0) / (double)out->scored_bytes : 0;
    return CLLM_OK;
}
