/*
 * test_rlhf_e2e.c: the whole post-training pipeline on a task with a
 * checkable answer: single-digit addition "a+b" -> "c" (c <= 9), byte-level
 * vocabulary, PLAIN chat template.
 *
 *   base   a randomly initialised tiny model (accuracy ~0)
 *   SFT    a short pre-train on rendered examples (the supervised stage;
 *          deliberately short so accuracy is partial)
 *   then, each starting from the SFT model:
 *   DPO    on pairs (correct answer chosen, a wrong one rejected)
 *   PPO    against a Bradley-Terry reward model trained on the same pairs
 *          plus one malformed rejected reply per prompt
 *   GRPO   with the built-in "number" verifiable reward
 *
 * Accuracy is greedy exact-match of the reply over all 55 prompts, printed
 * for every stage. Asserted: SFT beats the base; DPO (with TRL's rpo_alpha),
 * PPO and GRPO each beat SFT; the reward model's held-out accuracy.
 *
 * What made PPO and GRPO learn here (each was found by measurement):
 *  - the reward model's learning rate: at 1e-3 its training was unstable
 *    (with these pairs the correct reply ranked first among the ten digits
 *    for only 42% of prompts; adding the malformed pairs below, it collapsed
 *    to one score for every reply, held-out accuracy 0.50); at 3e-4 it
 *    ranks the correct reply first for ~91% of prompts;
 *  - a reward model that only ever saw well-formed replies scored
 *    format-breaking ones ("c" cut off, "cc", "### ...") above the correct
 *    answer, and PPO with a weak KL learned to emit "## "; one malformed
 *    rejected reply per prompt (its own pairs file) closes that hole;
 *  - PPO/GRPO learning rates (5e-5 / 1e-4 moved the policy too little in
 *    20-30 steps), TRL-like KL coefficients (0.05 / 0.04 instead of 1.0 /
 *    0.1), rollouts at temperature 1 (more varied samples than 0.7, so
 *    GRPO's groups differ), several epochs per batch, and GRPO's
 *    missing-eos penalty so the number reward only pays replies that end
 *    their turn.
 * Everything is seeded; models are tiny (2 layers, C=64) to fit ~1 minute
 * on 2 cores.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cllm/model/gguf_io.h"
#include "cllm/train/rlhf.h"
#include "cllm/core/rng.h"
#include "cllm/train/pretrain.h"
#include "test.h"

/* Stage lengths, tuned for ~1 minute on two shared cores. Under the
 * sanitizers (make SAN=1, ~10x slower) the same pipeline runs with short
 * stages for memory safety only, and the accuracy comparisons are skipped. */
#if defined(__SANITIZE_ADDRESS__)
#define E2E_QUICK 1
#define SFT_STEPS 20
#define DPO_STEPS 4
#define RM_STEPS 4
#define PPO_STEPS 2
#define GRPO_STEPS 2
#else
#define E2E_QUICK 0
#define SFT_STEPS 300
#define DPO_STEPS 60
#define RM_STEPS 200
#define PPO_STEPS 20
#define GRPO_STEPS 30
#endif

static char dir[256];

static void path(char *out, const char *name) { snprintf(out, 512, "%s/%s", dir, name); }

