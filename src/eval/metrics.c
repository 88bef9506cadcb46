/*
 * metrics.c: exact match, first-word accuracy, ROUGE-L and chrF scores of a
 * hypothesis against a reference, and a model's likelihood of a token
 * sequence. Definitions and scales are in include/cllm/eval/metrics.h. Does not
 * generate text or read files.
 */
#include "cllm/eval/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const metric_names[CLLM_METRIC_COUNT] = {"exact_match", "accuracy", "rouge_l", "chrf"};

const char *cllm_metric_name(cllm_metric m) { return (unsigned)m < CLLM_METRIC_COUNT ? metric_names[m] : "?"; }

int cllm_metric_parse(const char *name) {
    for (int i = 0; i < CLLM_METRIC_COUNT; i++)
        if (!strcmp(name, metric_names[i])) return i;
    return -1;
}

double cllm_metric_max(cllm_metric m) { return m == CLLM_METRIC_CHRF ? 100.0 : 1.0; }

static int is_space(unsigned char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }
static unsigned char fold(unsigned char c) { return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c; }

/* ---- exact match and accuracy --------------------------------------------- */

/* Normalised copy (see metrics.h); caller frees. */
static char *normalise(const char *s, int strip_end_punct) {
    size_t n = strlen(s);
    char *out = malloc(n + 1);
    if (!out) return NULL;
    size_t k = 0;
    int space = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (is_space(*p)) {
            space = k > 0;
            continue;
        }
        if (space) out[k++] = ' ', space = 0;
        out[k++] = (char)fold(*p);
    }
    while (strip_end_punct && k > 0 && (out[k - 1] == '.' || out[k - 1] == '!' || out[k - 1] == '?' || out[k - 1] == ' '))
        k--;
    out[k] = 0;
    return out;
}

double cllm_metric_exact_match(const char *hyp, const char *ref) {
    char *a = normalise(hyp, 1), *b = normalise(ref, 1);
    double r = (a && b) ? (strcmp(a, b) == 0) : -1;
    free(a);
    free(b);
    return r;
}

static int is_ascii_punct(unsigned char c) { return c < 0x80 && strchr(".,!?;:\"'()[]{}<>", c) && c; }

double cllm_metric_accuracy(const char *hyp, const char *ref) {
    char *r = normalise(ref, 1);
    if (!r) return -1;
    const unsigned char *p = (const unsigned char *)hyp;
    while (*p && is_space(*p)) p++;
    const unsigned char *e = p;
    while (*e && !is_space(*e)) e++;
    while (p < e && is_ascii_punct(*p)) p++;
    while (e > p && is_ascii_punct(e[-1])) e--;
    size_t n = (size_t)(e - p);
    double out = strlen(r) == n;
    for (size_t i = 0; out && i < n; i++) out = fold(p[i]) == (unsigned char)r[i];
    free(r);
    return out;
}

/* ---- ROUGE-L ---------------------------------------------------------------- */

typedef struct {
    const char *s; /* word start */
    size_t len;
} word;

static int word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/* Splits s into words; *out owned by the caller. -1 on no memory. */
static long split_words(const char *s, word **out) {
    size_t cap = strlen(s) / 2 + 1, n = 0;
    word *w = malloc(cap * sizeof *w);
    if (!w) return -1;
    for (const char *p = s; *p;) {
        if (!word_byte((unsigned char)*p)) {
            p++;
            continue;
        }
        const char *q = p;
        while (*q && word_byte((unsigned char)*q)) q++;
        w[n].s = p;
        w[n].len = (size_t)(q - p);
        n++;
        p = q;
    }
    *out = w;
    return (long)n;
}

static int word_eq(const word *a, const word *b) {
    if (a->len != b->len) return 0;
    for (size_t i = 0; i < a->len; i++)
        if (fold((unsigned char)a->s[i]) != fold((unsigned char)b->s[i])) return 0;
    return 1;
}

