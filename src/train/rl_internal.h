/*
 * rl_internal.h: helpers shared by the preference-tuning runs in src/train/
 * (reward.c, dpo.c, ppo.c, grpo.c); not public API.
 */
#ifndef CLLM_RL_INTERNAL_H
#define CLLM_RL_INTERNAL_H

#include <stdarg.h>

#include "cllm/train/optim.h"
#include "cllm/train/rlhf.h"
#include "harness.h"
#include "cllm/core/rng.h"
#include "cllm/infer/sampler.h"

/* ---- the run on the harness (rl_models.c) ---- */

#define RL_MAX_NONFINITE 5 /* non-finite steps in a row before a run stops */

/* Harness settings from p: run directory, resume, checkpoints, stop flag,
 * log, a constant learning rate over p->steps; checkpoint weights are the
 * optimizers' blocks (the harness's "params" file), write_final(ctx) the
 * model at the end (through rl_model_save, which names it: th_describe with
 * task). Then locks an existing run directory. */
cllm_status rl_run_begin(th_run *h, const char *name, const char *task, const cllm_rl_params *p,
                         cllm_ckpt_model_writer write_final, void *ctx, cllm_error *err);
/* cllm_rl_model_save with the run's general.name and general.description. */
cllm_status rl_model_save(const th_run *h, const cllm_rl_model *rm, const char *path, cllm_error *err);
/* AdamW hyper-parameters of a run (p->weight_decay on matrices). */
cllm_adamw_params rl_adamw(const cllm_rl_params *p);
/* "kind=...\nsteps=...\n..." of the settings every run has, into out[cap]. */
int rl_config_common(const char *name, const cllm_rl_params *p, char *out, size_t cap);
/* FNV-1a over every example's ids and answer: the run's data identity. */
uint64_t rl_data_fingerprint(const cllm_pref_data *d);
/* After th_loop: the result fields, RUN_DIR/model.gguf and res->summary
 * (metric: first_metric / last_metric; held-out accuracies and rollout
 * counts as extras). */
cllm_status rl_run_finish(th_run *h, const char *title, cllm_rl_result *res, cllm_error *err);