static void write_file(const char *name, const char *text) {
    char p[512];
    path(p, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
}

/* Greedy accuracy of a model over every a+b <= 9. */
static double accuracy(const char *model_path) {
    cllm_rl_model rm;
    cllm_error err;
    cllm_model_options o = cllm_model_default_options();
    o.kv_slots = 1;
    o.max_seq = 32;
    if (cllm_rl_model_load(model_path, &o, 0, &rm, &err)) {
        CHECK(0, "%s", err.msg);
        return -1;
    }
    const int V = cllm_model_get_config(rm.model)->vocab_size;
    int correct = 0, total = 0;
    for (int a = 0; a < 10; a++)
        for (int b = 0; a + b < 10; b++) {
            char prompt[64];
            snprintf(prompt, sizeof prompt, "### User:\n%d+%d\n\n### Assistant:\n", a, b);
            int n = (int)strlen(prompt);
            int32_t ids[64];
            for (int i = 0; i < n; i++) ids[i] = (unsigned char)prompt[i];
            const float *logits;
            cllm_model_kv_reset(rm.model, 0);
            cllm_model_decode(rm.model, 0, ids, n, 0, 0, &logits, &err);
            char out[4];
            for (int k = 0; k < 3; k++) {
                int best = 0;
                for (int v = 1; v < V; v++) best = logits[v] > logits[best] ? v : best;
                out[k] = (char)best;
                int32_t t = best;
                if (k < 2) cllm_model_decode(rm.model, 0, &t, 1, n + k, 0, &logits, &err);
            }
            /* reply "c" then the PLAIN turn end "\n\n" */
            correct += out[0] == '0' + a + b && out[1] == '\n' && out[2] == '\n';
            total++;
        }
    cllm_rl_model_free(&rm);
    return (double)correct / total;
}

static void log_line(void *ctx, const char *line) {
    (void)ctx;
    (void)line;
}

static void test_rlhf_e2e_pipeline_accuracy(void) {
    cllm_rng rng;
    cllm_rng_seed(&rng, 5);
    cllm_rng bad_rng; /* its own stream, so the DPO pairs do not depend on it */
    cllm_rng_seed(&bad_rng, 7);
    size_t cap = 1 << 16, len = 0;
    char *sft = malloc(cap), *pairs = malloc(cap), *prompts = malloc(cap), *rm_pairs = malloc(cap);
    size_t lp = 0, lq = 0, lr = 0;
    for (int i = 0; i < 600; i++) {
        int a = (int)cllm_rng_below(&rng, 10), b = (int)cllm_rng_below(&rng, 10 - (uint64_t)a);
        len += (size_t)snprintf(sft + len, cap - len, "### User:\n%d+%d\n\n### Assistant:\n%d\n\n", a, b, a + b);
    }
    for (int a = 0; a < 10; a++)
        for (int b = 0; a + b < 10; b++) {
            for (int k = 0; k < 3; k++) {
                int wrong = (a + b + 1 + (int)cllm_rng_below(&rng, 9)) % 10;
                lp += (size_t)snprintf(pairs + lp, cap - lp, "{\"prompt\":\"%d+%d\",\"chosen\":\"%d\",\"rejected\":\"%d\"}\n",
                                       a, b, a + b, wrong);
            }
            /* the reward model also learns that a malformed reply loses to the answer */
            char bad[16];
            switch (cllm_rng_below(&bad_rng, 5)) {
            case 0: snprintf(bad, sizeof bad, "%d%d", a + b, (int)cllm_rng_below(&bad_rng, 10)); break;
            case 1: snprintf(bad, sizeof bad, "###"); break;
            case 2: snprintf(bad, sizeof bad, "%d+", a + b); break;
            case 3: snprintf(bad, sizeof bad, "### User:"); break;
            default: snprintf(bad, sizeof bad, "x"); break;
            }
            lr += (size_t)snprintf(rm_pairs + lr, cap - lr, "{\"prompt\":\"%d+%d\",\"chosen\":\"%d\",\"rejected\":\"%s\"}\n",
                                   a, b, a + b, bad);
            lq += (size_t)snprintf(prompts + lq, cap - lq, "{\"prompt\":\"%d+%d\",\"answer\":%d}\n", a, b, a + b);
        }
    write_file("sft.txt", sft);
    write_file("pairs.jsonl", pairs);
    write_file("prompts.jsonl", prompts);
    memcpy(rm_pairs + lr, pairs, lp + 1); /* the DPO pairs follow the malformed ones */
    write_file("rm_pairs.jsonl", rm_pairs);
    free(rm_pairs);
    free(sft);
    free(pairs);
    free(prompts);

    char data_path[512], run_dir[512], sft_model[512], base_model[512];
    path(data_path, "sft.txt");
    path(run_dir, "sft");
    path(base_model, "base.gguf");
    cllm_error err;
    /* SFT stage (a short pre-train on rendered chat examples) */
    cllm_pretrain_params pp = cllm_pretrain_default_params();
    const char *paths[1] = {data_path};
    pp.data_paths = paths;
    pp.n_data = 1;
    pp.val_frac = 0.05;
    cllm_model_preset("tiny-gpt2", &pp.model, &err);
    pp.model.n_layer = 2;
    pp.model.n_head = 4;
    pp.model.n_kv_head = 4;
    pp.model.n_embd = 64;
    pp.model.ffn_hidden = 128;
    pp.model.context_length = 48;
    pp.model.dropout = 0;
    pp.B = 16;
    pp.T = 48;
    pp.total_batch = 16 * 48;
    pp.steps = SFT_STEPS;
    pp.lr = 3e-3f;
    pp.min_lr = 3e-4f;
    pp.warmup = 10;
    pp.eval_every = 0;
    pp.run_dir = run_dir;
    pp.keep = 1;
    pp.progress = 0;
    pp.peak_gflops = -1;
    pp.seed = 1;
    pp.log = log_line;
    cllm_pretrain_result pr;
    if (cllm_pretrain_run(&pp, &pr, &err) != CLLM_OK) {
        CHECK(0, "sft: %s", err.msg);
        return;
    }
    snprintf(sft_model, sizeof sft_model, "%s", pr.weights_path);
    /* the base: same shape, random weights */
    {
        cllm_rl_model rm;
        if (cllm_rl_model_load(sft_model, NULL, 0, &rm, &err) == CLLM_OK) {
            cllm_model_init_weights(rm.model, 99);
            CHECK(cllm_rl_model_save(&rm, base_model, &err) == CLLM_OK, "%s", err.msg);
            cllm_rl_model_free(&rm);
        }
    }
    double acc_base = accuracy(base_model), acc_sft = accuracy(sft_model);
    printf("e2e accuracy: base %.3f\n", acc_base);
    printf("e2e accuracy: sft  %.3f\n", acc_sft);
    fflush(stdout);
    CHECK(E2E_QUICK || acc_sft > acc_base, "SFT raises accuracy: %.3f -> %.3f", acc_base, acc_sft);

    char pairs_path[512], rm_pairs_path[512], prompts_path[512], rm_path[512], out[512];
    path(pairs_path, "pairs.jsonl");
    path(rm_pairs_path, "rm_pairs.jsonl");
    path(prompts_path, "prompts.jsonl");
    path(rm_path, "rm.gguf");
    cllm_rl_params p = cllm_rl_default_params();
    p.model_path = sft_model;
    p.data_path = pairs_path;
    cllm_rl_result res;
    char run[600];
    /* the run directory o.run; o becomes its final weights, o.run/model.gguf */
#define RUN_DIR_OF(o) (snprintf(run, sizeof run, "%s.run", (o)), p.run_dir = run, snprintf((o), 512, "%s/model.gguf", run))

    /* DPO */
    path(out, "dpo.gguf");
    p.steps = DPO_STEPS;
    p.batch = 8;
    p.lr = 2e-4f;
    p.beta = 0.1f;
    p.rpo_alpha = 1.0f; /* plain DPO lowers the shared turn-end tokens too and breaks the format */
    p.val_frac = 0;
    RUN_DIR_OF(out);
    CHECK(cllm_dpo_train(&p, &res, &err) == CLLM_OK, "dpo: %s", err.msg);
    double acc_dpo = accuracy(out);
    printf("e2e accuracy: dpo  %.3f (train pair accuracy %.3f -> %.3f)\n", acc_dpo, res.first_metric, res.last_metric);
    fflush(stdout);
    CHECK(E2E_QUICK || acc_dpo > acc_sft, "DPO raises accuracy: %.3f -> %.3f", acc_sft, acc_dpo);

    /* reward model, then PPO */
    p.data_path = rm_pairs_path;
    p.steps = RM_STEPS;
    p.lr = 3e-4f;
    p.val_frac = 0.2f;
    RUN_DIR_OF(rm_path);
    CHECK(cllm_reward_train(&p, &res, &err) == CLLM_OK, "reward: %s", err.msg);
    printf("e2e reward model: held-out pairwise accuracy %.3f -> %.3f\n", res.val_accuracy_before, res.val_accuracy);
    CHECK(E2E_QUICK || res.val_accuracy > 0.7, "reward model held-out accuracy %.3f > 0.7", res.val_accuracy);
    path(out, "ppo.gguf");
    p.data_path = prompts_path;
    p.reward_path = rm_path;
    p.steps = PPO_STEPS;
    p.batch = 16;
    p.max_new = 4;
    p.lr = 2e-4f;
    p.kl_coef = 0.05f;
    p.epochs = 4;
    p.missing_eos_penalty = 5.0f;
    p.temperature = 1.0f;
    RUN_DIR_OF(out);
    CHECK(cllm_ppo_train(&p, &res, &err) == CLLM_OK, "ppo: %s", err.msg);
    double acc_ppo = accuracy(out);
    printf("e2e accuracy: ppo  %.3f (mean reward-model score %.3f -> %.3f)\n", acc_ppo, res.first_metric,
           res.last_metric);
    fflush(stdout);
    CHECK(res.steps_done == PPO_STEPS, "ppo ran %d steps", res.steps_done);
    CHECK(E2E_QUICK || acc_ppo > acc_sft, "PPO raises accuracy: %.3f -> %.3f", acc_sft, acc_ppo);

    /* GRPO with the verifiable reward */
    cllm_vreward *vr = NULL;
    CHECK(cllm_vreward_create(CLLM_VREWARD_NUMBER, NULL, &vr, &err) == CLLM_OK, "%s", err.msg);
    path(out, "grpo.gguf");
    p.reward_path = NULL;
    p.vreward = vr;
    p.steps = GRPO_STEPS;
    p.batch = 8;
    p.group = 8;
    p.beta = 0.04f;
    p.lr = 1e-4f;
    p.temperature = 1.0f;
    p.epochs = 4;
    p.missing_eos_penalty = 1.0f;
    RUN_DIR_OF(out);
    CHECK(cllm_grpo_train(&p, &res, &err) == CLLM_OK, "grpo: %s", err.msg);
    double acc_grpo = accuracy(out);
    printf("e2e accuracy: grpo %.3f (mean sampled reward %.3f -> %.3f)\n", acc_grpo, res.first_metric, res.last_metric);
    fflush(stdout);
    CHECK(res.steps_done == GRPO_STEPS, "grpo ran %d steps", res.steps_done);
    CHECK(E2E_QUICK || acc_grpo > acc_sft, "GRPO raises accuracy: %.3f -> %.3f", acc_sft, acc_grpo);
    cllm_vreward_destroy(vr);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/cllm_test_rlhf_e2e_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    TEST_RUN(test_rlhf_e2e_pipeline_accuracy);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_finish();
}
