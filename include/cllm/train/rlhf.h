/*
 * rlhf.h: preference tuning on the core engine: a Bradley-Terry reward
 * model, DPO, PPO (RLHF) and GRPO, in the file formats TRL users have.
 *
 * Pieces, bottom up:
 *   scalar head      r = w.h + b on a final hidden state (src/layers/scalar_head.c)
 *   preference data  JSONL {"prompt","chosen","rejected"}, strings or message
 *                    lists (TRL's standard and conversational formats), and
 *                    prompt-only JSONL for PPO/GRPO (src/train/pref_data.c)
 *   sequences        prompt+completion token rows packed into a [B,T] batch
 *                    whose targets are the completion tokens only; per-token
 *                    and per-sequence log-probabilities (src/train/logprobs.c)
 *   losses           Bradley-Terry, DPO, PPO (clipped policy and value, GAE),
 *                    GRPO (group-normalised advantages, k3 KL): pure functions
 *                    of small arrays with their gradients, each checked by
 *                    finite differences and against PyTorch
 *   runs             cllm_reward_train, cllm_dpo_train, cllm_ppo_train,
 *                    cllm_grpo_train: the trainers behind `cllm reward|dpo|ppo|grpo`,
 *                    on the training harness (src/train/harness.h) as pretrain
 *                    and SFT are: a run directory checked and locked before
 *                    the first step, checkpoints (weights, AdamW moments, data
 *                    position), a stop request saving and returning, exact
 *                    resume, train.csv (step,loss,val_loss,lr,grad_norm,tokens_per_s)
 *                    and RUN_DIR/model.gguf at the end
 *
 * Legend: B batch rows, T time, C n_embd, V vocab, n tokens or pairs.
 * Errors: cllm_status + cllm_error naming file:line:column / field; nothing
 * here prints to stdout or exits (logs go through a callback).
 */
#ifndef CLLM_RLHF_H
#define CLLM_RLHF_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "cllm/kernels/kernels.h"
#include "cllm/infer/chat_template.h"
#include "cllm/layers/layers.h"
#include "cllm/model/model.h"
#include "cllm/core/status.h"
#include "cllm/train/summary.h"
#include "cllm/tokenizer/tokenizer.h"

/* GGUF tensor names of a scalar head stored next to the model's tensors
 * (llama.cpp's classifier-head prefix; cllm's model loader tolerates "cls."). */
#define CLLM_REWARD_HEAD_W "cls.weight" /* [C] */
#define CLLM_REWARD_HEAD_B "cls.bias"   /* [1] */

/* ---- preference and prompt data -------------------------------------------
 * One example, already rendered to token ids with the chat template:
 * prompt = the prompt messages + the assistant generation header;
 * chosen/rejected = the assistant reply's tokens and the turn's end token(s). */
typedef struct {
    int32_t *prompt;   /* [n_prompt] owned */
    int32_t *chosen;   /* [n_chosen] owned (NULL in prompt-only data) */
    int32_t *rejected; /* [n_rejected] owned (NULL in prompt-only data) */
    int n_prompt, n_chosen, n_rejected;
    char *answer;      /* prompt-only data: the optional "answer" string for
                          verifiable rewards; owned, NULL when absent */
    int line;          /* 1-based line in the file (for messages) */
} cllm_pref_example;

typedef struct {
    cllm_pref_example *items; /* [n] owned */
    int n;
} cllm_pref_data;

typedef struct {
    int prompt_only;   /* 1: PPO/GRPO prompts ({"prompt"[, "answer"]}), 0: preference pairs */
    int max_tokens;    /* prompt + longest completion must fit (the context); >= 2 */
} cllm_pref_load_params;

/* Reads JSONL: blank lines skipped, CRLF and a leading BOM accepted. Each line
 * is an object with "prompt" (a string, or a list of {"role","content"}
 * messages) and, for pairs, "chosen" and "rejected" (a string, or a list
 * holding assistant messages). Errors name file:line:column (JSON syntax) or
 * file:line and the field (missing, wrong type, empty completion, unknown
 * role, identical tokens allowed). A prompt + completion longer than
 * max_tokens is an error giving both counts. */
cllm_status cllm_pref_data_load(const char *path, const cllm_tokenizer *tok, cllm_chat_template tmpl,
                                const cllm_pref_load_params *p, cllm_pref_data *out, cllm_error *err);
