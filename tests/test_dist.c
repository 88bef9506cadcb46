/*
 * test_dist.c: the one-process side of data parallelism (src/train/dist.c),
 * runnable without MPI: ZeRO-1's slice update equals the whole update,
 * one process's gradient groups (CLLM_GRAD_GROUPS) add their partial sums in
 * group order exactly as ranks do, th_unit and th_group agree on the split,
 * and the memory estimates of `cllm info --ranks`. The multi-rank cases are
 * tests/test_mpi.sh.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/train/harness.h"
#include "cllm/core/rng.h"
#include "cllm/train/dist.h"
#include "test.h"

/* AdamW on [0, n) at once, and on three slices by three optimizers (ranks,
 * each with its own moments and one step count), give the same bits. */
static void test_dist_slice_update_equals_whole(void) {
    enum { N = 1000 };
    static float p0[N], g[N], p1[N];
    cllm_rng rng;
    cllm_rng_seed(&rng, 5);
    for (int i = 0; i < N; i++) p0[i] = p1[i] = cllm_rng_normal(&rng), g[i] = 0.1f * cllm_rng_normal(&rng);
    cllm_adamw_params hp = cllm_adamw_default_params();
    cllm_error err;
    th_optim whole, part[3];
    CHECK(th_optim_init_flat(&whole, p0, g, N, &hp, 1.0f, &err) == CLLM_OK, "init");
    for (int r = 0; r < 3; r++) CHECK(th_optim_init_flat(&part[r], p1, g, N, &hp, 1.0f, &err) == CLLM_OK, "init");
    const size_t cut[4] = {0, 333, 334, N}; /* one slice of a single element */
    for (int step = 0; step < 5; step++) {
        const double norm = th_optim_norm(&whole);
        CHECK(norm > 1.0, "the clip bound is active (norm %g)", norm);
        th_optim_update(&whole, 1e-2f, norm);
        for (int r = 0; r < 3; r++) th_optim_update_range(&part[r], 1e-2f, norm, cut[r], cut[r + 1]);
    }
    CHECK(memcmp(p0, p1, sizeof p0) == 0, "sliced AdamW differs from the whole update");
    for (int r = 0; r < 3; r++) {
        CHECK(part[r].step == 5, "each slice counts its steps once (%lld)", (long long)part[r].step);
        CHECK(memcmp(part[r].m + cut[r], whole.m + cut[r], (cut[r + 1] - cut[r]) * sizeof(float)) == 0, "moments");
        th_optim_free(&part[r]);
    }
    th_optim_free(&whole);
}

typedef struct {
    float p[7], g[7];
    float unit_grad[5][7]; /* what backward adds for each of 5 units */
    int seen[5];
} toy;

static th_run *toy_run;

static cllm_status toy_step(void *ctx, int64_t step, double *loss, double *tokens, cllm_error *err) {
    (void)step, (void)err;
    toy *t = ctx;
    memset(t->g, 0, sizeof t->g);
    for (int i = 0; i < 5; i++) {
        if (!th_unit(toy_run, i, 5)) continue;
        t->seen[i]++;
        for (int j = 0; j < 7; j++) t->g[j] += t->unit_grad[i][j]; /* backward's += */
    }
    *loss = 1;
    *tokens = 5;
    return CLLM_OK;
}

/* CLLM_GRAD_GROUPS=2 over 5 units: groups {0,1,2} and {3,4}, each summed from
 * zero, then added: (u0 + u1 + u2) + (u3 + u4), not (((u0 + u1) + u2) + u3) + u4. */