double cllm_metric_rouge_l(const char *hyp, const char *ref) {
    word *h = NULL, *r = NULL;
    long nh = split_words(hyp, &h), nr = split_words(ref, &r);
    size_t *prev = NULL, *cur = NULL;
    double out = -1;
    if (nh < 0 || nr < 0) goto done;
    if (nh == 0 || nr == 0) {
        out = (nh == 0 && nr == 0) ? 1.0 : 0.0;
        goto done;
    }
    prev = calloc((size_t)nr + 1, sizeof *prev);
    cur = calloc((size_t)nr + 1, sizeof *cur);
    if (!prev || !cur) goto done;
    for (long i = 1; i <= nh; i++) {
        for (long j = 1; j <= nr; j++)
            cur[j] = word_eq(&h[i - 1], &r[j - 1]) ? prev[j - 1] + 1 : (prev[j] > cur[j - 1] ? prev[j] : cur[j - 1]);
        size_t *t = prev;
        prev = cur;
        cur = t;
    }
    double lcs = (double)prev[nr];
    if (lcs == 0) {
        out = 0;
    } else {
        double P = lcs / (double)nh, R = lcs / (double)nr;
        out = 2 * P * R / (P + R);
    }
done:
    free(h);
    free(r);
    free(prev);
    free(cur);
    return out;
}

/* ---- chrF ----------------------------------------------------------------- */

#define CHRF_ORDER 6
#define CHRF_BETA 2.0

/* Code points of s without whitespace; invalid bytes are one unit each
 * (offset into a private range so they never equal a real character). */
static long codepoints(const char *s, uint32_t **out) {
    size_t n = strlen(s), k = 0;
    uint32_t *cp = malloc((n + 1) * sizeof *cp);
    if (!cp) return -1;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p, need = 0;
        if (c < 0x80) need = 0;
        else if ((c & 0xE0) == 0xC0) need = 1, c &= 0x1F;
        else if ((c & 0xF0) == 0xE0) need = 2, c &= 0x0F;
        else if ((c & 0xF8) == 0xF0) need = 3, c &= 0x07;
        else need = 9;
        unsigned i = 1;
        for (; need != 9 && i <= need; i++) {
            if ((p[i] & 0xC0) != 0x80) break;
            c = (c << 6) | (p[i] & 0x3F);
        }
        if (need == 9 || i <= need) {
            cp[k++] = 0x110000u + *p; /* invalid byte */
            p++;
            continue;
        }
        p += need + 1;
        if (c < 0x80 && is_space((unsigned char)c)) continue;
        cp[k++] = c;
    }
    *out = cp;
    return (long)k;
}

typedef struct {
    uint64_t a, b; /* up to 6 code points of 21 bits packed three per word */
} ngram;

static int ngram_cmp(const void *x, const void *y) {
    const ngram *p = x, *q = y;
    if (p->a != q->a) return p->a < q->a ? -1 : 1;
    if (p->b != q->b) return p->b < q->b ? -1 : 1;
    return 0;
}

/* Sorted n-grams of order n; count = len - n + 1. */
static ngram *ngrams(const uint32_t *cp, long len, int n, long *count) {
    *count = len - n + 1;
    if (*count <= 0) {
        *count = 0;
        return malloc(sizeof(ngram));
    }
    ngram *g = malloc((size_t)*count * sizeof *g);
    if (!g) return NULL;
    for (long i = 0; i < *count; i++) {
        uint64_t a = 0, b = 0;
        for (int k = 0; k < n; k++) {
            uint64_t c = cp[i + k] & 0x3FFFFFu; /* 22 bits: code points and invalid-byte units */
            if (k < 3) a |= c << (22 * k);
            else b |= c << (22 * (k - 3));
        }
        g[i].a = a;
        g[i].b = b;
    }
    qsort(g, (size_t)*count, sizeof *g, ngram_cmp);
    return g;
}

