/*
 * test_pretrain.c: the pre-training loop as a library call (train/pretrain.h):
 * loss falls on a tiny repetitive text, NaN/Inf steps are skipped and
 * counted and too many in a row stop the run with a clear error, early
 * stopping triggers when validation loss stops improving, and parameters are
 * validated before any file is touched. (Kill -9 / resume bit-exactness is
 * tests/test_pretrain_resume.sh.)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cllm/train/pretrain.h"
#include "test.h"

static char tmpdir[64];
static char data_path[128];

static const char *run_dir(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static int exists(const char *dir, const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat st;
    return stat(p, &st) == 0;
}

static cllm_pretrain_params tiny_params(const char *out) {
    static const char *paths[1];
    paths[0] = data_path;
    cllm_pretrain_params p = cllm_pretrain_default_params();
    cllm_error err;
    if (cllm_model_preset("tiny-gpt2", &p.model, &err) != CLLM_OK) abort();
    p.model.dropout = 0;
    p.data_paths = paths;
    p.n_data = 1;
    p.B = 4;
    p.T = 16;
    p.total_batch = 64;
    p.steps = 40;
    p.lr = 3e-3f;
    p.min_lr = 3e-4f;
    p.warmup = 4;
    p.eval_every = 10;
    p.eval_batches = 2;
    p.threads = 1;
    p.peak_gflops = -1;
    p.progress = 0;
    p.run_dir = out;
    return p;
}

static void test_pretrain_loss_decreases(void) {
    const char *out = run_dir("fall");
    cllm_pretrain_params p = tiny_params(out);
    cllm_pretrain_result r;
    cllm_error err = {0};
    CHECK(cllm_pretrain_run(&p, &r, &err) == CLLM_OK, "%s", err.msg);
    CHECK(r.reason == CLLM_STOP_COMPLETED && r.steps_done == 40, "completed: %s", r.reason_text);
    /* a uniform guess over 256 bytes is ln 256 = 5.55; the text has ~20 distinct bytes */
    CHECK(r.last_train_loss < 3.0, "train loss fell to %.3f", r.last_train_loss);
    CHECK(isfinite(r.last_val_loss) && r.last_val_loss < 3.0, "val loss %.3f", r.last_val_loss);
    CHECK(exists(out, "model.gguf") && exists(out, "train.csv") && exists(out, "loss.svg"), "outputs");
    CHECK(exists(out, "ckpt-0000000040.done"), "final checkpoint");
    CHECK(r.nonfinite_skipped == 0, "no skipped steps");
}

static void test_pretrain_nonfinite_steps_skipped(void) {
    cllm_pretrain_params p = tiny_params(run_dir("nan-skip"));
    p.fault_nonfinite_from = 5;
    p.fault_nonfinite_count = 3;
    p.max_nonfinite = 4;
    cllm_pretrain_result r;
    cllm_error err = {0};
    CHECK(cllm_pretrain_run(&p, &r, &err) == CLLM_OK, "%s", err.msg);
    CHECK(r.nonfinite_skipped == 3 && r.steps_done == 40, "3 skipped, run completed (%lld)",
          (long long)r.nonfinite_skipped);
    CHECK(isfinite(r.last_train_loss), "weights stayed finite");
}

static void test_pretrain_nonfinite_streak_stops(void) {
    const char *out = run_dir("nan-stop");
    cllm_pretrain_params p = tiny_params(out);
    p.save_every = 5;
    p.fault_nonfinite_from = 12;
    p.fault_nonfinite_count = 100;
    p.max_nonfinite = 4;
    cllm_pretrain_result r;
    cllm_error err = {0};
    CHECK(cllm_pretrain_run(&p, &r, &err) == CLLM_ERR_NUMERIC, "stops with a numeric error");
    CHECK(strstr(err.msg, "stopping at step 15") && strstr(err.msg, "4 steps in a row"), "message: %s", err.msg);
    /* skipped steps leave the weights untouched, so the step-15 checkpoint
     * (after three skips) is a good one; nothing after the stop */
    CHECK(exists(out, "ckpt-0000000015.done") && !exists(out, "ckpt-0000000016.done") &&
              !exists(out, "ckpt-0000000020.done"), "checkpoints up to the stop");
}

static void test_pretrain_early_stop(void) {
    cllm_pretrain_params p = tiny_params(run_dir("early"));
    /* updates of 1e-12 are below fp32 resolution of the weights, so the
     * validation loss repeats exactly and never improves after the first */
    p.lr = 1e-12f;
    p.min_lr = 0;
    p.eval_every = 5;
    p.patience = 2;
    cllm_pretrain_result r;
    cllm_error err = {0};
    CHECK(cllm_pretrain_run(&p, &r, &err) == CLLM_OK, "%s", err.msg);
    CHECK(r.reason == CLLM_STOP_EARLY && r.steps_done == 15, "early stop after 3 evaluations: step %lld, %s",
          (long long)r.steps_done, r.reason_text);
    CHECK(strstr(r.reason_text, "has not improved") != NULL, "reason: %s", r.reason_text);
}

static void test_pretrain_validation_before_work(void) {
    const char *out = run_dir("never");
    cllm_error err = {0};
    cllm_pretrain_result r;
    cllm_pretrain_params p = tiny_params(out);
    p.total_batch = 100; /* not a multiple of 64 */
    CHECK(cllm_pretrain_run(&p, &r, &err) == CLLM_ERR_ARG && strstr(err.msg, "multiple of B*T"), "%s", err.msg);
    p = tiny_params(out);
    p.min_lr = 1.0f;
    CHECK(cllm_pretrain_run(&p, &r, &err) == CLLM_ERR_ARG && strstr(err.msg, "min_lr"), "%s", err.msg);
    p = tiny_params(out);
    p.patience = 3;
    p.eval_every = 0;
    CHECK(cllm_pretrain_run(&p, &r, &err) == CLLM_ERR_ARG && strstr(err.msg, "patience"), "%s", err.msg);
    p = tiny_params(out);
    p.T = 32; /* tiny-gpt2's context is 16 */
    p.total_batch = 128;
    CHECK(cllm_pretrain_run(&p, &r, &err) == CLLM_ERR_ARG && strstr(err.msg, "context length"), "%s", err.msg);
    struct stat st;
    CHECK(stat(out, &st) != 0, "no run directory created");
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cllm_test_pretrain_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    snprintf(data_path, sizeof data_path, "%s/data.txt", tmpdir);
    FILE *f = fopen(data_path, "w");
    if (!f) return 1;
    for (int i = 0; i < 200; i++) fprintf(f, "the quick brown fox jumps over the lazy dog %d.\n", i % 5);
    fclose(f);
    TEST_RUN(test_pretrain_loss_decreases);
    TEST_RUN(test_pretrain_nonfinite_steps_skipped);
    TEST_RUN(test_pretrain_nonfinite_streak_stops);
    TEST_RUN(test_pretrain_early_stop);
    TEST_RUN(test_pretrain_validation_before_work);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_finish();
}
