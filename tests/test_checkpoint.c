/*
 * test_checkpoint.c: the checkpoint protocol (include/cllm/train/checkpoint.h):
 * float-array and state-record round trips, rejection of truncated/corrupt
 * files with clear messages, the marker-last protocol under SIGKILL at
 * random moments, pruning, and the run-directory lock.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cllm/train/checkpoint.h"
#include "cllm/core/rng.h"
#include "cllm/train/shard.h"
#include "test.h"

static char tmpdir[64];

static const char *tmp_path(const char *name) {
    static char buf[8][256];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static void flip_byte(const char *path, long offset) {
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL, "open %s", path);
    if (!f) return;
    fseek(f, offset, offset < 0 ? SEEK_END : SEEK_SET);
    int c = fgetc(f);
    fseek(f, offset, offset < 0 ? SEEK_END : SEEK_SET);
    fputc(c ^ 0x20, f);
    fclose(f);
}

static void test_checkpoint_floats_round_trip_and_rejects(void) {
    enum { N = 1000 };
    float a[N], b[N], ra[N], rb[N];
    for (int i = 0; i < N; i++) {
        a[i] = (float)i * 0.5f - 3.0f;
        b[i] = -1.0f / (float)(i + 1);
    }
    const char *p = tmp_path("x.optim");
    cllm_error err = {0};
    const float *in[2] = {a, b};
    float *out[2] = {ra, rb};
    CHECK(cllm_ckpt_write_floats(p, in, 2, N, 0x1234, 77, &err) == CLLM_OK, "%s", err.msg);
    int64_t aux = 0;
    CHECK(cllm_ckpt_read_floats(p, out, 2, N, 0x1234, &aux, &err) == CLLM_OK, "%s", err.msg);
    CHECK(memcmp(a, ra, sizeof a) == 0 && memcmp(b, rb, sizeof b) == 0 && aux == 77, "exact round trip");
    CHECK(cllm_ckpt_read_floats(p, out, 2, N + 1, 0x1234, NULL, &err) == CLLM_ERR_FORMAT &&
              strstr(err.msg, "values per array"), "wrong size: %s", err.msg);
    CHECK(cllm_ckpt_read_floats(p, out, 2, N, 0x9999, NULL, &err) == CLLM_ERR_FORMAT &&
              strstr(err.msg, "layout hash"), "wrong layout: %s", err.msg);
    CHECK(cllm_ckpt_read_floats(p, out, 1, N, 0x1234, NULL, &err) == CLLM_ERR_FORMAT &&
              strstr(err.msg, "n_arrays"), "wrong array count: %s", err.msg);
    flip_byte(p, 64 + 4 * 500);
    CHECK(cllm_ckpt_read_floats(p, out, 2, N, 0x1234, NULL, &err) == CLLM_ERR_FORMAT &&
              strstr(err.msg, "checksum"), "flipped byte: %s", err.msg);
    CHECK(truncate(p, 64 + 4 * 10) == 0, "truncate");
    CHECK(cllm_ckpt_read_floats(p, out, 2, N, 0x1234, NULL, &err) == CLLM_ERR_FORMAT &&
              strstr(err.msg, "truncated"), "truncated: %s", err.msg);
    CHECK(truncate(p, 5) == 0, "truncate");
    CHECK(cllm_ckpt_read_floats(p, out, 2, N, 0x1234, NULL, &err) == CLLM_ERR_FORMAT &&
              strstr(err.msg, "too short"), "5 bytes: %s", err.msg);
    CHECK(truncate(p, 0) == 0, "truncate");
    CHECK(cllm_ckpt_read_floats(p, out, 2, N, 0x1234, NULL, &err) == CLLM_ERR_FORMAT, "empty: %s", err.msg);
    FILE *f = fopen(p, "wb");
    if (f) {
        fputs("GGUF this is not a float file at all, but long enough to have a header..........", f);
        fclose(f);
    }
    CHECK(cllm_ckpt_read_floats(p, out, 2, N, 0x1234, NULL, &err) == CLLM_ERR_FORMAT &&
              strstr(err.msg, "magic"), "bad magic: %s", err.msg);
    const char *missing = tmp_path("none.optim");
    CHECK(cllm_ckpt_read_floats(missing, out, 2, N, 0x1234, NULL, &err) == CLLM_ERR_IO &&
              strstr(err.msg, "none.optim"), "missing: %s", err.msg);
}

static void sample_state(cllm_train_state *s, int64_t step) {
    cllm_train_state_init(s);
    s->step = step;
    s->tokens_seen = (uint64_t)step * 4096;
    cllm_rng_seed(&s->loader.rng, (uint64_t)step + 5);
    s->loader.position = 123;
    s->loader.epoch = 2;
    s->loader.batches = (uint64_t)step * 3;
    s->dropout_seed = 0xfeedfacecafebeefull;
    s->best_val_loss = step > 0 ? 1.0 / 3.0 : INFINITY;
    s->evals_since_best = 4;
    s->nonfinite_streak = 1;
    s->nonfinite_total = 9;
    s->data_fingerprint = 0x0123456789abcdefull;
    s->tokenizer_hash = 0;
    s->layout_hash = 0xabcdef;
    s->elapsed_s = 12.625;
    snprintf(s->config, sizeof s->config, "n_layer=2\nlr=0x1.0624dd2f1a9fcp-10\nschedule=cosine\n");
}

static void write_text_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void test_checkpoint_state_round_trip_and_rejects(void) {
    cllm_train_state s, r;
    cllm_error err = {0};
    const char *p = tmp_path("s.state");
    for (int k = 0; k < 2; k++) {
        sample_state(&s, k ? 42 : 0); /* step 0 has best_val_loss = inf */
        CHECK(cllm_train_state_write(p, &s, &err) == CLLM_OK, "%s", err.msg);
        CHECK(cllm_train_state_read(p, &r, &err) == CLLM_OK, "%s", err.msg);
        CHECK(r.step == s.step && r.tokens_seen == s.tokens_seen && r.dropout_seed == s.dropout_seed,
              "integers");
        CHECK(memcmp(&r.loader, &s.loader, sizeof s.loader) == 0, "loader state");
        CHECK(memcmp(&r.best_val_loss, &s.best_val_loss, sizeof(double)) == 0, "best val exact (%a)",
              r.best_val_loss);
        CHECK(r.evals_since_best == 4 && r.nonfinite_streak == 1 && r.nonfinite_total == 9, "counters");
        CHECK(r.data_fingerprint == s.data_fingerprint && r.layout_hash == s.layout_hash, "hashes");
        CHECK(r.elapsed_s == s.elapsed_s, "elapsed");
        CHECK(strcmp(r.config, s.config) == 0, "config text: '%s'", r.config);
    }
    flip_byte(p, 40);
    CHECK(cllm_train_state_read(p, &r, &err) == CLLM_ERR_FORMAT && strstr(err.msg, "checksum"),
          "flipped byte: %s", err.msg);
    CHECK(cllm_train_state_write(p, &s, &err) == CLLM_OK, "%s", err.msg);
    CHECK(truncate(p, 100) == 0, "truncate");
    CHECK(cllm_train_state_read(p, &r, &err) == CLLM_ERR_FORMAT && strstr(err.msg, "truncated"),
          "truncated: %s", err.msg);
    /* well-formed checksum, but a key is missing / unknown / malformed */
    const char *bodies[3] = {"cllm-train-state 1\nstep 5\n", "cllm-train-state 1\nstep 5\nbogus 1\n",
                             "cllm-train-state 1\nstep -5\n"};
    const char *want[3] = {"missing key tokens_seen", "unknown key 'bogus'", "bad value '-5' for step"};
    for (int i = 0; i < 3; i++) {
        char text[256];
        uint64_t h = cllm_fnv1a64(bodies[i], strlen(bodies[i]), CLLM_FNV_OFFSET);
        snprintf(text, sizeof text, "%schecksum %016llx\n", bodies[i], (unsigned long long)h);
        write_text_file(p, text);
        CHECK(cllm_train_state_read(p, &r, &err) == CLLM_ERR_FORMAT && strstr(err.msg, want[i]),
              "case %d: %s", i, err.msg);
    }
    write_text_file(p, "");
    CHECK(cllm_train_state_read(p, &r, &err) == CLLM_ERR_FORMAT, "empty: %s", err.msg);
}

