/*
 * test_core.c: status messages, RNG determinism, checked arithmetic and the
 * atomic writer's crash-safety contract.
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cllm/cllm.h" /* every public header, together: they must compile as one */
#include "cllm/core/fileio.h"
#include "cllm/core/rng.h"
#include "cllm/core/status.h"
#include "test.h"

static char tmpdir[256];

static void test_core_error_message_names_context(void) {
    cllm_error err;
    cllm_status st = cllm_error_set(&err, CLLM_ERR_FORMAT, "%s: field %s", "a.gguf", "n_head");
    cllm_error_prefix(&err, "loading model");
    CHECK(st == CLLM_ERR_FORMAT, "status passed through");
    CHECK(strcmp(err.msg, "loading model: a.gguf: field n_head") == 0, "message was '%s'", err.msg);
}

static void test_core_rng_is_deterministic(void) {
    cllm_rng a, b;
    cllm_rng_seed(&a, 1234);
    cllm_rng_seed(&b, 1234);
    int same = 1;
    double sum = 0, sumsq = 0;
    for (int i = 0; i < 100000; i++) {
        same &= cllm_rng_u64(&a) == cllm_rng_u64(&b);
        float z = cllm_rng_normal(&a);
        (void)cllm_rng_normal(&b);
        sum += z;
        sumsq += (double)z * z;
    }
    CHECK(same, "same seed gives the same stream");
    /* 100k normals: mean within ~4.5 standard errors (0.0032 each) of 0, variance near 1. */
    CHECK(fabs(sum / 100000) < 0.015, "normal mean %g", sum / 100000);
    CHECK(fabs(sumsq / 100000 - 1.0) < 0.03, "normal variance %g", sumsq / 100000);
    for (int i = 0; i < 1000; i++) {
        uint64_t r = cllm_rng_below(&a, 7);
        float f = cllm_rng_float(&a);
        if (r >= 7 || f < 0 || f >= 1) { CHECK(0, "range violated: %llu %g", (unsigned long long)r, f); break; }
    }
}

static void test_core_checked_arithmetic_detects_overflow(void) {
    size_t out = 7;
    CHECK(!cllm_size_mul(SIZE_MAX / 2 + 1, 2, &out) && out == 7, "mul overflow detected");
    CHECK(cllm_size_mul(1000, 1000, &out) && out == 1000000, "mul ok");
    CHECK(!cllm_size_add(SIZE_MAX, 1, &out), "add overflow detected");
}

