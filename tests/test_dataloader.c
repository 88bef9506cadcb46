/*
 * test_dataloader.c: the batch loader (include/cllm/train/dataloader.h): text and
 * shard inputs, the validation split, determinism, exact state restore,
 * fingerprints, and rejection of bad data before any batch is drawn.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cllm/train/dataloader.h"
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

static void write_text(const char *path, const char *text, size_t len) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "open %s", path);
    if (!f) return;
    fwrite(text, 1, len, f);
    fclose(f);
}

/* 100 bytes: 'a'..'y' repeated four times. */
static const char *make_text(const char *name) {
    char text[100];
    for (int i = 0; i < 100; i++) text[i] = (char)('a' + i % 25);
    const char *p = tmp_path(name);
    write_text(p, text, sizeof text);
    return p;
}

static void test_dataloader_text_sequential_windows(void) {
    const char *path = make_text("seq.txt");
    cllm_loader_params p = cllm_loader_default_params();
    p.B = 2;
    p.T = 4;
    p.val_frac = 0.1; /* 90 train tokens, 10 val */
    p.order = CLLM_DATA_SEQUENTIAL;
    cllm_loader *l = NULL;
    cllm_error err = {0};
    CHECK(cllm_loader_open(&l, &path, 1, &p, &err) == CLLM_OK, "open: %s", err.msg);
    if (!l) return;
    CHECK(cllm_loader_vocab_size(l) == 256, "byte vocab");
    CHECK(cllm_loader_tokenizer_hash(l) == 0, "no tokenizer");
    CHECK(cllm_loader_n_train(l) == 90 && cllm_loader_n_val(l) == 10, "split %llu/%llu",
          (unsigned long long)cllm_loader_n_train(l), (unsigned long long)cllm_loader_n_val(l));
    int32_t in[8], tg[8];
    cllm_loader_next(l, in, tg);
    for (int i = 0; i < 8; i++) {
        CHECK(in[i] == 'a' + i % 25, "input %d = %d", i, in[i]);
        CHECK(tg[i] == 'a' + (i + 1) % 25, "target %d = %d", i, tg[i]);
    }
    /* 90 train tokens, stride 4: windows start 0,4,...,84 (84+5 <= 90): 22 windows,
     * 11 batches; the 12th batch wraps to position 0 and counts an epoch. */
    for (int k = 1; k < 11; k++) cllm_loader_next(l, in, tg);
    cllm_loader_state st;
    cllm_loader_get_state(l, &st);
    CHECK(st.epoch == 0 && st.position == 88, "before wrap: epoch %llu pos %llu",
          (unsigned long long)st.epoch, (unsigned long long)st.position);
    cllm_loader_next(l, in, tg);
    cllm_loader_get_state(l, &st);
    CHECK(st.epoch == 1 && in[0] == 'a' && st.batches == 12, "wrapped: epoch %llu first %d",
          (unsigned long long)st.epoch, in[0]);
    /* validation: tokens 90..99; windows of 5 at stride 4: 90..94 and 94..98 */
    CHECK(cllm_loader_n_val_windows(l) == 2, "val windows %llu",
          (unsigned long long)cllm_loader_n_val_windows(l));
    CHECK(cllm_loader_val_batch(l, 0, in, tg, &err) == CLLM_OK, "val: %s", err.msg);
    for (int t = 0; t < 4; t++) {
        CHECK(in[t] == 'a' + (90 + t) % 25, "val window 0 input %d", t);
        CHECK(in[4 + t] == 'a' + (94 + t) % 25, "val window 1 input %d", t);
        CHECK(tg[4 + t] == 'a' + (95 + t) % 25, "val window 1 target %d", t);
    }
    cllm_loader_state after;
    cllm_loader_get_state(l, &after);
    CHECK(memcmp(&after, &st, sizeof st) == 0, "validation does not touch the training state");
    cllm_loader_free(l);
}