/* A fake model: n floats whose values are a function of the step, written
 * with the float-array writer as the ".params" weights file. */
typedef struct {
    float *w; /* [n] */
    size_t n;
} fake_model;

static cllm_status fake_write(const char *path, void *ctx, cllm_error *err) {
    fake_model *m = ctx;
    const float *a[1] = {m->w};
    return cllm_ckpt_write_floats(path, a, 1, m->n, 0xabcdef, 0, err);
}
static cllm_status fake_read(const char *path, void *ctx, cllm_error *err) {
    fake_model *m = ctx;
    float *a[1] = {m->w};
    return cllm_ckpt_read_floats(path, a, 1, m->n, 0xabcdef, NULL, err);
}

static void fill(float *x, size_t n, int64_t step, float salt) {
    for (size_t i = 0; i < n; i++) x[i] = (float)step + salt + (float)(i % 1000) * 1e-3f;
}

static cllm_status save_step(const char *dir, fake_model *fm, float *m, float *v, int64_t step, cllm_error *err) {
    fill(fm->w, fm->n, step, 0.0f);
    fill(m, fm->n, step, 0.25f);
    fill(v, fm->n, step, 0.5f);
    cllm_train_state s;
    sample_state(&s, step);
    cllm_ckpt_io io = {"params", fake_write, fake_read, fm, m, v, NULL, NULL, fm->n, step};
    return cllm_ckpt_save(dir, &io, &s, err);
}