/* Same, from a memory buffer; `name` is used in messages. */
cllm_status cllm_pref_data_parse(const char *text, size_t len, const char *name, const cllm_tokenizer *tok,
                                 cllm_chat_template tmpl, const cllm_pref_load_params *p,
                                 cllm_pref_data *out, cllm_error *err);
void cllm_pref_data_free(cllm_pref_data *d); /* accepts NULL and zeroed structs */

/* ---- sequences and log-probabilities ------------------------------------- */

/* A prompt followed by a completion (both borrowed). */
typedef struct {
    const int32_t *prompt, *completion;
    int n_prompt, n_completion; /* n_prompt >= 1, n_completion >= 1 */
} cllm_rl_seq;

/* B rows of prompt+completion, right-padded to T = the longest row.
 * targets[b,t] = token t+1 where that token belongs to the completion, else -1,
 * so a forward with these targets scores exactly the completion tokens. */
typedef struct {
    int B, T;
    int32_t *tokens;  /* [B,T] owned; padding 0 */
    int32_t *targets; /* [B,T] owned */
    int *first;       /* [B] position t of the first completion target (n_prompt - 1) */
    int *count;       /* [B] completion tokens in the row */
    int *last;        /* [B] position of the row's final token (reward read-out) */
} cllm_rl_batch;

/* Owned buffers; free with cllm_rl_batch_free. CLLM_ERR_LIMIT when a row is
 * longer than max_T (naming the row and both lengths). */
cllm_status cllm_rl_batch_build(const cllm_rl_seq *seqs, int B, int max_T, cllm_rl_batch *out,
                                cllm_error *err);
void cllm_rl_batch_free(cllm_rl_batch *b);

/* Forward of the batch and the log-probability of every completion token:
 * tok_logp[B*T] (0 outside completions); seq_logp[B] (may be NULL) the sums
 * in double. */
cllm_status cllm_rl_logprobs(cllm_model *m, const cllm_rl_batch *b, float *tok_logp, double *seq_logp,
                             cllm_error *err);

/* Mean entropy (nats) of the model's next-token distribution over the
 * completion positions of the last forward of this batch (logits intact). */
double cllm_rl_entropy(const cllm_model *m, const cllm_rl_batch *b);

/* CLLM_ERR_ARG unless the two configs describe the same shapes; the message
 * names both (e.g. "reference model (L=2, C=64, NH=4, V=256, ...) does not
 * match the policy (L=4, ...)"). */
cllm_status cllm_rl_check_same_shape(const cllm_model_config *policy, const cllm_model_config *ref,
                                     const char *what, cllm_error *err);

/* ---- losses -----------------------------------------------------------------
 * All are means over the n items given; gradients are of that mean. */

/* Bradley-Terry: mean softplus(-(rc - rr)) = -log sigmoid(rc - rr).
 * d_chosen/d_rejected [n] (OVERWRITTEN) may be NULL. *n_correct (may be NULL)
 * counts rc > rr. */
double cllm_bt_loss(const float *r_chosen, const float *r_rejected, int n, float *d_chosen,
                    float *d_rejected, int *n_correct);

typedef struct {
    double loss;
    double reward_chosen, reward_rejected; /* mean beta*(pi - ref) of each side */
    double margin;                         /* mean chosen - rejected reward */
    double accuracy;                       /* fraction with chosen reward > rejected */
} cllm_dpo_stats;

/* DPO (Rafailov et al. 2023): z = beta*((pc - rc) - (pr - rr)),
 * loss = mean softplus(-z). Sequence log-probs in double; gradients with
 * respect to pc and pr (OVERWRITTEN, may be NULL). Never NaN for finite
 * inputs (softplus and sigmoid written for either sign of z). */
double cllm_dpo_loss(const double *pi_c, const double *pi_r, const double *ref_c, const double *ref_r,
                     int n, double beta, double *d_pi_c, double *d_pi_r, cllm_dpo_stats *st);

/* GAE (Schulman et al. 2016) over one sequence of T steps with terminal
 * value 0: delta_t = r_t + gamma V_{t+1} - V_t, A_t = delta_t + gamma lam A_{t+1},
 * returns_t = A_t + V_t. adv/ret [T] OVERWRITTEN. */
