/*
 * rl_rollout.c: the sampling half of PPO and GRPO: load the run's models
 * (policy with KV slots, frozen reference, reward model), sample one
 * completion per requested prompt in batched KV-cache decode steps (the
 * distinct prompts prefilled together in one pass, each once, its cache
 * copied to the slots that repeat it), score
 * each completion (a verifiable reward on its text, or the reward model's
 * head on its last token), and pack prompt + completion rows for the
 * optimisation half. Does not: compute advantages or losses.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cllm/core/hash.h"
#include "cllm/load/model_file.h"
#include "rl_internal.h"

cllm_status rl_rollout_step(const cllm_rl_params *p, cllm_rl_model *pol, const rl_turn_end *end,
                            const cllm_pref_data *d, const int *ex, int n, cllm_rl_model *rm, int64_t step,
                            cllm_rl_result *res, rl_rollout *ro, double *mean, double *tokens, double *seconds,
                            cllm_error *err) {
    cllm_sampler *smp = rl_rollout_sampler(p, pol, step, err);
    if (!smp) return err->status;
    const int64_t before = res->rollout_tokens;
    cllm_status st = rl_rollout_run(p, pol, smp, end, d, ex, n, rm, ro, &res->rollout_tokens, seconds, err);
    cllm_sampler_destroy(smp);
    if (st) return st;
    *tokens = (double)(res->rollout_tokens - before);
    double sum = 0;
    for (int i = 0; i < n; i++) sum += ro->score[i];
    *mean = sum / n;
    if (step == res->start_step) res->first_metric = *mean;
    res->last_metric = *mean;
    return CLLM_OK;
}

void rl_rollout_free(rl_rollout *ro) {
    if (!ro) return;
    free(ro->out);
    free(ro->count);
    free(ro->score);
    cllm_rl_batch_free(&ro->batch);
    memset(ro, 0, sizeof *ro);
}

/* Prefills slot i with its prompt, in max_seq chunks, one slot at a time;
 * copies the last position's logits to saved[V]. */
static cllm_status prefill_one(cllm_model *m, int i, const int32_t *prompt, int n_prompt, float *saved,
                               cllm_error *err) {
    const int max_seq = cllm_model_get_options(m)->max_seq, V = cllm_model_get_config(m)->vocab_size;
    const float *logits = NULL;
    cllm_model_kv_reset(m, i);
    for (int p = 0; p < n_prompt; p += max_seq) {
        int k = n_prompt - p < max_seq ? n_prompt - p : max_seq;
        cllm_status st = cllm_model_decode(m, i, prompt + p, k, p, 0, &logits, err);
        if (st) return st;
    }
    memcpy(saved, logits, (size_t)V * sizeof *saved);
    return CLLM_OK;
}

/* Prefills the slots i with first[i] == i together: their prompts' tokens
 * laid end to end as rows of cllm_model_decode_rows calls (max_seq rows
 * each, so every projection is one GEMM over many prompts); each prompt's
 * last logits go to saved[i, V]. */
static cllm_status prefill_rows(cllm_model *m, int n, const int *first, const int32_t *const *prompts,
                                const int *n_prompt, float *saved, cllm_error *err) {
    const int max_seq = cllm_model_get_options(m)->max_seq, V = cllm_model_get_config(m)->vocab_size;
    int *slot = malloc((size_t)max_seq * sizeof *slot), *pos = malloc((size_t)max_seq * sizeof *pos);
    int32_t *tok = malloc((size_t)max_seq * sizeof *tok);
    unsigned char *want = malloc((size_t)max_seq);
    cllm_status st = CLLM_OK;
    if (!slot || !pos || !tok || !want) st = cllm_error_set(err, CLLM_ERR_NOMEM, "rollout: out of memory");
    int r = 0;
    for (int i = 0; i <= n && !st; i++) {
        const int last = i == n;
        if (!last && first[i] != i) continue;
        if (!last) cllm_model_kv_reset(m, i);
        for (int t = 0; !st && (last ? r > 0 : t < n_prompt[i]); t++) {
            if (!last) {
                slot[r] = i;
                tok[r] = prompts[i][t];
                pos[r] = t;
                want[r++] = t == n_prompt[i] - 1;
            }
            if (r == max_seq || last) { /* run the rows gathered so far */
                const float *logits = NULL;
                int nl = 0;
                st = cllm_model_decode_rows(m, r, slot, tok, pos, want, &logits, &nl, err);
                for (int j = 0, k = 0; !st && j < r; j++)
                    if (want[j]) memcpy(saved + (size_t)slot[j] * V, logits + (size_t)k++ * V, (size_t)V * sizeof *saved);
                r = 0;
            }
        }
    }
    free(slot);
    free(pos);
    free(tok);
    free(want);
    return st;
}

