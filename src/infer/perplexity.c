/*
 * perplexity.c: cllm_perplexity_eval (cllm/infer/perplexity.h): chunked
 * evaluation of next-token log-likelihood, and KL / top-1 / PPL-ratio of a
 * model against a base model decoded on the same chunks.
 *
 * Works through cllm_model_decode only, so it runs on f32 models and on
 * mapped quantized ones alike. Log-softmax in double. No allocation beyond
 * one row buffer per call. Not here: tokenizing text (tools/cmd_perplexity.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/infer/perplexity.h"

/* log-softmax normaliser of row x[V]: max + log(sum exp(x - max)). */
static double log_norm(const float *x, int V, int *argmax) {
    double mx = -INFINITY;
    int am = 0;
    for (int v = 0; v < V; v++)
        if (x[v] > mx) mx = x[v], am = v;
    double s = 0;
    for (int v = 0; v < V; v++) s += exp((double)x[v] - mx);
    *argmax = am;
    return mx + log(s);
}

static cllm_status check_model(cllm_model *m, int ctx, const char *what, cllm_error *err) {
    const cllm_model_options *o = cllm_model_get_options(m);
    const cllm_model_config *c = cllm_model_get_config(m);
    if (o->kv_slots < 1 || o->kv_context < ctx)
        return cllm_error_set(err, CLLM_ERR_ARG, "perplexity: the %s model needs a KV cache of >= %d positions", what,
                              ctx);
    if (ctx > c->context_length)
        return cllm_error_set(err, CLLM_ERR_LIMIT, "perplexity: chunk of %d tokens exceeds the %s model's context of %d",
                              ctx, what, c->context_length);
    return CLLM_OK;
}

cllm_status cllm_perplexity_eval(cllm_model *m, cllm_model *base, const int32_t *tokens, size_t n, int ctx,
                                 cllm_perplexity_result *out, cllm_error *err) {
    memset(out, 0, sizeof *out);
    if (ctx < 2) return cllm_error_set(err, CLLM_ERR_ARG, "perplexity: chunk size %d must be at least 2", ctx);
    if (n < (size_t)ctx)
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "perplexity: %zu tokens are fewer than one chunk of %d (use a shorter --ctx)", n, ctx);
    cllm_status st = check_model(m, ctx, "evaluated", err);
    if (st == CLLM_OK && base) st = check_model(base, ctx, "base", err);
    if (st != CLLM_OK) return st;
    const int V = cllm_model_get_config(m)->vocab_size;
    if (base && cllm_model_get_config(base)->vocab_size != V)
        return cllm_error_set(err, CLLM_ERR_ARG, "perplexity: base vocabulary %d differs from the model's %d",
                              cllm_model_get_config(base)->vocab_size, V);
    const int piece = cllm_model_get_options(m)->max_seq < (base ? cllm_model_get_options(base)->max_seq : INT32_MAX)
                          ? cllm_model_get_options(m)->max_seq
                          : cllm_model_get_options(base)->max_seq;
    float *row = base ? malloc(sizeof(float) * (size_t)V * (size_t)piece) : NULL;
    if (base && !row) return cllm_error_set(err, CLLM_ERR_NOMEM, "perplexity: out of memory");
    const size_t n_chunks = n / (size_t)ctx;
    const int first = ctx / 2;
    double sum = 0, sum2 = 0, bsum = 0, kl = 0, klmax = 0;
    int64_t scored = 0, agree = 0;
    for (size_t ch = 0; ch < n_chunks && st == CLLM_OK; ch++) {
        const int32_t *tk = tokens + ch * (size_t)ctx;
        cllm_model_kv_reset(m, 0);
        if (base) cllm_model_kv_reset(base, 0);
        for (int p = 0; p < ctx && st == CLLM_OK; p += piece) {
            const int np = ctx - p < piece ? ctx - p : piece;
            const float *bl = NULL, *ml = NULL;
            if (base) {
                if ((st = cllm_model_decode(base, 0, tk + p, np, p, 1, &bl, err)) != CLLM_OK) break;
                memcpy(row, bl, sizeof(float) * (size_t)V * (size_t)np); /* decode of m may share nothing, but be safe */
                bl = row;
            }
            if ((st = cllm_model_decode(m, 0, tk + p, np, p, 1, &ml, err)) != CLLM_OK) break;
            for (int i = 0; i < np; i++) {
                const int pos = p + i;
                if (pos < first || pos >= ctx - 1) continue;
                const int32_t next = tk[pos + 1];
                const float *x = ml + (size_t)i * V;
                int am;
                const double lz = log_norm(x, V, &am);
                const double nll = lz - x[next];
                sum += nll, sum2 += nll * nll;
                scored++;
                if (base) {
                    const float *y = bl + (size_t)i * V;
                    int bm;
                    const double blz = log_norm(y, V, &bm);
                    bsum += blz - y[next];
                    double k = 0;
                    for (int v = 0; v < V; v++) {
                        const double lp = y[v] - blz, lq = x[v] - lz;
                        k += exp(lp) * (lp - lq);
                    }
                    if (k < 0) k = 0; /* rounding */
                    kl += k;
                    if (k > klmax) klmax = k;
                    agree += am == bm;
                }
            }
        }
        out->n_chunks++;
    }
    free(row);
    if (st != CLLM_OK) return st;
    out->n_scored = scored;
    out->nll = sum / (double)scored;
    const double var = sum2 / (double)scored - out->nll * out->nll;
    out->nll_stderr = scored > 1 && var > 0 ? sqrt(var / (double)(scored - 1)) : 0;
    out->ppl = exp(out->nll);
    if (base) {
        out->base_nll = bsum / (double)scored;
        out->base_ppl = exp(out->base_nll);
        out->kl_mean = kl / (double)scored;
        out->kl_max = klmax;
        out->top1_agree = (double)agree / (double)scored;
        out->ppl_ratio = out->ppl / out->base_ppl;
    }
    return CLLM_OK;
}
