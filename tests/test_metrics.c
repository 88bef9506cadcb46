/*
 * test_metrics.c: exact match, accuracy, ROUGE-L and chrF against values
 * worked out by hand (in the comments), and the text likelihood against a
 * model whose answer is known in closed form; the eval library (eval.h):
 * task files load or fail naming FILE:LINE[:COLUMN] without printing,
 * per-task tallies, and the stage report's headline metrics, drops and
 * targets.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cllm/eval/eval.h"
#include "cllm/eval/metrics.h"
#include "cllm/model/model.h"
#include "test.h"

/* Exact fractions below; 1e-9 absorbs double rounding only. */
#define TOL 1e-9

static void test_metrics_names(void) {
    for (int i = 0; i < CLLM_METRIC_COUNT; i++)
        CHECK(cllm_metric_parse(cllm_metric_name((cllm_metric)i)) == i, "round trip %d", i);
    CHECK(cllm_metric_parse("bleu") == -1, "unknown metric");
    CHECK(cllm_metric_max(CLLM_METRIC_CHRF) == 100 && cllm_metric_max(CLLM_METRIC_ROUGE_L) == 1, "scales");
}

static void test_metrics_exact_match(void) {
    CHECK(cllm_metric_exact_match("Positive.", "positive") == 1, "case and final period");
    CHECK(cllm_metric_exact_match("  We are \n open. ", "We are open") == 1, "whitespace collapsed");
    CHECK(cllm_metric_exact_match("positive", "negative") == 0, "different");
    CHECK(cllm_metric_exact_match("We are open", "We are open today") == 0, "prefix is not a match");
    CHECK(cllm_metric_exact_match("", "") == 1 && cllm_metric_exact_match("", "x") == 0, "empty");
    CHECK(cllm_metric_exact_match("톰은 갔어요.", "톰은 갔어요") == 1, "Korean, final period");
}

static void test_metrics_accuracy(void) {
    CHECK(cllm_metric_accuracy("Positive, I think", "positive") == 1, "first word, punctuation stripped");
    CHECK(cllm_metric_accuracy("7 apples", "7") == 1, "number then words");
    CHECK(cllm_metric_accuracy("\"neutral\"", "neutral") == 1, "quotes stripped");
    CHECK(cllm_metric_accuracy("17", "7") == 0, "17 is not 7");
    CHECK(cllm_metric_accuracy("I think positive", "positive") == 0, "only the first word counts");
    CHECK(cllm_metric_accuracy("", "7") == 0, "empty answer");
}

static void test_metrics_rouge_l(void) {
    /* hyp: the cat sat on the mat (6 words), ref: the cat is on the mat (6);
     * LCS = the cat on the mat = 5, P = R = 5/6, F1 = 5/6. */
    CHECK_NEAR(cllm_metric_rouge_l("the cat sat on the mat", "the cat is on the mat"), 5.0 / 6.0, TOL, 0, "cat/mat");
    /* hyp: a b c d, ref: b d e; LCS = b d = 2; P = 2/4, R = 2/3;
     * F1 = 2PR/(P+R) = (2/3)/(7/6) = 4/7. */
    CHECK_NEAR(cllm_metric_rouge_l("a b c d", "b d e"), 4.0 / 7.0, TOL, 0, "4/7");
    /* Order matters: LCS of (a b) and (b a) is 1, P = R = 1/2. */
    CHECK_NEAR(cllm_metric_rouge_l("a b", "b a"), 0.5, TOL, 0, "order");
    CHECK_NEAR(cllm_metric_rouge_l("The Cat!", "the cat"), 1.0, TOL, 0, "case and punctuation");
    /* Hangul words: 3 and 3 words, LCS 2 (톰은, 갔어요) -> 2/3. */
    CHECK_NEAR(cllm_metric_rouge_l("톰은 공원으로 갔어요.", "톰은 학교로 갔어요."), 2.0 / 3.0, TOL, 0, "Korean");
    CHECK(cllm_metric_rouge_l("", "") == 1 && cllm_metric_rouge_l("a", "") == 0 && cllm_metric_rouge_l("x", "y") == 0,
          "empty and disjoint");
}

