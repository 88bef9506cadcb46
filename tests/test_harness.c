/*
 * test_harness.c: rules of the training harness (src/train/harness.c) that
 * no trainer can be made to break on purpose, checked on a toy "trainer":
 * four parameters, a flat optimizer, a step hook that sets the gradients.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/train/harness.h"
#include "cllm/core/fileio.h"
#include "cllm/train/checkpoint.h"
#include "test.h"

typedef struct {
    float p[4], g[4];
    int64_t poison_at; /* the step hook makes a weight NaN at this step (-1: never) */
} toy;

static cllm_status toy_step(void *ctx, int64_t step, double *loss, double *tokens, cllm_error *err) {
    (void)err;
    toy *t = ctx;
    for (int i = 0; i < 4; i++) t->g[i] = 0.1f * (float)(i + 1);
    if (step == t->poison_at) t->p[2] = NAN; /* a finite loss and gradient, but the weights went bad */
    *loss = 1.0;
    *tokens = 1;
    return CLLM_OK;
}

static cllm_status run_toy(const char *dir, int64_t steps, int64_t poison_at, cllm_error *err) {
    toy t = {{1, 2, 3, 4}, {0}, poison_at};
    th_run h;
    th_init(&h);
    h.name = "toy";
    h.run_dir = dir;
    h.steps = steps;
    h.save_every = 1;
    h.keep = 3;
    h.resume = 1;
    h.sched.kind = CLLM_SCHEDULE_CONSTANT;
    h.sched.lr = h.sched.min_lr = 0.01f;
    h.sched.total_steps = steps;
    cllm_adamw_params hp = cllm_adamw_default_params();
    cllm_status st = th_optim_init_flat(&h.opt, t.p, t.g, 4, &hp, 0.0f, err);
    if (st == CLLM_OK) st = th_lock_existing(&h, err);
    if (st == CLLM_OK) st = th_open(&h, err);
    if (st == CLLM_OK) st = th_begin(&h, "toy=1\n", 1, 2, 3, err);
    const th_hooks hooks = {toy_step, NULL, NULL, NULL, 0};
    if (st == CLLM_OK) st = th_loop(&h, &hooks, &t, err);
    th_free(&h);
    return st;
}

/* RELIABILITY.md: "a NaN checkpoint never replaces a good one". Weights that
 * turn NaN (here between steps 2 and 3) stop the run at the next save with
 * an error saying why; the newest complete checkpoint is still step 2's, and
 * a resumed run (without the poison) continues from it. */
static void test_harness_nan_weights_never_checkpointed(void) {
    char dir[] = "/tmp/cllm_harness_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    cllm_error err = {0};
    cllm_status st = run_toy(dir, 5, 2, &err); /* steps are 0-based: step 2 is the third */
    CHECK(st != CLLM_OK && strstr(err.msg, "non-finite"), "the poisoned run stops naming the cause: %s", err.msg);
    int64_t latest = -1;
    CHECK(cllm_ckpt_find_latest(dir, &latest, &err) == CLLM_OK && latest == 2,
          "the newest complete checkpoint is the last good one (step 2, got %lld)", (long long)latest);
    st = run_toy(dir, 5, -1, &err);
    CHECK(st == CLLM_OK, "resumed from the good checkpoint and finished: %s", st ? err.msg : "");
    CHECK(cllm_ckpt_find_latest(dir, &latest, &err) == CLLM_OK && latest == 5, "finished at step 5 (got %lld)",
          (long long)latest);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

int main(void) {
    TEST_RUN(test_harness_nan_weights_never_checkpointed);
    return test_finish();
}