double cllm_metric_chrf(const char *hyp, const char *ref) {
    uint32_t *h = NULL, *r = NULL;
    long nh = codepoints(hyp, &h), nr = codepoints(ref, &r);
    double out = -1;
    if (nh < 0 || nr < 0) goto done;
    if (nh == 0 || nr == 0) {
        out = (nh == 0 && nr == 0) ? 100.0 : 0.0;
        goto done;
    }
    double sum_p = 0, sum_r = 0;
    int orders = 0;
    for (int n = 1; n <= CHRF_ORDER; n++) {
        long ch, cr;
        ngram *gh = ngrams(h, nh, n, &ch), *gr = ngrams(r, nr, n, &cr);
        if (!gh || !gr) {
            free(gh);
            free(gr);
            goto done;
        }
        if (cr > 0) {
            long i = 0, j = 0, match = 0;
            while (i < ch && j < cr) {
                int c = ngram_cmp(&gh[i], &gr[j]);
                if (c == 0) match++, i++, j++;
                else if (c < 0) i++;
                else j++;
            }
            sum_p += ch > 0 ? (double)match / (double)ch : 0.0;
            sum_r += (double)match / (double)cr;
            orders++;
        }
        free(gh);
        free(gr);
    }
    double P = sum_p / orders, R = sum_r / orders, b2 = CHRF_BETA * CHRF_BETA;
    out = (P + R) > 0 ? 100.0 * (1 + b2) * P * R / (b2 * P + R) : 0.0;
done:
    free(h);
    free(r);
    return out;
}

double cllm_metric_score(cllm_metric m, const char *hyp, const char *ref) {
    switch (m) {
    case CLLM_METRIC_EXACT_MATCH: return cllm_metric_exact_match(hyp, ref);
    case CLLM_METRIC_ACCURACY: return cllm_metric_accuracy(hyp, ref);
    case CLLM_METRIC_ROUGE_L: return cllm_metric_rouge_l(hyp, ref);
    case CLLM_METRIC_CHRF: return cllm_metric_chrf(hyp, ref);
    default: return -1;
    }
}

/* ---- text likelihood ------------------------------------------------------- */

cllm_status cllm_metric_text_nll(cllm_model *m, const int32_t *tokens, size_t n, int T, cllm_text_nll *out,
                                 cllm_error *err) {
    memset(out, 0, sizeof *out);
    const cllm_model_options *o = cllm_model_get_options(m);
    const int V = cllm_model_get_config(m)->vocab_size;
    const int kv_context = o->kv_context > 0 ? o->kv_context : cllm_model_get_config(m)->context_length;
    if (o->kv_slots < 1)
        return cllm_error_set(err, CLLM_ERR_ARG, "text likelihood needs a model with a KV cache (kv_slots >= 1)");
    if (n < 2) return cllm_error_set(err, CLLM_ERR_ARG, "text has %zu tokens; at least 2 are needed to score one", n);
    if (T < 1 || T > kv_context)
        return cllm_error_set(err, CLLM_ERR_ARG, "window %d must be in [1, the KV context %d]", T, kv_context);
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return cllm_error_set(err, CLLM_ERR_ARG, "token %zu has id %d outside the vocabulary of %d", i,
                                  (int)tokens[i], V);
    double sum = 0;
    for (size_t s = 0; s + 1 < n; s += (size_t)T) {
        int len = (int)((n - 1 - s) < (size_t)T ? (n - 1 - s) : (size_t)T);
        cllm_model_kv_reset(m, 0);
        for (int pos = 0; pos < len;) {
            int chunk = len - pos < o->max_seq ? len - pos : o->max_seq;
            const float *logits;
            cllm_status st = cllm_model_decode(m, 0, tokens + s + pos, chunk, pos, 1, &logits, err);
            if (st != CLLM_OK) return st;
            for (int j = 0; j < chunk; j++) {
                const float *row = logits + (size_t)j * V;
                double mx = row[0], z = 0;
                for (int v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
                for (int v = 0; v < V; v++) z += exp((double)row[v] - mx);
                sum += mx + log(z) - (double)row[tokens[s + pos + j + 1]];
            }
            pos += chunk;
        }
    }
    cllm_model_kv_reset(m, 0);
    if (!isfinite(sum)) return cllm_error_set(err, CLLM_ERR_NUMERIC, "the model's log-likelihood is not finite");
    out->nll_sum = sum;
    out->n_scored = (int64_t)(n - 1);
    out->nll = sum / (double)(n - 1);
    out->ppl = exp(out->nll);
    return CLLM_OK;
}
