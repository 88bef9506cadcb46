/*
 * eval.h: evaluation outside the metrics themselves (metrics.h): task files
 * run through a model and scored per task (`cllm eval`), a text file's
 * likelihood, and the stage x task report built from several `cllm eval
 * --json` results (`cllm report`).
 *
 * An example with "tools" (the world's tool tasks) has the OpenAI tool list
 * and, in "messages", the expected calls and results before the final
 * answer: its prompt is the messages before the first assistant message,
 * and it is answered by the agent loop (agent.h) with the caller's toolbox,
 * or without tools (the model alone) when the caller says so.
 *
 * Task file: JSONL, one example per line, as `cllm data world` writes them:
 *   {"task": "faq", "metrics": ["exact_match", "chrf"],
 *    "messages": [{"role": "user", "content": ...}, {"role": "assistant", ...}],
 *    "reference": "..."}
 * The prompt is every message before the final assistant message, rendered
 * with the model's chat template and a generation prompt; the answer is the
 * greedy continuation (temperature 0) up to max_tokens, ended by the
 * template's end-of-turn token, trimmed of surrounding whitespace and scored
 * against "reference" (default: the final assistant message). "task"
 * defaults to "default", "metrics" to ["exact_match"]. A malformed line is
 * reported as FILE:LINE:COLUMN, an unknown metric or a missing field as
 * FILE:LINE; a UTF-8 BOM, CRLF line ends and blank lines are accepted. A
 * prompt that leaves no room in the context window scores 0 and counts as
 * "over_context".
 *
 * Report: a task's headline metric is, in order, a metric override for the
 * task, else the first metric the task declares in the manifest (the
 * world's manifest.json, {"tasks": {"TASK": ["metric", ...]}}), else the
 * first of exact_match, accuracy, rouge_l, chrf the results carry. Values
 * keep their units (accuracy and exact match 0..1, ROUGE-L 0..1, chrF
 * 0..100); the chart puts all on 0..100. A drop is a stage whose headline
 * value is below the previous stage's and prints differently.
 *
 * Errors are returned (cllm_error), never printed. Not here: argument
 * parsing, tables on stdout, progress bars (tools/cmd_eval.c,
 * tools/cmd_report.c); sampling-based evaluation, LLM-as-judge.
 */
#ifndef CLLM_EVAL_H
#define CLLM_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "cllm/infer/agent.h"
#include "cllm/infer/chat_template.h"
#include "cllm/infer/grammar.h"
#include "cllm/eval/metrics.h"
#include "cllm/model/model.h"
#include "cllm/core/status.h"
#include "cllm/tokenizer/tokenizer.h"

/* ---- task files ------------------------------------------------------------- */

#define CLLM_EVAL_MAX_MESSAGES 64

typedef struct {
    void *json;                         /* owned parse tree (cJSON) the strings point into */
    const char *task, *reference;       /* borrowed from json */
    cllm_chat_message msgs[CLLM_EVAL_MAX_MESSAGES]; /* [n_msgs] the prompt, borrowed from json */
    int n_msgs;
    int metrics[CLLM_METRIC_COUNT];     /* [n_metrics] cllm_metric values, no repeats */
    int n_metrics;
    const struct cJSON *tools;          /* borrowed from json: the example's "tools", or NULL */
    const char *file;                   /* borrowed: the path given to cllm_eval_set_load */
    long line;                          /* 1-based line in file */
} cllm_eval_example;

typedef struct {
    cllm_eval_example *v; /* [n] owned */
    size_t n, cap;
} cllm_eval_set;

/* Appends the examples of one task file (at most `limit` of them when
 * limit > 0) to set. Fails with CLLM_ERR_FORMAT naming FILE:LINE[:COLUMN]
 * on a bad line, or FILE when it holds no example; set keeps the examples
 * read so far (free it either way). path must outlive set. */
cllm_status cllm_eval_set_load(cllm_eval_set *set, const char *path, int64_t limit, cllm_error *err);
void cllm_eval_set_free(cllm_eval_set *set); /* accepts an empty set */

/* Greedy answer to ex (see above), trimmed; *text is owned by the caller.
 * *over_context is 1 (and *text "") when the prompt leaves no room for an
 * answer in `context` tokens. Uses KV slot 0 of m. With a grammar (NULL:
 * none) the answer is constrained to it; *vocab caches the vocabulary trie
 * between calls (start with NULL; the caller destroys it). */
cllm_status cllm_eval_answer(cllm_model *m, const cllm_tokenizer *tok, cllm_chat_template tmpl, int context,
                             const cllm_eval_example *ex, int max_tokens, const cllm_grammar *grammar,
                             cllm_grammar_vocab **vocab, char **text, int *over_context, cllm_error *err);

/* The agent's answer to ex (which has "tools") with the agent's tools:
 * the last assistant message's text, trimmed ("" when the run ended in a
 * call); *stats counts the calls. Fails naming the example when it declares
 * a tool the agent's toolbox lacks. Otherwise as cllm_eval_answer. */
cllm_status cllm_eval_answer_agent(cllm_model *m, const cllm_agent *agent, int context, const cllm_eval_example *ex,
                                   int max_tokens, char **text, int *over_context, cllm_agent_stats *stats,
                                   cllm_error *err);