/* Loads `step` and checks every value is the one saved for it. */
static int load_and_check(const char *dir, fake_model *fm, int64_t step, cllm_error *err) {
    float *m = malloc(fm->n * sizeof(float)), *v = malloc(fm->n * sizeof(float));
    float *want = malloc(fm->n * sizeof(float));
    cllm_ckpt_io io = {"params", fake_write, fake_read, fm, NULL, NULL, m, v, fm->n, 0};
    cllm_train_state s;
    int ok = cllm_ckpt_load(dir, step, &io, &s, err) == CLLM_OK;
    if (ok) {
        fill(want, fm->n, step, 0.0f);
        ok &= memcmp(want, fm->w, fm->n * sizeof(float)) == 0;
        fill(want, fm->n, step, 0.25f);
        ok &= memcmp(want, m, fm->n * sizeof(float)) == 0;
        fill(want, fm->n, step, 0.5f);
        ok &= memcmp(want, v, fm->n * sizeof(float)) == 0;
        ok &= s.step == step && io.adam_step == step;
        if (!ok) snprintf(err->msg, sizeof err->msg, "contents of step %lld differ", (long long)step);
    }
    free(m);
    free(v);
    free(want);
    return ok;
}

static void test_checkpoint_save_find_load_prune(void) {
    const char *dir = tmp_path("run1");
    CHECK(mkdir(dir, 0755) == 0, "mkdir");
    enum { N = 5000 };
    fake_model fm = {malloc(N * sizeof(float)), N};
    float *m = malloc(N * sizeof(float)), *v = malloc(N * sizeof(float));
    cllm_error err = {0};
    int64_t latest = 0;
    CHECK(cllm_ckpt_find_latest(dir, &latest, &err) == CLLM_OK && latest == -1, "empty dir: none");
    for (int64_t s = 10; s <= 30; s += 10) CHECK(save_step(dir, &fm, m, v, s, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_ckpt_find_latest(dir, &latest, &err) == CLLM_OK && latest == 30, "latest %lld", (long long)latest);
    CHECK(load_and_check(dir, &fm, 20, &err), "load 20: %s", err.msg);
    /* an incomplete checkpoint 40 (files, no marker) and a dead writer's temp file */
    fill(fm.w, N, 40, 0);
    char p40[512];
    cllm_ckpt_path(p40, sizeof p40, dir, 40, "params");
    CHECK(fake_write(p40, &fm, &err) == CLLM_OK, "%s", err.msg);
    char stale[512];
    snprintf(stale, sizeof stale, "%s/ckpt-0000000040.optim.tmp.99999", dir);
    write_text_file(stale, "partial");
    char user_file[512];
    snprintf(user_file, sizeof user_file, "%s/notes.txt", dir);
    write_text_file(user_file, "mine");
    CHECK(cllm_ckpt_find_latest(dir, &latest, &err) == CLLM_OK && latest == 30, "incomplete 40 ignored");
    CHECK(cllm_ckpt_prune(dir, 2, &err) == CLLM_OK, "prune: %s", err.msg);
    char p[512];
    cllm_ckpt_path(p, sizeof p, dir, 10, "done");
    CHECK(!file_exists(p), "step 10 marker deleted");
    cllm_ckpt_path(p, sizeof p, dir, 10, "params");
    CHECK(!file_exists(p), "step 10 weights deleted");
    cllm_ckpt_path(p, sizeof p, dir, 20, "optim");
    CHECK(file_exists(p), "step 20 kept");
    CHECK(!file_exists(p40) && !file_exists(stale), "incomplete and temp files removed");
    CHECK(file_exists(user_file), "other files untouched");
    CHECK(load_and_check(dir, &fm, 20, &err) && load_and_check(dir, &fm, 30, &err), "kept ones load: %s", err.msg);
    /* corrupt the newest: the load names the file */
    cllm_ckpt_path(p, sizeof p, dir, 30, "optim");
    flip_byte(p, 100);
    CHECK(!load_and_check(dir, &fm, 30, &err) && strstr(err.msg, "ckpt-0000000030.optim") &&
              strstr(err.msg, "corrupt"), "corrupt optim: %s", err.msg);
    cllm_ckpt_path(p, sizeof p, dir, 20, "state");
    CHECK(unlink(p) == 0, "unlink");
    CHECK(!load_and_check(dir, &fm, 20, &err) && strstr(err.msg, "ckpt-0000000020.state"),
          "missing state: %s", err.msg);
    cllm_ckpt_path(p, sizeof p, dir, 20, "done");
    write_text_file(p, "cllm-checkpoint 1\nstep 2");
    CHECK(!load_and_check(dir, &fm, 20, &err) && strstr(err.msg, "marker"), "bad marker: %s", err.msg);
    free(fm.w);
    free(m);
    free(v);
}

/* A child saves checkpoints 1, 2, 3, ... in a loop; the parent SIGKILLs it
 * at a random moment (often mid-write), then the newest complete checkpoint
 * must load with exactly the values of its step. */
static void test_checkpoint_survives_sigkill_mid_save(void) {
    enum { N = 300000, ROUNDS = 6 }; /* 1.2 MB per array: a save takes milliseconds */
    cllm_rng rng;
    cllm_rng_seed(&rng, 2024);
    for (int round = 0; round < ROUNDS; round++) {
        char name[32];
        snprintf(name, sizeof name, "kill%d", round);
        const char *dir = tmp_path(name);
        CHECK(mkdir(dir, 0755) == 0, "mkdir");
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            fake_model fm = {malloc(N * sizeof(float)), N};
            float *m = malloc(N * sizeof(float)), *v = malloc(N * sizeof(float));
            cllm_error e;
            for (int64_t s = 1; s < 100000; s++) {
                if (save_step(dir, &fm, m, v, s, &e) != CLLM_OK) _exit(3);
                if (cllm_ckpt_prune(dir, 2, &e) != CLLM_OK) _exit(4);
            }
            _exit(0);
        }
        CHECK(pid > 0, "fork");
        if (pid <= 0) return;
        /* 20..150 ms: enough for a few saves, and lands anywhere inside one */
        struct timespec ts = {0, (long)(20 + cllm_rng_below(&rng, 130)) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status), "child was killed (status %d)", status);
        cllm_error err = {0};
        int64_t latest = -1;
        CHECK(cllm_ckpt_find_latest(dir, &latest, &err) == CLLM_OK, "%s", err.msg);
        fprintf(stderr, "  round %d: newest complete checkpoint after SIGKILL: %lld\n", round, (long long)latest);
        if (latest < 1) continue; /* killed before the first save finished: nothing to check */
        fake_model fm = {malloc(N * sizeof(float)), N};
        CHECK(load_and_check(dir, &fm, latest, &err), "round %d: newest complete %lld: %s", round,
              (long long)latest, err.msg);
        CHECK(cllm_ckpt_prune(dir, 2, &err) == CLLM_OK, "prune after kill: %s", err.msg);
        CHECK(load_and_check(dir, &fm, latest, &err), "after prune: %s", err.msg);
        free(fm.w);
    }
}