static void test_dist_groups_sum_in_group_order(void) {
    char dir[] = "/tmp/cllm_dist_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    toy t;
    memset(&t, 0, sizeof t);
    cllm_rng rng;
    cllm_rng_seed(&rng, 11);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 7; j++) t.unit_grad[i][j] = cllm_rng_normal(&rng) * (j == 3 ? 1e8f : 1.0f);
    float a[7], b[7], want[7];
    for (int j = 0; j < 7; j++) {
        a[j] = 0, b[j] = 0;
        for (int i = 0; i < 3; i++) a[j] += t.unit_grad[i][j];
        for (int i = 3; i < 5; i++) b[j] += t.unit_grad[i][j];
        want[j] = a[j] + b[j];
    }
    float serial[7];
    for (int j = 0; j < 7; j++) {
        serial[j] = 0;
        for (int i = 0; i < 5; i++) serial[j] += t.unit_grad[i][j];
    }
    CHECK(memcmp(serial, want, sizeof want) != 0, "the data should make the grouping matter");
    setenv("CLLM_GRAD_GROUPS", "2", 1);
    th_run h;
    th_init(&h);
    toy_run = &h;
    h.name = "toy";
    h.run_dir = dir;
    h.steps = 1;
    h.data_parallel = 1;
    h.sched.kind = CLLM_SCHEDULE_CONSTANT;
    h.sched.lr = h.sched.min_lr = 0.0f; /* the update leaves the weights; the gradients are what is checked */
    h.sched.total_steps = 1;
    cllm_adamw_params hp = cllm_adamw_default_params();
    hp.weight_decay = 0;
    cllm_error err;
    cllm_status st = th_optim_init_flat(&h.opt, t.p, t.g, 7, &hp, 0.0f, &err);
    if (st == CLLM_OK) st = th_lock_existing(&h, &err);
    if (st == CLLM_OK) st = th_open(&h, &err);
    if (st == CLLM_OK) st = th_begin(&h, "toy=1\n", 1, 2, 3, &err);
    const th_hooks hooks = {toy_step, NULL, NULL, NULL, 0};
    if (st == CLLM_OK) st = th_loop(&h, &hooks, &t, &err);
    CHECK(st == CLLM_OK, "run: %s", err.msg);
    CHECK(th_groups(&h) == 2, "two groups (%d)", th_groups(&h));
    for (int i = 0; i < 5; i++) CHECK(t.seen[i] == 1, "unit %d computed %d times", i, t.seen[i]);
    CHECK(memcmp(t.g, want, sizeof want) == 0, "gradients are not (group 0) + (group 1)");
    int lo, hi, n = 0;
    for (int g = 0; g < th_groups(&h); g++) {
        th_group(&h, g, 5, &lo, &hi);
        CHECK(lo == n, "group %d starts at %d, not %d", g, lo, n);
        for (int i = lo; i < hi; i++) CHECK((int)((int64_t)i * 2 / 5) == g, "unit %d is in group %d", i, g);
        n = hi;
    }
    CHECK(n == 5, "groups cover the units (%d)", n);
    th_free(&h);
    unsetenv("CLLM_GRAD_GROUPS");
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

static void test_dist_memory_estimates(void) {
    const size_t n = 124439808; /* GPT-2 small */
    CHECK(cllm_dist_optimizer_bytes(n, 1, 1) == 8.0 * n, "one rank keeps every moment");
    CHECK(cllm_dist_optimizer_bytes(n, 8, 0) == 8.0 * n, "unsharded: every moment on every rank");
    const double z = cllm_dist_optimizer_bytes(n, 8, 1);
    CHECK(z >= 8.0 * n / 8 && z <= 8.0 * n / 8 + 8.0 * 65536, "ZeRO-1 over 8 ranks: %.0f", z);
    CHECK(cllm_dist_reduce_buffer_bytes(n, 1, 1) == 0, "no buffer for one rank");
    CHECK(cllm_dist_reduce_buffer_bytes(n, 8, 1) <= 64.0 * 1048576 + 8 * 4 * 65536, "buffer bounded");
    CHECK(cllm_dist_size() == 1 && cllm_dist_rank() == 0, "a process not started by mpirun is one rank");
}

int main(void) {
    TEST_RUN(test_dist_slice_update_equals_whole);
    TEST_RUN(test_dist_groups_sum_in_group_order);
    TEST_RUN(test_dist_memory_estimates);
    return test_finish();
}