static void test_metrics_chrf(void) {
    /* hyp "ab", ref "abc". Orders with reference n-grams: 1..3.
     *   n=1: hyp {a,b}, ref {a,b,c}: 2 matches, P = 1,   R = 2/3
     *   n=2: hyp {ab},  ref {ab,bc}: 1 match,   P = 1,   R = 1/2
     *   n=3: hyp none,  ref {abc}:   0,         P = 0,   R = 0
     * chrP = 2/3, chrR = (2/3 + 1/2)/3 = 7/18, beta = 2:
     * chrF = 5 P R / (4 P + R) = (70/54) / (55/18) = 14/33 = 42.4242...% */
    CHECK_NEAR(cllm_metric_chrf("ab", "abc"), 100.0 * 14.0 / 33.0, 1e-7, 0, "ab vs abc");
    /* hyp "aaa", ref "a": only n=1; matches are clipped to min(3, 1) = 1:
     * P = 1/3, R = 1, chrF = 5 (1/3) / (4/3 + 1) = 5/7. */
    CHECK_NEAR(cllm_metric_chrf("aaa", "a"), 100.0 * 5.0 / 7.0, 1e-7, 0, "clipped counts");
    CHECK_NEAR(cllm_metric_chrf("a b", "ab"), 100.0, 1e-7, 0, "whitespace ignored");
    CHECK_NEAR(cllm_metric_chrf("안녕하세요", "안녕하세요"), 100.0, 1e-7, 0, "identical Korean");
    /* Korean by code point: hyp 사과 (2 chars), ref 사과를 (3 chars):
     * same shape as "ab" vs "abc" -> 14/33. */
    CHECK_NEAR(cllm_metric_chrf("사과", "사과를"), 100.0 * 14.0 / 33.0, 1e-7, 0, "Hangul code points");
    CHECK(cllm_metric_chrf("abc", "xyz") == 0, "disjoint");
    CHECK(cllm_metric_chrf("", "") == 100 && cllm_metric_chrf("", "a") == 0 && cllm_metric_chrf("a", "") == 0, "empty");
    /* Recall is weighted more than precision (beta = 2): a hypothesis that
     * contains the reference plus junk beats one that is a strict part of it. */
    CHECK(cllm_metric_chrf("abcdefxyz", "abcdef") > cllm_metric_chrf("abc", "abcdef"), "recall-weighted");
    CHECK(cllm_metric_score(CLLM_METRIC_CHRF, "ab", "abc") == cllm_metric_chrf("ab", "abc"), "dispatch");
    const char bad[] = {(char)0xff, 'a', 0};
    double s = cllm_metric_chrf(bad, "a");
    CHECK(s > 0 && s < 100, "invalid UTF-8 is a character of its own: %g", s);
}

static cllm_model *tiny(int V, int zero) {
    cllm_model_config cfg;
    cllm_error err;
    CHECK(cllm_model_preset("tiny-gpt2", &cfg, &err) == CLLM_OK, "%s", err.msg);
    cfg.vocab_size = V;
    cllm_model_options o = cllm_model_default_options();
    o.max_seq = 8; /* windows of 16 need two decode chunks */
    o.kv_slots = 1;
    o.kv_context = 16;
    cllm_model *m = NULL;
    CHECK(cllm_model_create(&cfg, &o, &m, &err) == CLLM_OK, "%s", err.msg);
    if (m && !zero) cllm_model_init_weights(m, 42);
    return m;
}