static void test_checkpoint_lock_excludes_second_trainer(void) {
    const char *dir = tmp_path("lockrun");
    CHECK(mkdir(dir, 0755) == 0, "mkdir");
    cllm_error err = {0};
    int fd1 = -1, fd2 = -1;
    CHECK(cllm_ckpt_lock(dir, &fd1, &err) == CLLM_OK, "first lock: %s", err.msg);
    /* flock locks belong to the open file, so a second open conflicts even here */
    CHECK(cllm_ckpt_lock(dir, &fd2, &err) == CLLM_ERR_IO && fd2 == -1, "second lock refused");
    char want[64];
    snprintf(want, sizeof want, "pid %ld", (long)getpid());
    CHECK(strstr(err.msg, "another trainer") && strstr(err.msg, want), "message: %s", err.msg);
    /* a holder that finishes removes the file; a locker that had opened it
     * before the removal must not think it holds the lock */
    char lock_path[256];
    snprintf(lock_path, sizeof lock_path, "%s/lock", dir);
    int early = open(lock_path, O_RDWR);
    cllm_ckpt_unlock(fd1, dir);
    CHECK(access(lock_path, F_OK) != 0, "unlock removes the lock file");
    CHECK(early >= 0 && flock(early, LOCK_EX | LOCK_NB) == 0, "the removed file's lock is free");
    CHECK(cllm_ckpt_lock(dir, &fd2, &err) == CLLM_OK, "lock after release: %s", err.msg);
    int fd3 = -1;
    CHECK(cllm_ckpt_lock(dir, &fd3, &err) == CLLM_ERR_IO, "a third locker is still refused");
    if (early >= 0) close(early);
    cllm_ckpt_unlock(fd2, dir);
    CHECK(cllm_ckpt_lock(tmp_path("no-such-dir"), &fd1, &err) == CLLM_ERR_IO, "missing dir: %s", err.msg);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cllm_test_ckpt_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    TEST_RUN(test_checkpoint_floats_round_trip_and_rejects);
    TEST_RUN(test_checkpoint_state_round_trip_and_rejects);
    TEST_RUN(test_checkpoint_save_find_load_prune);
    TEST_RUN(test_checkpoint_survives_sigkill_mid_save);
    TEST_RUN(test_checkpoint_lock_excludes_second_trainer);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_finish();
}