/* The sampler found no finite logit (CLLM_SAMPLER_NO_FINITE_LOGIT): the
 * policy's weights or activations went NaN/Inf. */
static cllm_status no_finite_logit(int seq, int token, cllm_error *err) {
    return cllm_error_set(err, CLLM_ERR_NUMERIC,
                          "rollout: completion %d, token %d: every logit is NaN or Inf (the policy diverged; lower "
                          "the learning rate or resume from an earlier checkpoint)",
                          seq, token);
}

int rl_sample_batch(cllm_model *m, cllm_sampler *s, const cllm_tokenizer *tok, const rl_turn_end *end, int n,
                    const int32_t *const *prompts, const int *n_prompt, int max_new, int prefill_flags, int32_t *out,
                    int *count, cllm_error *err) {
    const cllm_model_options *o = cllm_model_get_options(m);
    const int V = cllm_model_get_config(m)->vocab_size;
    int kv_ctx = o->kv_context ? o->kv_context : cllm_model_get_config(m)->context_length;
    if (n > o->kv_slots) {
        cllm_error_set(err, CLLM_ERR_LIMIT, "rollout: %d sequences but %d KV slots", n, o->kv_slots);
        return -1;
    }
    int slots[n], pos[n], first[n]; /* first[i]: the earlier slot holding the same prompt, or i */
    int32_t next[n];
    int64_t generated = 0;
    for (int i = 0; i < n; i++) {
        if (n_prompt[i] < 1) {
            cllm_error_set(err, CLLM_ERR_ARG, "rollout: prompt %d is empty", i);
            return -1;
        }
        if (n_prompt[i] + max_new > kv_ctx) {
            cllm_error_set(err, CLLM_ERR_LIMIT, "rollout: prompt %d + %d new tokens exceed the %d-position cache",
                           n_prompt[i], max_new, kv_ctx);
            return -1;
        }
        first[i] = i;
        for (int j = 0; (prefill_flags & RL_PREFILL_SHARE) && j < i && first[i] == i; j++)
            if (first[j] == j && n_prompt[j] == n_prompt[i] &&
                (prompts[j] == prompts[i] || !memcmp(prompts[j], prompts[i], (size_t)n_prompt[i] * sizeof(int32_t))))
                first[i] = j;
    }
    float *saved = malloc((size_t)n * V * sizeof *saved); /* [n, V] each prefilled prompt's last logits */
    if (!saved) {
        cllm_error_set(err, CLLM_ERR_NOMEM, "rollout: out of memory for %d x %d logits", n, V);
        return -1;
    }
    cllm_status st = CLLM_OK;
    if (prefill_flags & RL_PREFILL_ROWS)
        st = prefill_rows(m, n, first, prompts, n_prompt, saved, err);
    for (int i = 0; i < n && !st && !(prefill_flags & RL_PREFILL_ROWS); i++)
        if (first[i] == i) st = prefill_one(m, i, prompts[i], n_prompt[i], saved + (size_t)i * V, err);
    for (int i = 0; i < n && !st; i++)
        if (first[i] != i) st = cllm_model_kv_copy(m, i, first[i], n_prompt[i], err);
    /* first tokens in slot order, so the sampler's draws do not depend on how prompts were prefilled */
    for (int i = 0; i < n && !st; i++) {
        if ((out[(size_t)i * max_new] = cllm_sampler_sample(s, saved + (size_t)first[i] * V, NULL, NULL, 0)) < 0)
            st = no_finite_logit(i, 0, err);
        count[i] = 1;
        generated++;
    }
    free(saved);
    if (st) return -1;
    for (;;) {
        int a = 0;
        for (int i = 0; i < n; i++) {
            const int32_t *o_i = out + (size_t)i * max_new;
            if (count[i] == max_new || count[i] < 0 || rl_at_turn_end(tok, end, o_i, count[i])) continue;
            slots[a] = i; /* sequence i decodes in slot i */
            next[a] = o_i[count[i] - 1];
            pos[a++] = n_prompt[i] + count[i] - 1;
        }
        if (a == 0) break;
        /* one batched step over the unfinished rows, max_seq rows per call */
        for (int r0 = 0; r0 < a; r0 += o->max_seq) {
            int k = a - r0 < o->max_seq ? a - r0 : o->max_seq;
            const float *logits = NULL;
            if (cllm_model_decode_batch(m, k, slots + r0, next + r0, pos + r0, &logits, err)) return -1;
            for (int r = 0; r < k; r++) {
                int i = slots[r0 + r];
                if ((out[(size_t)i * max_new + count[i]++] = cllm_sampler_sample(s, logits + (size_t)r * V, NULL, NULL, 0)) < 0)
                    return no_finite_logit(i, count[i] - 1, err), -1;
                generated++;
            }
        }
    }
    return (int)generated;
}