void cllm_gae(const float *rewards, const float *values, int T, float gamma, float lam, float *adv,
              float *ret);

typedef struct {
    double policy_loss, value_loss;
    double clip_frac;  /* fraction of tokens whose ratio was clipped */
    double approx_kl;  /* mean (ratio - 1) - log ratio: KL(old || new) estimate */
} cllm_ppo_stats;

/* Clipped surrogate (PPO, Schulman et al. 2017), mean over n tokens:
 * max(-A r, -A clip(r, 1-eps, 1+eps)), r = exp(logp - old_logp).
 * dlogp [n] OVERWRITTEN (may be NULL). Fills policy_loss, clip_frac, approx_kl. */
double cllm_ppo_policy_loss(const float *logp, const float *old_logp, const float *adv, int n, float eps,
                            float *dlogp, cllm_ppo_stats *st);
/* Clipped value loss 0.5 * mean max((v - R)^2, (v_old + clip(v - v_old, +-eps) - R)^2);
 * dv [n] OVERWRITTEN (may be NULL). Fills value_loss. */
double cllm_ppo_value_loss(const float *v, const float *v_old, const float *ret, int n, float eps,
                           float *dv, cllm_ppo_stats *st);

/* GRPO (Shao et al. 2024) advantages: each group of group_size rewards is
 * normalised to (r - mean) / (std + 1e-4) (population std); adv [n_groups*group_size]. */
void cllm_grpo_advantages(const float *rewards, int n_groups, int group_size, float *adv);

typedef struct {
    double loss, kl, clip_frac;
} cllm_grpo_stats;

/* Per-token GRPO objective, mean over n tokens:
 * clipped surrogate (as PPO) + beta * k3, k3 = exp(ref - logp) - (ref - logp) - 1
 * (an unbiased, non-negative estimate of KL(pi || ref)). dlogp OVERWRITTEN. */
double cllm_grpo_loss(const float *logp, const float *old_logp, const float *ref_logp, const float *adv,
                      int n, float eps, float beta, float *dlogp, cllm_grpo_stats *st);

/* ---- verifiable rewards (GRPO) -------------------------------------------- */
typedef enum {
    CLLM_VREWARD_EXACT = 0, /* completion text, trimmed, equals the answer */
    CLLM_VREWARD_NUMBER,    /* the first number in the completion equals the answer's number */
    CLLM_VREWARD_REGEX,     /* the completion matches a PCRE2 pattern (answer unused) */
    CLLM_VREWARD_TOOL_CALL, /* the completion's first tool call (infer/tools.h) is the answer's call:
                               {"name": ..., "arguments": {...}}, arguments equal as JSON */
    CLLM_VREWARD_COUNT
} cllm_vreward_kind;

int cllm_vreward_parse(const char *name); /* "exact", "number", "regex"; -1 when unknown */

typedef struct cllm_vreward cllm_vreward;
/* pattern: required for REGEX (compile errors name the offset), else NULL. */
cllm_status cllm_vreward_create(cllm_vreward_kind kind, const char *pattern, cllm_vreward **out,
                                cllm_error *err);
void cllm_vreward_destroy(cllm_vreward *v);
/* 1.0 or 0.0. answer may be NULL (then EXACT/NUMBER give 0). */
float cllm_vreward_score(const cllm_vreward *v, const char *completion, size_t len, const char *answer);

/* ---- models for a run (src/train/rl_models.c) ------------------------------ */

typedef struct {
    cllm_model *model;            /* owned */
    cllm_tokenizer *tok;          /* owned */
    cllm_chat_template tmpl;      /* owned (cllm_rl_model_free) */
    float *head_w;                /* [C+1] owned: reward/value head weights, then its bias at
                                     [C]; NULL when none */
} cllm_rl_model;

/* Loads a GGUF: the model (with opts), its tokenizer (file metadata, or bytes
 * for V = 256), its chat template and, with want_head, the scalar head
 * (error when absent if want_head == 2, zero-initialised when absent if 1). */
cllm_status cllm_rl_model_load(const char *path, const cllm_model_options *opts, int want_head,
                               cllm_rl_model *out, cllm_error *err);
void cllm_rl_model_free(cllm_rl_model *rm);
/* Writes model + tokenizer + template (+ the head when head_w) atomically. */
cllm_status cllm_rl_model_save(const cllm_rl_model *rm, const char *path, cllm_error *err);

