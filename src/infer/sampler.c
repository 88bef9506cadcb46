/*
 * sampler.c: the sampler chain described in sampler.h.
 *
 * Candidates are (token, logit) pairs. Stages shrink or reshape the list;
 * nothing here allocates after cllm_sampler_create. Sorting is avoided on the
 * full vocabulary: top-k and top-p select the best candidates with an O(V)
 * partition (quickselect) and only sort that prefix, growing it for top-p
 * until it holds the requested probability mass.
 */
#include "cllm/infer/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/core/rng.h"

typedef struct {
    int32_t token;
    float logit;
} candidate;

struct cllm_sampler {
    cllm_sampler_params params;
    int V;
    cllm_rng rng;
    candidate *cand;   /* [V] working list */
    float *bias_by_id; /* [V] summed logit bias per token */
    int32_t *counts;   /* [V] occurrences in the penalty window (zero outside use) */
    int32_t *history;  /* [window] ring buffer of accepted tokens */
    int64_t n_history; /* total accepted since reset */
    const cllm_grammar_vocab *vocab;  /* borrowed; NULL without a grammar */
    cllm_grammar_matcher *grammar;    /* owned; NULL without a grammar */
    uint8_t *allowed;                 /* [V] the grammar's mask for this step */
    uint8_t *excluded;                /* [V] 1: never a candidate (cllm_sampler_exclude_unused); or NULL */
};

static const char *const stage_names[CLLM_SAMPLER_STAGE_COUNT] = {
    [CLLM_SAMPLER_STAGE_PENALTIES] = "penalties", [CLLM_SAMPLER_STAGE_LOGIT_BIAS] = "logit_bias",
    [CLLM_SAMPLER_STAGE_TOP_K] = "top_k",         [CLLM_SAMPLER_STAGE_TOP_P] = "top_p",
    [CLLM_SAMPLER_STAGE_MIN_P] = "min_p",         [CLLM_SAMPLER_STAGE_TEMPERATURE] = "temperature",
};

const char *cllm_sampler_stage_name(cllm_sampler_stage stage) {
    return (int)stage >= 0 && stage < CLLM_SAMPLER_STAGE_COUNT ? stage_names[stage] : "unknown";
}

cllm_sampler_params cllm_sampler_default_params(void) {
    cllm_sampler_params p;
    memset(&p, 0, sizeof p);
    p.temperature = 0.8f;
    p.top_k = 40;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    p.repeat_penalty = 1.0f;
    p.penalty_window = 64;
    p.n_stages = CLLM_SAMPLER_STAGE_COUNT;
    for (int i = 0; i < CLLM_SAMPLER_STAGE_COUNT; i++) p.order[i] = (cllm_sampler_stage)i;
    return p;
}

static int in_range(float v, float lo, float hi) { return isfinite(v) && v >= lo && v <= hi; }