static void draw(cllm_loader *l, int n, int32_t *out, int BT) {
    int32_t *tg = malloc(sizeof(int32_t) * BT);
    for (int k = 0; k < n; k++) cllm_loader_next(l, out + (size_t)k * BT, tg);
    free(tg);
}

static void test_dataloader_random_deterministic_and_resumable(void) {
    const char *path = make_text("rand.txt");
    cllm_loader_params p = cllm_loader_default_params();
    p.B = 3;
    p.T = 5;
    p.seed = 42;
    cllm_loader *a = NULL, *b = NULL, *c = NULL;
    cllm_error err = {0};
    CHECK(cllm_loader_open(&a, &path, 1, &p, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_loader_open(&b, &path, 1, &p, &err) == CLLM_OK, "%s", err.msg);
    p.seed = 43;
    CHECK(cllm_loader_open(&c, &path, 1, &p, &err) == CLLM_OK, "%s", err.msg);
    if (!a || !b || !c) return;
    enum { BT = 15, N = 10 };
    int32_t xa[N * BT], xb[N * BT], xc[N * BT];
    draw(a, N, xa, BT);
    draw(b, N, xb, BT);
    draw(c, N, xc, BT);
    CHECK(memcmp(xa, xb, sizeof xa) == 0, "same seed, same batches");
    CHECK(memcmp(xa, xc, sizeof xa) != 0, "different seed, different batches");
    /* every window is consecutive text from the training split */
    for (int w = 0; w < N * 3; w++)
        for (int t = 1; t < 5; t++)
            CHECK((xa[w * 5 + t] - 'a') % 25 == (xa[w * 5 + t - 1] - 'a' + 1) % 25, "window %d contiguous", w);
    /* save the state after 4 batches, continue; a fresh loader restored to it
     * continues identically */
    cllm_loader_free(b);
    p.seed = 42;
    CHECK(cllm_loader_open(&b, &path, 1, &p, &err) == CLLM_OK, "%s", err.msg);
    draw(b, 4, xb, BT);
    cllm_loader_state st;
    cllm_loader_get_state(b, &st);
    cllm_loader *r = NULL;
    p.seed = 999; /* the restored state overrides the seed */
    CHECK(cllm_loader_open(&r, &path, 1, &p, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_loader_set_state(r, &st, &err) == CLLM_OK, "set_state: %s", err.msg);
    int32_t xr[6 * BT];
    draw(r, 6, xr, BT);
    CHECK(memcmp(xr, xa + 4 * BT, sizeof xr) == 0, "restored loader continues the sequence");
    cllm_loader_state bad = st;
    bad.position = 1000;
    CHECK(cllm_loader_set_state(r, &bad, &err) == CLLM_ERR_FORMAT && strstr(err.msg, "position"),
          "position outside the split rejected: %s", err.msg);
    memset(&bad, 0, sizeof bad);
    CHECK(cllm_loader_set_state(r, &bad, &err) == CLLM_ERR_FORMAT, "all-zero RNG rejected");
    cllm_loader_free(a);
    cllm_loader_free(b);
    cllm_loader_free(c);
    cllm_loader_free(r);
}

static void test_dataloader_shards_and_vocab_checks(void) {
    uint32_t ids[300];
    for (int i = 0; i < 300; i++) ids[i] = (uint32_t)(i * 7 % 1000);
    const char *s1 = tmp_path("a.tok");
    const char *s2 = tmp_path("b.tok");
    cllm_error err = {0};
    CHECK(cllm_shard_write(s1, ids, 300, 1000, CLLM_SHARD_NO_EOT, 0xabcdull, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_shard_write(s2, ids, 150, 1000, CLLM_SHARD_NO_EOT, 0xabcdull, &err) == CLLM_OK, "%s", err.msg);
    const char *both[2] = {s1, s2};
    cllm_loader_params p = cllm_loader_default_params();
    p.B = 2;
    p.T = 8;
    p.val_frac = 0.2;
    p.order = CLLM_DATA_SEQUENTIAL;
    cllm_loader *l = NULL;
    CHECK(cllm_loader_open(&l, both, 2, &p, &err) == CLLM_OK, "open shards: %s", err.msg);
    if (l) {
        CHECK(cllm_loader_vocab_size(l) == 1000 && cllm_loader_tokenizer_hash(l) == 0xabcdull, "shard facts");
        CHECK(cllm_loader_n_train(l) + cllm_loader_n_val(l) == 450 && cllm_loader_n_val(l) == 90, "450 tokens, 90 val");
        int32_t in[16], tg[16];
        cllm_loader_next(l, in, tg);
        CHECK(in[0] == 0 && in[1] == 7 && tg[15] == (int32_t)ids[16], "shard ids in order");
        cllm_loader_free(l);
    }
    /* the model's vocabulary is smaller than an id in the data */
    p.model_vocab = 500;
    l = NULL;
    CHECK(cllm_loader_open(&l, both, 2, &p, &err) == CLLM_ERR_FORMAT && l == NULL, "id >= model vocab rejected");
    CHECK(strstr(err.msg, ">= the model's vocabulary 500") != NULL, "message names the limit: %s", err.msg);
    p.model_vocab = 0;
    /* an id >= the shard's own vocab_size (patched into the file) */
    const char *s3 = tmp_path("bad.tok");
    CHECK(cllm_shard_write(s3, ids, 300, 1000, CLLM_SHARD_NO_EOT, 0xabcdull, &err) == CLLM_OK, "%s", err.msg);
    FILE *f = fopen(s3, "r+b");
    if (f) {
        uint8_t big[2] = {0xff, 0xff}; /* id 65535 at token 10 */
        fseek(f, 64 + 2 * 10, SEEK_SET);
        fwrite(big, 1, 2, f);
        fclose(f);
    }
    CHECK(cllm_loader_open(&l, &s3, 1, &p, &err) == CLLM_ERR_FORMAT && strstr(err.msg, "token 10"),
          "bad id rejected with its index: %s", err.msg);
    /* a truncated shard */
    CHECK(truncate(s3, 64 + 2 * 100) == 0, "truncate");
    CHECK(cllm_loader_open(&l, &s3, 1, &p, &err) == CLLM_ERR_FORMAT && strstr(err.msg, "truncated"),
          "truncated shard rejected: %s", err.msg);
    /* text mixed with a shard of another tokenizer */
    const char *txt = make_text("mix.txt");
    const char *mix[2] = {s1, txt};
    CHECK(cllm_loader_open(&l, mix, 2, &p, &err) == CLLM_ERR_FORMAT && strstr(err.msg, "is text"),
          "text + BPE shard rejected: %s", err.msg);
    /* shards from two tokenizers */
    CHECK(cllm_shard_write(s2, ids, 150, 1000, CLLM_SHARD_NO_EOT, 0x1234ull, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_loader_open(&l, both, 2, &p, &err) == CLLM_ERR_FORMAT && strstr(err.msg, "one tokenizer"),
          "two tokenizers rejected: %s", err.msg);
}

static void test_dataloader_rejects_too_little_data(void) {
    const char *path = tmp_path("small.txt");
    write_text(path, "hello world", 11);
    cllm_loader_params p = cllm_loader_default_params();
    p.B = 2;
    p.T = 8;
    p.val_frac = 0.0;
    cllm_loader *l = NULL;
    cllm_error err = {0};
    CHECK(cllm_loader_open(&l, &path, 1, &p, &err) == CLLM_ERR_ARG && l == NULL, "too little");
    CHECK(strstr(err.msg, "too little data") && strstr(err.msg, "needs 17"), "message: %s", err.msg);
    p.B = 1;
    p.T = 4;
    p.val_frac = 0.1; /* 1 val token < T+1 */
    CHECK(cllm_loader_open(&l, &path, 1, &p, &err) == CLLM_ERR_ARG && strstr(err.msg, "validation"),
          "too little validation: %s", err.msg);
    p.val_frac = 0.0;
    CHECK(cllm_loader_open(&l, &path, 1, &p, &err) == CLLM_OK, "enough without val: %s", err.msg);
    cllm_loader_free(l);
    const char *empty = tmp_path("empty.txt");
    write_text(empty, "", 0);
    l = NULL;
    CHECK(cllm_loader_open(&l, &empty, 1, &p, &err) != CLLM_OK && l == NULL, "empty file rejected");
}

static void test_dataloader_rejects_bad_paths(void) {
    cllm_loader_params p = cllm_loader_default_params();
    cllm_loader *l = NULL;
    cllm_error err = {0};
    const char *missing = tmp_path("nope.txt");
    CHECK(cllm_loader_open(&l, &missing, 1, &p, &err) == CLLM_ERR_IO && strstr(err.msg, "nope.txt"),
          "missing: %s", err.msg);
    const char *dir = tmpdir;
    CHECK(cllm_loader_open(&l, &dir, 1, &p, &err) == CLLM_ERR_IO && strstr(err.msg, "directory"),
          "directory: %s", err.msg);
    const char *fifo = tmp_path("fifo");
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
    CHECK(cllm_loader_open(&l, &fifo, 1, &p, &err) == CLLM_ERR_IO && strstr(err.msg, "FIFO"),
          "fifo: %s", err.msg);
    const char *zero = "/dev/zero";
    CHECK(cllm_loader_open(&l, &zero, 1, &p, &err) == CLLM_ERR_IO, "/dev/zero: %s", err.msg);
    unlink(fifo);
}

static void test_dataloader_fingerprint_detects_changes(void) {
    char text[200];
    for (int i = 0; i < 200; i++) text[i] = (char)('a' + i % 26);
    const char *p1 = tmp_path("fp1.txt"), *p2 = tmp_path("fp2.txt");
    write_text(p1, text, sizeof text);
    write_text(p2, text, sizeof text);
    cllm_loader_params p = cllm_loader_default_params();
    p.B = 2;
    p.T = 8;
    cllm_loader *a = NULL, *b = NULL;
    cllm_error err = {0};
    CHECK(cllm_loader_open(&a, &p1, 1, &p, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_loader_open(&b, &p2, 1, &p, &err) == CLLM_OK, "%s", err.msg);
    if (a && b) CHECK(cllm_loader_fingerprint(a) == cllm_loader_fingerprint(b), "same bytes, same fingerprint");
    cllm_loader_free(b);
    text[150] = 'Z';
    write_text(p2, text, sizeof text);
    CHECK(cllm_loader_open(&b, &p2, 1, &p, &err) == CLLM_OK, "%s", err.msg);
    if (a && b) CHECK(cllm_loader_fingerprint(a) != cllm_loader_fingerprint(b), "one byte changed");
    cllm_loader_free(b);
    p.val_frac = 0.2;
    CHECK(cllm_loader_open(&b, &p1, 1, &p, &err) == CLLM_OK, "%s", err.msg);
    if (a && b) CHECK(cllm_loader_fingerprint(a) != cllm_loader_fingerprint(b), "another split");
    cllm_loader_free(a);
    cllm_loader_free(b);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cllm_test_dl_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    TEST_RUN(test_dataloader_text_sequential_windows);
    TEST_RUN(test_dataloader_random_deterministic_and_resumable);
    TEST_RUN(test_dataloader_shards_and_vocab_checks);
    TEST_RUN(test_dataloader_rejects_too_little_data);
    TEST_RUN(test_dataloader_rejects_bad_paths);
    TEST_RUN(test_dataloader_fingerprint_detects_changes);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_finish();
}