/* printf-style line to p->log when set. */
void rl_log(const cllm_rl_params *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Fisher-Yates shuffle of idx[n] with rng. */
void rl_shuffle(int *idx, int n, cllm_rng *rng);
/* A new array [n] of 0..n-1 shuffled with rng (owned by the caller); NULL when out of memory. */
int *rl_order_new(int n, cllm_rng *rng);

/* The examples of a run in a shuffled order: idx[0..n) (borrowed) is drawn
 * from in turn and reshuffled with rng whenever it runs out. pos = n makes
 * the first draw shuffle; pos = 0 starts from idx as it is. */
typedef struct {
    int *idx;      /* [n] example ids, borrowed */
    int n, pos;
    cllm_rng *rng; /* borrowed */
    uint64_t shuffles; /* reshuffles so far */
} rl_cursor;

int rl_cursor_next(rl_cursor *c);
/* The cursor's position into a checkpoint (loader.epoch = reshuffles,
 * loader.position = pos, loader.rng for the check on resume). */
void rl_cursor_snapshot(const rl_cursor *c, cllm_train_state *s);
/* Resume: replays the checkpoint's reshuffles on a cursor built as at the
 * start of the run (same seed, same initial shuffle), so idx and the RNG
 * are where they were; an error when the replayed RNG differs. */
cllm_status rl_cursor_restore(rl_cursor *c, const cllm_train_state *s, cllm_error *err);
/* Before th_loop: th_begin with the run's settings (config), data and
 * tokenizer identity; on resume the example cursor replays to the
 * checkpoint; res->start_step is the first step this process runs. */
cllm_status rl_run_start(th_run *h, const char *config, const cllm_pref_data *d, const cllm_tokenizer *tok,
                         rl_cursor *cursor, cllm_rl_result *res, cllm_error *err);

/* The preference pairs of reward and DPO (p->data_path; each pair within
 * max_T tokens, with m's tokenizer and template): the last val_frac of them
 * held out (*n_val), the rest for training (*n_train, an error when none). */
cllm_status rl_pairs_load(const char *command, const cllm_rl_params *p, const cllm_rl_model *m, int max_T,
                          cllm_pref_data *data, int *n_train, int *n_val, cllm_error *err);

/* Preference pairs d->items[idx[0..k)] as one batch: rows 0..k-1 the
 * chosen completions, rows k..2k-1 the rejected ones (reward.c, dpo.c). */
cllm_status rl_pair_batch(const cllm_pref_data *d, const int *idx, int k, int max_T, cllm_rl_batch *b,
                          cllm_error *err);

/* Ids that end an assistant turn for the run's template, or, when the
 * template ends turns in text (PLAIN without an end-of-text token), the text. */
typedef struct {
    int n_ids;
    int32_t ids[2];
    const char *text; /* NULL when n_ids > 0 */
} rl_turn_end;

void rl_turn_end_init(rl_turn_end *e, const cllm_tokenizer *tok, cllm_chat_template tmpl);
/* 1 when ids[0..n) end with the turn end (its last id, or its text). */
int rl_at_turn_end(const cllm_tokenizer *tok, const rl_turn_end *e, const int32_t *ids, int n);

/* Samples completions for n prompts at once, sequence i in KV slot i of m
 * (rl_rollout.c), with sampler s, at most max_new tokens each, stopping
 * after a turn end (kept). Prefill, by prefill_flags: RL_PREFILL_SHARE: a
 * repeated prompt (a GRPO group) is prefilled once and the other slots get a
 * copy of its cache (cllm_model_kv_copy); RL_PREFILL_ROWS: the distinct
 * prompts are prefilled together (cllm_model_decode_rows, one GEMM over all
 * their tokens); 0: each slot prefills its own. Then one batched decode step
 * per token over the unfinished sequences (cllm_model_decode_batch). The
 * first tokens are drawn in slot order from each prompt's logits, so SHARE
 * does not change the samples (ROWS only by float rounding). out[n,max_new]
 * receives the ids and count[n] how many (>= 1). Returns the tokens sampled,
 * or -1 with err filled. */
enum { RL_PREFILL_SHARE = 1, RL_PREFILL_ROWS = 2 };
int rl_sample_batch(cllm_model *m, cllm_sampler *s, const cllm_tokenizer *tok, const rl_turn_end *end, int n,
                    const int32_t *const *prompts, const int *n_prompt, int max_new, int prefill_flags, int32_t *out,
                    int *count, cllm_error *err);

/* Scalar-head read-out of the hidden state at (row, t) of the last forward of
 * rm->model (whose batch has T columns). */
float rl_head_at(const cllm_rl_model *rm, int T, int row, int t);

/* Scores completions with a reward model: r[B] for the batch (its own forward). */
cllm_status rl_reward_scores(cllm_rl_model *rm, const cllm_rl_batch *b, float *r, cllm_error *err);

/* ---- rollouts (rl_rollout.c) ---- */
typedef struct {
    int n, max_new;
    int32_t *out;        /* [n, max_new] sampled ids */
    int *count;          /* [n] ids per completion */
    float *score;        /* [n] reward of each completion */
    cllm_rl_batch batch; /* prompt + completion rows */
} rl_rollout;

/* Samples a completion for each example ex[0..n) (repeats allowed: GRPO
 * groups) with the policy's KV slots, scores it with the verifiable reward
 * p->vreward (completion text without its turn end, the example's answer) or
 * the reward model rm, and builds the batch. *tokens += tokens sampled,
 * *seconds += wall time of the sampling alone (prefill + decode). */
cllm_status rl_rollout_run(const cllm_rl_params *p, cllm_rl_model *pol, cllm_sampler *s, const rl_turn_end *end,
                           const cllm_pref_data *d, const int *ex, int n, cllm_rl_model *rm, rl_rollout *ro,
                           int64_t *tokens, double *seconds, cllm_error *err);
void rl_rollout_free(rl_rollout *ro);
/* One training step's rollouts for PPO and GRPO: rl_rollout_run with the
 * sampler of `step` (rl_rollout_sampler); *tokens = tokens sampled by it,
 * res->rollout_tokens and *seconds accumulate; *mean = the mean score, also
 * res->last_metric (and res->first_metric at res->start_step). ro is the
 * caller's to free on success. */
cllm_status rl_rollout_step(const cllm_rl_params *p, cllm_rl_model *pol, const rl_turn_end *end,
                            const cllm_pref_data *d, const int *ex, int n, cllm_rl_model *rm, int64_t step,
                            cllm_rl_result *res, rl_rollout *ro, double *mean, double *tokens, double *seconds,
                            cllm_error *err);

/* The rollout sampler of step `step` (temperature p->temperature, no
 * truncation): seeded from (p->seed, step), so the checkpointed step is its
 * whole RNG state and a resumed run samples what the uninterrupted one did
 * (sampler.h has no RNG state to save). NULL with err filled. */
cllm_sampler *rl_rollout_sampler(const cllm_rl_params *p, const cllm_rl_model *pol, int64_t step, cllm_error *err);
/* PPO's and GRPO's start: the prompts (p->data_path, each leaving max_new
 * tokens of the context for the reply; read with the policy's tokenizer and
 * template alone; `command` names the caller in errors), then the policy
 * (training, kv_slots = n), the reference (same shape, checked) and the
 * reward model when p->reward_path, each with n rows of the longest prompt +
 * max_new tokens (*max_T, at most the context): the training activations
 * grow with the row length squared (attention), and sized for the whole
 * context they were most of a GRPO run's memory. */
cllm_status rl_load_run(const char *command, const cllm_rl_params *p, int n, cllm_rl_model *pol,
                        cllm_rl_model *ref, cllm_rl_model *rm, cllm_pref_data *data, int *max_T, cllm_error *err);

#endif