cllm_status cllm_sampler_params_validate(const cllm_sampler_params *p, int V, cllm_error *err) {
    if (V <= 0) return cllm_error_set(err, CLLM_ERR_ARG, "sampler: vocabulary size must be > 0");
    if (!in_range(p->temperature, 0.0f, 100.0f))
        return cllm_error_set(err, CLLM_ERR_ARG, "sampler: temperature must be in [0, 100], got %g", p->temperature);
    if (p->top_k < 0) return cllm_error_set(err, CLLM_ERR_ARG, "sampler: top_k must be >= 0, got %d", p->top_k);
    if (!in_range(p->top_p, 0.0f, 1.0f) || p->top_p == 0.0f)
        return cllm_error_set(err, CLLM_ERR_ARG, "sampler: top_p must be in (0, 1], got %g", p->top_p);
    if (!in_range(p->min_p, 0.0f, 1.0f) || p->min_p == 1.0f)
        return cllm_error_set(err, CLLM_ERR_ARG, "sampler: min_p must be in [0, 1), got %g", p->min_p);
    if (!in_range(p->repeat_penalty, 0.01f, 100.0f))
        return cllm_error_set(err, CLLM_ERR_ARG, "sampler: repeat_penalty must be in [0.01, 100], got %g",
                              p->repeat_penalty);
    if (!in_range(p->presence_penalty, -2.0f, 2.0f))
        return cllm_error_set(err, CLLM_ERR_ARG, "sampler: presence_penalty must be in [-2, 2], got %g",
                              p->presence_penalty);
    if (!in_range(p->frequency_penalty, -2.0f, 2.0f))
        return cllm_error_set(err, CLLM_ERR_ARG, "sampler: frequency_penalty must be in [-2, 2], got %g",
                              p->frequency_penalty);
    if (p->penalty_window < 0 || p->penalty_window > (1 << 20))
        return cllm_error_set(err, CLLM_ERR_ARG, "sampler: penalty_window must be in [0, 1048576], got %d",
                              p->penalty_window);
    if (p->n_stages < 0 || p->n_stages > CLLM_SAMPLER_STAGE_COUNT)
        return cllm_error_set(err, CLLM_ERR_ARG, "sampler: n_stages must be in [0, %d]", CLLM_SAMPLER_STAGE_COUNT);
    int seen[CLLM_SAMPLER_STAGE_COUNT] = {0};
    for (int i = 0; i < p->n_stages; i++) {
        if ((int)p->order[i] < 0 || p->order[i] >= CLLM_SAMPLER_STAGE_COUNT)
            return cllm_error_set(err, CLLM_ERR_ARG, "sampler: order[%d] is not a known stage", i);
        if (seen[p->order[i]]++)
            return cllm_error_set(err, CLLM_ERR_ARG, "sampler: stage '%s' appears twice in the order",
                                  stage_names[p->order[i]]);
    }
    if (p->n_bias < 0 || p->n_bias > CLLM_SAMPLER_MAX_BIAS)
        return cllm_error_set(err, CLLM_ERR_LIMIT, "sampler: at most %d logit_bias entries", CLLM_SAMPLER_MAX_BIAS);
    for (int i = 0; i < p->n_bias; i++) {
        if (p->bias[i].token < 0 || p->bias[i].token >= V)
            return cllm_error_set(err, CLLM_ERR_ARG, "sampler: logit_bias token %d is outside the vocabulary [0, %d)",
                                  p->bias[i].token, V);
        float b = p->bias[i].bias;
        if (isnan(b) || (isinf(b) && b > 0) || (isfinite(b) && fabsf(b) > 100.0f))
            return cllm_error_set(err, CLLM_ERR_ARG,
                                  "sampler: logit_bias for token %d must be in [-100, 100] or -inf, got %g",
                                  p->bias[i].token, b);
    }
    return CLLM_OK;
}

cllm_status cllm_sampler_parse_order(cllm_sampler_params *p, const char *list, cllm_error *err) {
    cllm_sampler_params copy = *p;
    copy.n_stages = 0;
    const char *s = list;
    while (*s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        int found = -1;
        for (int k = 0; k < CLLM_SAMPLER_STAGE_COUNT; k++)
            if (strlen(stage_names[k]) == len && !strncmp(stage_names[k], s, len)) found = k;
        if (found < 0)
            return cllm_error_set(err, CLLM_ERR_ARG,
                                  "sampler order: unknown stage '%.*s' (known: penalties, logit_bias, top_k, "
                                  "top_p, min_p, temperature)",
                                  (int)len, s);
        for (int k = 0; k < copy.n_stages; k++)
            if ((int)copy.order[k] == found)
                return cllm_error_set(err, CLLM_ERR_ARG, "sampler order: stage '%s' appears twice",
                                      stage_names[found]);
        copy.order[copy.n_stages++] = (cllm_sampler_stage)found;
        s += len;
        if (*s == ',') s++;
    }
    p->n_stages = copy.n_stages;
    memcpy(p->order, copy.order, sizeof p->order);
    return CLLM_OK;
}

cllm_sampler *cllm_sampler_create(const cllm_sampler_params *p, int V, cllm_error *err) {
    if (cllm_sampler_params_validate(p, V, err) != CLLM_OK) return NULL;
    cllm_sampler *s = calloc(1, sizeof *s);
    if (!s) goto nomem;
    s->params = *p;
    s->V = V;
    s->cand = malloc((size_t)V * sizeof *s->cand);
    s->bias_by_id = calloc((size_t)V, sizeof *s->bias_by_id);
    s->counts = calloc((size_t)V, sizeof *s->counts);
    s->history = malloc((size_t)(p->penalty_window > 0 ? p->penalty_window : 1) * sizeof *s->history);
    if (!s->cand || !s->bias_by_id || !s->counts || !s->history) goto nomem;
    for (int i = 0; i < p->n_bias; i++) s->bias_by_id[p->bias[i].token] += p->bias[i].bias;
    cllm_rng_seed(&s->rng, p->seed);
    return s;
nomem:
    cllm_sampler_destroy(s);
    cllm_error_set(err, CLLM_ERR_NOMEM, "sampler: cannot allocate buffers for a vocabulary of %d", V);
    return NULL;
}