static void test_metrics_text_nll(void) {
    /* All-zero weights give zero logits: every token has probability 1/V,
     * so the mean NLL is ln V and the perplexity V. */
    const int V = 50;
    cllm_model *m = tiny(V, 1);
    if (!m) return;
    int32_t ids[23];
    for (int i = 0; i < 23; i++) ids[i] = (i * 7) % V;
    cllm_text_nll r;
    cllm_error err;
    CHECK(cllm_metric_text_nll(m, ids, 23, 5, &r, &err) == CLLM_OK, "%s", err.msg);
    CHECK(r.n_scored == 22, "every token after the first is scored once: %lld", (long long)r.n_scored);
    /* float logits and loss: 1e-5 relative */
    CHECK_NEAR(r.nll, log((double)V), 0, 1e-5, "uniform NLL = ln V");
    CHECK_NEAR(r.ppl, (double)V, 0, 1e-4, "uniform PPL = V");
    cllm_model_destroy(m);

    /* A random model: one window holding the whole text equals the training
     * forward's mean loss x 15 (same function, computed without the cache). */
    m = tiny(V, 0);
    float loss;
    CHECK(cllm_model_forward(m, ids, ids + 1, 1, 8, &loss, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_metric_text_nll(m, ids, 9, 16, &r, &err) == CLLM_OK, "%s", err.msg);
    /* float logits, cached vs uncached paths: 1e-4 relative */
    CHECK_NEAR(r.nll_sum, (double)loss * 8, 0, 1e-4, "one window = forward loss x 8");
    cllm_text_nll r2;
    CHECK(cllm_metric_text_nll(m, ids, 23, 16, &r2, &err) == CLLM_OK, "%s", err.msg);
    CHECK(r2.n_scored == 22 && r2.nll > 0, "two windows, two decode chunks each");
    CHECK(cllm_metric_text_nll(m, ids, 1, 4, &r, &err) == CLLM_ERR_ARG, "one token is too few");
    CHECK(cllm_metric_text_nll(m, ids, 10, 17, &r, &err) == CLLM_ERR_ARG, "window over the KV context");
    ids[3] = V;
    CHECK(cllm_metric_text_nll(m, ids, 10, 4, &r, &err) == CLLM_ERR_ARG && strstr(err.msg, "token 3"),
          "id out of range named: %s", err.msg);
    cllm_model_destroy(m);
}

/* Writes text to a new temporary file; returns its path (static buffer per call site). */
static void write_tmp(char *path, const char *text) {
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp %s", path);
    if (fd < 0) return;
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
}

static void test_metrics_eval_task_files(void) {
    char good[] = "/tmp/cllm-test-eval-XXXXXX", bad[] = "/tmp/cllm-test-eval-XXXXXX";
    write_tmp(good, "\xEF\xBB\xBF{\"task\": \"faq\", \"metrics\": [\"exact_match\", \"chrf\"], \"messages\": "
                    "[{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": \"Yes.\"}]}\r\n"
                    "\n{\"messages\": [{\"role\": \"user\", \"content\": \"r\"}], \"reference\": \"no\"}\n");
    write_tmp(bad, "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}], \"reference\": \"a\"}\n{\"messages\": [}\n");
    cllm_eval_set set = {0};
    cllm_error err;
    CHECK(cllm_eval_set_load(&set, good, 0, &err) == CLLM_OK, "%s", err.msg);
    CHECK(set.n == 2 && !strcmp(set.v[0].task, "faq") && !strcmp(set.v[0].reference, "Yes.") && set.v[0].n_msgs == 1,
          "BOM, CRLF and a blank line accepted; the final assistant message is the reference");
    CHECK(set.n == 2 && !strcmp(set.v[1].task, "default") && set.v[1].n_metrics == 1 &&
              set.v[1].metrics[0] == CLLM_METRIC_EXACT_MATCH && set.v[1].line == 3,
          "defaults: task 'default', metric exact_match; line numbers count blank lines");
    cllm_eval_tally tally = {0};
    double sc[CLLM_METRIC_COUNT];
    int g = -1;
    CHECK(cllm_eval_tally_add(&tally, &set.v[0], "yes", 0, sc, &g, &err) == CLLM_OK && g == 0, "tally");
    CHECK(sc[CLLM_METRIC_EXACT_MATCH] == 1 && isnan(sc[CLLM_METRIC_ROUGE_L]), "declared metrics scored, others NaN");
    CHECK(cllm_eval_tally_add(&tally, &set.v[0], "no", 1, sc, &g, &err) == CLLM_OK && sc[CLLM_METRIC_CHRF] == 0,
          "over the context scores 0");
    CHECK(tally.n_tasks == 1 && tally.tasks[0].n == 2 && tally.tasks[0].over_context == 1, "counts");
    CHECK_NEAR(cllm_eval_task_mean(&tally.tasks[0], CLLM_METRIC_EXACT_MATCH), 0.5, TOL, 0, "mean of 1 and 0");
    cllm_eval_set_free(&set);
    CHECK(cllm_eval_set_load(&set, bad, 0, &err) == CLLM_ERR_FORMAT, "malformed line refused");
    char want[600];
    snprintf(want, sizeof want, "%s:2:", bad);
    CHECK(!strncmp(err.msg, want, strlen(want)) && strstr(err.msg, "malformed JSON"), "names FILE:LINE:COL: %s", err.msg);
    cllm_eval_set_free(&set);
    unlink(good);
    unlink(bad);
}

static void test_metrics_report_build(void) {
    char a[] = "/tmp/cllm-test-report-XXXXXX", b[] = "/tmp/cllm-test-report-XXXXXX";
    write_tmp(a, "{\"tasks\": [{\"task\": \"faq\", \"n\": 4, \"metrics\": {\"exact_match\": 0.5, \"chrf\": 40}},"
                 " {\"task\": \"tr\", \"n\": 4, \"metrics\": {\"chrf\": 30}}]}");
    write_tmp(b, "{\"tasks\": [{\"task\": \"faq\", \"n\": 4, \"metrics\": {\"exact_match\": 0.25, \"chrf\": 60}},"
                 " {\"task\": \"tr\", \"n\": 4, \"metrics\": {\"chrf\": 30.001}}]}");
    const char *names[] = {"base", "sft"}, *files[] = {a, b};
    cllm_report_override target = {"tr", "30"}, metric = {"nosuch", "chrf"};
    cllm_report_params p = {2, names, files, NULL, NULL, 0, &target, 1, 1};
    cllm_report r;
    cllm_error err;
    CHECK(cllm_report_build(&r, &p, &err) == CLLM_OK, "%s", err.msg);
    CHECK(r.n_tasks == 2 && r.tasks[0].metric == CLLM_METRIC_EXACT_MATCH && r.tasks[1].metric == CLLM_METRIC_CHRF,
          "headline: the first known metric the results carry");
    CHECK(r.n_drops == 1 && r.drops[0].task == 0 && r.drops[0].stage == 1,
          "faq 50%% -> 25%% is a drop; tr 30.00 -> 30.00 prints the same, so it is not");
    CHECK(r.targets == 1 && r.targets_met == 1, "target met at the last stage");
    char cell[32];
    cllm_report_format(cell, sizeof cell, CLLM_METRIC_EXACT_MATCH, 0.25);
    CHECK(!strcmp(cell, "25.0%"), "format %s", cell);
    char *js = cllm_report_json(&r);
    CHECK(js && strstr(js, "\"drops\"") && strstr(js, "\"targets_met\""), "JSON summary");
    free(js);
    cllm_report_free(&r);
    p.metrics = &metric;
    p.n_metrics = 1;
    CHECK(cllm_report_build(&r, &p, &err) == CLLM_ERR_ARG && strstr(err.msg, "nosuch"),
          "an override naming no task is a usage error: %s", err.msg);
    cllm_report_free(&r);
    unlink(a);
    unlink(b);
}

int main(void) {
    TEST_RUN(test_metrics_eval_task_files);
    TEST_RUN(test_metrics_report_build);
    TEST_RUN(test_metrics_names);
    TEST_RUN(test_metrics_exact_match);
    TEST_RUN(test_metrics_accuracy);
    TEST_RUN(test_metrics_rouge_l);
    TEST_RUN(test_metrics_chrf);
    TEST_RUN(test_metrics_text_nll);
    return test_finish();
}