/* ---- runs --------------------------------------------------------------------- */

typedef void (*cllm_rl_log_fn)(void *ctx, const char *line);

typedef struct {
    const char *model_path;  /* policy / base model GGUF */
    const char *ref_path;    /* DPO/PPO/GRPO: reference GGUF; NULL = a copy of the policy */
    const char *reward_path; /* PPO/GRPO: reward model GGUF (cllm reward); NULL for GRPO with vreward */
    const char *data_path;   /* JSONL */
    const char *run_dir;     /* run directory (required): lock, ckpt-*, train.csv, model.gguf */
    int resume;              /* 1: continue from the newest checkpoint of run_dir */
    int progress;            /* 1: a progress bar with ETA on stderr instead of a log line every
                                5-10 steps (cllm's commands: when stderr is a terminal) */
    int save_every;          /* checkpoint every N steps; 0 = at the end and on a stop only */
    int keep;                /* complete checkpoints kept (>= 1) */
    cllm_precision precision; /* matrix products: fp32 or bf16 (docs/PRECISION.md) */
    int precision_change;    /* 1: a resume may switch precision */
    volatile sig_atomic_t *stop_flag; /* set (by a signal handler): finish the step, save, return */
    int steps;               /* optimizer steps (>= 1) */
    int batch;               /* pairs (reward/DPO) or prompts (PPO/GRPO) per step */
    float lr;
    float weight_decay;
    float clip_grad;         /* max global grad norm, 0 = off */
    uint64_t seed;
    float val_frac;          /* reward/DPO: held-out fraction of pairs */
    int threads;             /* 0: OpenMP default */
    /* DPO */
    float beta;              /* DPO beta; GRPO KL coefficient */
    float rpo_alpha;         /* DPO: weight of the chosen replies' mean token NLL added to the
                                loss (TRL's rpo_alpha, Pang et al. 2024); 0 = plain DPO */
    /* PPO / GRPO */
    int max_new;             /* completion tokens per rollout */
    float temperature;       /* rollout sampling temperature */
    int group;               /* GRPO: completions per prompt */
    int epochs;              /* PPO/GRPO: optimisation epochs per rollout batch */
    float clip_eps;          /* policy ratio clip */
    float kl_coef;           /* PPO: per-token KL penalty coefficient */
    float gamma, lam;        /* PPO GAE */
    float vf_coef, vf_clip;  /* PPO value loss weight and clip */
    float missing_eos_penalty; /* PPO/GRPO: subtracted from the score of a completion that
                                  does not end its turn within max_new (TRL's option); 0 = off */
    const cllm_vreward *vreward; /* GRPO: verifiable reward (borrowed) or NULL */
    cllm_rl_log_fn log;      /* may be NULL */
    void *log_ctx;
} cllm_rl_params;

cllm_rl_params cllm_rl_default_params(void);

typedef struct {
    double first_metric, last_metric; /* at this process's first and last step (NaN: none): reward, DPO:
                                         the batch's pair accuracy; PPO/GRPO: the rollouts' mean reward */
    double val_accuracy;              /* reward/DPO held-out pairwise accuracy at the end (-1 if none) */
    double val_accuracy_before;       /* reward: the same before this process's first step (-1 if none) */
    int steps_done;                   /* steps completed in the whole run (resumed ones included) */
    int start_step;                   /* 0, or the step this process resumed at */
    double rollout_tokens_per_s;      /* PPO/GRPO sampling speed */
    int64_t rollout_tokens;           /* sampled by this process */
    char output_path[4096];           /* RUN_DIR/model.gguf */
    char reason_text[256];            /* why the run stopped ("completed N steps", a signal, ...) */
    cllm_train_summary summary;       /* the fields above in the shape every trainer prints (summary.h) */
} cllm_rl_result;

cllm_status cllm_reward_train(const cllm_rl_params *p, cllm_rl_result *res, cllm_error *err);
cllm_status cllm_dpo_train(const cllm_rl_params *p, cllm_rl_result *res, cllm_error *err);
cllm_status cllm_ppo_train(const cllm_rl_params *p, cllm_rl_result *res, cllm_error *err);
cllm_status cllm_grpo_train(const cllm_rl_params *p, cllm_rl_result *res, cllm_error *err);

#endif