cllm_status cllm_sampler_exclude_unused(cllm_sampler *s, const cllm_tokenizer *tok, cllm_error *err) {
    if (!s->excluded && !(s->excluded = calloc((size_t)s->V, 1)))
        return cllm_error_set(err, CLLM_ERR_NOMEM, "sampler: cannot allocate the excluded-token mask");
    const uint32_t n_vocab = cllm_tokenizer_n_vocab(tok);
    for (int i = 0; i < s->V; i++)
        s->excluded[i] = (uint32_t)i >= n_vocab || cllm_tokenizer_token_kind(tok, (uint32_t)i) == CLLM_TOKEN_UNUSED;
    return CLLM_OK;
}

void cllm_sampler_destroy(cllm_sampler *s) {
    if (!s) return;
    free(s->cand);
    free(s->bias_by_id);
    free(s->counts);
    free(s->history);
    cllm_grammar_matcher_destroy(s->grammar);
    free(s->allowed);
    free(s->excluded);
    free(s);
}

cllm_status cllm_sampler_set_grammar(cllm_sampler *s, const cllm_grammar *g, const cllm_grammar_vocab *v,
                                     cllm_error *err) {
    cllm_grammar_matcher_destroy(s->grammar);
    s->grammar = NULL;
    s->vocab = NULL;
    if (!g) return CLLM_OK;
    if (cllm_grammar_vocab_size(v) != s->V)
        return cllm_error_set(err, CLLM_ERR_ARG, "sampler: the grammar's vocabulary has %d tokens, the sampler's %d",
                              cllm_grammar_vocab_size(v), s->V);
    if (!s->allowed && !(s->allowed = malloc((size_t)s->V)))
        return cllm_error_set(err, CLLM_ERR_NOMEM, "sampler: cannot allocate the grammar mask");
    if (!(s->grammar = cllm_grammar_matcher_create(g, err))) return err->status;
    s->vocab = v;
    return CLLM_OK;
}

int cllm_sampler_advance(cllm_sampler *s, int32_t token) {
    if (s->grammar && !cllm_grammar_matcher_accept_token(s->grammar, s->vocab, token)) return 0;
    cllm_sampler_accept(s, token);
    return 1;
}

int cllm_sampler_grammar_finished(const cllm_sampler *s) {
    return s->grammar && cllm_grammar_matcher_complete(s->grammar) && !cllm_grammar_matcher_can_continue(s->grammar);
}

void cllm_sampler_reset(cllm_sampler *s) {
    s->n_history = 0;
    if (s->grammar) cllm_grammar_matcher_reset(s->grammar);
}

void cllm_sampler_accept(cllm_sampler *s, int32_t token) {
    if (s->params.penalty_window <= 0 || token < 0 || token >= s->V) return;
    s->history[s->n_history % s->params.penalty_window] = token;
    s->n_history++;
}

/* Orders candidates by logit, descending; ties by token id for determinism. */
static int candidate_before(const candidate *a, const candidate *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->token < b->token);
}
static int compare_candidates(const void *pa, const void *pb) {
    const candidate *a = pa, *b = pb;
    return candidate_before(a, b) ? -1 : candidate_before(b, a) ? 1 : 0;
}