/* Per-task totals of the declared metrics. */
#define CLLM_EVAL_MAX_TASKS 64

typedef struct {
    const char *name;                  /* borrowed from the examples */
    size_t n, over_context;            /* examples, of which over the context */
    double sum[CLLM_METRIC_COUNT];     /* [metric] total score */
    size_t count[CLLM_METRIC_COUNT];   /* [metric] examples that declared it */
    size_t agent_runs;                 /* examples answered by the agent loop */
    size_t calls, valid_calls;         /* tool calls written, and of them those that parsed as a call of a
                                          declared tool with arguments it takes */
} cllm_eval_task_totals;

typedef struct {
    cllm_eval_task_totals tasks[CLLM_EVAL_MAX_TASKS]; /* [n_tasks] in order of first appearance */
    int n_tasks;
} cllm_eval_tally;

/* Scores answer against ex's reference under each declared metric (0 when
 * over_context), writes the scores to scores[metric] (NaN for metrics not
 * declared) and adds them to ex's task. *task_index is the task's index in
 * tally. Fails with CLLM_ERR_LIMIT beyond CLLM_EVAL_MAX_TASKS tasks. */
cllm_status cllm_eval_tally_add(cllm_eval_tally *tally, const cllm_eval_example *ex, const char *answer,
                                int over_context, double scores[CLLM_METRIC_COUNT], int *task_index,
                                cllm_error *err);

/* Adds an agent run's call counts to task task_index (from cllm_eval_tally_add). */
void cllm_eval_tally_agent(cllm_eval_tally *tally, int task_index, const cllm_agent_stats *stats);

/* Mean of metric m over the task's examples; NaN when none declared it. */
double cllm_eval_task_mean(const cllm_eval_task_totals *t, cllm_metric m);

/* ---- text likelihood --------------------------------------------------------- */

typedef struct {
    size_t tokens;        /* tokens in the text */
    size_t scored_bytes;  /* bytes of tokens[1..] (the predicted ones) */
    int window;           /* T of cllm_metric_text_nll: the model's max_seq */
    cllm_text_nll nll;
    double bits_per_byte; /* nll_sum / ln 2 / scored_bytes */
} cllm_eval_text_result;

/* Encodes text[len] with tok and scores it (cllm_metric_text_nll). Fails
 * with CLLM_ERR_FORMAT when it has fewer than 2 tokens. */
cllm_status cllm_eval_text(cllm_model *m, const cllm_tokenizer *tok, const char *text, size_t len,
                           cllm_eval_text_result *out, cllm_error *err);

/* ---- report: stages x tasks ---------------------------------------------------- */

#define CLLM_REPORT_MAX_STAGES 32
#define CLLM_REPORT_MAX_TASKS 64
#define CLLM_REPORT_MAX_OVERRIDES 64

typedef struct {
    const char *task;  /* borrowed */
    const char *value; /* a metric name (metric overrides) or a number (targets) */
} cllm_report_override;

typedef struct {
    int n_stages;
    const char *const *stage_names; /* [n_stages] in training order */
    const char *const *stage_files; /* [n_stages] `cllm eval --json` outputs */
    const char *manifest;           /* NULL: no manifest */
    const cllm_report_override *metrics; /* [n_metrics] the last one for a task wins */
    int n_metrics;
    const cllm_report_override *targets; /* [n_targets] */
    int n_targets;
    int drops_first;                /* first stage compared with its predecessor (>= 1) */
} cllm_report_params;

typedef struct {
    char name[128];
    int metric;                             /* headline cllm_metric */
    double target;                          /* NaN: none */
    double score[CLLM_REPORT_MAX_STAGES];   /* [n_stages] headline value, NaN when missing */
    double n[CLLM_REPORT_MAX_STAGES];       /* [n_stages] examples scored, NaN when missing */
} cllm_report_task;

typedef struct {
    int stage, task; /* the stage the value fell at, index into tasks */
    double before, after;
} cllm_report_drop;

typedef struct {
    int n_stages;
    char stage_names[CLLM_REPORT_MAX_STAGES][64];
    cllm_report_task *tasks;  /* [n_tasks] owned, in order of first appearance */
    int n_tasks;
    cllm_report_drop *drops;  /* [n_drops] owned, by task then stage */
    int n_drops;
    int targets, targets_met; /* tasks with a target; of those met at the last stage */
} cllm_report;

/* Reads every stage file (and the manifest), picks each task's headline
 * metric and fills r. CLLM_ERR_ARG for an override naming a task no stage
 * has (a usage error), CLLM_ERR_FORMAT for bad files, both naming them. */
cllm_status cllm_report_build(cllm_report *r, const cllm_report_params *p, cllm_error *err);
void cllm_report_free(cllm_report *r); /* accepts a zeroed report */

/* "95.0%" (accuracy, exact match), "83.12" (chrF), "0.642" (ROUGE-L) or "-" (NaN). */
void cllm_report_format(char *buf, size_t cap, int metric, double v);

/* The JSON summary (stages, tasks with scores and targets, drops); owned
 * by the caller (free), NULL when out of memory. */
char *cllm_report_json(const cllm_report *r);

/* The scores as a grouped bar chart on 0..100 (SVG). */
cllm_status cllm_report_svg_write(const cllm_report *r, const char *path, const char *title, cllm_error *err);

#endif
