/*
 * test_rlhf_resume.c: reward, DPO, PPO and GRPO on the training harness
 * (issue 15 item 5): a run stopped by its stop flag after step 1, resumed
 * and stopped again after step 2, then resumed to the end equals the
 * uninterrupted run bit for bit (RUN_DIR/model.gguf and the train.csv rows
 * without their wall-clock tokens_per_s column); resuming a finished run
 * keeps its CSV; a settings mismatch names the setting; a run directory
 * whose parent is missing fails before any step. PPO and GRPO sample, so
 * their rollout sampler's state (seeded per step) is part of what must
 * resume exactly.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cllm/core/fileio.h"
#include "cllm/kernels/kernels.h"
#include "cllm/model/gguf_io.h"
#include "cllm/train/rlhf.h"
#include "run_files.h"
#include "test.h"

static char dir[] = "/tmp/test_rlhf_resume_XXXXXX";
static char base[600], pairs[600], prompts[600], rm_path[600];

static void path(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

static int save_tiny_base(const char *p) {
    cllm_model_config c;
    cllm_error err;
    cllm_model_preset("tiny-llama", &c, &err);
    c.vocab_size = 256;
    c.context_length = 48;
    c.n_layer = 1;
    c.n_embd = 32;
    c.n_head = c.n_kv_head = 2;
    c.ffn_hidden = 64;
    c.dropout = 0;
    cllm_model *m = NULL;
    CHECK(cllm_model_create(&c, NULL, &m, &err) == CLLM_OK, "%s", err.msg);
    if (!m) return 0;
    cllm_model_init_weights(m, 3);
    cllm_status st = cllm_model_save_gguf(m, p, NULL, &err);
    CHECK(st == CLLM_OK, "%s", err.msg);
    cllm_model_destroy(m);
    return st == CLLM_OK;
}

typedef cllm_status (*train_fn)(const cllm_rl_params *, cllm_rl_result *, cllm_error *);

static cllm_rl_params params_for(const char *kind, const cllm_vreward *vr) {
    cllm_rl_params p = cllm_rl_default_params();
    p.model_path = base;
    p.steps = 5;
    p.batch = 2;
    p.lr = 1e-3f;
    p.seed = 11;
    p.max_new = 3;
    p.epochs = 2;
    p.val_frac = 0.25f;
    if (!strcmp(kind, "ppo") || !strcmp(kind, "grpo")) {
        p.data_path = prompts;
        p.group = 2;
        if (!strcmp(kind, "ppo")) p.reward_path = rm_path;
        else p.vreward = vr;
    } else {
        p.data_path = pairs;
    }
    return p;
}

static void resume_case(const char *kind, train_fn fn, const cllm_vreward *vr) {
    char ref[600], cut[600], a[700], b[700];
    char name[64];
    snprintf(name, sizeof name, "%s-ref", kind);
    path(ref, sizeof ref, name);
    snprintf(name, sizeof name, "%s-cut", kind);
    path(cut, sizeof cut, name);
    cllm_rl_params p = params_for(kind, vr);
    cllm_rl_result res;
    cllm_error err;
    p.run_dir = ref;
    CHECK(fn(&p, &res, &err) == CLLM_OK && res.steps_done == 5, "%s uninterrupted: %s", kind, err.msg);
    /* stopped after step 1, resumed and stopped after step 2, resumed to the end */
    volatile sig_atomic_t stop = 1;
    p.run_dir = cut;
    p.stop_flag = &stop;
    CHECK(fn(&p, &res, &err) == CLLM_OK && res.steps_done == 1, "%s stopped after step 1 (%d): %s", kind,
          res.steps_done, err.msg);
    p.resume = 1;
    CHECK(fn(&p, &res, &err) == CLLM_OK && res.steps_done == 2 && res.start_step == 1,
          "%s stopped after step 2 (%d, from %d): %s", kind, res.steps_done, res.start_step, err.msg);
    p.stop_flag = NULL;
    CHECK(fn(&p, &res, &err) == CLLM_OK && res.steps_done == 5, "%s resumed to the end: %s", kind, err.msg);
    snprintf(a, sizeof a, "%s/model.gguf", ref);
    snprintf(b, sizeof b, "%s/model.gguf", cut);
    CHECK(same_file(a, b), "%s: interrupted + resumed model.gguf == uninterrupted, bit for bit", kind);
    static char rows_ref[16384], rows_cut[16384], rows_again[16384];
    int n_ref, n_cut, n_again;
    csv_rows(ref, rows_ref, sizeof rows_ref, &n_ref);
    csv_rows(cut, rows_cut, sizeof rows_cut, &n_cut);
    CHECK(n_ref == 5 && n_cut == 5, "%s: 5 CSV rows each (%d uninterrupted, %d resumed)", kind, n_ref, n_cut);
    CHECK(strcmp(rows_ref, rows_cut) == 0, "%s: CSV rows identical:\n%s--- vs ---\n%s", kind, rows_ref, rows_cut);
    /* resuming the finished run keeps its CSV and model */
    p.run_dir = ref;
    CHECK(fn(&p, &res, &err) == CLLM_OK && res.steps_done == 5, "%s: resuming the finished run: %s", kind, err.msg);
    CHECK(strstr(res.reason_text, "already finished") != NULL, "%s: reason '%s'", kind, res.reason_text);
    csv_rows(ref, rows_again, sizeof rows_again, &n_again);
    CHECK(n_again == 5 && strcmp(rows_ref, rows_again) == 0, "%s: the finished run's CSV kept (%d rows)", kind, n_again);
    CHECK(same_file(a, b), "%s: the finished run's model kept", kind);
    /* a different setting is named */
    p.lr = 2e-3f;
    CHECK(fn(&p, &res, &err) != CLLM_OK && strstr(err.msg, "lr=") && strstr(err.msg, "cannot resume"),
          "%s: lr mismatch named: %s", kind, err.msg);
    /* a run directory whose parent is missing fails before any step */
    p = params_for(kind, vr);
    char bad[700];
    snprintf(bad, sizeof bad, "%s/no/such/run", dir);
    p.run_dir = bad;
    CHECK(fn(&p, &res, &err) != CLLM_OK && res.steps_done == 0 && strstr(err.msg, "no/such"),
          "%s: missing parent rejected before step 0: %s", kind, err.msg);
}