/* Rearranges c[0..n) so its k best candidates come first (any order). */
static void select_best(candidate *c, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        candidate pivot = c[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (candidate_before(&c[i], &pivot)) i++;
            while (candidate_before(&pivot, &c[j])) j--;
            if (i <= j) {
                candidate t = c[i];
                c[i] = c[j];
                c[j] = t;
                i++;
                j--;
            }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

/* Makes c[0..k) the k best, sorted. */
static void sort_best(candidate *c, int n, int k) {
    if (k < n) select_best(c, n, k);
    qsort(c, (size_t)k, sizeof *c, compare_candidates);
}

static float max_logit(const candidate *c, int n) {
    float m = -INFINITY;
    for (int i = 0; i < n; i++) m = c[i].logit > m ? c[i].logit : m;
    return m;
}

static void apply_penalties(cllm_sampler *s, candidate *c, int n) {
    const cllm_sampler_params *p = &s->params;
    int window = p->penalty_window;
    if (window <= 0 || s->n_history == 0) return;
    if (p->repeat_penalty == 1.0f && p->presence_penalty == 0.0f && p->frequency_penalty == 0.0f) return;
    int64_t have = s->n_history < window ? s->n_history : window;
    for (int64_t i = 0; i < have; i++) s->counts[s->history[i]]++;
    for (int i = 0; i < n; i++) {
        int32_t cnt = s->counts[c[i].token];
        if (cnt == 0) continue;
        float l = c[i].logit;
        l = l > 0 ? l / p->repeat_penalty : l * p->repeat_penalty;
        l -= p->presence_penalty + p->frequency_penalty * (float)cnt;
        c[i].logit = l;
    }
    for (int64_t i = 0; i < have; i++) s->counts[s->history[i]] = 0;
}

/* Keeps the smallest sorted prefix whose probability mass reaches top_p. */
static int apply_top_p(candidate *c, int n, int *sorted_prefix, float top_p) {
    if (top_p >= 1.0f || n <= 1) return n;
    float m = max_logit(c, n);
    double total = 0;
    for (int i = 0; i < n; i++) total += exp((double)(c[i].logit - m));
    int k = *sorted_prefix > 0 ? *sorted_prefix : (n < 64 ? n : 64);
    for (;;) {
        if (k > *sorted_prefix) {
            sort_best(c, n, k);
            *sorted_prefix = k;
        }
        double cum = 0;
        for (int i = 0; i < k; i++) {
            cum += exp((double)(c[i].logit - m));
            if (cum >= top_p * total) return i + 1;
        }
        if (k == n) return n;
        k = k * 4 < n ? k * 4 : n;
    }
}

static int apply_min_p(candidate *c, int n, float min_p) {
    if (min_p <= 0.0f || n <= 1) return n;
    float threshold = max_logit(c, n) + logf(min_p);
    int kept = 0;
    for (int i = 0; i < n; i++)
        if (c[i].logit >= threshold) c[kept++] = c[i];
    return kept > 0 ? kept : n; /* the maximum always passes; kept 0 only if it is NaN */
}

/* Log-softmax over the finite logits (at least one, checked by the caller);
 * a non-finite logit's token has log-probability -inf, so nothing reported
 * is NaN. */
static void model_logprobs(const float *logits, int V, int32_t chosen, float *chosen_logprob,
                           cllm_token_logprob *top, int n_top) {
    float m = -INFINITY;
    for (int i = 0; i < V; i++)
        if (isfinite(logits[i])) m = logits[i] > m ? logits[i] : m;
    double sum = 0;
    for (int i = 0; i < V; i++)
        if (isfinite(logits[i])) sum += exp((double)(logits[i] - m));
    float lse = m + (float)log(sum);
    if (chosen_logprob) *chosen_logprob = isfinite(logits[chosen]) ? logits[chosen] - lse : -INFINITY;
    if (n_top <= 0) return;
    if (n_top > V) n_top = V;
    int filled = 0;
    for (int i = 0; i < V; i++) {
        float lp = isfinite(logits[i]) ? logits[i] - lse : -INFINITY;
        if (filled == n_top && lp <= top[filled - 1].logprob) continue;
        int pos = filled < n_top ? filled++ : n_top - 1;
        while (pos > 0 && top[pos - 1].logprob < lp) {
            top[pos] = top[pos - 1];
            pos--;
        }
        top[pos].token = i;
        top[pos].logprob = lp;
    }
}

/* The chain and the draw over the finite logits whose tokens allowed[]
 * marks (NULL: every token). Returns a token, or CLLM_SAMPLER_NO_FINITE_LOGIT
 * / CLLM_SAMPLER_GRAMMAR_DEAD_END. */
static int32_t run_chain(cllm_sampler *s, const float *logits, const uint8_t *allowed) {
    const cllm_sampler_params *p = &s->params;
    candidate *c = s->cand;
    int n = 0, n_finite = 0;
    /* Only finite logits are candidates: NaN compares false both ways (the
     * truncation stages would keep nothing) and +-inf has no probability. */
    for (int i = 0; i < s->V; i++) {
        if (!isfinite(logits[i]) || (s->excluded && s->excluded[i])) continue;
        n_finite++;
        if (allowed && !allowed[i]) continue;
        c[n].token = i;
        c[n].logit = logits[i];
        n++;
    }
    if (n_finite == 0) return CLLM_SAMPLER_NO_FINITE_LOGIT;
    if (n == 0) return CLLM_SAMPLER_GRAMMAR_DEAD_END;
    int sorted_prefix = 0; /* c[0..sorted_prefix) are the best, in order */
    float temperature = p->temperature;
    for (int k = 0; k < p->n_stages && n > 1; k++) {
        switch (p->order[k]) {
        case CLLM_SAMPLER_STAGE_PENALTIES:
            apply_penalties(s, c, n);
            sorted_prefix = 0;
            break;
        case CLLM_SAMPLER_STAGE_LOGIT_BIAS:
            if (p->n_bias > 0) {
                for (int i = 0; i < n; i++) c[i].logit += s->bias_by_id[c[i].token];
                sorted_prefix = 0;
            }
            break;
        case CLLM_SAMPLER_STAGE_TOP_K:
            if (p->top_k > 0 && p->top_k < n) {
                sort_best(c, n, p->top_k);
                n = sorted_prefix = p->top_k;
            }
            break;
        case CLLM_SAMPLER_STAGE_TOP_P:
            n = apply_top_p(c, n, &sorted_prefix, p->top_p);
            if (sorted_prefix > n) sorted_prefix = n;
            break;
        case CLLM_SAMPLER_STAGE_MIN_P:
            n = apply_min_p(c, n, p->min_p); /* keeps relative order */
            if (sorted_prefix > n) sorted_prefix = n;
            break;
        case CLLM_SAMPLER_STAGE_TEMPERATURE:
            if (temperature > 0.0f)
                for (int i = 0; i < n; i++) c[i].logit /= temperature;
            break;
        case CLLM_SAMPLER_STAGE_COUNT:
            break;
        }
    }
    /* Banned tokens (bias -inf) never win, unless nothing else is left. */
    int32_t chosen = c[0].token;
    if (temperature == 0.0f || n == 1) {
        candidate best = c[0];
        for (int i = 1; i < n; i++)
            if (candidate_before(&c[i], &best)) best = c[i];
        chosen = best.token;
    } else {
        float m = max_logit(c, n);
        double total = 0;
        for (int i = 0; i < n; i++) total += exp((double)(c[i].logit - m));
        double u = (double)cllm_rng_float(&s->rng) * total, cum = 0;
        chosen = c[n - 1].token;
        for (int i = 0; i < n; i++) {
            cum += exp((double)(c[i].logit - m));
            if (u < cum) {
                chosen = c[i].token;
                break;
            }
        }
        if (!isfinite(m)) chosen = c[0].token; /* every candidate banned: deterministic fallback */
    }
    return chosen;
}

/* With a grammar the chain first runs unconstrained, and its token stands
 * when the grammar accepts it (one token's bytes to check); only otherwise
 * is the vocabulary masked and the chain run again over the valid tokens
 * (llama.cpp does the same). Greedy decoding picks exactly the best valid
 * token either way, and plain softmax sampling has exactly the masked
 * distribution: a valid t is drawn first with p(t), or after a rejection
 * (probability 1 - p(valid)) with p(t) / p(valid), p(t) / p(valid) in all.
 * With top-k/top-p/min-p the first try truncates among all tokens. A model
 * that follows the format rarely needs the mask, which is what keeps the
 * cost small (bench/bench_grammar.sh). */
int32_t cllm_sampler_sample(cllm_sampler *s, const float *logits, float *chosen_logprob,
                            cllm_token_logprob *top, int n_top) {
    int32_t chosen = run_chain(s, logits, NULL);
    if (s->grammar && chosen >= 0 && !cllm_grammar_matcher_check_token(s->grammar, s->vocab, chosen)) {
        cllm_grammar_matcher_mask(s->grammar, s->vocab, s->allowed);
        chosen = run_chain(s, logits, s->allowed);
    }
    if (chosen >= 0 && (chosen_logprob || n_top > 0)) model_logprobs(logits, s->V, chosen, chosen_logprob, top, n_top);
    return chosen;
}