/* Text of completion i without its turn end. */
static cllm_status completion_text(const cllm_rl_model *pol, const rl_turn_end *end, const int32_t *ids, int n,
                                   char **text, size_t *len, cllm_error *err) {
    int k = n;
    if (end->n_ids > 0 && k > 0 && ids[k - 1] == end->ids[end->n_ids - 1]) k -= end->n_ids <= k ? end->n_ids : k;
    uint32_t u[n > 0 ? n : 1];
    for (int i = 0; i < k; i++) u[i] = (uint32_t)ids[i];
    cllm_status st = cllm_tokenizer_decode(pol->tok, u, (size_t)k, text, len, err);
    if (st) return st;
    if (end->text) {
        size_t tl = strlen(end->text);
        if (*len >= tl && memcmp(*text + *len - tl, end->text, tl) == 0) (*text)[*len -= tl] = '\0';
    }
    return CLLM_OK;
}

cllm_status rl_rollout_run(const cllm_rl_params *p, cllm_rl_model *pol, cllm_sampler *s, const rl_turn_end *end,
                           const cllm_pref_data *d, const int *ex, int n, cllm_rl_model *rm, rl_rollout *ro,
                           int64_t *tokens, double *seconds, cllm_error *err) {
    memset(ro, 0, sizeof *ro);
    ro->n = n;
    ro->max_new = p->max_new;
    ro->out = malloc((size_t)n * p->max_new * sizeof *ro->out);
    ro->count = malloc((size_t)n * sizeof *ro->count);
    ro->score = malloc((size_t)n * sizeof *ro->score);
    if (!ro->out || !ro->count || !ro->score) {
        rl_rollout_free(ro);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "rollout: out of memory");
    }
    const int32_t **prompts = calloc((size_t)n, sizeof *prompts);
    int *np = calloc((size_t)n, sizeof *np);
    cllm_rl_seq *seqs = malloc((size_t)n * sizeof *seqs);
    if (!prompts || !np || !seqs) {
        free(prompts);
        free(np);
        free(seqs);
        rl_rollout_free(ro);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "rollout: out of memory");
    }
    for (int i = 0; i < n; i++) {
        prompts[i] = d->items[ex[i]].prompt;
        np[i] = d->items[ex[i]].n_prompt;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int got = rl_sample_batch(pol->model, s, pol->tok, end, n, prompts, np, p->max_new, RL_PREFILL_SHARE | RL_PREFILL_ROWS, ro->out, ro->count, err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *seconds += (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    cllm_status st = CLLM_OK;
    if (got < 0) st = err->status ? err->status : CLLM_ERR_INTERNAL;
    else *tokens += got;
    for (int i = 0; i < n && !st; i++)
        seqs[i] = (cllm_rl_seq){prompts[i], ro->out + (size_t)i * p->max_new, np[i], ro->count[i]};
    if (!st) st = cllm_rl_batch_build(seqs, n, cllm_model_get_options(pol->model)->max_seq, &ro->batch, err);
    if (!st && p->vreward) {
        for (int i = 0; i < n && !st; i++) {
            char *text = NULL;
            size_t len = 0;
            st = completion_text(pol, end, seqs[i].completion, seqs[i].n_completion, &text, &len, err);
            if (!st) ro->score[i] = cllm_vreward_score(p->vreward, text, len, d->items[ex[i]].answer);
            free(text);
        }
    } else if (!st) {
        st = rl_reward_scores(rm, &ro->batch, ro->score, err);
    }
    /* a reply cut off by max_new is outside what the reward model saw */
    for (int i = 0; i < n && !st && p->missing_eos_penalty > 0; i++)
        if (!rl_at_turn_end(pol->tok, end, seqs[i].completion, seqs[i].n_completion))
            ro->score[i] -= p->missing_eos_penalty;
    free(prompts);
    free(np);
    free(seqs);
    if (st) rl_rollout_free(ro);
    return st;
}

cllm_sampler *rl_rollout_sampler(const cllm_rl_params *p, const cllm_rl_model *pol, int64_t step, cllm_error *err) {
    cllm_sampler_params sp = cllm_sampler_default_params();
    sp.temperature = p->temperature;
    sp.top_k = 0;
    sp.top_p = 1.0f;
    sp.min_p = 0.0f;
    sp.seed = p->seed ^ (CLLM_GOLDEN_GAMMA * (uint64_t)(step + 1)); /* golden-ratio stride per step */
    return cllm_sampler_create(&sp, cllm_model_get_config(pol->model)->vocab_size, err);
}

/* The policy, reference and reward model with n rows of max_seq tokens. */
static cllm_status run_models(const cllm_rl_params *p, int n, int max_seq, cllm_rl_model *pol, cllm_rl_model *ref,
                              cllm_rl_model *rm, cllm_error *err) {
    memset(pol, 0, sizeof *pol);
    memset(ref, 0, sizeof *ref);
    memset(rm, 0, sizeof *rm);
    cllm_model_options o = cllm_model_default_options();
    o.max_batch = n;
    o.max_seq = max_seq;
    o.training = 1;
    o.kv_slots = n;
    cllm_status st = cllm_rl_model_load(p->model_path, &o, 0, pol, err);
    if (st) return st;
    o.max_seq = cllm_model_get_options(pol->model)->max_seq;
    o.training = 0;
    o.kv_slots = 0;
    if ((st = cllm_rl_model_load(p->ref_path ? p->ref_path : p->model_path, &o, 0, ref, err))) goto fail;
    if (p->reward_path && (st = cllm_rl_model_load(p->reward_path, &o, 2, rm, err))) goto fail;
    if ((st = cllm_rl_check_same_shape(cllm_model_get_config(pol->model), cllm_model_get_config(ref->model),
                                       "reference model", err)))
        goto fail;
    if (rm->model && cllm_tokenizer_hash(rm->tok) != cllm_tokenizer_hash(pol->tok)) {
        st = cllm_error_set(err, CLLM_ERR_ARG, "reward model %s uses a different tokenizer than the policy %s",
                            p->reward_path, p->model_path);
        goto fail;
    }
    /* Score completions under the distribution they were sampled from
     * (softmax(logits / T)), for the policy's ratios and the reference's KL
     * alike, as TRL does; greedy rollouts (T = 0) keep the raw logits. */
    if (p->temperature > 0 && ((st = cllm_model_set_logit_temperature(pol->model, p->temperature, err)) ||
                               (st = cllm_model_set_logit_temperature(ref->model, p->temperature, err))))
        goto fail;
    return CLLM_OK;
fail:
    cllm_rl_model_free(pol);
    cllm_rl_model_free(ref);
    cllm_rl_model_free(rm);
    return st;
}

cllm_status rl_load_run(const char *command, const cllm_rl_params *p, int n, cllm_rl_model *pol,
                        cllm_rl_model *ref, cllm_rl_model *rm, cllm_pref_data *data, int *max_T, cllm_error *err) {
    cllm_model_file_params fp = cllm_model_file_default_params();
    fp.load_model = 0; /* the tokenizer and template the prompts need; no model yet */
    cllm_model_file f;
    cllm_status st = cllm_model_file_open(p->model_path, &fp, &f, err);
    if (st) return st;
    const int context = f.config.context_length;
    cllm_pref_load_params lp = {1, context - p->max_new};
    if (lp.max_tokens < 2)
        st = cllm_error_set(err, CLLM_ERR_ARG, "%s: --max-new %d leaves no room for a prompt in the %d-token context",
                            command, p->max_new, context);
    else
        st = cllm_pref_data_load(p->data_path, f.tok, f.chat_template, &lp, data, err);
    cllm_model_file_close(&f);
    if (st) return st;
    int longest = 0;
    for (int i = 0; i < data->n; i++)
        if (data->items[i].n_prompt > longest) longest = data->items[i].n_prompt;
    *max_T = longest + p->max_new < context ? longest + p->max_new : context; /* longer prompts were refused */
    return run_models(p, n, *max_T, pol, ref, rm, err);
}