static void test_core_atomic_write_replaces_whole_file(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/a.bin", tmpdir);
    cllm_error err;
    CHECK(cllm_file_write_atomic(path, "old", 3, &err) == CLLM_OK, "%s", err.msg);
    cllm_atomic_file af;
    CHECK(cllm_atomic_begin(&af, path, &err) == CLLM_OK, "%s", err.msg);
    cllm_atomic_write(&af, "new-content", 11);
    /* Before commit, the destination still holds the old bytes. */
    char *data;
    size_t len;
    CHECK(cllm_file_read_all(path, 0, &data, &len, &err) == CLLM_OK && len == 3 && !memcmp(data, "old", 3),
          "old content visible until commit");
    free(data);
    cllm_atomic_abort(&af);
    CHECK(access(af.tmp_path, F_OK) != 0, "abort removes the temp file");
    CHECK(cllm_file_read_all(path, 0, &data, &len, &err) == CLLM_OK && len == 3, "abort keeps old file");
    free(data);
    CHECK(cllm_atomic_begin(&af, path, &err) == CLLM_OK, "%s", err.msg);
    cllm_atomic_write(&af, "new", 3);
    cllm_atomic_pad(&af, 8);
    CHECK(cllm_atomic_commit(&af, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_file_read_all(path, 0, &data, &len, &err) == CLLM_OK && len == 8 && !memcmp(data, "new", 3),
          "committed and padded to 8 bytes (len %zu)", len);
    free(data);
}

static void test_core_atomic_write_to_missing_dir_fails_cleanly(void) {
    cllm_error err;
    cllm_status st = cllm_file_write_atomic("/nonexistent-dir-cllm/x.bin", "x", 1, &err);
    CHECK(st == CLLM_ERR_IO, "status %d", st);
    CHECK(strstr(err.msg, "/nonexistent-dir-cllm/x.bin") != NULL, "message names path: %s", err.msg);
}

static void test_core_readers_refuse_non_regular_files(void) {
    cllm_error err;
    char *data;
    size_t len;
    CHECK(cllm_file_read_all("/dev/zero", 0, &data, &len, &err) == CLLM_ERR_IO, "/dev/zero refused");
    CHECK(strstr(err.msg, "character device") != NULL, "%s", err.msg);
    CHECK(cllm_file_read_all(tmpdir, 0, &data, &len, &err) == CLLM_ERR_IO, "directory refused");
    char fifo[512];
    snprintf(fifo, sizeof fifo, "%s/fifo", tmpdir);
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
    cllm_mmap map;
    CHECK(cllm_mmap_open(&map, fifo, &err) == CLLM_ERR_IO, "FIFO refused by mmap");
    CHECK(cllm_file_read_all("/no/such/file", 0, &data, &len, &err) == CLLM_ERR_IO &&
              strstr(err.msg, "/no/such/file"), "missing file named: %s", err.msg);
}

static void test_core_mmap_empty_and_small(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/empty", tmpdir);
    cllm_error err;
    CHECK(cllm_file_write_atomic(path, "", 0, &err) == CLLM_OK, "%s", err.msg);
    cllm_mmap map;
    CHECK(cllm_mmap_open(&map, path, &err) == CLLM_OK && map.size == 0 && map.data == NULL, "empty maps to NULL");
    cllm_mmap_close(&map);
    CHECK(cllm_file_write_atomic(path, "abc", 3, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_mmap_open(&map, path, &err) == CLLM_OK && map.size == 3 && map.data[2] == 'c', "small map");
    cllm_mmap_close(&map);
}

static void write_bytes(const char *path, int byte, size_t n) {
    FILE *f = fopen(path, "wb");
    for (size_t i = 0; i < n; i++) fputc(byte, f);
    fclose(f);
}

/* A mapped file truncated under a guarded map: the read that used to be
 * SIGBUS returns zeros, and the check names the file; a file rewritten in
 * place is reported by the check; a file renamed over the mapped one is
 * harmless (the map keeps the old inode, its bytes unchanged). */
static void test_core_mmap_guard_survives_truncation(void) {
    char dir[] = "/tmp/cllm_guard_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char a[128], b[128];
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    const size_t n = 3 * 4096 + 100;
    cllm_mmap_guard_enable();
    cllm_error err;
    /* truncated */
    write_bytes(a, 7, n);
    cllm_mmap m;
    CHECK(cllm_mmap_open(&m, a, &err) == CLLM_OK && m.guard_slot > 0, "map, guarded");
    CHECK(cllm_mmap_check(&m, a, &err) == CLLM_OK, "unchanged file passes");
    CHECK(truncate(a, 0) == 0, "truncate");
    volatile uint8_t last = m.data[n - 1]; /* SIGBUS without the guard */
    CHECK(last == 0, "a truncated page reads as zero (got %u)", last);
    CHECK(cllm_mmap_check(&m, a, &err) == CLLM_ERR_IO && strstr(err.msg, "truncated") && strstr(err.msg, a),
          "check names the truncation: %s", err.msg);
    cllm_mmap_close(&m);
    /* rewritten in place (cp over it) */
    write_bytes(a, 7, n);
    CHECK(cllm_mmap_open(&m, a, &err) == CLLM_OK, "map again");
    FILE *f = fopen(a, "r+b"); /* same inode, new size */
    fputs("changed", f);
    fclose(f);
    CHECK(truncate(a, 100) == 0, "shrink");
    CHECK(cllm_mmap_check(&m, a, &err) == CLLM_ERR_IO && strstr(err.msg, "modified in place"),
          "in-place rewrite reported: %s", err.msg);
    cllm_mmap_close(&m);
    /* replaced by rename */
    write_bytes(a, 7, n);
    write_bytes(b, 9, 10);
    CHECK(cllm_mmap_open(&m, a, &err) == CLLM_OK, "map third");
    CHECK(rename(b, a) == 0, "rename over");
    CHECK(cllm_mmap_check(&m, a, &err) == CLLM_OK && m.data[n - 1] == 7, "rename: map intact, check passes");
    cllm_mmap_close(&m);
    unlink(a);
    rmdir(dir);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cllm-test-core-XXXXXX");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    TEST_RUN(test_core_error_message_names_context);
    TEST_RUN(test_core_rng_is_deterministic);
    TEST_RUN(test_core_checked_arithmetic_detects_overflow);
    TEST_RUN(test_core_atomic_write_replaces_whole_file);
    TEST_RUN(test_core_atomic_write_to_missing_dir_fails_cleanly);
    TEST_RUN(test_core_readers_refuse_non_regular_files);
    TEST_RUN(test_core_mmap_empty_and_small);
    TEST_RUN(test_core_mmap_guard_survives_truncation);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    return test_finish();
}
