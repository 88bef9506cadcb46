/*
 * metrics.h: scores of a model's answer against a reference, and the
 * likelihood of a text under a model (perplexity, bits per byte).
 *
 * Metrics and their scales (what `cllm eval` reports):
 *   exact_match  1 when the normalised strings are equal, else 0.
 *                Normalisation: ASCII case folded, whitespace runs collapsed
 *                to one space, leading/trailing whitespace and trailing
 *                sentence punctuation (. ! ?) removed.
 *   accuracy     1 when the answer's first word equals the normalised
 *                reference, else 0: for labels ("positive") and numbers
 *                ("7"). The first word is the first whitespace-separated
 *                token with surrounding ASCII punctuation stripped, case
 *                folded, so "Positive." and "7 apples" count as correct.
 *   rouge_l      ROUGE-L F1 (Lin 2004): LCS of the word sequences,
 *                F = 2PR/(P+R) with P = LCS/|hyp|, R = LCS/|ref|. Words are
 *                maximal runs of ASCII letters/digits and non-ASCII bytes
 *                (Hangul stays one word), ASCII case folded; punctuation is
 *                not a word. [0, 1].
 *   chrf         chrF (Popović 2015, "chrF: character n-gram F-score for
 *                automatic MT evaluation"): character n-grams for n = 1..6
 *                over Unicode code points with whitespace removed;
 *                chrP and chrR are the arithmetic means over n of n-gram
 *                precision and recall, chrF = (1+b^2) chrP chrR /
 *                (b^2 chrP + chrR) with b = 2, times 100. Orders longer
 *                than the reference (no reference n-grams) are left out of
 *                the means; an order the hypothesis is too short for counts
 *                as precision 0 and recall 0. Matches are clipped counts
 *                (min of the two multisets). sacrebleu instead averages
 *                per-order F-scores, so its numbers differ slightly. [0, 100].
 * Two empty strings score the maximum under every metric; one empty string
 * scores 0 (exact_match: equal only if both normalise to empty).
 *
 * Text likelihood: the tokens are cut into consecutive windows of T + 1
 * tokens that overlap by one, so every token after the first is predicted
 * exactly once (each window restarts the context at its own first token).
 * Not here: generation (generate.h) and task files (eval.h).
 */
#ifndef CLLM_METRICS_H
#define CLLM_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "cllm/model/model.h"
#include "cllm/core/status.h"

typedef enum {
    CLLM_METRIC_EXACT_MATCH = 0,
    CLLM_METRIC_ACCURACY,
    CLLM_METRIC_ROUGE_L,
    CLLM_METRIC_CHRF,
    CLLM_METRIC_COUNT
} cllm_metric;

const char *cllm_metric_name(cllm_metric m); /* "exact_match", "accuracy", "rouge_l", "chrf" */
int cllm_metric_parse(const char *name);     /* -1 when unknown */
/* Largest score of the metric (1, or 100 for chrf). */
double cllm_metric_max(cllm_metric m);

/* Score of hypothesis `hyp` against reference `ref` (NUL-terminated UTF-8;
 * invalid UTF-8 bytes count as one character each). Returns a value in
 * [0, cllm_metric_max(m)], or -1 when out of memory. */
double cllm_metric_score(cllm_metric m, const char *hyp, const char *ref);

double cllm_metric_exact_match(const char *hyp, const char *ref);
double cllm_metric_accuracy(const char *hyp, const char *ref);
double cllm_metric_rouge_l(const char *hyp, const char *ref);
double cllm_metric_chrf(const char *hyp, const char *ref);

typedef struct {
    double nll_sum;      /* total negative log-likelihood, nats */
    int64_t n_scored;    /* tokens predicted (n - 1) */
    double nll;          /* nll_sum / n_scored */
    double ppl;          /* exp(nll) */
} cllm_text_nll;

/* Scores tokens[n] (ids in [0, V), n >= 2) in windows of up to T inputs
 * (1 <= T <= the KV context) through the KV cache (cllm_model_decode, slot 0,
 * which is reset), so f32 and mapped/quantized models both work; the model
 * needs kv_slots >= 1. Log-softmax in double. Bits per byte are
 * nll_sum / ln(2) / (bytes of tokens[1..n-1]), computed by the caller who
 * knows the tokenizer. */
cllm_status cllm_metric_text_nll(cllm_model *m, const int32_t *tokens, size_t n, int T, cllm_text_nll *out,
                                 cllm_error *err);

#endif