static void test_rlhf_resume_dpo_is_exact(void) { resume_case("dpo", cllm_dpo_train, NULL); }
static void test_rlhf_resume_reward_is_exact(void) { resume_case("reward", cllm_reward_train, NULL); }
static void test_rlhf_resume_ppo_is_exact(void) { resume_case("ppo", cllm_ppo_train, NULL); }

static void test_rlhf_resume_grpo_is_exact(void) {
    cllm_vreward *vr = NULL;
    cllm_error err;
    CHECK(cllm_vreward_create(CLLM_VREWARD_NUMBER, NULL, &vr, &err) == CLLM_OK, "%s", err.msg);
    resume_case("grpo", cllm_grpo_train, vr);
    cllm_vreward_destroy(vr);
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    cllm_kernels_set_threads(2);
    path(base, sizeof base, "base.gguf");
    path(pairs, sizeof pairs, "pairs.jsonl");
    path(prompts, sizeof prompts, "prompts.jsonl");
    path(rm_path, sizeof rm_path, "rm-run/model.gguf"); /* the reward run's final weights */
    int ok = save_tiny_base(base);
    FILE *f = fopen(pairs, "w"), *g = fopen(prompts, "w");
    for (int i = 0; f && g && i < 8; i++) {
        fprintf(f, "{\"prompt\":\"%d+1\",\"chosen\":\"%d\",\"rejected\":\"%d\"}\n", i, i + 1, (i + 5) % 10);
        fprintf(g, "{\"prompt\":\"%d+1\",\"answer\":%d}\n", i, i + 1);
    }
    if (f) fclose(f);
    if (g) fclose(g);
    /* the reward model PPO needs */
    cllm_rl_params p = params_for("reward", NULL);
    char run[700];
    path(run, sizeof run, "rm-run");
    p.run_dir = run;
    p.steps = 2;
    cllm_rl_result res;
    cllm_error err;
    if (ok && cllm_reward_train(&p, &res, &err) != CLLM_OK) {
        fprintf(stderr, "reward model: %s\n", err.msg);
        ok = 0;
    }
    if (ok) {
        TEST_RUN(test_rlhf_resume_dpo_is_exact);
        TEST_RUN(test_rlhf_resume_reward_is_exact);
        TEST_RUN(test_rlhf_resume_ppo_is_exact);
        TEST_RUN(test_rlhf_resume_grpo_is_exact);
    }
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return ok ? test_finish() : 1;
}
